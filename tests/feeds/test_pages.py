"""The public feeds' pages in a real browser, on a phone (390 px) and a desktop (1280 px):
no sideways scroll, long words and links in comments wrap inside their box, Chinese is set
in a CJK font, a hostile comment shows as text, and the "Older" link pages on.

Chromium's requests are answered by the app in this process (Playwright's request
routing), so the page comes with the headers the API sends (its Content-Security-Policy
included) and the test's data needs no server of its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, Route

from tests.feeds.test_feeds import open_feeds, publish, reply
from tests.fixtures.auth import TenantHandle
from tests.fixtures.browser import browser  # noqa: F401  (fixture)
from tests.public.test_pages import assert_layout, fonts_of

pytestmark = pytest.mark.browser

ORIGIN = "http://feeds.test"
NOW = datetime.now(UTC)
SIZES: dict[str, dict[str, Any]] = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 3,
    },
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"
LONG_WORD = "Sooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo slow"


def through(client: httpx.AsyncClient) -> Any:
    async def handle(route: Route) -> None:
        request = route.request
        answer = await client.get(
            request.url.removeprefix(ORIGIN),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        )
        await route.fulfill(
            status=answer.status_code, headers=dict(answer.headers), body=answer.content
        )

    return handle


@pytest.mark.parametrize("size", SIZES)
async def test_the_reviews_page_reads_well_at_every_width(
    browser: Browser,  # noqa: F811
    tenant: TenantHandle,
    size: str,
) -> None:
    slug = await open_feeds(tenant)
    for i in range(21):  # more than a page, older than the ones looked at
        when = (NOW - timedelta(days=2, hours=i)).isoformat()
        await publish(tenant, score=8, comment=f"Older review number {i}", occurred_at=when)
    await publish(tenant, score=0, comment=HOSTILE)
    await publish(tenant, score=3, comment=LONG_WORD + " https://" + "x" * 120 + ".example.com")
    answered = await publish(
        tenant,
        score=9,
        comment="送货很快，包装也很好，就是快递员来之前没有打电话。" * 3,
        touchpoint="delivery",
    )
    await reply(tenant, answered, "谢谢您的反馈！我们已经提醒快递员提前打电话。")
    alerts: list[str] = []
    context = await browser.new_context(**SIZES[size], locale="zh-CN")
    try:
        page: Page = await context.new_page()
        page.on("dialog", lambda dialog: alerts.append(dialog.message))
        await page.route(f"{ORIGIN}/**", through(tenant.client))
        answer = await page.goto(f"{ORIGIN}/public/{slug}/reviews")
        assert answer is not None
        assert answer.status == 200
        assert await page.locator("h1").inner_text() == "Acme 的用户评价"
        # the hostile comment is text on the page, and nothing ran
        assert await page.get_by_text("<script>alert(1)</script>", exact=False).count() == 1
        assert alerts == []
        assert await page.locator("script, img").count() == 0
        await assert_layout(page)
        assert "Noto Sans CJK SC" in await fonts_of(page, ".reply .text") or any(
            "CJK" in f for f in await fonts_of(page, ".reply .text")
        )
        assert await page.locator(".reply .text").inner_text() == (
            "谢谢您的反馈！我们已经提醒快递员提前打电话。"
        )
        # the next page, by the link: the older reviews, and still no layout break
        assert await page.locator("li.item").count() == 20
        await page.get_by_role("link", name="更早 →").click()
        await page.wait_for_load_state()
        assert await page.locator("li.item").count() == 4
        assert await page.get_by_text("Older review number 20", exact=True).count() == 1
        await assert_layout(page)
    finally:
        await context.close()


@pytest.mark.parametrize("size", SIZES)
async def test_the_improvements_page_reads_well_at_every_width(
    browser: Browser,  # noqa: F811
    tenant: TenantHandle,
    size: str,
) -> None:
    from tests.feeds.test_feeds import create_action

    slug = await open_feeds(tenant)
    await create_action(
        tenant,
        title="Wir rufen an, bevor ein Paket später kommt: "
        "Zustellungsbenachrichtigungsverbesserungsprogramm",
        public_summary="Sie sagten uns, dass Pakete zu spät kamen. Jetzt rufen wir an.",
    )
    context = await browser.new_context(**SIZES[size], locale="de-DE")
    try:
        page = await context.new_page()
        await page.route(f"{ORIGIN}/**", through(tenant.client))
        answer = await page.goto(f"{ORIGIN}/public/{slug}/improvements")
        assert answer is not None
        assert answer.status == 200
        assert await page.locator("h1").inner_text() == "Sie sagten, wir handelten: Acme"
        assert await page.locator("li.item").count() == 1
        assert await page.get_by_text("In Arbeit").count() == 1
        await assert_layout(page)
    finally:
        await context.close()
