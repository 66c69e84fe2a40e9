"""The one-tap answer, start to end: a customer answers an invitation through its signed
link (`/r/{token}`, see public/endpoints.py), or an app hands the link's token to
`POST /v1/responses` (`answer_with_token`, which assembly provides to the responses
domain's `token_answers` slot).

Here: the token checked (tokens.py) and the invitation locked, the score checked against
the survey's scale, the response's values taken from the invitation and its survey, the
answer stored through `ResponseService.store_answer` (which fires `responses_stored`), and
the invitation marked responded. The responses domain knows none of this.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.auth.context import AuthContext
from feedback_api.config import Settings
from feedback_api.events.catalogue import EventType
from feedback_api.events.service import event as event_service
from feedback_api.exceptions import InvalidRequest, InvitationClosed, LinkExpired, LinkInvalid
from feedback_api.invitations import tokens
from feedback_api.invitations.repository import InvitationRepository
from feedback_api.invitations.schemas import Answer, AnswerResult, InvitationQuestion, Status
from feedback_api.invitations.service.contacts import contacts as contact_service
from feedback_api.invitations.service.scheduling import scheduling as scheduling_service
from feedback_api.invitations.service.surveys import pick_text
from feedback_api.kit.crypto import canonical_hash
from feedback_api.kit.time import utcnow
from feedback_api.models import Invitation, Survey
from feedback_api.responses.schemas import Client, ResponseCreate, ResponseRead
from feedback_api.responses.service import VerifiedAnswer
from feedback_api.responses.service import response as response_service

# With an invitation token these come from the invitation, not the body.
TOKEN_FORBIDDEN_FIELDS = ("customer", "survey", "external_id", "occurred_at")


@dataclass(frozen=True, slots=True)
class AnswerTarget:
    """An invitation a genuine, unexpired link points to, locked for the answer."""

    invitation: Invitation
    survey: Survey
    customer_ref: str | None
    tenant_locale: str
    # The tenant has a public review feed: the page asks whether the answer may appear in it.
    publishes: bool = False


class AnswerService:
    async def open_for_answer(
        self,
        session: AsyncSession,
        token: str,
        *,
        tenant_id: UUID | None = None,
        lock: bool = True,
        closed_ok: bool = False,
    ) -> AnswerTarget:
        """The invitation a genuine link points to; with `lock`, locked until the caller
        commits (answers to one invitation are then taken one at a time). `tenant_id`: the
        caller's tenant, when there is one (an API key): another tenant's token is invalid.
        `closed_ok`: expired and withdrawn invitations too (an unsubscribe link must work
        after the survey closed)."""
        now = utcnow()
        try:
            claims = tokens.peek(token)
        except tokens.TokenInvalid:
            raise LinkInvalid("this link is not valid") from None
        if tenant_id is not None and claims.tenant_id != tenant_id:
            raise LinkInvalid("this link is not valid")
        repo = InvitationRepository(session)
        key = await repo.signing_key(claims.tenant_id, claims.kid)
        if key is None or (key.retires_at is not None and key.retires_at <= now):
            raise LinkInvalid("this link is not valid (its signing key was retired)")
        try:
            tokens.verify(token, key.secret, now)
        except tokens.TokenInvalid:
            raise LinkInvalid("this link is not valid") from None
        except tokens.TokenExpired:
            if not closed_ok:
                raise LinkExpired("this survey has closed") from None
        row = await repo.get(claims.tenant_id, claims.invitation_id, for_update=lock)
        if row is None:
            raise LinkInvalid("this link is not valid")
        invitation, _, customer_ref = row
        if closed_ok:
            pass
        elif invitation.status in (Status.CANCELLED, Status.SUPPRESSED):
            raise InvitationClosed("this invitation was withdrawn")
        elif invitation.status == Status.EXPIRED:
            raise LinkExpired("this survey has closed")
        surveys = await repo.surveys(claims.tenant_id, [invitation.survey_id])
        defaults = await repo.tenant_defaults(claims.tenant_id)
        assert defaults is not None
        return AnswerTarget(
            invitation,
            surveys[invitation.survey_id],
            customer_ref,
            defaults[1],
            await repo.publishes_reviews(claims.tenant_id),
        )

    def question(self, target: AnswerTarget, answer: int | None) -> InvitationQuestion:
        """The question in the invitation's language, for the page (ours or the tenant's)."""
        inv, survey = target.invitation, target.survey
        text = pick_text(survey.question, inv.locale, target.tenant_locale)
        assert text is not None
        assert inv.expires_at is not None
        return InvitationQuestion(
            invitation_id=inv.id,
            kind=survey.kind,  # type: ignore[arg-type]
            scale_min=survey.scale_min,
            scale_max=survey.scale_max,
            locale=inv.locale,
            question=text,
            follow_up=pick_text(survey.follow_up, inv.locale, target.tenant_locale),
            answer=answer,
            expires_at=inv.expires_at,
            asks_publish_consent=target.publishes,
        )

    def thank_you(self, target: AnswerTarget) -> str | None:
        return pick_text(target.survey.thank_you, target.invitation.locale, target.tenant_locale)

    async def answer_of(self, session: AsyncSession, target: AnswerTarget) -> int | None:
        """The score currently recorded for the invitation, if any."""
        inv = target.invitation
        return await response_service.answer_score(session, inv.tenant_id, inv.id)

    async def answer(
        self,
        session: AsyncSession,
        target: AnswerTarget,
        answer: Answer,
        *,
        channel: str,
        api_key_id: UUID | None,
        settings: Settings,
        client: Client | None = None,
    ) -> tuple[ResponseRead, AnswerResult]:
        """Record the answer to an invitation as a verified response; a later answer to the
        same invitation replaces the earlier one (last answer wins). The invitation is
        locked by `target`, so two answers at once are taken one after the other."""
        inv, survey = target.invitation, target.survey
        if not survey.scale_min <= answer.score <= survey.scale_max:
            raise InvalidRequest.at(
                ("body", "score"),
                "score_off_scale",
                f"{survey.kind} on {survey.scale_min}–{survey.scale_max}",
                detail=f"score must be between {survey.scale_min} and {survey.scale_max}",
            )
        context = inv.context
        values = VerifiedAnswer(
            invitation_id=inv.id,
            kind=survey.kind,
            score=answer.score,
            scale_min=survey.scale_min,
            scale_max=survey.scale_max,
            comment=answer.comment,
            tags=answer.tags,
            channel=channel,
            touchpoint=context.get("touchpoint") or survey.touchpoint,
            survey=survey.key,
            customer_id=inv.customer_id,
            agent_ref=context.get("agent_ref"),
            location_ref=context.get("location_ref"),
            language=inv.locale,
            attributes=context.get("attributes", {}),
            request_hash=canonical_hash(answer.model_dump(mode="json")),
            api_key_id=api_key_id,
            publish_consent=answer.publish_consent,
        )
        read, created = await response_service.store_answer(
            session, inv.tenant_id, values, client=client
        )
        await self.mark_responded(session, target, read.id, first=created, settings=settings)
        result = AnswerResult(
            response_id=read.id,
            invitation_id=inv.id,
            score=answer.score,
            verified=True,
            updated=not created,
        )
        return read, result

    async def answer_with_token(
        self,
        session: AsyncSession,
        auth: AuthContext,
        item: ResponseCreate,
        *,
        settings: Settings,
        client: Client | None,
    ) -> tuple[ResponseRead, bool]:
        """`POST /v1/responses` with an `invitation_token` (an app answering the prompt it
        was handed): the caller's tenant must own the token, and what the invitation
        decides (customer, survey, when) may not come from the body."""
        assert item.invitation_token is not None
        used = [f for f in TOKEN_FORBIDDEN_FIELDS if getattr(item, f) is not None]
        if used:
            raise InvalidRequest(
                f"with an invitation_token, these come from the invitation: {', '.join(used)}",
                errors=[
                    InvalidRequest.error(("body", f), "set_by_invitation", "leave it out")
                    for f in used
                ],
            )
        target = await self.open_for_answer(
            session, item.invitation_token, tenant_id=auth.tenant_id
        )
        if item.kind.value != target.survey.kind:
            raise InvalidRequest.at(
                ("body", "kind"),
                "kind_mismatch",
                "see the survey",
                detail=f"the invitation asks for {target.survey.kind}, not {item.kind.value}",
            )
        answer = Answer(score=item.score, comment=item.comment, tags=item.tags)
        read, result = await self.answer(
            session,
            target,
            answer,
            channel=item.channel.value,
            api_key_id=auth.key_id,
            settings=settings,
            client=client,
        )
        return read, not result.updated

    async def mark_responded(
        self,
        session: AsyncSession,
        target: AnswerTarget,
        response_id: UUID,
        *,
        first: bool,
        settings: Settings,
    ) -> None:
        """After an answer is stored: the first one moves the invitation to `responded`
        and emits `invitation.responded`; later ones (changed answers) only touch it."""
        inv = target.invitation
        repo = InvitationRepository(session)
        if not first and inv.status == Status.RESPONDED:
            await repo.update(inv.tenant_id, inv.id, {})
            return
        now = utcnow()
        values = {
            "status": Status.RESPONDED,
            "responded_at": now,
            "response_id": response_id,
            "next_action_at": None,
        }
        if inv.sent_at is None:  # answered in-app before the worker sent it
            values["sent_at"] = now
        await repo.update(inv.tenant_id, inv.id, values)
        read = await scheduling_service.get(session, inv.tenant_id, inv.id, settings=settings)
        await event_service.emit(session, inv.tenant_id, EventType.INVITATION_RESPONDED, [read])

    async def unsubscribe_by_link(self, session: AsyncSession, target: AnswerTarget) -> None:
        """The link's customer opts out of every invitation (one-click unsubscribe)."""
        inv = target.invitation
        if target.customer_ref is not None:
            await contact_service.unsubscribe(session, inv.tenant_id, target.customer_ref, None)


answers = AnswerService()
