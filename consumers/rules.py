"""Routing rules as data: which events go to which programme queues, and why.

A rule matches an event when every condition it sets holds (within one condition, any
listed value matches). Rules are plain validated data so that they can be loaded from
``deploy/`` files; ``DEFAULT_RULES`` follows who inspects what.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import (
    CONCERN_RAISED,
    EXCEPTIONAL_PRACTICE_IDENTIFIED,
    ConcernRaised,
    ExceptionalPracticeIdentified,
    Finding,
    Theme,
)
from schemas.inspectorates import JTAI, Agency, Programme

__all__ = ["DEFAULT_RULES", "Rule"]


class Rule(BaseModel):
    """One routing rule: conditions, destinations, and the reason given with each route."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    reason: str = Field(min_length=1, max_length=200)
    to: tuple[Programme, ...] = Field(min_length=1)
    event_types: tuple[str, ...] = ()
    agencies: tuple[Agency, ...] = ()
    themes: tuple[Theme, ...] = ()
    findings: tuple[Finding, ...] = ()
    jtai_requested: bool | None = None

    def matches(self, event: ConcernRaised | ExceptionalPracticeIdentified) -> bool:
        """Whether every condition this rule sets holds for ``event``."""
        return (
            (not self.event_types or event.type in self.event_types)
            and (not self.agencies or bool(set(self.agencies) & set(event.subject_agencies)))
            and (not self.themes or event.theme in self.themes)
            and self._concern_conditions_hold(event)
        )

    def _concern_conditions_hold(
        self, event: ConcernRaised | ExceptionalPracticeIdentified
    ) -> bool:
        if not self.findings and self.jtai_requested is None:
            return True
        if not isinstance(event, ConcernRaised):
            return False  # findings and JTAI requests exist only on concerns
        requested = event.jtai is not None and event.jtai.requested
        return (not self.findings or event.finding in self.findings) and (
            self.jtai_requested is None or requested == self.jtai_requested
        )


_CONCERN = (CONCERN_RAISED,)

DEFAULT_RULES: Final[tuple[Rule, ...]] = (
    Rule(
        id="police.ncpi",
        reason="concern about police practice: HMICFRS national child protection inspection",
        event_types=_CONCERN,
        agencies=(Agency.POLICE,),
        to=(Programme.NCPI,),
    ),
    Rule(
        id="police.peel",
        reason="cause of concern about police practice: HMICFRS PEEL",
        event_types=_CONCERN,
        agencies=(Agency.POLICE,),
        findings=(Finding.CAUSE_OF_CONCERN,),
        to=(Programme.PEEL,),
    ),
    Rule(
        id="health.clas",
        reason="concern about health services: CQC children looked after and safeguarding",
        event_types=_CONCERN,
        agencies=(Agency.HEALTH,),
        to=(Programme.CLAS,),
    ),
    Rule(
        id="health.saas",
        reason="sexual abuse theme in health services: CQC sexual assault services",
        event_types=_CONCERN,
        agencies=(Agency.HEALTH,),
        themes=(Theme.CHILD_SEXUAL_ABUSE_IN_FAMILY, Theme.CHILD_SEXUAL_EXPLOITATION),
        to=(Programme.SAAS,),
    ),
    Rule(
        id="social_care.ilacs",
        reason="concern about children's social care: Ofsted ILACS",
        event_types=_CONCERN,
        agencies=(Agency.LOCAL_AUTHORITY,),
        to=(Programme.ILACS,),
    ),
    Rule(
        id="front_door.ilacs",
        reason="concern about the front door: Ofsted ILACS",
        event_types=_CONCERN,
        themes=(Theme.FRONT_DOOR,),
        to=(Programme.ILACS,),
    ),
    Rule(
        id="youth_justice.probation",
        reason="concern about youth justice or probation: HMI Probation youth justice",
        event_types=_CONCERN,
        agencies=(Agency.YOUTH_JUSTICE_SERVICE, Agency.PROBATION),
        to=(Programme.YOUTH_JUSTICE,),
    ),
    Rule(
        id="custody.prisons",
        reason="concern about custody: HMI Prisons custody inspection",
        event_types=_CONCERN,
        agencies=(Agency.CUSTODY,),
        to=(Programme.CUSTODY,),
    ),
    Rule(
        id="jtai.requested",
        reason="the publishing inspectorate requested a JTAI",
        event_types=_CONCERN,
        jtai_requested=True,
        to=(JTAI,),
    ),
    Rule(
        id="jtai.urgent",
        reason="urgent notification: JTAI partners must know",
        event_types=_CONCERN,
        findings=(Finding.URGENT_NOTIFICATION,),
        to=(JTAI,),
    ),
    Rule(
        id="jtai.deep_dive",
        reason="theme of the current JTAI deep dive",
        event_types=_CONCERN,
        themes=(Theme.SERIOUS_YOUTH_VIOLENCE, Theme.MENTAL_HEALTH),
        to=(JTAI,),
    ),
    Rule(
        id="exceptional_practice.share",
        reason="exceptional practice is shared with every other inspectorate",
        event_types=(EXCEPTIONAL_PRACTICE_IDENTIFIED,),
        to=tuple(programme for programme in Programme if programme is not JTAI),
    ),
)
"""Who inspects what: the rules used when no rules file is given."""
