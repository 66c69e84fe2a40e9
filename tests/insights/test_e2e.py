"""The real API and worker processes: a dictionary change re-classifies the stored
comments in the background while new ones are classified as they arrive."""

from __future__ import annotations

import random
from uuid import UUID

import asyncpg
import httpx

from feedback_api.insights.classifier import Classifier, ThemeTerms
from tests.fixtures.auth import bearer
from tests.fixtures.processes import Processes
from tests.fixtures.processes import processes as processes  # the fixture
from tests.fixtures.waiting import until

COMMENTS = [
    "试衣间太暗了",
    "镜子照着显胖，灯光太暗",
    "the fitting room was far too dark",
    "快递太慢了",
    "delivery took a week",
    "great service",
    "",
    "还行",
    "the mirror app keeps crashing",
    "Ｆｉｔｔｉｎｇ ｒｏｏｍ lights were broken",
]
LIGHT = {
    "keywords": ["fitting room", "试衣间", "镜子", "mirror"],
    "negative_keywords": ["mirror app"],
}


def _dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


async def test_a_dictionary_change_reaches_every_stored_comment(
    processes: Processes, database_url: str
) -> None:
    admin = bearer(processes.tenant("Shop"))
    base = f"http://127.0.0.1:{processes.serve()}"
    processes.start("worker", "worker")
    processes.wait_for("worker", "worker_started")
    rng = random.Random(7)
    comments = [rng.choice(COMMENTS) for _ in range(3000)]
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as api:
        for first in range(0, len(comments), 1000):
            items = [
                {"kind": "nps", "score": rng.randint(0, 10), "channel": "app", "comment": c}
                if c
                else {"kind": "nps", "score": 5, "channel": "app"}
                for c in comments[first : first + 1000]
            ]
            stored = await api.post("/v1/responses/batch", json={"items": items})
            assert stored.json()["created"] == 1000, stored.text
        tenant_id = (await api.get("/v1/tenant")).json()["id"]

        assert (await api.put("/v1/themes/light", json=LIGHT)).status_code == 201
        late = await api.post(
            "/v1/responses", json={"kind": "nps", "score": 2, "channel": "app", "comment": "镜子脏"}
        )
        assert late.status_code == 201

        async def up_to_date() -> bool:
            body = (await api.get("/v1/themes")).json()
            return bool(body["classification"]["up_to_date"])

        await until(up_to_date, within=120, every=0.2)

    expected = Classifier([ThemeTerms("light", LIGHT["keywords"], (), LIGHT["negative_keywords"])])
    want = sum(1 for c in comments if expected.themes(c)) + 1  # and the late one
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        got = await conn.fetchval(
            "SELECT count(*) FROM response_themes WHERE tenant_id = $1 AND theme_key = 'light'",
            UUID(tenant_id),
        )
    finally:
        await conn.close()
    assert got == want
    assert "Traceback" not in processes.log("worker")
