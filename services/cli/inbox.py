"""`liaison inbox` (a programme's received findings and their outcomes) and
`liaison unrouted list`: a thin layer over ``services.inbox``.

Every text taken from an event or a route reaches the terminal through
``services.cli._display`` (no control characters, never rich markup); ``--json`` prints
the data as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid
from collections.abc import Callable, Coroutine, Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from consumers.inbox import (
    DEFAULT_WORKING_DAYS,
    LONDON,
    MAX_WORKING_DAYS,
    Inbox,
    InboxRow,
    Reminders,
    Returned,
    Unrouted,
    UnroutedRow,
    returned_document,
    row_document,
    unrouted_document,
)
from schemas.errors import SchemaError
from schemas.events import ConcernRaised, RecommendationMade, RecommendationReviewed, Theme
from schemas.inspectorates import Inspectorate, Programme
from schemas.keys import BUS, OPERATOR, SigningKey, TrustStore
from schemas.outcomes import DeliveryStatus, Outcome, OutcomeRecorded
from services.audit_log import operator
from services.cli._common import INVALID, _fail, _now, _run, _say, _settings, _when, _wide, err
from services.cli._display import cell, clean
from services.inbox import (
    InboxError,
    acting_inspectorate,
    raise_reminders,
    read_inbox,
    read_unrouted,
    record_outcome,
    show_finding,
)
from services.inputs import check_filters
from services.keystore import KeyStore, signing_key_for
from services.settings import Settings
from services.trust import load_trust

inbox_app = typer.Typer(help="A programme's inbox: findings routed to it, and outcomes.")
unrouted_app = typer.Typer(help="Verified events no routing rule took.", no_args_is_help=True)

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

WORKING_DAYS_ENV: Final = "LIAISON_OUTCOME_WORKING_DAYS"
"""Working days a programme has to record an outcome (default 10)."""
_SUMMARY_WIDTH: Final = 80
# Ids and times are copied whole (`inbox show ID`); an area's name and code stay together.
_COLUMN: Final[dict[str, dict[str, Any]]] = {
    "id": {"no_wrap": True, "min_width": 36},
    "routed (London), by": {"min_width": 16},
    "at (London)": {"no_wrap": True},
    "area": {"min_width": 24},
    "status": {"min_width": 26},
}

# -- options and their checks ---------------------------------------------------------------

ProgrammeOption = Annotated[
    str | None,
    typer.Option("--programme", "-p", help="The programme, e.g. peel, ilacs, clas or jtai."),
]
AsOption = Annotated[
    str | None,
    typer.Option(
        "--as", help="The inspectorate you act for (required for jtai; else the programme's)."
    ),
]
WorkingDaysOption = Annotated[
    str | None,
    typer.Option(
        "--working-days",
        envvar=WORKING_DAYS_ENV,
        help=f"Working days an outcome is due within (default {DEFAULT_WORKING_DAYS}).",
        show_envvar=True,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON Lines, for scripts.")]


def _choice(value: str, kind: type[E], option: str) -> E:
    """``value`` as one of the enum ``kind``'s values, or one `error:` line listing them."""
    try:
        return kind(value.strip().lower())
    except ValueError:
        names = ", ".join(str(member) for member in kind)
        _fail(f"{option} must be one of {names}", INVALID)


def _programme(value: str | None) -> Programme:
    if value is None:
        _fail("--programme is required (e.g. --programme peel)", INVALID)
    return _choice(value, Programme, "--programme")


def _reader(programme: Programme, as_: str | None) -> Inspectorate:
    acting = None if as_ is None else _choice(as_, Inspectorate, "--as")
    try:
        return acting_inspectorate(programme, acting)
    except InboxError as exc:
        _fail(str(exc), INVALID)


def _working_days(value: str | None) -> int:
    if value is None:
        return DEFAULT_WORKING_DAYS
    try:
        days = int(value.strip())
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_WORKING_DAYS:
        _fail(
            f"--working-days ({WORKING_DAYS_ENV}) must be a whole number from 1 to"
            f" {MAX_WORKING_DAYS}",
            INVALID,
        )
    return days


def _finding_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        _fail("ID must be an event id (a UUID, as `liaison inbox` lists them)", INVALID)


Work = Callable[[Settings, SigningKey, TrustStore], Coroutine[Any, Any, T]]


def _with_key(owner: str, work: Work[T]) -> Callable[[Settings], Coroutine[Any, Any, T]]:
    """Load the trust store and ``owner``'s signing key, then run ``work(settings, key,
    trust)``."""

    async def run(settings: Settings) -> T:
        trust = await load_trust(settings)
        key = signing_key_for(owner, settings, KeyStore(settings), trust)
        return await work(settings, key, trust)

    return run


