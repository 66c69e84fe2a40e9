"""Surveys: what to ask, in which languages, and when (the template of an invitation)."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import NotFound, SurveyKeyTaken
from feedback_api.invitations.repository import InvitationRepository
from feedback_api.invitations.schemas import SurveyCreate, SurveyRead, SurveyUpdate
from feedback_api.kit.pagination import paginate
from feedback_api.models import Survey


def pick_text(texts: Mapping[str, str] | None, locale: str, fallback: str) -> str | None:
    """The text for `locale`: exact tag, then same language, then the fallback locale's,
    then the first given."""
    if not texts:
        return None
    by_lower = {k.lower(): v for k, v in texts.items()}
    for wanted in (locale, fallback):
        tag = wanted.lower()
        if tag in by_lower:
            return by_lower[tag]
        language = tag.split("-")[0]
        for key, value in by_lower.items():
            if key.split("-")[0] == language:
                return value
    return next(iter(texts.values()))


def _read(survey: Survey) -> SurveyRead:
    return SurveyRead.model_validate(survey, from_attributes=True)


class SurveyService:
    async def create(
        self, session: AsyncSession, tenant_id: UUID, body: SurveyCreate
    ) -> SurveyRead:
        values = body.model_dump(exclude_none=True, mode="json")
        survey = Survey(tenant_id=tenant_id, **values)
        try:
            async with session.begin_nested():
                await InvitationRepository(session).add_survey(survey)
        except IntegrityError:
            raise SurveyKeyTaken(f"a survey with key {body.key!r} exists") from None
        await session.refresh(survey)
        return _read(survey)

    async def survey(self, session: AsyncSession, tenant_id: UUID, key: str) -> Survey:
        """The survey itself (for the other services); NotFound when there is none."""
        survey = await InvitationRepository(session).survey_by_key(tenant_id, key)
        if survey is None:
            raise NotFound(f"no survey with key {key!r}")
        return survey

    async def get(self, session: AsyncSession, tenant_id: UUID, key: str) -> SurveyRead:
        return _read(await self.survey(session, tenant_id, key))

    async def list_page(
        self, session: AsyncSession, tenant_id: UUID, *, limit: int, after: tuple[str] | None
    ) -> tuple[list[SurveyRead], str | None]:
        rows = await InvitationRepository(session).survey_page(
            tenant_id, limit=limit + 1, after=after
        )
        return paginate([_read(s) for s in rows], limit, lambda s: (s.key,))

    async def update(
        self, session: AsyncSession, tenant_id: UUID, key: str, body: SurveyUpdate
    ) -> SurveyRead:
        survey = await self.survey(session, tenant_id, key)
        for name, value in body.model_dump(exclude_unset=True, mode="json").items():
            setattr(survey, name, value)
        await session.flush()
        await session.refresh(survey)
        return _read(survey)


surveys = SurveyService()
