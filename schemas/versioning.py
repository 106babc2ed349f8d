"""Event versions: chained upcasters from each stored version to the current one.

A stored event is never rewritten (the audit log must replay years later). When a
``...v2`` of an event type is introduced, the old wire type stays readable by an
upcaster ``v1 -> v2`` that turns the stored JSON object into the new shape before it is
validated; upcasters chain (``v1 -> v2 -> v3``), as in eventsourcing's ``Mapper``.
Upcasting happens on decode only: a signature always covers the stored v1 bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from schemas.errors import SchemaError

__all__ = ["Upcaster", "Upcasters"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns one version's JSON object into the next version's (and sets the new ``type``)."""

_MAX_STEPS = 32


@dataclass(frozen=True, slots=True)
class Upcasters:
    """Upcasters keyed by the wire ``type`` they read."""

    steps: Mapping[str, Upcaster] = field(default_factory=lambda: MappingProxyType({}))

    def __bool__(self) -> bool:
        return bool(self.steps)

    def upcast(self, data: dict[str, Any]) -> dict[str, Any]:
        """Apply upcasters until ``data['type']`` is a current version."""
        seen: list[str] = []
        while isinstance(data.get("type"), str) and data["type"] in self.steps:
            kind = data["type"]
            if kind in seen or len(seen) >= _MAX_STEPS:
                msg = f"upcasters loop at {kind!r} (after {' -> '.join(seen)})"
                raise SchemaError(msg)
            seen.append(kind)
            data = self.steps[kind](dict(data))
            if data.get("type") == kind:
                msg = f"the upcaster for {kind!r} did not change the type"
                raise SchemaError(msg)
        return data
