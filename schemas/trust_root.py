"""The root of trust for keys: pinned root keys, signed key changes, and how a reader
judges each record on ``liaison.keys``.

Modelled on TUF's root and targets roles. A deployment pins a *trust root* in its own
configuration (``TrustRoot``: the public halves of a few root keys and a threshold),
never learnt from Kafka. Every change to the bus's keys (a key added, rotated, retired,
revoked) is a ``KeyChange`` statement, signed by at least ``threshold`` distinct root
keys in one DSSE envelope (``payloadType`` ``KEY_CHANGE_TYPE``). Each change carries a
``version`` greater than every change before it, so an old change produced again is
refused (rollback).

``judge_key_record`` is the whole decision for one record, pure: it takes the bytes, the
broker's append time and the reader's state, and returns either the new state or a
``KeyRecordRefused`` with a stable reason code (``KeyRefusal``). It never raises.

Time rules (the broker's append time, ``LogAppendTime``, is the clock):

- a key's ``valid_from`` left out means "from when this change is appended"; one stated
  earlier than the append time (less ``SKEW``) is *back-dated* and refused, because it
  would make the key vouch for records already in the log;
- ``valid_until`` (retired) and ``revoked_at`` left out also mean the append time; they
  may be stated in the past (a revocation back to when a key was compromised narrows
  trust, it never widens it);
- a key's public half and owner never change, a revoked key stays revoked and a retired
  key never becomes active again.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas._problems import schema_error
from schemas.errors import DuplicateKeyError, LiaisonError, SchemaError
from schemas.keys import (
    KeyStatus,
    SigningKey,
    TrustedKey,
    TrustStore,
    check_owner,
    check_public_key,
)
from schemas.wire import Rfc3339, strict_loads

__all__ = [
    "KEY_CHANGE_TYPE",
    "MAX_KEY_RECORD_BYTES",
    "SKEW",
    "KeyChange",
    "KeyChangeError",
    "KeyRecordRefused",
    "KeyRefusal",
    "KeyState",
    "RootKey",
    "SignedKeyChange",
    "TrustRoot",
    "TrustState",
    "add_signature",
    "decode_trust_root",
    "judge_key_record",
    "parse_signed_change",
    "root_key",
]

KEY_CHANGE_TYPE: Final = "uk.liaison.key.change.v1"
"""The DSSE ``payloadType`` of a signed key change."""

MAX_KEY_RECORD_BYTES: Final = 256 * 1024
"""Largest record on ``liaison.keys`` a reader parses."""

SKEW: Final = dt.timedelta(minutes=5)
"""How far a stated ``valid_from`` may precede the append time (clocks differ a little)."""

MAX_ROOT_KEYS: Final = 16
MAX_KEYS_PER_CHANGE: Final = 64

KeyId = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_KEYID: Final = re.compile(r"[0-9a-f]{64}")


# ---- the pinned root --------------------------------------------------------------------


class RootKey(BaseModel):
    """One trust-root public key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keyid: KeyId
    public_key: str = Field(description="Raw 32-byte Ed25519 public key, standard base64.")
    holder: str = Field(default="", max_length=200, description="Who holds it (a note).")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_public_key(self.public_key, self.keyid)
        return self

    def verifier(self) -> Ed25519PublicKey:
        """The public key, for verifying signatures."""
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.public_key))


def root_key(key: SigningKey, holder: str = "") -> RootKey:
    """The pinned public half of a root signing key."""
    return RootKey(
        keyid=key.keyid, public_key=base64.b64encode(key.public_raw).decode(), holder=holder
    )


