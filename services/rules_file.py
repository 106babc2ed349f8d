"""Read the routing rules file (``deploy/rules.toml``) once, at start-up.

The file is the single source of truth for routing. A router must not start on rules it
cannot read in full, so every problem becomes one ``ConfigurationError`` that lists them
all, one per line, each naming the file, the rule (by id, and by position ``#n``, counted
from 1) and the field, in plain English, so an operator can fix the file in one pass::

    deploy/rules.toml: rule 'police.ncpi' (#1): agencies.0: 'polise' is not an agency (...)
    deploy/rules.toml: rule #3: id is required
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from consumers.rules import EventType, JtaiSettings, Rule, RuleSet
from schemas.errors import ConfigurationError
from schemas.events import Finding, Progress, Theme
from schemas.inspectorates import Agency, Programme

__all__ = ["load_rules"]

_RULE: Final = "rule"
_JTAI: Final = "jtai"

# For a value outside a closed list: what the list is called and what is on it.
_CHOICES: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "to": ("a programme", tuple(p.value for p in Programme)),
    "event_types": ("an event type", get_args(EventType)),
    "agencies": ("an agency", tuple(a.value for a in Agency)),
    "themes": ("a theme", tuple(t.value for t in Theme)),
    "findings": ("a finding", tuple(f.value for f in Finding)),
    "progress": ("a progress judgement", tuple(p.value for p in Progress)),
}

# tomllib (3.11) puts the position only in the message: "Invalid value (at line 7, column 3)".
_TOML_POSITION: Final = re.compile(
    r"^(?P<what>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$"
)
_TOML_AT_END: Final = re.compile(r"^(?P<what>.*) \(at end of document\)$")


def load_rules(path: Path) -> RuleSet:
    """The rule set in the TOML file at ``path``.

    Raise ``ConfigurationError`` listing every problem (one per line) when the file is
    missing, unreadable, not TOML, or describes rules that are not valid.
    """
    document = _read_toml(path)
    problems = [*_unknown_top_level_keys(document)]
    rules, rule_problems = _rules(document.get(_RULE))
    problems += rule_problems
    jtai, jtai_problems = _jtai(document.get(_JTAI, {}))
    problems += jtai_problems
    if problems or jtai is None:
        raise ConfigurationError("\n".join(f"{path}: {problem}" for problem in problems))
    # The checks above cover RuleSet's own (at least one rule, ids unique), so this holds.
    return RuleSet(rules=rules, jtai=jtai)


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed document; a ``ConfigurationError`` naming the file when there is none."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        problem = "file not found"
    except IsADirectoryError:
        problem = "is a directory, not a rules file"
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or exc})"
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte {exc.start} cannot be decoded); TOML files are UTF-8"
    else:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problem = _toml_problem(str(exc))
    raise ConfigurationError(f"{path}: {problem}")


def _toml_problem(message: str) -> str:
    """``not valid TOML (line 7, column 3): invalid value`` from tomllib's message."""
    if found := _TOML_POSITION.match(message):
        return (
            f"not valid TOML (line {found['line']}, column {found['column']}):"
            f" {_lower_first(found['what'])}"
        )
    if found := _TOML_AT_END.match(message):
        return f"not valid TOML (at the end of the file): {_lower_first(found['what'])}"
    return f"not valid TOML: {message}"


def _unknown_top_level_keys(document: Mapping[str, Any]) -> Iterable[str]:
    known = (_JTAI, _RULE)
    for key in document:
        if key not in known:
            hint = _did_you_mean(key, known) or "only [jtai] and [[rule]] blocks belong here"
            yield f"unknown top-level key {key!r} ({hint})"


