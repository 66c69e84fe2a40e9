from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.audit.service import audit as audit_service
from feedback_api.auth.context import AuthContext
from feedback_api.auth.scopes import ALL_SCOPES, Scope
from feedback_api.exceptions import Conflict, Forbidden, InvalidRequest, NotFound
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


class TrustRequiresScope(Forbidden):
    code = "trust_requires_scope"
    title = "Only a key holding keys:trust may create trusted keys or change trust"


class ApiKeyRevoked(Conflict):
    code = "api_key_revoked"
    title = "The API key is revoked"


def _check_trust(granted_by: AuthContext | None) -> None:
    # A trusted key's responses count as verified, so vouching for one is a power of its
    # own: `keys:manage` lets a key manage keys, not decide which data is genuine.
    if granted_by is not None and Scope.KEYS_TRUST.value not in granted_by.scopes:
        raise TrustRequiresScope("creating a trusted key, or changing `trusted`, needs keys:trust")


class ApiKeyService:
    async def authenticate(self, session: AsyncSession, presented: str) -> AuthContext | None:
        if not presented.startswith((SECRET_KEY_PREFIX, PUBLISHABLE_KEY_PREFIX)):
            return None
        repo = ApiKeyRepository(session)
        row = await repo.find_active_by_hash(hash_key(presented))
        if row is None:
            return None
        if row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_RESOLUTION:
            await repo.touch(row.id)
        return AuthContext(
            tenant_id=row.tenant_id,
            tenant_timezone=row.timezone,
            key_id=row.id,
            kind=row.kind,
            scopes=frozenset(row.scopes),
            trusted=row.trusted,
            rate_limits=row.rate_limits,
            allowed_origins=frozenset(row.allowed_origins),
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
        allowed_origins: Sequence[str] = (),
        granted_by: AuthContext | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key and return it with its plaintext, which is never stored.
        ``granted_by`` None: the platform itself (CLI, tenant creation), which may do all."""
        if granted_by is not None and scopes:
            beyond = set(scopes) - granted_by.scopes
            if beyond:
                raise ScopeEscalation(f"your key does not hold: {', '.join(sorted(beyond))}")
        if trusted:
            _check_trust(granted_by)
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
            allowed_origins=list(allowed_origins) if publishable else [],
        )
        key = await ApiKeyRepository(session).add(key)
        await audit_service.record(
            session,
            tenant_id,
            action="api_key.created",
            target_type="api_key",
            target_id=str(key.id),
            actor_key_id=granted_by.key_id if granted_by else None,
            data={
                "kind": key.kind,
                "scopes": key.scopes,
                "trusted": trusted,
                "allowed_origins": key.allowed_origins,
            },
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

    async def update(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        key_id: UUID,
        changes: Mapping[str, Any],
        *,
        actor: AuthContext | None,
    ) -> ApiKey:
        """Change `name`, `allowed_origins` (publishable keys) or `trusted` (secret keys).
        Keys are looked up on every request, so a change holds from the next one on."""
        if "trusted" in changes:
            _check_trust(actor)
        repo = ApiKeyRepository(session)
        key = await repo.get_for_update(tenant_id, key_id)
        if key is None:
            raise NotFound("no such API key")
        if key.revoked_at is not None:
            raise ApiKeyRevoked("a revoked key cannot be changed; create a new one")
        errors = []
        if "allowed_origins" in changes and key.kind != "publishable":
            errors.append(
                InvalidRequest.error(
                    ("body", "allowed_origins"),
                    "origins_publishable_only",
                    "allowed_origins is for publishable keys: secret keys never answer browsers",
                )
            )
        if changes.get("trusted") and key.kind == "publishable":
            errors.append(
                InvalidRequest.error(
                    ("body", "trusted"),
                    "publishable_trusted",
                    "a publishable key cannot be trusted: it ships inside apps",
                )
            )
        if errors:
            raise InvalidRequest(
                "check these fields: " + ", ".join(e["loc"][1] for e in errors), errors=errors
            )
        for field in ("name", "allowed_origins", "trusted"):
            if field in changes:
                setattr(key, field, changes[field])
        await session.flush()
        if changes:
            await audit_service.record(
                session,
                tenant_id,
                action="api_key.updated",
                target_type="api_key",
                target_id=str(key.id),
                actor_key_id=actor.key_id if actor else None,
                # Field names and the new powers; the name is free text, so only "changed".
                data={
                    "changed": sorted(changes),
                    "trusted": key.trusted,
                    "allowed_origins": key.allowed_origins,
                },
            )
        return key

    async def origin_listed(self, session: AsyncSession, origin: str) -> bool:
        """Whether any active publishable key, of any tenant, lists this web origin."""
        return await ApiKeyRepository(session).origin_listed(origin)

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
