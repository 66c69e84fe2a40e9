"""Hostile input, generated from the contract: for every operation in openapi/openapi.json
and every string, number, datetime and JSON parameter or body field, a corpus of values a
hostile or unlucky client sends (NUL, lone surrogates, bidi and zero-width characters,
10,000-character strings, NaN, Infinity, 1e400, -0, huge integers, year 1 and 9999 at
±14:00, deep nesting, wrong types), each with a secret key, a publishable key and no key.

Every answer must be a 2xx or a problem+json 4xx (the one-tap pages answer HTML), never a
5xx. One field is hostile at a time; the rest of the request is a plausible baseline built
from the contract (examples, defaults, enums, minimal values), with path parameters naming
resources that exist, so that the hostile value reaches as deep as it can.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import find
from hypothesis import strategies as st

from feedback_api.openapi import render
from feedback_api.ratelimits.policies import Limit, Policy
from tests.fixtures.auth import TenantHandle, bearer
from tests.fixtures.routes import BODIES

SPEC: dict[str, Any] = json.loads(render())

# A JSON literal that json.dumps cannot write (1e400 is a double overflow: Infinity).
RAW = "\x01raw:"

HOSTILE_STRINGS: list[Any] = [
    "a\x00b",
    "x\udfffy",
    "\u202eevil\u200b\ufeff\u2066",
    "x" * 10_000,
    "",
    "💩" * 300,
    "'; DROP TABLE responses; --",
]
HOSTILE_NUMBERS: list[Any] = [
    float("nan"),
    float("-inf"),
    RAW + "1e400",
    RAW + "-0",
    10**30,
    2**63,
    1.5,
    RAW + "1" + "0" * 5000,  # beyond Python's int-from-text limit
]
HOSTILE_TIMES: list[Any] = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01",
    "9999-12-31",
    "2026-02-30T00:00:00Z",
    "2026-07-01T00:00:00",
    0,
]
HOSTILE_JSON: list[Any] = [
    {"a": float("nan")},
    {"a": {"b": [float("inf")]}},
    {"\x00": 1},
    {"a": "\ud800"},
    RAW + "[" * 5000 + "]" * 5000,
    RAW + '{"a":' * 200 + "1" + "}" * 200,
    {f"k{i}": i for i in range(500)},
]
NO_ID = "00000000-0000-7000-8000-000000000000"
COMPAT = "/compat/delighted/"  # Delighted's API: Basic auth, its error shape
WRONG_TYPES: list[Any] = [None, [], {}, True]

# Query and path values are text: the same ideas, spelled as a URL carries them.
HOSTILE_QUERY = [
    "a%00b",
    "%ED%A0%80",  # a surrogate encoded as if it were UTF-8: not UTF-8
    "%FF%FE",
    quote("\u202eevil\u200b"),
    "x" * 10_000,
    "",
    "NaN",
    "1e400",
    "9" * 40,
    "0001-01-01T00:00:00%2B14:00",
    "9999-12-31",
    "0.5",
]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = SPEC
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(schema)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return [v for o in options for v in _variants(o) if v.get("type") != "null"]
    return [schema]


def _kind(schema: dict[str, Any]) -> str:
    kinds = set()
    for variant in _variants(schema):
        fmt = variant.get("format")
        if fmt in ("date-time", "date"):
            kinds.add("time")
        elif variant.get("type") in ("integer", "number"):
            kinds.add("number")
        elif variant.get("type") == "object" or variant == {}:
            kinds.add("json")
        elif variant.get("type") == "array":
            kinds.add("array")
        else:
            kinds.add("string")
    for kind in ("time", "json", "number", "array"):
        if kind in kinds:
            return kind
    return "string"


def _string_sample(schema: dict[str, Any]) -> str:
    pattern = schema.get("pattern")
    low = int(schema.get("minLength", 1))
    if pattern is None:
        return "x" * max(low, 1)
    return str(
        find(st.from_regex(pattern, fullmatch=True), lambda s: len(s) >= low and "\x00" not in s)
    )


def baseline(schema: dict[str, Any], depth: int = 0) -> Any:
    """A plausible value for `schema`: its example, default or first enum value, or the
    smallest value of its type."""
    schema = _resolve(schema)
    if "examples" in schema and schema["examples"]:
        return schema["examples"][0]
    if schema.get("default") is not None:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    variants = _variants(schema)
    if len(variants) > 1 or variants[0] is not schema:
        return baseline(variants[0], depth)
    kind = schema.get("type")
    if schema.get("format") == "date-time":
        return "2026-07-01T09:00:00+08:00"
    if schema.get("format") == "date":
        return "2026-07-01"
    if schema.get("format") == "uuid":
        return "00000000-0000-7000-8000-000000000000"
    if schema.get("format") == "email":
        return "someone@example.com"
    if kind == "string":
        return _string_sample(schema)
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), min(1, int(schema.get("maximum", 1))))
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        props = schema.get("properties", {})
        return {name: baseline(props[name], depth + 1) for name in schema.get("required", [])}
    return None


def body_fields(
    schema: dict[str, Any], path: tuple[str | int, ...] = (), depth: int = 0
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """(path, schema) of every field in a body, nested objects and array items included."""
    for variant in _variants(schema):
        for name, sub in variant.get("properties", {}).items():
            yield (*path, name), sub
            if depth < 3:
                for inner in _variants(sub):
                    if inner.get("type") == "object" and "properties" in inner:
                        yield from body_fields(inner, (*path, name), depth + 1)
                    items = inner.get("items")
                    if inner.get("type") == "array" and isinstance(items, dict):
                        yield (*path, name, 0), items
                        if "properties" in _resolve(items):
                            yield from body_fields(items, (*path, name, 0), depth + 1)


def with_value(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of `body` with `value` at `path` (parents created as needed)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(body) if isinstance(body, list) else []
        child = items[0] if items else {}
        return [with_value(child, rest, value)]
    copy = dict(body) if isinstance(body, dict) else {}
    copy[head] = with_value(copy.get(head, {}), rest, value)
    return copy


def dumps(body: Any) -> bytes:
    """JSON as a hostile client writes it: NaN and Infinity as Python spells them, and raw
    literals (1e400, 5,000 nested brackets) spliced in."""
    raws: list[str] = []

    def mark(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(RAW):
            raws.append(value[len(RAW) :])
            return f"\x02{len(raws) - 1}\x02"
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(body), allow_nan=True)
    text = re.sub(r'"\\u0002(\d+)\\u0002"', lambda m: raws[int(m.group(1))], text)
    return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


OPERATIONS = [
    Operation(method, path, op)
    for path, ops in SPEC["paths"].items()
    for method, op in ops.items()
    if path.startswith(("/v1/", "/r/", "/public/", COMPAT))
]


@dataclass
class World:
    """A tenant with one of each resource, so path parameters can name real ones."""

    secret: str
    publishable: str
    path_values: dict[str, str]


@pytest.fixture
async def world(tenant: TenantHandle, app: FastAPI) -> World:
    publishable = await tenant.key(publishable=True)
    # The public feeds: open, so that hostile values reach past the slug; and a limit per
    # client address that the hundreds of requests from this one client stay under.
    feeds = await tenant.patch("/v1/tenant", json={"public_feeds": True})
    assert feeds.status_code == 200, feeds.text
    app.state.limiter.defaults[Policy.PUBLIC_FEED] = Limit(quota=100_000, window_seconds=60)
    # The names the route matrix's bodies (our baselines) refer to: customer "c", survey "x".
    customer = await tenant.put("/v1/customers/c", json={"email": "c@example.com"})
    assert customer.status_code in (200, 201), customer.text
    response = await tenant.post(
        "/v1/responses", json={"kind": "nps", "score": 3, "channel": "web", "customer": "c"}
    )
    assert response.status_code == 201, response.text
    tickets = await tenant.get("/v1/tickets", params={"customer": "c"})
    ticket_id = tickets.json()["items"][0]["id"]
    survey = await tenant.post(
        "/v1/surveys", json={"key": "x", "kind": "nps", "question": {"en": "How likely…?"}}
    )
    assert survey.status_code == 201, survey.text
    target = {"first_response_minutes": 60, "resolution_minutes": 480}
    policy = await tenant.post(
        "/v1/sla-policies",
        json={
            "key": "p",
            "name": "p",
            "targets": dict.fromkeys(("urgent", "high", "normal", "low"), target),
        },
    )
    assert policy.status_code == 201, policy.text
    rules = await tenant.post(
        "/v1/ticket-rules", json={"name": "r", "conditions": {}, "action": {"team": "t"}}
    )
    events = await tenant.get("/v1/events")
    keys = await tenant.get("/v1/api-keys")
    return World(
        secret=tenant.admin_key,
        publishable=publishable,
        path_values={
            "external_ref": "c",
            "response_id": response.json()["id"],
            "ticket_id": ticket_id,
            "key": "x",
            "kind": "nps",
            "rule_id": rules.json().get("id", NO_ID),
            # Events show only once their transaction is over: none inside this test's.
            "event_id": next((e["id"] for e in events.json()["items"]), NO_ID),
            "key_id": keys.json()["items"][-1]["id"],
            "policy": "p",
            "tenant_slug": feeds.json()["slug"],
            # Delighted's paths name the same customer.
            "identifier": "email:c@example.com",
            "email": "c@example.com",
            "platform": "email",
        },
    )


def _path_value(world: World, op: Operation, name: str) -> str:
    if name == "key" and "/sla-policies/" in op.path:
        return world.path_values["policy"]
    return world.path_values.get(name, NO_ID)


def _json_body_schema(op: Operation) -> dict[str, Any] | None:
    content = op.spec.get("requestBody", {}).get("content", {})
    media = content.get("application/json")
    return None if media is None else media["schema"]


#: With a publishable key or none, most operations answer 401/403 before reading a field:
#: one value of each kind of hostility per field is enough there.
SHORT_QUERY = ["a%00b", "9" * 40, "0001-01-01T00:00:00%2B14:00", "%ED%A0%80"]


def _cases(
    op: Operation, world: World, *, full: bool
) -> Iterator[tuple[str, str, bytes | None, str]]:
    """(url, query, body, what) for every hostile value of every field of `op` (with
    `full=False`, one of each kind)."""
    params = op.spec.get("parameters", [])
    path_base = {p["name"]: _path_value(world, op, p["name"]) for p in params if p["in"] == "path"}
    query_base = {
        p["name"]: str(baseline(p["schema"]))
        for p in params
        if p["in"] == "query" and p.get("required")
    }
    schema = _json_body_schema(op)
    body_base: Any = BODIES.get(op.label)
    if body_base is None and schema is not None:
        body_base = baseline(schema)

    def url(path_values: dict[str, str]) -> str:
        out = op.path
        for name, value in path_values.items():
            out = out.replace("{" + name + "}", value)
        return out

    def query(values: dict[str, str], hostile: str | None = None) -> str:
        """The query string; the hostile parameter's value is sent as it stands (it is
        already spelled for a URL), the others percent-encoded."""
        return "&".join(f"{quote(k)}={v if k == hostile else quote(v)}" for k, v in values.items())

    base_url = url({k: quote(v) for k, v in path_base.items()})
    base_query = query(query_base)
    body = None if body_base is None else dumps(body_base)
    yield base_url, base_query, body, "baseline"
    for param in params:
        name = param["name"]
        for value in HOSTILE_QUERY if full else SHORT_QUERY:
            if param["in"] == "path":
                values = {k: quote(v) for k, v in path_base.items()} | {name: value or "%20"}
                yield url(values), base_query, body, f"path {name}={value[:20]}"
            elif param["in"] == "query":
                hostile_query = query({**query_base, name: value}, hostile=name)
                yield base_url, hostile_query, body, f"query {name}={value[:20]}"
    if schema is None:
        return
    for field, field_schema in body_fields(schema):
        kind = _kind(field_schema)
        corpus = {
            "string": HOSTILE_STRINGS,
            "number": HOSTILE_NUMBERS,
            "time": HOSTILE_TIMES,
            "json": HOSTILE_JSON,
            "array": [HOSTILE_STRINGS[0:1], [float("nan")], ["x"] * 10_000],
        }[kind] + WRONG_TYPES
        for value in corpus if full else [corpus[0], corpus[1], None]:
            yield (
                base_url,
                base_query,
                dumps(with_value(body_base, field, value)),
                f"body {'.'.join(map(str, field))} ({kind}) = {str(value)[:30]!r}",
            )


def _check(op: Operation, response: httpx.Response, what: str) -> str | None:
    status = response.status_code
    if status >= 500:
        return f"{op.label} {what}: {status} {response.text[:300]}"
    if status >= 400:
        media = response.headers.get("content-type", "")
        if op.path.startswith("/r/") and media.startswith("text/html"):
            return None
        if op.path.startswith(COMPAT):
            shaped = media.startswith("application/json") and response.json().get("status")
            return None if shaped == status else f"{op.label} {what}: {status} not Delighted's"
        if not media.startswith("application/problem+json") or "code" not in response.json():
            return f"{op.label} {what}: {status} is not problem+json: {media}"
    return None


#: One test per tag (responses, metrics, tickets …): the tenant and its resources are made
#: once per group rather than once per operation.
#: Deletions go last, so that the group's other operations still find the resources.
GROUPS: dict[str, list[Operation]] = {}
for _op in sorted(OPERATIONS, key=lambda o: o.method == "delete"):
    GROUPS.setdefault((_op.spec.get("tags") or ["public"])[0], []).append(_op)


def _auth(op: Operation, key: str) -> dict[str, str]:
    if op.path.startswith(COMPAT):  # as Delighted's SDKs send it
        return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}
    return bearer(key)


@pytest.mark.parametrize("group", sorted(GROUPS))
async def test_hostile_values_never_answer_5xx(
    group: str, world: World, tenant: TenantHandle
) -> None:
    failures: list[str] = []
    keys = {"secret": world.secret, "publishable": world.publishable, "none": None}
    for op in GROUPS[group]:
        for key_name, key in keys.items():
            for url, query, body, what in _cases(op, world, full=key_name == "secret"):
                headers = {} if key is None else _auth(op, key)
                if body is not None:
                    headers["Content-Type"] = "application/json"
                response = await tenant.client.request(
                    op.method.upper(),
                    url + (f"?{query}" if query else ""),
                    content=body,
                    headers=headers,
                )
                problem = _check(op, response, f"[{key_name} key] {what}")
                if problem:
                    failures.append(problem)
    assert not failures, f"{len(failures)} hostile requests misanswered:\n" + "\n".join(
        failures[:40]
    )
