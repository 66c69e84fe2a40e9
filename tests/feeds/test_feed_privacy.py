"""The public feeds against a hostile reader: what one review shows must not depend on
which other reviews share its page, or a reader learns who wrote those."""

from __future__ import annotations

from datetime import timedelta

import pytest

from feedback_api.feeds import masking
from tests.feeds.test_feeds import NOW, open_feeds, publish, reviews
from tests.fixtures.auth import TenantHandle


async def test_masking_of_a_review_does_not_depend_on_its_page(tenant: TenantHandle) -> None:
    """A reader who can publish a review (any customer can) writes candidate names in it,
    then compares its masking on a page alone and on a page with the review of someone
    else: a word masked only beside that review is the other author's name."""
    await tenant.put("/v1/customers/target", json={"name": "Zephyrine Quillfeather"})
    slug = await open_feeds(tenant)
    await publish(
        tenant,
        comment="The box arrived late and the flat was empty, which I did not like.",
        customer="target",
        agent_ref="Ottoline",
        occurred_at=(NOW - timedelta(hours=2)).isoformat(),
    )
    probe = "Candidates: Quillfeather Zephyrine Ottoline Smithers Bartholomew."
    await publish(tenant, comment=probe, occurred_at=(NOW - timedelta(hours=1)).isoformat())

    alone = (await reviews(tenant, slug, limit=1))["items"][0]["comment"]
    beside = (await reviews(tenant, slug, limit=2))["items"][0]["comment"]
    assert alone == probe
    assert beside == alone, "the page's other author's name shows as masked words"


async def test_a_customers_name_with_an_apostrophe_or_hyphen_is_masked(
    tenant: TenantHandle,
) -> None:
    await tenant.put("/v1/customers/irish", json={"name": "Jean-Luc O'Brien-Nakamura"})
    slug = await open_feeds(tenant)
    text = "O’Brien-Nakamura here. Jean signed for it, ask o'brien or Nakamura if unsure."
    await publish(tenant, comment=text, customer="irish")
    shown = (await reviews(tenant, slug))["items"][0]["comment"]
    for secret in ("Brien", "brien", "Jean", "Nakamura"):
        assert secret not in shown, shown


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # French typography writes numbers with narrow no-break spaces (U+202F)
        ("Appelez le 06\u202f12\u202f34\u202f56\u202f78 svp", "34"),
        ("Tel 0171\u202f2345678", "0171"),
        ("carte 4111\u20091111\u20091111\u20091111", "1111"),
        ("Nummer 0171\u2007234\u20075678", "5678"),
        # addresses spelled to get past filters, as people do in public posts
        ("write to john.smith(at)gmail.com", "john.smith"),
        ("write to john.smith [at] gmail [dot] com", "john.smith"),
        ("write to john.smith\uff20gmail.com", "john.smith"),
        ("write to jane_doe @ gmail.com", "jane_doe"),
    ],
)
def test_spaced_numbers_and_spelled_out_addresses_are_masked(text: str, secret: str) -> None:
    assert secret not in masking.mask(text, region="FR")


@pytest.mark.parametrize(
    "text",
    [
        "from 2026\u201307\u201301 to 2026\u201307\u201309",
        "follow me, 5 (at) noon",
        "see me at the market.",
    ],
)
def test_dates_with_typographic_dashes_and_the_word_at_stay(text: str) -> None:
    assert masking.mask(text) == text
