"""Key life cycle: generate, rotate, revoke, list. The bus (``liaison.keys``) is authoritative.

Every change is published to ``liaison.keys`` before it counts, and mirrored into the
local trust file. A new private key is written (0600) before its public half is
published, and removed again if publishing fails, so a trusted key always has its
private half somewhere and an untrusted one leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import structlog

from schemas.audit import AuditRecord, KeyGenerated, KeyRevoked, KeyRotated
from schemas.errors import ConfigurationError
from schemas.keys import BUS, OPERATOR, KeyStatus, SigningKey, TrustedKey, TrustStore
from services.audit_log import append_audit, operator
from services.keystore import KeyStore, signing_key_for
from services.settings import Settings
from services.trust import load_trust, publish_keys

__all__ = ["KeyChange", "ensure_keys", "generate", "resolve", "revoke", "rotate"]

_MIN_PREFIX = 8
_log = structlog.get_logger("liaison.keys")


@dataclass(frozen=True, slots=True)
class KeyChange:
    """What a key command changed."""

    new: TrustedKey | None
    changed: tuple[TrustedKey, ...]


async def _commit(
    settings: Settings,
    store: KeyStore,
    bus: TrustStore,
    entries: list[TrustedKey],
    record: AuditRecord,
    *,
    signer: SigningKey | None = None,
) -> None:
    await publish_keys(settings, entries)
    # Interim (issue 10 reworks key changes): the operator's key signs the audit record;
    # the first operator key signs its own.
    key = signer or signing_key_for(OPERATOR, settings, store, bus.merged(entries))
    await append_audit(settings, [record], key)
    store.save_trust(store.trust().merged(bus.keys).merged(entries))
    for entry in entries:
        # Public key ids only: private keys are never logged.
        _log.info("key_changed", keyid=entry.keyid, owner=entry.owner, status=entry.status.value)


async def _new_key(
    settings: Settings, store: KeyStore, bus: TrustStore, owner: str, now: dt.datetime,
    *, retire: tuple[TrustedKey, ...] = (),
) -> KeyChange:  # fmt: skip
    key = SigningKey.generate(owner)
    store.save_private(key)
    entry = key.trusted(valid_from=now)
    retired = [old.retired(now) for old in retire]
    try:
        if retire:
            record: AuditRecord = KeyRotated(
                at=now, actor=operator(), keyid=entry.keyid, owner=owner,
                retired_keyids=tuple(old.keyid for old in retired),
            )  # fmt: skip
        else:
            record = KeyGenerated(at=now, actor=operator(), keyid=entry.keyid, owner=owner)
        signer = key if owner == OPERATOR else None
        await _commit(settings, store, bus, [entry, *retired], record, signer=signer)
    except BaseException:
        store.delete_private(key)
        raise
    return KeyChange(entry, tuple(retired))


async def generate(settings: Settings, owner: str, now: dt.datetime) -> KeyChange:
    """A first key for ``owner``; refused when it already has an active one."""
    bus = await load_trust(settings)
    active = bus.active(owner)
    if active:
        flag = "--bus" if owner == BUS else f"--inspectorate {owner}"
        raise ConfigurationError(
            f"{owner} already has active key {active[0].keyid}; to replace it run"
            f" `liaison keys rotate {flag}`"
        )
    return await _new_key(settings, KeyStore(settings), bus, owner, now)


async def rotate(settings: Settings, owner: str, now: dt.datetime) -> KeyChange:
    """A new active key for ``owner``; its previous keys retire (still verify the past)."""
    bus = await load_trust(settings)
    return await _new_key(settings, KeyStore(settings), bus, owner, now, retire=bus.active(owner))


def resolve(trust: TrustStore, keyid: str) -> TrustedKey:
    """The one key whose id is ``keyid`` or starts with it (at least 8 characters)."""
    exact = trust.get(keyid)
    if exact is not None:
        return exact
    if len(keyid) < _MIN_PREFIX:
        raise ConfigurationError(f"give at least {_MIN_PREFIX} characters of the key id")
    found = [k for k in trust.keys if k.keyid.startswith(keyid.lower())]
    if not found:
        raise ConfigurationError(f"no trusted key has an id starting {keyid}")
    if len(found) > 1:
        raise ConfigurationError(f"{len(found)} keys have ids starting {keyid}; give more of it")
    return found[0]


async def revoke(settings: Settings, keyid: str, reason: str, now: dt.datetime) -> KeyChange:
    """Revoke a key: nothing appended from ``now`` on verifies with it."""
    if not reason.strip():
        raise ConfigurationError("a revocation needs a --reason")
    bus = await load_trust(settings)
    key = resolve(bus, keyid)
    if key.status is KeyStatus.REVOKED:
        raise ConfigurationError(f"key {key.keyid} was already revoked at {key.revoked_at}")
    revoked = key.revoked(now, reason.strip())
    record = KeyRevoked(
        at=now, actor=operator(), keyid=revoked.keyid, owner=revoked.owner, reason=reason.strip()
    )
    await _commit(settings, KeyStore(settings), bus, [revoked], record)
    return KeyChange(None, (revoked,))


async def ensure_keys(
    settings: Settings, owners: tuple[str, ...], now: dt.datetime
) -> dict[str, SigningKey]:
    """A usable signing key for each owner: the active one here, else a new one (demo, tests)."""
    store = KeyStore(settings)
    bus = await load_trust(settings)
    keys: dict[str, SigningKey] = {}
    # The operator's key first: it signs the audit record of every other key change.
    for owner in dict.fromkeys((OPERATOR, *owners)):
        key = store.active(owner, bus)
        if key is None:
            change = await _new_key(settings, store, bus, owner, now, retire=bus.active(owner))
            assert change.new is not None  # noqa: S101 - _new_key always makes one
            bus = bus.merged([change.new, *change.changed])
            key = store.load_private(owner, change.new.keyid)
        if owner in owners:
            keys[owner] = key
    return keys
