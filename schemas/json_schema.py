"""JSON Schema documents of the event contract, for systems not written in Python.

The JSON Schemas say everything a schema can, generated from the models and the
reference data: fields, types, enumerations, lengths; the wire's text profiles
(``schemas.wire``: canonical UUIDs, RFC 3339 date-times on days that exist, GSS codes in
ASCII digits); a JTAI rationale when one is requested; a programme run by the event's
source (``schemas.inspectorates.PROGRAMMES``) or the joint JTAI; the consideration's
distinct contributors and its two-inspectorate trigger.

What a schema cannot say is enforced by Liaison on publish and on receipt, and listed in
each schema's description: reference data (the area is live on ``occurred_at``), the
clock (not in the future), the minimisation lint, comparisons between fields, the size
limit and JSON text rules (unique keys). One gap is the JSON Schema data model's, not
Liaison's: ``2.0`` and ``2`` are the same number there, so a schema accepts an integer
written with a fraction or exponent and Liaison refuses it (no coercion on the wire).

Patterns use only what ECMA-262, Python's ``re`` and RE2 read alike (``[0-9]``, never
``\\d``, no look-around); a string with a pattern also refuses a line feed, because
Python's and Java's ``$`` match before a final one. The committed copies in
``schemas/json/`` are kept current by a test; regenerate them with
``liaison schema export schemas/json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final, get_args

from pydantic import BaseModel, BeforeValidator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from schemas.events import (
    ConcernRaised,
    ExceptionalPracticeIdentified,
    JtaiRequest,
    RecommendationMade,
    RecommendationReviewed,
)
from schemas.inspectorates import JTAI, PROGRAMMES
from schemas.jtai import JtaiConsiderationRequested, JtaiDecisionRecorded, JtaiTrigger
from schemas.outcomes import DeliveryRecorded, OutcomeOverdue, OutcomeRecorded
from schemas.wire import (
    DATETIME_PATTERN,
    UUID_PATTERN,
    WINDOW_END_PATTERN,
    CanonicalUuid,
    Rfc3339,
    WindowEnd,
)

__all__ = ["CALENDAR_DAY_PATTERN", "EVENT_MODELS", "json_schemas", "render"]

EVENT_MODELS: Final[tuple[type[BaseModel], ...]] = (
    ConcernRaised,
    ExceptionalPracticeIdentified,
    RecommendationMade,
    RecommendationReviewed,
    JtaiConsiderationRequested,
    JtaiDecisionRecorded,
    OutcomeRecorded,
    OutcomeOverdue,
    DeliveryRecorded,
)

CALENDAR_DAY_PATTERN: Final = (
    r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)T"
)
"""The date of a date-time is a day of the Gregorian calendar (30 days hath September,
29 February only in leap years), as Python's parser requires after the wire's pattern."""

_LINE_FEED: Final = r"\n"

# Liaison's own rule (``schemas.jtai``): "several" inspectorates means at least two. The
# agreement tests hold the schema and the model to the same boundary.
_SEVERAL: Final = 2


def _before_func(alias: object) -> Callable[..., Any]:
    """The text check a wire type runs before parsing (``schemas.wire``)."""
    before = [m for m in get_args(alias)[1:] if isinstance(m, BeforeValidator)]
    return before[0].func


# Each wire type is recognised by its own validator function, wherever a model uses it
# (a field, a tuple's items, an optional value), never by a field's name.
_WIRE_PATTERNS: Final[dict[Callable[..., Any], str]] = {
    _before_func(CanonicalUuid): UUID_PATTERN,
    _before_func(Rfc3339): DATETIME_PATTERN,
    _before_func(WindowEnd): WINDOW_END_PATTERN,
}


class _WireJsonSchema(GenerateJsonSchema):
    """pydantic's generator, plus the pattern of each wire type's text profile."""

    def function_before_schema(
        self, schema: core_schema.BeforeValidatorFunctionSchema
    ) -> JsonSchemaValue:
        """The wrapped type's schema, with the wire pattern its text check enforces."""
        json_schema = super().function_before_schema(schema)
        pattern = _WIRE_PATTERNS.get(schema["function"]["function"])
        if pattern is None:
            return json_schema
        json_schema = {**json_schema, "pattern": pattern}
        if json_schema.get("format") == "date-time":
            json_schema["allOf"] = [{"type": "string", "pattern": CALENDAR_DAY_PATTERN}]
        return json_schema


