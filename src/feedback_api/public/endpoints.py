"""One-tap links: `/r/{token}`, where a customer answers an invitation without logging in.

The token is the credential (see invitations/tokens.py). Opening a link never records
anything: mail and chat apps prefetch every link in a message (11 of them for NPS) to scan
them, and a GET that recorded would store the last one fetched. The page shows the question
with the tapped score chosen; the answer is stored when the customer presses Send (a POST),
verified and linked to the invitation. Answering again replaces the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from feedback_api.db import SessionDep, SettingsDep
from feedback_api.exceptions import (
    FeedbackError,
    InvalidRequest,
    LinkExpired,
    LinkInvalid,
    RateLimited,
)
from feedback_api.invitations.answers import AnswerTarget
from feedback_api.invitations.answers import answers as answer_service
from feedback_api.invitations.schemas import Answer, AnswerResult, InvitationQuestion
from feedback_api.kit.http import client_ip
from feedback_api.kit.schemas import field_errors, problem_responses
from feedback_api.public import pages
from feedback_api.ratelimits.limiter import Check, Limiter, client_subject, digest
from feedback_api.ratelimits.policies import Policy
from feedback_api.responses.schemas import SCALE_LIMIT, Client, LinkToken

Token = Annotated[LinkToken, Path(description="The one-tap token (base64url).")]
#: A score as a form sends it: ASCII digits only (`"²".isdigit()` is true, `int("²")` fails),
#: short enough that `int()` is cheap; anything else is left for `Answer` to refuse.
_FORM_SCORE = re.compile(r"-?[0-9]{1,9}")
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    # The token is in the URL: do not hand it to other sites in Referer.
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}
FORM = "application/x-www-form-urlencoded"
ANSWER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": Answer.model_json_schema()},
            FORM: {"schema": Answer.model_json_schema()},
        },
    }
}


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()  # media types are case-insensitive
    return "application/json" in accept and "text/html" not in accept


def _wants_page(request: Request) -> bool:
    """Whether the caller is a browser on our pages, which gets HTML (errors included)."""
    if request.url.path.endswith("/unsubscribe"):
        return True
    if request.method == "POST":
        return _is_form(request)
    return not _wants_json(request)


class LinkRoute(APIRoute):
    """A link that is malformed (a token that is not base64url or too long, a `score` that
    is not an integer) answers a person with a page, not a JSON problem; JSON clients get
    the usual 422 problem."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RateLimited as exc:
                if not _wants_page(request):
                    raise
                page = _page(
                    pages.render("message", None, heading=pages.strings(None)[1]["busy"]), 429
                )
                page.headers.update(exc.headers or {})
                return page
            except RequestValidationError as exc:
                if not _wants_page(request):
                    raise
                token_bad = any(
                    tuple(e.get("loc", ()))[:2] == ("path", "token") for e in exc.errors()
                )
                heading = pages.strings(None)[1]["invalid"]
                return _page(
                    pages.render("message", None, heading=heading),
                    status.HTTP_404_NOT_FOUND if token_bad else 422,
                )

        return route


async def limit_link(request: Request) -> None:
    """Every request on a link counts against its client's address and against the link
    (before the token is even checked, so guessing tokens is slow too); the counters hold
    a digest of the token, never the token."""
    limiter: Limiter = request.app.state.limiter
    token = str(request.path_params.get("token", ""))
    request.state.ratelimit = await limiter.take(
        [
            Check(Policy.LINK, limiter.limit(Policy.LINK), (digest(token),)),
            Check(
                Policy.LINK_CLIENT,
                limiter.limit(Policy.LINK_CLIENT),
                (client_subject(client_ip(request)),),
            ),
        ]
    )


router = APIRouter(
    prefix="/r",
    tags=["one-tap links"],
    route_class=LinkRoute,
    dependencies=[Depends(limit_link)],
)


def _page(html: str, code: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=code, headers=PAGE_HEADERS)


def _error_page(exc: FeedbackError, locale: str | None) -> HTMLResponse:
    _, t = pages.strings(locale)
    heading = {
        LinkInvalid.code: t["invalid"],
        LinkExpired.code: t["closed"],
    }.get(exc.code, t["withdrawn"])
    return _page(pages.render("message", locale, heading=heading), exc.status)


def _answer_page(
    target: AnswerTarget, chosen: int | None, *, answered: bool, error: str | None = None
) -> HTMLResponse:
    q = answer_service.question(target, chosen)
    return _page(
        pages.render(
            "answer",
            q.locale,
            question=q.question,
            follow_up=q.follow_up,
            scores=range(q.scale_min, q.scale_max + 1),
            chosen=chosen,
            nps=q.kind.value == "nps",
            answered=answered,
            error=error,
            comment=None,
            asks_publish=q.asks_publish_consent,
        ),
        422 if error else 200,
    )


