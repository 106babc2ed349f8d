"""`liaison feed` (the live feed, backfill then follow), `liaison feed read`, clients of
the reader service, and `liaison serve reader`.

`liaison feed` checks every filter here first (an unknown or retired area, a misspelt
theme: one ``error:`` line naming the nearest valid values, exit 2, before any network),
then asks the reader service for its live feed (``GET /v1/feed/stream``); the service
applies the analyst's scope and audits every event it sends (view ``terminal.feed``).
On a terminal it shows a table, newest at the bottom, the last screenful; with ``--json``
it writes JSON Lines (one ``Item.as_json()`` a line, flushed per line) for scripts.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, Final, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from consumers.analysis import FeedQuery, trim
from schemas.errors import SchemaError
from services.cli._common import INVALID, _fail, _run, _say, _settings, _stop_on_signals, _when
from services.cli._display import cell
from services.cli.serve import serve_app
from services.inputs import check_analyst, check_filters, check_purpose, check_time
from services.reader.app import DEFAULT_LIMIT, MAX_LIMIT, MAX_STREAM_LIMIT, check_query
from services.reader.client import FeedAnswer, ReaderError, read_feed, stream_feed
from services.reader.query import parse_feed_areas
from services.reader.scope import parse_themes
from services.reader.service import serve_reader
from services.settings import Settings

feed_app = typer.Typer(
    help="Analysts' feeds, through the reader service: `liaison feed --purpose ...` follows"
    " findings live; `liaison feed read` reads once.",
    invoke_without_command=True,
    no_args_is_help=False,
)

LONDON: Final = ZoneInfo("Europe/London")
_KEPT_ROWS: Final = 2000
_CHROME_LINES: Final = 6
"""Lines of the live table that are not rows: header, its rule, status, margins."""
_SUMMARY_CHARS: Final = 160
_SEVERE: Final = 3
_UNPROCESSABLE: Final = 422
"""The service's answer to a query it cannot use (checked here first, so rare)."""


def _token(settings: Settings, token_file: Path | None) -> str:
    """The analyst's credential: --token-file, LIAISON_ANALYST_TOKEN, then ..._TOKEN_FILE."""
    if token_file is None and settings.analyst_token is not None:
        return settings.analyst_token.get_secret_value()
    path = token_file or settings.analyst_token_file
    source = "--token-file" if token_file is not None else "LIAISON_ANALYST_TOKEN_FILE"
    if path is None:
        _fail(
            "no analyst credential: set LIAISON_ANALYST_TOKEN or LIAISON_ANALYST_TOKEN_FILE,"
            " or pass --token-file (an operator issues one with `liaison analysts add`)"
        )
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError as exc:
        _fail(f"cannot read the credential file {path} ({source}): {exc.strerror}")


