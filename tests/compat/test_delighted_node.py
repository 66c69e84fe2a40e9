"""Delighted's official Node SDK (npm `delighted`, the latest 2.x) as a black box against a
live server: small Node programs written for Delighted, pointed at us by the SDK's own
connection options, print what they got as JSON for the asserts here."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.database import execute_sql
from tests.fixtures.processes import Processes
from tests.fixtures.processes import module_processes as module_processes  # the fixture

TENANT_NAME = "Moved from Delighted (Node)"

# How the SDK is pointed elsewhere (lib/Delighted.js: `host`, `port`, `base`, `scheme`;
# lib/Client.js prefixes every path with `base` and picks http or https by `scheme`).
# Every call returns a Promises/A+ thenable (lib/vendor/Thenable.js), so `await` works.
PRELUDE = """\
const delighted = require('delighted')(process.env.DELIGHTED_KEY, {
  host: '127.0.0.1',
  port: Number(process.env.DELIGHTED_PORT),
  base: '/compat/delighted/v1',
  scheme: 'http',
});
const input = JSON.parse(process.env.DELIGHTED_INPUT);
// lib/Errors.js: a DelightedError has a `type` and the body as JSON in `message`
async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    if (e.type === undefined) throw e;  // not the SDK's: a bug in the script, or no server
    return { type: e.type, body: e.message ? JSON.parse(e.message) : null,
             retryAfter: e.retryAfter === undefined ? null : e.retryAfter };
  }
  throw new Error('no error');
}
async function all(list, opts) {  // ListResource.autoPagingEach, following `Link`
  const items = [];
  await list.autoPagingEach((item) => { items.push(item); }, opts);
  return items;
}
"""


@pytest.fixture(scope="session")
def node_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`delighted@2` from npm, installed once per session outside the repository."""
    root = tmp_path_factory.mktemp("delighted-node")
    (root / "package.json").write_text('{"name": "delighted-node-check", "private": true}')
    installed = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "delighted@2"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if installed.returncode != 0:
        raise AssertionError(
            f"npm install delighted@2 failed:\n{installed.stdout}\n{installed.stderr}"
        )
    version = json.loads((root / "node_modules/delighted/package.json").read_text())["version"]
    assert version.startswith("2."), version
    return root