@router.get(
    "/{token}",
    response_class=HTMLResponse,
    responses={
        200: {
            "description": "The answer page (HTML), or with `Accept: application/json` the "
            "question for a page of your own.",
            "content": {"application/json": {"schema": InvitationQuestion.model_json_schema()}},
        },
        **problem_responses(404, 410, html=True),
    },
)
async def open_link(
    token: Token,
    request: Request,
    session: SessionDep,
    score: Annotated[
        int | None,
        Query(ge=-SCALE_LIMIT, le=SCALE_LIMIT, description="The score tapped in the message."),
    ] = None,
) -> Response:
    """The page a one-tap link opens: the question, with the tapped score chosen and a
    comment box. Records nothing (link scanners fetch it too). An invalid link is a 404,
    an expired or withdrawn one a 410, as a page or, for JSON clients, a problem."""
    try:
        target = await answer_service.open_for_answer(session, token, lock=False)
    except FeedbackError as exc:
        if _wants_json(request):
            raise
        return _error_page(exc, None)
    current = await answer_service.answer_of(session, target)
    if _wants_json(request):
        question = answer_service.question(target, current)
        return JSONResponse(question.model_dump(mode="json"), headers=PAGE_HEADERS)
    survey = target.survey
    chosen = (
        score if score is not None and survey.scale_min <= score <= survey.scale_max else current
    )
    return _answer_page(target, chosen, answered=current is not None)


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == FORM


async def _read_answer(request: Request) -> Answer:
    """The answer from a form post (the page) or JSON (your own page or app)."""
    body = await request.body()
    try:
        if _is_form(request):
            fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            data: dict[str, Any] = {
                "score": fields.get("score"),
                "comment": fields.get("comment") or None,
                # An unticked checkbox is not sent at all: absent is no.
                "publish_consent": fields.get("publish") == "yes",
            }
            if data["score"] is not None and _FORM_SCORE.fullmatch(data["score"]):
                data["score"] = int(data["score"])
            return Answer.model_validate(data)
        return Answer.model_validate_json(body or b"{}")
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_url=False), ["body"])
        raise InvalidRequest("the answer is not valid", errors=errors) from None


@router.post(
    "/{token}",
    responses={
        200: {
            "model": AnswerResult,
            "description": "Stored (or replaced an earlier answer): the result as JSON, or "
            "for a form post the thank-you page.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **problem_responses(404, 410, body=True, html=True),
    },
    openapi_extra=ANSWER_BODY,
)
async def answer_link(
    token: Token, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """Record the answer: `score`, optional `comment` and `tags`, as a form post (the page
    answers with a thank-you page) or JSON (answers with the result). The response is
    verified and linked to the invitation; answering again replaces it (last answer wins),
    so a customer can correct a mistaken tap and nothing is counted twice."""
    is_form = _is_form(request)
    try:
        target = await answer_service.open_for_answer(session, token)
    except FeedbackError as exc:
        if not is_form:
            raise
        return _error_page(exc, None)
    try:
        answer = await _read_answer(request)
        _, result = await answer_service.answer(
            session,
            target,
            answer,
            channel=target.invitation.channel,
            api_key_id=None,
            settings=settings,
            client=Client(
                request.client.host if request.client else None,
                request.headers.get("user-agent"),
            ),
        )
    except FeedbackError as exc:
        if is_form and isinstance(exc, InvalidRequest):
            _, t = pages.strings(target.invitation.locale)
            return _answer_page(target, None, answered=False, error=t["pick"])
        if not is_form:
            raise
        return _error_page(exc, target.invitation.locale)
    if not is_form:
        return JSONResponse(
            result.model_dump(mode="json"),
            status_code=status.HTTP_200_OK if result.updated else status.HTTP_201_CREATED,
            headers=PAGE_HEADERS,
        )
    _, t = pages.strings(target.invitation.locale)
    thanks = answer_service.thank_you(target) or t["thanks"]
    return _page(
        pages.render("message", target.invitation.locale, heading=thanks, note=t["change"])
    )


@router.get(
    "/{token}/unsubscribe",
    response_class=HTMLResponse,
    responses=problem_responses(404, 410, html=True),
)
async def unsubscribe_page(token: Token, session: SessionDep) -> Response:
    """Asks to confirm (a prefetch must not unsubscribe anyone)."""
    try:
        target = await answer_service.open_for_answer(session, token, lock=False)
    except FeedbackError as exc:
        return _error_page(exc, None)
    return _page(pages.render("unsubscribe", target.invitation.locale))


@router.post(
    "/{token}/unsubscribe",
    response_class=HTMLResponse,
    responses=problem_responses(404, 410, html=True),
)
async def unsubscribe_link(token: Token, session: SessionDep) -> Response:
    """Opt the customer out of all invitations (as `POST /v1/customers/{ref}/unsubscribe`);
    also what RFC 8058 one-click `List-Unsubscribe-Post` sends."""
    try:
        target = await answer_service.open_for_answer(session, token, lock=False, closed_ok=True)
    except FeedbackError as exc:
        return _error_page(exc, None)
    await answer_service.unsubscribe_by_link(session, target)
    locale = target.invitation.locale
    _, t = pages.strings(locale)
    return _page(pages.render("message", locale, heading=t["unsubscribed"]))
