"""The ``liaison`` command line."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import structlog
import typer
from rich.console import Console
from rich.table import Table

from schemas.errors import LiaisonError, SchemaError
from schemas.events import MAX_EVENT_BYTES, validate_event
from schemas.json_schema import json_schemas, render
from services.asyncapi import asyncapi_document
from services.demo import run_demo
from services.inputs import read_documents
from services.kafka import apply_topics, describe_topics
from services.local_broker import LocalBroker
from services.log import configure_logging
from services.router_service import build_router
from services.settings import Settings

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="liaison",
    help="Liaison: the signed, audited event bus of England's child-protection inspectorates.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
broker_app = typer.Typer(help="The local single-node Apache Kafka broker.", no_args_is_help=True)
topics_app = typer.Typer(help="The topics of Liaison's public contract.", no_args_is_help=True)
serve_app = typer.Typer(help="Long-running Liaison services.", no_args_is_help=True)
schema_app = typer.Typer(help="The event contract as JSON Schema.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")
app.add_typer(serve_app, name="serve")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False, markup=True)
    raise typer.Exit(1)


def _run(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(coro())
    except LiaisonError as exc:
        _fail(str(exc))


def _say(message: str) -> None:
    err.print(message, highlight=False)


# -- broker ------------------------------------------------------------------------------


@broker_app.command("start")
def broker_start() -> None:
    """Fetch (first time), format (first time) and start the local broker; idempotent."""
    settings = _settings()
    try:
        status = LocalBroker(settings).start(_say)
    except LiaisonError as exc:
        _fail(str(exc))
    _say(f"Broker running at {status.bootstrap_servers} (pid {status.pid}).")


@broker_app.command("stop")
def broker_stop() -> None:
    """Stop the local broker this tool started (by its recorded PID)."""
    settings = _settings()
    stopped = LocalBroker(settings).stop(_say)
    _say("Broker stopped." if stopped else "No broker of ours was running.")


@broker_app.command("status")
def broker_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Whether the local broker is running, and its bootstrap address."""
    settings = _settings()
    try:
        status = LocalBroker(settings).status()
    except LiaisonError as exc:
        _fail(str(exc))
    if as_json:
        out.print_json(json.dumps(status.as_dict()))
        return
    pid = f" (pid {status.pid})" if status.pid else ""
    out.print(
        f"{status.state}{pid}: Apache Kafka {status.kafka_version} at"
        f" {status.bootstrap_servers}, home {status.home}",
        highlight=False,
    )


# -- topics ------------------------------------------------------------------------------


def _topics_table(reports: list[Any], *, title: str) -> Table:
    table = Table(title=title)
    for column in ("topic", "partitions", "config", "state", "purpose"):
        table.add_column(column)
    for report in reports:
        spec = report.spec
        if report.created:
            state = "[green]created[/green]"
        elif report.exists:
            state = "exists"
        else:
            state = "[yellow]missing[/yellow]"
        partitions = str(spec.partitions)
        if report.partitions is not None and report.partitions != spec.partitions:
            partitions = f"[yellow]{report.partitions} (contract: {spec.partitions})[/yellow]"
        table.add_row(
            spec.name,
            partitions,
            "\n".join(f"{k}={v}" for k, v in sorted(spec.config.items())),
            state,
            spec.purpose,
        )
    return table


@topics_app.command("apply")
def topics_apply() -> None:
    """Create every topic of the contract that is missing (existing ones are left alone)."""
    settings = _settings()
    reports = _run(lambda: apply_topics(settings, settings.topics.specs()))
    out.print(_topics_table(reports, title=f"Topics at {settings.bootstrap_servers}"))
    created = sum(r.created for r in reports)
    _say(f"{created} created, {len(reports) - created} already there.")


@topics_app.command("list")
def topics_list() -> None:
    """Every topic of the contract, its partitions and configs, and whether it exists."""
    settings = _settings()
    reports = _run(lambda: describe_topics(settings, settings.topics.specs()))
    out.print(_topics_table(reports, title=f"Topics at {settings.bootstrap_servers}"))
    missing = [r.spec.name for r in reports if not r.exists]
    if missing:
        _say(f"{len(missing)} missing: run `liaison topics apply`.")


# -- the event contract -------------------------------------------------------------------

INVALID = 2
"""Exit code of `validate` when any event is invalid (1 is for Liaison's own failures)."""


@app.command("validate")
def validate(
    file: Annotated[str, typer.Argument(help="A JSON object or JSON Lines file; - for stdin.")],
) -> None:
    """Check events against the contract without publishing; exit 2 listing every problem."""
    now = dt.datetime.now(dt.UTC)
    try:
        stream = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    except OSError as exc:
        err.print(f"[bold red]error:[/bold red] cannot read {file}: {exc.strerror}")
        raise typer.Exit(INVALID) from None
    valid = invalid = 0
    first_seen: dict[str, str] = {}
    with stream:
        for document in read_documents(stream):
            if document.oversized:
                invalid += 1
                out.print(
                    f"{document.where}: event is over the {MAX_EVENT_BYTES}-byte limit"
                    " (not parsed)",
                    highlight=False,
                )
                continue
            try:
                event = validate_event(document.data, now=now)
            except SchemaError as exc:
                invalid += 1
                for problem in exc.problems:
                    out.print(f"{document.where}: {problem}", highlight=False, markup=False)
                continue
            event_id = str(event.id)
            if event_id in first_seen:
                invalid += 1
                out.print(
                    f"{document.where}: id: {event_id} repeats the event at {first_seen[event_id]}",
                    highlight=False,
                )
                continue
            first_seen[event_id] = document.where
            valid += 1
            out.print(f"{document.where}: ok ({event.type}, id {event_id})", highlight=False)
    if valid + invalid == 0:
        err.print(f"[bold red]error:[/bold red] no events found in {file}")
        raise typer.Exit(INVALID)
    _say(f"{valid + invalid} checked: {valid} valid, {invalid} invalid.")
    if invalid:
        raise typer.Exit(INVALID)


@schema_app.command("export")
def schema_export(
    directory: Annotated[Path, typer.Argument(help="Where to write one file per event type.")],
) -> None:
    """Write the JSON Schema of every event type into DIRECTORY."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (directory / name).write_text(render(schema))
        _say(f"wrote {directory / name}")


@app.command("asyncapi")
def asyncapi(
    output: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the AsyncAPI 3.0 document of Liaison's faststream application."""
    document = asyncapi_document(_settings())
    if output is None:
        sys.stdout.write(document)
    else:
        output.write_text(document)
        _say(f"wrote {output}")


# -- demo and services -------------------------------------------------------------------


@app.command("demo")
def demo() -> None:
    """Every inspectorate publishes a few events; the router delivers them; a table shows it."""
    settings = Settings()
    # The table is the demo's output; routine per-event logs would bury it.
    configure_logging("DEBUG" if settings.log_level == "DEBUG" else "WARNING", settings.log_format)
    # A table of what went where needs room even when output is piped (make, CI).
    console = out if out.is_terminal else Console(width=160)
    code = _run(lambda: run_demo(settings, console))
    raise typer.Exit(code)


@serve_app.command("router")
def serve_router() -> None:
    """Route every inspectorate's events to the other inspectorates' queues until stopped."""
    settings = _settings()
    log = structlog.get_logger("liaison.router")

    async def serve() -> None:
        router = build_router(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await router.start()
        log.info("router_started", bootstrap_servers=settings.bootstrap_servers)
        try:
            await stop.wait()
        finally:
            await router.stop()
            log.info("router_stopped")

    _run(serve)


def main() -> None:
    """Entry point of the ``liaison`` script."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
