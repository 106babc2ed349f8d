"""The ``liaison`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from consumers.explain import explain, unmatched_note
from schemas.audit import FeedRead, InvalidRecord, ReplayRun, VerificationFailed, judge_record
from schemas.audit_proof import ProofDocument
from schemas.checkpoint import parse_verifier_key
from schemas.errors import ConfigurationError, LiaisonError, SchemaError
from schemas.events import MAX_EVENT_BYTES, decode_event
from schemas.inspectorates import Inspectorate
from schemas.json_schema import json_schemas, render
from schemas.keys import BUS, SigningKey, TrustStore
from services.asyncapi import asyncapi_document
from services.audit_log import append_audit, operator
from services.audit_service import AuditService, open_store, publish_checkpoint
from services.audit_store import SqliteAuditStore, StoredLeaf
from services.auditor import (
    VerifyReport,
    activity,
    check_proof,
    consistency,
    event_id_text,
    leaves_about,
    prove,
    read_proof,
    verifier_keys,
    verify_log,
)
from services.demo import run_demo
from services.inputs import (
    check_analyst,
    check_documents,
    check_filters,
    check_purpose,
    read_documents,
)
from services.kafka import apply_topics, describe_topics, start_when_reachable, stop_quietly
from services.keys_admin import generate, revoke, rotate
from services.keystore import KeyStore, signing_key_for
from services.local_broker import LocalBroker
from services.log import configure_logging
from services.publish import publish_documents
from services.quarantine import UNREADABLE, list_quarantine, redrive
from services.replay import Filters, Replay, replay_topics
from services.router_service import RouterService
from services.rules_file import load_rules
from services.settings import Settings, load_settings
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
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        _fail(str(exc))
    level = settings.log_level
    if not service and level != "DEBUG":
        level = "WARNING"
    configure_logging(level, settings.log_format)
    return settings


def _wide() -> Console:
    """A console for tables: the terminal, or wide enough for ids when output is piped."""
    return out if out.is_terminal else Console(width=200, soft_wrap=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print("[bold red]error:[/bold red] ", end="")
    err.print(message, highlight=False, markup=False)
    raise typer.Exit(code)


def _run(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(coro())
    except LiaisonError as exc:
        _fail(str(exc))
    except OSError as exc:  # a file Liaison keeps could not be read or written
        _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))


def _input(file: str, *, exit_code: int = 1) -> BinaryIO:
    """The input named on the command line: a file, or ``-`` for stdin."""
    if file == "-":
        return sys.stdin.buffer
    try:
        return Path(file).open("rb")
    except OSError as exc:
        err.print("[bold red]error:[/bold red] ", end="")
        err.print(f"cannot read {file}: {exc.strerror}", highlight=False, markup=False)
        raise typer.Exit(exit_code) from None


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
    stream = _input(file, exit_code=INVALID)
    valid = invalid = 0
    with _reading(file, stream):
        for checked in check_documents(read_documents(stream), _now):
            for problem in checked.problems:
                out.print(problem, highlight=False, markup=False)
            if checked.event is None:
                invalid += 1
                continue
            valid += 1
            event = checked.event
            out.print(
                f"{checked.document.where}: ok ({event.type}, id {event.id})", highlight=False
            )
    if valid + invalid == 0:
        _fail(f"no events found in {file}", INVALID)
    summary = f"{valid + invalid} checked: {valid} valid, {invalid} invalid."
    if invalid:
        _fail(summary, INVALID)
    _say(summary)


@contextlib.contextmanager
def _reading(file: str, stream: BinaryIO) -> Iterator[None]:
    """Close ``stream`` after the block; an input refused whole or unreadable is one error.

    What was printed about earlier documents stands; the error line says why reading
    stopped (an input over the size limit, say).
    """
    with stream:
        try:
            yield
        except SchemaError as exc:
            _fail(str(exc), INVALID)
        except OSError as exc:
            _fail(f"cannot read {file}: {exc.strerror or type(exc).__name__}", INVALID)


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
    Inspectorate | None,
    typer.Option("--inspectorate", help="Whose key.", case_sensitive=False),
]
BusOption = Annotated[
    bool, typer.Option("--bus", help="The bus's own key (signs JTAI considerations).")
]


def _owner(inspectorate: Inspectorate | None, bus: bool) -> str:
    if (inspectorate is None) == (not bus):
        _fail("give exactly one of --inspectorate NAME or --bus")
    return BUS if bus else str(inspectorate)


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
def keys_generate(inspectorate: InspectorateOption = None, bus: BusOption = False) -> None:
    """Create an inspectorate's (or the bus's) first signing key; publish its public half."""
    owner = _owner(inspectorate, bus)
    settings = _settings()
    change = _run(lambda: generate(settings, owner, _now()))
    assert change.new is not None  # noqa: S101 - generate always makes a key
    store = KeyStore(settings)
    _say(f"Generated {owner} key {change.new.keyid}")
    _say(f"private key: {store.private_path(owner, change.new.keyid)} (mode 0600)")


@keys_app.command("rotate")
def keys_rotate(inspectorate: InspectorateOption = None, bus: BusOption = False) -> None:
    """Give an inspectorate (or the bus) a new key; old keys retire but verify the past."""
    owner = _owner(inspectorate, bus)
    settings = _settings()
    change = _run(lambda: rotate(settings, owner, _now()))
    assert change.new is not None  # noqa: S101 - rotate always makes a key
    _say(f"New {owner} key {change.new.keyid}")
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
    stream = _input(file)

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


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (a service stops cleanly on either)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


@app.command("demo")
def demo() -> None:
    """Every inspectorate publishes a few events; the router delivers them; a table shows it."""
    settings = _settings()

    async def run() -> int:
        return await run_demo(settings, load_rules(settings.rules_path), _wide())

    code = _run(run)
    raise typer.Exit(code)


@serve_app.command("router")
def serve_router() -> None:
    """Route every inspectorate's events to the other inspectorates' queues until stopped.

    Started while the broker is down, it waits for it (one log line when it is found
    unreachable, one when it is back).
    """
    settings = _settings(service=True)
    try:
        rules = load_rules(settings.rules_path)
    except LiaisonError as exc:
        _fail(str(exc))

    async def start() -> RouterService:
        trust = await load_trust(settings)
        bus_key = signing_key_for(BUS, settings, KeyStore(settings), trust)
        router = RouterService(settings, rules, bus_key)
        try:
            await router.start()
        except BaseException:
            await stop_quietly(router.stop)
            raise
        return router

    async def serve() -> int:
        stop = _stop_on_signals()
        router = await start_when_reachable(settings, start, stop)
        if router is None:
            return 0  # stopped while waiting for the broker
        try:
            stopping = asyncio.create_task(stop.wait())
            failing = asyncio.create_task(router.failed.wait())
            await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            failing.cancel()
        finally:
            await router.stop()
        return 1 if router.failed.is_set() else 0

    raise typer.Exit(_run(serve))


# -- rules and quarantine -----------------------------------------------------------------

rules_app = typer.Typer(help="The routing rules.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Records refused by a consumer.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(quarantine_app, name="quarantine")


@rules_app.command("explain")
def rules_explain(
    file: Annotated[str, typer.Argument(help="A JSON object or JSON Lines file; - for stdin.")],
) -> None:
    """For each event: every destination, with the rule and reason. Publishes nothing."""
    settings = _settings()
    try:
        rules = load_rules(settings.rules_path)
    except LiaisonError as exc:
        _fail(str(exc))
    stream = _input(file)
    table = Table(title=f"Routing under {settings.rules_path}")
    for column in ("where", "event", "destination", "rule", "reason"):
        table.add_column(column, overflow="fold")
    invalid = 0
    with _reading(file, stream):
        for document in read_documents(stream):
            if document.oversized:
                invalid += 1
                err.print(f"{document.where}: event is over the {MAX_EVENT_BYTES}-byte limit")
                continue
            try:
                event = decode_event(document.data)
            except SchemaError as exc:
                invalid += 1
                err.print(f"{document.where}: {exc}", highlight=False, markup=False)
                continue
            rows = explain(event, rules)
            for row in rows:
                table.add_row(document.where, str(event.id), row.topic_name, row.rule, row.reason)
            note = unmatched_note(event, rules)
            if note is not None:
                table.add_row(document.where, str(event.id), "-", "-", note)
    _wide().print(table)
    if invalid:
        _fail(f"{invalid} event(s) not explained: they do not meet the contract", INVALID)


@quarantine_app.command("list")
def quarantine_list() -> None:
    """Every refused record: when, why, where it came from, whether it was redriven."""
    settings = _settings()
    items = _run(lambda: list_quarantine(settings))
    table = Table(title=f"{settings.topics.quarantine}: {len(items)} record(s)")
    for column in ("id", "quarantined at", "reason", "from", "redriven", "detail"):
        table.add_column(column, overflow="fold")
    for item in items:
        redriven = item.redriven_at.isoformat() if item.redriven_at else ""
        if item.redriven and not redriven:
            redriven = "yes (time unreadable)"
        record = item.record
        if record is None:  # shown without content: it may be anything
            table.add_row(str(item.id), "", UNREADABLE, "", redriven, "")
            continue
        table.add_row(
            str(item.id), record.quarantined_at.isoformat(), record.reason,
            Text(f"{record.source_topic}/{record.partition}/{record.offset}"), redriven,
            Text(record.detail),  # plain text: whoever wrote the record chose it, no markup
        )  # fmt: skip
    _wide().print(table)


@quarantine_app.command("redrive")
def quarantine_redrive(
    quarantine_id: Annotated[int, typer.Argument(metavar="ID", help="From `quarantine list`.")],
) -> None:
    """Re-submit a refused record once its cause is fixed (it must verify now)."""
    settings = _settings()
    done = _run(lambda: redrive(settings, quarantine_id, _now()))
    _say(f"Redrove record {done.quarantine_id} to {done.to}; the router will route it.")


# -- audit, replay, feed -------------------------------------------------------------------

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
feed_app = typer.Typer(help="Analysts' feeds.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(feed_app, name="feed")


def _when(text: str | None, option: str) -> dt.datetime | None:
    """An ISO 8601 date or time; without an offset it is taken as UTC."""
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        when.astimezone(dt.UTC)  # an offset can carry it outside years 1 to 9999
    except (ValueError, OverflowError):
        _fail(
            f"{option} must be an ISO 8601 date or time in years 1 to 9999 (e.g. 2026-11-01T09:00Z)"
        )
    return when


def _audit_key(settings: Settings, trust: TrustStore) -> SigningKey:
    return signing_key_for(BUS, settings, KeyStore(settings), trust)


@serve_app.command("audit")
def serve_audit() -> None:
    """Append every audit record to the Merkle tree store and publish signed checkpoints."""
    settings = _settings(service=True)

    async def bus_key() -> SigningKey:
        return _audit_key(settings, await load_trust(settings))

    async def serve() -> int:
        stop = _stop_on_signals()
        # Started while the broker is down, it waits for it (one log line each way).
        key = await start_when_reachable(settings, bus_key, stop)
        if key is None:
            return 0  # stopped while waiting for the broker
        with open_store(settings) as store:
            service = AuditService(settings, store, key)
            await service.start()
            assert service.task is not None  # noqa: S101 - started just now
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({stopping, service.task}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            failed = service.task.done() and service.task.exception() is not None
            if failed:
                err.print(f"error: the audit service stopped: {service.task.exception()}")
            await service.stop()
        return 1 if failed else 0

    raise typer.Exit(_run(serve))


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign and publish a checkpoint of the audit tree now (the service also does this)."""
    settings = _settings()

    async def run() -> str | None:
        trust = await load_trust(settings)
        with open_store(settings) as store:
            return await publish_checkpoint(settings, store, _audit_key(settings, trust), _now())

    note = _run(run)
    if note is None:
        _say("No new leaves since the last checkpoint.")
    else:
        sys.stdout.write(note)


