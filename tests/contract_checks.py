"""Schemathesis hooks for `make fuzz` and tests/system/test_contract_fuzz.py (loaded through
SCHEMATHESIS_HOOKS=tests.contract_checks). See docs/errors.md, "The contract, fuzzed".

`positive_data_acceptance` (schema-valid data must not answer 4xx) is replaced by
`constraints_are_in_the_contract`, which is stricter where it matters and honest where a
rule cannot be written in JSON Schema. A schema-valid request may be refused only with a
code of a documented rule (`future_time`, `score_out_of_range`, `unknown_survey`,
`invalid_cursor` …); a refusal with one of Pydantic's own codes (`string_pattern_mismatch`,
`int_parsing`, `missing` …), the generic `value_error`, a 400, or a `validation_error`
without field errors means the code enforces a constraint the contract does not state.
"""

from __future__ import annotations

import json
from typing import Any, get_args

import schemathesis
from pydantic_core.core_schema import ErrorType
from schemathesis import Case, CheckContext, Response
from schemathesis.specs.openapi.checks import is_unexpected_http_status_case

#: Pydantic's built-in error types: a schema-valid request refused with one of these met a
#: constraint the contract does not state.
UNSTATED = frozenset(get_args(ErrorType)) | {"value_error", "assertion_error"}
#: Statuses that say nothing about the request's shape.
NEUTRAL = {401, 403, 404, 409, 410, 429}


def _problem(response: Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@schemathesis.check
def constraints_are_in_the_contract(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if is_unexpected_http_status_case(case):
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in NEUTRAL:
        return None
    problem = _problem(response)
    code = problem.get("code")
    errors = problem.get("errors") or []
    if status == 422 and code not in (None, "validation_error"):
        return None  # a rule of its own, e.g. invalid_cursor, idempotency_key_reused
    unstated = sorted({e.get("code") for e in errors if e.get("code") in UNSTATED})
    if status == 422 and errors and not unstated:
        return None  # every field error names a documented rule
    raise AssertionError(
        f"schema-valid request refused with {status} {code}"
        + (f", unstated constraints {unstated}" if unstated else "")
        + f": {problem.get('detail', '')}\n"
        "State the constraint in the contract, or give the rule its own code "
        "(PydanticCustomError) and document it in docs/errors.md"
    )
