"""Counting requests against the policies, with the `limits` library.

Counters live in memory (one process) or, with `FEEDBACK_REDIS_URL`, in Redis, where every
API process shares them. The strategy is the sliding-window counter: two counters per key
(this window and the last, weighted), so one check is one small Redis script, not a sorted
set per request.

Redis must never hold a request up: the whole check has a deadline, and when Redis fails or
stalls the limiter counts in this process's memory for a while (a circuit breaker) before
it tries Redis again. Limits then hold per process instead of across them, which is the
price of taking feedback while Redis is away.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from pydantic import ValidationError

from feedback_api.exceptions import RateLimited
from feedback_api.ratelimits.policies import DEFAULTS, TENANT_POLICIES, Limit, Policy

logger = structlog.get_logger("feedback_api.ratelimits")

# A healthy Redis answers a check (three or four calls) in about a millisecond.
CHECK_DEADLINE_SECONDS = 0.25
# After Redis failed or stalled, count in memory this long before trying it again.
BREAKER_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Check:
    """One counter to take a request from: a policy, its limit, and whose it is."""

    policy: Policy
    limit: Limit
    subject: tuple[str, ...]


def digest(secret: str) -> str:
    """A stand-in for a credential in a counter's name: Redis never holds tokens."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def client_subject(address: str) -> str:
    """Whose counter a client address is. An IPv6 client holds a whole /64 (it can pick a
    new address for every request), so its /64 is one client; an IPv4-mapped address is
    its IPv4 address."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address


def policy_header(checks: Sequence[Check]) -> str:
    """`RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): every policy applied."""
    return ", ".join(f'"{c.policy}";q={c.limit.quota};w={c.limit.window_seconds}' for c in checks)


class Limiter:
    def __init__(
        self,
        *,
        enabled: bool = True,
        redis_url: str | None = None,
        key_prefix: str = "feedback_api",
        overrides: Mapping[Policy, Limit] | None = None,
    ) -> None:
        self.enabled = enabled
        self.local = SlidingWindowCounterRateLimiter(storage_from_string("async+memory://"))
        self.shared: SlidingWindowCounterRateLimiter | None = None
        if redis_url:
            uri = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
            storage = storage_from_string(
                uri,
                key_prefix=key_prefix,
                wrap_exceptions=True,
                connect_timeout=CHECK_DEADLINE_SECONDS,
                stream_timeout=CHECK_DEADLINE_SECONDS,
            )
            self.shared = SlidingWindowCounterRateLimiter(storage)
        self.defaults: dict[Policy, Limit] = {**DEFAULTS, **(overrides or {})}
        self._items: dict[tuple[int, int], RateLimitItem] = {}
        self._shared_down_until = 0.0

    def limit(self, policy: Policy, tenant_overrides: Mapping[str, Any] | None = None) -> Limit:
        """The limit in force: the tenant's override, if the operator set one, else the
        service's default."""
        if tenant_overrides and policy in TENANT_POLICIES:
            raw = tenant_overrides.get(policy.value)
            if raw is not None:
                try:
                    return Limit.model_validate(raw)
                except ValidationError:
                    logger.warning("rate_limit_override_invalid", policy=policy.value)
        return self.defaults[policy]

    def _item(self, limit: Limit) -> RateLimitItem:
        key = (limit.quota, limit.window_seconds)
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = RateLimitItemPerSecond(limit.quota, limit.window_seconds)
        return item

    async def take(self, checks: Sequence[Check]) -> dict[str, str]:
        """Count the request against every check, narrowest first. Over a limit: raise
        `RateLimited` (429, with `Retry-After`). Otherwise: the `RateLimit` header fields
        for the narrowest policy."""
        if not self.enabled or not checks:
            return {}
        shared = self.shared
        if shared is not None and time.monotonic() >= self._shared_down_until:
            try:
                async with asyncio.timeout(CHECK_DEADLINE_SECONDS):
                    return await self._take(shared, checks)
            except (StorageError, TimeoutError, OSError) as exc:
                self._shared_down_until = time.monotonic() + BREAKER_SECONDS
                logger.error(
                    "rate_limit_storage_unavailable",
                    error_type=type(exc).__name__,
                    counting_in_memory_for_seconds=BREAKER_SECONDS,
                )
        return await self._take(self.local, checks)

    async def _take(
        self, strategy: SlidingWindowCounterRateLimiter, checks: Sequence[Check]
    ) -> dict[str, str]:
        for check in checks:
            item = self._item(check.limit)
            if not await strategy.hit(item, check.policy.value, *check.subject):
                stats = await strategy.get_window_stats(item, check.policy.value, *check.subject)
                raise self._over(check, checks, stats.reset_time)
        first = checks[0]
        stats = await strategy.get_window_stats(
            self._item(first.limit), first.policy.value, *first.subject
        )
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return {
            "RateLimit-Policy": policy_header(checks),
            "RateLimit": f'"{first.policy}";r={max(0, stats.remaining)};t={reset}',
        }

    def failures(self, address: str) -> Check:
        """The counter of a client address's failed authentications."""
        policy = Policy.AUTH_FAILURES
        return Check(policy, self.limit(policy), (client_subject(address),))

    async def fail(self, check: Check) -> None:
        """Count a failure (an unknown key, a refused origin) against `check`; once its
        counter is spent, refuse with 429 instead of the failure's own answer. Kept in this
        process's memory even with Redis: failures are frequent exactly when someone is
        probing, and nothing about them needs to be exact across processes."""
        if not self.enabled:
            return
        item = self._item(check.limit)
        if not await self.local.hit(item, check.policy.value, *check.subject):
            stats = await self.local.get_window_stats(item, check.policy.value, *check.subject)
            raise self._over(check, [check], stats.reset_time)

    @staticmethod
    def _over(check: Check, checks: Sequence[Check], reset_time: float) -> RateLimited:
        retry = max(1, math.ceil(reset_time - time.time()))
        return RateLimited(
            f"over the {check.policy.value} limit of {check.limit.quota} requests "
            f"per {check.limit.window_seconds} s; retry after {retry} s",
            headers={
                "Retry-After": str(retry),
                "RateLimit-Policy": policy_header(checks),
                "RateLimit": f'"{check.policy}";r=0;t={retry}',
            },
        )
