from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.audit.service import audit as audit_service
from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import ALL_SCOPES
from feedback_api.exceptions import Forbidden, NotFound
from feedback_api.keys.repository import ApiKeyRepository
from feedback_api.kit.crypto import (
    DISPLAY_PREFIX_LENGTH,
    PUBLISHABLE_KEY_PREFIX,
    SECRET_KEY_PREFIX,
    generate_key,
    hash_key,
)
from feedback_api.kit.pagination import paginate
from feedback_api.kit.time import utcnow
from feedback_api.models import ApiKey

# last_used_at is written at most this often per key: a write per request would cost more
# than the request itself.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ScopeEscalation(Forbidden):
    code = "scope_escalation"
    title = "A key may grant only scopes it holds itself"


class ApiKeyService:
    async def authenticate(self, session: AsyncSession, presented: str) -> AuthContext | None:
        if not presented.startswith((SECRET_KEY_PREFIX, PUBLISHABLE_KEY_PREFIX)):
            return None
        repo = ApiKeyRepository(session)
        row = await repo.find_active_by_hash(hash_key(presented))
        if row is None:
            return None
        key_id, tenant_id, kind, scopes, last_used_at, timezone, trusted = row
        if last_used_at is None or utcnow() - last_used_at > LAST_USED_RESOLUTION:
            await repo.touch(key_id)
        return AuthContext(
            tenant_id=tenant_id,
            tenant_timezone=timezone,
            key_id=key_id,
            kind=kind,
            scopes=frozenset(scopes),
            trusted=trusted,
        )

    async def create(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        name: str,
        scopes: Sequence[str] | None,
        publishable: bool,
        trusted: bool = False,
        granted_by: AuthContext | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key and return it with its plaintext, which is never stored."""
        if granted_by is not None and scopes:
            beyond = set(scopes) - granted_by.scopes
            if beyond:
                raise ScopeEscalation(f"your key does not hold: {', '.join(sorted(beyond))}")
        prefix = PUBLISHABLE_KEY_PREFIX if publishable else SECRET_KEY_PREFIX
        plaintext = generate_key(prefix)
        key = ApiKey(
            tenant_id=tenant_id,
            name=name,
            kind="publishable" if publishable else "secret",
            prefix=plaintext[:DISPLAY_PREFIX_LENGTH],
            key_hash=hash_key(plaintext),
            scopes=[] if publishable else sorted(set(scopes or ())),
            trusted=trusted,
        )
        key = await ApiKeyRepository(session).add(key)
        await audit_service.record(
            session,
            tenant_id,
            action="api_key.created",
            target_type="api_key",
            target_id=str(key.id),
            actor_key_id=granted_by.key_id if granted_by else None,
            data={"kind": key.kind, "scopes": key.scopes, "trusted": trusted},
        )
        return key, plaintext

    async def create_admin_key(
        self, session: AsyncSession, tenant_id: UUID, name: str = "admin"
    ) -> tuple[ApiKey, str]:
        return await self.create(
            session, tenant_id, name=name, scopes=ALL_SCOPES, publishable=False
        )

    async def list_page(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> tuple[list[ApiKey], str | None]:
        rows = await ApiKeyRepository(session).list_page(tenant_id, limit=limit + 1, after=after)
        return paginate(rows, limit, lambda k: (k.created_at, k.id))

    async def revoke(
        self, session: AsyncSession, tenant_id: UUID, key_id: UUID, *, actor: AuthContext | None
    ) -> ApiKey:
        key = await ApiKeyRepository(session).revoke(tenant_id, key_id)
        if key is None:
            raise NotFound("no such API key")
        await audit_service.record(
            session,
            tenant_id,
            action="api_key.revoked",
            target_type="api_key",
            target_id=str(key.id),
            actor_key_id=actor.key_id if actor else None,
        )
        return key


api_key = ApiKeyService()
