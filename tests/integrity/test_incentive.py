"""The incentive-wording signal on crafted texts, Chinese and English."""

from __future__ import annotations

import pytest

from feedback_api.integrity.incentive import incentive_signal


@pytest.mark.parametrize(
    "text",
    [
        "五星好评返现5元",
        "给个好评送小礼品",
        "５星好评，返红包",  # full-width digit
        "晒图好评有礼",
        "Leave 5 stars for a free drink!",
        "five-star review = 10% discount next time",
        "Get a free coffee when you rate us 5 stars",
        "Cashback for every review",
        "We got a voucher in exchange for a positive review",
    ],
)
def test_rewards_tied_to_ratings_are_strong(text: str) -> None:
    signal = incentive_signal(text)
    assert signal.strength == 0.9, text
    assert signal.matches


@pytest.mark.parametrize("text", ["The gift wrapping was lovely", "退款很快，红包也到了"])
def test_reward_words_alone_are_weak(text: str) -> None:
    assert incentive_signal(text).strength == 0.4


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "Delivery was late and the box was damaged",
        "快递很快，包装完好，五星推荐",  # a rating word without a reward
        "Great service, 5 stars",
        "客服态度很好",
    ],
)
def test_honest_texts_carry_no_signal(text: str | None) -> None:
    assert incentive_signal(text).strength == 0.0
