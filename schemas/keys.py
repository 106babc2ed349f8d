"""Signing keys and the trust store: who may sign, and when each key was good.

Every inspectorate signs with its own Ed25519 key. The trust store holds the public half
of every key ever used, with its owner, validity and status, so a reader years later can
still verify an event: a *retired* key verifies what was appended before its
``valid_until``; a *revoked* key verifies nothing appended at or after ``revoked_at``.
Times are always the broker's append time, never a time the signer claims.

The trust store is never read from Kafka as it is: every change to it is a statement
signed by the pinned trust root (``schemas.trust_root``), judged by every reader.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Final, Self

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.inspectorates import Inspectorate
from schemas.wire import Rfc3339

__all__ = [
    "AUDIT",
    "AUDITOR",
    "BUS",
    "COMPONENTS",
    "OPERATOR",
    "OWNERS",
    "READER",
    "ROOT",
    "KeyStatus",
    "SigningKey",
    "TrustStore",
    "TrustedKey",
    "check_owner",
    "check_public_key",
    "entitled",
    "key_id",
]

BUS: Final = "liaison"
"""Owner of the router's key: signs JTAI considerations and the router's audit records."""
AUDIT: Final = "audit"
"""Owner of the audit service's key: signs checkpoints and the service's own records."""
READER: Final = "reader"
"""Owner of the reader service's key (feeds, dashboard): signs the audit record of every
read, naming the analyst it authenticated."""
AUDITOR: Final = "auditor"
"""Owner of the auditors' tools' key (verify, replay)."""
OPERATOR: Final = "operator"
"""Owner of the operators' tools' key (key changes, quarantine redrive, analysts)."""

ROOT: Final = "root"
"""Owner name of a trust-root signing key (``schemas.trust_root``): pinned in deployment
configuration, never in the trust store, so never a valid ``TrustedKey`` owner."""

COMPONENTS: Final = (BUS, AUDIT, READER, AUDITOR, OPERATOR)
"""Owners that are parts of Liaison, not inspectorates."""

OWNERS: Final = frozenset({*(i.value for i in Inspectorate), *COMPONENTS})
"""Every owner a trusted key can have."""

# Which actor kind (before the colon of an audit record's ``actor``) each component's key
# may sign for. An inspectorate's key signs only for ``inspectorate:<itself>``.
_ACTOR_KIND: Final = {
    BUS: "router",
    AUDIT: "audit",
    READER: "analyst",
    AUDITOR: "auditor",
    OPERATOR: "operator",
}


def entitled(owner: str, actor: str) -> bool:
    """Whether a key of ``owner`` may sign an audit record whose actor is ``actor``.

    The router's key speaks for ``router:*``, the audit service's for ``audit:*``, the
    reader service's for the analysts it authenticated (``analyst:*``), the auditors' and
    operators' tools' for ``auditor:*`` and ``operator:*``; an inspectorate's key only for
    ``inspectorate:<that inspectorate>``.
    """
    kind, colon, name = actor.partition(":")
    if not colon or not name:
        return False
    if owner in _ACTOR_KIND:
        return kind == _ACTOR_KIND[owner]
    return owner in OWNERS and kind == "inspectorate" and name == owner


KeyId = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def key_id(public_key: Ed25519PublicKey | bytes) -> str:
    """Lowercase hex SHA-256 of the raw 32-byte Ed25519 public key."""
    raw = public_key if isinstance(public_key, bytes) else _raw(public_key)
    return hashlib.sha256(raw).hexdigest()


def check_owner(owner: str) -> None:
    """``ValueError`` unless ``owner`` is an owner a trusted key can have."""
    if owner not in OWNERS:
        msg = f"owner {owner!r} is not an inspectorate or one of {', '.join(COMPONENTS)}"
        raise ValueError(msg)


def check_public_key(public_key: str, keyid: str) -> bytes:
    """The raw Ed25519 key in ``public_key`` (standard base64) if ``keyid`` is its id;
    ``ValueError`` otherwise (for pydantic validators)."""
    try:
        raw = base64.b64decode(public_key, validate=True)
    except ValueError:
        raise ValueError("public_key is not base64") from None
    if len(raw) != 32:  # noqa: PLR2004 - Ed25519 public keys are 32 bytes
        msg = f"public_key is {len(raw)} bytes, an Ed25519 key is 32"
        raise ValueError(msg)
    if key_id(raw) != keyid:
        raise ValueError("keyid is not the SHA-256 of public_key")
    return raw


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class KeyStatus(StrEnum):
    """Where a key is in its life."""

    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"


class TrustedKey(BaseModel):
    """A public key the bus trusts, its owner, and when it is good."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keyid: KeyId
    public_key: str = Field(description="Raw 32-byte Ed25519 public key, standard base64.")
    owner: str
    valid_from: Rfc3339
    valid_until: Rfc3339 | None = None
    status: KeyStatus = KeyStatus.ACTIVE
    revoked_at: Rfc3339 | None = None
    revocation_reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_owner(self.owner)
        check_public_key(self.public_key, self.keyid)
        if (self.status is KeyStatus.REVOKED) != (self.revoked_at is not None):
            raise ValueError("revoked_at is set exactly when status is revoked")
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self

    def verifier(self) -> Ed25519PublicKey:
        """The public key, for verifying signatures."""
        return _verifier(self.public_key)

    def refuses_at(self, when: dt.datetime) -> str | None:
        """Why this key cannot vouch for a record appended at ``when``; None if it can."""
        if self.revoked_at is not None and when >= self.revoked_at:
            return f"key revoked at {self.revoked_at.isoformat()}"
        if when < self.valid_from:
            return f"key valid only from {self.valid_from.isoformat()}"
        if self.valid_until is not None and when >= self.valid_until:
            return f"key retired at {self.valid_until.isoformat()}"
        return None

    def retired(self, at: dt.datetime) -> TrustedKey:
        """This key, no longer used for new signatures from ``at`` on."""
        return self.model_copy(update={"status": KeyStatus.RETIRED, "valid_until": at})

    def revoked(self, at: dt.datetime, reason: str) -> TrustedKey:
        """This key, trusted for nothing appended at or after ``at``."""
        return self.model_copy(
            update={"status": KeyStatus.REVOKED, "revoked_at": at, "revocation_reason": reason}
        )


