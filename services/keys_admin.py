"""Key life cycle under the trust root: create the root, propose, sign, apply.

Every change to the bus's keys is a ``KeyChange`` statement (``schemas.trust_root``)
that the pinned root's threshold of root keys signs before it counts:

1. ``propose_new_keys`` / ``propose_revocation`` state the change, with the next version
   (the bus's current one plus one). A new private key is written here (0600) when it is
   proposed, so a key the bus trusts always has its private half somewhere.
2. ``sign_change`` adds one root signature: a file in, a file out, no Kafka.
3. ``apply_change`` checks the signatures against the pinned root and judges the change
   against the bus's current state locally (one clear error when it would be refused),
   publishes it, waits until a reader of ``liaison.keys`` has applied it, and writes the
   operator-signed audit record(s).

``generate``, ``rotate`` and ``revoke`` do all three at once when this machine holds
enough root keys (the local development root is 1-of-1); otherwise they leave the
proposal in the key store and say who must sign it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from schemas.audit import AuditRecord, KeyGenerated, KeyRevoked, KeyRotated
from schemas.errors import ConfigurationError
from schemas.keys import OPERATOR, ROOT, KeyStatus, SigningKey, TrustedKey, TrustStore
from schemas.trust_root import (
    MAX_ROOT_KEYS,
    KeyChange,
    KeyChangeError,
    KeyRecordRefused,
    KeyRefusal,
    KeyState,
    SignedKeyChange,
    TrustRoot,
    add_signature,
    judge_key_record,
    parse_signed_change,
    root_key,
)
from services.audit_log import append_audit, operator
from services.keystore import (
    KeyStore,
    owner_flag,
    signing_key_for,
    trust_root_path,
    write_private,
)
from services.settings import Settings
from services.trust import TrustFollower, load_root, load_trust_state, publish_key_change

__all__ = [
    "Applied",
    "Pending",
    "Proposal",
    "RootCreated",
    "apply_change",
    "audit_records",
    "commit",
    "ensure_keys",
    "generate",
    "init_root",
    "propose_new_keys",
    "propose_revocation",
    "read_change",
    "register",
    "resolve",
    "revoke",
    "rotate",
    "sign_change",
    "write_change",
]

_MIN_PREFIX = 8
_log = structlog.get_logger("liaison.keys")


# ---- the root -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RootCreated:
    """A new pinned root: where it was written and where its private keys are."""

    root: TrustRoot
    path: Path
    private_files: tuple[Path, ...]


def init_root(
    settings: Settings,
    threshold: int = 1,
    count: int = 1,
    out_dir: Path | None = None,
    holders: Sequence[str] = (),
) -> RootCreated:
    """Generate ``count`` root keys and pin them (``threshold`` must sign each change).

    Private halves go to ``out_dir`` (one 0600 file each, to hand to their holders) or to
    the local key store; ``root.json`` goes where ``load_root`` reads it. An existing
    root is never overwritten.
    """
    path = trust_root_path(settings)
    if path.exists():
        raise ConfigurationError(
            f"{path} already holds a trust root and is never overwritten; to pin a new"
            " root, move it away first (every key must then be issued again)"
        )
    if not 1 <= threshold <= count <= MAX_ROOT_KEYS:
        raise ConfigurationError(
            f"need 1 <= threshold <= keys <= {MAX_ROOT_KEYS}"
            f" (got threshold {threshold}, keys {count})"
        )
    if holders and len(holders) != count:
        raise ConfigurationError(f"name a --holder for each of the {count} root keys, or none")
    if out_dir is not None and not out_dir.is_dir():
        raise ConfigurationError(f"{out_dir} is not a directory")
    keys = [SigningKey.generate(ROOT) for _ in range(count)]
    store = KeyStore(settings)
    files = tuple(
        write_private(out_dir / f"root-{key.keyid[:16]}.pem", key)
        if out_dir is not None
        else store.save_private(key)
        for key in keys
    )
    root = TrustRoot(
        threshold=threshold,
        keys=tuple(root_key(key, holders[i] if holders else "") for i, key in enumerate(keys)),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(root.model_dump_json(indent=2) + "\n")
    _log.info("trust_root_created", threshold=threshold, keys=count)
    return RootCreated(root, path, files)


# ---- proposing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    """A key change proposed, and the new private keys written for it on this machine."""

    change: KeyChange
    new_keys: tuple[SigningKey, ...] = ()


def _retired(key: TrustedKey) -> KeyState:
    return KeyState(
        keyid=key.keyid,
        public_key=key.public_key,
        owner=key.owner,
        status=KeyStatus.RETIRED,
        valid_from=key.valid_from,
    )


async def propose_new_keys(
    settings: Settings,
    owners: Sequence[str],
    now: dt.datetime,
    *,
    retire: bool,
    store: TrustStore | None = None,
    version: int | None = None,
) -> Proposal:
    """A change giving each owner a new active key; with ``retire`` their active keys
    retire in it (a rotation), without, an owner that has one is refused."""
    if store is None or version is None:
        state = await load_trust_state(settings)
        store, version = state.store, state.version
    states: list[KeyState] = []
    for owner in owners:
        active = store.active(owner)
        if active and not retire:
            raise ConfigurationError(
                f"{owner} already has active key {active[0].keyid}; to replace it run"
                f" `liaison keys rotate {owner_flag(owner)}`"
            )
        states.extend(_retired(old) for old in active)
    local = KeyStore(settings)
    keys = tuple(SigningKey.generate(owner) for owner in owners)
    for key in keys:
        local.save_private(key)
        states.append(KeyState.new(key))
    verb = "rotate" if retire else "generate"
    change = KeyChange(
        version=version + 1,
        keys=tuple(states),
        proposed_at=now,
        note=f"{verb} {', '.join(owners)}"[:500],
    )
    return Proposal(change, keys)


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


async def propose_revocation(
    settings: Settings,
    keyid: str,
    reason: str,
    now: dt.datetime,
    *,
    since: dt.datetime | None = None,
) -> Proposal:
    """A change revoking a key: nothing appended from ``since`` (default: when the change
    is appended) on verifies with it. Back-date ``since`` to the compromise."""
    if not reason.strip():
        raise ConfigurationError("a revocation needs a --reason")
    state = await load_trust_state(settings)
    key = resolve(state.store, keyid)
    if key.status is KeyStatus.REVOKED:
        raise ConfigurationError(f"key {key.keyid} was already revoked at {key.revoked_at}")
    if since is not None and since > now:
        raise ConfigurationError("a revocation cannot start in the future (--since)")
    revoked = KeyState(
        keyid=key.keyid,
        public_key=key.public_key,
        owner=key.owner,
        status=KeyStatus.REVOKED,
        valid_from=key.valid_from,
        revoked_at=since,
        revocation_reason=reason.strip()[:500],
    )
    change = KeyChange(
        version=state.version + 1,
        keys=(revoked,),
        proposed_at=now,
        note=f"revoke {key.owner} key {key.keyid[:16]}",
    )
    return Proposal(change)


# ---- files: a change in, a change out ------------------------------------------------------


def read_change(path: Path) -> SignedKeyChange:
    """The key change in ``path`` (the DSSE file ``propose`` writes and ``sign`` extends)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse_signed_change(data)
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not a key change file: {exc}") from None


