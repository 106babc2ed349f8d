"""Routing rules as data: which events go to which programme queues, and why.

A rule matches an event when every condition it sets holds (within one condition, any
listed value matches). Some conditions read a field only one type of finding has
(``findings``, ``jtai_requested`` and ``min_severity`` a concern's, ``progress`` a
review's): a rule that sets one never matches a finding of another type, and a rule whose
conditions no single type can meet is refused. Rules are plain validated data: the rule
set in force is read from ``deploy/rules.toml`` at start-up
(``services.rules_file.load_rules``), the single source of truth; this module only says
what a valid rule set is.
"""

from __future__ import annotations

import functools
from typing import Literal, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import (
    CONCERN_RAISED,
    RECOMMENDATION_REVIEWED,
    ConcernRaised,
    Finding,
    InspectorateEvent,
    Progress,
    RecommendationReviewed,
    Theme,
)
from schemas.inspectorates import Agency, Programme

__all__ = ["EventType", "JtaiSettings", "Rule", "RuleSet"]

EventType: TypeAlias = Literal[
    "uk.inspectorate.concern.raised.v1",
    "uk.inspectorate.exceptional_practice.identified.v1",
    "uk.inspectorate.recommendation.made.v1",
    "uk.inspectorate.recommendation.reviewed.v1",
]
"""The event types a rule may name (``schemas.events.FINDING_TYPES``): a misspelt type
would otherwise never match."""


class Rule(BaseModel):
    """One routing rule: conditions, destinations, and the reason given with each route."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # At most 200: routed records' route attestations and audit records name rules by id.
    id: str = Field(min_length=1, max_length=200, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    reason: str = Field(min_length=1, max_length=200)
    to: tuple[Programme, ...] = Field(min_length=1)
    event_types: tuple[EventType, ...] = ()
    agencies: tuple[Agency, ...] = ()
    themes: tuple[Theme, ...] = ()
    findings: tuple[Finding, ...] = ()
    # strict: in a rules file, "false" in quotes is a typo, not a boolean.
    jtai_requested: bool | None = Field(default=None, strict=True)
    # strict: "4" or 4.0 in a rules file is a mistake to point out, not to coerce.
    min_severity: int | None = Field(default=None, ge=1, le=4, strict=True)
    """A concern's severity is at least this (1 to 4)."""
    progress: tuple[Progress, ...] = ()
    """A recommendation's review judged its progress as one of these."""

    @model_validator(mode="after")
    def _can_match(self) -> Self:
        # A rule no event can meet routes nothing, silently: say so when the file is read.
        concern, review = self._concern_conditions(), self._review_conditions()
        if concern and review:
            msg = (
                f"sets {_and(concern)}, which only concerns have, and {_and(review)}, which"
                " only recommendation reviews have: no event can match it"
            )
            raise ValueError(msg)
        for named, only in ((concern, CONCERN_RAISED), (review, RECOMMENDATION_REVIEWED)):
            if named and self.event_types and only not in self.event_types:
                msg = (
                    f"sets {_and(named)}, which only {only} events have, but event_types"
                    " leaves that type out: no event can match it"
                )
                raise ValueError(msg)
        return self

    def _concern_conditions(self) -> list[str]:
        named = {
            "findings": bool(self.findings),
            "jtai_requested": self.jtai_requested is not None,
            "min_severity": self.min_severity is not None,
        }
        return [name for name, given in named.items() if given]

    def _review_conditions(self) -> list[str]:
        return ["progress"] if self.progress else []

    @functools.cached_property
    def _agency_set(self) -> frozenset[Agency]:
        return frozenset(self.agencies)

    def matches(self, event: InspectorateEvent) -> bool:
        """Whether every condition this rule sets holds for ``event``."""
        return (
            (not self.event_types or event.type in self.event_types)
            and (not self.agencies or not self._agency_set.isdisjoint(event.subject_agencies))
            and (not self.themes or event.theme in self.themes)
            and self._concern_conditions_hold(event)
            and self._review_conditions_hold(event)
        )

    def _concern_conditions_hold(self, event: InspectorateEvent) -> bool:
        if not self.findings and self.jtai_requested is None and self.min_severity is None:
            return True
        if not isinstance(event, ConcernRaised):
            return False  # findings, JTAI requests and severity exist only on concerns
        requested = event.jtai is not None and event.jtai.requested
        return (
            (not self.findings or event.finding in self.findings)
            and (self.jtai_requested is None or requested == self.jtai_requested)
            and (self.min_severity is None or event.severity >= self.min_severity)
        )

    def _review_conditions_hold(self, event: InspectorateEvent) -> bool:
        if not self.progress:
            return True
        # progress exists only on a recommendation's review
        return isinstance(event, RecommendationReviewed) and event.progress in self.progress


class JtaiSettings(BaseModel):
    """When an area becomes a JTAI candidate: enough inspectorates' concerns in a window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # strict: 180.0 or "180" in a rules file is a mistake to point out, not to coerce.
    window_days: int = Field(default=180, ge=1, le=3650, strict=True)
    """Length of the sliding window, in days, over which an area's concerns are counted."""
    min_inspectorates: int = Field(default=2, ge=2, le=5, strict=True)
    """How many different inspectorates must have raised concerns in the window."""


class RuleSet(BaseModel):
    """Every routing rule in force, in file order, and the JTAI candidate settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # At least one rule: an empty set would quietly send every event to liaison.unrouted.
    rules: tuple[Rule, ...] = Field(min_length=1)
    jtai: JtaiSettings = Field(default_factory=JtaiSettings)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        # Routed records and the audit log name rules by id, so an id must mean one rule.
        positions: dict[str, list[int]] = {}
        for number, rule in enumerate(self.rules, start=1):
            positions.setdefault(rule.id, []).append(number)
        duplicates = [
            f"rule id {rule_id!r} is used by rules {_numbers(found)}"
            for rule_id, found in positions.items()
            if len(found) > 1
        ]
        if duplicates:
            raise ValueError("; ".join(duplicates))
        return self


def _and(names: list[str]) -> str:
    """``findings`` or ``findings and min_severity`` or ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _numbers(positions: list[int]) -> str:
    """``#2 and #5`` or ``#1, #2 and #7``."""
    marked = [f"#{n}" for n in positions]
    return ", ".join(marked[:-1]) + " and " + marked[-1]
