"""The strict wire codec every signed payload is decoded with: one meaning per byte string.

A payload means the same to Liaison as to any other reader of the exported JSON Schemas
(jsonschema, ajv, browsers, other languages), so decoding is strict where lax readers
would disagree:

- UTF-8 only, no byte-order mark; no unpaired surrogate escapes (``"\\ud800"``);
- no duplicate keys anywhere (readers differ on which one wins): ``DuplicateKeyError``;
- no ``NaN`` or ``Infinity``; nesting refused, not crashed on, however deep;
- no coercion of types (``"false"`` is not a boolean, ``2.0`` is not an integer): the
  models are validated in pydantic's strict JSON mode;
- canonical UUIDs (lowercase, hyphenated) and RFC 3339 date-times (``T``, seconds and an
  offset, upper case, year 1900 to 8999) only, with the patterns below, which the
  exported JSON Schemas carry too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from schemas.errors import DuplicateKeyError, Problem, SchemaError

__all__ = [
    "DATETIME_PATTERN",
    "UUID_PATTERN",
    "WINDOW_END_PATTERN",
    "CanonicalUuid",
    "Rfc3339",
    "WindowEnd",
    "strict_loads",
]

UUID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
"""A UUID as Python and RFC 9562 print it: lowercase hex, hyphenated, nothing around it."""

_REST_OF_DATETIME: Final = (
    r"[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
DATETIME_PATTERN: Final = r"^(19|[2-8][0-9])" + _REST_OF_DATETIME
"""RFC 3339 ``date-time`` as Liaison writes it: years 1900 to 8999, microseconds at most,
no leap second, upper-case ``T`` and ``Z`` (the profile every mainstream parser agrees on).
The years leave room for arithmetic on event time (windows of days) without overflow."""

WINDOW_END_PATTERN: Final = r"^(19|[2-8][0-9]|9[0-8])" + _REST_OF_DATETIME
"""The same profile up to year 9899, for a window's end computed from an event's time
(an event's year is at most 8999; a window is far shorter than 900 years)."""

_UUID: Final = re.compile(UUID_PATTERN)
_DATETIME: Final = re.compile(DATETIME_PATTERN)
_WINDOW_END: Final = re.compile(WINDOW_END_PATTERN)


# A before-validator hands its result to pydantic's strict validator, which in Python
# mode takes only the parsed type: so a matching text is parsed here, once.


def _canonical_uuid(value: object) -> object:
    if not isinstance(value, str):
        return value
    if not _UUID.fullmatch(value):
        msg = "must be a UUID written in lowercase hex with hyphens (8-4-4-4-12)"
        raise ValueError(msg)
    return UUID(value)


def _datetime_text(pattern: re.Pattern[str]) -> BeforeValidator:
    def parse(value: object) -> object:
        if not isinstance(value, str):
            return value
        if not pattern.fullmatch(value):
            msg = "must be an RFC 3339 date-time with an offset, e.g. 2026-11-20T10:30:00Z"
            raise ValueError(msg)
        return dt.datetime.fromisoformat(value)

    return BeforeValidator(parse)


def _in_range(last_year: int) -> AfterValidator:
    def check(value: dt.datetime) -> dt.datetime:
        # A value built in Python is held to the wire's range too, and conversion to UTC
        # (an offset of up to a day) must never overflow.
        try:
            value.astimezone(dt.UTC)
        except OverflowError:
            converts = False
        else:
            converts = True
        if not (converts and 1900 <= value.year <= last_year):  # noqa: PLR2004 - first year
            msg = f"is out of range (years 1900 to {last_year}, and within a day of UTC)"
            raise ValueError(msg)
        return value

    return AfterValidator(check)


CanonicalUuid = Annotated[UUID, BeforeValidator(_canonical_uuid)]
"""A UUID field that accepts only the canonical text form on the wire."""

Rfc3339 = Annotated[AwareDatetime, _datetime_text(_DATETIME), _in_range(8999)]
"""A date-time field that accepts only ``DATETIME_PATTERN`` on the wire."""

WindowEnd = Annotated[AwareDatetime, _datetime_text(_WINDOW_END), _in_range(9899)]
"""A date-time field that accepts only ``WINDOW_END_PATTERN`` on the wire."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for position, (name, _) in enumerate(pairs):
            if name in seen:
                # Position, not name: a key is input text and may be anything.
                msg = f"an object repeats a key (member {position + 1})"
                raise DuplicateKeyError(msg)
            seen.add(name)
    return document


def _no_constant(name: str) -> Any:  # noqa: ANN401 - json's hook signature
    msg = f"{name} is not a JSON number"
    raise ValueError(msg)


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
"""What ``json.loads`` with these hooks would build for every call."""


def _unpaired_surrogates(document: Any) -> bool:  # noqa: ANN401 - any JSON value
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                return True
        elif isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def strict_loads(data: bytes | str) -> Any:  # noqa: ANN401 - any JSON value
    """Parse JSON strictly (see the module docstring); raise ``SchemaError``.

    ``DuplicateKeyError`` (a ``SchemaError``) says a key was repeated. Messages never
    repeat the input.
    """
    # A lone surrogate in the document comes from a \u escape, or from a str input that
    # holds one itself (text decoded from UTF-8 bytes cannot). Only then is it looked for.
    surrogates_possible = isinstance(data, str) and not _encodable(data)
    if isinstance(data, bytes):
        try:
            data = data.decode()
        except UnicodeDecodeError:
            raise SchemaError("not valid UTF-8", [Problem("", "not valid UTF-8")]) from None
    try:
        if data.startswith("\ufeff"):  # as json.loads refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
        document = _DECODER.decode(data)
    except DuplicateKeyError:
        raise
    except RecursionError:
        raise SchemaError("nested too deeply", [Problem("", "nested too deeply")]) from None
    except ValueError as exc:
        # A JSONDecodeError names a position, never the text; other ValueErrors (an
        # integer of thousands of digits, NaN) are described without their input.
        msg = (
            f"not valid JSON ({exc})"
            if isinstance(exc, json.JSONDecodeError)
            else ("not valid JSON (a number out of range)")
        )
        raise SchemaError(msg, [Problem("", msg)]) from None
    if (surrogates_possible or "\\u" in data) and _unpaired_surrogates(document):
        msg = "a string holds an unpaired surrogate (not Unicode text)"
        raise SchemaError(msg, [Problem("", msg)])
    return document
