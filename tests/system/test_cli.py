"""The feedback-api command against the worker's database (committed, then cleaned up)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from uuid import UUID

import pytest
from typer.testing import CliRunner

from feedback_api.cli import app
from feedback_api.config import get_settings

runner = CliRunner()


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FEEDBACK_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def invoke(*args: str) -> dict[str, object]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


@pytest.mark.usefixtures("cli_env")
class TestCli:
    def test_tenant_and_key_lifecycle(self) -> None:
        created = invoke("tenant", "create", "--name", "CLI Shop", "--timezone", "Asia/Shanghai")
        tenant = created["tenant"]
        key = created["api_key"]
        assert isinstance(tenant, dict)
        assert isinstance(key, dict)
        assert tenant["timezone"] == "Asia/Shanghai"
        assert str(key["secret"]).startswith("fbk_sk_")

        reader = invoke(
            "key",
            "create",
            "--tenant",
            str(tenant["id"]),
            "--name",
            "bi",
            "--scope",
            "responses:read",
            "--scope",
            "metrics:read",
        )
        assert reader["scopes"] == ["metrics:read", "responses:read"]
        app_key = invoke(
            "key", "create", "--tenant", str(tenant["id"]), "--name", "ios", "--publishable"
        )
        assert str(app_key["secret"]).startswith("fbk_pk_")

        revoked = invoke("key", "revoke", "--tenant", str(tenant["id"]), str(reader["id"]))
        assert revoked["revoked_at"] is not None

    def test_errors_are_reported_not_raised(self) -> None:
        bad_zone = runner.invoke(app, ["tenant", "create", "--name", "X", "--timezone", "Mars"])
        assert bad_zone.exit_code != 0
        no_scope = runner.invoke(
            app, ["key", "create", "--tenant", str(UUID(int=0)), "--name", "x"]
        )
        assert no_scope.exit_code != 0
        unknown_tenant = runner.invoke(
            app,
            ["key", "create", "--tenant", str(UUID(int=0)), "--name", "x", "--publishable"],
        )
        assert unknown_tenant.exit_code == 1
        assert "no such tenant" in unknown_tenant.output

    def test_migrate_is_idempotent(self) -> None:
        result = runner.invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
