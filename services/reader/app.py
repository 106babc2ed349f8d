"""The reader service's HTTP API (starlette): authenticate, apply the scope, audit, answer.

Endpoints::

    GET  /healthz        200 {"status": "ok"} (no credential needed)
    GET  /v1/me          the authenticated analyst's name and scope
    POST /v1/feed/read   {"purpose", "area"?, "theme"?, "since"?, "limit"?, "envelopes"?,
                          "analyst"?} -> verified events inside the analyst's scope
    GET  /v1/feed/stream ?purpose=&area=&region=&theme=&source=&type=&severity=&since=
                          &until=&received_since=&follow=&limit= -> Server-Sent Events: the
                          newest matching events (``item``), ``caught_up``, then (follow)
                          each new one as it arrives (``liaison feed``)

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

A live feed (``/v1/feed/stream``), in order: the credential (401); the query, checked as
``liaison feed`` checks it (``check_query``: an unknown or retired area, a misspelt theme
is 422 naming the nearest valid values, never an empty feed); a query naming an area,
region or theme outside the scope is refused (403, ``feed.refused``); then the newest
matching events of the hub's verified view, inside the scope, are recorded as shown
(``feed.read``, view ``terminal.feed``, every id) *before* the first byte is sent (503 when
the record cannot be written). While it follows, each batch of new events is recorded
the same way before it is sent, the credential and scope are checked again (a revoked
credential or a narrowed scope ends the stream with an ``error`` event), a comment keeps
the connection alive every ``KEEPALIVE_S``, and the stream ends when the client goes or
the service stops.

The feed and the audit log are behind seams (``FeedSource``, ``AuditWriter``, and for the
live feed ``LiveFeed``: the ``FeedHub``), so the same app runs on Kafka (``liaison serve
reader``) and on fakes or a hub fed directly in unit tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from consumers.analysis import FeedQuery
from schemas.audit import AnalystScope, FeedRead, FeedRefused
from schemas.errors import LiaisonError, SchemaError
from schemas.reference import local_authorities
from services.inputs import check_analyst, check_filters, check_purpose, check_time
from services.reader.analysts import Analyst, Registry
from services.reader.query import build_query, in_scope, query_refusal
from services.reader.scope import Refusal, refusal, select, split_values
from services.reader.shown import AuditWriter, ShownLog
from services.replay import Filters, Replay

if TYPE_CHECKING:
    from services.reader.hub import Entry, LogView

__all__ = [
    "DEFAULT_LIMIT",
    "KEEPALIVE_S",
    "MAX_BODY_BYTES",
    "MAX_LIMIT",
    "MAX_STREAM_LIMIT",
    "QUERY_PARAMETERS",
    "STREAM_PATH",
    "TERMINAL_VIEW",
    "AuditWriter",
    "FeedSource",
    "LiveFeed",
    "ReadRequest",
    "check_query",
    "create_app",
]

MAX_BODY_BYTES: Final = 16 * 1024
_MAX_DIGITS: Final = 12
"""Longest number read from a header or parameter (anything longer is refused unread)."""
"""Largest request body read; a larger one is refused (413) unread."""
MAX_LIMIT: Final = 500
"""Most events one read returns: the ``feed.read`` record lists every id, and an audit
record is at most 64 KiB."""
DEFAULT_LIMIT: Final = MAX_LIMIT

STREAM_PATH: Final = "/v1/feed/stream"
TERMINAL_VIEW: Final = "terminal.feed"
"""The audit ``view`` of what the live feed sends (``liaison feed``)."""
KEEPALIVE_S: Final = 15.0
"""Longest silence on a live feed: a comment line is sent after it (proxies and clients
tell a quiet feed from a dead connection)."""
MAX_STREAM_LIMIT: Final = 5000
"""Most events a live feed's backfill sends (recorded in parts of 500 ids)."""
QUERY_PARAMETERS: Final = ("area", "region", "theme", "source", "type", "severity")
"""The filters ``check_query`` takes, by their parameter names (``--area``... in the CLI)."""

