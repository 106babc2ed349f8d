"""What the five native producers share: the common native fields and the one build path.

Each inspectorate's module (``producers.ofsted`` and its siblings) says, in its own
vocabulary, what one of its findings means in the contract: a ``Concern`` (a finding
and a severity) or ``EXCEPTIONAL`` practice, or a ``Problem`` when it means nothing the
contract can carry. ``build`` then checks what every producer must (the programme is one
the inspectorate reports from, fields that only one kind of event can carry, personal
data in any native free text) and makes the event.

The event is made by encoding its fields as JSON and decoding them with
``schemas.events.CODEC``, the very path a consumer takes: reference data, programme
ownership and the minimisation lint are judged once, in one place, and pydantic's errors
arrive already turned into plain-English ``SchemaError`` problems with field paths.
Nothing here reads the clock, does I/O or logs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar

from pydantic_core import PydanticSerializationError, to_json

from schemas.errors import Problem, SchemaError
from schemas.events import (
    CODEC,
    CONCERN_RAISED,
    EXCEPTIONAL_PRACTICE_IDENTIFIED,
    Classification,
    ConcernRaised,
    ExceptionalPracticeIdentified,
    Finding,
    Theme,
)
from schemas.inspectorates import Agency, Inspectorate, Programme
from schemas.minimisation import check_minimised

__all__ = [
    "EXCEPTIONAL",
    "NAMES",
    "Concern",
    "ExceptionalPractice",
    "NativeFinding",
    "Outcome",
    "build",
    "judged",
]

NAMES: Final[Mapping[Inspectorate, str]] = MappingProxyType(
    {
        Inspectorate.OFSTED: "Ofsted",
        Inspectorate.CQC: "CQC",
        Inspectorate.HMICFRS: "HMICFRS",
        Inspectorate.HMI_PROBATION: "HMI Probation",
        Inspectorate.HMI_PRISONS: "HMI Prisons",
    }
)
"""Each inspectorate as a person writes it, for error messages."""

# Contract paths that differ from the native field they come from.
_NATIVE_PATHS: Final[Mapping[str, str]] = MappingProxyType(
    {"jtai": "jtai_rationale", "jtai.rationale": "jtai_rationale"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeFinding:
    """The fields every inspectorate's finding carries, whatever its own vocabulary."""

    area: str
    """GSS code of the upper-tier local authority the finding is about."""
    occurred_at: dt.datetime
    """When the finding was made (timezone-aware)."""
    programme: Programme
    """The programme that made the finding (the inspectorate's own, or the joint JTAI)."""
    subject_agencies: tuple[Agency, ...]
    """The agencies the finding is about (not the inspectorate that made it)."""
    theme: Theme
    summary: str
    """What was found, about practice in the area, never about a child."""
    evidence_refs: tuple[str, ...] = ()
    """Where the finding is written up: report sections, paragraphs or URLs."""
    children_affected: int | None = None
    """How many children the concern affects, when known (concerns only)."""
    children_at_immediate_risk: bool = False
    """Whether inspectors found children at immediate risk of harm (concerns only)."""
    jtai_rationale: str | None = None
    """Set to ask that the area be considered for a JTAI, saying why (concerns only)."""
    shareable_learning: str | None = None
    """What others can learn from the practice (exceptional practice only)."""
    classification: Classification = Classification.OFFICIAL_SENSITIVE


@dataclass(frozen=True, slots=True)
class Concern:
    """A native judgement that is a concern: its contract finding and severity (1 to 4)."""

    finding: Finding
    severity: int
    immediate: bool = False
    """Whether the judgement itself means children are at immediate risk (HMI Prisons'
    urgent notification); otherwise the finding's ``children_at_immediate_risk`` says."""


@dataclass(frozen=True, slots=True)
class ExceptionalPractice:
    """A native judgement that is practice other areas should learn from."""


EXCEPTIONAL: Final = ExceptionalPractice()
"""The one ``ExceptionalPractice`` value, for mapping tables."""

Outcome: TypeAlias = Concern | ExceptionalPractice
"""What a native judgement means in the contract."""

K = TypeVar("K")


def judged(table: Mapping[K, Outcome | None], value: K, *, field: str) -> Outcome | Problem:
    """``value``'s meaning from a mapping table, or the problem when it has none.

    ``None`` in the table marks a judgement the inspectorate does make (``good``) but
    that is neither a concern nor exceptional practice, so there is no event to raise.
    """
    if value not in table:
        allowed = ", ".join(str(key) for key in table)
        return Problem(field, f"must be one of: {allowed}")
    outcome = table[value]
    if outcome is None:
        return Problem(
            field,
            f"{str(value)!r} is neither a concern nor exceptional practice, so there is no "
            "event to raise (Liaison shares only those)",
        )
    return outcome


