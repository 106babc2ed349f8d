"""Consumers: routing rules, the pure routing function and the router's decisions."""

from consumers.router import HEADER_REASON, HEADER_RULES, Plan, plan
from consumers.routing import Destination, route
from consumers.rules import DEFAULT_RULES, Rule

__all__ = [
    "DEFAULT_RULES",
    "HEADER_REASON",
    "HEADER_RULES",
    "Destination",
    "Plan",
    "Rule",
    "plan",
    "route",
]