_log = structlog.get_logger("liaison.reader")


class FeedSource(Protocol):
    """Where verified events come from (the area feed, re-verified on every read)."""

    async def read(self, filters: Filters, now: dt.datetime) -> Replay:
        """Every record of the feed matching ``filters``, each envelope verified again."""
        ...


class LiveFeed(Protocol):
    """The verified log, kept and followed (``services.reader.hub.FeedHub``)."""

    def view(self) -> LogView:
        """Everything verified now."""
        ...

    async def wait(self, version: int, *, within: float) -> int:
        """Return once the view is newer than ``version`` or ``within`` seconds passed."""
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
    if length is not None and (
        not (length.isascii() and length.isdigit())
        or len(length) > _MAX_DIGITS
        or int(length) > MAX_BODY_BYTES
    ):
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


# -- the live feed -----------------------------------------------------------------------


def _values(values: Sequence[str], name: str) -> list[str]:
    if name == "area":  # "Kingston upon Hull, City of" is one name
        return split_values(values, (a.name for a in local_authorities().values()))
    return split_values(values)


def check_query(
    today: dt.date,
    values: Mapping[str, Sequence[str]],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    received_since: dt.datetime | None = None,
    prefix: str = "",
) -> FeedQuery:
    """The query ``values`` ask for (by ``QUERY_PARAMETERS`` name; comma-separated values
    are split, an area's name holding a comma kept whole), checked against the reference
    data on ``today``.

    ``SchemaError`` names the parameter first (``prefix`` + name: ``--area``) and then the
    value and the nearest valid ones, so one line says what to type instead.
    """
    asked = {name: _values(values.get(name, ()), name) for name in QUERY_PARAMETERS}
    severities = asked["severity"]
    if len(severities) > 1:
        raise SchemaError(f"{prefix}severity: give one least severity (1 to 4)")
    checks: dict[str, dict[str, Any]] = {
        "area": {"areas": asked["area"]},
        "region": {"region_names": asked["region"]},
        "theme": {"themes": asked["theme"]},
        "source": {"sources": asked["source"]},
        "type": {"kinds": asked["type"]},
        "severity": {"severity": severities[0] if severities else None},
        "until": {"since": since, "until": until},
    }
    for name, one in checks.items():
        try:
            build_query(today=today, **one)
        except SchemaError as exc:
            raise SchemaError(f"{prefix}{name}: {exc}") from None
    return build_query(
        today=today,
        areas=asked["area"],
        region_names=asked["region"],
        themes=asked["theme"],
        sources=asked["source"],
        kinds=asked["type"],
        severity=severities[0] if severities else None,
        since=since,
        until=until,
        received_since=received_since,
    )


_STREAM_ONCE: Final = ("purpose", "since", "until", "received_since", "follow", "limit")
_PARAMETER_NAME: Final = re.compile(r"^[a-z_]{1,30}$")
_MAX_PARAMETERS: Final = 50

_MAX_VALUE_CHARS: Final = 1000
_YES: Final = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True, slots=True)
class _Stream:
    """A live feed request after checking."""

    purpose: str
    query: FeedQuery
    follow: bool
    limit: int