# -- printing --------------------------------------------------------------------------------


def _london(value: dt.datetime) -> str:
    return f"{value.astimezone(LONDON):%Y-%m-%d %H:%M}"


def _trim(text: str, width: int = _SUMMARY_WIDTH) -> str:
    """``text`` on one line, safe to show (``clean``), at most ``width`` characters."""
    line = clean(" ".join(text.split()))
    return line if len(line) <= width else line[: width - 1] + "…"


def _lines(*parts: str) -> Text:
    """One cell of several lines, each part cleaned on its own (none can add a line)."""
    return cell("\n".join(clean(part) for part in parts), multiline=True)


def _warn_refused(refused: Mapping[str, int]) -> None:
    total = sum(refused.values())
    if total:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in refused.items())
        _say(
            f"warning: {total} record(s) did not verify and are not shown ({reasons});"
            " see `liaison quarantine list` and the audit log"
        )


def _what(row: InboxRow | UnroutedRow) -> str:
    finding = row.finding
    if isinstance(finding, ConcernRaised):
        risk = ", immediate risk" if finding.immediate_risk else ""
        return f"{finding.finding.value} (severity {finding.severity}{risk})"
    if isinstance(finding, RecommendationReviewed):
        return f"review: {finding.progress.value} ({finding.recipient.value})"
    if isinstance(finding, RecommendationMade):
        return f"recommendation to {finding.recipient.value}"
    return row.kind


def _area(row: InboxRow | UnroutedRow) -> Text:
    area = f"{row.area_name} ({row.finding.area})"
    return _lines(area, row.police_force) if row.police_force else _lines(area)


def _marks(row: InboxRow) -> Text:
    marks = []
    outcome = row.outcome
    if outcome is not None:
        marks.append(f"outcome: {outcome.outcome.value}")
    elif row.overdue:
        marks.append(f"OVERDUE (due {row.due_date:%Y-%m-%d})")
    else:
        marks.append(f"due {row.due_date:%Y-%m-%d}")
    if row.reminder is not None:
        marks.append("reminder raised")
    delivery = row.delivery
    if delivery is not None:
        if delivery.status is DeliveryStatus.REFUSED:
            marks.append(f"delivery REFUSED ({delivery.attempts} tries)")
        else:
            marks.append("delivered")
    if row.jtai_selected:
        marks.append("JTAI selected: " + ", ".join(t.value for t in row.jtai_selected))
    return _lines(*marks)


def _rows_table(inbox: Inbox, *, everything: bool) -> Table:
    waiting = "" if everything else " awaiting an outcome"
    table = Table(title=f"{inbox.queue}: {len(inbox.rows)} finding(s){waiting}")
    columns = (
        "routed (London), by", "id", "area", "finding", "theme, agencies", "reason", "summary",
        "status",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold", **_COLUMN.get(column, {}))
    for row in inbox.rows:
        finding = row.finding
        agencies = ", ".join(a.value for a in finding.subject_agencies)
        table.add_row(
            _lines(_london(row.routed_at), finding.source.value), cell(str(row.id)), _area(row),
            cell(_what(row)), _lines(finding.theme.value, agencies), cell(_trim(row.reason)),
            cell(_trim(finding.summary)), _marks(row),
        )  # fmt: skip
    return table


def _returned_line(item: Returned) -> tuple[str, ...]:
    event = item.event
    if isinstance(event, OutcomeRecorded):
        what = f"{event.source.value} ({event.programme.value}): {event.outcome.value}"
        return (_london(item.at), "outcome", str(event.finding_id), what, _trim(event.note))
    what = f"{event.programme.value}: no outcome by {_london(event.due_at)}"
    return (_london(item.at), "overdue", str(event.finding_id), what, "")


def _returned_table(inbox: Inbox) -> Table:
    table = Table(title=f"Outcomes of our findings ({inbox.programme.value})")
    for column in ("at (London)", "kind", "finding", "programme: outcome", "note"):
        table.add_column(column, overflow="fold")
    for item in inbox.returned:
        table.add_row(*(cell(part) for part in _returned_line(item)))
    return table


def _json_lines(documents: list[dict[str, Any]]) -> None:
    for document in documents:
        sys.stdout.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# -- liaison inbox ---------------------------------------------------------------------------


@inbox_app.callback(invoke_without_command=True)
def inbox_list(
    context: typer.Context,
    programme: ProgrammeOption = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every finding routed here, with its outcome.")
    ] = False,
    area: Annotated[str | None, typer.Option("--area", help="GSS code.")] = None,
    theme: Annotated[str | None, typer.Option("--theme", help="A theme, e.g. neglect.")] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="The publishing inspectorate.")
    ] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue findings.")] = False,
    json_: JsonOption = False,
    as_: AsOption = None,
    working_days: WorkingDaysOption = None,
) -> None:
    """List findings routed to a programme with no outcome yet (--all: every one).

    Also lists the outcomes of the programme's own findings. Reading is audited as receipt.
    """
    if context.invoked_subcommand is not None:
        return
    chosen = _programme(programme)
    reader = _reader(chosen, as_)
    days = _working_days(working_days)
    try:
        check_filters(area=area, theme=theme)
    except SchemaError as exc:
        _fail(str(exc), INVALID)
    wanted_theme = None if theme is None else Theme(theme)
    wanted_source = None if source is None else _choice(source, Inspectorate, "--source")
    settings = _settings()

    async def work(settings: Settings, key: SigningKey, trust: TrustStore) -> Inbox:
        return await read_inbox(
            settings, chosen, acting_for=reader, key=key, include_decided=everything,
            area=area, theme=wanted_theme, source=wanted_source, overdue_only=overdue,
            working_days=days, now=_now(), trust=trust,
        )  # fmt: skip

    inbox = _run(lambda: _with_key(reader.value, work)(settings))
    _warn_refused(inbox.refused)
    if json_:
        _json_lines(
            [row_document(r) for r in inbox.rows] + [returned_document(r) for r in inbox.returned]
        )
        return
    console = _wide()
    console.print(_rows_table(inbox, everything=everything))
    if inbox.returned:
        console.print(_returned_table(inbox))


