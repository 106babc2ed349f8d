"""Consumers: routing rules, the pure routing function, the router's decisions, JTAI watch."""

from consumers.explain import Explanation, explain, unmatched_note
from consumers.jtai import JtaiWatch
from consumers.router import HEADER_REASON, HEADER_RULES, BatchOutcome, LogLine, Plan, Router, plan
from consumers.routing import Destination, route
from consumers.rules import JtaiSettings, Rule, RuleSet

__all__ = [
    "HEADER_REASON",
    "HEADER_RULES",
    "BatchOutcome",
    "Destination",
    "Explanation",
    "JtaiSettings",
    "JtaiWatch",
    "LogLine",
    "Plan",
    "Router",
    "Rule",
    "RuleSet",
    "explain",
    "plan",
    "route",
    "unmatched_note",
]
