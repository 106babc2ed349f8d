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
from schemas.inspectorates import Inspectorate
from schemas.json_schema import json_schemas, render
from schemas.keys import TrustStore
from services.asyncapi import asyncapi_document
from services.demo import run_demo
from services.inputs import read_documents
from services.kafka import apply_topics, describe_topics
from services.keys_admin import generate, revoke, rotate
from services.keystore import KeyStore, signing_key_for
from services.local_broker import LocalBroker
from services.log import configure_logging
from services.publish import publish_documents
from services.router_service import RouterService
from services.settings import Settings
from services.trust import load_trust

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
keys_app = typer.Typer(
    help="Inspectorates' signing keys and the trust store.", no_args_is_help=True
)
app.add_typer(schema_app, name="schema")
app.add_typer(keys_app, name="keys")
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")
app.add_typer(serve_app, name="serve")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings(*, service: bool = False) -> Settings:
    """Settings from the environment, logging configured.

    One-shot commands print what matters themselves, so their logs start at WARNING
    (unless LIAISON_LOG_LEVEL=DEBUG); services log at the configured level.
    """
    settings = Settings()
    level = settings.log_level
    if not service and level != "DEBUG":
        level = "WARNING"
    configure_logging(level, settings.log_format)
    return settings


def _wide() -> Console:
    """A console for tables: the terminal, or wide enough for ids when output is piped."""
    return out if out.is_terminal else Console(width=200, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False, markup=True)
    raise typer.Exit(1)


def _run(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(coro())
    except LiaisonError as exc:
        _fail(str(exc))
    except OSError as exc:  # a file Liaison keeps could not be read or written
        _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))


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
        elif report.reconfigured:
            state = f"[green]set {', '.join(report.reconfigured)}[/green]"
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
    _wide().print(_topics_table(reports, title=f"Topics at {settings.bootstrap_servers}"))
    created = sum(r.created for r in reports)
    reconfigured = sum(bool(r.reconfigured) for r in reports)
    _say(
        f"{created} created, {len(reports) - created} already there"
        f" ({reconfigured} with configs set to the contract)."
    )


@topics_app.command("list")
def topics_list() -> None:
    """Every topic of the contract, its partitions and configs, and whether it exists."""
    settings = _settings()
    reports = _run(lambda: describe_topics(settings, settings.topics.specs()))
    _wide().print(_topics_table(reports, title=f"Topics at {settings.bootstrap_servers}"))
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


# -- keys -------------------------------------------------------------------------------

InspectorateOption = Annotated[
    Inspectorate, typer.Option("--inspectorate", help="Whose key.", case_sensitive=False)
]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _keys_table(store: TrustStore, title: str) -> Table:
    table = Table(title=title)
    for column in ("key id", "owner", "status", "valid from", "valid until", "revoked at"):
        table.add_column(column, overflow="fold")
    for key in sorted(store.keys, key=lambda k: (k.owner, k.valid_from)):
        table.add_row(
            key.keyid,
            key.owner,
            key.status.value,
            key.valid_from.isoformat(timespec="seconds"),
            key.valid_until.isoformat(timespec="seconds") if key.valid_until else "",
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    return table


@keys_app.command("generate")
def keys_generate(inspectorate: InspectorateOption) -> None:
    """Create an inspectorate's first signing key and publish its public half."""
    settings = _settings()
    change = _run(lambda: generate(settings, inspectorate.value, _now()))
    assert change.new is not None  # noqa: S101 - generate always makes a key
    store = KeyStore(settings)
    _say(f"Generated {inspectorate.value} key {change.new.keyid}")
    _say(f"private key: {store.private_path(inspectorate.value, change.new.keyid)} (mode 0600)")


@keys_app.command("rotate")
def keys_rotate(inspectorate: InspectorateOption) -> None:
    """Give an inspectorate a new key; its old keys retire but still verify past events."""
    settings = _settings()
    change = _run(lambda: rotate(settings, inspectorate.value, _now()))
    assert change.new is not None  # noqa: S101 - rotate always makes a key
    _say(f"New {inspectorate.value} key {change.new.keyid}")
    for old in change.changed:
        _say(f"Retired {old.keyid}: verifies events appended before {old.valid_until}")


@keys_app.command("revoke")
def keys_revoke(
    keyid: Annotated[str, typer.Argument(help="The key id (or 8+ characters of it).")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the record.")],
) -> None:
    """Revoke a key: events appended from now on with it are refused."""
    settings = _settings()
    change = _run(lambda: revoke(settings, keyid, reason, _now()))
    for key in change.changed:
        _say(f"Revoked {key.keyid} ({key.owner}) at {key.revoked_at}")


@keys_app.command("list")
def keys_list() -> None:
    """Every key the bus trusts, with owner, status and validity."""
    settings = _settings()
    store = _run(lambda: load_trust(settings))
    _wide().print(_keys_table(store, f"Keys on {settings.topics.keys}"))


@keys_app.command("export")
def keys_export(
    local: Annotated[bool, typer.Option("--local", help="This machine's copy; no Kafka.")] = False,
) -> None:
    """Print the trust store (public keys only) as JSON."""
    settings = _settings()
    store = KeyStore(settings).trust() if local else _run(lambda: load_trust(settings))
    sys.stdout.write(store.model_dump_json(indent=2) + "\n")


# -- publish ------------------------------------------------------------------------------


@app.command("publish")
def publish(
    as_: Annotated[
        Inspectorate,
        typer.Option("--as", help="The publishing inspectorate.", case_sensitive=False),
    ],
    file: Annotated[str, typer.Argument(help="A JSON object or JSON Lines file; - for stdin.")],
) -> None:
    """Validate, sign and publish events; print each id once Kafka has it.

    Invalid events are reported by line and never sent; the others are published. Exit 0
    when everything was published, 2 when some events were invalid, 1 on failure.
    """
    settings = _settings()
    try:
        stream = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}")

    async def run() -> int:
        trust = await load_trust(settings)
        key = signing_key_for(as_.value, settings, KeyStore(settings), trust)
        with stream:
            return await publish_documents(
                settings, as_, read_documents(stream), key=key, trust=trust, out=out, err=err,
                clock=_now,
            )  # fmt: skip

    raise typer.Exit(_run(run))


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
    settings = _settings(service=True)
    log = structlog.get_logger("liaison.router")

    async def serve() -> None:
        router = RouterService(settings)
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
