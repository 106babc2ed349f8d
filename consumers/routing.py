"""Decide where an event goes: a pure function of the event and the rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from consumers.rules import Rule
from schemas.events import InspectorateEvent
from schemas.inspectorates import Programme, owner_of

__all__ = ["Destination", "route"]


@dataclass(frozen=True, slots=True, order=True)
class Destination:
    """A programme queue an event goes to, with the rule that sent it and why."""

    programme: Programme
    rule: str
    reason: str


def route(
    event: InspectorateEvent,
    rules: Iterable[Rule],
) -> frozenset[Destination]:
    """Every destination of ``event`` under ``rules``; empty when no rule matches.

    ``rules`` is the rule set in force (``RuleSet.rules``, loaded from the rules file);
    there is no default, so no caller can route by a stale built-in copy.

    An event never goes back into a programme of the inspectorate that published it.
    When two rules send an event to one programme, both are kept: each is a reason.
    """
    return frozenset(
        Destination(programme, rule.id, rule.reason)
        for rule in rules
        if rule.matches(event)
        for programme in rule.to
        if owner_of(programme) != event.source
    )
