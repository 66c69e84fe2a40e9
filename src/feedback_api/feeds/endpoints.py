"""The public feeds: `/public/{tenant_slug}/reviews` and `/public/{tenant_slug}/improvements`.

No key: anyone may read them, once the tenant turned `public_feeds` on. Browsers (an
`Accept` that asks for `text/html`) get a page; everything else JSON. Answers are cacheable
(`Cache-Control: public, max-age=60`, a strong `ETag`, `304` to `If-None-Match`) and vary
by `Accept` and `Accept-Language`. Every request counts against the client address's
`public_feed` rate limit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from feedback_api.db import SessionDep
from feedback_api.exceptions import FeedbackError
from feedback_api.feeds import pages
from feedback_api.feeds.schemas import ImprovementFeed, ReviewFeed, ReviewKind
from feedback_api.feeds.service import FeedNotFound
from feedback_api.feeds.service import feed as feed_service
from feedback_api.kit.http import client_ip
from feedback_api.kit.params import Cursor
from feedback_api.kit.schemas import problem_responses
from feedback_api.kit.types import Text
from feedback_api.ratelimits.limiter import Check, Limiter, client_subject
from feedback_api.ratelimits.policies import Policy

TenantSlug = Annotated[
    str,
    Text(min_length=1, max_length=63, pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"),
    Path(description="The tenant's slug."),
]
FeedLimit = Annotated[int, Query(ge=1, le=100, description="Page size (1–100).")]
Lang = Annotated[
    Annotated[str, Text(max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None,
    Query(
        description="The page's language (`en`, `zh`, `de`); default: from "
        "`Accept-Language`, else the tenant's locale."
    ),
]
CACHE_HEADERS = {
    "Cache-Control": "public, max-age=60",
    "Vary": "Accept, Accept-Language",
    "X-Content-Type-Options": "nosniff",
}
PAGE_HEADERS = {
    **CACHE_HEADERS,
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}
ERROR_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def wants_page(request: Request) -> bool:
    """A browser: its `Accept` asks for HTML ahead of JSON. `*/*` (curl, HTTP libraries)
    and `application/json` get JSON."""
    accept = request.headers.get("accept", "").lower()
    html = accept.find("text/html")
    if html < 0:
        return False
    json_at = accept.find("application/json")
    return json_at < 0 or html < json_at


def language(request: Request, lang: str | None, fallback: str | None) -> str:
    """`?lang=`, else the first of `Accept-Language` we have strings for (by q), else the
    tenant's locale, else English."""
    known = pages.languages()
    if lang is not None and lang.split("-")[0].lower() in known:
        return lang.split("-")[0].lower()
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(request.headers.get("accept-language", "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
            if not 0 < q <= 1:  # NaN too
                continue
        ranked.append((-q, i, tag.strip().split("-")[0].lower()))
    for _, _, primary in sorted(ranked):
        if primary in known:
            return primary
    primary = (fallback or "en").split("-")[0].lower()
    return primary if primary in known else "en"


def _message(request: Request, heading_key: str, status: int) -> HTMLResponse:
    lang = language(request, request.query_params.get("lang"), None)
    html = pages.render("feed_message", lang, heading=pages.strings(lang)[heading_key])
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **ERROR_HEADERS})


