"""A program written for Delighted, as a CRM's integration would be: it surveys customers,
records kiosk answers, tags the detractors for follow-up, reads the metrics and forwards an
opt-out. The only line added for the move is the base URL (from the environment here)."""

from __future__ import annotations

import json
import os
import sys
import warnings

with warnings.catch_warnings():  # "Delighted is being sunset on June 30, 2026"
    warnings.simplefilter("ignore", FutureWarning)
    import delighted  # type: ignore[import-untyped]

delighted.api_key = os.environ["DELIGHTED_API_KEY"]
delighted.api_base_url = os.environ["DELIGHTED_API_BASE_URL"]  # the move: this line

CUSTOMERS = [
    ("ana@example.com", "Ana", "gold"),
    ("ben@example.com", "Ben", "silver"),
    ("chen.li@example.com", "陈丽", "gold"),
    ("dora@example.com", "Dora", "bronze"),
    ("eli@example.com", "Eli", "silver"),
]
KIOSK_SCORES = [10, 9, 6, 3, 8]


def main() -> None:
    for email, name, plan in CUSTOMERS:
        delighted.Person.create(
            email=email, name=name, delay=3600, properties={"plan": plan, "locale": "en"}
        )
    people = {p.email: p for p in delighted.Person.list(per_page=2).auto_paging_iter()}
    for (email, _, _), score in zip(CUSTOMERS, KIOSK_SCORES, strict=True):
        delighted.SurveyResponse.create(
            person=people[email].id, score=score, comment=f"kiosk answer {score}"
        )
    followed_up = 0
    for response in delighted.SurveyResponse.all(expand=["person"], per_page=100):
        if response.score <= 6:
            response.tags = ["follow-up"]
            response.save()
            followed_up += 1
    metrics = delighted.Metrics.retrieve()
    delighted.Unsubscribe.create(person_email="dora@example.com")
    unsubscribed = [u.email for u in delighted.Unsubscribe.all()]
    sys.stdout.write(
        json.dumps(
            {
                "people": len(people),
                "followed_up": followed_up,
                "nps": metrics.nps,
                "response_count": metrics.response_count,
                "promoter_count": metrics.promoter_count,
                "detractor_count": metrics.detractor_count,
                "unsubscribed": unsubscribed,
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
