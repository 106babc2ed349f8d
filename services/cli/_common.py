"""What every ``liaison`` command shares: the app, consoles, settings, running, failing."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, TypeVar

import typer
from rich.console import Console

from schemas.errors import ConfigurationError, LiaisonError, SchemaError
from schemas.keys import AUDIT, SigningKey, TrustStore
from services.keystore import KeyStore, signing_key_for
from services.log import configure_logging
from services.settings import Settings, load_settings

T = TypeVar("T")

INVALID = 2
"""Exit code of `validate` when any event is invalid (1 is for Liaison's own failures)."""

app = typer.Typer(
    name="liaison",
    help="Liaison: the signed, audited event bus of England's child-protection inspectorates.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (a service stops cleanly on either)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


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


def _print_json(document: object, output: Path | None) -> None:
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        _say(f"wrote {output}")


def _audit_key(settings: Settings, trust: TrustStore) -> SigningKey:
    """The audit service's own key (owner ``audit``): signs checkpoints and its records."""
    return signing_key_for(AUDIT, settings, KeyStore(settings), trust)
