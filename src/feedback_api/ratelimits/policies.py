"""The rate-limit policies: what is counted, per what, and the defaults.

A policy's name is what `RateLimit-Policy` / `RateLimit` answer with and what an operator's
override names. The defaults stop one client from posting hundreds of ratings a minute while
leaving server-side integrations (secret keys) room for imports; the secret-key and tenant
limits are a safety net, to be set to each tenant's plan with an override.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from feedback_api.kit.schemas import InputSchema
from feedback_api.kit.types import Int


class Policy(StrEnum):
    PUBLISHABLE_CLIENT = "publishable_client"  # one publishable key from one client IP
    PUBLISHABLE_KEY = "publishable_key"  # one publishable key, every client together
    SECRET_KEY = "secret_key"  # one secret key
    TENANT = "tenant"  # every key of one tenant together
    LINK = "link"  # one one-tap link (`/r/{token}`, its pages and answers)
    LINK_CLIENT = "link_client"  # one client IP on every one-tap link
    AUTH_FAILURES = "auth_failures"  # requests with a missing or unknown key, per client IP
    PREFLIGHT_CLIENT = "preflight_client"  # CORS preflights (no key yet), per client IP
    PUBLIC_FEED = "public_feed"  # the public feeds (/public/{slug}/…), per client IP


class Limit(InputSchema):
    """`quota` requests per `window_seconds`, counted over a sliding window."""

    quota: Annotated[Int, Field(ge=1, le=1_000_000_000)] = Field(
        description="Requests allowed in one window."
    )
    window_seconds: Annotated[Int, Field(ge=1, le=86_400)] = Field(
        description="The window's length in seconds (1 to 86400)."
    )


DEFAULTS: dict[Policy, Limit] = {
    Policy.PUBLISHABLE_CLIENT: Limit(quota=30, window_seconds=60),
    Policy.PUBLISHABLE_KEY: Limit(quota=3_000, window_seconds=60),
    Policy.SECRET_KEY: Limit(quota=3_000, window_seconds=1),
    Policy.TENANT: Limit(quota=5_000, window_seconds=1),
    # Mail scanners fetch every link of a message (eleven for NPS), sometimes several
    # scanners one after another, before the customer taps one: room for that.
    Policy.LINK: Limit(quota=60, window_seconds=60),
    Policy.LINK_CLIENT: Limit(quota=300, window_seconds=60),
    Policy.AUTH_FAILURES: Limit(quota=60, window_seconds=60),
    # Browsers cache a preflight for up to 2 hours; a page needs a handful.
    Policy.PREFLIGHT_CLIENT: Limit(quota=120, window_seconds=60),
    # A reader pages through a feed; a site embedding it caches (max-age 60) or fetches it
    # server-side once a minute. Scrapers walking every page are slowed down.
    Policy.PUBLIC_FEED: Limit(quota=60, window_seconds=60),
}

# What an operator may change per tenant. The others are counted before the tenant is known
# (a client IP on links, failed authentication) and are set for the whole service.
TENANT_POLICIES: frozenset[Policy] = frozenset(
    {Policy.PUBLISHABLE_CLIENT, Policy.PUBLISHABLE_KEY, Policy.SECRET_KEY, Policy.TENANT}
)