_NOT_EXPRESSIBLE: Final = (
    " Also enforced by Liaison, not expressible here: `area` is an English upper-tier"
    " local authority live on `occurred_at`; `occurred_at` is not in the future; free text"
    " (`summary`, `shareable_learning`, a JTAI rationale) contains no NHS number, date of"
    " birth, full postcode, email address or UK phone number; one event is at most 64 KiB"
    " of UTF-8 JSON with no repeated key in any object; a date-time converts to UTC"
    " within its range; a consideration lists `contributing_inspectorates` sorted, and"
    " its `occurred_at` falls in [`window_start`, `window_end`). An integer field is"
    " written without a fraction or exponent (`2`, never `2.0` or `2e0`): JSON Schema"
    " cannot tell them apart, Liaison refuses them. Patterns refuse a line feed"
    " explicitly because some regular expression engines let `$` match before one."
)


def _guard_line_feeds(node: Any) -> None:  # noqa: ANN401 - any JSON Schema value
    """Add ``not: {pattern: "\\n"}`` beside every anchored pattern (Python's ``$``)."""
    if isinstance(node, dict):
        for value in node.values():
            _guard_line_feeds(value)
        pattern = node.get("pattern")
        if node.get("type") == "string" and isinstance(pattern, str) and pattern.endswith("$"):
            node["not"] = {"type": "string", "pattern": _LINE_FEED}
    elif isinstance(node, list):
        for item in node:
            _guard_line_feeds(item)


def _is(name: str, value: object) -> dict[str, Any]:
    """A subschema: the object has member ``name`` equal to ``value``."""
    return {"type": "object", "properties": {name: {"const": value}}, "required": [name]}


def _programme_owned_by_source() -> list[dict[str, Any]]:
    """One rule per inspectorate: its own programmes, or the joint JTAI."""
    return [
        {
            "if": _is("source", source.value),
            "then": {
                "type": "object",
                "properties": {"programme": {"enum": [p.value for p in (*owned, JTAI)]}},
            },
        }
        for source, owned in PROGRAMMES.items()
    ]


def _rationale_when_requested() -> dict[str, Any]:
    """A requested JTAI carries a rationale (a string, not null)."""
    return {
        "if": _is("requested", True),  # noqa: FBT003 - a JSON value, not a flag
        "then": {
            "type": "object",
            "properties": {"rationale": {"type": "string"}},
            "required": ["rationale"],
        },
    }


def _several_inspectorates() -> dict[str, Any]:
    """The several-inspectorates trigger names at least two inspectorates."""
    return {
        "if": _is("trigger", JtaiTrigger.SEVERAL_INSPECTORATES.value),
        "then": {
            "type": "object",
            "properties": {"contributing_inspectorates": {"type": "array", "minItems": _SEVERAL}},
        },
    }


def _add_rules(model: type[BaseModel], schema: dict[str, Any]) -> None:
    """The model's cross-field rules that JSON Schema can express (``if``/``then``)."""
    properties = schema["properties"]
    rules: list[dict[str, Any]] = []
    if "programme" in model.model_fields:
        rules.extend(_programme_owned_by_source())
    if "jtai" in model.model_fields:
        request = schema["$defs"][JtaiRequest.__name__]
        request["allOf"] = [_rationale_when_requested()]
    if model is JtaiConsiderationRequested:
        # Distinct ids and inspectorates (the model also wants them sorted: not expressible).
        properties["contributing_event_ids"]["uniqueItems"] = True
        properties["contributing_inspectorates"]["uniqueItems"] = True
        rules.append(_several_inspectorates())
    if rules:
        schema["allOf"] = rules


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema (2020-12) for every event type of the contract."""
    out: dict[str, dict[str, Any]] = {}
    for model in EVENT_MODELS:
        wire_type = model.model_fields["type"].default
        schema = model.model_json_schema(mode="validation", schema_generator=_WireJsonSchema)
        # `type` has a default for Python callers, but on the wire it is required.
        schema["required"] = ["type", *[f for f in schema.get("required", []) if f != "type"]]
        schema["properties"]["type"].pop("default", None)
        _add_rules(model, schema)
        _guard_line_feeds(schema)
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
