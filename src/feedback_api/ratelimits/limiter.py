"""Counting requests against the policies, with the `limits` library.

Counters live in memory (one process) or, with `FEEDBACK_REDIS_URL`, in Redis, where every
API process shares them. The strategy is the sliding-window counter: two counters per key
(this window and the last, weighted), so one check is one small Redis script, not a sorted
set per request.

When Redis is unreachable the limiter lets requests through and logs it: taking feedback
matters more than counting it, and the database limits still hold (pool, timeouts).
"""

from __future__ import annotations

import hashlib
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

# Redis must answer a check quickly or not at all: a stalled Redis must not stall the API.
REDIS_TIMEOUT_SECONDS = 0.5
# A Redis outage is logged at most this often.
OUTAGE_LOG_INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class Check:
    """One counter to take a request from: a policy, its limit, and whose it is."""

    policy: Policy
    limit: Limit
    subject: tuple[str, ...]


def digest(secret: str) -> str:
    """A stand-in for a credential in a counter's name: Redis never holds tokens."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


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
        if redis_url:
            uri = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
            storage = storage_from_string(
                uri,
                key_prefix=key_prefix,
                wrap_exceptions=True,
                connect_timeout=REDIS_TIMEOUT_SECONDS,
                stream_timeout=REDIS_TIMEOUT_SECONDS,
            )
        else:
            storage = storage_from_string("async+memory://")
        self.strategy = SlidingWindowCounterRateLimiter(storage)
        self.local = SlidingWindowCounterRateLimiter(storage_from_string("async+memory://"))
        self.defaults: dict[Policy, Limit] = {
            **DEFAULTS,
            **{Policy(k): v for k, v in (overrides or {}).items()},
        }
        self._items: dict[tuple[int, int], RateLimitItem] = {}
        self._outage_logged = 0.0

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
        try:
            for check in checks:
                item = self._item(check.limit)
                if not await self.strategy.hit(item, check.policy.value, *check.subject):
                    stats = await self.strategy.get_window_stats(
                        item, check.policy.value, *check.subject
                    )
                    raise self._over(check, checks, stats.reset_time)
            first = checks[0]
            stats = await self.strategy.get_window_stats(
                self._item(first.limit), first.policy.value, *first.subject
            )
        except StorageError as exc:
            self._log_outage(exc)
            return {}
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return {
            "RateLimit-Policy": policy_header(checks),
            "RateLimit": f'"{first.policy}";r={max(0, stats.remaining)};t={reset}',
        }

    async def guard(self, check: Check) -> None:
        """Refuse the request if `check`'s counter is spent, without counting it. For
        failure counters, which `count` only when a failure happens. They are kept in this
        process's memory, even with Redis: the check runs before every key lookup, and what
        it protects (this process's database pool) is per process too."""
        if not self.enabled:
            return
        item = self._item(check.limit)
        if not await self.local.test(item, check.policy.value, *check.subject):
            stats = await self.local.get_window_stats(item, check.policy.value, *check.subject)
            raise self._over(check, [check], stats.reset_time)

    async def count(self, check: Check) -> None:
        if self.enabled:
            await self.local.hit(self._item(check.limit), check.policy.value, *check.subject)

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

    def _log_outage(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._outage_logged > OUTAGE_LOG_INTERVAL:
            self._outage_logged = now
            logger.error("rate_limit_storage_unavailable", error=str(exc)[:200])
