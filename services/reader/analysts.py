"""The analysts' registry: who may read feeds through the reader service, and what.

An operator issues each analyst a credential (``liaison analysts add``): a random token
(``new_token``: ``lsn_`` and 32 random bytes, URL-safe base64) shown once. The registry
keeps only the token's SHA-256, the analyst's scope and whether the credential stands.
It is a JSON file under ``LIAISON_HOME/analysts/`` (one per topic prefix, as the key
store), written atomically with mode 0600, read again by the reader service on every
request so a revocation takes effect at once.

``Registry`` is an immutable value with pure methods; ``RegistryFile`` is the file.
``Registry.authenticate`` compares the presented token's hash with every entry's in
constant time (``hmac.compare_digest``, no early exit), so response times do not tell
an attacker how much of a hash they guessed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from schemas.audit import AnalystScope
from schemas.errors import ConfigurationError, LiaisonError
from services.settings import Settings

__all__ = [
    "MAX_TOKEN_CHARS",
    "TOKEN_PREFIX",
    "Analyst",
    "AnalystError",
    "Registry",
    "RegistryFile",
    "new_token",
    "token_sha256",
]

TOKEN_PREFIX: Final = "lsn_"  # noqa: S105 - a prefix, not a secret
"""How every Liaison analyst credential starts (so a leaked one is recognisable)."""
MAX_TOKEN_CHARS: Final = 200
"""A presented token longer than this is refused without being hashed."""


class AnalystError(LiaisonError):
    """An operator's change to the registry cannot be made (no such analyst, already
    there, already revoked); retrying the same change cannot help."""


def new_token() -> str:
    """A new credential: ``lsn_`` and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    """The lowercase hex SHA-256 of a token's UTF-8 bytes (what the registry keeps)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class Analyst(BaseModel):
    """One analyst's entry: scope, credential hash, and whether it stands."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scope: AnalystScope
    credential_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    status: Literal["active", "revoked"] = "active"
    added_at: AwareDatetime
    added_by: str
    revoked_at: AwareDatetime | None = None
    revoked_by: str | None = None
    reason: str | None = None


class Registry(BaseModel):
    """Every analyst ever added, in the order they were (a revoked entry is kept)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    analysts: tuple[Analyst, ...] = ()

    def get(self, name: str) -> Analyst | None:
        """The entry named ``name``, if any."""
        return next((a for a in self.analysts if a.name == name), None)

    def with_added(self, analyst: Analyst) -> Registry:
        """The registry with ``analyst`` in it; one already active is an ``AnalystError``.

        A revoked analyst may be added again (a new credential replaces the old entry).
        """
        current = self.get(analyst.name)
        if current is not None and current.status == "active":
            raise AnalystError(
                f"analyst {analyst.name} already has a credential: revoke it first"
                " (`liaison analysts revoke`)"
            )
        kept = tuple(a for a in self.analysts if a.name != analyst.name)
        return self.model_copy(update={"analysts": (*kept, analyst)})

    def with_revoked(self, name: str, reason: str, at: dt.datetime, by: str) -> Registry:
        """The registry with ``name``'s credential withdrawn."""
        current = self.get(name)
        if current is None:
            raise AnalystError(f"no analyst {name} in the registry (`liaison analysts list`)")
        if current.status == "revoked":
            raise AnalystError(f"analyst {name}'s credential is already revoked")
        revoked = current.model_copy(
            update={"status": "revoked", "revoked_at": at, "revoked_by": by, "reason": reason}
        )
        return self.model_copy(
            update={"analysts": tuple(revoked if a.name == name else a for a in self.analysts)}
        )

    def authenticate(self, token: str) -> Analyst | None:
        """The active analyst whose credential ``token`` is; None for any other token."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        presented = token_sha256(token).encode()
        found: Analyst | None = None
        for analyst in self.analysts:  # every entry, always: no early exit
            if hmac.compare_digest(presented, analyst.credential_sha256.encode()):
                found = analyst
        return found if found is not None and found.status == "active" else None


class RegistryFile:
    """The registry on this machine: ``LIAISON_HOME/analysts/[prefix-<prefix>/]registry.json``."""

    def __init__(self, settings: Settings) -> None:
        prefix = settings.topic_prefix
        self._base = settings.home / "analysts"
        self.root = self._base / (f"prefix-{prefix}" if prefix else "")
        self.path = self.root / "registry.json"

    def load(self) -> Registry:
        """The registry (empty when none has been written); ``ConfigurationError`` if the
        file is not one."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return Registry()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the analysts' registry {self.path}: {exc.strerror}"
            ) from None
        try:
            return Registry.model_validate_json(data)
        except ValidationError as exc:
            raise ConfigurationError(
                f"{self.path} is not an analysts' registry ({exc.error_count()} problem(s))"
            ) from None

    def save(self, registry: Registry) -> None:
        """Write the registry atomically, readable by this user only (0600, in a 0700
        directory)."""
        self._make_root()
        tmp = self.path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(registry.model_dump_json(indent=2) + "\n")
        tmp.replace(self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's lock (one operator's change at a time) for the block."""
        self._make_root()
        fd = os.open(self.root / "registry.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _make_root(self) -> None:
        for directory in dict.fromkeys((self._base, self.root)):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.chmod(0o700)
