"""`liaison jtai list`, `show` and `decide`: the JTAI programme's triage.

A thin shell over ``services.jtai_desk``: every read is audited as receipt, signed by the
inspectorate named with ``--as``; every decision is signed by it and audited with it.
Every text taken from an event reaches the terminal through ``services.cli._display`` (no
control characters, never rich markup); ``--json`` prints the data as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from consumers.jtai_desk import Contributor, DecisionShown, TriageItem, item_json
from schemas.errors import SchemaError
from schemas.events import (
    CONCERN_RAISED,
    EXCEPTIONAL_PRACTICE_IDENTIFIED,
    RECOMMENDATION_MADE,
    RECOMMENDATION_REVIEWED,
    Theme,
)
from schemas.inspectorates import Inspectorate
from schemas.jtai import OPEN_DECISIONS, JtaiDecision
from services.cli._common import INVALID, _fail, _now, _run, _say, _settings, _wide, out
from services.cli._display import cell, clean
from services.inputs import check_filters
from services.jtai_desk import TriageRead, read_triage, record_decision
from services.keystore import KeyStore, signing_key_for
from services.settings import Settings
from services.trust import load_trust

jtai_app = typer.Typer(help="JTAI triage: open considerations and decisions.", no_args_is_help=True)

AsOption = Annotated[
    Inspectorate,
    typer.Option(
        "--as",
        help="The inspectorate you act for on the JTAI programme (it signs the audit record).",
        case_sensitive=False,
    ),
]
IdArgument = Annotated[str, typer.Argument(help="The consideration's id.", show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON Lines, for scripts.")]

_KINDS = {
    CONCERN_RAISED: "concern",
    EXCEPTIONAL_PRACTICE_IDENTIFIED: "exceptional practice",
    RECOMMENDATION_MADE: "recommendation",
    RECOMMENDATION_REVIEWED: "recommendation review",
}


def _id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        _fail("ID must be a consideration's id (a UUID, as `liaison jtai list` shows)", INVALID)


def _decision(text: str) -> JtaiDecision:
    try:
        return JtaiDecision(text.lower())
    except ValueError:
        choices = ", ".join(d.value for d in JtaiDecision)
        _fail(f"--decision must be one of {choices}", INVALID)


def _day(when: dt.datetime | None) -> str:
    return "?" if when is None else when.astimezone(dt.UTC).strftime("%Y-%m-%d")


def _minute(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def _judged(contributor: Contributor) -> str:
    parts = []
    if contributor.finding is not None:
        parts.append(f"{contributor.finding.value}, severity {contributor.severity}")
    if contributor.immediate_risk:
        parts.append("immediate risk")
    if contributor.progress is not None:
        parts.append(contributor.progress.value)
    return f" ({'; '.join(parts)})" if parts else ""


def _contributor_lines(contributor: Contributor, *, summary: bool) -> list[str]:
    """Lines about one contributor, each safe to show (``clean``: no line breaks)."""
    if not contributor.found:
        return [f"{contributor.id} (not on the feed)"]
    publisher = contributor.publisher.value if contributor.publisher else "?"
    kind = clean(_KINDS.get(contributor.type or "", contributor.type or "?"))
    lines = [
        f"{publisher} {kind}{_judged(contributor)}, {_day(contributor.occurred_at)}"
        f"  {contributor.id}"
    ]
    if summary and contributor.summary:
        lines.append(f"  {clean(contributor.summary)}")
    lines.extend(
        f"  -> {o.programme.value}: {o.outcome.value} ({_day(o.at)})" for o in contributor.outcomes
    )
    if not contributor.outcomes:
        lines.append("  -> no outcome yet")
    return lines


def _decision_text(decision: DecisionShown | None) -> str:
    if decision is None:
        return "none yet"
    return f"{decision.decision.value} by {decision.source.value}, {_minute(decision.at)}"


def _window(item: TriageItem) -> str:
    c = item.consideration
    return f"{_day(c.window_start)} to {_day(c.window_end)}"


def _lines(*parts: str) -> Text:
    """One cell of several lines, each part cleaned on its own (none can add a line)."""
    return cell("\n".join(clean(part) for part in parts), multiline=True)


def _table(items: tuple[TriageItem, ...], title: str) -> Table:
    table = Table(title=title, show_lines=True)
    for column in ("consideration", "area", "theme", "trigger", "window", "contributing"):
        table.add_column(column)
    table.add_column("decision")
    for item in items:
        c = item.consideration
        contributing = [", ".join(i.value for i in c.contributing_inspectorates)]
        for contributor in item.contributors:
            contributing.extend(_contributor_lines(contributor, summary=False))
        table.add_row(
            cell(str(c.id)),
            _lines(f"{item.area_name} ({c.area})", item.region),
            cell(c.theme.value),
            cell(c.trigger.value),
            cell(_window(item)),
            _lines(*contributing),
            cell(_decision_text(item.current)),
        )
    return table


def _notes(read: TriageRead) -> None:
    if read.refused:
        _say(
            f"note: {read.refused} record(s) on the topics read did not verify and are not"
            " shown (they are logged with their reasons)"
        )
    if read.view.ignored:
        _say(
            f"note: {len(read.view.ignored)} decision(s) ignored: their consideration is not"
            " on the log, their area or theme is not its, or another inspectorate used"
            " their id"
        )
    if read.view.conflicts:
        _say(
            f"note: {len(read.view.conflicts)} event id(s) used by two publishers: neither"
            " finding or outcome is shown"
        )


def _json_lines(items: tuple[TriageItem, ...]) -> None:
    for item in items:
        sys.stdout.write(json.dumps(item_json(item), ensure_ascii=False) + "\n")
    sys.stdout.flush()


async def _read(
    settings: Settings,
    as_: Inspectorate,
    *,
    include_decided: bool = False,
    area: str | None = None,
    theme: Theme | None = None,
    consideration_id: uuid.UUID | None = None,
) -> TriageRead:
    trust = await load_trust(settings)
    key = signing_key_for(as_.value, settings, KeyStore(settings), trust)
    return await read_triage(
        settings,
        acting_for=as_,
        key=key,
        now=_now(),
        include_decided=include_decided,
        area=area,
        theme=theme,
        consideration_id=consideration_id,
        trust=trust,
    )


@jtai_app.command("list")
def jtai_list(
    as_: AsOption,
    all_: Annotated[
        bool, typer.Option("--all", help="Every consideration, decided ones too.")
    ] = False,
    area: Annotated[str | None, typer.Option("--area", help="GSS code.")] = None,
    theme: Annotated[str | None, typer.Option("--theme", help="A theme, e.g. neglect.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the open JTAI considerations (with --all, every one and its decision).

    Shows each one's area, theme, trigger, window and contributing findings with the
    outcomes they received. The read is audited as receipt, signed by --as's key.
    """
    settings = _settings()
    try:
        check_filters(area=area, theme=theme)
    except SchemaError as exc:
        _fail(str(exc), INVALID)
    chosen = Theme(theme) if theme is not None else None

    async def run() -> TriageRead:
        return await _read(settings, as_, include_decided=all_, area=area, theme=chosen)

    read = _run(run)
    if as_json:
        _json_lines(read.shown)
    else:
        what = "JTAI considerations" if all_ else "open JTAI considerations"
        _wide().print(_table(read.shown, f"{len(read.shown)} {what}"))
    _notes(read)


