"""The theme dictionary, and the classification of every comment with it: at ingest (a
`responses_stored` subscriber, in the storing transaction) and, after each change of the
dictionary, a background re-classification of the stored comments (`insights.reclassify`,
in chunks, resumable)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import structlog
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import InvalidRequest, NotFound, TooManyTerms, TooManyThemes
from feedback_api.insights.classifier import MAX_AMBIGUITY, Classifier, OverBudget, ThemeTerms
from feedback_api.insights.repository import ThemeRepository
from feedback_api.insights.schemas import (
    MAX_DICTIONARY_TERMS,
    MAX_THEMES,
    CandidateAccept,
    Classification,
    ThemeList,
    ThemeRead,
    ThemeUpsert,
)
from feedback_api.jobs.errors import RetryLater
from feedback_api.jobs.service import job as job_service
from feedback_api.models import Theme
from feedback_api.responses.hooks import StoredResponse

logger = structlog.get_logger(__name__)
OVER_BUDGET = Counter(
    "feedback_comments_over_classification_budget_total",
    "Comments left unclassified because classifying them would take too long",
)

RECLASSIFY_JOB = "insights.reclassify"
RECLASSIFY_CHUNK = 5000
SETTLE_SECONDS = 5.0  # how long a pass waits for older classifying transactions to end
# Compiled dictionaries by (tenant, version): a version never changes once made, so an
# entry is never stale, only superseded. Bounded: a process serving many tenants keeps
# the most recently compiled ones.
_CACHE_SIZE = 256
_compiled: dict[tuple[UUID, int], Classifier] = {}


def _terms(theme: Theme) -> ThemeTerms:
    return ThemeTerms(theme.key, theme.keywords, theme.aliases, theme.negative_keywords)


async def _classifier(repo: ThemeRepository, tenant_id: UUID, version: int) -> Classifier:
    found = _compiled.get((tenant_id, version))
    if found is None:
        found = Classifier(_terms(t) for t in await repo.all(tenant_id))
        if len(_compiled) >= _CACHE_SIZE:
            _compiled.pop(next(iter(_compiled)))
        _compiled[(tenant_id, version)] = found
    return found


async def current_classifier(session: AsyncSession, tenant_id: UUID) -> Classifier:
    """The tenant's dictionary as it is now, compiled (from the cache when it can be)."""
    repo = ThemeRepository(session)
    state = await repo.state(tenant_id)
    return await _classifier(repo, tenant_id, state.version if state else 0)


def _themes(classifier: Classifier, comment: str | None) -> list[str]:
    try:
        return classifier.themes(comment)
    except OverBudget:
        # A text built to make classification slow (a dictionary's terms repeated): left
        # unclassified rather than holding up the process (insights/classifier.py).
        OVER_BUDGET.inc()
        logger.warning("comment_over_classification_budget", length=len(comment or ""))
        return []


async def _settle(repo: ThemeRepository, tenant_id: UUID) -> None:
    """Wait until the transactions classifying for the tenant now have ended. The pass
    calls this after the dictionary's new version committed, so every transaction that
    read an older one is among them (it marked itself before reading, `version_for_ingest`)
    or has committed, and then the pass sees its comment. Ingest transactions last
    milliseconds; one that stays open longer (an idle client holding a transaction) puts
    the pass off, to be tried again, rather than holding this transaction open."""
    waiting = await repo.classifying(tenant_id)
    deadline = time.monotonic() + SETTLE_SECONDS
    while waiting and await repo.still_classifying(tenant_id, waiting):
        if time.monotonic() > deadline:
            raise RetryLater(
                f"{len(waiting)} transactions still classify with an older dictionary",
                SETTLE_SECONDS,
            )
        await asyncio.sleep(0.01)


def wants(stored: StoredResponse) -> bool:
    """What classification needs: a comment, or a response whose earlier comment may have
    had mentions to drop."""
    return bool(stored.comment) or stored.replaced


#: Where `needs_classifying` leaves the version it read for `on_stored` (same transaction).
_VERSION = "insights.ingest_version"


