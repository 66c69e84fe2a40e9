"""Settings, read from the environment with the prefix ``FEEDBACK_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from feedback_api.ratelimits.policies import Limit, Policy

MIN_TOKEN_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FEEDBACK_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://… of an external PostgreSQL 15+. Unset: embedded server.",
    )
    data_dir: Path = Field(default=Path(".feedback-data"), description="Embedded server's folder.")
    admin_token: SecretStr | None = Field(
        default=None, description="Platform admin bearer token for /v1/tenants. Unset: disabled."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where customers reach this service: the base of one-tap links.",
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://… shared by every API process for rate-limit counters. Unset: "
        "each process counts on its own, in memory.",
    )
    redis_key_prefix: str = Field(
        default="feedback_api", description="Prefix of every key this service keeps in Redis."
    )
    rate_limits_enabled: bool = Field(
        default=True, description="Count requests against the rate limits (docs/security.md)."
    )
    rate_limits: dict[Policy, Limit] = Field(
        default_factory=dict,
        description='The service\'s defaults changed, as JSON: {"publishable_client": '
        '{"quota": 60, "window_seconds": 60}}. Per tenant: PATCH /v1/tenants/{id}.',
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that /metrics (Prometheus) requires. Unset: /metrics is open "
        "(keep it off the public network).",
    )
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    # A fixed pool: under a steady load above pool_size, "overflow" connections are opened
    # and closed on every request (TLS, auth, type introspection), which costs far more than
    # waiting a moment for a pooled one.
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="How long a request waits for a pooled connection before answering 503.",
    )
    db_statement_timeout_seconds: float = Field(
        default=0,
        ge=0,
        description="Cancel a statement running longer (503 `database_busy`). 0: no limit. "
        "Applies to every statement of the process, background jobs included.",
    )
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    clock_skew_seconds: int = Field(default=300, ge=0)
    idempotency_ttl_hours: int = Field(default=24, ge=24)
    events_retention_days: int = Field(default=30, ge=1)
    run_worker: bool = Field(
        default=False, description="Run a worker inside each API process (serve sets it)."
    )
    # Jobs are mostly waiting on the network (webhooks), so many run at once.
    worker_concurrency: int = Field(default=16, ge=1)
    worker_lease_seconds: float = Field(
        default=60,
        ge=1,
        description="How long a job claimed by a worker that stopped answering stays its own; "
        "a running job renews it every third of it.",
    )
    webhooks_allow_http: bool = Field(
        default=False, description="Allow plain http:// webhook URLs (development, tests)."
    )
    # One attempt's whole exchange (connect, send, headers and the first KiB of the answer).
    # At most 25: an attempt can wait this long for a send slot and again for the answer,
    # and its job must finish within the worker's 60 s lease.
    webhooks_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=25,
        description="Seconds a webhook receiver has to answer one delivery attempt, in total.",
    )
    webhooks_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs that resolve to private, loopback or link-local "
        "addresses (development, tests).",
    )

    @field_validator("admin_token", "metrics_token")
    @classmethod
    def _long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        # Bearer tokens are compared, not looked up: only their length stands against guessing.
        if token is not None and len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"use at least {MIN_TOKEN_LENGTH} random characters "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return token


@lru_cache
def get_settings() -> Settings:
    return Settings()