class FeedRoute(APIRoute):
    """A browser gets its errors as a page (the same page for an unknown slug and a tenant
    without the opt-in); other clients get the problem+json answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError:
                if not wants_page(request):
                    raise
                return _message(request, "feed_invalid", 422)
            except FeedbackError as exc:
                if not wants_page(request):
                    raise
                if isinstance(exc, FeedNotFound):
                    return _message(request, "feed_not_found", 404)
                if exc.status == 429:
                    page = _message(request, "busy", 429)
                    page.headers.update(exc.headers or {})
                    return page
                return _message(request, "feed_invalid", exc.status)

        return route


async def limit_feed(request: Request) -> None:
    """Every request counts against its client address, before the slug is looked up."""
    limiter: Limiter = request.app.state.limiter
    request.state.ratelimit = await limiter.take(
        [
            Check(
                Policy.PUBLIC_FEED,
                limiter.limit(Policy.PUBLIC_FEED),
                (client_subject(client_ip(request)),),
            )
        ]
    )


router = APIRouter(
    prefix="/public",
    tags=["public feeds"],
    route_class=FeedRoute,
    dependencies=[Depends(limit_feed)],
)


def _errors() -> dict[int | str, dict[str, Any]]:
    # No key is asked for: no 401.
    declared = problem_responses(404, html=True)
    declared.pop(401, None)
    return declared


def _ok(model: type[BaseModel], what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "model": model,
            "description": f"{what} as JSON, or for a browser as an HTML page.",
            "content": {"text/html": {"schema": {"type": "string"}}},
            "headers": {
                "ETag": {"description": "A strong hash of the body.", "schema": {"type": "string"}},
                "Cache-Control": {"schema": {"type": "string", "example": "public, max-age=60"}},
            },
        },
        304: {"description": "Not modified: the `If-None-Match` ETag is still current."},
        **_errors(),
    }


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    # Weak comparison, as RFC 9110 §13.1.2 says for If-None-Match.
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def _answer(request: Request, body: bytes, media_type: str, headers: dict[str, str]) -> Response:
    etag = _etag(body)
    if _not_modified(request, etag):
        return Response(status_code=304, headers={**headers, "ETag": etag})
    return Response(body, media_type=media_type, headers={**headers, "ETag": etag})


def _json(model: BaseModel) -> bytes:
    return json.dumps(
        model.model_dump(mode="json", by_alias=True), ensure_ascii=False, separators=(",", ":")
    ).encode()


def _next_url(request: Request, cursor: str | None, **params: str | None) -> str | None:
    if cursor is None:
        return None
    query = {k: v for k, v in params.items() if v is not None}
    return "?" + urlencode({**query, "cursor": cursor})


@router.get(
    "/{tenant_slug}/reviews",
    response_class=Response,
    responses=_ok(ReviewFeed, "One page of reviews"),
)
async def public_reviews(
    tenant_slug: TenantSlug,
    request: Request,
    session: SessionDep,
    kind: Annotated[ReviewKind | None, Query(description="Only this kind of question.")] = None,
    detailed: Annotated[
        bool,
        Query(
            description="Only comments that say something specific: at least 6 words after "
            "masking that are not generic praise or filler (docs/public-feeds.md)."
        ),
    ] = False,
    limit: FeedLimit = 20,
    cursor: Cursor = None,
    lang: Lang = None,
) -> Response:
    """The tenant's published reviews, newest first, with the tenant's public replies:
    for a "reviews" page on your site, or to show as it stands (browsers get HTML).

    Only responses whose customer consented to publication, never deleted or erased ones,
    and never one linked to a confirmed integrity flag (bought or fake). Nothing else is
    left out: a negative review is shown like any other. Each item has the score on its
    scale, the comment and reply with personal data masked (`[email]`, `[phone]`, `[link]`,
    `[handle]`, `[number]`, `[name]`), the touchpoint and the day; never who wrote it.
    404 (one answer for every case) unless the tenant turned `public_feeds` on."""
    feed = await feed_service.open(session, tenant_slug)
    result = await feed_service.reviews(
        session, feed, kind=kind, detailed=detailed, limit=limit, cursor=cursor
    )
    if not wants_page(request):
        return _answer(request, _json(result), "application/json", CACHE_HEADERS)
    page_lang = language(request, lang, feed.tenant.locale)
    t = pages.strings(page_lang)
    html = pages.render(
        "feed_reviews",
        page_lang,
        feed=result,
        heading=t["reviews_title"].format(name=result.tenant.name),
        reply_from=t["reply_from"].format(name=result.tenant.name),
        next_url=_next_url(
            request,
            result.next_cursor,
            kind=kind.value if kind else None,
            detailed="true" if detailed else None,
            limit=str(limit) if limit != 20 else None,
            lang=lang,
        ),
    )
    return _answer(request, html.encode(), "text/html; charset=utf-8", PAGE_HEADERS)


@router.get(
    "/{tenant_slug}/improvements",
    response_class=Response,
    responses=_ok(ImprovementFeed, "One page of improvements"),
)
async def public_improvements(
    tenant_slug: TenantSlug,
    request: Request,
    session: SessionDep,
    limit: FeedLimit = 20,
    cursor: Cursor = None,
    lang: Lang = None,
) -> Response:
    """ "You said, we did": the tenant's public improvement actions that are in progress
    or done, newest first. Each gives what customers said (how many comments mentioned
    the theme in the baseline window), the metric's baseline and target, and since the
    change its value with n, the change and a verdict against a control, measured as
    `GET /v1/actions/{id}/impact` does. The summary is masked like review comments.
    404 (one answer for every case) unless the tenant turned `public_feeds` on."""
    feed = await feed_service.open(session, tenant_slug)
    page_lang = language(request, lang, feed.tenant.locale)
    result = await feed_service.improvements(
        session, feed, limit=limit, cursor=cursor, lang=page_lang
    )
    if not wants_page(request):
        return _answer(request, _json(result), "application/json", CACHE_HEADERS)
    t = pages.strings(page_lang)
    html = pages.render(
        "feed_improvements",
        page_lang,
        feed=result,
        heading=t["improvements_title"].format(name=result.tenant.name),
        next_url=_next_url(
            request,
            result.next_cursor,
            limit=str(limit) if limit != 20 else None,
            lang=lang,
        ),
    )
    return _answer(request, html.encode(), "text/html; charset=utf-8", PAGE_HEADERS)