class TrustRoot(BaseModel):
    """The deployment's pinned root of trust: root public keys and how many must sign."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["liaison.trust-root"] = "liaison.trust-root"
    threshold: int = Field(ge=1, le=MAX_ROOT_KEYS)
    keys: tuple[RootKey, ...] = Field(min_length=1, max_length=MAX_ROOT_KEYS)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [k.keyid for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError("a root key appears twice")
        if self.threshold > len(self.keys):
            msg = f"threshold {self.threshold} is more than the {len(self.keys)} root keys"
            raise ValueError(msg)
        return self

    def get(self, keyid: str) -> RootKey | None:
        """The root key with this id, if pinned."""
        return next((k for k in self.keys if k.keyid == keyid), None)


def decode_trust_root(data: bytes) -> TrustRoot:
    """A pinned trust-root document, strictly; ``SchemaError`` if it is not one."""
    if len(data) > MAX_KEY_RECORD_BYTES:
        raise SchemaError(f"a trust root is at most {MAX_KEY_RECORD_BYTES} bytes")
    if not isinstance(strict_loads(data), dict):
        raise SchemaError("a trust root must be a JSON object")
    try:
        return TrustRoot.model_validate_json(data, strict=True)
    except ValidationError as exc:
        raise schema_error(exc, "trust root") from None


# ---- key changes -------------------------------------------------------------------------


class KeyState(BaseModel):
    """One key's new state, as a change states it (times may be left to the append time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keyid: KeyId
    public_key: str = Field(description="Raw 32-byte Ed25519 public key, standard base64.")
    owner: str
    status: KeyStatus = KeyStatus.ACTIVE
    valid_from: Rfc3339 | None = None
    valid_until: Rfc3339 | None = None
    revoked_at: Rfc3339 | None = None
    revocation_reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_owner(self.owner)
        check_public_key(self.public_key, self.keyid)
        if self.status is not KeyStatus.REVOKED and (
            self.revoked_at is not None or self.revocation_reason is not None
        ):
            raise ValueError("revoked_at and revocation_reason are for a revoked key only")
        if self.status is KeyStatus.ACTIVE and self.valid_until is not None:
            raise ValueError("an active key has no valid_until (retire it instead)")
        if self.status is KeyStatus.REVOKED and not self.revocation_reason:
            raise ValueError("a revocation needs a reason")
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until < self.valid_from
        ):
            raise ValueError("valid_until is before valid_from")
        return self

    @classmethod
    def new(cls, key: SigningKey) -> KeyState:
        """A new active key, valid from when the change that adds it is appended."""
        public = base64.b64encode(key.public_raw).decode()
        return cls(keyid=key.keyid, public_key=public, owner=key.owner)

    @classmethod
    def of(cls, key: TrustedKey) -> KeyState:
        """The state of a trust-store entry, every time stated."""
        return cls.model_validate(key.model_dump())


class KeyChange(BaseModel):
    """A change to the bus's keys, signed by the trust root as one statement."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["liaison.key-change"] = "liaison.key-change"
    version: int = Field(ge=1, le=2**53, description="Greater than every earlier change's.")
    keys: tuple[KeyState, ...] = Field(min_length=1, max_length=MAX_KEYS_PER_CHANGE)
    proposed_at: Rfc3339
    note: str = Field(default="", max_length=500, description="Why (for people, not checked).")

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [k.keyid for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError("a key id appears twice in one change")
        return self

    def payload(self) -> bytes:
        """The exact bytes signed: compact JSON, sorted keys, ``None`` left out."""
        data = self.model_dump(mode="json", exclude_none=True)
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class SignedKeyChange:
    """A key change's exact payload bytes and the root signatures gathered so far."""

    change: KeyChange
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, signature), one per signer

    def envelope(self) -> bytes:
        """The DSSE envelope JSON (the ``liaison.keys`` record value and the file format)."""
        document = {
            "payload": base64.b64encode(self.payload).decode(),
            "payloadType": KEY_CHANGE_TYPE,
            "signatures": [
                {"keyid": keyid, "sig": base64.b64encode(sig).decode()}
                for keyid, sig in self.signatures
            ],
        }
        return json.dumps(document, separators=(",", ":")).encode()

    def signers(self, root: TrustRoot) -> tuple[str, ...]:
        """The distinct pinned root keys whose signatures verify."""
        return _valid_signers(self.payload, self.signatures, root)


def _pae(payload: bytes) -> bytes:
    kind = KEY_CHANGE_TYPE.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def add_signature(signed: SignedKeyChange | KeyChange, key: SigningKey) -> SignedKeyChange:
    """``signed`` with one more root signature (by ``key``); an unsigned change starts one."""
    if isinstance(signed, KeyChange):
        signed = SignedKeyChange(signed, signed.payload(), ())
    others = tuple(s for s in signed.signatures if s[0] != key.keyid)
    return SignedKeyChange(
        signed.change, signed.payload, (*others, (key.keyid, key.sign(_pae(signed.payload))))
    )


def _valid_signers(
    payload: bytes, signatures: Iterable[tuple[str, bytes]], root: TrustRoot
) -> tuple[str, ...]:
    message = _pae(payload)
    good: list[str] = []
    for keyid, sig in signatures:
        pinned = root.get(keyid)
        if pinned is None or keyid in good:
            continue
        try:
            pinned.verifier().verify(sig, message)
        except InvalidSignature:
            continue
        good.append(keyid)
    return tuple(good)


# ---- judging a record ---------------------------------------------------------------------


