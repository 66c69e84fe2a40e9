"""Invitations: surveys, contact rules and eligibility, links and their signing keys,
scheduling, dispatch (the worker's due, reminder and expiry steps), the funnel, and the
invitations' part of privacy requests. The one-tap answer is invitations/answers.py.

One service per responsibility, each in its module; `invitation` is the domain's one front
door for the endpoints, the worker and other domains. Methods that show links take the
settings (`public_url`) from their caller."""

from __future__ import annotations

from feedback_api.invitations.service.contacts import address_refs, ref_hash
from feedback_api.invitations.service.contacts import contacts as contact_service
from feedback_api.invitations.service.dispatch import dispatch as dispatch_service
from feedback_api.invitations.service.funnel import funnel as funnel_service
from feedback_api.invitations.service.links import links as link_service
from feedback_api.invitations.service.privacy import privacy as privacy_service
from feedback_api.invitations.service.scheduling import scheduling as scheduling_service
from feedback_api.invitations.service.surveys import surveys as survey_service

__all__ = ["InvitationService", "address_refs", "invitation", "ref_hash"]


class InvitationService:
    def __init__(self) -> None:
        # surveys
        self.create_survey = survey_service.create
        self.get_survey = survey_service.get
        self.list_surveys = survey_service.list_page
        self.update_survey = survey_service.update
        # contact rules, eligibility and opt-outs
        self.seed_defaults = contact_service.seed_defaults
        self.get_rules = contact_service.get_rules
        self.update_rules = contact_service.update_rules
        self.eligibility = contact_service.eligibility
        self.unsubscribe = contact_service.unsubscribe
        self.resubscribe = contact_service.resubscribe
        # signing keys
        self.signing_keys = link_service.signing_keys
        self.rotate = link_service.rotate
        # scheduling and reading
        self.schedule = scheduling_service.schedule
        self.schedule_batch = scheduling_service.schedule_batch
        self.get = scheduling_service.get
        self.list_page = scheduling_service.list_page
        self.cancel = scheduling_service.cancel
        self.report_delivery = scheduling_service.report_delivery
        # dispatch (worker ticker)
        self.process_due = dispatch_service.process_due
        # funnel
        self.funnel = funnel_service.funnel
        # privacy
        self.export_customer = privacy_service.export_customer
        self.forget_customer = privacy_service.forget_customer
        self.block_hash = contact_service.block_hash
        self.blocks_for = contact_service.blocks_for
        self.erased = contact_service.erased
        self.blocked_customers = contact_service.blocked_customers


invitation = InvitationService()