def write_change(path: Path, signed: SignedKeyChange | KeyChange, *, replace: bool = False) -> Path:
    """Write a key change file (unsigned when given a bare ``KeyChange``).

    A new file is never written over an existing one unless ``replace`` (signing in place
    replaces the file atomically).
    """
    if isinstance(signed, KeyChange):
        signed = SignedKeyChange(signed, signed.payload(), ())
    path.parent.mkdir(parents=True, exist_ok=True)
    data = signed.envelope() + b"\n"
    if not replace:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise ConfigurationError(f"{path} exists; choose another --out") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def sign_change(settings: Settings, signed: SignedKeyChange, key: SigningKey) -> SignedKeyChange:
    """``signed`` with one more signature, by root key ``key`` (offline: no Kafka)."""
    root = load_root(settings)
    if root.get(key.keyid) is None:
        raise ConfigurationError(
            f"that key ({key.keyid[:16]}...) is not one of the root keys pinned in"
            f" {trust_root_path(settings)}"
        )
    return add_signature(signed, key)


# ---- applying ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    """A key change the bus applied: the statement and the trust store before and after."""

    change: KeyChange
    before: TrustStore
    after: TrustStore
    offset: int

    @property
    def new(self) -> tuple[TrustedKey, ...]:
        """Keys the change added."""
        return tuple(
            entry
            for state in self.change.keys
            if self.before.get(state.keyid) is None
            and (entry := self.after.get(state.keyid)) is not None
        )

    @property
    def changed(self) -> tuple[TrustedKey, ...]:
        """Keys the change retired or revoked (as they are now)."""
        return tuple(
            entry
            for state in self.change.keys
            if self.before.get(state.keyid) is not None
            and (entry := self.after.get(state.keyid)) is not None
        )


