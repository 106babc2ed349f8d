"""Auditor tools: verify the whole log, prove inclusion and consistency, ask who saw what.

``verify`` rebuilds the Merkle tree from ``liaison.audit`` itself and checks it against
three things: every leaf in the store (same record, same hash, same sequence), every
signed checkpoint on ``liaison.audit.checkpoints`` (signature by a key the bus trusts
for itself, and the root at that size), and the count (a checkpoint beyond the end of
the log means the log was truncated). The first divergence is reported with its
sequence number.

A value on the log that is not an audit record is a leaf like any other (the tree is
over bytes); ``verify`` judges each one itself and counts the invalid ones, which are no
divergence while the log and the store agree on their bytes.

Proofs are JSON documents (``schemas.audit_proof``) that ``check_proof`` verifies offline
with nothing but the checkpoint signer's verifier key (``liaison audit verifier-key``);
docs/audit.md shows the format and the same check in a few lines of Python.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from schemas.audit import InvalidRecord, check_actor, judge_record, leaf_data, split_leaf
from schemas.audit_proof import (
    CONSISTENCY,
    INCLUSION,
    MAX_PROOF_BYTES,
    ConsistencyProof,
    InclusionProof,
    LeafProof,
    ProofDocument,
    parse_proof,
)
from schemas.checkpoint import (
    Checkpoint,
    CheckpointError,
    note_verifier_key,
    parse_verifier_key,
    verify_checkpoint,
)
from schemas.errors import ConfigurationError, SchemaError
from schemas.keys import BUS, TrustStore
from schemas.merkle import (
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from services.audit_service import audit_origin
from services.audit_store import SqliteAuditStore, StoredLeaf, utc_text
from services.kafka import UnparseableRecord, assigned, catch_up, end_offsets
from services.settings import Settings

__all__ = [
    "CONSISTENCY",
    "INCLUSION",
    "Divergence",
    "VerifyReport",
    "activity",
    "check_proof",
    "consistency",
    "event_id_text",
    "leaves_about",
    "prove",
    "read_proof",
    "since_text",
    "verifier_keys",
    "verify_log",
]


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first place the log, the store and the checkpoints disagree."""

    position: int | None
    detail: str


