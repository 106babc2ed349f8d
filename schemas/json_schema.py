"""JSON Schema documents of the event contract, for systems not written in Python.

The JSON Schemas say everything a schema can: fields, types, enumerations, lengths,
patterns. Three rules cannot be expressed there and are enforced by Liaison on publish
and on receipt: the area must be an upper-tier local authority live on ``occurred_at``,
``occurred_at`` may not be in the future, and free text must pass the data-minimisation
lint (docs/minimisation.md). The committed copies in ``schemas/json/`` are kept current
by a test; regenerate them with ``liaison schema export schemas/json``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from pydantic import BaseModel

from schemas.events import ConcernRaised, ExceptionalPracticeIdentified
from schemas.jtai import JtaiConsiderationRequested

__all__ = ["EVENT_MODELS", "json_schemas", "render"]

EVENT_MODELS: Final[tuple[type[BaseModel], ...]] = (
    ConcernRaised,
    ExceptionalPracticeIdentified,
    JtaiConsiderationRequested,
)

_NOT_EXPRESSIBLE = (
    " Also enforced by Liaison, not expressible here: `area` is an English upper-tier"
    " local authority live on `occurred_at`; `occurred_at` is not in the future; free text"
    " (`summary`, `shareable_learning`, a JTAI rationale) contains no NHS number, date of"
    " birth, full postcode, email address or UK phone number; one event is at most 64 KiB"
    " of JSON."
)


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema (2020-12) for every event type of the contract."""
    out: dict[str, dict[str, Any]] = {}
    for model in EVENT_MODELS:
        wire_type = model.model_fields["type"].default
        schema = model.model_json_schema(mode="validation")
        # `type` has a default for Python callers, but on the wire it is required.
        schema["required"] = ["type", *[f for f in schema.get("required", []) if f != "type"]]
        schema["properties"]["type"].pop("default", None)
        schema["description"] = (schema.get("description") or "").strip() + _NOT_EXPRESSIBLE
        out[f"{wire_type}.schema.json"] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:liaison:schema:{wire_type}",
            **schema,
        }
    return out


def render(schema: dict[str, Any]) -> str:
    """The committed text of one schema: stable key order, two-space indent, final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