class KeyRefusal(StrEnum):
    """Why a record on ``liaison.keys`` was refused: stable codes for quarantine and audit."""

    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    """Not JSON, a repeated key, not a DSSE envelope, another payloadType."""
    UNSIGNED = "unsigned"
    """No signature by any pinned root key verifies (a bare key record is this too)."""
    UNDER_SIGNED = "under_signed"
    """Fewer distinct root keys signed than the threshold."""
    INVALID_FIELDS = "invalid_fields"
    """Signed, but the statement breaks the contract."""
    ROLLBACK = "rollback"
    """Its version is not greater than the last change applied (an old change replayed)."""
    BACKDATED = "backdated"
    """A key's ``valid_from`` is earlier than the record's append time, or than before."""
    CONFLICT = "conflict"
    """It changes a key's public half or owner, revives a revoked key, or re-activates a
    retired one."""
    NOT_APPEND_TIME = "not_append_time"
    """Its timestamp is the producer's (``CreateTime``), not the broker's append time, so
    nothing in it can be judged against when it was appended (``liaison.keys`` must be
    ``message.timestamp.type=LogAppendTime``: run ``liaison topics apply``)."""


class KeyChangeError(LiaisonError, ValueError):
    """A key change cannot be applied: under-signed, stale, or refused by the judge.

    ``refusal`` is the judge's reason code when there is one (never retriable as it is:
    the change must be signed again, or proposed again).
    """

    def __init__(self, message: str, refusal: KeyRefusal | None = None) -> None:
        super().__init__(message)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class KeyRecordRefused:
    """A record the reader did not apply, and why (``detail`` never quotes the record)."""

    reason: KeyRefusal
    detail: str
    version: int | None = None


