"""The dashboard's sign-in sessions and CSRF tokens: HMAC-signed, checked on every request.

Pure: no I/O, no clock (time is passed in). A session is a cookie (``liaison_session``)
holding the analyst's name, the SHA-256 of the credential they signed in with, their
stated purpose, when it was issued and when it ends, and a random session id, signed
with HMAC-SHA256 under a secret the process draws at start (``new_secret``: 32 random
bytes, never written anywhere). The token itself is never in the cookie.

What follows from that, on purpose:

- A restart of the dashboard signs everyone out (the new secret verifies no old cookie).
- A cookie proves only what the analyst *was*: the app looks the analyst up in the
  registry on every request and keeps the session only while the entry is active and
  carries the same credential hash (``Session.stands``), so revoking or reissuing a
  credential ends its sessions at the next request.
- The cookie is signed, not encrypted: the analyst can read their own name and purpose
  in it, and nothing else is in it.

CSRF: every form carries ``csrf_token(binding)``, an HMAC of the session id (or, before
sign-in, of a random nonce kept in its own cookie), compared in constant time; a POST
from another origin (``same_origin``: the ``Origin`` and ``Sec-Fetch-Site`` headers) is
refused whatever it carries.

Feed cursors: the live feed's place (``after=``, the stream's ``id:``, ``Last-Event-ID``)
is ``cursor(binding, seq)``, the hub's sequence number sealed with AES-256-GCM under a key
drawn from the secret, with a fresh nonce, bound to the session id. The hub's numbers count
every record read, out of scope and refused ones too, so they are never shown as they are;
a cursor opens (``cursor_seq``) only under the session it was given to, and any change to
it is refused.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.reader.analysts import Analyst

__all__ = [
    "COOKIE",
    "CURSOR_CHARS",
    "MAX_COOKIE_CHARS",
    "SECRET_BYTES",
    "SIGN_IN_COOKIE",
    "Session",
    "SessionSigner",
    "new_secret",
    "new_session_id",
    "safe_next",
    "same_origin",
    "start_session",
]

COOKIE: Final = "liaison_session"
"""The session cookie's name."""
SIGN_IN_COOKIE: Final = "liaison_sign_in"
"""The pre-sign-in nonce's cookie (binds the sign-in form's CSRF token)."""
SECRET_BYTES: Final = 32
MAX_COOKIE_CHARS: Final = 4096
"""A cookie value longer than this is refused unread."""

_SESSION_TAG: Final = b"liaison.dashboard.session.v1\x00"
_CSRF_TAG: Final = b"liaison.dashboard.csrf.v1\x00"
_CURSOR_TAG: Final = b"liaison.dashboard.cursor.v1\x00"
_CURSOR_NONCE: Final = 12
_CURSOR_SEQ: Final = 8
_CURSOR_MAC: Final = 16
CURSOR_CHARS: Final = 4 * (_CURSOR_NONCE + _CURSOR_SEQ + _CURSOR_MAC) // 3
"""A feed cursor's length: 36 bytes as URL-safe base64, no padding (48 characters)."""
_CURSOR_TEXT: Final = re.compile(rf"[A-Za-z0-9_-]{{{CURSOR_CHARS}}}")
_MAX_SEQ: Final = 2**63 - 1


def new_secret() -> bytes:
    """A fresh signing secret for one process (32 random bytes)."""
    return secrets.token_bytes(SECRET_BYTES)


