"""The ``feedback-api`` command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer

from feedback_api.auth.scopes import ALL_SCOPES
from feedback_api.config import Settings, get_settings
from feedback_api.db import (
    asyncpg_dsn,
    create_engine,
    create_sessionmaker,
    start_embedded_server,
)

app = typer.Typer(help="feedback-api: a headless customer-feedback service.", no_args_is_help=True)
tenant_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)
key_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
import_app = typer.Typer(help="Bring a history in from another system.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(key_app, name="key")
app.add_typer(import_app, name="import")


def _database_url(settings: Settings) -> tuple[str, bool]:
    """The configured URL, or the embedded server's (started if needed)."""
    if settings.database_url:
        return settings.database_url, False
    return start_embedded_server(settings.data_dir), True


def _run_db(settings: Settings, url: str, work: Any) -> Any:
    async def runner() -> Any:
        engine = create_engine(url, settings)
        try:
            async with create_sessionmaker(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(runner())


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


async def _create_tenant(
    session: Any, name: str, slug: str | None, timezone: str, locale: str
) -> dict[str, Any]:
    from feedback_api.keys.schemas import ApiKeyCreated
    from feedback_api.tenants.schemas import TenantRead
    from feedback_api.tenants.service import tenant as tenant_service

    tenant, key, secret = await tenant_service.create(
        session, name=name, slug=slug, timezone=timezone, locale=locale
    )
    return {
        "tenant": TenantRead.model_validate(tenant).model_dump(mode="json"),
        "api_key": ApiKeyCreated.of(key, secret).model_dump(mode="json"),
    }


@app.command()
def migrate() -> None:
    """Apply database migrations up to the latest."""
    from feedback_api.migrate import upgrade

    settings = get_settings()
    url, _ = _database_url(settings)
    upgrade(url)
    typer.echo("database is up to date")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API processes.")] = 1,
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Also run background jobs in each API process. Default: on with the "
            "embedded database, off otherwise (run `feedback-api worker` instead).",
        ),
    ] = None,
) -> None:
    """Run the API. Without FEEDBACK_DATABASE_URL, starts an embedded PostgreSQL."""
    import uvicorn

    from feedback_api.migrate import upgrade

    settings = get_settings()
    url, embedded = _database_url(settings)
    upgrade(url)
    if embedded:
        _bootstrap_default_tenant(settings, url)
        # API processes inherit the URL and attach to the server this process started.
        os.environ["FEEDBACK_DATABASE_URL"] = url
    if worker if worker is not None else embedded:
        os.environ["FEEDBACK_RUN_WORKER"] = "true"
    get_settings.cache_clear()  # the app (in this process or forked) reads the above
    typer.echo(f"feedback-api listening on http://{host}:{port} (docs: /docs)", err=True)
    # uvicorn re-raises SIGTERM after its graceful shutdown; with this handler that ends in
    # a normal exit, so atexit hooks run and the embedded PostgreSQL is stopped cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "feedback_api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


def _bootstrap_default_tenant(settings: Settings, url: str) -> None:
    from feedback_api.tenants.service import tenant as tenant_service

    async def work(session: Any) -> dict[str, Any] | None:
        if await tenant_service.any_exists(session):
            return None
        return await _create_tenant(session, "Default", "default", "UTC", "en")

    created = _run_db(settings, url, work)
    if created is not None:
        secret = created["api_key"]["secret"]
        typer.echo(
            "\nCreated tenant 'default'. Its admin key (every scope) is shown only now:\n\n"
            f"    {secret}\n\n"
            f"    export FEEDBACK_KEY={secret}\n",
            err=True,
        )


