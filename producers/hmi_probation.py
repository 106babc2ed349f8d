"""HM Inspectorate of Probation's findings about youth justice and probation, as events.

HMI Probation rates a youth justice service or a probation service overall and against
each of its standards (``2.1 Assessment``, ``1.3 Partnerships and services``, ...) from
``outstanding`` to ``inadequate``, and makes recommendations. One
``HmiProbationFinding`` is one rating (of a standard, or of the whole service), and
``to_event`` turns it into an event:

=========================  ==================  ==============================  ========
``rating``                 ``standard``        event (``finding``)             severity
=========================  ==================  ==============================  ========
``inadequate``             none (overall)      concern (cause_of_concern)      4
``inadequate``             a standard          concern (cause_of_concern)      3
``requires_improvement``   any                 concern (area_for_improvement)  2
``good``                   any                 none: ``SchemaError``           -
``outstanding``            any                 exceptional practice            -
=========================  ==================  ==============================  ========

The standard is appended to the evidence refs as ``standard <standard>``; the
recommendations (concerns only) are appended to the summary, numbered, under
``Recommendations:``. ``immediate_risk`` is ``children_at_immediate_risk``. A programme
HMI Probation does not report from is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from producers._native import EXCEPTIONAL, Concern, NativeFinding, Outcome, build, judged
from schemas.events import ConcernRaised, ExceptionalPracticeIdentified, Finding
from schemas.inspectorates import PROGRAMMES as _RUN_BY
from schemas.inspectorates import Inspectorate, Programme

__all__ = [
    "INSPECTORATE",
    "PROGRAMMES",
    "HmiProbationFinding",
    "ProbationRating",
    "to_event",
]

INSPECTORATE: Final = Inspectorate.HMI_PROBATION
"""The inspectorate whose findings this module turns into events."""

PROGRAMMES: Final[tuple[Programme, ...]] = (*_RUN_BY[INSPECTORATE], Programme.JTAI)
"""Youth justice and probation service inspections, and HMI Probation's part in JTAIs."""


class ProbationRating(StrEnum):
    """HMI Probation's rating of a standard or of a whole service."""

    OUTSTANDING = "outstanding"
    GOOD = "good"
    REQUIRES_IMPROVEMENT = "requires_improvement"
    INADEQUATE = "inadequate"


_OUTCOMES: Final[Mapping[ProbationRating, Outcome | None]] = MappingProxyType(
    {
        ProbationRating.INADEQUATE: Concern(Finding.CAUSE_OF_CONCERN, 3),
        ProbationRating.REQUIRES_IMPROVEMENT: Concern(Finding.AREA_FOR_IMPROVEMENT, 2),
        ProbationRating.GOOD: None,
        ProbationRating.OUTSTANDING: EXCEPTIONAL,
    }
)
# A whole service rated inadequate is graver than one of its standards.
_SERVICE_INADEQUATE: Final = Concern(Finding.CAUSE_OF_CONCERN, 4)


@dataclass(frozen=True, slots=True, kw_only=True)
class HmiProbationFinding(NativeFinding):
    """One HMI Probation rating (fields of ``NativeFinding`` plus those below)."""

    rating: ProbationRating
    standard: str | None = None
    """The standard rated, as the report numbers and names it; ``None`` for the service."""
    recommendations: tuple[str, ...] = ()
    """What HMI Probation recommends (concerns only)."""


def to_event(
    finding: HmiProbationFinding, *, event_id: uuid.UUID | None = None
) -> ConcernRaised | ExceptionalPracticeIdentified:
    """The contract event for an HMI Probation finding; ``SchemaError`` names each native field
    at fault.

    ``event_id`` makes the event's id deterministic; without it a random UUID is used.
    """
    outcome = judged(_OUTCOMES, finding.rating, field="rating")
    if finding.rating == ProbationRating.INADEQUATE and finding.standard is None:
        outcome = _SERVICE_INADEQUATE
    return build(
        finding,
        outcome,
        source=INSPECTORATE,
        programmes=PROGRAMMES,
        event_id=event_id,
        recommendations=finding.recommendations,
        context_refs=() if finding.standard is None else (f"standard {finding.standard}",),
    )