@dataclass(frozen=True, slots=True)
class Pending:
    """A change proposed but not applied: too few root keys on this machine to sign it."""

    change: KeyChange
    path: Path
    signed: int
    threshold: int
    new_keys: tuple[SigningKey, ...] = ()


def audit_records(
    change: KeyChange, before: TrustStore, at: dt.datetime, actor: str
) -> list[AuditRecord]:
    """The audit records of an applied change: a key generated, rotated (a new key with
    its owner's retired ones) or revoked."""
    retired: dict[str, list[str]] = {}
    for state in change.keys:
        if state.status is KeyStatus.RETIRED and before.get(state.keyid) is not None:
            retired.setdefault(state.owner, []).append(state.keyid)
    records: list[AuditRecord] = []
    for state in change.keys:
        if state.status is KeyStatus.ACTIVE and before.get(state.keyid) is None:
            olds = tuple(retired.get(state.owner, ()))
            if olds:
                records.append(
                    KeyRotated(
                        at=at, actor=actor, keyid=state.keyid, owner=state.owner,
                        retired_keyids=olds,
                    )
                )  # fmt: skip
            else:
                records.append(
                    KeyGenerated(at=at, actor=actor, keyid=state.keyid, owner=state.owner)
                )
        elif state.status is KeyStatus.REVOKED:
            records.append(
                KeyRevoked(
                    at=at, actor=actor, keyid=state.keyid, owner=state.owner,
                    reason=state.revocation_reason or "",
                )
            )  # fmt: skip
    return records


def _under_signed(signed: SignedKeyChange, root: TrustRoot) -> str | None:
    signers = len(signed.signers(root))
    if signers >= root.threshold:
        return None
    return (
        f"key change v{signed.change.version} is signed by {signers} of the {root.threshold}"
        f" root keys needed ({len(root.keys)} are pinned); each further root key holder"
        " runs `liaison keys sign FILE --root-key THEIR_KEY.pem`"
    )


_HINTS: Final = {
    KeyRefusal.ROLLBACK: "; another change was applied since it was proposed: propose it again",
    KeyRefusal.CONFLICT: "; see `liaison keys list`",
}


def _refused(refused: KeyRecordRefused, version: int) -> KeyChangeError:
    return KeyChangeError(
        f"key change v{version} is refused ({refused.reason.value}: {refused.detail})"
        + _HINTS.get(refused.reason, ""),
        refused.reason,
    )


async def apply_change(settings: Settings, signed: SignedKeyChange, now: dt.datetime) -> Applied:
    """Publish a signed change once it is signed enough and would be applied; return once
    a reader of ``liaison.keys`` applied it, with its operator-signed audit record(s)."""
    root = load_root(settings)
    problem = _under_signed(signed, root)
    if problem is not None:
        raise KeyChangeError(problem)
    change = signed.change
    store = KeyStore(settings)
    follower = TrustFollower(settings, root)
    await follower.start()
    try:
        before = follower.state
        judged = judge_key_record(signed.envelope(), now, root, before)
        if isinstance(judged, KeyRecordRefused):
            raise _refused(judged, change.version)
        # The operator's key signs the audit record; found before anything is published
        # (a change that makes the first operator key has it sign its own record).
        signer = signing_key_for(OPERATOR, settings, store, judged.store)
        offset = await publish_key_change(settings, signed)
        await follower.catch_up()
        refusal = follower.refusals.get(offset)
        if refusal is not None:
            raise _refused(refusal, change.version)
        after = follower.store
    finally:
        await follower.stop()
    await append_audit(settings, audit_records(change, before.store, now, operator()), signer)
    store.save_trust(after)
    for state in change.keys:
        # Public key ids only: private keys are never logged.
        _log.info(
            "key_changed", keyid=state.keyid, owner=state.owner, status=state.status.value,
            version=change.version,
        )  # fmt: skip
    return Applied(change, before.store, after, offset)


