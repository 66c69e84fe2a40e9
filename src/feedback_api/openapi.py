from __future__ import annotations

import json

from feedback_api.app import create_app
from feedback_api.config import Settings


def render() -> str:
    """The OpenAPI document as committed in openapi/openapi.json (stable key order)."""
    app = create_app(Settings(database_url="postgresql+asyncpg://unused/unused"))
    return json.dumps(app.openapi(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