class _Refused(Exception):  # noqa: N818 - internal: carries a refusal up to judge_key_record
    def __init__(self, reason: KeyRefusal, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_EMPTY: Final = TrustStore()


@dataclass(frozen=True, slots=True)
class TrustState:
    """What a reader of ``liaison.keys`` knows: the keys and the last change's version."""

    store: TrustStore = _EMPTY
    version: int = 0


def parse_signed_change(data: bytes) -> SignedKeyChange:
    """A signed key change (a record value or a file), strictly, signatures unchecked;
    ``SchemaError`` if it is not one."""
    try:
        return _parse(data)
    except _Refused as exc:
        raise SchemaError(exc.detail) from None


def _parse(data: bytes) -> SignedKeyChange:
    if len(data) > MAX_KEY_RECORD_BYTES:
        raise _Refused(KeyRefusal.OVERSIZED, f"over {MAX_KEY_RECORD_BYTES} bytes")
    try:
        document: Any = strict_loads(data)
    except DuplicateKeyError:
        raise _Refused(KeyRefusal.MALFORMED, "a JSON object repeats a key") from None
    except SchemaError:
        raise _Refused(KeyRefusal.MALFORMED, "not JSON") from None
    if not isinstance(document, dict):
        raise _Refused(KeyRefusal.MALFORMED, "not a JSON object")
    if set(document) != {"payload", "payloadType", "signatures"}:
        # A bare key record (the format before signed changes) lands here too.
        raise _Refused(
            KeyRefusal.UNSIGNED, "not a signed key change (a DSSE envelope of the trust root)"
        )
    if document["payloadType"] != KEY_CHANGE_TYPE:
        raise _Refused(KeyRefusal.MALFORMED, f"payloadType is not {KEY_CHANGE_TYPE}")
    signatures = document["signatures"]
    if not isinstance(signatures, list) or len(signatures) > MAX_ROOT_KEYS:
        raise _Refused(
            KeyRefusal.MALFORMED, f"signatures must be a list of at most {MAX_ROOT_KEYS}"
        )
    parsed = [_signature(signature) for signature in signatures]
    payload = _b64(document["payload"])
    if payload is None:
        raise _Refused(KeyRefusal.MALFORMED, "payload is not canonical base64")
    try:
        _object(payload)
        change = KeyChange.model_validate_json(payload, strict=True)
    except (SchemaError, ValidationError) as exc:
        problems = exc.error_count() if isinstance(exc, ValidationError) else 1
        raise _Refused(
            KeyRefusal.INVALID_FIELDS, f"the statement breaks the contract ({problems} problem(s))"
        ) from None
    return SignedKeyChange(change, payload, tuple(parsed))


def _object(payload: bytes) -> None:
    if not isinstance(strict_loads(payload), dict):
        raise SchemaError("the statement is not an object")


def _signature(signature: object) -> tuple[str, bytes]:
    if not isinstance(signature, dict) or set(signature) != {"keyid", "sig"}:
        raise _Refused(KeyRefusal.MALFORMED, "a signature has exactly keyid and sig")
    keyid, sig = signature["keyid"], _b64(signature["sig"])
    if not isinstance(keyid, str) or not _KEYID.fullmatch(keyid) or sig is None:
        raise _Refused(KeyRefusal.MALFORMED, "a signature is not a keyid and base64")
    return keyid, sig


def _b64(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value.encode(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == value else None


def judge_key_record(
    data: bytes, appended_at: dt.datetime, root: TrustRoot, state: TrustState
) -> TrustState | KeyRecordRefused:
    """The reader's state after one ``liaison.keys`` record, or why it was refused.

    Signatures are checked before anything in the statement is believed; never raises.
    """
    try:
        return _judge(data, appended_at, root, state)
    except (ValueError, ArithmeticError, RecursionError) as exc:  # last line of defence
        return KeyRecordRefused(
            KeyRefusal.INVALID_FIELDS, f"cannot be judged ({type(exc).__name__})"
        )


def _judge(
    data: bytes, appended_at: dt.datetime, root: TrustRoot, state: TrustState
) -> TrustState | KeyRecordRefused:
    try:
        parsed = _parse(data)
    except _Refused as exc:
        return KeyRecordRefused(exc.reason, exc.detail)
    signers = parsed.signers(root)
    version = parsed.change.version
    if not signers:
        return KeyRecordRefused(KeyRefusal.UNSIGNED, "no pinned root key signed it", version)
    if len(signers) < root.threshold:
        return KeyRecordRefused(
            KeyRefusal.UNDER_SIGNED,
            f"{len(signers)} of the {root.threshold} root signatures needed",
            version,
        )
    if version <= state.version:
        return KeyRecordRefused(
            KeyRefusal.ROLLBACK,
            f"version {version} is not after the last change applied ({state.version})",
            version,
        )
    store = state.store
    for stated in parsed.change.keys:
        try:
            entry = _applied(stated, store.get(stated.keyid), appended_at)
        except _Refused as exc:
            return KeyRecordRefused(exc.reason, exc.detail, version)
        store = store.with_key(entry)
    return TrustState(store, version)


def _applied(stated: KeyState, current: TrustedKey | None, appended_at: dt.datetime) -> TrustedKey:
    short = stated.keyid[:16]
    if current is None:
        valid_from = stated.valid_from or appended_at
        if valid_from < appended_at - SKEW:
            raise _Refused(
                KeyRefusal.BACKDATED, f"key {short}: valid_from is before the change was appended"
            )
    else:
        if current.public_key != stated.public_key or current.owner != stated.owner:
            raise _Refused(
                KeyRefusal.CONFLICT, f"key {short}: its public key or owner would change"
            )
        if current.status is KeyStatus.REVOKED and stated.status is not KeyStatus.REVOKED:
            raise _Refused(KeyRefusal.CONFLICT, f"key {short} is revoked for good")
        if current.status is KeyStatus.RETIRED and stated.status is KeyStatus.ACTIVE:
            raise _Refused(KeyRefusal.CONFLICT, f"key {short} is retired for good")
        valid_from = stated.valid_from or current.valid_from
        if valid_from < current.valid_from:
            raise _Refused(KeyRefusal.BACKDATED, f"key {short}: valid_from would move earlier")
    valid_until = stated.valid_until
    if stated.status is KeyStatus.RETIRED and valid_until is None:
        valid_until = max(appended_at, valid_from)
    if (
        current is not None
        and current.valid_until is not None
        and stated.status is not KeyStatus.ACTIVE
    ):
        # A retired key's end can come earlier, never later.
        valid_until = min(valid_until or current.valid_until, current.valid_until)
    revoked_at = stated.revoked_at
    if stated.status is KeyStatus.REVOKED:
        revoked_at = revoked_at or appended_at
        if current is not None and current.revoked_at is not None:
            revoked_at = min(revoked_at, current.revoked_at)
    try:
        return TrustedKey(
            keyid=stated.keyid,
            public_key=stated.public_key,
            owner=stated.owner,
            valid_from=valid_from,
            valid_until=valid_until if stated.status is not KeyStatus.ACTIVE else None,
            status=stated.status,
            revoked_at=revoked_at,
            revocation_reason=stated.revocation_reason,
        )
    except ValidationError:
        raise _Refused(KeyRefusal.INVALID_FIELDS, f"key {short}: its times do not agree") from None
