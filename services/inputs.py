"""Reading events from a file or stdin: one JSON object, or JSON Lines.

Every read is bounded: the whole input by ``MAX_INPUT_BYTES`` (a stream that never ends
is refused there), each event by ``MAX_EVENT_BYTES``. Sizes are checked before anything
is parsed, and a long line is skipped without being held in memory, so a bad file
cannot exhaust the process.

Also the checks of what an analyst or operator types (``check_analyst``, ``check_purpose``,
``check_reason``, ``check_time``): they are written to the permanent audit log, so they
must be well formed and hold no personal data.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

from schemas.errors import SchemaError
from schemas.events import (
    CONCERN_RAISED,
    EXCEPTIONAL_PRACTICE_IDENTIFIED,
    MAX_EVENT_BYTES,
    InspectorateEvent,
    Theme,
    validate_event,
)
from schemas.minimisation import check_minimised
from schemas.reference import local_authorities

__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_PURPOSE_CHARS",
    "Checked",
    "Document",
    "check_analyst",
    "check_documents",
    "check_filters",
    "check_purpose",
    "check_reason",
    "check_time",
    "read_documents",
]

MAX_INPUT_BYTES: Final = 64 * 1024 * 1024
"""Largest input read (a file, or stdin): a thousand events at the largest size."""

_CHUNK = 64 * 1024
_SHOWN = 64  # bytes of an oversized document kept (never printed; enough to say "it was there")


@dataclass(frozen=True, slots=True)
class Document:
    """One event's bytes and where it came from (``line`` is None for a single object)."""

    line: int | None
    data: bytes
    oversized: bool = False

    @property
    def where(self) -> str:
        """``line N`` for JSON Lines, ``input`` for a single object."""
        return f"line {self.line}" if self.line is not None else "input"


class _Bounded:
    """A stream read in chunks that refuses to go past ``limit`` bytes in all."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._read = 0

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the input."""
        parts: list[bytes] = []
        wanted = size
        while wanted > 0:
            # One byte past the limit is enough to know the input is over it.
            part = self._stream.read(min(wanted, self._limit + 1 - self._read))
            if not part:
                break
            self._read += len(part)
            if self._read > self._limit:
                msg = (
                    f"input is over the {self._limit}-byte limit ({self._limit // 2**20} MiB);"
                    " reading stopped there: split it into smaller files"
                )
                raise SchemaError(msg)
            parts.append(part)
            wanted -= len(part)
        return b"".join(parts)


def read_documents(stream: BinaryIO, *, limit: int = MAX_INPUT_BYTES) -> Iterator[Document]:
    """Yield each event in ``stream``: a single JSON object (any layout) or JSON Lines.

    Blank lines are skipped. A document over ``MAX_EVENT_BYTES`` is yielded with
    ``oversized=True`` and only its first bytes, never parsed. Reading more than
    ``limit`` bytes in all raises ``SchemaError`` (what was yielded before stands).
    """
    source = _Bounded(stream, limit)
    head = source.read(MAX_EVENT_BYTES + 1)
    if _spans_lines(head):
        # One document laid out over several lines: over the event limit it is refused
        # whole (once, not line by line), and nothing more is read.
        if len(head) > MAX_EVENT_BYTES:
            yield Document(None, head[:_SHOWN], oversized=True)
        else:
            yield Document(None, head.strip())
        return
    yield from _json_lines(head, source)


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def _spans_lines(head: bytes) -> bool:
    """Whether the input is one JSON document over several lines rather than JSON Lines.

    It is when its first line opens an object or array that does not close on that line,
    and the next line is not a JSON object of its own (a JSON Lines file whose first line
    is broken stays JSON Lines, so its other lines are judged one by one). Only the
    first two lines are looked at, so a document of any size is placed at once.
    """
    if b"\n" not in head.strip():
        return False  # one line: JSON Lines handles it, and numbers it
    stripped = (line.strip() for line in head.split(b"\n"))
    first, second = itertools.islice((line for line in stripped if line), 2)
    if not first.startswith((b"{", b"[")) or _parses(first):
        return False
    return not (second.startswith(b"{") and _parses(second))


def _json_lines(head: bytes, stream: _Bounded) -> Iterator[Document]:
    buffer = head
    number = 0
    while True:
        newline = buffer.find(b"\n")
        while newline < 0 and len(buffer) <= MAX_EVENT_BYTES:
            more = stream.read(_CHUNK)
            if not more:
                break
            buffer += more
            newline = buffer.find(b"\n")
        if newline < 0 and len(buffer) > MAX_EVENT_BYTES:
            number += 1
            yield Document(number, buffer[:_SHOWN], oversized=True)
            buffer = _skip_line(stream)
            continue
        if newline < 0:  # end of input
            if buffer.strip():
                number += 1
                yield _document(number, buffer)
            return
        line, buffer = buffer[:newline], buffer[newline + 1 :]
        number += 1
        if line.strip():
            yield _document(number, line)


def _document(number: int, line: bytes) -> Document:
    if len(line) > MAX_EVENT_BYTES:
        return Document(number, line[:_SHOWN], oversized=True)
    return Document(number, line.strip())


