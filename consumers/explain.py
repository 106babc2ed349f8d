"""Why an event goes where it goes, in words a person can check against the rules file.

Pure, like ``route``: the CLI and the web feed show these to operators who ask "where
would this event go, and which rule sent it there?".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from consumers.routing import route
from consumers.rules import RuleSet
from schemas.events import InspectorateEvent
from schemas.inspectorates import Programme
from schemas.topics import Topics

__all__ = ["Explanation", "explain", "unmatched_note"]

_CONTRACT: Final = Topics()


@dataclass(frozen=True, slots=True)
class Explanation:
    """One route of an event: the programme, its queue's topic, the rule and its reason."""

    programme: Programme
    topic_name: str
    rule: str
    reason: str


def explain(
    event: InspectorateEvent,
    rules: RuleSet,
    *,
    topics: Topics = _CONTRACT,
) -> tuple[Explanation, ...]:
    """Every route ``rules`` give ``event``, sorted by programme then rule; empty if none.

    Topic names are the contract's unless ``topics`` (a deployment's prefix) is given.
    """
    return tuple(
        Explanation(d.programme, topics.programme(d.programme), d.rule, d.reason)
        # Programme then rule, as the router writes them (it sorts destinations too).
        for d in sorted(route(event, rules.rules), key=lambda d: (d.programme.value, d.rule))
    )


def unmatched_note(
    event: InspectorateEvent,
    rules: RuleSet,
    *,
    topics: Topics = _CONTRACT,
) -> str | None:
    """Why no rule routes ``event`` (it goes to the unrouted topic); ``None`` when one does."""
    if route(event, rules.rules):
        return None
    unrouted = f"it would go to {topics.unrouted}"
    matched = [rule for rule in rules.rules if rule.matches(event)]
    if not matched:
        return f"no rule matched: {unrouted}"
    # A rule lists at least one programme, so when rules matched yet nothing was routed,
    # every programme they name is the publisher's own: the one exclusion ``route`` makes.
    ids = ", ".join(rule.id for rule in matched)
    own = sorted({programme.value for rule in matched for programme in rule.to})
    one_rule, one_programme = len(matched) == 1, len(own) == 1
    return (
        f"{'rule' if one_rule else 'rules'} {ids} matched but"
        f" {'was' if one_rule else 'were'} excluded:"
        f" {'it sends' if one_rule else 'they send'} only to {_and(own)},"
        f" {'which is' if one_programme else 'which are'} {event.source.value}'s own"
        f" {'programme' if one_programme else 'programmes'}, and an event never goes to a"
        f" programme of its own publisher; {unrouted}"
    )


def _and(names: list[str]) -> str:
    """``ilacs``, ``clas and saas`` or ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
