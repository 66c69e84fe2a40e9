from __future__ import annotations

import json
from pathlib import Path

from feedback_api.openapi import render

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_contract_matches_the_code() -> None:
    assert COMMITTED.read_text() == render(), (
        "openapi/openapi.json is out of date: run `feedback-api openapi` and commit it"
    )


def test_every_operation_is_documented_with_its_errors() -> None:
    spec = json.loads(render())
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description"), f"{method} {path} has no docstring"
            if path.startswith("/v1/"):
                assert "401" in operation["responses"], f"{method} {path}"
                assert "422" in operation["responses"], f"{method} {path}"
