"""HM Inspectorate of Constabulary and Fire & Rescue Services' findings, as events.

HMICFRS reports a force's work for children (a PEEL inspection, a National Child
Protection Inspection, or its part in a JTAI) as causes of concern, each with one or more
recommendations, areas for improvement (which carry none), and innovative practice.
PEEL also grades each area it inspects, from ``outstanding`` to ``inadequate``; NCPI and
JTAI are not graded. One ``HmicfrsFinding`` is one such finding, and ``to_event`` turns
it into an event:

=========================  =====================  ==============================  ========
``category``               ``graded_judgement``   event (``finding``)             severity
=========================  =====================  ==============================  ========
``cause_of_concern``       ``inadequate``         concern (cause_of_concern)      4
``cause_of_concern``       any other, or none     concern (cause_of_concern)      3
``area_for_improvement``   any, or none           concern (area_for_improvement)  2
``innovative_practice``    any, or none           exceptional practice            -
=========================  =====================  ==============================  ========

The recommendations are appended to the event's summary, numbered, under
``Recommendations:``. ``immediate_risk`` is ``children_at_immediate_risk``. Refused: a
cause of concern without recommendations, recommendations on anything else, a graded
judgement outside PEEL, and a programme HMICFRS does not report from.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from producers._native import EXCEPTIONAL, Concern, NativeFinding, Outcome, build, judged
from schemas.errors import Problem
from schemas.events import ConcernRaised, ExceptionalPracticeIdentified, Finding
from schemas.inspectorates import PROGRAMMES as _RUN_BY
from schemas.inspectorates import Inspectorate, Programme

__all__ = [
    "INSPECTORATE",
    "PROGRAMMES",
    "HmicfrsCategory",
    "HmicfrsFinding",
    "PeelGrade",
    "to_event",
]

INSPECTORATE: Final = Inspectorate.HMICFRS
"""The inspectorate whose findings this module turns into events."""

PROGRAMMES: Final[tuple[Programme, ...]] = (*_RUN_BY[INSPECTORATE], Programme.JTAI)
"""PEEL inspections, National Child Protection Inspections, and HMICFRS's part in JTAIs."""


class HmicfrsCategory(StrEnum):
    """The kind of finding HMICFRS reported."""

    CAUSE_OF_CONCERN = "cause_of_concern"
    AREA_FOR_IMPROVEMENT = "area_for_improvement"
    INNOVATIVE_PRACTICE = "innovative_practice"


class PeelGrade(StrEnum):
    """PEEL's graded judgement of the area a finding belongs to."""

    OUTSTANDING = "outstanding"
    GOOD = "good"
    ADEQUATE = "adequate"
    REQUIRES_IMPROVEMENT = "requires_improvement"
    INADEQUATE = "inadequate"


_OUTCOMES: Final[Mapping[HmicfrsCategory, Outcome | None]] = MappingProxyType(
    {
        HmicfrsCategory.CAUSE_OF_CONCERN: Concern(Finding.CAUSE_OF_CONCERN, 3),
        HmicfrsCategory.AREA_FOR_IMPROVEMENT: Concern(Finding.AREA_FOR_IMPROVEMENT, 2),
        HmicfrsCategory.INNOVATIVE_PRACTICE: EXCEPTIONAL,
    }
)
_GRAVEST: Final = Concern(Finding.CAUSE_OF_CONCERN, 4)


@dataclass(frozen=True, slots=True, kw_only=True)
class HmicfrsFinding(NativeFinding):
    """One HMICFRS finding (fields of ``NativeFinding`` plus those below)."""

    category: HmicfrsCategory
    graded_judgement: PeelGrade | None = None
    """PEEL's grade for the area the finding belongs to; ``None`` outside PEEL."""
    recommendations: tuple[str, ...] = ()
    """What HMICFRS recommends; one or more with a cause of concern, none otherwise."""


def to_event(
    finding: HmicfrsFinding, *, event_id: uuid.UUID | None = None
) -> ConcernRaised | ExceptionalPracticeIdentified:
    """The contract event for an HMICFRS finding; ``SchemaError`` names each native field at fault.

    ``event_id`` makes the event's id deterministic; without it a random UUID is used.
    """
    outcome = judged(_OUTCOMES, finding.category, field="category")
    if (
        finding.category == HmicfrsCategory.CAUSE_OF_CONCERN
        and finding.graded_judgement == PeelGrade.INADEQUATE
    ):
        outcome = _GRAVEST
    return build(
        finding,
        outcome,
        source=INSPECTORATE,
        programmes=PROGRAMMES,
        event_id=event_id,
        problems=_native_problems(finding),
        recommendations=finding.recommendations,
    )


def _native_problems(finding: HmicfrsFinding) -> list[Problem]:
    problems = []
    if finding.graded_judgement is not None and finding.programme != Programme.PEEL:
        problems.append(
            Problem(
                "graded_judgement",
                f"only PEEL grades; a {str(finding.programme)!r} finding has no graded judgement",
            )
        )
    if finding.category == HmicfrsCategory.CAUSE_OF_CONCERN and not finding.recommendations:
        problems.append(
            Problem("recommendations", "a cause of concern needs at least one recommendation")
        )
    if finding.category == HmicfrsCategory.AREA_FOR_IMPROVEMENT and finding.recommendations:
        problems.append(
            Problem("recommendations", "an area for improvement carries no recommendations")
        )
    return problems