async def needs_classifying(
    session: AsyncSession, tenant_id: UUID, items: Sequence[StoredResponse]
) -> bool:
    """The subscriber's gate: marks the transaction as classifying (see
    `version_for_ingest`) and says whether there is anything to find. A tenant whose
    dictionary has no term (most, and every new one) pays one round trip, no savepoint; a
    changed answer always goes on (its earlier mentions may have to go)."""
    repo = ThemeRepository(session)
    version = await repo.version_for_ingest(tenant_id)
    if version is None:
        return False  # never had a dictionary: nothing to find
    session.info[_VERSION] = (tenant_id, version)
    return bool(await _classifier(repo, tenant_id, version)) or any(i.replaced for i in items)


async def on_stored(
    session: AsyncSession, tenant_id: UUID, items: Sequence[StoredResponse]
) -> None:
    """The `responses_stored` subscriber: the themes each new or changed comment mentions,
    in the storing transaction (so they are there when the response is acknowledged)."""
    repo = ThemeRepository(session)
    read = session.info.pop(_VERSION, None)
    version = read[1] if read and read[0] == tenant_id else await repo.version_for_ingest(tenant_id)
    if version is None:
        return  # never had a dictionary: nothing to find
    classifier = await _classifier(repo, tenant_id, version)
    mentions = [(i.response_id, key) for i in items for key in _themes(classifier, i.comment)]
    replaced = [i.response_id for i in items if i.replaced]
    if replaced:
        await repo.replace_mentions(tenant_id, replaced, mentions)
    else:
        await repo.add_mentions(tenant_id, mentions)