def _rules(raw: object) -> tuple[tuple[Rule, ...], list[str]]:
    """The valid rules, and the problems of every other one and of duplicate ids."""
    if raw is None or raw == []:
        return (), ["no rules: add at least one [[rule]] block"]
    if not isinstance(raw, list):
        return (), ["rule: write each rule as a [[rule]] block (double brackets)"]
    rules: list[Rule] = []
    problems: list[str] = []
    positions: dict[str, list[int]] = {}
    for number, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            problems.append(f"rule #{number}: must be a [[rule]] block, not a plain value")
            continue
        if isinstance(entry.get("id"), str):
            positions.setdefault(entry["id"], []).append(number)
        try:
            rules.append(Rule.model_validate(entry))
        except ValidationError as exc:
            errors = _without_echoes(exc.errors(include_url=False))
            # An id that is itself wrong cannot name the rule: the position alone does.
            id_ok = not any(error["loc"][:1] == ("id",) for error in errors)
            label = f"rule {entry['id']!r} (#{number})" if id_ok else f"rule #{number}"
            problems += [f"{label}: {_plain(error, Rule)}" for error in errors]
    problems += [
        f"rule {rule_id!r}: duplicate id, used by rules {_numbers(found)}"
        for rule_id, found in positions.items()
        if len(found) > 1
    ]
    return tuple(rules), problems


def _without_echoes(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Drop a list's "too short" when its only items were wrong: fixing them fixes it."""
    with_bad_items = {error["loc"][0] for error in errors if len(error["loc"]) > 1}
    return [
        error
        for error in errors
        if not (
            error["type"] == "too_short" and error["loc"][:1] and error["loc"][0] in with_bad_items
        )
    ]


def _jtai(raw: object) -> tuple[JtaiSettings | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"{_JTAI}: must be a table ([jtai] with window_days, min_inspectorates)"]
    try:
        return JtaiSettings.model_validate(raw), []
    except ValidationError as exc:
        return None, [f"{_JTAI}: {_plain(e, JtaiSettings)}" for e in exc.errors(include_url=False)]


def _plain(error: ErrorDetails, model: type[BaseModel]) -> str:
    """One pydantic error as ``field: reason`` in plain English."""
    loc = error["loc"]
    field = ".".join(str(part) for part in loc)
    kind = error["type"]
    if kind == "missing":
        return f"{field} is required"
    if kind == "extra_forbidden":
        keys = tuple(model.model_fields)
        hint = _did_you_mean(field, keys) or "expected one of: " + ", ".join(keys)
        return f"unknown key {field!r} ({hint})"
    reason = _reason(error, str(loc[0]) if loc else "")
    return f"{field}: {reason}" if field else reason


def _reason(error: ErrorDetails, name: str) -> str:  # noqa: PLR0911 - one branch per kind
    """Why a value is wrong, for the error kinds a TOML rules file can produce."""
    kind = error["type"]
    ctx: dict[str, Any] = error.get("ctx", {})
    value = error.get("input")
    if kind in {"enum", "literal_error"} and name in _CHOICES:
        noun, choices = _CHOICES[name]
        return f"{_show(value)} is not {noun} (one of: {', '.join(choices)})"
    if kind == "string_pattern_mismatch":
        return (
            f"{_show(value)} is not a valid id (use lowercase letters, digits, '.', '_'"
            " and '-', starting with a letter or digit)"
        )
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters (it has {len(str(value))})"
    if kind == "string_type":
        return f"must be a string in double quotes, not {_show(value)}"
    if kind in {"tuple_type", "list_type"}:
        return f'must be a list, e.g. {name} = ["..."], not {_show(value)}'
    if kind == "too_short":
        return "must list at least one programme" if name == "to" else "must not be empty"
    if kind == "bool_type":
        return f"must be true or false (without quotes), not {_show(value)}"
    if kind == "int_type":
        return f"must be a whole number (without quotes), not {_show(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}, not {_show(value)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}, not {_show(value)}"
    return error["msg"].removeprefix("Value error, ")


def _show(value: object) -> str:
    """A value as the file spells it: ``'polise'``, ``3``, ``true``."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


def _did_you_mean(word: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else None


def _numbers(positions: list[int]) -> str:
    """``#2 and #5`` or ``#1, #2 and #7``."""
    marked = [f"#{n}" for n in positions]
    return ", ".join(marked[:-1]) + " and " + marked[-1]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
