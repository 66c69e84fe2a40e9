from __future__ import annotations

from dataclasses import dataclass
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

    @property
    def is_publishable(self) -> bool:
        return self.kind == "publishable"