class Node:
    """Runs a script's body (an async function's, returning what to print) with `delighted`
    a client of one tenant and `input` the keyword arguments."""

    def __init__(self, root: Path, key: str, port: int) -> None:
        self.root, self.key, self.port = root, key, port

    def run(self, body: str, *, key: str | None = None, **given: Any) -> Any:
        source = f"{PRELUDE}\n(async () => {{\n{body}\n}})().then(\n"
        source += "  (r) => process.stdout.write(JSON.stringify(r === undefined ? null : r)),\n"
        source += "  (e) => { console.error(e); process.exit(1); });\n"
        script = self.root / f"s{hashlib.sha256(source.encode()).hexdigest()[:16]}.js"
        script.write_text(source)  # beside node_modules, where `require` looks
        done = subprocess.run(
            ["node", str(script)],
            cwd=self.root,
            env={
                **os.environ,
                "DELIGHTED_KEY": key or self.key,
                "DELIGHTED_PORT": str(self.port),
                "DELIGHTED_INPUT": json.dumps(given),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise AssertionError(f"node failed ({done.returncode}):\n{done.stderr}\n{source}")
        return json.loads(done.stdout)

    def ours(self, path: str, **params: Any) -> Any:
        """Our own API, with the same key as a Bearer token."""
        got = httpx.get(
            f"http://127.0.0.1:{self.port}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.key}"},
        )
        assert got.status_code == 200, got.text
        return got.json()


@pytest.fixture(scope="module")
def port(module_processes: Processes) -> int:
    return module_processes.serve()


@pytest.fixture
def node(
    module_processes: Processes, port: int, node_sdk: Path, database_url: str
) -> Iterator[Node]:
    """A new tenant's client, deleted afterwards with all it owns: its tickets would
    otherwise be due in the SLA checks of later tests on this database."""
    yield Node(node_sdk, module_processes.tenant(TENANT_NAME), port)
    execute_sql(database_url, f"DELETE FROM tenants WHERE name = '{TENANT_NAME}'")


def test_people_created_listed_page_by_page_and_erased(node: Node) -> None:
    got = node.run(
        """
        const ann = await delighted.person.create({
          email: 'ann@example.com', name: 'Ann', send: false,
          properties: { 'Customer Type': 'gold', locale: 'de' },
        });
        const again = await delighted.person.create({
          email: 'ann@example.com', name: 'Ann B', send: false });
        for (let i = 0; i < 24; i++) {
          await delighted.person.create({ email: `p${i}@example.com`, send: false });
        }
        const listed = await all(delighted.person.list({ per_page: 4 }));
        return { ann, again, listed };
        """
    )
    ann = got["ann"]
    assert isinstance(ann["id"], str)
    assert isinstance(ann["created_at"], int)
    assert (ann["email"], ann["name"], ann["survey_scheduled_at"]) == (
        "ann@example.com",
        "Ann",
        None,
    )
    assert (got["again"]["id"], got["again"]["name"]) == (ann["id"], "Ann B")  # updated
    listed = got["listed"]  # 7 pages of 4, the last short, joined through `Link`
    assert [p["email"] for p in listed] == ["ann@example.com"] + [
        f"p{i}@example.com" for i in range(24)
    ]
    assert len({p["id"] for p in listed}) == 25
    assert listed[0]["name"] == "Ann B"
    customer = node.ours("/v1/customers/ann@example.com")
    assert (customer["locale"], customer["attributes"]) == ("de", {"Customer_Type": "gold"})

    # lib/Resource.js: `{email: …}` becomes `/people/email%3Aann%40example.com`
    gone = node.run(
        """
        const deleted = await delighted.person.delete({ email: 'ann@example.com' });
        const left = await all(delighted.person.list({ per_page: 100 }));
        const again = await failure(delighted.person.delete({ email: 'ann@example.com' }));
        const byId = await delighted.person.delete({ id: input.id });
        return { deleted, left: left.map((p) => p.id), again, byId };
        """,
        id=listed[1]["id"],
    )
    assert gone["deleted"] == {"ok": True}
    assert len(gone["left"]) == 24
    assert ann["id"] not in gone["left"]
    assert gone["again"]["type"] == "GeneralAPIError"  # a 404: no such person any more
    assert gone["again"]["body"]["status"] == 404
    assert gone["byId"] == {"ok": True}


def test_survey_responses_recorded_expanded_retrieved_and_counted(node: Node) -> None:
    scores = [10, 9, 9, 8, 7, 6, 3, 0, 10, 10, 5, 9]
    got = node.run(
        """
        const people = [];
        for (let i = 0; i < 3; i++) {
          people.push(await delighted.person.create({
            email: `r${i}@example.com`, name: `R ${i}`, send: false }));
        }
        const made = [];
        for (const [i, score] of input.scores.entries()) {
          made.push(await delighted.surveyResponse.create({
            person: people[i % 3].id, score, comment: `answer ${i}` }));
        }
        const expanded = await delighted.surveyResponse.all({ expand: ['person'] });
        const paged = [];
        for (const page of [1, 2, 3]) {
          paged.push(await delighted.surveyResponse.all({ per_page: 5, page }));
        }
        const one = await delighted.surveyResponse.retrieve(made[3].id);
        const oneExpanded = await delighted.surveyResponse.retrieve(
          made[3].id, { expand: ['person'] });
        return {
          people, made, expanded, paged, one, oneExpanded,
          // lib/serializer.js makes an expanded `person` a Person resource
          personIsResource: expanded[0].person instanceof delighted.person.constructor,
          missing: await failure(delighted.surveyResponse.retrieve(
            '00000000-0000-0000-0000-000000000000')),
        };
        """,
        scores=scores,
    )
    people, made = got["people"], got["made"]
    assert [(r["score"], r["comment"]) for r in made] == [
        (s, f"answer {i}") for i, s in enumerate(scores)
    ]
    assert [r["person"] for r in made] == [people[i % 3]["id"] for i in range(12)]
    assert all(isinstance(r["id"], str) and isinstance(r["created_at"], int) for r in made)

    expanded = got["expanded"]  # `expand=person`: the SDK's querystring has no `[]`
    assert got["personIsResource"] is True
    assert [r["id"] for r in expanded] == [r["id"] for r in made]  # oldest first, 20 a page
    assert [r["person"]["email"] for r in expanded] == [f"r{i % 3}@example.com" for i in range(12)]
    assert expanded[0]["person"]["id"] == people[0]["id"]
    assert [len(p) for p in got["paged"]] == [5, 5, 2]
    assert [r["id"] for p in got["paged"] for r in p] == [r["id"] for r in made]

    one, one_expanded = got["one"], got["oneExpanded"]
    assert (one["id"], one["score"], one["comment"], one["person"]) == (
        made[3]["id"],
        8,
        "answer 3",
        people[0]["id"],
    )
    assert one_expanded["person"]["email"] == "r0@example.com"
    assert (got["missing"]["type"], got["missing"]["body"]["status"]) == ("GeneralAPIError", 404)

    metrics = node.run(
        """
        const hourAgo = new Date(Date.now() - 3600 * 1000);  // lib/utils/queryparams.js: Unix s
        return {
          all: await delighted.metrics.retrieve(),
          since: await delighted.metrics.retrieve({ since: hourAgo }),
          until: await delighted.metrics.retrieve({ until: hourAgo }),
        };
        """
    )
    promoters, passives, detractors = 6, 2, 4  # 10 9 9 9 10 10 | 8 7 | 6 3 0 5
    expected = {
        "response_count": 12,
        "nps": round(100 * (promoters - detractors) / 12),
        "promoter_count": promoters,
        "promoter_percent": 50,
        "passive_count": passives,
        "passive_percent": 17,
        "detractor_count": detractors,
        "detractor_percent": 33,
    }
    assert {k: metrics["all"][k] for k in expected} == expected
    assert {k: metrics["since"][k] for k in expected} == expected
    assert (metrics["until"]["response_count"], metrics["until"]["nps"]) == (0, None)
    ours = node.ours("/v1/metrics/nps")  # the same default window: the last 30 days
    assert ours["n"] == 12
    assert ours["categories"] == {"promoters": 6, "passives": 2, "detractors": 4}
    assert round(ours["value"]) == metrics["all"]["nps"] == 17


def test_errors_are_the_sdk_error_types(node: Node) -> None:
    got = node.run(
        """
        const person = await delighted.person.create({ email: 'e@example.com', send: false });
        return {
          score: await failure(delighted.surveyResponse.create({
            person: person.id, score: 11 })),
          nobody: await failure(delighted.surveyResponse.create({
            person: 'nobody', score: 5 })),
          email: await failure(delighted.person.create({ email: 'not an address' })),
          made: await delighted.surveyResponse.all(),
        };
        """
    )
    for name in ("score", "nobody", "email"):
        assert got[name]["type"] == "ResourceValidationError", got[name]
        assert got[name]["body"]["status"] == 422
    assert "score" in got["score"]["body"]["errors"]
    assert got["made"] == []  # nothing recorded

    stranger = node.run(
        "return await failure(delighted.person.create({ email: 'x@example.com' }));",
        key="fbk_sk_nope",
    )
    assert (stranger["type"], stranger["body"]["status"]) == ("AuthenticationError", 401)


def test_an_unsubscribe_cancels_the_survey_and_holds_back_the_next(node: Node) -> None:
    got = node.run(
        """
        const sent = await delighted.person.create({ email: 'u@example.com', delay: 3600 });
        const unsubscribed = await delighted.unsubscribe.create({ person_email: 'u@example.com' });
        const again = await delighted.person.create({ email: 'u@example.com', delay: 3600 });
        return { sent, unsubscribed, again, listed: await delighted.unsubscribe.all() };
        """
    )
    assert isinstance(got["sent"]["survey_scheduled_at"], int)
    assert got["unsubscribed"] == {"ok": True}
    assert got["again"]["id"] == got["sent"]["id"]
    assert got["again"]["survey_scheduled_at"] is None  # our contact rules: opted out
    (listed,) = got["listed"]
    assert (listed["person_id"], listed["email"]) == (got["sent"]["id"], "u@example.com")
    assert isinstance(listed["unsubscribed_at"], int)
    invitations = node.ours("/v1/invitations")["items"]  # the first cancelled, the next held
    assert sorted(i["status"] for i in invitations) == ["cancelled", "suppressed"]


def test_pending_survey_requests_are_cancelled(node: Node) -> None:
    got = node.run(
        """
        const sent = await delighted.person.create({ email: 'p+1@example.com', delay: 3600 });
        // lib/resources/SurveyRequest.js: `/people/p%2B1%40example.com/survey_requests/pending`
        const done = await delighted.surveyRequest.deletePending({ person_email: sent.email });
        const nobody = await failure(
          delighted.surveyRequest.deletePending({ person_email: 'nobody@example.com' }));
        return { sent, done, nobody };
        """
    )
    assert isinstance(got["sent"]["survey_scheduled_at"], int)
    assert got["done"] == {"ok": True}
    assert (got["nobody"]["type"], got["nobody"]["body"]["status"]) == ("GeneralAPIError", 404)
    invitations = node.ours("/v1/invitations")["items"]
    assert [i["status"] for i in invitations] == ["cancelled"]
