"""The error family. Every error has an HTTP status and a stable, documented ``code``.

Handlers in ``app.py`` render them as RFC 9457 ``application/problem+json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class FeedbackError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        self.detail = detail or self.title
        self.errors = errors or []
        self.headers = headers
        super().__init__(self.detail)


class Unauthenticated(FeedbackError):
    status = 401
    code = "unauthenticated"
    title = "Missing or invalid credentials"


class Forbidden(FeedbackError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class MissingScope(Forbidden):
    code = "missing_scope"
    title = "The API key lacks a required scope"


class PublishableKeyForbidden(Forbidden):
    code = "publishable_key_forbidden"
    title = "A publishable key may not do this"


class NotFound(FeedbackError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(FeedbackError):
    status = 409
    code = "conflict"
    title = "Conflict"


class ExternalIdConflict(Conflict):
    code = "external_id_conflict"
    title = "external_id already used for different content"


class IdempotencyInFlight(Conflict):
    code = "idempotency_key_in_use"
    title = "A request with this Idempotency-Key is still being processed"


class SlugTaken(Conflict):
    code = "slug_taken"
    title = "This slug is already taken"


class IdempotencyKeyMismatch(FeedbackError):
    status = 422
    code = "idempotency_key_reused"
    title = "Idempotency-Key was used with a different request body"


class RateLimited(FeedbackError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


class InvalidRequest(FeedbackError):
    status = 422
    code = "validation_error"
    title = "The request is not valid"

    @classmethod
    def at(
        cls, loc: Sequence[str | int], code: str, message: str, *, detail: str | None = None
    ) -> InvalidRequest:
        """One field's error, as the edge reports them: `raise InvalidRequest.at(("body",
        "score"), "score_out_of_range", "…")`. The detail defaults to the message."""
        return cls(detail or message, errors=[{"loc": list(loc), "code": code, "message": message}])

    @staticmethod
    def error(loc: Sequence[str | int], code: str, message: str) -> dict[str, Any]:
        """One entry of `errors`, for a problem that lists several fields."""
        return {"loc": list(loc), "code": code, "message": message}


class InvalidCursor(InvalidRequest):
    code = "invalid_cursor"
    title = "The cursor is not valid"


class PayloadTooLarge(FeedbackError):
    status = 413
    code = "payload_too_large"
    title = "Request body too large"


class UnsupportedMediaType(FeedbackError):
    status = 415
    code = "unsupported_media_type"
    title = "Request body must be application/json"


class IllegalTransition(Conflict):
    code = "illegal_transition"
    title = "The ticket cannot make this change from its current status"


class TicketExists(Conflict):
    code = "active_ticket_exists"
    title = "This customer already has an active ticket at this touchpoint"


class TicketNotResolved(Conflict):
    code = "ticket_not_resolved"
    title = "The ticket is not resolved"


class PolicyInUse(Conflict):
    code = "policy_in_use"
    title = "The SLA policy is in use"


class PolicyKeyTaken(Conflict):
    code = "policy_key_taken"
    title = "An SLA policy with this key exists"


class SurveyKeyTaken(Conflict):
    code = "survey_key_taken"
    title = "A survey with this key exists"


class InvitationNotPending(Conflict):
    code = "invitation_not_pending"
    title = "Only a scheduled invitation can be cancelled"


class InvitationNotSent(Conflict):
    code = "invitation_not_sent"
    title = "The invitation has not been sent"


class LinkInvalid(FeedbackError):
    status = 404
    code = "link_invalid"
    title = "This link is not valid"


class LinkExpired(FeedbackError):
    status = 410
    code = "link_expired"
    title = "This link has expired"


class InvitationClosed(FeedbackError):
    status = 410
    code = "invitation_closed"
    title = "This invitation was withdrawn"


class TooManyThemes(Conflict):
    code = "too_many_themes"
    title = "The theme dictionary is full"


class TooManyTerms(Conflict):
    code = "too_many_terms"
    title = "The theme dictionary holds too many terms"
