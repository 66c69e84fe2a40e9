"""What the OpenAPI document says beyond what FastAPI derives: short operation ids (the
endpoint function's name, stable for generated clients) and links from each create
operation to the operations on what it created (OpenAPI 3.1 `links`), which client
generators and the stateful fuzzing in tests/system/test_contract_fuzz.py follow."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


def operation_id(route: APIRoute) -> str:
    return route.name


def _to(operation: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation, "parameters": parameters}


_BY_ID = {"response_id": "$response.body#/id"}
_TICKET = {"ticket_id": "$response.body#/id"}
_KEY = {"key": "$response.body#/key"}
_RULE = {"rule_id": "$response.body#/id"}
_INVITATION = {"invitation_id": "$response.body#/id"}
_ENDPOINT = {"endpoint_id": "$response.body#/id"}
_FLAG = {"flag_id": "$response.body#/id"}
_CUSTOMER = {"external_ref": "$request.path.external_ref"}

#: operationId → status → link name → target. Each created thing links to reading it,
#: changing it and removing it.
LINKS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "create_response": {
        status: {
            "GetResponse": _to("get_response", **_BY_ID),
            "UpdateResponse": _to("update_response", **_BY_ID),
        }
        for status in ("200", "201")
    },
    "upsert_customer": {
        status: {
            "GetCustomer": _to("get_customer", **_CUSTOMER),
            "ExportCustomer": _to("export_customer", **_CUSTOMER),
            "Eligibility": _to("eligibility", **_CUSTOMER),
            "Unsubscribe": _to("unsubscribe", **_CUSTOMER),
            "EraseCustomer": _to("erase_customer", **_CUSTOMER),
        }
        for status in ("200", "201")
    },
    "create_ticket": {
        "201": {
            "GetTicket": _to("get_ticket", **_TICKET),
            "UpdateTicket": _to("update_ticket", **_TICKET),
            "AddNote": _to("add_ticket_note", **_TICKET),
            "AddReply": _to("add_ticket_reply", **_TICKET),
            "Timeline": _to("ticket_timeline", **_TICKET),
        }
    },
    "create_ticket_rule": {
        "201": {
            "GetRule": _to("get_ticket_rule", **_RULE),
            "UpdateRule": _to("update_ticket_rule", **_RULE),
            "DeleteRule": _to("delete_ticket_rule", **_RULE),
        }
    },
    "create_sla_policy": {
        "201": {
            "GetPolicy": _to("get_sla_policy", **_KEY),
            "UpdatePolicy": _to("update_sla_policy", **_KEY),
            "DeletePolicy": _to("delete_sla_policy", **_KEY),
        }
    },
    "create_survey": {
        "201": {
            "GetSurvey": _to("get_survey", **_KEY),
            "UpdateSurvey": _to("update_survey", **_KEY),
        }
    },
    "create_invitation": {
        status: {
            "GetInvitation": _to("get_invitation", **_INVITATION),
            "CancelInvitation": _to("cancel_invitation", **_INVITATION),
            "ReportDelivery": _to("report_delivery", **_INVITATION),
        }
        for status in ("200", "201")
    },
    "create_webhook_endpoint": {
        "201": {
            "GetEndpoint": _to("get_webhook_endpoint", **_ENDPOINT),
            "UpdateEndpoint": _to("update_webhook_endpoint", **_ENDPOINT),
            "Deliveries": _to("list_webhook_deliveries", **_ENDPOINT),
            "RotateSecret": _to("rotate_webhook_secret", **_ENDPOINT),
            "DeleteEndpoint": _to("delete_webhook_endpoint", **_ENDPOINT),
        }
    },
    "create_api_key": {"201": {"RevokeKey": _to("revoke_api_key", key_id="$response.body#/id")}},
    "create_flag": {
        "201": {
            "GetFlag": _to("get_flag", **_FLAG),
            "ConfirmFlag": _to("confirm_flag", **_FLAG),
            "DismissFlag": _to("dismiss_flag", **_FLAG),
        }
    },
}


_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _json_schema_bounds(node: Any) -> None:
    """Two spellings Pydantic gets wrong for clients, fixed in place:

    - the bounds of a number it validates in steps (kit.types.Int: a before-validator, then
      strict int, then the field's bounds) come out under their Python names (`ge`, `le`);
      JSON Schema calls them `minimum`, `maximum` …;
    - a dict whose keys have a pattern comes out as `patternProperties`, which lets any key
      that does not match through with any value; what the code enforces is "every key
      matches, every value is …": `propertyNames` and `additionalProperties`."""
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            for python, json_name in _BOUNDS.items():
                if python in node:
                    node[json_name] = node.pop(python)
        patterns = node.get("patternProperties")
        if node.get("type") == "object" and isinstance(patterns, dict) and len(patterns) == 1:
            ((key_pattern, value_schema),) = patterns.items()
            del node["patternProperties"]
            node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": key_pattern}
            node["additionalProperties"] = value_schema
        for value in node.values():
            _json_schema_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _json_schema_bounds(value)


def _hoist_defs(node: Any, components: dict[str, Any]) -> None:
    """A model's own JSON schema embedded by hand (`Answer.model_json_schema()` for the
    one-tap form) carries its `$defs` and refers to them locally, which nothing outside that
    fragment resolves: move them to components/schemas and point the references there."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            components.setdefault(name, definition)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for value in list(node.values()):
            _hoist_defs(value, components)
    elif isinstance(node, list):
        for value in node:
            _hoist_defs(value, components)


def install(app: FastAPI) -> None:
    """Serve the document with the links added (built once and cached, like FastAPI's)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _hoist_defs(schema["paths"], schema["components"]["schemas"])
            _hoist_defs(schema["components"]["schemas"], schema["components"]["schemas"])
            _json_schema_bounds(schema)
            for operations in schema["paths"].values():
                for operation in operations.values():
                    for status, links in LINKS.get(operation.get("operationId", ""), {}).items():
                        operation["responses"][status]["links"] = links
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]
