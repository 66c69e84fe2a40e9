"""All ORM models, imported here so Alembic sees the whole schema."""

from feedback_api.kit.models import Base
from feedback_api.models.action import ImprovementAction
from feedback_api.models.api_key import ApiKey
from feedback_api.models.audit_log import AuditLog
from feedback_api.models.autopilot import AutopilotMembership
from feedback_api.models.customer import Customer
from feedback_api.models.event import Event
from feedback_api.models.idempotency_key import IdempotencyKey
from feedback_api.models.insight import ResponseTheme, RisingNotice, Theme, ThemeDictionary
from feedback_api.models.integrity import (
    IntegrityFlag,
    IntegrityFlagResponse,
    IntegritySettings,
    IntegrityTextBand,
    RewardGrant,
)
from feedback_api.models.invitation import (
    ContactBlock,
    ContactRules,
    Invitation,
    SigningKey,
    Survey,
)
from feedback_api.models.job import Job, JobSchedule
from feedback_api.models.metric import (
    MetricRollup,
    MetricRollupState,
    MetricTotal,
    metric_deltas,
)
from feedback_api.models.reply import ResponseReply
from feedback_api.models.response import Response
from feedback_api.models.tenant import Tenant
from feedback_api.models.ticket import SlaPolicy, Ticket, TicketEntry, TicketResponse, TicketRule
from feedback_api.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from feedback_api.models.work_failure import WorkFailure

__all__ = [
    "ApiKey",
    "ImprovementAction",
    "AuditLog",
    "AutopilotMembership",
    "Base",
    "ContactBlock",
    "ContactRules",
    "Customer",
    "Event",
    "IdempotencyKey",
    "IntegrityFlag",
    "IntegrityFlagResponse",
    "IntegritySettings",
    "IntegrityTextBand",
    "Invitation",
    "Job",
    "JobSchedule",
    "MetricRollup",
    "MetricRollupState",
    "MetricTotal",
    "Response",
    "ResponseReply",
    "ResponseTheme",
    "RewardGrant",
    "SigningKey",
    "SlaPolicy",
    "Survey",
    "Tenant",
    "Theme",
    "ThemeDictionary",
    "RisingNotice",
    "Ticket",
    "TicketEntry",
    "TicketResponse",
    "TicketRule",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkFailure",
    "metric_deltas",
]