async def commit(settings: Settings, proposal: Proposal, now: dt.datetime) -> Applied | Pending:
    """Sign ``proposal`` with the root keys on this machine and apply it if they are
    enough; otherwise leave it, with what was signed here, in the key store's proposals."""
    root = load_root(settings)
    store = KeyStore(settings)
    local = store.root_keys(root)
    signed = SignedKeyChange(proposal.change, proposal.change.payload(), ())
    for key in local[: root.threshold]:
        signed = add_signature(signed, key)
    if len(local) < root.threshold:
        path = write_change(store.proposal_path(proposal.change.version), signed, replace=True)
        return Pending(proposal.change, path, len(local), root.threshold, proposal.new_keys)
    try:
        return await apply_change(settings, signed, now)
    except (KeyChangeError, ConfigurationError):
        for key in proposal.new_keys:  # never trusted: leave nothing behind
            store.delete_private(key)
        raise


async def generate(settings: Settings, owner: str, now: dt.datetime) -> Applied | Pending:
    """A first key for ``owner``; refused when it already has an active one."""
    return await commit(settings, await propose_new_keys(settings, [owner], now, retire=False), now)


async def rotate(settings: Settings, owner: str, now: dt.datetime) -> Applied | Pending:
    """A new active key for ``owner``; its previous keys retire (still verify the past)."""
    return await commit(settings, await propose_new_keys(settings, [owner], now, retire=True), now)


async def revoke(
    settings: Settings,
    keyid: str,
    reason: str,
    now: dt.datetime,
    *,
    since: dt.datetime | None = None,
) -> Applied | Pending:
    """Revoke a key: nothing appended from ``since`` (default: now) on verifies with it."""
    proposal = await propose_revocation(settings, keyid, reason, now, since=since)
    return await commit(settings, proposal, now)


async def register(
    settings: Settings, keys: Sequence[KeyState], now: dt.datetime, note: str = ""
) -> Applied:
    """Apply a change of exactly ``keys`` (e.g. a public key made elsewhere), signed by
    the root keys on this machine; refused unless they meet the threshold."""
    state = await load_trust_state(settings)
    change = KeyChange(version=state.version + 1, keys=tuple(keys), proposed_at=now, note=note)
    done = await commit(settings, Proposal(change), now)
    if isinstance(done, Pending):
        raise KeyChangeError(
            f"only {done.signed} of the {done.threshold} root keys needed are on this machine;"
            f" the change is left in {done.path}"
        )
    return done


async def ensure_keys(
    settings: Settings, owners: tuple[str, ...], now: dt.datetime
) -> dict[str, SigningKey]:
    """A usable signing key for each owner: the active one here, else a new one (demo,
    tests, benchmarks). Local development only: a missing root is made (1-of-1, its key in
    the local store), then one key change gives every owner that lacks a key here, and the
    operator (who signs its audit record), a new one."""
    if settings.trust_root is None and not trust_root_path(settings).exists():
        init_root(settings, 1, 1, holders=("local development",))
    state = await load_trust_state(settings)
    store = KeyStore(settings)
    wanted = tuple(dict.fromkeys((OPERATOR, *owners)))
    missing = [owner for owner in wanted if store.active(owner, state.store) is None]
    trust = state.store
    if missing:
        proposal = await propose_new_keys(
            settings, missing, now, retire=True, store=state.store, version=state.version
        )
        done = await commit(settings, proposal, now)
        if isinstance(done, Pending):
            raise KeyChangeError(
                f"only {done.signed} of the {done.threshold} root keys needed are on this"
                f" machine; sign and apply {done.path} (`liaison keys sign`, `liaison keys apply`)"
            )
        trust = done.after
    keys: dict[str, SigningKey] = {}
    for owner in owners:
        key = store.active(owner, trust)
        if key is None:  # pragma: no cover - the change above made one
            raise ConfigurationError(f"no active signing key for {owner} on this machine")
        keys[owner] = key
    return keys
