"""Delighted's official Python SDK (4.2.0, its final release) as a black box against a live
server: a program written for Delighted runs after setting the base URL."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.database import execute_sql
from tests.fixtures.processes import Processes
from tests.fixtures.processes import module_processes as module_processes  # the fixture

with warnings.catch_warnings():  # "Delighted is being sunset on June 30, 2026"
    warnings.simplefilter("ignore", FutureWarning)
    import delighted  # type: ignore[import-untyped]


TENANT_NAME = "Moved from Delighted"


@pytest.fixture(scope="module")
def server(module_processes: Processes) -> str:
    return f"http://127.0.0.1:{module_processes.serve()}/compat/delighted/v1/"


@pytest.fixture
def sdk(module_processes: Processes, server: str, database_url: str) -> Iterator[Any]:
    """A client of a new tenant, deleted afterwards with all it owns: its tickets would
    otherwise be due in the SLA checks of later tests on this database."""
    key = module_processes.tenant(TENANT_NAME)
    yield delighted.Client(api_key=key, api_base_url=server)
    execute_sql(database_url, f"DELETE FROM tenants WHERE name = '{TENANT_NAME}'")


def test_people_created_listed_page_by_page_and_erased(sdk: Any) -> None:
    ann = delighted.Person.create(
        client=sdk,
        email="ann@example.com",
        name="Ann",
        send=False,
        properties={"Customer Type": "gold", "locale": "de"},
    )
    assert isinstance(ann.id, str)
    assert (ann.email, ann.name, ann.survey_scheduled_at) == ("ann@example.com", "Ann", None)
    assert isinstance(ann.created_at, int)
    again = delighted.Person.create(client=sdk, email="ann@example.com", name="Ann B", send=False)
    assert again.id == ann.id  # the same person, updated
    for i in range(44):
        delighted.Person.create(client=sdk, email=f"p{i}@example.com", send=False)
    listed = list(delighted.Person.list(client=sdk, per_page=10).auto_paging_iter())
    assert len(listed) == 45
    assert len({p.id for p in listed}) == 45
    assert listed[0].name == "Ann B"

    assert delighted.Person.delete(client=sdk, email="ann@example.com") == {"ok": True}
    left = list(delighted.Person.list(client=sdk, per_page=100).auto_paging_iter())
    assert ann.id not in {p.id for p in left}
    with pytest.raises(delighted.errors.GeneralAPIError):  # 404: no such person any more
        delighted.Person.delete(client=sdk, email="ann@example.com")


def test_a_survey_is_scheduled_unless_send_is_false(sdk: Any) -> None:
    sent = delighted.Person.create(client=sdk, email="bo@example.com", delay=60)
    assert isinstance(sent.survey_scheduled_at, int)
    sms = delighted.Person.create(client=sdk, phone_number="+4915112345678", channel="sms")
    assert sms.phone_number == "+4915112345678"


def test_errors_as_the_sdk_expects_them(sdk: Any) -> None:
    with pytest.raises(delighted.errors.ResourceValidationError):
        delighted.Person.create(client=sdk, email="not an address", send=False)
    with pytest.raises(delighted.errors.ResourceValidationError):
        delighted.Person.create(client=sdk, name="nobody", send=False)
    stranger = delighted.Client(api_key="fbk_sk_nope", api_base_url=sdk.api_base_url)
    with pytest.raises(delighted.errors.AuthenticationError):
        delighted.Person.create(client=stranger, email="x@example.com")


def test_survey_responses_recorded_paged_expanded_and_counted(sdk: Any) -> None:
    people = [
        delighted.Person.create(client=sdk, email=f"r{i}@example.com", name=f"R {i}", send=False)
        for i in range(3)
    ]
    scores = [10, 9, 9, 8, 7, 6, 3, 0, 10, 10, 5, 9]
    made = [
        delighted.SurveyResponse.create(
            client=sdk,
            person=people[i % 3].id,
            score=score,
            comment=f"answer {i}",
            person_properties={"Purchase Experience": "store"},
        )
        for i, score in enumerate(scores)
    ]
    assert all(isinstance(r.id, str) and isinstance(r.created_at, int) for r in made)
    assert made[0].person == people[0].id
    assert made[0].person_properties == {"Purchase_Experience": "store"}

    pages = [delighted.SurveyResponse.all(client=sdk, per_page=5, page=n) for n in (1, 2, 3)]
    assert [len(p) for p in pages] == [5, 5, 2]  # a short page is the last
    assert [r.id for p in pages for r in p] == [r.id for r in made]  # oldest first
    newest = delighted.SurveyResponse.all(client=sdk, order="desc", per_page=1)
    assert newest[0].id == made[-1].id
    mine = delighted.SurveyResponse.all(client=sdk, person_email="r1@example.com")
    assert {r.id for r in mine} == {r.id for i, r in enumerate(made) if i % 3 == 1}

    one = delighted.SurveyResponse.retrieve(made[3].id, client=sdk, expand=["person"])
    assert isinstance(one.person, delighted.Person)
    assert one.person.email == "r0@example.com"
    assert one.score == 8

    metrics = delighted.Metrics.retrieve(client=sdk)
    promoters, detractors = 6, 4  # 10 9 9 9 10 10 | 8 7 | 6 3 0 5
    assert metrics.response_count == 12
    assert (metrics.promoter_count, metrics.passive_count, metrics.detractor_count) == (
        promoters,
        2,
        detractors,
    )
    assert metrics.nps == round(100 * (promoters - detractors) / 12)
    assert metrics.promoter_percent == 50
    # what came in through the API is Delighted's `core` group; none of it is e-mail
    assert delighted.Metrics.retrieve(client=sdk, groups=["core"]).response_count == 12
    assert delighted.Metrics.retrieve(client=sdk, groups=["email"]).response_count == 0

    with pytest.raises(delighted.errors.ResourceValidationError):
        delighted.SurveyResponse.create(client=sdk, person=people[0].id, score=11)
    with pytest.raises(delighted.errors.ResourceValidationError):
        delighted.SurveyResponse.create(client=sdk, person="nobody", score=5)


def test_save_on_an_expanded_response_changes_tags_and_properties_only(sdk: Any) -> None:
    person = delighted.Person.create(client=sdk, email="s@example.com", send=False)
    made = delighted.SurveyResponse.create(client=sdk, person=person.id, score=4, comment="slow")
    response = delighted.SurveyResponse.retrieve(made.id, client=sdk, expand=["person"])
    assert isinstance(response.person, delighted.Person)
    response.tags = ["Delivery", "late"]
    response.person_properties = {"Order Value": "120"}
    saved = response.save(client=sdk)
    assert (saved.score, saved.comment) == (4, "slow")
    assert saved.tags == ["delivery", "late"]  # stored lowercased, as everywhere here
    assert saved.person_properties == {"Order_Value": "120"}
    again = delighted.SurveyResponse.retrieve(made.id, client=sdk)
    assert again.tags == ["delivery", "late"]
    assert again.person == person.id

    response.score = 10  # what the customer said does not change
    with pytest.raises(delighted.errors.ResourceValidationError):
        response.save(client=sdk)


def test_an_unsubscribe_cancels_the_scheduled_survey_and_holds_back_the_next(sdk: Any) -> None:
    sent = delighted.Person.create(client=sdk, email="u@example.com", delay=3600)
    assert sent.survey_scheduled_at is not None
    assert delighted.Unsubscribe.create(client=sdk, person_email="u@example.com") == {"ok": True}
    ours = sdk.api_base_url.replace("/compat/delighted/v1/", "/v1/invitations")
    listed = httpx.get(ours, headers={"Authorization": f"Bearer {sdk.api_key}"}).json()
    assert [i["status"] for i in listed["items"]] == ["cancelled"]
    again = delighted.Person.create(client=sdk, email="u@example.com", delay=3600)
    assert again.survey_scheduled_at is None  # our contact rules: opted out
    # an address never seen is opted out too (a CRM forwards all it has)
    assert delighted.Unsubscribe.create(client=sdk, person_email="new@example.com") == {"ok": True}
    assert delighted.Person.create(client=sdk, email="new@example.com").survey_scheduled_at is None
    # listed: the people we knew when they opted out (of the other only a keyed hash is kept)
    (listed,) = delighted.Unsubscribe.all(client=sdk)
    assert (listed.person_id, listed.email) == (sent.id, "u@example.com")
    assert delighted.Bounce.all(client=sdk) == []


def test_pending_survey_requests_are_cancelled(sdk: Any) -> None:
    delighted.Person.create(client=sdk, email="p+1@example.com", delay=3600)
    done = delighted.SurveyRequest.delete_pending(client=sdk, person_email="p+1@example.com")
    assert done == {"ok": True}
    ours = sdk.api_base_url.replace("/compat/delighted/v1/", "/v1/invitations")
    listed = httpx.get(ours, headers={"Authorization": f"Bearer {sdk.api_key}"}).json()
    assert [i["status"] for i in listed["items"]] == ["cancelled"]
    with pytest.raises(delighted.errors.GeneralAPIError):  # 404: nobody by that address
        delighted.SurveyRequest.delete_pending(client=sdk, person_email="nobody@example.com")


def test_auto_paging_recovers_from_our_rate_limit(sdk: Any, database_url: str) -> None:
    for i in range(25):
        delighted.Person.create(client=sdk, email=f"r{i}@example.com", send=False)
    execute_sql(  # as `PUT /v1/tenants/{id}/rate-limits` stores it: 3 requests per 2 s
        database_url,
        "UPDATE tenants SET rate_limits = "
        """'{"secret_key": {"quota": 3, "window_seconds": 2}}' """
        f"WHERE name = '{TENANT_NAME}'",
    )
    pages = delighted.Person.list(client=sdk, per_page=5)

    def spend() -> None:
        for _ in range(4):
            next(delighted.Person.list(client=sdk, per_page=5).auto_paging_iter())

    with pytest.raises(delighted.errors.TooManyRequestsError) as refused:
        spend()
    assert isinstance(refused.value.retry_after, int)
    assert 1 <= refused.value.retry_after <= 2
    listed = list(pages.auto_paging_iter(auto_handle_rate_limits=True))  # 5 pages, 3 per 2 s
    assert sorted(p.email for p in listed) == sorted(f"r{i}@example.com" for i in range(25))


def test_autopilot_members_are_surveyed_again_by_the_worker(
    sdk: Any, module_processes: Processes, database_url: str
) -> None:
    """Last in this module: the worker it starts stays until the module ends."""
    config = delighted.AutopilotConfiguration.retrieve("email", client=sdk)
    assert (config.platform_id, config.frequency) == ("email", 30 * 86_400)
    email = delighted.AutopilotMembership.forEmail()
    for i in range(5):
        joined = email.create(
            client=sdk, person_email=f"m{i}@example.com", properties={"plan": "gold"}
        )
        assert joined.person["email"] == f"m{i}@example.com"
    listed = list(email.list(client=sdk, per_page=2).auto_paging_iter())
    assert [m.person["email"] for m in listed] == [f"m{i}@example.com" for i in range(5)]
    first = {m.person["email"]: m.next_survey_request["id"] for m in listed}

    # A month on: their first round lies 40 days back and the next is due.
    execute_sql(
        database_url,
        "UPDATE invitations SET due_at = due_at - interval '40 days' WHERE tenant_id = "
        f"(SELECT id FROM tenants WHERE name = '{TENANT_NAME}');"
        "UPDATE autopilot_memberships SET next_at = now() WHERE tenant_id = "
        f"(SELECT id FROM tenants WHERE name = '{TENANT_NAME}')",
    )
    module_processes.start("worker", "worker")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = {
            m.person["email"]: (m.next_survey_request or {}).get("id")
            for m in email.list(client=sdk, per_page=100).auto_paging_iter()
        }
        if all(now[e] not in (None, first[e]) for e in first):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the worker scheduled no second round: {now}")

    removed = email.delete(client=sdk, person_email="m0@example.com")
    assert removed["person"]["email"] == "m0@example.com"
    left = [m.person["email"] for m in email.list(client=sdk).auto_paging_iter()]
    assert left == [f"m{i}@example.com" for i in range(1, 5)]
    sms = delighted.AutopilotMembership.forSms()
    assert list(sms.list(client=sdk).auto_paging_iter()) == []
