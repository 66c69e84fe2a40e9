from __future__ import annotations

import json
import re
from typing import Any

from feedback_api.openapi import render
from tests.fixtures.paths import ROOT

COMMITTED = ROOT / "openapi" / "openapi.json"


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


# --- every constraint the code enforces is in the contract --------------------------------

_SAFE_FORMATS = {"uuid", "date-time", "date", "email", "uri", "time", "duration"}


def _request_schemas(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, schema) for every parameter and request body schema in the contract."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                found.append((f"{method} {path} {param['in']}.{param['name']}", param["schema"]))
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                found.append((f"{method} {path} body ({media})", content["schema"]))
    return found


def _walk(
    spec: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]
) -> list[tuple[str, dict[str, Any]]]:
    """Every leaf schema reachable from `schema`, following $refs once."""
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen:
            return []
        seen.add(ref)
        target = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return _walk(spec, target, f"{where} → {ref.rsplit('/', 1)[-1]}", seen)
    leaves = [(where, schema)]
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            leaves += _walk(spec, sub, where, seen)
    for key in ("items", "additionalProperties", "propertyNames"):
        if isinstance(schema.get(key), dict):
            leaves += _walk(spec, schema[key], f"{where}[{key}]", seen)
    for name, sub in schema.get("properties", {}).items():
        leaves += _walk(spec, sub, f"{where}.{name}", seen)
    return leaves


def _request_leaves() -> list[tuple[str, dict[str, Any]]]:
    spec = json.loads(render())
    leaves: list[tuple[str, dict[str, Any]]] = []
    for where, schema in _request_schemas(spec):
        leaves += _walk(spec, schema, where, set())
    return leaves


def test_every_request_string_refuses_what_postgresql_cannot_store() -> None:
    """A string the contract leaves open (no enum, format or pattern) or whose pattern admits
    U+0000 would let a schema-valid request reach the database with a NUL."""
    bad = []
    for where, schema in _request_leaves():
        if schema.get("type") != "string" or "enum" in schema or "const" in schema:
            continue
        if schema.get("format") in _SAFE_FORMATS:
            continue
        pattern = schema.get("pattern")
        if pattern is None or re.search(pattern, "a\x00b") or "maxLength" not in schema:
            bad.append(where)
    assert not bad, "request strings without a NUL-free pattern and a maxLength:\n" + "\n".join(bad)


def test_every_request_number_is_bounded() -> None:
    """An integer without bounds reaches PostgreSQL's int4/int8 and overflows there."""
    bad = [
        where
        for where, schema in _request_leaves()
        if schema.get("type") == "integer"
        and not (
            ("maximum" in schema or "exclusiveMaximum" in schema)
            and ("minimum" in schema or "exclusiveMinimum" in schema)
        )
    ]
    assert not bad, "unbounded request integers:\n" + "\n".join(bad)


def test_links_lead_from_each_create_to_real_operations() -> None:
    """The stateful fuzzing and client generators follow these; a link to an operation or
    parameter that does not exist would silently test nothing."""
    spec = json.loads(render())
    operations = {op["operationId"]: op for ops in spec["paths"].values() for op in ops.values()}
    linked = 0
    for op in operations.values():
        for status, answer in op["responses"].items():
            for name, link in answer.get("links", {}).items():
                target = operations[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
                assert set(link["parameters"]) == names, (op["operationId"], status, name)
                linked += 1
    assert linked >= 30
    assert len(operations) == sum(len(ops) for ops in spec["paths"].values())
