from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import datetime
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import NotFound, SlugTaken
from feedback_api.insights.service import theme as theme_service
from feedback_api.invitations.service import invitation as invitation_service
from feedback_api.keys.service import api_key as api_key_service
from feedback_api.kit.pagination import paginate
from feedback_api.metrics.service import metric as metric_service
from feedback_api.models import ApiKey, Tenant
from feedback_api.tenants.repository import TenantRepository
from feedback_api.tickets.service import ticket as ticket_service


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:50].strip("-")
    return slug or "tenant"


class TenantService:
    async def create(
        self,
        session: AsyncSession,
        *,
        name: str,
        slug: str | None,
        timezone: str = "UTC",
        locale: str = "en",
    ) -> tuple[Tenant, ApiKey, str]:
        """Create a tenant with its first secret key (every scope). Returns the plaintext."""
        repo = TenantRepository(session)
        tenant = await repo.insert(
            name=name, slug=slug or slugify(name), timezone=timezone, locale=locale
        )
        if tenant is None and slug is not None:
            raise SlugTaken(f"the slug {slug!r} is taken")
        while tenant is None:  # derived slug taken: add a random suffix
            derived = f"{slugify(name)}-{secrets.token_hex(3)}"
            tenant = await repo.insert(name=name, slug=derived, timezone=timezone, locale=locale)
        await ticket_service.seed_defaults(session, tenant.id)
        await invitation_service.seed_defaults(session, tenant.id)
        await theme_service.seed_defaults(session, tenant.id)
        key, plaintext = await api_key_service.create_admin_key(session, tenant.id)
        return tenant, key, plaintext

    async def get(self, session: AsyncSession, tenant_id: UUID) -> Tenant:
        tenant = await TenantRepository(session).get(tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        return tenant

    async def any_exists(self, session: AsyncSession) -> bool:
        return await TenantRepository(session).any_exists()

    async def list_page(
        self, session: AsyncSession, *, limit: int, after: tuple[datetime, UUID] | None
    ) -> tuple[list[Tenant], str | None]:
        rows = await TenantRepository(session).list_page(limit=limit + 1, after=after)
        return paginate(rows, limit, lambda t: (t.created_at, t.id))

    async def update(
        self, session: AsyncSession, tenant_id: UUID, values: dict[str, object]
    ) -> Tenant:
        if not values:
            return await self.get(session, tenant_id)
        old_timezone = None
        if "timezone" in values:
            old_timezone = (await self.get(session, tenant_id)).timezone
        try:
            async with session.begin_nested():
                tenant = await TenantRepository(session).update(tenant_id, values)
        except IntegrityError:
            raise SlugTaken(f"the slug {values.get('slug')!r} is taken") from None
        if tenant is None:
            raise NotFound("no such tenant")
        if old_timezone is not None and tenant.timezone != old_timezone:
            await metric_service.schedule_rebuild(session, tenant_id)
        return tenant


tenant = TenantService()