def _stream_request(params: QueryParams, today: dt.date) -> _Stream:
    """The query string of ``/v1/feed/stream``, checked (422, one line, never the purpose)."""
    items = params.multi_items()
    if len(items) > _MAX_PARAMETERS or any(len(v) > _MAX_VALUE_CHARS for _, v in items):
        raise _HttpError(
            422,
            "invalid",
            f"at most {_MAX_PARAMETERS} parameters of at most {_MAX_VALUE_CHARS} characters each",
        )
    known = {*QUERY_PARAMETERS, *_STREAM_ONCE}
    for name in params:
        if name not in known:
            shown = repr(name) if _PARAMETER_NAME.fullmatch(name) else "a parameter"
            raise _HttpError(
                422, "invalid", f"{shown} is not a live feed parameter ({', '.join(sorted(known))})"
            )
    for name in _STREAM_ONCE:
        if len(params.getlist(name)) > 1:
            raise _HttpError(422, "invalid", f"{name} is given more than once")
    try:
        purpose = check_purpose(params.get("purpose", ""))
        times = {
            name: check_time(params[name], name) if params.get(name) else None
            for name in ("since", "until", "received_since")
        }
        query = check_query(
            today,
            {name: params.getlist(name) for name in QUERY_PARAMETERS},
            since=times["since"],
            until=times["until"],
            received_since=times["received_since"],
        )
    except SchemaError as exc:
        raise _HttpError(422, "invalid", str(exc).replace("--", "")) from None
    follow = _YES.get(params.get("follow", "1").strip().casefold())
    if follow is None:
        raise _HttpError(422, "invalid", "follow must be 1 or 0")
    limit = params.get("limit", str(DEFAULT_LIMIT)).strip()
    if not (limit.isascii() and limit.isdigit() and len(limit) <= _MAX_DIGITS) or not (
        1 <= int(limit) <= MAX_STREAM_LIMIT
    ):
        raise _HttpError(
            422, "invalid", f"limit must be a whole number from 1 to {MAX_STREAM_LIMIT}"
        )
    return _Stream(purpose=purpose, query=query, follow=follow, limit=int(limit))