@dataclass(slots=True)
class VerifyReport:
    """What ``verify_log`` checked, and the first divergence if any; ``invalid_records``
    counts the leaves whose value is not an audit record, ``unparseable`` the records the
    Kafka client could not parse (no leaves, for the audit service nor for this check)."""

    leaves: int = 0
    checkpoints: int = 0
    invalid_records: int = 0
    unparseable: int = 0
    divergence: Divergence | None = None
    checkpoint_sizes: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether everything agreed."""
        return self.divergence is None


def verifier_keys(settings: Settings, trust: TrustStore) -> list[str]:
    """The signed-note verifier keys of every bus key (any status): checkpoint signers."""
    origin = audit_origin(settings)
    return [
        note_verifier_key(origin, base64.b64decode(k.public_key))
        for k in trust.keys
        if k.owner == BUS
    ]


def _open_checkpoint(text: str, keys: list[str]) -> Checkpoint:
    for vkey in keys:
        name, raw = parse_verifier_key(vkey)
        try:
            return verify_checkpoint(text, raw, name, origin=name)
        except CheckpointError:
            continue
    raise CheckpointError("no key the bus trusts for itself signed this checkpoint")


async def _checkpoints(
    settings: Settings, keys: list[str]
) -> tuple[dict[int, Checkpoint], list[str]]:
    found: dict[int, Checkpoint] = {}
    bad: list[str] = []
    async with assigned(settings, settings.topics.audit_checkpoints) as consumer:
        async for batch in catch_up(consumer):
            for raw in batch:
                try:
                    cp = _open_checkpoint((raw.value or b"").decode(errors="replace"), keys)
                except CheckpointError as exc:
                    bad.append(f"checkpoint record at offset {raw.offset}: {exc}")
                    continue
                if cp.size in found and found[cp.size].root != cp.root:
                    bad.append(f"two signed checkpoints of size {cp.size} disagree on the root")
                found[cp.size] = cp
    return found, bad


async def verify_log(
    settings: Settings,
    store: SqliteAuditStore,
    trust: TrustStore,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> VerifyReport:
    """Rebuild the tree from the log; compare with the store and every signed checkpoint."""
    report = VerifyReport()
    checkpoints, bad = await _checkpoints(settings, verifier_keys(settings, trust))
    report.checkpoints = len(checkpoints)
    report.checkpoint_sizes = sorted(checkpoints)
    if bad:
        report.divergence = Divergence(None, bad[0])
        return report
    total = sum((await end_offsets(settings, [settings.topics.audit])).values())
    stored: Iterator[StoredLeaf] = store.leaves()
    compact = CompactRange()
    seq = 0
    async with assigned(settings, settings.topics.audit) as consumer:
        async for batch in catch_up(consumer):
            for raw in batch:
                if isinstance(raw, UnparseableRecord):
                    report.unparseable += 1  # no leaf: the audit service skips it too
                    continue
                value: bytes = raw.value or b""
                divergence = _check_leaf(seq, value, next(stored, None))
                if divergence is not None:
                    report.divergence = divergence
                    return report
                if isinstance(judge_record(value), InvalidRecord):
                    report.invalid_records += 1
                compact.append(leaf_hash(leaf_data(seq, value)))
                seq += 1
                cp = checkpoints.get(compact.size)
                if cp is not None and cp.root != compact.root():
                    report.divergence = Divergence(
                        compact.size - 1,
                        f"the log's first {cp.size} records do not have the root signed in"
                        f" the checkpoint of size {cp.size}",
                    )
                    return report
            progress(seq, total)
    report.leaves = seq
    extra = next(stored, None)
    if extra is not None:
        report.divergence = Divergence(
            extra.seq, f"the store holds leaf {extra.seq}, beyond the end of the log ({seq})"
        )
    beyond = [size for size in checkpoints if size > seq]
    if report.divergence is None and beyond:
        report.divergence = Divergence(
            seq,
            f"a signed checkpoint covers {max(beyond)} records but the log has only {seq}:"
            " records were removed from its end",
        )
    return report


def _check_leaf(seq: int, value: bytes, stored: StoredLeaf | None) -> Divergence | None:
    if stored is None:
        return Divergence(seq, f"the store ends before leaf {seq} (leaves removed from its end?)")
    if stored.seq != seq:
        return Divergence(seq, f"the store has no leaf {seq}; its next leaf is {stored.seq}")
    if stored.record != value:
        return Divergence(seq, f"leaf {seq}: the stored record differs from the log's")
    if stored.leaf_hash != leaf_hash(leaf_data(seq, value)):
        return Divergence(seq, f"leaf {seq}: the stored hash is not the hash of its record")
    return None


def _latest_signed(store: SqliteAuditStore) -> tuple[int, str]:
    latest = store.latest_checkpoint()
    if latest is None:
        raise ConfigurationError("no checkpoint yet: run `liaison audit checkpoint` first")
    return latest.size, latest.note


def prove(
    settings: Settings, store: SqliteAuditStore, trust: TrustStore, event_id: str
) -> InclusionProof:
    """Inclusion proofs of every record about ``event_id`` against the latest checkpoint."""
    event_id = event_id_text(event_id)
    size, note = _latest_signed(store)
    seqs = store.seqs_for_event(event_id)
    if not seqs:
        raise ConfigurationError(f"no audit record concerns event {event_id}")
    hashes = store.leaf_hashes(size)
    proofs = [
        LeafProof(
            seq=leaf.seq,
            leaf=base64.b64encode(leaf_data(leaf.seq, leaf.record)).decode(),
            proof=tuple(h.hex() for h in inclusion_proof(hashes, leaf.seq)),
        )
        for leaf in _leaves_at(store, [s for s in seqs if s < size])
    ]
    return InclusionProof(
        event_id=event_id,
        checkpoint=note,
        verifier_keys=tuple(verifier_keys(settings, trust)),
        proofs=tuple(proofs),
        not_yet_checkpointed=tuple(s for s in seqs if s >= size),
    )


def _leaves_at(store: SqliteAuditStore, seqs: list[int]) -> Iterator[StoredLeaf]:
    """The stored leaves at ``seqs`` (ascending), each read on its own."""
    for seq in seqs:
        yield from store.leaves(seq, seq + 1)


def consistency(
    settings: Settings, store: SqliteAuditStore, trust: TrustStore, old_size: int, new_size: int
) -> ConsistencyProof:
    """A consistency proof between two signed checkpoints of the log."""
    notes = {cp.size: cp.note for cp in store.checkpoints()}
    for size in (old_size, new_size):
        if size not in notes:
            sizes = ", ".join(str(s) for s in sorted(notes)) or "none yet"
            raise ConfigurationError(f"no signed checkpoint of size {size} (checkpoints: {sizes})")
    if old_size > new_size:
        raise ConfigurationError("OLD_SIZE must not be larger than NEW_SIZE")
    proof = consistency_proof(store.leaf_hashes(new_size), old_size)
    return ConsistencyProof(
        old_checkpoint=notes[old_size],
        new_checkpoint=notes[new_size],
        verifier_keys=tuple(verifier_keys(settings, trust)),
        proof=tuple(h.hex() for h in proof),
    )


def check_proof(document: ProofDocument, verifier_key: str) -> list[str]:
    """Verify a parsed proof document offline with one verifier key; return what it proves.

    Raises ``ProofError``, ``CheckpointError`` or ``SchemaError`` (all ``LiaisonError``)
    when it fails; nothing else, whatever the document holds.
    """
    name, raw = parse_verifier_key(verifier_key)
    if isinstance(document, InclusionProof):
        cp = verify_checkpoint(document.checkpoint, raw, name)
        lines = [f"checkpoint {cp.origin} size {cp.size}: signature OK"]
        for item in document.proofs:
            data = item.leaf_data()
            seq, record = split_leaf(data)
            if seq != item.seq:
                raise ProofError(f"leaf data says seq {seq}, the proof says {item.seq}")
            verify_inclusion(leaf_hash(data), seq, cp.size, item.path(), cp.root)
            lines.append(f"leaf {seq}: {_described(record)}: included")
        return lines
    old = verify_checkpoint(document.old_checkpoint, raw, name)
    new = verify_checkpoint(document.new_checkpoint, raw, name, origin=old.origin)
    verify_consistency(old.size, new.size, old.root, new.root, document.path())
    return [f"checkpoints {old.size} and {new.size} of {old.origin}: consistent (append-only)"]


def _described(record: bytes) -> str:
    judged = judge_record(record)
    if isinstance(judged, InvalidRecord):
        return f"a value that is not an audit record ({judged.reason.value})"
    return f"{judged.action} by {judged.actor} at {judged.at.isoformat()}"


def read_proof(path: Path) -> ProofDocument:
    """The proof document in the file at ``path``, read no further than the size limit
    (``/dev/zero`` ends too); ``ProofError`` if it is not one, ``OSError`` if unreadable."""
    with path.open("rb") as file:
        data = file.read(MAX_PROOF_BYTES + 1)
    return parse_proof(data)


def event_id_text(text: str) -> str:
    """An event id as typed (any case, hyphens or not) in the store's canonical form;
    ``SchemaError`` if it is not a UUID."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        msg = "EVENT_ID must be an event's UUID (e.g. 6f1c0d2e-0c5e-4e0e-9b1e-2b0b1c8d6e77)"
        raise SchemaError(msg) from None


def leaves_about(store: SqliteAuditStore, event_id: str) -> list[StoredLeaf]:
    """Every stored record that concerns ``event_id``, in order (never an invalid leaf);
    ``SchemaError`` if ``event_id`` is not a UUID."""
    return list(_leaves_at(store, store.seqs_for_event(event_id_text(event_id))))


def activity(
    store: SqliteAuditStore, actor: str, since: dt.datetime | None = None
) -> list[StoredLeaf]:
    """Every stored record of ``actor`` (at or after ``since``), oldest first;
    ``SchemaError`` if ``actor`` is not ``<kind>:<name>``."""
    return list(store.by_actor(check_actor(actor), since_text(since)))


def since_text(since: dt.datetime | None) -> str | None:
    """A ``--since`` time in the store's fixed-width UTC form (``AuditStoreError`` if it
    cannot be one)."""
    return utc_text(since) if since else None
