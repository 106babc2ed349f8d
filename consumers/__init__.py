"""Consumers: routing rules, the pure routing function, the router's decisions, JTAI watch."""

from consumers.explain import Explanation, explain, unmatched_note
from consumers.jtai import JtaiWatch
from consumers.router import HEADER_REASON, HEADER_RULES, Plan, plan
from consumers.routing import Destination, route
from consumers.rules import JtaiSettings, Rule, RuleSet

__all__ = [
    "HEADER_REASON",
    "HEADER_RULES",
    "Destination",
    "Explanation",
    "JtaiSettings",
    "JtaiWatch",
    "Plan",
    "Rule",
    "RuleSet",
    "explain",
    "plan",
    "route",
    "unmatched_note",
]
