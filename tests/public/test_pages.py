"""The one-tap answer page on a phone, in a real browser: a customer opens the link from
their message, taps a score, adds a comment, sends, and sees the thanks; in English and in
Chinese, with no layout break (no sideways scroll, every score in view and big enough to
tap, no text spilling out of its box, Chinese set in a CJK font rather than boxes).

Screenshots go to the test's tmp_path; with FEEDBACK_UPDATE_SCREENSHOTS=1 also to
docs/images/ (the ones docs/invitations.md shows)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.fixtures.auth import bearer
from tests.fixtures.browser import browser  # noqa: F401  (fixture)
from tests.fixtures.database import create_database, drop_database, template_name
from tests.fixtures.paths import ROOT
from tests.fixtures.processes import Processes

pytestmark = pytest.mark.browser

DOCS_IMAGES = ROOT / "docs" / "images"
UPDATE_SCREENSHOTS = os.environ.get("FEEDBACK_UPDATE_SCREENSHOTS") == "1"
# An iPhone 14's screen in CSS pixels. The test runs at its real density (3); the saved
# screenshots at 2, sharp enough for the docs at half the bytes.
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2 if UPDATE_SCREENSHOTS else 3,
}
#: The smallest tap target (WCAG 2.5.5, Apple's and Android's guidelines): 44×44 CSS px.
TAP = 44

QUESTION = {
    "en": "How likely are you to recommend Acme Deliveries to a friend or colleague?",
    "zh-CN": "您向朋友或同事推荐 Acme 快递的可能性有多大？",
}
FOLLOW_UP = {
    "en": "What is the main reason for your score?",
    "zh-CN": "您给出这个分数的主要原因是什么？",
}
THANK_YOU = {
    "en": "Thank you! Your answer helps us get better.",
    "zh-CN": "谢谢！您的回答能帮助我们做得更好。",
}
SURVEY = {
    "key": "delivery-nps",
    "kind": "nps",
    "question": QUESTION,
    "follow_up": FOLLOW_UP,
    "thank_you": THANK_YOU,
    "delay_minutes": 0,
}


@dataclass
class Case:
    locale: str
    tapped_in_message: int
    score: int
    comment: str
    ends: tuple[str, str]


CASES = {
    "en": Case(
        "en",
        9,
        10,
        "Arrived a day early, and the driver was very friendly.",
        ("Not likely", "Very likely"),
    ),
    "zh-CN": Case(
        "zh-CN",
        9,
        8,
        "送货很快，包装也很好，就是快递员来之前没有打电话。",
        ("不太可能", "非常可能"),
    ),
}


@dataclass
class Api:
    base: str
    admin: str


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One API process for the module, on a database of its own: what the customers answer
    is committed and must not show up in other tests' counts."""
    name = f"fbt_browser_{uuid.uuid4().hex[:8]}"
    url = create_database(name, template_name())
    processes = Processes(
        {**os.environ, "FEEDBACK_DATABASE_URL": url}, tmp_path_factory.mktemp("api")
    )
    try:
        admin = processes.tenant("Acme Deliveries")
        base = f"http://127.0.0.1:{processes.serve()}"
        with httpx.Client(base_url=base, headers=bearer(admin)) as client:
            assert client.post("/v1/surveys", json=SURVEY).status_code == 201
            # Quiet hours would hold an invitation made at night; these are answered now.
            rules = client.patch("/v1/contact-rules", json={"quiet_hours": None})
            assert rules.status_code == 200, rules.text
        yield Api(base, admin)
    finally:
        processes.stop_all()
        drop_database(name)


# Everything that would break the layout on a small screen, as a list of findings.
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const width = window.innerWidth;
  const root = document.documentElement;
  if (root.scrollWidth > width) problems.push(`scrolls sideways: ${root.scrollWidth} > ${width}`);
  const name = (el) => el.tagName.toLowerCase() + (el.className ? "." + el.className : "")
    + ` "${(el.textContent || "").trim().slice(0, 20)}"`;
  for (const el of document.body.querySelectorAll("*")) {
    const style = getComputedStyle(el);
    // The radio buttons themselves are invisible: their labels are the targets.
    if (style.display === "none" || style.opacity === "0" || style.display === "inline") continue;
    const box = el.getBoundingClientRect();
    if (box.left < 0 || box.right > width) {
      problems.push(`${name(el)} leaves the screen: ${box.left}..${box.right}`);
    }
    if (el.scrollWidth > el.clientWidth + 1) {
      problems.push(`${name(el)} overflows: ${el.scrollWidth} > ${el.clientWidth}`);
    }
    const parent = el.parentElement.getBoundingClientRect();
    if (box.left < parent.left - 0.5 || box.right > parent.right + 0.5) {
      problems.push(`${name(el)} sticks out of its container`);
    }
  }
  return problems;
}"""


async def assert_layout(page: Page) -> None:
    assert await page.evaluate(LAYOUT_PROBLEMS) == []


async def fonts_of(page: Page, selector: str) -> set[str]:
    """The fonts Chromium actually drew the element's text with."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("DOM.enable")
    await cdp.send("CSS.enable")
    root = await cdp.send("DOM.getDocument")
    node = await cdp.send(
        "DOM.querySelector", {"nodeId": root["root"]["nodeId"], "selector": selector}
    )
    used = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
    await cdp.detach()
    return {font["familyName"] for font in used["fonts"]}


