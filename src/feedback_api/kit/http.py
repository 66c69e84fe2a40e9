from __future__ import annotations

from fastapi.responses import Response
from pydantic import BaseModel


def json_response(status: int, model: BaseModel) -> Response:
    """Serialise with pydantic-core directly, for endpoints whose status depends on the
    outcome (201 created / 200 already there)."""
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")