def _sse(event: str, data: Mapping[str, object]) -> bytes:
    """One Server-Sent Event; its data is one line of ASCII JSON (no line breaks inside)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    return f"event: {event}\ndata: {text}\n\n".encode("ascii")


_KEEPALIVE: Final = b": keepalive\n\n"


def _newest(scope: AnalystScope, query: FeedQuery, view: LogView, limit: int) -> list[Entry]:
    """The ``limit`` newest (by when they occurred) entries shown, oldest first."""
    shown = [e for e in view.entries if in_scope(scope, query, e.item)]
    shown.sort(key=lambda e: (e.item.occurred_at, e.seq))
    return shown[-limit:]


async def _first(hub: LiveFeed, version: int, within: float, stopping: asyncio.Event | None) -> int:
    """``hub.wait``, cut short when the service stops."""
    if stopping is None:
        return await hub.wait(version, within=within)
    waiting = asyncio.ensure_future(hub.wait(version, within=within))
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiting, stopped):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return waiting.result() if waiting.done() and not waiting.cancelled() else version


def create_app(  # noqa: PLR0915 - one closure per endpoint, sharing the seams
    *,
    feed: FeedSource,
    audit: AuditWriter,
    registry: Callable[[], Registry],
    clock: Callable[[], dt.datetime],
    hub: LiveFeed | None = None,
    shown: ShownLog | None = None,
    stopping: asyncio.Event | None = None,
    keepalive_s: float = KEEPALIVE_S,
) -> Starlette:
    """The reader service's ASGI app, on the given feed, audit log, registry and clock.

    The live feed (``/v1/feed/stream``) is served when ``hub`` and ``shown`` are given;
    its streams end when ``stopping`` is set (the service stops).
    """

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

    async def stream(request: Request) -> Response:
        try:
            return await _stream(request)
        except _HttpError as answer:
            return answer.response()

    async def _stream(request: Request) -> Response:
        if hub is None or shown is None:
            raise _HttpError(503, "unavailable", "this service does not serve the live feed")
        analyst = _authenticate(request, registry)
        token = request.headers["authorization"].partition(" ")[2].strip()
        asked = _stream_request(request.query_params, clock().date())
        filters = asked.query.as_strings()
        log = _log.bind(analyst=analyst.name, view=TERMINAL_VIEW)
        refused = query_refusal(analyst.scope, asked.query)
        if refused is not None:
            await _audited(
                shown.refused(analyst.name, asked.purpose, TERMINAL_VIEW, filters, refused)
            )
            raise _HttpError(403, refused.reason, refused.detail)
        view = hub.view()
        backfill = _newest(analyst.scope, asked.query, view, asked.limit)
        await _audited(
            shown.shown(
                analyst.name, asked.purpose, TERMINAL_VIEW, filters, [e.item.id for e in backfill]
            )
        )
        log.info("feed_stream_opened", returned=len(backfill), follow=asked.follow)
        return StreamingResponse(
            _events(hub, shown, token, analyst, asked, view, backfill),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _events(  # noqa: PLR0917 - the one stream's state
        hub: LiveFeed,
        shown: ShownLog,
        token: str,
        analyst: Analyst,
        asked: _Stream,
        view: LogView,
        backfill: list[Entry],
    ) -> AsyncIterator[bytes]:
        for entry in backfill:
            yield _sse("item", entry.item.as_json())
        refused = sum(view.refused.values())
        yield _sse(
            "caught_up", {"returned": len(backfill), "refused": refused, "analyst": analyst.name}
        )
        if not asked.follow:
            return
        loop = asyncio.get_running_loop()
        cursor, version, quiet_since = view.last_seq, view.version, loop.time()
        sent = len(backfill)
        try:
            while stopping is None or not stopping.is_set():
                left = keepalive_s - (loop.time() - quiet_since)
                version = await _first(hub, version, max(left, 0.0), stopping)
                view = hub.view()
                fresh = view.after(cursor)
                cursor = max(cursor, view.last_seq)
                if fresh:
                    now_as = await _still(shown, token, analyst, asked)
                    if isinstance(now_as, bytes):
                        yield now_as
                        return
                    analyst = now_as
                    batch = [e for e in fresh if in_scope(analyst.scope, asked.query, e.item)]
                    if batch:
                        try:
                            await shown.shown(
                                analyst.name, asked.purpose, TERMINAL_VIEW,
                                asked.query.as_strings(), [e.item.id for e in batch],
                            )  # fmt: skip
                        except LiaisonError:
                            yield _sse("error", _UNAUDITED)
                            return
                        for entry in batch:
                            yield _sse("item", entry.item.as_json())
                        sent += len(batch)
                        quiet_since = loop.time()
                if loop.time() - quiet_since >= keepalive_s:
                    yield _KEEPALIVE
                    quiet_since = loop.time()
            yield _sse("error", _STOPPING)
        finally:
            _log.info("feed_stream_closed", analyst=analyst.name, sent=sent)

    async def _still(
        shown: ShownLog, token: str, analyst: Analyst, asked: _Stream
    ) -> Analyst | bytes:
        """The analyst as the registry says now, or the ``error`` event ending the stream
        (a revoked credential; a scope narrowed under the query: refused and audited)."""
        try:
            now_as = registry().authenticate(token)
        except LiaisonError:
            now_as = None
        if now_as is None or now_as.name != analyst.name:
            _log.warning("feed_stream_credential_refused", analyst=analyst.name)
            return _sse("error", {"error": _UNAUTHENTICATED, "reason": "unauthenticated"})
        narrowed = query_refusal(now_as.scope, asked.query)
        if narrowed is not None:
            with contextlib.suppress(LiaisonError):  # ending anyway; ShownLog logged it
                await shown.refused(
                    analyst.name, asked.purpose, TERMINAL_VIEW, asked.query.as_strings(), narrowed
                )
            return _sse("error", {"error": narrowed.detail, "reason": narrowed.reason})
        return now_as

    async def _audited(writing: Awaitable[object]) -> None:
        try:
            await writing
        except LiaisonError:  # ShownLog logged it (AuditUnavailableError)
            raise _HttpError(503, "unavailable", _UNAUDITED["error"]) from None

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/me", me, methods=["GET"]),
            Route("/v1/feed/read", read, methods=["POST"]),
            Route(STREAM_PATH, stream, methods=["GET"]),
        ]
    )


_STOPPING: Final = {
    "error": "the reader service stopped; run the command again once it is back",
    "reason": "stopping",
}
_UNAUDITED: Final = {
    "error": "the read could not be audited, so nothing more was shown",
    "reason": "unavailable",
}
