"""`liaison audit`, `replay` and `feed`: auditors' and analysts' tools."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from schemas.audit import InvalidRecord, ReplayRun, VerificationFailed, judge_record, unsealed
from schemas.audit_proof import InclusionProof
from schemas.checkpoint import parse_verifier_key
from schemas.errors import LiaisonError, SchemaError
from schemas.inspectorates import Inspectorate
from schemas.keys import AUDITOR, SigningKey, TrustStore
from services.audit_log import append_audit, operator
from services.audit_service import open_store, publish_checkpoint
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
    read_signers,
    signer_refusal,
    verifier_keys,
    verify_log,
)
from services.cli._common import (
    INVALID,
    T,
    _audit_key,
    _fail,
    _now,
    _print_json,
    _run,
    _say,
    _settings,
    _when,
    _wide,
    app,
    err,
    out,
)
from services.inputs import (
    check_filters,
)
from services.keystore import KeyStore, signing_key_for
from services.replay import (
    Exported,
    Filters,
    Replay,
    check_export_directory,
    export_replay,
    replay_topics,
)
from services.settings import Settings
from services.trust import load_trust

# -- audit, replay, feed -------------------------------------------------------------------

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


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
            )], _tool_key(settings, AUDITOR, trust))  # fmt: skip
        return report

    report = _run(run)
    if report.ok:
        # Invalid leaves (values on the topic that are no valid signed record: forged,
        # unsigned, back-dated...) are kept byte for byte, so they are no divergence: a
        # finding, counted by reason.
        out.print(
            f"OK: {report.leaves} leaves ({report.invalid_records} invalid) in sequence, each"
            " matching the store and its index derived again from the log;"
            f" {report.checkpoints} signed checkpoint(s) verified.",
            highlight=False,
        )
        for reason, count in sorted(report.invalid.items()):
            out.print(f"invalid leaves, {reason}: {count}", highlight=False)
        if report.invalidated:
            out.print(
                f"invalidated since by a key change: {report.invalidated} leaf/leaves"
                f" (first: leaf {report.first_invalidated}) held valid by the store, whose"
                " signer has been revoked or retired since, back to before them"
                ' (who-saw and activity mark them "signer revoked")',
                highlight=False,
                markup=False,
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
        typer.Option(
            "--key",
            help="The audit log's verifier key, obtained out of band (`audit verifier-key`)."
            " Required: the keys inside a proof are never trusted.",
        ),
    ] = None,
    signers: Annotated[
        Path | None,
        typer.Option(
            "--signers",
            help="The signers' public keys, obtained out of band (the JSON `liaison keys"
            " export` prints). Required for an inclusion proof: inclusion only proves that"
            " bytes were appended, and anyone can append.",
        ),
    ] = None,
) -> None:
    """Verify a proof offline: no Kafka, no store, only the keys you trust."""
    _settings()
    if not key:
        _fail(
            "--key is required: the audit log's verifier key, obtained independently of the"
            " proof (`liaison audit verifier-key`); the keys inside a proof are never trusted"
        )
    try:
        parse_verifier_key(key)
    except LiaisonError as exc:
        _fail(f"--key: {exc}")
    try:
        document = read_proof(file)
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or type(exc).__name__}")
    except LiaisonError as exc:  # a malformed document: one line naming every problem
        _fail(f"{file}: {exc}")
    trusted = None
    if isinstance(document, InclusionProof):
        if signers is None:
            _fail(
                "--signers is required for an inclusion proof: the signers' public keys,"
                " obtained independently of the proof (`liaison keys export`); anyone can"
                " append a record to the log, so inclusion alone proves nothing about who"
                " wrote it"
            )
        try:
            trusted = read_signers(signers)
        except OSError as exc:
            _fail(f"cannot read {signers}: {exc.strerror or type(exc).__name__}")
        except LiaisonError as exc:
            _fail(f"--signers {signers}: {exc}")
    try:
        lines = check_proof(document, key, trusted)
    except LiaisonError as exc:
        out.print(f"FAILED: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    for line in lines:
        out.print(line, highlight=False, markup=False)
    out.print("OK", highlight=False)


def _records_table(
    leaves: list[StoredLeaf], title: str, trust: TrustStore | None
) -> tuple[Table, int]:
    """The records as a table, each whose signer today's trust store refuses at its time
    marked in ``signer`` (still shown; "not checked" without ``trust``); and how many are
    so marked."""
    table = Table(title=Text(title))
    for column in ("seq", "at", "actor", "action", "what", "signer"):
        table.add_column(column, overflow="fold")
    marked = 0
    for leaf in leaves:
        payload = unsealed(leaf.record)
        if leaf.invalid is not None or payload is None:  # the queries skip these; be sure
            continue
        record = judge_record(payload)
        if isinstance(record, InvalidRecord):
            continue
        details = record.model_dump(mode="json", exclude={"action", "at", "actor", "event_ids"})
        what = ", ".join(f"{k}={v}" for k, v in details.items())
        refused = None if trust is None else signer_refusal(leaf, record.at, trust)
        marked += refused is not None
        checked = "ok" if trust is not None else "not checked"
        signer = Text(refused, style="bold red") if refused else Text(checked)
        # Text, not markup: a record's free text (a purpose, say) could hold "[/]".
        table.add_row(str(leaf.seq), leaf.at, Text(record.actor), record.action, Text(what), signer)
    return table, marked


def _print_records(leaves: list[StoredLeaf], title: str, trust: TrustStore | None) -> None:
    table, marked = _records_table(leaves, title, trust)
    _wide().print(table)
    if marked:
        out.print(
            f"{marked} record(s) marked signer revoked (or retired, unknown): their signing"
            " key is refused now at the record's time, so what they say may have been"
            " written by whoever held a compromised key (`liaison keys list`).",
            highlight=False,
            markup=False,
        )


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


def _trust_now() -> TrustStore | None:
    """The bus's trust store as it is now, to mark records whose signer was revoked since;
    None, with one warning line, if it cannot be read (the store alone still answers)."""
    settings = _settings()
    try:
        return asyncio.run(load_trust(settings))
    except (LiaisonError, OSError) as exc:
        err.print("[bold yellow]warning:[/bold yellow] ", end="")
        err.print(
            f"signers not checked against the bus's trust store ({exc}): a record signed by"
            " a key revoked since is not marked",
            highlight=False,
            markup=False,
        )
        return None


@audit_app.command("who-saw")
def audit_who_saw(
    event_id: Annotated[str, typer.Argument(help="The event.")],
) -> None:
    """Who published, routed, received, read or replayed an event, and when."""
    leaves = _on_audit_store(lambda store: leaves_about(store, event_id))
    if not leaves:
        _fail(f"no audit record concerns event {event_id_text(event_id)}")
    _print_records(leaves, f"Audit records about {event_id_text(event_id)}", _trust_now())


@audit_app.command("activity")
def audit_activity(
    actor: Annotated[str, typer.Option("--actor", help="e.g. analyst:a.khan, router:0.")],
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 date or time.")] = None,
) -> None:
    """Everything one actor did, oldest first."""
    start = _when(since, "--since")
    leaves = _on_audit_store(lambda store: activity(store, actor, start))
    _print_records(leaves, f"Activity of {actor}", _trust_now() if leaves else None)


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


def _list_unverifiable(found: Replay) -> None:
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
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            help="Write the signed envelopes exactly as on Kafka and inclusion proofs of their"
            " audit records into this new directory, for checking without Liaison.",
        ),
    ] = None,
) -> None:
    """Re-read events by time from Kafka, verify each again, print or export them (JSONL)."""
    settings = _settings()
    filters = _filters(since, until, area, theme, source, kind)
    topics = [settings.topics.events(source)] if source else list(settings.topics.all_events())
    if export is not None and output is not None:
        _fail("--out and --export are alternatives: give one")
    if export is not None:
        try:
            check_export_directory(export)
        except (LiaisonError, OSError) as exc:
            _fail(str(exc))

    async def run() -> tuple[Replay, Exported | None]:
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
        )], _tool_key(settings, AUDITOR, trust))  # fmt: skip
        if export is None:
            return found, None
        with open_store(settings) as store:
            return found, export_replay(export, found, settings, store, trust)

    found, exported = _run(run)
    if exported is not None:
        _say(
            f"exported {exported.events} signed event(s) to {export}, {exported.proven} with"
            f" inclusion proofs against the checkpoint of size {exported.checkpoint_size}"
        )
    else:
        _write_events(found, output)
    _list_unverifiable(found)
    _say(
        f"{len(found.verified)} verified, {len(found.unverifiable)} not verifiable,"
        f" {found.scanned} record(s) read."
    )


def _tool_key(settings: Settings, owner: str, trust: TrustStore) -> SigningKey:
    """The key this machine's tool signs its audit records with (owner ``auditor``...)."""
    return signing_key_for(owner, settings, KeyStore(settings), trust)
