"""A web app's page submits ratings with a publishable key, in a real browser: the API
(`feedback-api serve`) on one port, the shop's page on another origin, and a page on a third
origin that the key does not allow. Only a browser enforces CORS, so only a browser can show
that the answers the API gives let the one page in and keep the other out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage

from tests.fixtures.auth import bearer
from tests.fixtures.browser import Site, browser, static_site  # noqa: F401  (fixtures)
from tests.fixtures.processes import Processes
from tests.fixtures.processes import own_processes as own_processes  # the fixture

pytestmark = pytest.mark.browser

# The page sends what a web app's rating widget would: a JSON body with the key in
# Authorization, so the browser must ask first (a preflight) and may send it only if the
# API says this origin may. The outcome is written into the page for the test to read.
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<link rel="icon" href="data:,"></head>
<body><p id="outcome">sending</p><script>
const out = document.getElementById("outcome");
fetch(API + PATH, {
  method: METHOD,
  headers: {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"},
  body: BODY === null ? undefined : JSON.stringify(BODY),
}).then(async (answer) => {
  out.textContent = await answer.text();
  out.dataset.status = String(answer.status);
}).catch((error) => {
  out.textContent = error.name + ": " + error.message;
  out.dataset.status = "rejected";
});
</script></body></html>"""


PREFLIGHT_REFUSED = "Response to preflight request doesn't pass access control check"


def page_html(
    api: str, key: str, body: dict[str, Any] | None, method: str = "POST", path: str = ""
) -> str:
    values = {
        "API": api,
        "PATH": path or "/v1/responses",
        "METHOD": method,
        "KEY": key,
        "BODY": body,
    }
    consts = "".join(f"const {name} = {json.dumps(value)};\n" for name, value in values.items())
    return PAGE.replace("<script>\n", f"<script>\n{consts}", 1)


def rating(comment: str) -> dict[str, Any]:
    return {"kind": "csat", "score": 5, "channel": "web", "comment": comment}


async def outcome(chromium: Browser, url: str) -> tuple[str, str, list[str]]:
    """Load `url` in a fresh context; the page's fetch outcome (status or "rejected", text)
    and what the browser logged."""
    context = await chromium.new_context()
    try:
        page = await context.new_page()
        logged: list[str] = []
        cors_error = asyncio.Event()

        def log(message: ConsoleMessage) -> None:
            logged.append(message.text)
            if "blocked by CORS policy" in message.text:
                cors_error.set()

        page.on("console", log)
        await page.goto(url)
        result = page.locator("#outcome[data-status]")
        await result.wait_for()
        status = await result.get_attribute("data-status")
        assert status is not None
        if status == "rejected":  # the console message may come just after the rejection
            await asyncio.wait_for(cors_error.wait(), timeout=10)
        return status, await result.inner_text(), logged
    finally:
        await context.close()


def refusal(logged: list[str]) -> str:
    """The browser's CORS error: the request was refused at its preflight (never sent) or
    after it was sent (the answer had no `Access-Control-Allow-Origin`)."""
    (line,) = [line for line in logged if "blocked by CORS policy" in line]
    return "preflight" if PREFLIGHT_REFUSED in line else "answer"


async def comments(api: httpx.AsyncClient) -> list[str]:
    answer = await api.get("/v1/responses")
    assert answer.status_code == 200, answer.text
    return [item["comment"] for item in answer.json()["items"]]


async def test_a_page_from_an_allowed_origin_submits_others_are_refused(
    browser: Browser,  # noqa: F811
    own_processes: Processes,
    static_site: Callable[[], Site],  # noqa: F811
) -> None:
    admin = own_processes.tenant("Shop")
    base = f"http://127.0.0.1:{own_processes.serve()}"
    shop, elsewhere = static_site(), static_site()
    async with httpx.AsyncClient(base_url=base, headers=bearer(admin)) as api:
        created = await api.post(
            "/v1/api-keys",
            json={"name": "shop web", "publishable": True, "allowed_origins": [shop.origin]},
        )
        assert created.status_code == 201, created.text
        key = created.json()
        assert key["allowed_origins"] == [shop.origin]

        # The shop's page: preflight passes, the rating is stored and the page reads 201.
        url = shop.page("/rate", page_html(base, key["secret"], rating("from the shop")))
        status, text, _ = await outcome(browser, url)
        assert status == "201", text
        stored = json.loads(text)
        assert (stored["score"], stored["comment"]) == (5, "from the shop")
        assert await comments(api) == ["from the shop"]
        got = await api.get(f"/v1/responses/{stored['id']}")
        assert got.status_code == 200, got.text
        assert got.json()["channel"] == "web"

        # The shop's origin with another key, one that lists no origin: the preflight passes
        # (it cannot know the key), the rating is refused when the key is known, and the
        # page cannot read the refusal.
        app_key = await api.post("/v1/api-keys", json={"name": "app", "publishable": True})
        assert app_key.status_code == 201, app_key.text
        url = shop.page("/other-key", page_html(base, app_key.json()["secret"], rating("key")))
        status, text, logged = await outcome(browser, url)
        assert (status, text) == ("rejected", "TypeError: Failed to fetch")
        assert refusal(logged) == "answer"
        assert await comments(api) == ["from the shop"]

        # The same page on an origin the key does not allow: the browser refuses the
        # fetch (a CORS error, nothing the page can read) and nothing is stored.
        url = elsewhere.page("/rate", page_html(base, key["secret"], rating("from elsewhere")))
        status, text, logged = await outcome(browser, url)
        assert (status, text) == ("rejected", "TypeError: Failed to fetch")
        assert refusal(logged) == "preflight"
        assert await comments(api) == ["from the shop"]

        # Allowing that origin later (PATCH) lets its page in.
        allowed = [shop.origin, elsewhere.origin]
        changed = await api.patch(f"/v1/api-keys/{key['id']}", json={"allowed_origins": allowed})
        assert changed.status_code == 200, changed.text
        assert changed.json()["allowed_origins"] == allowed
        status, text, _ = await outcome(browser, url)
        assert status == "201", text
        assert sorted(await comments(api)) == ["from elsewhere", "from the shop"]

        # Secret-key routes never answer CORS: even the allowed page cannot read with one.
        url = shop.page("/read", page_html(base, admin, None, method="GET", path="/v1/api-keys"))
        status, text, logged = await outcome(browser, url)
        assert (status, text) == ("rejected", "TypeError: Failed to fetch")
        assert refusal(logged) == "preflight"
