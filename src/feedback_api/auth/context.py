from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class AuthContext:
    """Who is calling. The tenant always comes from the key, never from the request."""

    tenant_id: UUID
    tenant_timezone: str
    key_id: UUID
    kind: str  # "secret" | "publishable"
    scopes: frozenset[str]
    # A server-side integration the tenant vouches for: its responses are verified.
    trusted: bool = False
    # The operator's overrides of the default rate limits for this tenant (tenants.rate_limits).
    rate_limits: Mapping[str, Any] = field(default_factory=dict)
    # Publishable keys: the web origins whose pages may use the key (CORS, see cors.py).
    allowed_origins: frozenset[str] = frozenset()

    @property
    def is_publishable(self) -> bool:
        return self.kind == "publishable"