def _write(answer: FeedAnswer, output: Path | None, *, envelopes: bool) -> None:
    if envelopes:
        lines = [envelope.encode() + b"\n" for envelope in answer.envelopes or []]
    else:
        lines = [
            json.dumps(event, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
            for event in answer.events
        ]
    what = "signed envelope(s)" if envelopes else "verified event(s)"
    if output is None:
        sys.stdout.buffer.write(b"".join(lines))
        sys.stdout.flush()
    else:
        output.write_bytes(b"".join(lines))
        _say(f"wrote {answer.returned} {what} to {output}")
    if answer.truncated:
        _say(
            f"note: more events match; read on with --since {answer.next_since}"
            f" (at most {MAX_LIMIT} a read)"
        )


def _one_area(area: str | None) -> str | None:
    """``--area`` of `feed read`: one live authority's code, from a code or a name."""
    if area is None:
        return None
    try:
        codes = parse_feed_areas([area], dt.datetime.now(dt.UTC).date())
    except SchemaError as exc:
        _fail(f"--area: {exc}", INVALID)
    if len(codes) != 1:
        _fail(
            f"--area: the name stands for {len(codes)} authorities ({', '.join(codes)}): give one"
            " code (`liaison feed --area` takes several)",
            INVALID,
        )
    return codes[0]


def _one_theme(theme: str | None) -> str | None:
    """``--theme`` of `feed read`: a theme's wire value; a misspelling names the nearest."""
    if theme is None:
        return None
    try:
        (found,) = parse_themes([theme])
    except SchemaError as exc:
        _fail(f"--theme: {exc}", INVALID)
    return found.value


@feed_app.command("read")
def feed_read(
    purpose: Annotated[str, typer.Option("--purpose", help="Why you are reading (audited).")],
    area: Annotated[
        str | None, typer.Option("--area", help="One area: a GSS code or a name (Leeds).")
    ] = None,
    theme: Annotated[str | None, typer.Option("--theme", help="A theme, e.g. neglect.")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="ISO 8601: the broker's append time (when the bus took the event), not when"
            " the finding occurred (`liaison feed --since` is that).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="Most events to return.")
    ] = DEFAULT_LIMIT,
    envelopes: Annotated[
        bool, typer.Option("--envelopes", help="Write the signed envelopes, not the events.")
    ] = False,
    output: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="Your credential (else LIAISON_ANALYST_TOKEN[_FILE])."),
    ] = None,
    analyst: Annotated[
        str | None,
        typer.Option(
            "--analyst", help="Optional: your identity is your credential's; must match it."
        ),
    ] = None,
) -> None:
    """Read verified events in your scope from the reader service; the service audits it."""
    settings = _settings()
    if analyst is not None:
        try:
            analyst = check_analyst(analyst)
        except SchemaError as exc:
            _fail(f"--analyst: {exc}", INVALID)
    try:
        purpose = check_purpose(purpose)
    except SchemaError as exc:
        _fail(f"--purpose: {exc}", INVALID)
    area, theme = _one_area(area), _one_theme(theme)
    try:
        check_filters(area=area, theme=theme)
    except SchemaError as exc:
        _fail(str(exc), INVALID)
    start = _when(since, "--since")
    request: dict[str, Any] = {"purpose": purpose, "limit": limit, "envelopes": envelopes}
    optional = {
        "area": area,
        "theme": theme,
        "since": start.isoformat() if start else None,
        "analyst": analyst,
    }
    request.update({k: v for k, v in optional.items() if v is not None})
    token = _token(settings, token_file)
    try:
        answer = read_feed(settings.reader_url, token, request)
    except ReaderError as exc:
        _fail(str(exc))
    _write(answer, output, envelopes=envelopes)


@serve_app.command("reader")
def serve_reader_command() -> None:
    """Serve analysts' feed reads over HTTP (LIAISON_READER_HOST:PORT) until stopped.

    Each analyst authenticates with the credential an operator issued; each read is kept
    to their scope and audited, signed with the reader's key. Started while the broker is
    down, it waits for it.
    """
    settings = _settings(service=True)

    async def serve() -> int:
        return await serve_reader(settings, _stop_on_signals())

    raise typer.Exit(_run(serve))


# -- liaison feed: the live feed -----------------------------------------------------------


def _at(text: str | None, option: str) -> dt.datetime | None:
    """``--since``/``--until``/``--received-since``: ISO 8601 (UTC without an offset)."""
    if text is None:
        return None
    try:
        return check_time(text, option)
    except SchemaError as exc:
        _fail(str(exc), INVALID)


