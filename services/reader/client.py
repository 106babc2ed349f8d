"""The reader service's client: what ``liaison feed read`` sends, and what it gets back.

Every failure is one ``ReaderError`` whose message a person can act on: the service
cannot be reached (``retriable``), the credential was refused (401), the read is outside
the analyst's scope (403, the service's sentence naming the rule), or the service
answered something else. A message from the service is shown as plain text, on one line,
cut to ``_SHOWN_CHARS``: it is the service's own wording, never the token.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Final

import httpx2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import LiaisonError
from services.reader.analysts import MAX_TOKEN_CHARS, TOKEN_PREFIX

__all__ = ["FeedAnswer", "ReaderError", "check_token", "read_feed"]

READ_PATH: Final = "/v1/feed/read"
_TIMEOUT: Final = httpx2.Timeout(120.0, connect=5.0)
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
        msg = f"the reader service at {url} cannot be reached ({type(exc).__name__}):"
        raise ReaderError(f"{msg} is `liaison serve reader` running there?") from None
    finally:
        if owned:
            http.close()
    status = response.status_code
    said = _said(response)
    if status == httpx2.codes.UNAUTHORIZED:
        raise ReaderError(
            said or "the reader service refused the credential (unknown or revoked)", status
        )
    if status == httpx2.codes.FORBIDDEN:
        raise ReaderError(f"refused: {said or 'outside your scope'}", status)
    if status != httpx2.codes.OK:
        raise ReaderError(
            f"the reader service answered HTTP {status}" + (f": {said}" if said else ""), status
        )
    try:
        return FeedAnswer.model_validate_json(response.content)
    except ValidationError:
        raise ReaderError("the reader service's answer is not a feed", status) from None
