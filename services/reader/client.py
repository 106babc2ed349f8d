"""The reader service's client: what ``liaison feed`` sends, and what it gets back.

Every failure is one ``ReaderError`` whose message a person can act on: the service
cannot be reached (``retriable``), the credential was refused (401), the read is outside
the analyst's scope (403, the service's sentence naming the rule), the query is not
valid (422, the service's sentence naming the nearest valid values), or the service
answered something else. A live feed (``stream_feed``) that the service ends with an
``error`` event raises the same way, with the service's sentence. A message from the
service is shown as plain text, on one line, cut to ``_SHOWN_CHARS``: it is the
service's own wording, never the token.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any, Final

import httpx2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import LiaisonError
from services.reader.analysts import MAX_TOKEN_CHARS, TOKEN_PREFIX

__all__ = ["FeedAnswer", "ReaderError", "check_token", "read_feed", "stream_feed"]

READ_PATH: Final = "/v1/feed/read"
STREAM_PATH: Final = "/v1/feed/stream"
_TIMEOUT: Final = httpx2.Timeout(120.0, connect=5.0)
_STREAM_TIMEOUT: Final = httpx2.Timeout(60.0, connect=5.0)
"""A live feed sends a comment at least every 15 s: a minute of silence is a dead one."""
_MAX_LINE: Final = 1024 * 1024
_SHOWN_CHARS: Final = 600
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]+")


class ReaderError(LiaisonError):
    """A read through the reader service failed; ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retriable = status is None or status >= 500  # noqa: PLR2004


class FeedAnswer(BaseModel):
    """What the service returned: the verified events in scope, oldest first."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    analyst: str
    returned: int = Field(ge=0)
    truncated: bool = False
    next_since: str | None = None
    events: list[dict[str, Any]]
    envelopes: list[str] | None = None


def check_token(token: str) -> str:
    """The credential, trimmed, if it looks like one Liaison issues; ``ReaderError`` if not
    (the message never shows it)."""
    text = token.strip()
    if (
        not text.startswith(TOKEN_PREFIX)
        or len(text) > MAX_TOKEN_CHARS
        or not _TOKEN.fullmatch(text[len(TOKEN_PREFIX) :])
    ):
        msg = f"the analyst credential is not one Liaison issues (it starts {TOKEN_PREFIX})"
        raise ReaderError(msg)
    return text


def _plain(text: str) -> str:
    cleaned = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= _SHOWN_CHARS else cleaned[:_SHOWN_CHARS] + "..."


def _said(response: httpx2.Response) -> str:
    try:
        said = response.json().get("error")
    except (ValueError, AttributeError):
        said = None
    return _plain(said) if isinstance(said, str) and said.strip() else ""


def _unreachable(url: str, exc: httpx2.TransportError) -> ReaderError:
    msg = f"the reader service at {url} cannot be reached ({type(exc).__name__}):"
    return ReaderError(f"{msg} is `liaison serve reader` running there?")


def _refusal(response: httpx2.Response, said: str) -> ReaderError:
    """The ``ReaderError`` for an answer that is not 200."""
    status = response.status_code
    if status == httpx2.codes.UNAUTHORIZED:
        return ReaderError(
            said or "the reader service refused the credential (unknown or revoked)", status
        )
    if status == httpx2.codes.FORBIDDEN:
        return ReaderError(f"refused: {said or 'outside your scope'}", status)
    if status == httpx2.codes.UNPROCESSABLE_CONTENT and said:
        return ReaderError(said, status)
    return ReaderError(
        f"the reader service answered HTTP {status}" + (f": {said}" if said else ""), status
    )


def read_feed(
    url: str, token: str, request: dict[str, Any], *, client: httpx2.Client | None = None
) -> FeedAnswer:
    """``POST`` a feed read to the service at ``url`` as the analyst whose ``token`` it is."""
    owned = client is None
    http = client if client is not None else httpx2.Client(base_url=url, timeout=_TIMEOUT)
    try:
        response = http.post(
            READ_PATH, json=request, headers={"Authorization": f"Bearer {check_token(token)}"}
        )
    except httpx2.TransportError as exc:
        raise _unreachable(url, exc) from None
    finally:
        if owned:
            http.close()
    status = response.status_code
    if status != httpx2.codes.OK:
        raise _refusal(response, _said(response))
    try:
        return FeedAnswer.model_validate_json(response.content)
    except ValidationError:
        raise ReaderError("the reader service's answer is not a feed", status) from None


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Lines of an event stream: LF, CRLF or CR ends one, nothing else (U+2028 in a value
    is text, not a line break, unlike ``str.splitlines``)."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while True:
            lf, cr = buffer.find(b"\n"), buffer.find(b"\r")
            if cr >= 0 and (lf < 0 or cr < lf):
                if cr == len(buffer) - 1:
                    break  # perhaps the first half of a CRLF
                line = buffer[:cr]
                buffer = buffer[cr + 2 :] if buffer[cr + 1 : cr + 2] == b"\n" else buffer[cr + 1 :]
            elif lf >= 0:
                line, buffer = buffer[:lf], buffer[lf + 1 :]
            else:
                break
            yield line.decode("utf-8", "replace")
        if len(buffer) > _MAX_LINE:
            raise ReaderError("the reader service sent a line over 1 MiB: not a live feed")
    if buffer.rstrip(b"\r"):
        yield buffer.rstrip(b"\r").decode("utf-8", "replace")


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(event, data)`` for each event of the stream; comments and ids are skipped."""
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                try:
                    parsed = json.loads("\n".join(data))
                except ValueError:
                    raise ReaderError("the reader service sent an event that is not JSON") from None
                if not isinstance(parsed, dict):
                    raise ReaderError("the reader service sent an event that is not an object")
                yield event, parsed
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)


