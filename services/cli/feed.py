"""`liaison feed read`, a client of the reader service, and `liaison serve reader`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from schemas.errors import SchemaError
from services.cli._common import INVALID, _fail, _run, _say, _settings, _stop_on_signals, _when
from services.cli.serve import serve_app
from services.inputs import check_analyst, check_filters, check_purpose
from services.reader.app import DEFAULT_LIMIT, MAX_LIMIT
from services.reader.client import FeedAnswer, ReaderError, read_feed
from services.reader.service import serve_reader
from services.settings import Settings

feed_app = typer.Typer(help="Analysts' feeds, through the reader service.", no_args_is_help=True)


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
            json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
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


@feed_app.command("read")
def feed_read(
    purpose: Annotated[str, typer.Option("--purpose", help="Why you are reading (audited).")],
    area: Annotated[str | None, typer.Option("--area", help="GSS code.")] = None,
    theme: Annotated[str | None, typer.Option("--theme", help="A theme, e.g. neglect.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601.")] = None,
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
