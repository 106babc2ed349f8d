"""The local key store under ``$LIAISON_HOME/keys``: private keys and the trust file.

Private keys are PKCS#8 PEM files with mode 0600 in a 0700 directory, one per key,
never logged. ``trust.json`` holds the public trust store (what ``keys export`` prints).
``root.json`` is the pinned trust root, unless ``LIAISON_TRUST_ROOT`` names another file;
the private halves of root keys kept on this machine (the local 1-of-1 development root)
are under ``private/root/``. Proposed key changes waiting for root signatures are under
``proposals/``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from schemas.errors import ConfigurationError
from schemas.keys import BUS, COMPONENTS, ROOT, SigningKey, TrustStore
from schemas.trust_root import TrustRoot
from services.settings import Settings

__all__ = [
    "KeyStore",
    "check_signing_key",
    "load_key_file",
    "owner_flag",
    "signing_key_for",
    "trust_root_path",
    "write_private",
]


def check_signing_key(key: SigningKey, owner: str, trust: TrustStore, now: dt.datetime) -> None:
    """``ConfigurationError`` unless ``key`` is ``owner``'s, in the bus's trust store and
    able to sign now: what it signs would otherwise verify for no reader."""
    if key.owner != owner:
        raise ConfigurationError(f"signing key {key.keyid} belongs to {key.owner}, not {owner}")
    entry = trust.get(key.keyid)
    if entry is None:
        raise ConfigurationError(
            f"signing key {key.keyid} is not in the bus's trust store; register it with"
            f" `liaison keys generate {owner_flag(owner)}` (or rotate)"
        )
    refused = entry.refuses_at(now)
    if refused is not None:
        raise ConfigurationError(f"signing key {key.keyid} cannot sign now: {refused}")


def owner_flag(owner: str) -> str:
    """The `liaison keys` option that names ``owner`` (``--bus``, ``--component audit``,
    ``--inspectorate ofsted``)."""
    if owner == BUS:
        return "--bus"
    if owner in COMPONENTS:
        return f"--component {owner}"
    return f"--inspectorate {owner}"


def trust_root_path(settings: Settings) -> Path:
    """Where the pinned trust root is: ``LIAISON_TRUST_ROOT``, else ``root.json`` in the
    local key store."""
    return settings.trust_root or KeyStore(settings).root / "root.json"


def write_private(path: Path, key: SigningKey) -> Path:
    """Write a private key to a new file readable by this user only (0600); never replace
    one (an existing file is a ``ConfigurationError``)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{path} exists; a private key file is never replaced") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.to_pem())
    return path


def load_key_file(path: Path, owner: str) -> SigningKey:
    """The private key in the PEM file ``path``; one ``ConfigurationError`` otherwise."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    return _from_pem(pem, owner, f"the private key file {path}")


class KeyStore:
    """Keys kept on this machine (a separate folder per topic prefix, as tests use)."""

    def __init__(self, settings: Settings) -> None:
        prefix = settings.topic_prefix
        self.root = settings.home / "keys" / (f"prefix-{prefix}" if prefix else "")
        self.trust_file = self.root / "trust.json"
        self.private_dir = self.root / "private"

    def trust(self) -> TrustStore:
        """The local trust store (empty when none has been written)."""
        if not self.trust_file.exists():
            return TrustStore()
        try:
            return TrustStore.model_validate_json(self.trust_file.read_bytes())
        except ValidationError as exc:
            raise ConfigurationError(
                f"{self.trust_file} is not a trust store ({exc.error_count()} problem(s));"
                " `liaison keys export` prints the bus's"
            ) from None

    def save_trust(self, store: TrustStore) -> None:
        """Write the trust store atomically (readers never see half a file)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.trust_file.with_suffix(".tmp")
        tmp.write_text(store.model_dump_json(indent=2) + "\n")
        tmp.replace(self.trust_file)

    def private_path(self, owner: str, keyid: str) -> Path:
        """Where the private key ``keyid`` of ``owner`` lives."""
        return self.private_dir / owner / f"{keyid}.pem"

    def save_private(self, key: SigningKey) -> Path:
        """Write a private key readable by this user only (0600, in a 0700 directory)."""
        path = self.private_path(key.owner, key.keyid)
        self.root.mkdir(parents=True, exist_ok=True)
        for directory in (self.private_dir, path.parent):
            directory.mkdir(mode=0o700, exist_ok=True)
            directory.chmod(0o700)
        return write_private(path, key)

    def delete_private(self, key: SigningKey) -> None:
        """Remove a private key that never became trusted."""
        self.private_path(key.owner, key.keyid).unlink(missing_ok=True)

    def load_private(self, owner: str, keyid: str) -> SigningKey:
        """The private key ``keyid`` of ``owner``."""
        path = self.private_path(owner, keyid)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise ConfigurationError(
                f"no private key for {owner} key {keyid} in {path.parent}"
            ) from None
        return _from_pem(pem, owner, f"the private key file {path}")

    def root_keys(self, root: TrustRoot) -> tuple[SigningKey, ...]:
        """The pinned root keys whose private halves are in this store."""
        return tuple(
            self.load_private(ROOT, pinned.keyid)
            for pinned in root.keys
            if self.private_path(ROOT, pinned.keyid).exists()
        )

    def proposal_path(self, version: int) -> Path:
        """Where a proposed key change of ``version`` waits for root signatures."""
        return self.root / "proposals" / f"key-change-v{version}.json"

    def active(self, owner: str, trust: TrustStore) -> SigningKey | None:
        """The owner's active key in ``trust`` whose private half is on this machine."""
        for entry in trust.active(owner):
            if self.private_path(owner, entry.keyid).exists():
                return self.load_private(owner, entry.keyid)
        return None


def signing_key_for(
    owner: str, settings: Settings, store: KeyStore, trust: TrustStore
) -> SigningKey:
    """The key to sign with: ``LIAISON_SIGNING_KEY`` (PEM), ``..._FILE``, or the key store.

    A key that cannot be used is one ``ConfigurationError`` that never shows the key.
    """
    if settings.signing_key is not None:
        # Environment values keep undecodable bytes as surrogates; give them back as bytes.
        pem = settings.signing_key.get_secret_value().encode("utf-8", "surrogateescape")
        return _from_pem(pem, owner, "LIAISON_SIGNING_KEY")
    if settings.signing_key_file is not None:
        try:
            pem = settings.signing_key_file.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read LIAISON_SIGNING_KEY_FILE {settings.signing_key_file}: {exc.strerror}"
            ) from None
        return _from_pem(pem, owner, f"LIAISON_SIGNING_KEY_FILE {settings.signing_key_file}")
    key = store.active(owner, trust)
    if key is None:
        flag = owner_flag(owner)
        raise ConfigurationError(
            f"no active signing key for {owner} on this machine: run `liaison keys generate {flag}`"
        )
    return key


def _from_pem(pem: bytes, owner: str, source: str) -> SigningKey:
    """The key in ``pem``; anything else is a ConfigurationError naming ``source``.

    cryptography's own messages are not passed on: they may quote the input.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        why = "it is encrypted"  # load_pem_private_key asked for a password
    except (ValueError, UnsupportedAlgorithm):
        why = "it is not PEM, or it is damaged"
    else:
        if isinstance(key, Ed25519PrivateKey):
            return SigningKey(key, owner)
        why = "it is a key of another type"
    raise ConfigurationError(
        f"{source} is not an unencrypted PKCS#8 PEM Ed25519 private key ({why})"
    )