_ENDED_STATUS: Final = {"unauthenticated": 401, "out_of_scope": 403}


def _ended(data: Mapping[str, Any]) -> ReaderError:
    """The ``ReaderError`` for an ``error`` event (the service ended the stream)."""
    said, reason = data.get("error"), data.get("reason")
    text = _plain(said) if isinstance(said, str) and said.strip() else ""
    status = _ENDED_STATUS.get(reason, 503) if isinstance(reason, str) else 503
    if status == httpx2.codes.FORBIDDEN:
        text = f"refused: {text or 'outside your scope'}"
    return ReaderError(text or "the reader service ended the live feed", status)


def stream_feed(
    url: str,
    token: str,
    params: Mapping[str, str | Sequence[str]],
    *,
    client: httpx2.Client | None = None,
) -> Generator[tuple[str, dict[str, Any]], None, None]:
    """The live feed of the service at ``url`` (``GET /v1/feed/stream`` with ``params``)
    as the analyst whose ``token`` it is: ``("item", row)`` for each event shown, then
    ``("caught_up", {"returned", "refused"})`` once the backfill is sent, then (following)
    each new ``("item", row)``. Ends when the service ends the stream; an ``error`` event,
    a refusal or a lost connection is a ``ReaderError`` with the service's sentence.
    """
    headers = {"Authorization": f"Bearer {check_token(token)}", "Accept": "text/event-stream"}
    owned = client is None
    http = client if client is not None else httpx2.Client(base_url=url, timeout=_STREAM_TIMEOUT)
    query: list[tuple[str, str | int | float | bool | None]] = [
        (name, value)
        for name, values in params.items()
        for value in ([values] if isinstance(values, str) else values)
    ]
    started = False
    try:
        with http.stream("GET", STREAM_PATH, params=query, headers=headers) as response:
            if response.status_code != httpx2.codes.OK:
                response.read()
                raise _refusal(response, _said(response))
            started = True
            for event, data in _events(_lines(response.iter_bytes())):
                if event == "error":
                    raise _ended(data)
                yield event, data
    except httpx2.TransportError as exc:
        if not started:
            raise _unreachable(url, exc) from None
        if isinstance(exc, httpx2.TimeoutException):
            msg = f"the reader service at {url} stopped answering (nothing for a minute)"
        else:
            msg = f"the reader service at {url} closed the live feed ({type(exc).__name__})"
        raise ReaderError(msg) from None
    finally:
        if owned:
            http.close()