@audit_app.command("verifier-key")
def audit_verifier_key() -> None:
    """The signed-note verifier key(s) that check this log's checkpoints offline."""
    settings = _settings()
    trust = _run(lambda: load_trust(settings))
    for vkey in verifier_keys(settings, trust):
        out.print(vkey, highlight=False)


@audit_app.command("verify")
def audit_verify() -> None:
    """Rebuild the tree from the log; check every leaf, the sequence and every checkpoint."""
    settings = _settings()

    async def run() -> VerifyReport:
        trust = await load_trust(settings)
        progress = Progress(
            TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True,
        )  # fmt: skip
        with open_store(settings) as store, progress:
            task = progress.add_task("verify", total=None)
            report = await verify_log(
                settings, store, trust,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )  # fmt: skip
        if not report.ok:
            assert report.divergence is not None  # noqa: S101 - not ok means a divergence
            await append_audit(settings, [VerificationFailed(
                at=_now(), actor=operator("auditor"), position=report.divergence.position,
                detail=report.divergence.detail[:500],
            )])  # fmt: skip
        return report

    report = _run(run)
    if report.ok:
        # Invalid leaves (values on the topic that are no audit record) are kept byte for
        # byte, so they are no divergence; their count says how many there are.
        out.print(
            f"OK: {report.leaves} leaves ({report.invalid_records} invalid) in sequence, each"
            f" matching the store; {report.checkpoints} signed checkpoint(s) verified.",
            highlight=False,
        )
        if report.unparseable:
            out.print(
                f"Skipped {report.unparseable} record(s) on the audit topic that the Kafka"
                " client cannot parse (no leaves: the audit service skips them too).",
                highlight=False,
            )
        return
    assert report.divergence is not None  # noqa: S101 - not ok means a divergence
    where = (
        f" at leaf {report.divergence.position}" if report.divergence.position is not None else ""
    )
    err.print(f"FAILED{where}: {report.divergence.detail}", highlight=False, markup=False)
    raise typer.Exit(1)