class ThemeService:
    async def seed_defaults(self, session: AsyncSession, tenant_id: UUID) -> None:
        """A new tenant's (empty) dictionary, version 0."""
        await ThemeRepository(session).create_state(tenant_id)

    async def list(self, session: AsyncSession, tenant_id: UUID) -> ThemeList:
        repo = ThemeRepository(session)
        themes = await repo.all(tenant_id)
        return ThemeList(
            items=[ThemeRead.model_validate(t) for t in themes],
            classification=await self._classification(repo, tenant_id),
        )

    async def get(self, session: AsyncSession, tenant_id: UUID, key: str) -> ThemeRead:
        theme = await ThemeRepository(session).get(tenant_id, key)
        if theme is None:
            raise NotFound(f"no theme {key!r}")
        return ThemeRead.model_validate(theme)

    async def put(
        self,
        session: AsyncSession,
        tenant_id: UUID,
        key: str,
        body: ThemeUpsert,
        *,
        origin: str = "manual",
    ) -> tuple[ThemeRead, bool]:
        """Create or replace a theme; returns it and whether it was created. Stored comments
        are re-classified in the background."""
        repo = ThemeRepository(session)
        await self._changed(session, repo, tenant_id)
        if await repo.get(tenant_id, key) is None and await repo.count(tenant_id) >= MAX_THEMES:
            raise TooManyThemes(f"a dictionary holds at most {MAX_THEMES} themes")
        terms = len(body.keywords) + len(body.aliases) + len(body.negative_keywords)
        if terms + await repo.terms_besides(tenant_id, key) > MAX_DICTIONARY_TERMS:
            raise TooManyTerms(
                f"a dictionary holds at most {MAX_DICTIONARY_TERMS} terms (keywords, aliases "
                "and negative keywords of all themes)"
            )
        await self._check_ambiguity(repo, tenant_id, key, body)
        created = await repo.upsert(tenant_id, key, body.model_dump(), origin=origin)
        return await self.get(session, tenant_id, key), created

    async def accept(
        self, session: AsyncSession, tenant_id: UUID, body: CandidateAccept
    ) -> tuple[ThemeRead, bool]:
        """A discovered phrase into the dictionary: a new theme (origin `discovered`) with it
        as a keyword, or it added to the keywords of the existing theme `key`."""
        existing = await ThemeRepository(session).get(tenant_id, body.key)
        fields: dict[str, Any] = {"names": body.names}
        if existing is not None:
            fields = {
                "names": existing.names,
                "keywords": existing.keywords,
                "aliases": existing.aliases,
                "negative_keywords": existing.negative_keywords,
            }
        fields["keywords"] = [*fields.get("keywords", []), body.phrase, *body.keywords]
        try:
            upsert = ThemeUpsert.model_validate(fields)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise InvalidRequest.at(("body", "keywords"), error["type"], error["msg"]) from None
        origin = existing.origin if existing is not None else "discovered"
        return await self.put(session, tenant_id, body.key, upsert, origin=origin)

    async def _check_ambiguity(
        self, repo: ThemeRepository, tenant_id: UUID, key: str, body: ThemeUpsert
    ) -> None:
        """Refuse a dictionary in which one walk over a comment would meet more than
        MAX_AMBIGUITY terms (terms that are prefixes of each other, many times over)."""
        others = [_terms(t) for t in await repo.all(tenant_id) if t.key != key]
        mine = ThemeTerms(key, body.keywords, body.aliases, body.negative_keywords)
        if Classifier([*others, mine]).ambiguity > MAX_AMBIGUITY:
            raise InvalidRequest.at(
                ("body", "keywords"),
                "too_ambiguous",
                f"with this theme, one place in a comment could match more than "
                f"{MAX_AMBIGUITY} terms (terms that extend each other): use fewer",
            )

    async def delete(self, session: AsyncSession, tenant_id: UUID, key: str) -> None:
        repo = ThemeRepository(session)
        await self._changed(session, repo, tenant_id)
        if not await repo.delete(tenant_id, key):
            raise NotFound(f"no theme {key!r}")

    async def _changed(self, session: AsyncSession, repo: ThemeRepository, tenant_id: UUID) -> None:
        # First, so that two changes of one dictionary queue on its row in this order.
        await repo.bump(tenant_id)
        await job_service.enqueue(session, RECLASSIFY_JOB, tenant_id=tenant_id)

    async def _classification(self, repo: ThemeRepository, tenant_id: UUID) -> Classification:
        state = await repo.state(tenant_id)
        version = state.version if state else 0
        classified = state.classified_version if state else 0
        return Classification(
            dictionary_version=version,
            classified_version=classified,
            up_to_date=classified >= version,
        )

    async def reclassify_step(
        self, session: AsyncSession, tenant_id: UUID, chunk: int = RECLASSIFY_CHUNK
    ) -> bool:
        """One bounded transaction of the re-classification: the next `chunk` responses
        in id order get the current dictionary's themes. True when every stored comment is
        classified with the current version. A change mid-pass starts the pass again, with
        the new version; the progress is in the database (resumable after a crash).

        A pass starts only once no transaction that may have read an older version is still
        classifying (`_settle`): its comment would commit after the pass went by."""
        repo = ThemeRepository(session)
        seen = await repo.state(tenant_id)
        if seen is None or seen.classified_version >= seen.version:
            return True
        if seen.pass_version != seen.version:
            await _settle(repo, tenant_id)
        # Several jobs of one tenant (one per change of the dictionary) would take turns on
        # this row, each re-reading what the last one wrote. While another transaction holds
        # it, this job stops: the holder carries the pass on. It is another job's step, which
        # took the row after the latest change committed (a change holds the row until it
        # commits) and so reads that version, and whose job goes on until the dictionary is up
        # to date; or a change, whose own job follows its commit.
        state = await repo.state(tenant_id, lock=True, skip_locked=True)
        if state is None or state.classified_version >= state.version:
            return True
        version, cursor = state.version, state.pass_cursor
        if state.pass_version != version:
            if version != seen.version:
                return False  # changed again while settling: settle for the newer one
            cursor = None  # a new version: from the start
        rows = await repo.comments_after(tenant_id, cursor, chunk)
        if not rows:
            await repo.save_pass(tenant_id, pass_version=version, cursor=None, classified=version)
            return True
        classifier = await _classifier(repo, tenant_id, version)
        mentions = [(rid, key) for rid, comment in rows for key in _themes(classifier, comment)]
        await repo.replace_mentions(tenant_id, [rid for rid, _ in rows], mentions)
        # A short chunk reached the end of what was stored: comments stored since were
        # classified at ingest with this version (or a newer one, which restarts the pass),
        # so the pass is done. Waiting for an empty chunk instead would chase a tenant's
        # ingest for ever and never report the dictionary up to date.
        done = len(rows) < chunk
        await repo.save_pass(
            tenant_id,
            pass_version=version,
            cursor=None if done else rows[-1][0],
            classified=version if done else state.classified_version,
        )
        return done

    async def forget(
        self, session: AsyncSession, tenant_id: UUID, response_ids: Sequence[UUID]
    ) -> None:
        """Erasure: the mentions found in erased comments go with them."""
        await ThemeRepository(session).forget(tenant_id, response_ids)


theme = ThemeService()
