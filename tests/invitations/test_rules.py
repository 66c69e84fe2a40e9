"""Contact rules and one-tap tokens: pure, table-tested."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from feedback_api.invitations import tokens
from feedback_api.invitations.rules import Contact, Reason, blocked, spacing

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
NPS = uuid.UUID(int=1)
CSAT = uuid.UUID(int=2)


@pytest.mark.parametrize(
    ("contacts", "at", "reason", "next_at"),
    [
        ([], T0, None, None),
        # 30 days after the last ask is allowed, a second earlier is not.
        ([Contact(CSAT, T0)], T0 + 30 * DAY, None, None),
        (
            [Contact(CSAT, T0)],
            T0 + 30 * DAY - timedelta(seconds=1),
            Reason.FREQUENCY,
            T0 + 30 * DAY,
        ),
        # A scheduled invitation in the future blocks the days before it too.
        ([Contact(CSAT, T0 + 10 * DAY)], T0, Reason.FREQUENCY, T0 + 40 * DAY),
        ([Contact(CSAT, T0 + 30 * DAY)], T0, None, None),
        # The same survey within its 90-day cooldown: cooldown, and the later of both.
        ([Contact(NPS, T0)], T0 + 60 * DAY, Reason.COOLDOWN, T0 + 90 * DAY),
        ([Contact(NPS, T0)], T0 + 90 * DAY, None, None),
        # Clearing one clash can land on another: the answer skips both.
        (
            [Contact(CSAT, T0), Contact(CSAT, T0 + 29 * DAY)],
            T0 + DAY,
            Reason.FREQUENCY,
            T0 + 59 * DAY,
        ),
    ],
)
def test_spacing(
    contacts: list[Contact], at: datetime, reason: Reason | None, next_at: datetime | None
) -> None:
    decision = spacing(contacts, at, survey_id=NPS, frequency=30 * DAY, cooldown=90 * DAY)
    assert (decision.reason, decision.next_eligible_at) == (reason, next_at)
    assert decision.eligible is (reason is None)


def test_without_cooldown_the_same_survey_is_a_frequency_matter() -> None:
    decision = spacing(
        [Contact(NPS, T0)], T0 + DAY, survey_id=NPS, frequency=30 * DAY, cooldown=None
    )
    assert decision.reason is Reason.FREQUENCY


@pytest.mark.parametrize(
    ("blocks", "channel", "reason"),
    [
        ({}, "email", None),
        ({"*": "erased"}, "email", Reason.ERASED),
        ({"*": "unsubscribed", "sms": "bounced"}, "sms", Reason.UNSUBSCRIBED),
        ({"email": "bounced"}, "email", Reason.BOUNCED),
        ({"email": "bounced"}, "sms", None),
        ({"sms": "unsubscribed"}, "sms", Reason.CHANNEL_OPTED_OUT),
        ({"sms": "unsubscribed"}, None, None),
    ],
)
def test_blocks(blocks: dict[str, str], channel: str | None, reason: Reason | None) -> None:
    assert blocked(blocks, channel) is reason


SECRET = b"k" * 32
CLAIMS = tokens.Claims(uuid.uuid4(), uuid.uuid4(), 3, datetime(2026, 12, 1, tzinfo=UTC))


def test_token_round_trip_is_short_and_url_safe() -> None:
    token = tokens.sign(CLAIMS, SECRET)
    assert len(token) == 74
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert tokens.peek(token) == CLAIMS
    assert tokens.verify(token, SECRET, CLAIMS.expires_at - timedelta(seconds=1)) == CLAIMS


def test_token_expires_at_its_instant() -> None:
    token = tokens.sign(CLAIMS, SECRET)
    with pytest.raises(tokens.TokenExpired):
        tokens.verify(token, SECRET, CLAIMS.expires_at)


def test_every_altered_byte_is_refused() -> None:
    raw = base64.urlsafe_b64decode(tokens.sign(CLAIMS, SECRET) + "==")
    for index in range(len(raw)):
        altered = bytearray(raw)
        altered[index] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(altered)).rstrip(b"=").decode()
        with pytest.raises(tokens.TokenInvalid):
            tokens.verify(forged, SECRET, CLAIMS.expires_at - DAY)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "!!!!", "A" * 74, "A" * 75, "%00", "A" * 1_000_000, "é" * 74, "\x00" * 74],
)
def test_garbage_is_invalid_not_a_crash(token: str) -> None:
    with pytest.raises(tokens.TokenInvalid):
        tokens.peek(token)


def test_another_key_or_a_forged_expiry_is_invalid_not_expired() -> None:
    token = tokens.sign(CLAIMS, SECRET)
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify(token, b"x" * 32, CLAIMS.expires_at - DAY)
    later = tokens.Claims(CLAIMS.tenant_id, CLAIMS.invitation_id, 3, CLAIMS.expires_at + 30 * DAY)
    forged = tokens.sign(later, b"attacker")
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify(forged, SECRET, CLAIMS.expires_at + DAY)


def test_a_token_with_characters_base64_would_skip_is_invalid() -> None:
    # urlsafe_b64decode silently drops characters outside its alphabet; a token is only
    # ever what sign() writes, so a padded or decorated copy is not one.
    token = tokens.sign(CLAIMS, SECRET)
    for decorated in (token + "==", " " + token, token[:40] + "\n" + token[40:]):
        with pytest.raises(tokens.TokenInvalid):
            tokens.verify(decorated, SECRET, CLAIMS.expires_at - DAY)