def _iso(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if when else None


def _params(purpose: str, query: FeedQuery, *, follow: bool, limit: int) -> dict[str, Any]:
    """The stream's query string: the query as checked here (codes, wire values)."""
    params: dict[str, Any] = {
        "purpose": purpose,
        "area": sorted(query.areas),
        "region": sorted(query.regions),
        "theme": sorted(t.value for t in query.themes),
        "source": sorted(query.sources),
        "type": sorted(query.kinds),
        "severity": str(query.min_severity) if query.min_severity is not None else None,
        "since": _iso(query.since),
        "until": _iso(query.until),
        "received_since": _iso(query.received_since),
        "follow": "1" if follow else "0",
        "limit": str(limit),
    }
    return {k: v for k, v in params.items() if v}


def _text(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    return "" if value is None else str(value)


def _when_shown(text: str) -> str:
    """An ISO time as the table shows it: Europe/London, to the minute."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return when.astimezone(LONDON).strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError):
        return "?"


def _severity(row: dict[str, Any]) -> Text:
    severity = row.get("severity")
    if not isinstance(severity, int):
        return Text("-", style="dim")
    style = "bold red" if severity >= _SEVERE else "yellow" if severity > 1 else ""
    return Text(f"{severity}{'!' if row.get('immediate_risk') is True else ''}", style=style)


def _agencies(row: dict[str, Any]) -> Text:
    agencies = row.get("subject_agencies")
    return cell(", ".join(map(str, agencies)) if isinstance(agencies, list) else "")


_CELLS: Final[dict[str, Callable[[dict[str, Any]], RenderableType]]] = {
    "time": lambda row: _when_shown(_text(row, "occurred_at")),
    "area": lambda row: cell(_text(row, "area_name") or _text(row, "area")),
    "region": lambda row: cell(_text(row, "region")),
    "publisher": lambda row: cell(_text(row, "source")),
    "finding": lambda row: cell(_text(row, "finding") or _text(row, "kind")),
    "theme": lambda row: cell(_text(row, "theme")),
    "sev": _severity,
    "agencies": _agencies,
    "summary": lambda row: cell(trim(_text(row, "summary"), _SUMMARY_CHARS)),
}
"""What each column shows of a row (every text through ``cell``: no control characters,
never markup)."""
_WIDEST: Final = {
    "time": 16, "area": 20, "region": 24, "publisher": 13, "finding": 20, "theme": 16,
    "sev": 3, "agencies": 24, "summary": None,
}  # fmt: skip
_SUMMARY_MIN: Final = 24
_DROPPED_FIRST: Final = ("region", "agencies", "publisher", "theme", "finding")


def _columns(width: int) -> list[str]:
    """The columns that fit ``width`` (each at its widest, three characters apart)."""
    shown = list(_CELLS)
    for name in (None, *_DROPPED_FIRST):
        if name is not None:
            shown.remove(name)
        needed = sum((_WIDEST[c] or _SUMMARY_MIN) + 3 for c in shown)
        if needed <= width:
            break
    return shown


class _Board:
    """What the live table shows: the rows received (newest last) and the counts."""

    def __init__(self, *, follow: bool) -> None:
        self.rows: collections.deque[dict[str, Any]] = collections.deque(maxlen=_KEPT_ROWS)
        self.follow = follow
        self.backfill = 0
        self.live = 0
        self.refused = 0
        self.analyst = ""
        self.caught_up = False

    def take(self, event: str, data: dict[str, Any]) -> None:
        if event == "item":
            self.rows.append(data)
            if self.caught_up:
                self.live += 1
            else:
                self.backfill += 1
        elif event == "caught_up":
            self.caught_up = True
            refused = data.get("refused")
            self.refused = refused if isinstance(refused, int) else 0
            self.analyst = _text(data, "analyst")

    def table(self, rows: Sequence[dict[str, Any]], width: int, *, header: bool = True) -> Table:
        """The rows as a table ``width`` wide: on a narrow terminal the columns that matter
        least go first (``_DROPPED_FIRST``), so the area and summary stay readable."""
        shown = _columns(width)
        table = Table(
            box=box.SIMPLE_HEAD, show_header=header, expand=True, pad_edge=False,
            header_style="bold",
        )  # fmt: skip
        for name in shown:
            most = _WIDEST[name]
            table.add_column(
                name, no_wrap=True, overflow="ellipsis", max_width=most,
                min_width=_SUMMARY_MIN if name == "summary" else None,
                ratio=1 if name == "summary" else None,
            )  # fmt: skip
        for row in rows:
            table.add_row(*(_CELLS[name](row) for name in shown))
        return table

    def status(self) -> Text:
        shown = self.backfill + self.live
        parts = [f"{shown} shown ({self.backfill} earlier, {self.live} live)"]
        if self.analyst:
            parts.insert(0, f"as {self.analyst}")
        if self.refused:
            parts.append(f"{self.refused} unverifiable record(s) not shown")
        if any(row.get("immediate_risk") is True for row in self.rows):
            parts.append("! after sev: immediate risk")
        if not self.caught_up:
            parts.append("catching up...")
        elif self.follow:
            parts.append("following live (Ctrl-C to stop)")
        else:
            parts.append("not following (--no-follow)")
        return Text(" · ".join(parts), style="dim")

    def screen(self, height: int, width: int) -> RenderableType:
        """The last screenful: as many of the newest rows as fit, then the status line."""
        room = max(height - _CHROME_LINES, 1)
        rows = list(self.rows)[-room:]
        return Group(self.table(rows, width), self.status())


def _on_terminal(events: Iterator[tuple[str, dict[str, Any]]], *, follow: bool) -> _Board:
    """The live table, redrawn as events arrive (the backfill once it is all in)."""
    console = Console(highlight=False)
    board = _Board(follow=follow)
    with Live(
        board.screen(console.size.height, console.size.width), console=console, auto_refresh=False,
        vertical_overflow="crop", redirect_stdout=False, redirect_stderr=False,
    ) as live:  # fmt: skip
        for event, data in events:
            board.take(event, data)
            if board.caught_up or board.backfill % 200 == 0:
                live.update(board.screen(console.size.height, console.size.width), refresh=True)
    return board


def _on_pipe(events: Iterator[tuple[str, dict[str, Any]]], *, follow: bool) -> _Board:
    """Tables for a file or pipe: the backfill in one, then each new row as it comes."""
    console = Console(width=200, highlight=False, soft_wrap=False)
    board = _Board(follow=follow)
    for event, data in events:
        board.take(event, data)
        if event == "caught_up":
            console.print(board.table(list(board.rows), console.width))
            _say(board.status().plain)
        elif event == "item" and board.caught_up:
            console.print(board.table([data], console.width, header=False))
    return board


def _as_json(events: Iterator[tuple[str, dict[str, Any]]], *, follow: bool) -> _Board:
    """JSON Lines on stdout, one row a line, flushed per line; the status on stderr."""
    board = _Board(follow=follow)
    for event, data in events:
        board.take(event, data)
        if event == "item":
            line = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        elif event == "caught_up":
            _say(board.status().plain)
    return board


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    del signum, frame
    raise KeyboardInterrupt


def _stop_on_ctrl_c() -> None:
    """Ctrl-C (SIGINT) or SIGTERM ends the feed cleanly (exit 0), even when the shell that
    started it ignores SIGINT (a background job), which Python would otherwise inherit."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


@feed_app.callback()
def feed(
    ctx: typer.Context,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="Why you are reading (audited); required.")
    ] = None,
    area: Annotated[
        list[str] | None,
        typer.Option(
            "--area",
            help="Areas: GSS codes or names (Leeds, 'Kingston upon Hull, City of'); repeat"
            " or separate with commas.",
        ),
    ] = None,
    region: Annotated[
        list[str] | None, typer.Option("--region", help="Regions, e.g. 'North West'.")
    ] = None,
    theme: Annotated[
        list[str] | None, typer.Option("--theme", help="Themes, e.g. neglect.")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Publishers, e.g. ofsted, cqc.")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            help="Types: concern, exceptional_practice, recommendation, review, outcome,"
            " consideration, decision.",
        ),
    ] = None,
    severity: Annotated[
        str | None, typer.Option("--severity", help="The least severity shown (1 to 4).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="From when the finding occurred (ISO 8601 or a date)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Before when the finding occurred (ISO 8601 or a date)."),
    ] = None,
    received_since: Annotated[
        str | None,
        typer.Option(
            "--received-since",
            help="From the broker's append time (when the bus took it; ISO 8601).",
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow/--no-follow",
            help="After the earlier findings, show new ones as they arrive, until Ctrl-C.",
        ),
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON Lines on stdout (one event a line), for scripts.")
    ] = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", min=1, max=MAX_STREAM_LIMIT, help="Most earlier findings shown first."
        ),
    ] = DEFAULT_LIMIT,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="Your credential (else LIAISON_ANALYST_TOKEN[_FILE])."),
    ] = None,
) -> None:
    """Follow verified findings in your scope: the newest first (as a table, or --json),
    then new ones live until Ctrl-C. The reader service audits everything it shows you."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings()
    if purpose is None:
        _fail("--purpose is required: say why you are reading (it is audited)", INVALID)
    try:
        purpose = check_purpose(purpose)
    except SchemaError as exc:
        _fail(f"--purpose: {exc}", INVALID)
    try:
        query = check_query(
            dt.datetime.now(dt.UTC).date(),
            {
                "area": area or [], "region": region or [], "theme": theme or [],
                "source": source or [], "type": kind or [],
                "severity": [severity] if severity is not None else [],
            },
            since=_at(since, "--since"),
            until=_at(until, "--until"),
            received_since=_at(received_since, "--received-since"),
            prefix="--",
        )  # fmt: skip
    except SchemaError as exc:
        _fail(str(exc), INVALID)
    token = _token(settings, token_file)
    params = _params(purpose, query, follow=follow, limit=limit)
    _stop_on_ctrl_c()
    events = stream_feed(settings.reader_url, token, params)
    show = _as_json if as_json else _on_terminal if sys.stdout.isatty() else _on_pipe
    try:
        board = show(events, follow=follow)
    except ReaderError as exc:
        _fail(str(exc), INVALID if exc.status == _UNPROCESSABLE else 1)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except BrokenPipeError:  # `liaison feed --json | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    finally:
        events.close()
    if follow or not board.caught_up:
        _fail(
            f"the reader service ended the live feed after {board.backfill + board.live}"
            " event(s); run the command again to go on"
        )
