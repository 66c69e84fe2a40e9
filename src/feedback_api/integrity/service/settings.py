"""Each tenant's integrity settings: when flags exclude, rewards, the detectors'
parameters, and the salt of the provenance hashes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.audit.service import audit as audit_service
from feedback_api.exceptions import InvalidRequest
from feedback_api.integrity.params import DetectorParams
from feedback_api.integrity.provenance import ip_hash, ua_hash
from feedback_api.integrity.repository import FlagRepository, SettingsRepository
from feedback_api.integrity.schemas import SettingsRead
from feedback_api.kit.schemas import field_errors
from feedback_api.kit.time import utcnow
from feedback_api.models import IntegritySettings


def params_of(settings: IntegritySettings) -> DetectorParams:
    # Stored parameters were valid when saved; unknown ones (from a newer version rolled
    # back) are dropped rather than failing the screen.
    known = {k: v for k, v in settings.detectors.items() if k in DetectorParams.model_fields}
    return DetectorParams(**known)


def settings_read(settings: IntegritySettings) -> SettingsRead:
    return SettingsRead(
        exclude_threshold=settings.exclude_threshold,
        rewards_enabled=settings.rewards_enabled,
        reward_interval_days=settings.reward_interval_days,
        detectors=params_of(settings),
        updated_at=settings.updated_at,
    )


class SettingsService:
    async def load(self, session: AsyncSession, tenant_id: UUID) -> IntegritySettings:
        """The tenant's settings, created with defaults on first use."""
        repo = SettingsRepository(session)
        found = await repo.get(tenant_id)
        return found if found is not None else await repo.create(tenant_id)

    async def provenance(
        self, session: AsyncSession, tenant_id: UUID, ip: str | None, user_agent: str | None
    ) -> tuple[str | None, str | None]:
        """Keyed hashes of a public submission's client IP and user agent. On the public
        ingest path: a read, and a write only the first time."""
        salt = await SettingsRepository(session).salt(tenant_id)
        if salt is None:
            salt = (await self.load(session, tenant_id)).salt
        return ip_hash(salt, ip), ua_hash(salt, user_agent)

    async def salt(self, session: AsyncSession, tenant_id: UUID) -> bytes:
        """The tenant's random secret (never shown), for keyed hashes that other domains
        derive their own keys from (the public feeds' ids and cursors)."""
        salt = await SettingsRepository(session).salt(tenant_id)
        return salt if salt is not None else (await self.load(session, tenant_id)).salt

    async def get(self, session: AsyncSession, tenant_id: UUID) -> SettingsRead:
        return settings_read(await self.load(session, tenant_id))

    async def update(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        changes: dict[str, Any],
        *,
        actor_key_id: UUID | None,
    ) -> SettingsRead:
        settings = await self.load(session, tenant_id)
        now = utcnow()
        if "detectors" in changes:
            merged = {**params_of(settings).model_dump(), **changes["detectors"]}
            try:
                settings.detectors = DetectorParams(**merged).model_dump()
            except ValidationError as exc:
                raise InvalidRequest(
                    "invalid detector parameters",
                    errors=field_errors(exc.errors(include_url=False), ["body", "detectors"]),
                ) from None
        for name in ("exclude_threshold", "reward_interval_days"):
            if name in changes:
                setattr(settings, name, changes[name])
        if "rewards_enabled" in changes:
            if changes["rewards_enabled"] and not settings.rewards_enabled:
                settings.rewards_since = now
            settings.rewards_enabled = changes["rewards_enabled"]
        settings.updated_at = now
        await session.flush()
        if "exclude_threshold" in changes:
            await FlagRepository(session).apply_exclusion(
                tenant_id, settings.exclude_threshold, None
            )
        await audit_service.record(
            session,
            tenant_id,
            action="integrity.settings_updated",
            target_type="integrity_settings",
            target_id=str(tenant_id),
            actor_key_id=actor_key_id,
            data={"changed": sorted(changes)},
        )
        return settings_read(settings)


settings = SettingsService()