def _show(item: TriageItem) -> None:
    c = item.consideration
    console = _wide()
    state = "open" if item.is_open else "decided"
    console.print(f"consideration {c.id} ({state})", highlight=False)
    fields = [
        ("area", f"{item.area_name} ({c.area}), {item.region}"),
        ("theme", c.theme.value),
        ("trigger", c.trigger.value),
        ("window", _window(item)),
        ("raised by", f"a finding of {_minute(c.occurred_at)}"),
        ("inspectorates", ", ".join(i.value for i in c.contributing_inspectorates)),
        ("rationale", c.rationale),
        ("decision", _decision_text(item.current)),
    ]
    for name, value in fields:
        console.print(Text(f"  {name}: ").append(cell(value, multiline=True)), highlight=False)
    console.print("contributing findings:", highlight=False)
    for contributor in item.contributors:
        for line in _contributor_lines(contributor, summary=True):
            console.print(Text(f"  {line}"), highlight=False)
    if item.decisions:
        console.print("decisions (oldest first):", highlight=False)
        for decision in item.decisions:
            reason = clean(decision.reason, multiline=True).replace("\n", "\n    ")
            console.print(
                Text(f"  {_decision_text(decision)}  {decision.id}\n    {reason}"),
                highlight=False,
            )


@jtai_app.command("show")
def jtai_show(consideration: IdArgument, as_: AsOption, as_json: JsonOption = False) -> None:
    """Show one consideration in full: findings, summaries, outcomes, every decision.

    The read is audited as receipt, signed by --as's key.
    """
    settings = _settings()
    wanted = _id(consideration)

    async def run() -> TriageRead:
        return await _read(settings, as_, consideration_id=wanted)

    read = _run(run)
    (item,) = read.shown
    if as_json:
        _json_lines(read.shown)
    else:
        _show(item)
    _notes(read)


@jtai_app.command("decide")
def jtai_decide(
    consideration: IdArgument,
    decision: Annotated[
        str,
        typer.Option("--decision", help="shortlist, select, decline or defer.", show_default=False),
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why (no personal data: it is linted).")],
    as_: AsOption,
) -> None:
    """Record the JTAI programme's decision on a consideration, signed by --as's key.

    select and decline close it (it leaves `liaison jtai list`); shortlist and defer keep
    it open. The decision and its audit record are published in one transaction. Prints
    the decision's id.
    """
    settings = _settings()
    wanted = _id(consideration)
    choice = _decision(decision)

    async def run() -> None:
        trust = await load_trust(settings)
        key = signing_key_for(as_.value, settings, KeyStore(settings), trust)
        try:
            decided = await record_decision(
                settings, wanted, choice, reason, key=key, now=_now(), trust=trust
            )
        except SchemaError as exc:
            _fail(str(exc), INVALID)
        out.print(str(decided.event.id), highlight=False)
        state = "stays open" if decided.event.decision in OPEN_DECISIONS else "is closed"
        _say(
            f"recorded {choice.value} on {wanted} as {as_.value}"
            f" ({decided.event.area}, {decided.event.theme.value}); the consideration {state}"
        )

    _run(run)