def _print_json(document: object, output: Path | None) -> None:
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        _say(f"wrote {output}")


def _on_store(settings: Settings, use: Callable[[SqliteAuditStore, TrustStore], T]) -> T:
    """``use(store, trust)`` with the audit store open and the bus's trust store loaded."""

    async def run() -> T:
        trust = await load_trust(settings)
        with open_store(settings) as store:
            return use(store, trust)

    return _run(run)


OutOption = Annotated[Path | None, typer.Option("--out", help="Write to this file.")]


@audit_app.command("prove")
def audit_prove(
    event_id: Annotated[str, typer.Argument(help="The event whose records to prove.")],
    output: OutOption = None,
) -> None:
    """Inclusion proofs of the records about an event, against the latest checkpoint."""
    settings = _settings()
    document = _on_store(settings, lambda store, trust: prove(settings, store, trust, event_id))
    _print_json(document.model_dump(mode="json"), output)


@audit_app.command("consistency")
def audit_consistency(
    old_size: Annotated[int, typer.Argument(help="Size of the older checkpoint.")],
    new_size: Annotated[int, typer.Argument(help="Size of the newer checkpoint.")],
    output: OutOption = None,
) -> None:
    """A proof that the log at NEW_SIZE extends the log at OLD_SIZE (append-only)."""
    settings = _settings()
    document = _on_store(
        settings, lambda store, trust: consistency(settings, store, trust, old_size, new_size)
    )
    _print_json(document.model_dump(mode="json"), output)


