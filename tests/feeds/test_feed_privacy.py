"""The public feeds against a hostile reader: what one review shows must not depend on
which other reviews share its page, or a reader learns who wrote those."""

from __future__ import annotations

from datetime import timedelta

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
