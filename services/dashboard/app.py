"""The analysts' web dashboard (starlette): sign in, scope, audit, then show.

Pages and streams (the DOM and URL contract is the browser test's, kept exactly)::

    GET  /sign-in, POST /sign-in    the credential and a stated purpose -> a session cookie
    POST /sign-out                  ends the session (the cookie is cleared)
    GET  /                          overview: tile map and table of the areas in scope
    GET  /events/overview           Server-Sent Events: ``totals`` as findings arrive
    GET  /feed                      live feed: filters, the newest rows
    GET  /events/feed               Server-Sent Events: ``items`` (new rows) as they arrive
    GET  /export.jsonl              the feed's rows as JSON Lines
    GET  /area/{code or name}       an area: chart, timeline, outcomes, JTAI, recommendations
    GET  /event/{uuid}              one event: fields, the server's verification, the envelope
    GET  /healthz                   200 (no data)
    GET  /static/...                the dashboard's own CSS and JavaScript

Every request but ``/sign-in``, ``/healthz`` and ``/static`` needs a session that stands
*now*: the cookie verifies, is live, was not signed out, and the analyst it names is active
in the registry with the same credential (read again on every request; streams check again
before each message), else an HTML page is a 303 to ``/sign-in`` and a stream or export is
401. Such a request from another site's page (``Sec-Fetch-Site`` ``same-site`` or
``cross-site``: SameSite counts every port of 127.0.0.1 as one site, so another local
service's page would carry the cookie) is refused (403) before anything is read or recorded.
Signing out ends the session itself, not only the browser's copy of the cookie: its id is
kept (in memory, until it would have expired) and refused wherever it is presented.

What an analyst may see is ``in_scope`` (their scope and their filters) and nothing else:
no count, row, mark or chart is made from anything outside it. A request naming an area,
region or theme outside the scope is refused (403) and recorded (``feed.refused``). Every
view is recorded (``feed.read``, with the view name and the id of every event shown or
counted) *before* the response or the stream message carrying it is sent; when the record
cannot be written the answer is a 503 page, or the stream ends with an ``error`` event,
and nothing is shown.

The live feed's place (``after=``, the stream's ``id:``) is an opaque token sealed for the
session (``SessionSigner.cursor``), never the hub's own sequence numbers, which count every
record read, out of scope and refused ones too; a token that does not open is a 400.

Every response carries the security headers (``SECURITY_HEADERS``: a CSP allowing only the
dashboard's own scripts and styles, ``no-store``, ``nosniff``, no referrer, no framing).
Before anything reads a request, a ``Host`` not among ``allowed_hosts`` (DNS rebinding) and
a query string too long, with more than ``MAX_QUERY_FIELDS`` parameters or a value longer
than ``MAX_QUERY_VALUE_CHARS`` are refused (400); forms are capped the same way
(``MAX_FORM_BYTES``, ``MAX_FORM_FIELDS``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode

import jinja2
import structlog
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders, QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consumers.analysis import (
    AreaTotals,
    FeedQuery,
    Item,
    area_timeline,
    counts_over_time,
    overview,
    recommendations,
    trim,
)
from schemas.errors import LiaisonError, SchemaError
from schemas.events import Theme
from schemas.inspectorates import Inspectorate
from schemas.reference import local_authorities
from services.dashboard import svg
from services.dashboard.session import (
    COOKIE,
    SIGN_IN_COOKIE,
    Session,
    SessionSigner,
    new_secret,
    new_session_id,
    safe_next,
    same_origin,
    start_session,
)
from services.inputs import check_purpose
from services.reader.analysts import Analyst, Registry
from services.reader.app import AuditWriter
from services.reader.hub import Entry, FeedHub, LogView
from services.reader.query import build_query, in_scope, query_refusal, scoped_areas
from services.reader.scope import (
    OUT_OF_SCOPE,
    Refusal,
    area_in_scope,
    describe,
    split_values,
)
from services.reader.shown import AuditUnavailableError, ShownLog

__all__ = [
    "FEED_ROWS",
    "KEEPALIVE_S",
    "MAX_FORM_BYTES",
    "MAX_FORM_FIELDS",
    "MAX_QUERY_BYTES",
    "MAX_QUERY_FIELDS",
    "MAX_QUERY_VALUE_CHARS",
    "SECURITY_HEADERS",
    "WINDOWS",
    "create_dashboard",
]

KEEPALIVE_S: Final = 15.0
"""Seconds between keep-alive comments on a quiet stream."""
FEED_ROWS: Final = 500
"""Most rows the feed page shows, and most one stream message carries (newest first)."""
MAX_FORM_BYTES: Final = 16 * 1024
"""Largest form body read; a larger one is refused (413) unread."""
MAX_FORM_FIELDS: Final = 20
"""Most fields a form may have; more is refused (400) unparsed."""
MAX_QUERY_BYTES: Final = 16 * 1024
"""Longest query string read (as sent); a longer one is refused (400) unparsed."""
MAX_QUERY_FIELDS: Final = 50
"""Most parameters a query string may have; more is refused (400) unparsed."""
MAX_QUERY_VALUE_CHARS: Final = 1000
"""Longest query value (or area in a path), in characters; longer is refused (400)."""
WINDOWS: Final[Mapping[str, int]] = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}
"""The overview's windows (days back from now); 90 days unless asked."""
DEFAULT_WINDOW: Final = "90d"
CHART_BUCKETS: Final[Mapping[str, tuple[int, int]]] = {"week": (7, 52), "month": (30, 12)}
"""The area chart's buckets: days in one, and how many (about the last 12 months)."""

SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

_HERE: Final = Path(__file__).parent
_POLL_S: Final = 1.0
_SIGN_IN_NONCE_S: Final = 3600
_REFUSAL_DELAY_S: Final = 0.5
_LENGTH_DIGITS: Final = 18
_OWN_SITE: Final = frozenset({"", "same-origin", "none"})
"""``Sec-Fetch-Site`` values of the dashboard's own pages, typed addresses and bookmarks,
and of clients that are not browsers (they send none)."""
_ANY: Final = FeedQuery()
_FEED_PARAMS: Final = ("area", "region", "theme", "source", "severity")
_PUBLISHERS: Final[Mapping[str, str]] = {
    "ofsted": "Ofsted",
    "cqc": "CQC",
    "hmicfrs": "HMICFRS",
    "hmi_probation": "HMI Probation",
    "hmi_prisons": "HMI Prisons",
    "liaison": "Liaison",
}
_JTAI_LABELS: Final[Mapping[str, str]] = {
    "": "None",
    "considered": "Considered",
    "selected": "Selected",
}
_NOT_AUDITED: Final = (
    "This view could not be recorded in the audit log, so nothing was shown. Try again"
    " shortly; if it persists, tell an operator."
)
_BAD_CREDENTIAL: Final = (
    "Sign-in failed: the credential was not accepted. Check it, or ask an operator for a"
    " new one (liaison analysts add)."
)
_EXPIRED_FORM: Final = (
    "This form has expired or did not come from this dashboard. Reload the page and try again."
)
_ANOTHER_SITE: Final = (
    "Another site's page asked for this, so nothing was shown. Open the dashboard from its own"
    " address."
)
_BAD_CURSOR: Final = (
    "this is not a place in the feed this session was given (after, Last-Event-ID):"
    " reload the feed page"
)

_log = structlog.get_logger("liaison.dashboard")


# -- presentation helpers (pure) ---------------------------------------------------------