@audit_app.command("check-proof")
def audit_check_proof(
    file: Annotated[
        Path, typer.Argument(help="A proof from `audit prove` or `audit consistency`.")
    ],
    key: Annotated[
        str | None,
        typer.Option("--key", help="The verifier key you trust (from `audit verifier-key`)."),
    ] = None,
) -> None:
    """Verify a proof offline: no Kafka, no store, only the checkpoint's public key."""
    _settings()
    try:
        document = read_proof(file)
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or type(exc).__name__}")
    except LiaisonError as exc:  # a malformed document: one line naming every problem
        _fail(f"{file}: {exc}")
    if key:
        try:
            parse_verifier_key(key)
        except LiaisonError as exc:
            _fail(f"--key: {exc}")
    vkeys = [key] if key else list(document.verifier_keys)
    if not key:
        _say("note: using the verifier key inside the proof; pass --key to check it independently")
    try:
        lines = next(_checked(document, vkeys))
    except LiaisonError as exc:
        out.print(f"FAILED: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    for line in lines:
        out.print(line, highlight=False, markup=False)
    out.print("OK", highlight=False)


def _checked(document: ProofDocument, vkeys: list[str]) -> Iterator[list[str]]:
    failure: LiaisonError | None = None
    for vkey in vkeys:
        try:
            yield check_proof(document, vkey)
        except LiaisonError as exc:
            failure = exc
            continue
        return
    raise failure or ConfigurationError("no verifier key given")


def _records_table(leaves: list[StoredLeaf], title: str) -> Table:
    table = Table(title=Text(title))
    for column in ("seq", "at", "actor", "action", "what"):
        table.add_column(column, overflow="fold")
    for leaf in leaves:
        record = judge_record(leaf.record)
        if isinstance(record, InvalidRecord):  # the store's queries skip these; be sure
            continue
        details = record.model_dump(mode="json", exclude={"action", "at", "actor", "event_ids"})
        what = ", ".join(f"{k}={v}" for k, v in details.items())
        # Text, not markup: a record's free text (a purpose, say) could hold "[/]".
        table.add_row(str(leaf.seq), leaf.at, Text(record.actor), record.action, Text(what))
    return table


def _on_audit_store(use: Callable[[SqliteAuditStore], T]) -> T:
    """``use(store)`` with the audit store open (no broker needed); every refusal or
    damaged store is one ``error:`` line."""
    settings = _settings()
    try:
        with open_store(settings) as store:
            return use(store)
    except LiaisonError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"the audit store cannot be opened: {exc.strerror or type(exc).__name__}")


