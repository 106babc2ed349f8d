"""The reader service's HTTP API (starlette): authenticate, apply the scope, audit, answer.

Endpoints::

    GET  /healthz        200 {"status": "ok"} (no credential needed)
    GET  /v1/me          the authenticated analyst's name and scope
    POST /v1/feed/read   {"purpose", "area"?, "theme"?, "since"?, "limit"?, "envelopes"?,
                          "analyst"?} -> verified events inside the analyst's scope

Every call but ``/healthz`` carries ``Authorization: Bearer <token>``; a missing,
unknown or revoked token is 401 and nothing else happens (no feed read, no record).

A read, in order: the body is parsed (400) and checked as the CLI checks it (purpose,
filters, ``since``: 422); a request naming another analyst than the credential's, or an
area or theme outside the scope, is refused (403) and a ``feed.refused`` record is
written; otherwise the feed is read (every envelope verified again with the trust
store), only events inside the scope are kept, and a ``feed.read`` record naming the
analyst, the purpose, the filters and every event id returned is written *before* the
answer is sent: a read whose record cannot be written returns nothing (503). Records are
written by the service with the reader's key (``AuditWriter``), never by the client.

The feed and the audit log are behind two seams (``FeedSource``, ``AuditWriter``), so the
same app runs on Kafka (``liaison serve reader``) and on fakes in unit tests.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from schemas.audit import FeedRead, FeedRefused
from schemas.errors import LiaisonError, SchemaError
from services.inputs import check_analyst, check_filters, check_purpose, check_time
from services.reader.analysts import Analyst, Registry
from services.reader.scope import Refusal, refusal, select
from services.replay import Filters, Replay

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_BODY_BYTES",
    "MAX_LIMIT",
    "AuditWriter",
    "FeedSource",
    "ReadRequest",
    "create_app",
]

MAX_BODY_BYTES: Final = 16 * 1024
"""Largest request body read; a larger one is refused (413) unread."""
MAX_LIMIT: Final = 500
"""Most events one read returns: the ``feed.read`` record lists every id, and an audit
record is at most 64 KiB."""
DEFAULT_LIMIT: Final = MAX_LIMIT

_log = structlog.get_logger("liaison.reader")


class FeedSource(Protocol):
    """Where verified events come from (the area feed, re-verified on every read)."""

    async def read(self, filters: Filters, now: dt.datetime) -> Replay:
        """Every record of the feed matching ``filters``, each envelope verified again."""
        ...


class AuditWriter(Protocol):
    """Where the service's audit records go, signed with the reader's key."""

    async def write(self, record: FeedRead | FeedRefused) -> None:
        """Append ``record``; return once it is on the log, or raise ``LiaisonError``."""
        ...


class ReadRequest(BaseModel):
    """The body of ``POST /v1/feed/read``."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    purpose: str = Field(max_length=4000, description="Why the analyst reads (audited).")
    area: str | None = Field(default=None, description="A GSS code inside the scope.")
    theme: str | None = Field(default=None, description="A theme inside the scope.")
    since: str | None = Field(default=None, description="ISO 8601; the broker's append time.")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    envelopes: bool = Field(default=False, description="Also return the signed envelopes.")
    analyst: str | None = Field(
        default=None, description="Who the caller says they are; must be the credential's."
    )