@inbox_app.command("show")
def inbox_show(
    finding_id: Annotated[str, typer.Argument(metavar="ID", help="The finding's event id.")],
    programme: ProgrammeOption = None,
    json_: JsonOption = False,
    as_: AsOption = None,
    working_days: WorkingDaysOption = None,
) -> None:
    """One finding routed to the programme in full (audited as receipt).

    With its outcomes, reminder, delivery results and JTAI status.
    """
    chosen = _programme(programme)
    reader = _reader(chosen, as_)
    days = _working_days(working_days)
    wanted = _finding_id(finding_id)
    settings = _settings()

    async def work(settings: Settings, key: SigningKey, trust: TrustStore) -> Inbox:
        return await show_finding(
            settings, chosen, wanted, acting_for=reader, key=key, working_days=days,
            now=_now(), trust=trust,
        )  # fmt: skip

    inbox = _run(lambda: _with_key(reader.value, work)(settings))
    _warn_refused(inbox.refused)
    row = inbox.rows[0]
    if json_:
        _json_lines([row_document(row, history=True)])
        return
    _print_row(row)


def _print_row(row: InboxRow) -> None:
    finding = row.finding
    details = Table(show_header=False, title=f"{finding.type} {finding.id}")
    details.add_column("field", style="bold")
    details.add_column("value", overflow="fold")
    document = row_document(row)
    for name in (
        "publisher", "published_under", "occurred_at", "routed_at", "area", "area_name",
        "police_force", "theme", "finding", "severity", "immediate_risk", "recipient",
        "force", "recommendation_id", "progress", "rules", "reason", "due_date", "overdue",
        "reminder_id", "jtai_selected_themes",
    ):  # fmt: skip
        value = document.get(name)
        if value is None or value == []:
            continue
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        details.add_row(name, cell(shown))
    details.add_row("subject_agencies", cell(", ".join(a.value for a in finding.subject_agencies)))
    details.add_row("summary", cell(finding.summary, multiline=True))
    console = _wide()
    console.print(details)
    outcomes = Table(title="Outcomes (the last stands)")
    for column in ("at (London)", "id", "by", "outcome", "note"):
        outcomes.add_column(column, overflow="fold")
    for outcome in row.outcomes:
        outcomes.add_row(
            _london(outcome.occurred_at), str(outcome.id), cell(outcome.source.value),
            cell(outcome.outcome.value), cell(outcome.note, multiline=True),
        )  # fmt: skip
    if not row.outcomes:
        state = "OVERDUE" if row.overdue else "due"
        outcomes.add_row("", "", "", f"none yet ({state} {row.due_date:%Y-%m-%d})", "")
    console.print(outcomes)
    if row.deliveries:
        delivery = Table(title="Delivery")
        for column in ("at (London)", "status", "attempts", "last error"):
            delivery.add_column(column)
        for result in row.deliveries:
            delivery.add_row(
                _london(result.occurred_at), cell(result.status.value), str(result.attempts),
                cell(result.last_error or ""),
            )  # fmt: skip
        console.print(delivery)