@audit_app.command("who-saw")
def audit_who_saw(
    event_id: Annotated[str, typer.Argument(help="The event.")],
) -> None:
    """Who published, routed, received, read or replayed an event, and when."""
    leaves = _on_audit_store(lambda store: leaves_about(store, event_id))
    if not leaves:
        _fail(f"no audit record concerns event {event_id_text(event_id)}")
    _wide().print(_records_table(leaves, f"Audit records about {event_id_text(event_id)}"))


@audit_app.command("activity")
def audit_activity(
    actor: Annotated[str, typer.Option("--actor", help="e.g. analyst:a.khan, router:0.")],
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 date or time.")] = None,
) -> None:
    """Everything one actor did, oldest first."""
    start = _when(since, "--since")
    leaves = _on_audit_store(lambda store: activity(store, actor, start))
    _wide().print(_records_table(leaves, f"Activity of {actor}"))


Since = Annotated[str, typer.Option("--since", help="ISO 8601 date or time (broker append time).")]
Until = Annotated[str | None, typer.Option("--until", help="ISO 8601; exclusive.")]
Area = Annotated[str | None, typer.Option("--area", help="GSS code.")]
ThemeOpt = Annotated[str | None, typer.Option("--theme", help="A theme, e.g. neglect.")]


def _filters(since: str | None, until: str | None, area: str | None, theme: str | None,
             source: Inspectorate | None = None, kind: str | None = None) -> Filters:  # fmt: skip
    try:
        check_filters(area=area, theme=theme, kind=kind)
    except SchemaError as exc:
        _fail(str(exc), INVALID)
    return Filters(
        since=_when(since, "--since"), until=_when(until, "--until"), area=area, theme=theme,
        source=source, type=kind,
    )  # fmt: skip


