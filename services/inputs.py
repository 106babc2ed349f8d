"""Reading events from a file or stdin: one JSON object, or JSON Lines.

Sizes are checked before anything is parsed, and a long line is skipped without being
held in memory, so a bad file cannot exhaust the process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from schemas.events import MAX_EVENT_BYTES

__all__ = ["Document", "read_documents"]

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
