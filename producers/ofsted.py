"""Ofsted's findings about children's services, as contract events.

Ofsted grades an ILACS inspection's overall effectiveness; a focused visit, a monitoring
visit or a JTAI letter is not graded but lists areas for priority action and areas for
improvement; any of them may highlight outstanding practice. One ``OfstedFinding`` is
one such judgement, and ``to_event`` turns it into an event:

=====================================  ==========  ==================================  ========
``judgement``                          programmes  event (``finding``)                 severity
=====================================  ==========  ==================================  ========
``inadequate``                         ilacs       concern (cause_of_concern)          4
``requires_improvement_to_be_good``    ilacs       concern (area_for_improvement)      2
``good``                               ilacs       none: ``SchemaError``               -
``outstanding``                        ilacs       exceptional practice                -
``area_for_priority_action``           any         concern (area_for_priority_action)  3
``area_for_improvement``               any         concern (area_for_improvement)      2
``outstanding_practice_highlighted``   any         exceptional practice                -
=====================================  ==========  ==================================  ========

``immediate_risk`` is ``children_at_immediate_risk``: an inadequate grade alone does not
mean children are at immediate risk. A grade from an ungraded programme (a focused or
monitoring visit, a JTAI) is refused, as is a programme Ofsted does not report from.
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

__all__ = ["INSPECTORATE", "PROGRAMMES", "OfstedFinding", "OfstedJudgement", "to_event"]

INSPECTORATE: Final = Inspectorate.OFSTED
"""The inspectorate whose findings this module turns into events."""

PROGRAMMES: Final[tuple[Programme, ...]] = (*_RUN_BY[INSPECTORATE], Programme.JTAI)
"""ILACS inspections, focused visits, monitoring visits, and Ofsted's part in JTAIs."""


class OfstedJudgement(StrEnum):
    """What Ofsted judged: an ILACS grade, or a visit's or JTAI letter's finding."""

    # ILACS overall effectiveness grades.
    OUTSTANDING = "outstanding"
    GOOD = "good"
    REQUIRES_IMPROVEMENT_TO_BE_GOOD = "requires_improvement_to_be_good"
    INADEQUATE = "inadequate"
    # What an ungraded report lists (and any report may highlight).
    AREA_FOR_PRIORITY_ACTION = "area_for_priority_action"
    AREA_FOR_IMPROVEMENT = "area_for_improvement"
    OUTSTANDING_PRACTICE_HIGHLIGHTED = "outstanding_practice_highlighted"


_ILACS_GRADES: Final = frozenset(
    {
        OfstedJudgement.OUTSTANDING,
        OfstedJudgement.GOOD,
        OfstedJudgement.REQUIRES_IMPROVEMENT_TO_BE_GOOD,
        OfstedJudgement.INADEQUATE,
    }
)

_OUTCOMES: Final[Mapping[OfstedJudgement, Outcome | None]] = MappingProxyType(
    {
        OfstedJudgement.INADEQUATE: Concern(Finding.CAUSE_OF_CONCERN, 4),
        OfstedJudgement.REQUIRES_IMPROVEMENT_TO_BE_GOOD: Concern(Finding.AREA_FOR_IMPROVEMENT, 2),
        OfstedJudgement.GOOD: None,
        OfstedJudgement.OUTSTANDING: EXCEPTIONAL,
        OfstedJudgement.AREA_FOR_PRIORITY_ACTION: Concern(Finding.AREA_FOR_PRIORITY_ACTION, 3),
        OfstedJudgement.AREA_FOR_IMPROVEMENT: Concern(Finding.AREA_FOR_IMPROVEMENT, 2),
        OfstedJudgement.OUTSTANDING_PRACTICE_HIGHLIGHTED: EXCEPTIONAL,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfstedFinding(NativeFinding):
    """One Ofsted judgement about an area's children's services (fields of ``NativeFinding``
    plus ``judgement``)."""

    judgement: OfstedJudgement


def to_event(
    finding: OfstedFinding, *, event_id: uuid.UUID | None = None
) -> ConcernRaised | ExceptionalPracticeIdentified:
    """The contract event for an Ofsted finding; ``SchemaError`` names each native field at fault.

    ``event_id`` makes the event's id deterministic; without it a random UUID is used.
    """
    problems = []
    if finding.judgement in _ILACS_GRADES and finding.programme != Programme.ILACS:
        problems.append(
            Problem(
                "judgement",
                f"{str(finding.judgement)!r} is an ILACS grade, and a "
                f"{str(finding.programme)!r} finding is not graded",
            )
        )
    return build(
        finding,
        judged(_OUTCOMES, finding.judgement, field="judgement"),
        source=INSPECTORATE,
        programmes=PROGRAMMES,
        event_id=event_id,
        problems=problems,
    )