def _write_events(found: Replay, output: Path | None) -> None:
    lines = b"".join(opened.payload + b"\n" for _, opened in found.verified)
    if output is None:
        sys.stdout.buffer.write(lines)
        sys.stdout.flush()
    else:
        output.write_bytes(lines)
        _say(f"wrote {len(found.verified)} verified event(s) to {output}")
    if found.unverifiable:
        table = Table(
            title=f"{len(found.unverifiable)} record(s) that do not verify (not exported)"
        )
        for column in ("topic", "partition", "offset", "reason", "detail"):
            table.add_column(column, overflow="fold")
        for record, exc in found.unverifiable:
            table.add_row(record.topic, str(record.partition), str(record.offset),
                          str(exc.reason), str(exc))  # fmt: skip
        Console(stderr=True, width=200).print(table)


@app.command("replay")
def replay(
    since: Since,
    until: Until = None,
    area: Area = None,
    theme: ThemeOpt = None,
    source: Annotated[
        Inspectorate | None, typer.Option("--source", case_sensitive=False, help="Publisher.")
    ] = None,
    kind: Annotated[str | None, typer.Option("--type", help="Event type.")] = None,
    output: OutOption = None,
) -> None:
    """Re-read events by time from Kafka, verify each again, print or export them (JSONL)."""
    settings = _settings()
    filters = _filters(since, until, area, theme, source, kind)
    topics = [settings.topics.events(source)] if source else list(settings.topics.all_events())

    async def run() -> Replay:
        trust = await load_trust(settings)
        with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                      console=err, transient=True) as progress:  # fmt: skip
            task = progress.add_task("replay", total=None)
            found = await replay_topics(
                settings, topics, filters, trust, _now(),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )  # fmt: skip
        await append_audit(settings, [ReplayRun(
            at=_now(), actor=operator("auditor"), filters=filters.as_strings(),
            verified=len(found.verified), unverifiable=len(found.unverifiable),
        )])  # fmt: skip
        return found

    found = _run(run)
    _write_events(found, output)
    _say(
        f"{len(found.verified)} verified, {len(found.unverifiable)} not verifiable,"
        f" {found.scanned} record(s) read."
    )


@feed_app.command("read")
def feed_read(
    analyst: Annotated[str, typer.Option("--analyst", help="Your analyst id (audited).")],
    purpose: Annotated[str, typer.Option("--purpose", help="Why you are reading (audited).")],
    area: Area = None,
    theme: ThemeOpt = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601.")] = None,
    output: OutOption = None,
) -> None:
    """Read verified events from the area feed; the read is audited with its purpose."""
    settings = _settings()
    try:
        analyst = check_analyst(analyst)
    except SchemaError as exc:
        _fail(f"--analyst: {exc}", INVALID)
    try:
        purpose = check_purpose(purpose)
    except SchemaError as exc:
        _fail(f"--purpose: {exc}", INVALID)
    filters = _filters(since, None, area, theme)

    async def run() -> Replay:
        trust = await load_trust(settings)
        found = await replay_topics(settings, [settings.topics.feed], filters, trust, _now())
        await append_audit(settings, [FeedRead(
            at=_now(), actor=f"analyst:{analyst}", analyst=analyst, purpose=purpose,
            filters=filters.as_strings(), returned=len(found.verified),
            event_ids=tuple(dict.fromkeys(opened.event.id for _, opened in found.verified)),
        )])  # fmt: skip
        return found

    _write_events(_run(run), output)


def main() -> None:
    """Entry point of the ``liaison`` script: every failure is one ``error:`` line.

    Commands report the errors they expect themselves, with what to do about them; this
    is the last resort for anything else, which names only the exception's class (its
    message could quote input). LIAISON_LOG_LEVEL=DEBUG adds the traceback.
    """
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except LiaisonError as exc:
        _error_line(str(exc))
    except Exception as exc:  # noqa: BLE001 - the last resort: never a traceback
        if os.environ.get("LIAISON_LOG_LEVEL", "").upper() == "DEBUG":
            traceback.print_exc()
        _error_line(
            f"internal error: {type(exc).__name__}; run with LIAISON_LOG_LEVEL=DEBUG for details"
        )


def _error_line(message: str) -> NoReturn:
    err.print("[bold red]error:[/bold red] ", end="")
    err.print(message, highlight=False, markup=False)
    sys.exit(1)