def new_session_id() -> str:
    """A random session id (also a pre-sign-in nonce): 128 bits, URL-safe."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class Session:
    """Who signed in, with which credential (its hash), why, and until when."""

    analyst: str
    credential_sha256: str
    purpose: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    session_id: str

    def live_at(self, now: dt.datetime) -> bool:
        """Whether the session has started and not yet ended at ``now``."""
        return self.issued_at <= now < self.expires_at

    def stands(self, analyst: Analyst | None, now: dt.datetime) -> bool:
        """Whether the session still holds: live, and ``analyst`` (the registry's entry
        of that name, looked up now) active with the same credential."""
        return (
            analyst is not None
            and self.live_at(now)
            and analyst.name == self.analyst
            and analyst.status == "active"
            and hmac.compare_digest(
                analyst.credential_sha256.encode(), self.credential_sha256.encode()
            )
        )


def start_session(
    analyst: Analyst, purpose: str, now: dt.datetime, minutes: int, session_id: str
) -> Session:
    """A session for ``analyst`` from ``now`` for ``minutes``."""
    return Session(
        analyst=analyst.name,
        credential_sha256=analyst.credential_sha256,
        purpose=purpose,
        issued_at=now,
        expires_at=now + dt.timedelta(minutes=minutes),
        session_id=session_id,
    )


class _Claims(BaseModel):
    """The cookie's payload, parsed strictly (short keys keep the cookie small)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    a: str = Field(min_length=1, max_length=200)
    c: str = Field(pattern=r"^[0-9a-f]{64}$")
    p: str = Field(min_length=1, max_length=500)
    i: int = Field(ge=0)
    e: int = Field(ge=0)
    s: str = Field(min_length=16, max_length=64)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Seals and opens session cookies and makes and checks CSRF tokens, under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < SECRET_BYTES:
            msg = f"a session secret needs at least {SECRET_BYTES} bytes"
            raise ValueError(msg)
        self._secret = secret
        self._cursors = AESGCM(self._mac(_CURSOR_TAG, b"key"))

    def _mac(self, tag: bytes, data: bytes) -> bytes:
        return hmac.new(self._secret, tag + data, hashlib.sha256).digest()

    def seal(self, session: Session) -> str:
        """The cookie value: ``<payload>.<mac>``, both unpadded URL-safe base64."""
        claims = _Claims(
            a=session.analyst,
            c=session.credential_sha256,
            p=session.purpose,
            i=int(session.issued_at.timestamp()),
            e=int(session.expires_at.timestamp()),
            s=session.session_id,
        )
        payload = _b64(claims.model_dump_json().encode())
        return f"{payload}.{_b64(self._mac(_SESSION_TAG, payload.encode()))}"

    def open(self, value: str | None, now: dt.datetime) -> Session | None:
        """The session ``value`` seals, if this signer sealed it and it is live at ``now``;
        None for anything else (missing, tampered, another secret's, expired, malformed)."""
        if not value or len(value) > MAX_COOKIE_CHARS or value.count(".") != 1:
            return None
        payload, _, mac = value.partition(".")
        # Verify the exact text, then parse it: the MAC is compared in its one canonical
        # spelling, so no other cookie string opens to the same session.
        expected = _b64(self._mac(_SESSION_TAG, payload.encode("utf-8", "replace")))
        if not hmac.compare_digest(mac.encode("utf-8", "replace"), expected.encode()):
            return None
        try:
            claims = _Claims.model_validate_json(_unb64(payload))
        except (binascii.Error, ValueError, ValidationError):
            return None
        try:
            session = Session(
                analyst=claims.a,
                credential_sha256=claims.c,
                purpose=claims.p,
                issued_at=dt.datetime.fromtimestamp(claims.i, dt.UTC),
                expires_at=dt.datetime.fromtimestamp(claims.e, dt.UTC),
                session_id=claims.s,
            )
        except (OverflowError, OSError, ValueError):
            return None
        return session if session.live_at(now) else None

    def csrf_token(self, binding: str) -> str:
        """The CSRF token of forms bound to ``binding`` (a session id or a nonce)."""
        return _b64(self._mac(_CSRF_TAG, binding.encode()))

    def csrf_ok(self, binding: str | None, token: str | None) -> bool:
        """Whether ``token`` is the CSRF token of ``binding`` (constant time)."""
        if not binding or not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(binding).encode())

    def cursor(self, binding: str, seq: int) -> str:
        """The feed's place ``seq`` as an opaque token for the session ``binding``."""
        if not 0 <= seq <= _MAX_SEQ:
            msg = f"a feed cursor holds a number from 0 to {_MAX_SEQ}, not {seq}"
            raise ValueError(msg)
        nonce = secrets.token_bytes(_CURSOR_NONCE)
        sealed = self._cursors.encrypt(
            nonce, seq.to_bytes(_CURSOR_SEQ, "big"), _CURSOR_TAG + binding.encode()
        )
        return _b64(nonce + sealed)

    def cursor_seq(self, binding: str, token: str | None) -> int | None:
        """The place ``token`` holds, if this signer sealed it for ``binding``; None for
        anything else (another session's, another secret's, changed, malformed)."""
        # The length and alphabet first: 48 characters of base64 are exactly 36 bytes,
        # so no other spelling decodes to the same token.
        if not token or not _CURSOR_TEXT.fullmatch(token):
            return None
        raw = _unb64(token)
        try:
            plain = self._cursors.decrypt(
                raw[:_CURSOR_NONCE], raw[_CURSOR_NONCE:], _CURSOR_TAG + binding.encode()
            )
        except InvalidTag:
            return None
        seq = int.from_bytes(plain, "big")
        return seq if seq <= _MAX_SEQ else None


def same_origin(origin: str | None, own: str, fetch_site: str | None = None) -> bool:
    """Whether a POST comes from the dashboard's own pages, by its ``Origin`` and
    ``Sec-Fetch-Site`` headers (browsers set both; a page cannot forge them).

    ``Sec-Fetch-Site``, when sent, must be ``same-origin``. ``Origin``, when sent, must be
    the dashboard's own origin (``scheme://host[:port]``), or ``null`` from a same-origin
    fetch: the dashboard sends ``Referrer-Policy: no-referrer``, and under that policy
    Chromium sends ``Origin: null`` on the dashboard's own form posts. Any other origin, and
    ``null`` without a same-origin fetch (a sandboxed frame, say), is refused.
    """
    site = (fetch_site or "").strip().lower()
    if site and site != "same-origin":
        return False
    if origin is None:
        return True
    text = origin.strip().lower()
    if text == "null":
        return site == "same-origin"
    return text == own.lower()


def safe_next(target: str | None) -> str:
    """Where to go after signing in: ``target`` when it is a path on this site (``/...``,
    not ``//host`` nor a scheme, no backslash or control character), else ``/``."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):  # noqa: PLR2004
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("/sign-"):
        return "/"
    return target