class _HttpError(LiaisonError):
    """A request ends here with ``status`` and a JSON error (never quoting its input)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None  # noqa: PLR2004
        return JSONResponse(
            {"error": str(self), "reason": self.reason}, status_code=self.status, headers=headers
        )


_UNAUTHENTICATED: Final = (
    "the reader service does not accept this credential (missing, unknown or revoked);"
    " an operator issues one with `liaison analysts add`"
)


def _authenticate(request: Request, registry: Callable[[], Registry]) -> Analyst:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _HttpError(401, "unauthenticated", _UNAUTHENTICATED)
    try:
        analysts = registry()
    except LiaisonError as exc:
        _log.error("registry_unreadable", error=str(exc))
        raise _HttpError(503, "unavailable", "the analysts' registry cannot be read") from None
    analyst = analysts.authenticate(token.strip())
    if analyst is None:
        _log.warning("credential_refused")  # never the token
        raise _HttpError(401, "unauthenticated", _UNAUTHENTICATED)
    return analyst


async def _body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise _HttpError(413, "too_large", f"the request is over {MAX_BODY_BYTES} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _HttpError(413, "too_large", f"the request is over {MAX_BODY_BYTES} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _parse(body: bytes) -> ReadRequest:
    try:
        return ReadRequest.model_validate_json(body)
    except ValidationError as exc:
        fields = sorted(
            {
                ".".join(map(str, error["loc"])) or "body"
                for error in exc.errors(include_url=False, include_input=False)
            }
        )
        shown = ", ".join(f[:40] for f in fields[:5])
        raise _HttpError(
            400, "bad_request", f"the request is not a feed read (JSON; fields: {shown})"
        ) from None


@dataclass(frozen=True, slots=True)
class _Checked:
    """A request after checking: what is audited, and what the feed is asked for."""

    purpose: str
    filters: Filters
    limit: int
    envelopes: bool


def _check(asked: ReadRequest) -> _Checked:
    try:
        purpose = check_purpose(asked.purpose)
        check_filters(area=asked.area, theme=asked.theme)
        since = check_time(asked.since, "since") if asked.since is not None else None
        if asked.analyst is not None:
            check_analyst(asked.analyst)
    except SchemaError as exc:  # messages never repeat the values
        raise _HttpError(422, "invalid", str(exc).replace("--", "")) from None
    filters = Filters(since=since, area=asked.area, theme=asked.theme)
    return _Checked(purpose=purpose, filters=filters, limit=asked.limit, envelopes=asked.envelopes)


def _refused(analyst: Analyst, asked: ReadRequest, checked: _Checked) -> Refusal | None:
    if asked.analyst is not None and asked.analyst != analyst.name:
        return Refusal(
            "not_the_credential",
            "the request names another analyst than the credential's: your identity is"
            " the credential's (leave --analyst out)",
        )
    return refusal(analyst.scope, checked.filters.area, checked.filters.theme)


def _event_json(payload: bytes) -> Any:  # noqa: ANN401 - an event's JSON object
    return json.loads(payload)


def create_app(
    *,
    feed: FeedSource,
    audit: AuditWriter,
    registry: Callable[[], Registry],
    clock: Callable[[], dt.datetime],
) -> Starlette:
    """The reader service's ASGI app, on the given feed, audit log, registry and clock."""

    async def healthz(request: Request) -> JSONResponse:
        del request
        return JSONResponse({"status": "ok"})

    async def me(request: Request) -> JSONResponse:
        try:
            analyst = _authenticate(request, registry)
        except _HttpError as answer:
            return answer.response()
        return JSONResponse(
            {"analyst": analyst.name, "scope": analyst.scope.model_dump(mode="json")}
        )

    async def read(request: Request) -> JSONResponse:
        try:
            return await _read(request)
        except _HttpError as answer:
            return answer.response()

    async def _read(request: Request) -> JSONResponse:
        analyst = _authenticate(request, registry)
        asked = _parse(await _body(request))
        checked = _check(asked)
        actor = f"analyst:{analyst.name}"
        log = _log.bind(analyst=analyst.name)
        refused = _refused(analyst, asked, checked)
        if refused is not None:
            await _write(FeedRefused(
                at=clock(), actor=actor, analyst=analyst.name, purpose=checked.purpose,
                filters=checked.filters.as_strings(), reason=refused.reason,
                detail=refused.detail[:500],
            ))  # fmt: skip
            log.warning("feed_refused", reason=refused.reason)
            raise _HttpError(403, refused.reason, refused.detail)
        try:
            found = await feed.read(checked.filters, clock())
        except LiaisonError as exc:
            log.warning("feed_unreadable", error=str(exc))
            raise _HttpError(503, "unavailable", "the feed cannot be read now; try again") from None
        chosen = select(analyst.scope, found.verified)
        returned = chosen[: checked.limit]
        await _write(FeedRead(
            at=clock(), actor=actor, analyst=analyst.name, purpose=checked.purpose,
            filters=checked.filters.as_strings(), returned=len(returned),
            event_ids=tuple(dict.fromkeys(opened.event.id for _, opened in returned)),
        ))  # fmt: skip
        log.info("feed_read", returned=len(returned), unverifiable=len(found.unverifiable))
        answer: dict[str, Any] = {
            "analyst": analyst.name,
            "returned": len(returned),
            "truncated": len(chosen) > len(returned),
            "events": [_event_json(opened.payload) for _, opened in returned],
        }
        if answer["truncated"]:
            last = returned[-1][0].timestamp_ms
            answer["next_since"] = dt.datetime.fromtimestamp(last / 1000, dt.UTC).isoformat()
        if checked.envelopes:
            answer["envelopes"] = [
                record.value.decode("utf-8", "replace") for record, _ in returned
            ]
        return JSONResponse(answer)

    async def _write(record: FeedRead | FeedRefused) -> None:
        try:
            await audit.write(record)
        except LiaisonError as exc:
            _log.error("audit_unwritable", action=record.action, error=str(exc))
            raise _HttpError(
                503, "unavailable", "the read could not be audited, so nothing was returned"
            ) from None

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/me", me, methods=["GET"]),
            Route("/v1/feed/read", read, methods=["POST"]),
        ]
    )