def _skip_line(stream: _Bounded) -> bytes:
    """Discard the rest of an oversized line; return what follows its newline."""
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return b""
        newline = chunk.find(b"\n")
        if newline >= 0:
            return chunk[newline + 1 :]


# -- what an analyst types ---------------------------------------------------------------

_ANALYST_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}", re.ASCII)
MAX_PURPOSE_CHARS: Final = 500
"""Longest purpose an analyst may give (the audit record's limit)."""


def check_analyst(analyst: str) -> str:
    """An analyst id as the audit log records it (``analyst:<id>``); raise ``SchemaError``."""
    if _ANALYST_ID.fullmatch(analyst) is None:
        msg = (
            "analyst id must be 1 to 100 letters, digits and . _ @ + -, starting with a"
            " letter or digit (e.g. a.khan)"
        )
        raise SchemaError(msg)
    return analyst


def check_purpose(purpose: str) -> str:
    """A purpose, trimmed: plain text, 1 to 500 characters, no personal data.

    Raise ``SchemaError``; the message never repeats the text.
    """
    return _plain_text(purpose, "purpose", "say why you are reading")


def check_reason(reason: str) -> str:
    """A reason an operator gives (revoking a credential), trimmed: as ``check_purpose``.

    Raise ``SchemaError``; the message never repeats the text.
    """
    return _plain_text(reason, "reason", "say why")


def check_time(text: str, what: str) -> dt.datetime:
    """An ISO 8601 date or time (UTC when it has no offset) in years 1 to 9999.

    Raise ``SchemaError`` naming ``what``; the message never repeats the text.
    """
    try:
        when = dt.datetime.fromisoformat(text)
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        return when.astimezone(dt.UTC)  # an offset can carry it outside years 1 to 9999
    except (ValueError, OverflowError):
        msg = f"{what} must be an ISO 8601 date or time in years 1 to 9999 (e.g. 2026-11-01T09:00Z)"
        raise SchemaError(msg) from None


def check_filters(
    *, area: str | None = None, theme: str | None = None, kind: str | None = None
) -> None:
    """Refuse a replay or feed filter no event can match (it is audited as given).

    Raise ``SchemaError`` naming the option; the message never repeats the value.
    """
    if area is not None and area not in local_authorities():
        raise SchemaError("--area must be a local authority's GSS code (e.g. E08000025)")
    if theme is not None and theme not in {t.value for t in Theme}:
        themes = ", ".join(t.value for t in Theme)
        raise SchemaError(f"--theme must be one of {themes}")
    if kind is not None and kind not in {CONCERN_RAISED, EXCEPTIONAL_PRACTICE_IDENTIFIED}:
        raise SchemaError(f"--type must be {CONCERN_RAISED} or {EXCEPTIONAL_PRACTICE_IDENTIFIED}")


@dataclass(frozen=True, slots=True)
class Checked:
    """One document after checking: its event when valid, else every problem, by line."""

    document: Document
    event: InspectorateEvent | None
    problems: tuple[str, ...] = ()


def _no_extra_check(event: InspectorateEvent) -> str | None:
    del event
    return None


def check_documents(
    documents: Iterable[Document],
    clock: Callable[[], dt.datetime],
    extra: Callable[[InspectorateEvent], str | None] = (_no_extra_check),
) -> Iterator[Checked]:
    """Check each document as a publisher must (size, contract, ``extra``, repeated ids).

    Problems read ``<where>: <field>: <reason>`` and never repeat event content; an id
    already seen earlier in the same input is a problem of the later document.
    """
    first_seen: dict[str, str] = {}
    for document in documents:
        where = document.where
        if document.oversized:
            message = f"{where}: event is over the {MAX_EVENT_BYTES}-byte limit (not parsed)"
            yield Checked(document, None, (message,))
            continue
        try:
            event = validate_event(document.data, now=clock())
        except SchemaError as exc:
            yield Checked(document, None, tuple(f"{where}: {p}" for p in exc.problems))
            continue
        refused = extra(event)
        if refused is not None:
            yield Checked(document, None, (f"{where}: {refused}",))
            continue
        event_id = str(event.id)
        if event_id in first_seen:
            message = f"{where}: id: {event_id} repeats the event at {first_seen[event_id]}"
            yield Checked(document, None, (message,))
            continue
        first_seen[event_id] = where
        yield Checked(document, event)


def _plain_text(value: str, what: str, must: str) -> str:
    """``value`` trimmed, if it is 1 to ``MAX_PURPOSE_CHARS`` characters of plain text with
    no personal data; ``SchemaError`` naming ``what`` (never repeating the text)."""
    text = value.strip()
    plain = all(unicodedata.category(c) not in {"Cc", "Cs"} for c in text)
    if not text or len(text) > MAX_PURPOSE_CHARS or not plain:
        msg = (
            f"{what} must {must}, in 1 to {MAX_PURPOSE_CHARS} characters of plain text"
            " (no control characters)"
        )
        raise SchemaError(msg)
    check_minimised(text, what)
    return text
