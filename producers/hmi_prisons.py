"""HM Inspectorate of Prisons' findings about children in custody, as events.

HMI Prisons scores an establishment against each of its healthy prison tests (safety,
respect, purposeful activity, rehabilitation and release planning) from 1 (poor) to 4
(good), notes notable positive practice, and, when it finds significant concerns,
invokes the Urgent Notification protocol (the Chief Inspector writes to the Secretary of
State, who must answer publicly within 28 days). One ``HmiPrisonsFinding`` is one test's
score, and ``to_event`` turns it into an event:

=========  ======  ========  ================================  ========
urgent     score   notable   event (``finding``)               severity
=========  ======  ========  ================================  ========
yes        any     no        concern (urgent_notification),    4
                             ``immediate_risk`` always true
no         1 poor  no        concern (cause_of_concern)        3
no         2       no        concern (area_for_improvement)    2
no         3       no        none: ``SchemaError``             -
no         4 good  yes       exceptional practice              -
no         4 good  no        none: ``SchemaError``             -
=========  ======  ========  ================================  ========

(``urgent`` is ``urgent_notification``, ``notable`` is ``notable_practice``.)
Notable practice is shared only from a test scored 4, and never with an urgent
notification. The test is appended to the evidence refs as ``healthy prison test:
<test>``. Outside an urgent notification ``immediate_risk`` is
``children_at_immediate_risk``. HMI Prisons does not take part in JTAIs, so it reports
from ``custody`` only.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Final

from producers._native import (
    EXCEPTIONAL,
    NAMES,
    Concern,
    NativeFinding,
    Outcome,
    build,
    judged,
)
from schemas.errors import Problem
from schemas.events import ConcernRaised, ExceptionalPracticeIdentified, Finding
from schemas.inspectorates import PROGRAMMES as _RUN_BY
from schemas.inspectorates import Inspectorate, Programme

__all__ = [
    "INSPECTORATE",
    "PROGRAMMES",
    "HealthyPrisonScore",
    "HealthyPrisonTest",
    "HmiPrisonsFinding",
    "to_event",
]

INSPECTORATE: Final = Inspectorate.HMI_PRISONS
"""The inspectorate whose findings this module turns into events."""

PROGRAMMES: Final[tuple[Programme, ...]] = _RUN_BY[INSPECTORATE]
"""Custody inspections only: HMI Prisons is not one of the JTAI inspectorates."""


class HealthyPrisonTest(StrEnum):
    """One of the four healthy prison tests."""

    SAFETY = "safety"
    RESPECT = "respect"
    PURPOSEFUL_ACTIVITY = "purposeful_activity"
    REHABILITATION_AND_RELEASE_PLANNING = "rehabilitation_and_release_planning"


class HealthyPrisonScore(IntEnum):
    """How well an establishment meets a healthy prison test."""

    POOR = 1
    NOT_SUFFICIENTLY_GOOD = 2
    REASONABLY_GOOD = 3
    GOOD = 4


_URGENT: Final = Concern(Finding.URGENT_NOTIFICATION, 4, immediate=True)
# Without notable practice (or an urgent notification), a good score is nothing to share.
_BY_SCORE: Final[Mapping[HealthyPrisonScore, Outcome | None]] = MappingProxyType(
    {
        HealthyPrisonScore.POOR: Concern(Finding.CAUSE_OF_CONCERN, 3),
        HealthyPrisonScore.NOT_SUFFICIENTLY_GOOD: Concern(Finding.AREA_FOR_IMPROVEMENT, 2),
        HealthyPrisonScore.REASONABLY_GOOD: None,
        HealthyPrisonScore.GOOD: None,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HmiPrisonsFinding(NativeFinding):
    """One healthy prison test's score (fields of ``NativeFinding`` plus those below)."""

    test: HealthyPrisonTest
    score: HealthyPrisonScore
    urgent_notification: bool = False
    """Whether the Chief Inspector invoked the Urgent Notification protocol."""
    notable_practice: bool = False
    """Whether the report notes this test's practice as notable positive practice."""


def to_event(
    finding: HmiPrisonsFinding, *, event_id: uuid.UUID | None = None
) -> ConcernRaised | ExceptionalPracticeIdentified:
    """The contract event for an HMI Prisons finding; ``SchemaError`` names each native field
    at fault.

    ``event_id`` makes the event's id deterministic; without it a random UUID is used.
    """
    return build(
        finding,
        _outcome(finding),
        source=INSPECTORATE,
        programmes=PROGRAMMES,
        event_id=event_id,
        context_refs=(f"healthy prison test: {finding.test.replace('_', ' ')}",),
    )


def _outcome(finding: HmiPrisonsFinding) -> Outcome | Problem:
    if finding.urgent_notification:
        if finding.notable_practice:
            return Problem("notable_practice", "cannot be shared with an urgent notification")
        return _URGENT
    if finding.notable_practice:
        if finding.score != HealthyPrisonScore.GOOD:
            return Problem(
                "notable_practice",
                f"{NAMES[INSPECTORATE]} shares notable practice from a test scored 4 (good), "
                f"not {finding.score}",
            )
        return EXCEPTIONAL
    return judged(_BY_SCORE, finding.score, field="score")
