"""One wording of input problems across the whole contract (events, considerations)."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.errors import Problem, SchemaError


def check_size(data: bytes | str, what: str, limit: int) -> None:
    """Refuse input over ``limit`` bytes before anything parses it."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > limit:
        msg = f"{what} is {size} bytes, over the {limit}-byte limit"
        raise SchemaError(msg)


def plain(error: ErrorDetails, union_tags: tuple[str, ...] = ()) -> Problem:
    """A pydantic error as a field path and a plain-English reason."""
    loc = error["loc"]
    # pydantic puts the union member's tag first (("uk.inspectorate...v1", "severity")).
    if loc and isinstance(loc[0], str) and loc[0].startswith("uk.inspectorate."):
        loc = loc[1:]
    path = ".".join(str(part) for part in loc)
    kind = error["type"]
    if kind == "missing":
        reason = "is required"
    elif kind == "extra_forbidden":
        reason = "is not a field of this event type"
    elif kind == "union_tag_invalid":
        path, reason = "type", "must be " + " or ".join(repr(tag) for tag in union_tags)
    elif kind == "union_tag_not_found":
        path, reason = "type", "is required (it says which kind of event this is)"
    elif kind == "json_invalid":
        reason = f"not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    elif kind in {"model_attributes_type", "model_type", "dict_type"}:
        reason = "must be a JSON object"
    else:
        reason = error["msg"].removeprefix("Value error, ")
    return Problem(path, reason)


def schema_error(exc: ValidationError, what: str, union_tags: tuple[str, ...] = ()) -> SchemaError:
    """A ``SchemaError`` listing every problem pydantic found, each with its path."""
    problems = [plain(e, union_tags) for e in exc.errors(include_url=False, include_input=False)]
    return SchemaError(f"invalid {what}: " + "; ".join(str(p) for p in problems), problems)