async def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    shot = await page.screenshot(type="png", animations="disabled", caret="hide")
    (tmp_path / name).write_bytes(shot)
    if UPDATE_SCREENSHOTS:
        DOCS_IMAGES.mkdir(exist_ok=True)
        (DOCS_IMAGES / name).write_bytes(shot)


@pytest.mark.parametrize("locale", CASES)
async def test_answer_on_a_phone(
    browser: Browser,  # noqa: F811
    api: Api,
    locale: str,
    tmp_path: Path,
) -> None:
    case = CASES[locale]
    customer = f"c-{locale}"
    lang = locale.split("-")[0]
    async with httpx.AsyncClient(base_url=api.base, headers=bearer(api.admin)) as client:
        put = await client.put(f"/v1/customers/{customer}", json={"locale": locale})
        assert put.status_code in (200, 201), put.text
        made = await client.post(
            "/v1/invitations",
            json={"customer": customer, "survey": "delivery-nps", "channel": "sms"},
        )
        assert made.status_code == 201, made.text
        invitation = made.json()
        assert invitation["status"] == "scheduled", invitation
        # The link for one score in the message (`…/r/<token>?score=9`), on this server.
        landing = urlsplit(invitation["links"]["landing_url"])
        link = f"{api.base}{landing.path}?score={case.tapped_in_message}"

        context = await browser.new_context(**PHONE, locale=locale)
        try:
            page = await context.new_page()
            await page.goto(link)
            question = page.get_by_role("heading", level=1)
            await expect(question).to_have_text(QUESTION[locale])
            await expect(page.locator("html")).to_have_attribute("lang", lang)
            if lang == "zh":
                assert any("CJK" in font for font in await fonts_of(page, "h1")), "no CJK font"
            scores = page.get_by_role("radio")
            await expect(scores).to_have_count(11)
            await expect(
                page.get_by_role("radio", name=str(case.tapped_in_message))
            ).to_be_checked()
            for end in case.ends:
                await expect(page.get_by_text(end, exact=True)).to_be_visible()

            # Every score is a target a thumb can hit, all of it on the screen.
            for score in range(11):
                target = page.locator(".scale label").nth(score)
                await expect(target).to_have_text(str(score))
                await expect(target).to_be_in_viewport(ratio=1)
                box = await target.bounding_box()
                assert box is not None
                assert box["width"] >= TAP, (score, box)
                assert box["height"] >= TAP, (score, box)
            send = page.get_by_role("button", name=SEND[lang])
            send_box = await send.bounding_box()
            assert send_box is not None
            assert send_box["height"] >= TAP, send_box
            await assert_layout(page)

            # A changed mind: tap another score, write a comment, send.
            await page.locator(".scale label").nth(case.score).tap()
            await expect(page.get_by_role("radio", name=str(case.score))).to_be_checked()
            await expect(page.get_by_role("radio", checked=True)).to_have_count(1)
            comment = page.get_by_role("textbox", name=FOLLOW_UP[locale])
            await comment.tap()
            await comment.fill(case.comment)
            await comment.blur()  # the screenshot without the focus ring
            await assert_layout(page)
            await screenshot(page, f"one-tap-{lang}-question.png", tmp_path)
            await send.tap()

            await expect(page.get_by_role("heading", level=1)).to_have_text(THANK_YOU[locale])
            await assert_layout(page)
            await screenshot(page, f"one-tap-{lang}-thanks.png", tmp_path)
        finally:
            await context.close()

        listed = await client.get("/v1/responses", params={"customer": customer})
        assert listed.status_code == 200, listed.text
        (stored,) = listed.json()["items"]
        assert (stored["score"], stored["comment"]) == (case.score, case.comment)
        assert (stored["verified"], stored["invitation_id"]) == (True, invitation["id"])
        assert stored["channel"] == "sms"


SEND = {"en": "Send", "zh": "提交"}