class TrustStore(BaseModel):
    """Every public key the bus trusts, by key id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: tuple[TrustedKey, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [k.keyid for k in self.keys]
        if len(ids) != len(set(ids)):
            raise ValueError("a key id appears twice")
        return self

    def get(self, keyid: str) -> TrustedKey | None:
        """The key with this id, if trusted."""
        return next((k for k in self.keys if k.keyid == keyid), None)

    def with_key(self, key: TrustedKey) -> TrustStore:
        """This store with ``key`` added, or replacing the key with the same id."""
        others = tuple(k for k in self.keys if k.keyid != key.keyid)
        return TrustStore(keys=(*others, key))

    def merged(self, keys: Iterable[TrustedKey]) -> TrustStore:
        """This store with every key in ``keys`` applied in order."""
        store = self
        for key in keys:
            store = store.with_key(key)
        return store

    def active(self, owner: str) -> tuple[TrustedKey, ...]:
        """The owner's keys that are active now (normally one)."""
        return tuple(k for k in self.keys if k.owner == owner and k.status is KeyStatus.ACTIVE)


@functools.lru_cache(maxsize=4096)
def _verifier(public_key: str) -> Ed25519PublicKey:
    """The key object of a base64 public key, made once per key (a router verifies every
    record with one of a few keys)."""
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))


@dataclass(frozen=True)
class SigningKey:
    """A private Ed25519 key and its owner. Its repr never shows the private key."""

    private: Ed25519PrivateKey = field(repr=False)
    owner: str

    @classmethod
    def generate(cls, owner: str) -> SigningKey:
        """A new random key for ``owner``."""
        if owner not in OWNERS and owner != ROOT:
            msg = f"owner {owner!r} is not an inspectorate or one of {', '.join(COMPONENTS)}"
            raise ValueError(msg)
        return cls(Ed25519PrivateKey.generate(), owner)

    @classmethod
    def from_pem(cls, pem: bytes, owner: str) -> SigningKey:
        """Load an unencrypted PKCS#8 PEM Ed25519 private key."""
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the private key is not an Ed25519 key")  # noqa: TRY004
        return cls(key, owner)

    def to_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (write it with mode 0600)."""
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @functools.cached_property
    def public_raw(self) -> bytes:
        """The raw 32-byte public key (derived once: signing asks for it each time)."""
        return _raw(self.private.public_key())

    @functools.cached_property
    def keyid(self) -> str:
        """Lowercase hex SHA-256 of the raw public key."""
        return key_id(self.public_raw)

    def trusted(self, valid_from: dt.datetime) -> TrustedKey:
        """The trust-store entry for this key, active from ``valid_from``."""
        return TrustedKey(
            keyid=self.keyid,
            public_key=base64.b64encode(self.public_raw).decode(),
            owner=self.owner,
            valid_from=valid_from,
        )

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature of ``message``."""
        return self.private.sign(message)
