"""Reading events from a file or stdin: one JSON object, or JSON Lines.

Sizes are checked before anything is parsed, and a long line is skipped without being
held in memory, so a bad file cannot exhaust the process.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from schemas.errors import SchemaError
from schemas.events import (
    MAX_EVENT_BYTES,
    ConcernRaised,
    ExceptionalPracticeIdentified,
    validate_event,
)

__all__ = ["Checked", "Document", "check_documents", "read_documents"]

_CHUNK = 64 * 1024


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


def read_documents(stream: BinaryIO) -> Iterator[Document]:
    """Yield each event in ``stream``: a single JSON object (any layout) or JSON Lines.

    Blank lines are skipped. A document over ``MAX_EVENT_BYTES`` is yielded with
    ``oversized=True`` and only its first bytes, never parsed.
    """
    head = stream.read(MAX_EVENT_BYTES + 1)
    if len(head) <= MAX_EVENT_BYTES and _is_one_object(head):
        yield Document(None, head.strip())
        return
    yield from _json_lines(head, stream)


def _is_one_object(data: bytes) -> bool:
    """A whole input that is exactly one JSON object (possibly pretty-printed)."""
    if b"\n" not in data.strip():
        return False  # one line: JSON Lines handles it, and numbers it
    try:
        return isinstance(json.loads(data), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def _json_lines(head: bytes, stream: BinaryIO) -> Iterator[Document]:
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
            yield Document(number, buffer[:64], oversized=True)
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
        return Document(number, line[:64], oversized=True)
    return Document(number, line.strip())


def _skip_line(stream: BinaryIO) -> bytes:
    """Discard the rest of an oversized line; return what follows its newline."""
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return b""
        newline = chunk.find(b"\n")
        if newline >= 0:
            return chunk[newline + 1 :]


@dataclass(frozen=True, slots=True)
class Checked:
    """One document after checking: its event when valid, else every problem, by line."""

    document: Document
    event: ConcernRaised | ExceptionalPracticeIdentified | None
    problems: tuple[str, ...] = ()


def _no_extra_check(event: ConcernRaised | ExceptionalPracticeIdentified) -> str | None:
    del event
    return None


def check_documents(
    documents: Iterable[Document],
    clock: Callable[[], dt.datetime],
    extra: Callable[[ConcernRaised | ExceptionalPracticeIdentified], str | None] = (
        _no_extra_check
    ),
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
