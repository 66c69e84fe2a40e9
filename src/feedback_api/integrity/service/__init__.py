"""Integrity: the screen (every new response, by the worker), the pattern detectors
(solicitation and spikes, periodically), the review queue, settings and rewards.
See docs/integrity.md for the model and every detector's rule.

One service per responsibility, each in its module; `integrity` is the domain's one front
door for the endpoints, the worker and other domains."""

from __future__ import annotations

from feedback_api.integrity.service.erasure import erasure as erasure_service
from feedback_api.integrity.service.flags import flags as flag_service
from feedback_api.integrity.service.patterns import patterns as pattern_service
from feedback_api.integrity.service.report import report as report_service
from feedback_api.integrity.service.screen import screening as screen_service
from feedback_api.integrity.service.settings import settings as settings_service


class IntegrityService:
    def __init__(self) -> None:
        # settings
        self.provenance = settings_service.provenance
        self.salt = settings_service.salt
        self.settings = settings_service.get
        self.update_settings = settings_service.update
        # the screen (worker ticker)
        self.screen = screen_service.screen
        self.screen_failures = screen_service.failures
        self.retry_screen = screen_service.retry
        # patterns (periodic)
        self.patterns = pattern_service.patterns
        self.pattern_tenants = pattern_service.pattern_tenants
        self.patterns_of = pattern_service.patterns_of
        # review queue
        self.get = flag_service.get
        self.decide = flag_service.decide
        self.create_manual = flag_service.create_manual
        self.page = flag_service.page
        # report and erasure
        self.report = report_service.report
        self.forget_responses = erasure_service.forget_responses


integrity = IntegrityService()