@app.command("worker")
def run_worker(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Jobs run at once.")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            envvar="FEEDBACK_WORKER_METRICS_PORT",
            help="Serve this worker's Prometheus metrics (job and failure counters) on "
            "127.0.0.1:<port>/metrics. Queue gauges are on the API's /metrics.",
        ),
    ] = None,
) -> None:
    """Run background jobs (webhook deliveries, retention, …) until SIGTERM or Ctrl-C.

    Run as many as you like against one database: they share the work without overlap."""
    from prometheus_client import start_http_server

    from feedback_api.logging import configure_logging
    from feedback_api.worker import Worker

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    url, _ = _database_url(settings)
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1")

    async def main() -> None:
        engine = create_engine(url, settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await Worker(
                create_sessionmaker(engine),
                settings,
                listen_dsn=asyncpg_dsn(url),
                concurrency=concurrency,
            ).run(stop)
        finally:
            await engine.dispose()

    asyncio.run(main())


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per queue.")] = False,
) -> None:
    """Every background queue: depth, the age of its oldest item and its state (ok, warn,
    stuck; thresholds in docs/operations.md). Exits 1 when a queue is stuck, 0 otherwise,
    so it can serve as a check."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from feedback_api.health.queues import snapshot

    settings = get_settings()
    url, _ = _database_url(settings)
    rows = _run_db(settings, url, snapshot)
    if as_json:
        for row in rows:
            typer.echo(json.dumps({**asdict(row), "state": row.state}))
    else:
        table = Table("queue", "key", "depth", "oldest (s)", "state")
        for row in rows:
            oldest = "" if row.oldest_seconds is None else f"{row.oldest_seconds:.1f}"
            table.add_row(row.queue, row.key, str(row.depth), oldest, row.state)
        Console().print(table)
    if any(row.state == "stuck" for row in rows):
        raise typer.Exit(1)


@app.command("dev-receiver")
def dev_receiver(
    secret: Annotated[str, typer.Option(help="The endpoint's whsec_… secret.")],
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1.")] = 9000,
) -> None:
    """A local webhook receiver for development: verifies each delivery's Standard Webhooks
    signature and prints it. Point an endpoint at http://127.0.0.1:PORT/ (the service then
    needs FEEDBACK_WEBHOOKS_ALLOW_HTTP=true and FEEDBACK_WEBHOOKS_ALLOW_PRIVATE=true)."""
    from feedback_api.devtools import run_receiver

    asyncio.run(run_receiver(secret, port))


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Option(help="Display name.")],
    slug: Annotated[str | None, typer.Option(help="Unique slug; derived if omitted.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Asia/Shanghai.")] = "UTC",
    locale: Annotated[str, typer.Option(help="BCP 47 language tag.")] = "en",
) -> None:
    """Create a tenant; prints it with a secret key holding every scope (shown once)."""
    from pydantic import ValidationError

    from feedback_api.exceptions import FeedbackError
    from feedback_api.tenants.schemas import TenantCreate

    try:
        body = TenantCreate(name=name, slug=slug, timezone=timezone, locale=locale)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = get_settings()
    url, _ = _database_url(settings)
    try:
        created = _run_db(
            settings,
            url,
            lambda s: _create_tenant(s, body.name, body.slug, body.timezone, body.locale),
        )
    except FeedbackError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    _print_json(created)


@key_app.command("create")
def key_create(
    tenant: Annotated[UUID, typer.Option(help="Tenant id.")],
    name: Annotated[str, typer.Option(help="What the key is for.")],
    scope: Annotated[
        list[str] | None, typer.Option(help=f"Repeatable. One of: {', '.join(ALL_SCOPES)}.")
    ] = None,
    publishable: Annotated[bool, typer.Option(help="A publishable key for apps.")] = False,
) -> None:
    """Create an API key; prints it with the key itself (shown once)."""
    from pydantic import ValidationError

    from feedback_api.keys.schemas import ApiKeyCreate, ApiKeyCreated
    from feedback_api.keys.service import api_key as api_key_service
    from feedback_api.tenants.service import tenant as tenant_service

    try:
        body = ApiKeyCreate.model_validate(
            {"name": name, "scopes": scope or None, "publishable": publishable}
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = get_settings()
    url, _ = _database_url(settings)

    async def work(session: Any) -> dict[str, Any]:
        await tenant_service.get(session, tenant)
        key, secret = await api_key_service.create(
            session,
            tenant,
            name=body.name,
            scopes=[s.value for s in body.scopes or ()],
            publishable=body.publishable,
        )
        return ApiKeyCreated.of(key, secret).model_dump(mode="json")

    _print_json(_guarded(settings, url, work))


@key_app.command("revoke")
def key_revoke(
    tenant: Annotated[UUID, typer.Option(help="Tenant id.")],
    key_id: Annotated[UUID, typer.Argument(help="Key id.")],
) -> None:
    """Revoke an API key at once."""
    from feedback_api.keys.schemas import ApiKeyRead
    from feedback_api.keys.service import api_key as api_key_service

    settings = get_settings()
    url, _ = _database_url(settings)

    async def work(session: Any) -> dict[str, Any]:
        key = await api_key_service.revoke(session, tenant, key_id, actor=None)
        return ApiKeyRead.model_validate(key).model_dump(mode="json")

    _print_json(_guarded(settings, url, work))


def _guarded(settings: Settings, url: str, work: Any) -> Any:
    from feedback_api.exceptions import FeedbackError

    try:
        return _run_db(settings, url, work)
    except FeedbackError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


@import_app.command("delighted")
def import_delighted(
    tenant: Annotated[UUID, typer.Option(help="Tenant id.")],
    responses: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="Delighted's survey responses CSV export."),
    ],
    people: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Delighted's people CSV export."),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="Repeatable: COLUMN=ROLE for a column not known by its name. ROLE: "
            "response_id, score, comment, created_at, person_id, name, email, phone, tags, "
            "survey_type, skip, or property:<name>.",
        ),
    ] = None,
    kind: Annotated[
        str, typer.Option(help="nps, csat or ces: the survey type of rows that do not say.")
    ] = "nps",
) -> None:
    """Import a Delighted history from its CSV exports (docs/delighted.md). Idempotent on
    Delighted's response ids: run it again after a crash or with a newer export. Prints a
    summary (imported, updated, skipped, rejected with reasons) as JSON on stdout."""
    import csv as csv_module

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    from rich.table import Table

    from feedback_api.compat.delighted import importer
    from feedback_api.exceptions import FeedbackError

    if kind not in ("nps", "csat", "ces"):
        raise typer.BadParameter("nps, csat or ces", param_hint="--kind")
    try:
        mapped = importer.parse_map(mapping or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--map") from None
    csv_module.field_size_limit(16 * 1024 * 1024)
    try:
        with responses.open(newline="", encoding="utf-8-sig") as counting:
            total = max(0, sum(1 for _ in csv_module.reader(counting)) - 1)
    except (UnicodeDecodeError, csv_module.Error) as exc:
        typer.echo(f"error: {responses}: {exc} (save the export as UTF-8 CSV)", err=True)
        raise typer.Exit(1) from None
    settings = get_settings()
    url, _ = _database_url(settings)
    console = Console(stderr=True)

    async def main(answers: Any, persons: Any, bar: Progress) -> importer.Summary:
        engine = create_engine(url, settings)
        task = bar.add_task("importing", total=total)
        try:
            return await importer.run(
                create_sessionmaker(engine),
                tenant,
                answers,
                persons,
                mapped,
                kind=kind,
                progress=lambda n: bar.advance(task, n),
            )
        finally:
            await engine.dispose()

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    try:
        with contextlib.ExitStack() as files, bar:
            answers = files.enter_context(responses.open(newline="", encoding="utf-8-sig"))
            persons = (
                files.enter_context(people.open(newline="", encoding="utf-8-sig"))
                if people
                else None
            )
            summary = asyncio.run(main(answers, persons, bar))
    except (ValueError, UnicodeDecodeError, csv_module.Error) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except FeedbackError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    table = Table("imported", "updated", "skipped", "rejected", "people")
    table.add_row(
        *(
            str(v)
            for v in (
                summary.imported,
                summary.updated,
                summary.skipped,
                summary.rejected,
                summary.people,
            )
        )
    )
    console.print(table)
    for reason, count in summary.reasons.most_common(10):
        console.print(f"  {count} × {reason}")
    _print_json(summary.as_dict())


@app.command()
def openapi(
    output: Annotated[Path, typer.Option(help="Where to write; '-' for stdout.")] = Path(
        "openapi/openapi.json"
    ),
) -> None:
    """Write the OpenAPI document (the committed contract)."""
    from feedback_api.openapi import render

    text = render()
    if str(output) == "-":
        sys.stdout.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        typer.echo(f"wrote {output}", err=True)