def build(
    finding: NativeFinding,
    outcome: Outcome | Problem,
    *,
    source: Inspectorate,
    programmes: tuple[Programme, ...],
    event_id: uuid.UUID | None,
    problems: Iterable[Problem] = (),
    recommendations: tuple[str, ...] = (),
    context_refs: tuple[str, ...] = (),
) -> ConcernRaised | ExceptionalPracticeIdentified:
    """The contract event for ``finding``, or ``SchemaError`` listing every problem.

    ``problems`` are the caller's own native checks; ``recommendations`` are appended to
    the summary under a heading; ``context_refs`` (a standard, a healthy prison test) are
    appended to the evidence refs, after the native ones so their indices stay the same.
    """
    found = _programme_problems(finding.programme, source, programmes)
    found.extend(problems)
    if isinstance(outcome, Problem):
        found.append(outcome)
    else:
        found.extend(_misplaced(finding, outcome, recommendations))
    found.extend(_personal_data(finding, recommendations))
    if found:
        raise _refusal(source, found)

    fields: dict[str, Any] = {
        "id": event_id if event_id is not None else uuid.uuid4(),
        "source": source,
        "occurred_at": finding.occurred_at,
        "area": finding.area,
        "programme": finding.programme,
        "subject_agencies": finding.subject_agencies,
        "theme": finding.theme,
        "summary": _with_recommendations(finding.summary, recommendations),
        "evidence_refs": (*finding.evidence_refs, *context_refs),
        "classification": finding.classification,
    }
    if isinstance(outcome, Concern):
        fields |= {
            "type": CONCERN_RAISED,
            "finding": outcome.finding,
            "severity": outcome.severity,
            "immediate_risk": outcome.immediate or finding.children_at_immediate_risk,
            "children_affected": finding.children_affected,
        }
        if finding.jtai_rationale is not None:
            fields["jtai"] = {"requested": True, "rationale": finding.jtai_rationale}
    else:
        fields |= {
            "type": EXCEPTIONAL_PRACTICE_IDENTIFIED,
            "shareable_learning": finding.shareable_learning,
        }
    try:
        event = CODEC.decode(to_json(fields))
    except PydanticSerializationError:
        # A Python string can hold an unpaired surrogate; it is not text and has no JSON.
        problem = Problem("", "a text field holds an unpaired surrogate (not Unicode text)")
        raise _refusal(source, [problem]) from None
    except SchemaError as exc:
        raise _refusal(
            source, [Problem(_NATIVE_PATHS.get(p.path, p.path), p.reason) for p in exc.problems]
        ) from None
    # The fields built above have a concern's or exceptional practice's type only.
    assert isinstance(event, ConcernRaised | ExceptionalPracticeIdentified)  # noqa: S101
    return event


def _programme_problems(
    programme: Programme, source: Inspectorate, programmes: tuple[Programme, ...]
) -> list[Problem]:
    if programme in programmes:
        return []
    runs = ", ".join(str(p) for p in programmes)
    return [
        Problem(
            "programme",
            f"{str(programme)!r} is not a programme {NAMES[source]} reports from (its "
            f"programmes: {runs})",
        )
    ]


def _misplaced(
    finding: NativeFinding, outcome: Outcome, recommendations: tuple[str, ...]
) -> list[Problem]:
    """Fields set that the outcome's kind of event cannot carry."""
    if isinstance(outcome, Concern):
        if finding.shareable_learning is None:
            return []
        return [Problem("shareable_learning", "is for exceptional practice; a concern has none")]
    concern_only = {
        "children_affected": finding.children_affected is not None,
        "children_at_immediate_risk": finding.children_at_immediate_risk,
        "jtai_rationale": finding.jtai_rationale is not None,
        "recommendations": bool(recommendations),
    }
    return [
        Problem(field, "is for concerns; exceptional practice has none")
        for field, given in concern_only.items()
        if given
    ]


def _personal_data(finding: NativeFinding, recommendations: tuple[str, ...]) -> list[Problem]:
    """The minimisation lint over every native free-text field, under its native name.

    The contract lints the event's ``summary`` and ``shareable_learning`` too, but
    recommendations are folded into the summary (an error there would name the wrong
    field) and a JTAI rationale is not linted by the contract at all.
    """
    texts = [
        ("summary", finding.summary),
        ("shareable_learning", finding.shareable_learning),
        ("jtai_rationale", finding.jtai_rationale),
        *((f"recommendations.{i}", text) for i, text in enumerate(recommendations)),
    ]
    return [
        problem
        for field, text in texts
        if text is not None and (problem := _lint(field, text)) is not None
    ]


def _lint(field: str, text: str) -> Problem | None:
    try:
        check_minimised(text, field)
    except SchemaError as exc:
        # check_minimised's message starts with the field; the path already says it.
        return Problem(field, str(exc).removeprefix(f"{field} "))
    return None


def _with_recommendations(summary: str, recommendations: tuple[str, ...]) -> str:
    if not recommendations:
        return summary
    listed = "\n".join(f"{i}. {text}" for i, text in enumerate(recommendations, start=1))
    return f"{summary}\n\nRecommendations:\n{listed}"


def _refusal(source: Inspectorate, problems: list[Problem]) -> SchemaError:
    detail = "; ".join(str(problem) for problem in problems)
    return SchemaError(
        f"this {NAMES[source]} finding cannot be shared as an event: {detail}", problems
    )
