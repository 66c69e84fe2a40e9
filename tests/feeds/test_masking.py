"""Masking, as a table: each kind of personal data in a comment becomes its marker, and
what is not personal stays readable."""

from __future__ import annotations

import pytest

from feedback_api.feeds import masking
from feedback_api.feeds.detail import is_detailed

KNOWN = masking.known_names_pattern(
    masking.name_tokens(["Jonathan Smithers", "anna.mueller@example.com", "王伟", None])
)


@pytest.mark.parametrize(
    ("text", "secrets", "shown"),
    [
        ("Call +49 30 1234567 please", ["1234567", "+49"], "Call [phone] please"),
        ("ring (415) 555-0100 anytime", ["555-0100", "415"], "ring [phone] anytime"),
        ("mobile 0171 2345678.", ["2345678"], "mobile [phone]."),
        ("Mr Smith (+49 30 1234567) calls", ["1234567"], "Mr [name] ([phone]) calls"),
        ("微信 13812345678 联系我", ["13812345678"], "微信 [phone] 联系我"),
        ("mail jo.doe+x@example.com now", ["jo.doe", "example.com"], "mail [email] now"),
        ("see https://evil.example.com/a?b=1", ["evil", "example"], "see [link]"),
        ("or www.shop.de/x and shop.example.com/p", ["shop"], "or [link] and [link]"),
        ("follow @johnny_d on insta", ["johnny"], "follow [handle] on insta"),
        ("card 4111 1111 1111 1111 charged", ["4111"], "card [number] charged"),
        ("order #123456789 lost", ["123456789"], "order #[number] lost"),
        ("Mr Smith was kind", ["Smith"], "Mr [name] was kind"),
        ("mrs jones came", ["jones"], "mrs [name] came"),
        ("Frau Dr. Keller hat geholfen", ["Keller"], "Frau Dr. [name] hat geholfen"),
        ("Merci Madame Dupont", ["Dupont"], "Merci Madame [name]"),
        ("Anna Müller helped me", ["Anna", "Müller"], "[name] helped me"),
        ("Thanks to Thomas.", ["Thomas"], "Thanks to [name]."),
        ("王先生很好，谢谢王先生", ["王"], "[name]先生很好，谢谢[name]先生"),
        ("张伟先生和李女士", ["张伟", "李"], "[name]先生和[name]女士"),
        ("小王服务好", ["小王"], "[name]服务好"),
        (
            "Jonathan was rude, smithers too",
            ["Jonathan", "smithers"],
            "[name] was rude, [name] too",
        ),
        ("王伟也在", ["王伟"], "[name]也在"),
    ],
)
def test_personal_data_becomes_a_marker(text: str, secrets: list[str], shown: str) -> None:
    masked = masking.mask(text, known=KNOWN, region="DE")
    assert masked == shown
    for secret in secrets:
        assert secret not in masked


@pytest.mark.parametrize(
    "text",
    [
        "Waited 20 minutes, 3 times; 9/10 overall.",
        "Delivered on 2026-07-01, box was damaged.",
        "I miss the old packaging.",
        "Yes, the driver will call next time.",
        "<script>alert(1)</script>",
    ],
)
def test_what_is_not_personal_stays(text: str) -> None:
    assert masking.mask(text, known=KNOWN) == text


def test_a_comment_cannot_forge_or_break_a_marker() -> None:
    # private-use characters (the passes' internal markers) are dropped from the input
    assert masking.mask("a\ue001b\ue006c") == "abc"
    # a known name that is also a marker's word does not eat the marker
    link = masking.known_names_pattern(masking.name_tokens(["Link Email"]))
    assert masking.mask("see https://x.com, Link", known=link) == "see [link], [name]"


@pytest.mark.parametrize(
    ("text", "detailed"),
    [
        ("Good service, very good, thanks!", False),
        ("Sehr gut, danke", False),
        ("非常好，服务很满意，谢谢！", False),
        ("Great! [name] [name] [phone] [email] [link]", False),
        ("The driver called ahead and carried the heavy parcel upstairs", True),
        ("Zwei Stunden gewartet, niemand ging ans Telefon, Paket beschädigt", True),
        ("快递员提前打电话，把很重的箱子搬上了五楼", True),
    ],
)
def test_detailed_means_particulars(text: str, detailed: bool) -> None:
    assert is_detailed(text) is detailed