@inbox_app.command("decide")
def inbox_decide(
    finding_id: Annotated[str, typer.Argument(metavar="ID", help="The finding's event id.")],
    outcome: Annotated[
        str,
        typer.Option("--outcome", help="One of: " + ", ".join(o.value for o in Outcome) + "."),
    ],
    note: Annotated[str, typer.Option("--note", help="Why, in your words (no personal data).")],
    programme: ProgrammeOption = None,
    as_: AsOption = None,
) -> None:
    """Record what the programme did with a finding routed to it; print the outcome's id.

    A signed outcome on liaison.outcomes, audited in the same Kafka transaction.
    """
    chosen = _programme(programme)
    reader = _reader(chosen, as_)
    wanted = _finding_id(finding_id)
    given = _choice(outcome, Outcome, "--outcome")
    settings = _settings()

    async def work(settings: Settings, key: SigningKey, trust: TrustStore) -> OutcomeRecorded:
        try:
            return await record_outcome(
                settings, chosen, wanted, given, note, key=key, now=_now(), trust=trust
            )
        except SchemaError as exc:  # the note, say: invalid input, not a failure
            _fail(str(exc), INVALID)

    recorded = _run(lambda: _with_key(reader.value, work)(settings))
    sys.stdout.write(f"{recorded.id}\n")
    _say(f"recorded {given.value} for {wanted} ({chosen.value}, as {reader.value})")


@inbox_app.command("remind")
def inbox_remind(
    programmes: Annotated[
        list[str] | None,
        typer.Option("--programme", "-p", help="A programme (repeatable; default: every one)."),
    ] = None,
    working_days: WorkingDaysOption = None,
) -> None:
    """Raise one reminder for each finding with no outcome in time; print their ids.

    Signed by the bus's key and audited; for cron: running it again raises nothing twice.
    """
    chosen = [_choice(p, Programme, "--programme") for p in programmes or []]
    days = _working_days(working_days)
    settings = _settings()

    async def work(settings: Settings, key: SigningKey, trust: TrustStore) -> Reminders:
        return await raise_reminders(
            settings, chosen or None, key=key, working_days=days, now=_now(), trust=trust
        )

    reminders = _run(lambda: _with_key(BUS, work)(settings))
    for reminder in reminders.raised:
        sys.stdout.write(f"{reminder.id}\n")
    for finding_id, why in reminders.skipped:
        err.print(
            f"warning: no reminder can be raised for {finding_id}: {clean(why)}",
            markup=False, highlight=False, emoji=False,
        )  # fmt: skip
    _say(f"raised {len(reminders.raised)} reminder(s) ({days} working days)")


# -- liaison unrouted --------------------------------------------------------------------------


def _unrouted_table(unrouted: Unrouted) -> Table:
    table = Table(title=f"{unrouted.queue}: {len(unrouted.rows)} finding(s) no rule took")
    columns = (
        "at (London)", "id", "publisher", "area", "type", "theme", "finding", "agencies",
        "summary",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold", **_COLUMN.get(column, {}))
    for row in unrouted.rows:
        finding = row.finding
        table.add_row(
            cell(_london(row.at)), cell(str(finding.id)), cell(finding.source.value), _area(row),
            cell(row.kind), cell(finding.theme.value), cell(_what(row)),
            cell(", ".join(a.value for a in finding.subject_agencies)),
            cell(_trim(finding.summary)),
        )  # fmt: skip
    return table


@unrouted_app.command("list")
def unrouted_list(
    json_: JsonOption = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Only those routed since (ISO 8601).")
    ] = None,
) -> None:
    """Verified findings no routing rule took, so operators can review the rules.

    The read is audited, signed by the operator key.
    """
    start = _when(since, "--since")
    settings = _settings()
    actor = operator()

    async def work(settings: Settings, key: SigningKey, trust: TrustStore) -> Unrouted:
        return await read_unrouted(
            settings, key=key, actor=actor, since=start, now=_now(), trust=trust
        )

    unrouted = _run(lambda: _with_key(OPERATOR, work)(settings))
    _warn_refused(unrouted.refused)
    if json_:
        _json_lines([unrouted_document(r) for r in unrouted.rows])
        return
    _wide().print(_unrouted_table(unrouted))