def label(value: object) -> str:
    """A wire value as words: ``area_for_improvement`` -> ``Area for improvement``."""
    text = str(getattr(value, "value", value) or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def publisher(source: str) -> str:
    """An inspectorate's wire value as its name."""
    return _PUBLISHERS.get(source, label(source))


def programme(value: str | None) -> str:
    """A programme's wire value as it is written: ``ncpi`` -> ``NCPI``,
    ``focused_visit`` -> ``Focused visit``."""
    if not value:
        return ""
    return value.upper() if "_" not in value else label(value)


def when(moment: dt.datetime | None) -> str:
    """A time as analysts read it (UTC, to the minute)."""
    if moment is None:
        return ""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(moment: dt.datetime) -> str:
    """A time for ``<time datetime>``."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _what(item: Item) -> str:
    if item.kind == "concern" and item.finding:
        return label(item.finding)
    return label(item.kind) + (f" ({label(item.status).lower()})" if item.status else "")


def row(entry: Entry) -> dict[str, Any]:
    """One feed row (the page's ``<tr>`` and the stream's JSON carry the same fields)."""
    item = entry.item
    return {
        "id": str(item.id),
        "time": when(item.occurred_at),
        "iso": iso(item.occurred_at),
        "area": item.area,
        "area_name": item.area_name,
        "region": item.region,
        "publisher": publisher(item.source),
        "finding": _what(item),
        "immediate_risk": item.immediate_risk,
        "theme": label(item.theme),
        "severity": "" if item.severity is None else str(item.severity),
        "agencies": ", ".join(label(a) for a in item.agencies),
        "summary": trim(item.summary),
    }


def _tile_row(totals: AreaTotals) -> dict[str, Any]:
    return {
        "code": totals.code,
        "name": totals.name,
        "region": totals.region,
        "total": totals.total,
        "severe": totals.severe,
        "gravest": totals.max_severity,
        "gravest_label": str(totals.max_severity) if totals.max_severity else "None",
        "jtai": totals.jtai,
        "jtai_label": _JTAI_LABELS[totals.jtai],
    }


def _sse(event: str, data: object, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    return ("\n".join(lines) + "\n\n").encode()


_KEEPALIVE: Final = b": keepalive\n\n"
_RETRY: Final = b"retry: 5000\n\n"


# -- the request's reader ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reader:
    """The analyst whose session stands for this request."""

    analyst: Analyst
    session: Session
    csrf: str

    @property
    def name(self) -> str:
        return self.analyst.name

    @property
    def purpose(self) -> str:
        return self.session.purpose


class _AnsweredError(LiaisonError):
    """The request ends here with ``response`` (a redirect, an error page...)."""

    def __init__(self, response: Response) -> None:
        super().__init__("answered")
        self.response = response


class _SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every HTTP response (pure ASGI: streams untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, sending)


def _query_problem(raw: bytes) -> str | None:
    """Why a query string (as sent) is too much to read, or None when it is not."""
    if len(raw) > MAX_QUERY_BYTES:
        return f"the query string is too long (at most {MAX_QUERY_BYTES} bytes)"
    pieces = [piece for piece in raw.split(b"&") if piece]
    if len(pieces) > MAX_QUERY_FIELDS:
        return f"the query string has too many parameters (at most {MAX_QUERY_FIELDS})"
    for piece in pieces:
        # Percent-escapes make the text shorter: only a long piece needs decoding.
        if len(piece) > MAX_QUERY_VALUE_CHARS and any(
            len(unquote_plus(part.decode("latin-1"), errors="replace")) > MAX_QUERY_VALUE_CHARS
            for part in piece.split(b"=", 1)
        ):
            return f"a query value is too long (at most {MAX_QUERY_VALUE_CHARS} characters)"
    return None


class _QueryLimits:
    """Refuses (400) a query string ``_query_problem`` finds too much, before any
    handler parses or splits it (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = (
            _query_problem(scope.get("query_string", b"")) if scope["type"] == "http" else None
        )
        if problem is not None:
            await PlainTextResponse(problem, status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _digits(text: str) -> bool:
    """Whether ``text`` is a plain number (ASCII digits, at most 18 of them)."""
    return 0 < len(text) <= _LENGTH_DIGITS and text.isascii() and text.isdigit()


def _from_here(request: Request) -> bool:
    """Whether a POST comes from the dashboard's own pages (``same_origin``)."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    return same_origin(request.headers.get("origin"), own, request.headers.get("sec-fetch-site"))


def _feed_query(params: QueryParams, today: dt.date) -> FeedQuery:
    """The feed's filters from a query string; ``SchemaError`` names a bad value."""
    area = params.get("area", "").strip()
    known = [a.name for a in local_authorities().values()]

    def one(name: str) -> list[str]:
        value = params.get(name, "").strip()
        return [value] if value else []

    return build_query(
        today=today,
        areas=split_values([area], known) if area else [],
        region_names=one("region"),
        themes=one("theme"),
        sources=one("source"),
        severity=params.get("severity", "").strip() or None,
    )


def _overview_query(params: QueryParams, today: dt.date) -> tuple[str, FeedQuery]:
    window = params.get("window", "").strip() or DEFAULT_WINDOW
    if window not in WINDOWS:
        raise SchemaError(f"the window must be one of {', '.join(WINDOWS)}")
    theme = params.get("theme", "").strip()
    return window, build_query(today=today, themes=[theme] if theme else [])


def _feed_values(params: QueryParams) -> dict[str, str]:
    return {name: params.get(name, "").strip()[:200] for name in _FEED_PARAMS}


def _link_query(values: Mapping[str, str], **more: str | int) -> str:
    return urlencode({**{k: v for k, v in values.items() if v}, **more})


async def _form(request: Request) -> dict[str, str]:
    """A small url-encoded form body (413 when larger, 415 when not url-encoded)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise _AnsweredError(PlainTextResponse("forms are url-encoded", status_code=415))
    length = request.headers.get("content-length")
    if length is not None and not _digits(length.strip()):
        raise _AnsweredError(PlainTextResponse("the form's length is not a number", 400))
    if length is not None and int(length) > MAX_FORM_BYTES:
        raise _AnsweredError(PlainTextResponse("the form is too large", status_code=413))
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise _AnsweredError(PlainTextResponse("the form is too large", status_code=413))
        parts.append(chunk)
    text = b"".join(parts).decode("utf-8", "replace")
    if text.count("&") >= MAX_FORM_FIELDS:  # as parse_qsl counts them
        raise _AnsweredError(PlainTextResponse("the form has too many fields", status_code=400))
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise _AnsweredError(PlainTextResponse("the form cannot be read", 400)) from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


# -- the app -------------------------------------------------------------------------------


def create_dashboard(  # noqa: PLR0915 - one closure per route keeps the wiring readable
    *,
    hub: FeedHub,
    audit: AuditWriter,
    registry: Callable[[], Registry],
    clock: Callable[[], dt.datetime],
    session_minutes: int = 480,
    secret: bytes | None = None,
    stop: asyncio.Event | None = None,
    keepalive_s: float = KEEPALIVE_S,
    poll_s: float = _POLL_S,
    stream_limit_s: float | None = None,
    refusal_delay_s: float = _REFUSAL_DELAY_S,
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The dashboard's ASGI app on a verified log (``hub``), an audit log, the analysts'
    registry (read on every request) and a clock.

    ``secret`` signs sessions, CSRF tokens and feed cursors (a fresh one when None: a
    restart signs everyone out); ``stop`` ends every stream when set (the service's stop);
    a stream ends after ``stream_limit_s`` seconds when given (the browser reconnects on
    its own); ``allowed_hosts`` are the ``Host`` names answered (any when None).
    """
    signer = SessionSigner(secret if secret is not None else new_secret())
    shown = ShownLog(audit, clock)
    ended: dict[str, dt.datetime] = {}
    """Signed-out session ids -> when they would have expired (forgotten after that)."""
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.globals.update(
        label=label, publisher=publisher, programme=programme, when=when, iso=iso
    )

    def page(
        template: str,
        reader: _Reader | None,
        status: int = 200,
        **context: Any,  # noqa: ANN401 - template values of any kind
    ) -> HTMLResponse:
        context.setdefault("active", "")
        html = templates.get_template(template).render(reader=reader, **context)
        return HTMLResponse(html, status_code=status)

    def error_page(reader: _Reader | None, status: int, message: str, title: str) -> HTMLResponse:
        return page("error.html", reader, status, title=title, message=message)

    def closing() -> bool:
        return stop is not None and stop.is_set()

    # -- who is asking ---------------------------------------------------------------------

    def lookup(session: Session) -> Analyst | None:
        try:
            return registry().get(session.analyst)
        except LiaisonError as exc:
            _log.error("registry_unreadable", error=str(exc))
            raise _AnsweredError(
                error_page(None, 503, "The analysts' registry cannot be read now.", "Unavailable")
            ) from None

    def who(request: Request) -> _Reader | None:
        now = clock()
        session = signer.open(request.cookies.get(COOKIE), now)
        if session is None or session.session_id in ended:
            return None
        analyst = lookup(session)
        if analyst is None or not session.stands(analyst, now):
            return None
        return _Reader(analyst, session, signer.csrf_token(session.session_id))

    def still(reader: _Reader) -> bool:
        """Whether ``reader``'s session still stands (streams ask before each message)."""
        if reader.session.session_id in ended:
            return False
        try:
            analyst = registry().get(reader.name)
        except LiaisonError:
            return False
        return analyst is not None and reader.session.stands(analyst, clock())

    def end(session: Session) -> None:
        """Signed out: ``session`` is refused from now on, wherever its cookie is."""
        now = clock()
        for gone in [s for s, until in ended.items() if until <= now]:
            del ended[gone]
        ended[session.session_id] = session.expires_at

    def own_site(request: Request, *, html: bool) -> None:
        """Refuse (403) a request another site's page made (``Sec-Fetch-Site``)."""
        site = request.headers.get("sec-fetch-site", "").strip().lower()
        if site in _OWN_SITE:
            return
        _log.warning(
            "request_refused", reason="another_site", site=site[:40], path=request.url.path[:200]
        )
        if html:
            raise _AnsweredError(error_page(None, 403, _ANOTHER_SITE, "Refused"))
        raise _AnsweredError(PlainTextResponse(_ANOTHER_SITE, status_code=403))

    def signed_out(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        location = "/sign-in" if target == "/" else f"/sign-in?next={quote(target, safe='')}"
        response = RedirectResponse(location, status_code=303)
        if COOKIE in request.cookies:
            response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    def need_page(request: Request) -> _Reader:
        own_site(request, html=True)
        reader = who(request)
        if reader is None:
            raise _AnsweredError(signed_out(request))
        return reader

    def need_api(request: Request) -> _Reader:
        own_site(request, html=False)
        reader = who(request)
        if reader is None:
            raise _AnsweredError(
                PlainTextResponse("sign in to the dashboard first (/sign-in)", status_code=401)
            )
        return reader

    async def refuse(
        reader: _Reader,
        view: str,
        filters: Mapping[str, str],
        refusal: Refusal,
        *,
        html: bool = True,
    ) -> NoReturn:
        await shown.refused(reader.name, reader.purpose, view, filters, refusal)
        if html:
            raise _AnsweredError(error_page(reader, 403, refusal.detail, "Outside your scope"))
        raise _AnsweredError(PlainTextResponse(refusal.detail, status_code=403))

    def run(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except _AnsweredError as answered:
                return answered.response
            except AuditUnavailableError:
                return error_page(None, 503, _NOT_AUDITED, "Not shown")

        return endpoint

    # -- signing in and out ----------------------------------------------------------------

    def cookie_flags(request: Request) -> dict[str, Any]:
        return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https"}

    def sign_in_form(
        request: Request, nonce: str, status: int = 200, error: str | None = None, **values: str
    ) -> HTMLResponse:
        response = page(
            "sign_in.html",
            None,
            status,
            csrf=signer.csrf_token(nonce),
            error=error,
            next=safe_next(values.get("next") or request.query_params.get("next")),
            purpose=values.get("purpose", ""),
        )
        if request.cookies.get(SIGN_IN_COOKIE) != nonce:
            response.set_cookie(
                SIGN_IN_COOKIE, nonce, max_age=_SIGN_IN_NONCE_S, path="/sign-in",
                **cookie_flags(request),
            )  # fmt: skip
        return response

    async def sign_in_page(request: Request) -> Response:
        if who(request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        nonce = request.cookies.get(SIGN_IN_COOKIE) or ""
        if not 16 <= len(nonce) <= 64:  # noqa: PLR2004 - a token_urlsafe(16) is 22 characters
            nonce = new_session_id()
        return sign_in_form(request, nonce)

    async def sign_in(request: Request) -> Response:
        if not _from_here(request):
            _log.warning("sign_in_refused", reason="cross_origin")
            return error_page(None, 403, _EXPIRED_FORM, "Refused")
        fields = await _form(request)
        nonce = request.cookies.get(SIGN_IN_COOKIE)
        if not signer.csrf_ok(nonce, fields.get("csrf")):
            _log.warning("sign_in_refused", reason="csrf")
            return error_page(None, 403, _EXPIRED_FORM, "Refused")
        assert nonce is not None  # noqa: S101 - csrf_ok refuses a missing nonce
        target = safe_next(fields.get("next"))
        try:
            purpose = check_purpose(fields.get("purpose", ""))
        except SchemaError as exc:
            return sign_in_form(request, nonce, 422, f"Purpose: {exc}", next=target)
        try:
            analyst = registry().authenticate(fields.get("credential", "").strip())
        except LiaisonError as exc:
            _log.error("registry_unreadable", error=str(exc))
            return error_page(
                None, 503, "The analysts' registry cannot be read now.", "Unavailable"
            )
        if analyst is None:
            _log.warning("sign_in_refused", reason="credential")  # never the credential
            await asyncio.sleep(refusal_delay_s)
            return sign_in_form(request, nonce, 401, _BAD_CREDENTIAL, next=target, purpose=purpose)
        session = start_session(analyst, purpose, clock(), session_minutes, new_session_id())
        _log.info("signed_in", analyst=analyst.name)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE, signer.seal(session), max_age=session_minutes * 60, path="/",
            **cookie_flags(request),
        )  # fmt: skip
        response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in", httponly=True, samesite="strict")
        return response

    async def sign_out(request: Request) -> Response:
        if not _from_here(request):
            return error_page(None, 403, _EXPIRED_FORM, "Refused")
        fields = await _form(request)
        session = signer.open(request.cookies.get(COOKIE), clock())
        if session is not None and not signer.csrf_ok(session.session_id, fields.get("csrf")):
            return error_page(None, 403, _EXPIRED_FORM, "Refused")
        if session is not None:
            end(session)
            _log.info("signed_out", analyst=session.analyst)
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    # -- the overview ----------------------------------------------------------------------

    def totals_of(
        view: LogView, reader: _Reader, query: FeedQuery, days: int
    ) -> tuple[tuple[AreaTotals, ...], list[uuid.UUID]]:
        """The overview's totals and the ids of every event counted or marking an area."""
        now = clock()
        scope = reader.analyst.scope

        def admits(area: str, theme: Theme) -> bool:
            # A mark only from a consideration the analyst may see, on the theme asked.
            return (
                theme in scope.themes
                and area_in_scope(scope, area)
                and (not query.themes or theme in query.themes)
            )

        items = [i for i in view.items if in_scope(scope, query, i)]
        considered, selected, marking = view.jtai_marks(admits)
        totals = overview(
            items,
            scoped_areas(scope, now.date()),
            now - dt.timedelta(days=days),
            now,
            themes=query.themes,
            considered=considered,
            selected=selected,
        )
        return totals, [*(i for t in totals for i in t.event_ids), *marking]

    async def checked_overview(
        request: Request, reader: _Reader, *, html: bool
    ) -> tuple[str, FeedQuery, dict[str, str]]:
        try:
            window, query = _overview_query(request.query_params, clock().date())
        except SchemaError as exc:
            if html:
                bad = error_page(reader, 400, str(exc), "Not a valid filter")
                raise _AnsweredError(bad) from None
            raise _AnsweredError(PlainTextResponse(str(exc), status_code=400)) from None
        filters = {"window": window, **query.as_strings()}
        refused = query_refusal(reader.analyst.scope, query)
        if refused is not None:
            await refuse(reader, "dashboard.overview", filters, refused, html=html)
        return window, query, filters

    async def overview_page(request: Request) -> Response:
        reader = need_page(request)
        window, query, filters = await checked_overview(request, reader, html=True)
        totals, counted = totals_of(hub.view(), reader, query, WINDOWS[window])
        await shown.shown(reader.name, reader.purpose, "dashboard.overview", filters, counted)
        words = f"the last {WINDOWS[window]} days"
        theme = next(iter(query.themes), None)
        title = f"Concerns in {words}" + (f": {label(theme)}" if theme else "")
        return page(
            "overview.html",
            reader,
            active="overview",
            window=window,
            window_label=words,
            legend=svg.tile_legend(),
            windows=list(WINDOWS),
            theme=theme.value if theme else "",
            themes=list(reader.analyst.scope.themes),
            title=title,
            tile_map=svg.tile_map(totals, title=title, window_label=words),
            rows=[_tile_row(t) for t in totals],
            total=sum(t.total for t in totals),
            stream="/events/overview?" + _link_query(
                {"window": window, "theme": theme.value if theme else ""}
            ),
        )  # fmt: skip

    async def overview_stream(request: Request) -> Response:
        reader = need_api(request)
        window, query, filters = await checked_overview(request, reader, html=False)
        days = WINDOWS[window]
        live_filters = {**filters, "live": "totals"}
        view = hub.view()
        totals, counted = totals_of(view, reader, query, days)
        # The connection is a view of its own: recorded before the response starts.
        await shown.shown(reader.name, reader.purpose, "dashboard.overview", live_filters, counted)
        audited = set(counted)
        sent = [[t.as_json() for t in totals]]

        async def step(view: LogView) -> bytes | None:
            totals, counted = totals_of(view, reader, query, days)
            payload = [t.as_json() for t in totals]
            if payload == sent[0]:
                return None
            new = [i for i in counted if i not in audited]
            if new:
                await shown.shown(
                    reader.name, reader.purpose, "dashboard.overview", live_filters, new
                )
                audited.update(new)
            sent[0] = payload
            return _sse("totals", payload)

        return live(request, reader, view.version, _sse("totals", sent[0]), step)

    def live(
        request: Request,
        reader: _Reader,
        version: int,
        opening: bytes | None,
        step: Callable[[LogView], Awaitable[bytes | None]],
    ) -> StreamingResponse:
        """A stream: ``opening`` (already audited), then whatever ``step`` makes of each
        newer view (``step`` records what it shows before returning it), keep-alives when
        quiet; it ends when the client goes, the service stops, or the session ends."""

        async def stream() -> AsyncIterator[bytes]:
            yield _RETRY
            if opening is not None:
                yield opening
            seen = version
            started = quiet = time.monotonic()
            while not closing() and not await request.is_disconnected():
                if stream_limit_s is not None and time.monotonic() - started > stream_limit_s:
                    return
                view = hub.view()
                due = time.monotonic() - quiet >= keepalive_s
                if view.version != seen or due:
                    if not still(reader):
                        yield _sse("signed-out", {"error": "Your session has ended"})
                        return
                    seen = view.version
                    try:
                        message = await step(view)
                    except AuditUnavailableError:
                        yield _sse("stopped", {"error": _NOT_AUDITED})
                        return
                    if message is not None or due:
                        quiet = time.monotonic()
                        yield message if message is not None else _KEEPALIVE
                await hub.wait(seen, within=poll_s)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )

    # -- the live feed ---------------------------------------------------------------------

    async def checked_feed(
        request: Request, reader: _Reader, view_name: str, *, html: bool
    ) -> tuple[FeedQuery | None, str | None]:
        """The feed's query, or (HTML only) the error line to show on the page."""
        try:
            query = _feed_query(request.query_params, clock().date())
        except SchemaError as exc:
            if html:
                return None, str(exc)
            raise _AnsweredError(PlainTextResponse(str(exc), status_code=400)) from None
        refused = query_refusal(reader.analyst.scope, query)
        if refused is not None:
            await refuse(reader, view_name, query.as_strings(), refused, html=html)
        return query, None

    def feed_rows(view: LogView, reader: _Reader, query: FeedQuery, after: int = 0) -> list[Entry]:
        chosen = [e for e in view.after(after) if in_scope(reader.analyst.scope, query, e.item)]
        return list(reversed(chosen))[:FEED_ROWS]

    def feed_context(reader: _Reader, values: Mapping[str, str]) -> dict[str, Any]:
        scope = reader.analyst.scope
        names = sorted({local_authorities()[c].name for c in scoped_areas(scope, clock().date())})
        return {
            "values": values,
            "regions": list(scope.regions),
            "themes": list(scope.themes),
            "sources": [i.value for i in Inspectorate],
            "area_names": names,
        }

    def place(reader: _Reader, seq: int) -> str:
        """The feed's place ``seq`` as this session's opaque cursor."""
        return signer.cursor(reader.session.session_id, seq)

    def resumed(request: Request, reader: _Reader) -> int:
        """Where a stream starts: after the later of the page's cursor (``after=``) and the
        browser's ``Last-Event-ID`` (0 when neither is given); 400 for a cursor this
        session was not given."""
        after = 0
        for given in (request.query_params.get("after"), request.headers.get("last-event-id")):
            if not given:
                continue
            seq = signer.cursor_seq(reader.session.session_id, given.strip())
            if seq is None:
                raise _AnsweredError(PlainTextResponse(_BAD_CURSOR, status_code=400))
            after = max(after, seq)
        return after

    async def feed_page(request: Request) -> Response:
        reader = need_page(request)
        values = _feed_values(request.query_params)
        query, problem = await checked_feed(request, reader, "dashboard.feed", html=True)
        if query is None:
            return page(
                "feed.html", reader, 400, active="feed", error=problem, rows=[], after="",
                stream="", export="", **feed_context(reader, values),
            )  # fmt: skip
        view = hub.view()
        chosen = feed_rows(view, reader, query)
        await shown.shown(
            reader.name, reader.purpose, "dashboard.feed", query.as_strings(),
            [e.item.id for e in chosen],
        )  # fmt: skip
        after = place(reader, view.last_seq)
        return page(
            "feed.html",
            reader,
            active="feed",
            error=None,
            rows=[row(e) for e in chosen],
            after=after,
            stream="/events/feed?" + _link_query(values, after=after),
            export="/export.jsonl?" + _link_query(values),
            **feed_context(reader, values),
        )

    async def feed_stream(request: Request) -> Response:
        reader = need_api(request)
        query, _ = await checked_feed(request, reader, "dashboard.feed", html=False)
        assert query is not None  # noqa: S101 - a bad query was answered 400
        after = resumed(request, reader)
        filters = {**query.as_strings(), "live": "items"}
        view = hub.view()
        fresh = feed_rows(view, reader, query, after)
        # The connection is a view of its own: recorded before the response starts.
        await shown.shown(
            reader.name, reader.purpose, "dashboard.feed", filters, [e.item.id for e in fresh]
        )
        cursor = [max(after, view.last_seq)]
        opening = (
            _sse("items", [row(e) for e in fresh], place(reader, cursor[0])) if fresh else None
        )

        async def step(view: LogView) -> bytes | None:
            fresh = feed_rows(view, reader, query, cursor[0])
            cursor[0] = max(cursor[0], view.last_seq)
            if not fresh:
                return None
            await shown.shown(
                reader.name, reader.purpose, "dashboard.feed", filters, [e.item.id for e in fresh]
            )
            return _sse("items", [row(e) for e in fresh], place(reader, cursor[0]))

        return live(request, reader, view.version, opening, step)

    async def export(request: Request) -> Response:
        reader = need_api(request)
        query, _ = await checked_feed(request, reader, "dashboard.export", html=False)
        assert query is not None  # noqa: S101 - a bad query was answered 400
        view = hub.view()
        chosen = [
            e for e in reversed(view.entries) if in_scope(reader.analyst.scope, query, e.item)
        ]
        await shown.shown(
            reader.name, reader.purpose, "dashboard.export", query.as_strings(),
            [e.item.id for e in chosen],
        )  # fmt: skip
        body = "".join(
            json.dumps(e.item.as_json(), separators=(",", ":"), ensure_ascii=False) + "\n"
            for e in chosen
        )
        stamp = clock().astimezone(dt.UTC).strftime("%Y%m%dT%H%MZ")
        return Response(
            body.encode(),
            media_type="application/jsonl",
            headers={"Content-Disposition": f'attachment; filename="liaison-feed-{stamp}.jsonl"'},
        )

    # -- an area ---------------------------------------------------------------------------

    async def area_page(request: Request) -> Response:
        reader = need_page(request)
        asked = request.path_params["area"]
        if len(asked) > MAX_QUERY_VALUE_CHARS:
            return error_page(reader, 400, "That is too long to be an area.", "Not an area")
        today = clock().date()
        try:
            query = build_query(today=today, areas=[asked])
        except SchemaError as exc:
            return error_page(reader, 400, str(exc), "Not an area")
        if len(query.areas) != 1:
            codes = ", ".join(sorted(query.areas))
            return error_page(reader, 400, f"{asked[:60]} names several areas: {codes}", "Which?")
        (code,) = query.areas
        if asked != code:
            suffix = f"?{request.url.query}" if request.url.query else ""
            return RedirectResponse(f"/area/{code}{suffix}", status_code=303)
        by = request.query_params.get("by", "week")
        by = by if by in CHART_BUCKETS else "week"
        filters = {**query.as_strings(), "chart": by}
        refused = query_refusal(reader.analyst.scope, query)
        if refused is not None:
            await refuse(reader, "dashboard.area", filters, refused)
        items = [i for i in hub.view().items if in_scope(reader.analyst.scope, query, i)]
        everything = area_timeline(items, code)
        findings = [i for i in everything if i.kind in {"concern", "exceptional_practice"}]
        outcomes = [i for i in everything if i.kind == "outcome"]
        jtai = [i for i in everything if i.kind in {"consideration", "decision"}]
        recs = recommendations(items, code)
        days, buckets = CHART_BUCKETS[by]
        end = today + dt.timedelta(days=1)
        series = counts_over_time(
            items, end - dt.timedelta(days=days * buckets), end, bucket_days=days
        )
        ids = [i.id for i in (*findings, *outcomes, *jtai)]
        ids += [i.id for rec, reviews in recs for i in (rec, *reviews)]
        await shown.shown(reader.name, reader.purpose, "dashboard.area", filters, ids)
        authority = local_authorities()[code]
        chart_title = f"Concerns per theme in {authority.name}, last 12 months, by {by}"
        return page(
            "area.html",
            reader,
            code=code,
            name=authority.name,
            region=authority.region.name,
            by=by,
            chart=svg.theme_chart(series, title=chart_title),
            chart_table=svg.chart_table(series),
            chart_total=series.total,
            findings=findings,
            outcomes=outcomes,
            jtai=jtai,
            recommendations=recs,
        )

    # -- one event -------------------------------------------------------------------------

    async def event_page(request: Request) -> Response:
        reader = need_page(request)
        try:
            event_id = uuid.UUID(request.path_params["event_id"])
        except ValueError:
            return error_page(reader, 404, "There is no such event.", "Not found")
        found = hub.view().find(event_id)
        if not found:
            return error_page(reader, 404, "No verified event has this id.", "Not found")
        mine = [e for e in found if in_scope(reader.analyst.scope, _ANY, e.item)]
        filters = {"event": str(event_id)}
        if not mine:
            detail = f"this event is outside your scope ({describe(reader.analyst.scope)})"
            await refuse(reader, "dashboard.event", filters, Refusal(OUT_OF_SCOPE, detail[:500]))
        await shown.shown(reader.name, reader.purpose, "dashboard.event", filters, [event_id])
        first = mine[0]  # two publishers may use one id: each one's own page is the same URL
        return page(
            "event.html",
            reader,
            item=first.item,
            entry=first,
            envelope=first.record.value.decode("utf-8", "replace"),
            row=row(first),
            others=len(mine) - 1,
        )

    async def healthz(request: Request) -> Response:
        del request
        return JSONResponse({"status": "ok"})

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        del request
        return error_page(None, status, "There is nothing here.", "Not found")

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/sign-in", run(sign_in_page), methods=["GET"]),
        Route("/sign-in", run(sign_in), methods=["POST"]),
        Route("/sign-out", run(sign_out), methods=["POST"]),
        Route("/", run(overview_page), methods=["GET"]),
        Route("/events/overview", run(overview_stream), methods=["GET"]),
        Route("/feed", run(feed_page), methods=["GET"]),
        Route("/events/feed", run(feed_stream), methods=["GET"]),
        Route("/export.jsonl", run(export), methods=["GET"]),
        Route("/area/{area}", run(area_page), methods=["GET"]),
        Route("/event/{event_id}", run(event_page), methods=["GET"]),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    hosts = list(allowed_hosts) if allowed_hosts is not None else ["*"]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(_SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False),
            Middleware(_QueryLimits),
        ],
        exception_handlers={404: not_found},
    )
