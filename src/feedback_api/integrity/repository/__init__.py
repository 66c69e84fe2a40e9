"""Integrity's SQL, one repository per responsibility: settings, the screen's queue and text
bands, flags and exclusion, rewards, the pattern detectors' counts, and the report. They
return rows and models; the services decide what is missing and what the API shows."""

from feedback_api.integrity.repository.flags import DETACHED, FlagRepository
from feedback_api.integrity.repository.patterns import PatternRepository
from feedback_api.integrity.repository.queue import QueueRepository
from feedback_api.integrity.repository.report import ReportRepository
from feedback_api.integrity.repository.rewards import Grant, RewardRepository
from feedback_api.integrity.repository.settings import SettingsRepository

__all__ = [
    "DETACHED",
    "FlagRepository",
    "Grant",
    "PatternRepository",
    "QueueRepository",
    "ReportRepository",
    "RewardRepository",
    "SettingsRepository",
]
