"""The Care Quality Commission's findings about health services for children, as events.

CQC reports a service (in a CLAS review, a SAAS assessment or a core service
inspection, or its part in a JTAI) with a rating, and a breach of regulations with
enforcement: a warning notice (fix it by a deadline, or face further action) or a
requirement notice (say how you will fix it). One ``CqcFinding`` is one rating or one
notice, and ``to_event`` turns it into an event:

=======================  ==================================  ========
``outcome``              event (``finding``)                 severity
=======================  ==================================  ========
``inadequate``           concern (cause_of_concern)          4
``warning_notice``       concern (cause_of_concern)          3
``requires_improvement`` concern (area_for_improvement)      2
``requirement_notice``   concern (area_for_improvement)      2
``good``                 none: ``SchemaError``               -
``outstanding``          exceptional practice                -
=======================  ==================================  ========

``immediate_risk`` is ``children_at_immediate_risk``. A programme CQC does not report
from is refused.
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

__all__ = ["INSPECTORATE", "PROGRAMMES", "CqcFinding", "CqcOutcome", "to_event"]

INSPECTORATE: Final = Inspectorate.CQC
"""The inspectorate whose findings this module turns into events."""

PROGRAMMES: Final[tuple[Programme, ...]] = (*_RUN_BY[INSPECTORATE], Programme.JTAI)
"""CLAS reviews, SAAS assessments, core service inspections, and CQC's part in JTAIs."""


class CqcOutcome(StrEnum):
    """A CQC rating, or the enforcement notice CQC served."""

    # Ratings.
    OUTSTANDING = "outstanding"
    GOOD = "good"
    REQUIRES_IMPROVEMENT = "requires_improvement"
    INADEQUATE = "inadequate"
    # Enforcement for a breach of regulations.
    WARNING_NOTICE = "warning_notice"
    REQUIREMENT_NOTICE = "requirement_notice"


_OUTCOMES: Final[Mapping[CqcOutcome, Outcome | None]] = MappingProxyType(
    {
        CqcOutcome.INADEQUATE: Concern(Finding.CAUSE_OF_CONCERN, 4),
        # A warning notice is CQC's gravest civil step short of a rating of inadequate.
        CqcOutcome.WARNING_NOTICE: Concern(Finding.CAUSE_OF_CONCERN, 3),
        CqcOutcome.REQUIRES_IMPROVEMENT: Concern(Finding.AREA_FOR_IMPROVEMENT, 2),
        CqcOutcome.REQUIREMENT_NOTICE: Concern(Finding.AREA_FOR_IMPROVEMENT, 2),
        CqcOutcome.GOOD: None,
        CqcOutcome.OUTSTANDING: EXCEPTIONAL,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CqcFinding(NativeFinding):
    """One CQC rating or enforcement notice (fields of ``NativeFinding`` plus ``outcome``)."""

    outcome: CqcOutcome


def to_event(
    finding: CqcFinding, *, event_id: uuid.UUID | None = None
) -> ConcernRaised | ExceptionalPracticeIdentified:
    """The contract event for a CQC finding; ``SchemaError`` names each native field at fault.

    ``event_id`` makes the event's id deterministic; without it a random UUID is used.
    """
    return build(
        finding,
        judged(_OUTCOMES, finding.outcome, field="outcome"),
        source=INSPECTORATE,
        programmes=PROGRAMMES,
        event_id=event_id,
    )
