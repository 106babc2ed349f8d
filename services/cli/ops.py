"""`liaison broker`, `topics`, `rules` and `quarantine`: operating the bus."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from consumers.explain import explain, unmatched_note
from schemas.errors import LiaisonError, SchemaError
from schemas.events import MAX_EVENT_BYTES, decode_event
from services.cli._common import (
    INVALID,
    _fail,
    _input,
    _now,
    _reading,
    _run,
    _say,
    _settings,
    _wide,
    err,
    out,
)
from services.inputs import (
    read_documents,
)
from services.kafka import apply_topics, describe_topics
from services.local_broker import LocalBroker
from services.quarantine import UNREADABLE, list_quarantine, redrive
from services.rules_file import load_rules

broker_app = typer.Typer(help="The local single-node Apache Kafka broker.", no_args_is_help=True)
topics_app = typer.Typer(help="The topics of Liaison's public contract.", no_args_is_help=True)

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


# -- rules and quarantine -----------------------------------------------------------------

rules_app = typer.Typer(help="The routing rules.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Records refused by a consumer.", no_args_is_help=True)


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
