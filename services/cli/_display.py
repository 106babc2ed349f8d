"""Showing data on a terminal: no escape sequences, no markup, from any field.

What ``liaison inbox``, ``liaison unrouted list`` and ``liaison jtai`` print comes from
other inspectorates' signed events (summaries, notes, reasons, rationales) and from the
router's routes (rule names, reasons). Signed is not harmless: text holding ESC, CSI or
OSC sequences would move the cursor, rewrite lines already shown, set the window title or
plant a link, and ``[red]``-style text would be taken for rich markup. So every such
text reaches the console through ``clean`` / ``cell``:

- C0 controls (U+0000 to U+001F), DEL (U+007F) and C1 controls (U+0080 to U+009F) become
  U+FFFD, except a newline where a multi-line detail view keeps lines (``multiline``);
  a carriage return never survives (it would let a line overwrite itself);
- the bidirectional embedding, override and isolate controls (U+202A to U+202E, U+2066
  to U+2069) become U+FFFD too: they reorder what a reader sees;
- the result is a ``rich.text.Text``: rich never interprets markup or emoji codes in it.

JSON output keeps the data as it is, every character outside ASCII escaped (so no
control or bidirectional character reaches a terminal raw).
"""

from __future__ import annotations

from typing import Final

from rich.text import Text

__all__ = ["REPLACEMENT", "cell", "clean"]

REPLACEMENT: Final = "\ufffd"

_BIDI: Final = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))
_UNSAFE: Final = frozenset(range(0x20)) | {0x7F} | frozenset(range(0x80, 0xA0)) | _BIDI
_LINE: Final = {ord(c): REPLACEMENT for c in map(chr, _UNSAFE)}
_LINES: Final = {**_LINE, ord("\n"): "\n"}


def clean(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control character (and bidi control) replaced by U+FFFD;
    newlines kept only when ``multiline``."""
    return text.translate(_LINES if multiline else _LINE)


def cell(text: str, *, multiline: bool = False) -> Text:
    """``clean(text)`` as rich ``Text``: shown as it reads, never as markup."""
    return Text(clean(text, multiline=multiline))
