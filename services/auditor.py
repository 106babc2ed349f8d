"""Auditor tools: verify the whole log, prove inclusion and consistency, ask who saw what.

``verify`` rebuilds the Merkle tree from ``liaison.audit`` itself and checks it against
three things: every leaf in the store, every signed checkpoint on
``liaison.audit.checkpoints`` (signature by an audit key, owner ``audit``, and the root at
that size), and the count (a checkpoint beyond the end of the log means the log was
truncated). For every leaf it derives again, from the value's bytes, its append time and
the trust store, everything the store keeps as an index (``audit_service.leaf_row``):
hash, sequence, offset, time, actor, signer, invalid reason and event ids; any
difference (an edited ``actor``, a deleted ``leaf_events`` row, a row added for a leaf
that does not exist) is a divergence, reported with the first leaf it concerns. One
difference is not: a leaf the store holds valid that today's trust store refuses only
because its signer has been revoked or retired since, back to before that leaf (``keys
revoke --since``, the documented recovery), is counted as *invalidated since by a key
change*, once the rest of its row is checked against the judgement the store made.

A value on the log that is not a valid signed audit record is a leaf like any other
(the tree is over bytes): ``verify`` reports how many there are by reason (unsigned,
forged, back-dated...), a finding, not a divergence, while the store agrees.

Deriving a leaf's row costs about 0.2 ms of CPU (an Ed25519 verify is over half of it),
so on a long log ``verify`` derives the rows in a worker process per core, a chunk of
records at a time, while this process reads Kafka and the store; it alone compares,
counts and hashes the rows, in log order, so the report does not depend on where a row
was derived.

Proofs are JSON documents (``schemas.audit_proof``) that ``check_proof`` verifies offline
with nothing but a verifier key the auditor obtained independently (``liaison audit
verifier-key``) and, for an inclusion proof, the signers' public keys (``liaison keys
export``, also obtained out of band): every proven leaf must be a record signed by one of
those keys, entitled to its actor and valid at its ``at``, that names the event the
proof is about (inclusion only proves bytes were appended, and anyone can append).
docs/audit.md shows the format, and docs/check_proof.py the same check in a few lines
of Python. A proof is built from the O(log n) complete subtrees the store keeps
(``SqliteAuditStore.nodes``), never from every leaf hash: the same proof, in milliseconds
however long the log.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import itertools
import multiprocessing
import operator
import os
import uuid
from collections import Counter, deque
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeAlias

from schemas.audit import (
    AuditRecord,
    InvalidReason,
    InvalidRecord,
    check_actor,
    judge_record,
    judge_sealed_as_claimed,
    leaf_data,
    split_leaf,
    unsealed,
)
from schemas.audit_proof import (
    CONSISTENCY,
    INCLUSION,
    MAX_PROOF_BYTES,
    ConsistencyProof,
    InclusionProof,
    LeafProof,
    ProofDocument,
    parse_proof,
    parse_signers,
)
from schemas.checkpoint import (
    Checkpoint,
    CheckpointError,
    note_verifier_key,
    parse_verifier_key,
    verify_checkpoint,
)
from schemas.envelope import parse_dsse
from schemas.errors import ConfigurationError, EnvelopeError, SchemaError
from schemas.keys import AUDIT, KeyStatus, TrustStore
from schemas.merkle import (
    CompactRange,
    NodeId,
    NodeReader,
    ProofError,
    consistency_nodes,
    consistency_proof_from_nodes,
    inclusion_nodes,
    inclusion_proof,
    inclusion_proof_from_nodes,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from schemas.records import InboundRecord
from services.audit_service import audit_origin, judge_value, leaf_row
from services.audit_store import SqliteAuditStore, StoredLeaf, utc_text
from services.kafka import UnparseableRecord, assigned, catch_up, end_offsets, inbound
from services.settings import Settings

__all__ = [
    "CHUNK",
    "CONSISTENCY",
    "INCLUSION",
    "PARALLEL_FROM",
    "Divergence",
    "VerifyReport",
    "activity",
    "check_proof",
    "consistency",
    "cores",
    "event_id_text",
    "inclusion_document",
    "index_difference",
    "invalidated_since",
    "judged_rows",
    "latest_signed",
    "leaves_about",
    "prove",
    "read_proof",
    "read_signers",
    "reassembled",
    "signer_refusal",
    "since_text",
    "verifier_keys",
    "verify_log",
    "worker_count",
]


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first place the log, the store and the checkpoints disagree."""

    position: int | None
    detail: str


@dataclass(slots=True)
class VerifyReport:
    """What ``verify_log`` checked, and the first divergence if any; ``invalid`` counts
    the leaves whose value is not a valid signed audit record, by reason code;
    ``unparseable`` the records the Kafka client could not parse (no leaves, for the
    audit service nor for this check); ``invalidated`` the leaves the store holds valid
    that today's trust store refuses only because their signer was revoked or retired
    since (``first_invalidated`` the first of them)."""

    leaves: int = 0
    checkpoints: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    unparseable: int = 0
    invalidated: int = 0
    first_invalidated: int | None = None
    divergence: Divergence | None = None
    checkpoint_sizes: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether everything agreed."""
        return self.divergence is None

    def count(self, seq: int, invalid: str | None, *, invalidated: bool) -> None:
        """Count leaf ``seq``: invalid by ``invalid``, or invalidated since."""
        if invalidated:
            self.invalidated += 1
            if self.first_invalidated is None:
                self.first_invalidated = seq
        elif invalid is not None:
            self.invalid[invalid] += 1

    @property
    def invalid_records(self) -> int:
        """How many leaves are invalid, whatever the reason."""
        return sum(self.invalid.values())


def verifier_keys(settings: Settings, trust: TrustStore) -> list[str]:
    """The signed-note verifier keys of every audit key (owner ``audit``, any status):
    the checkpoint signers. Never the router's key, which signs JTAI considerations."""
    origin = audit_origin(settings)
    return [
        note_verifier_key(origin, base64.b64decode(k.public_key))
        for k in trust.keys
        if k.owner == AUDIT
    ]


def _open_checkpoint(text: str, keys: list[str]) -> Checkpoint:
    for vkey in keys:
        name, raw = parse_verifier_key(vkey)
        try:
            return verify_checkpoint(text, raw, name, origin=name)
        except CheckpointError:
            continue
    raise CheckpointError("no audit key the bus trusts signed this checkpoint")


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


PARALLEL_FROM: Final = 20_000
"""From this many records on the audit topic, ``verify_log`` derives the leaves' rows in
worker processes by default: starting them costs about a second of CPU (a fresh
interpreter each, importing Liaison), which a shorter log would not win back."""

CHUNK: Final = 1_000
"""Records sent to a worker at a time (by default): a fifth of a second of its work, so
that the pickling around it is noise and this process hears back often."""


async def verify_log(
    settings: Settings,
    store: SqliteAuditStore,
    trust: TrustStore,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
    workers: int | None = None,
    chunk: int = CHUNK,
) -> VerifyReport:
    """Rebuild the tree from the log; compare with the store and every signed checkpoint.

    Each leaf's row is derived again from the log's value (its signature checked against
    ``trust`` at its append time) in ``workers`` other processes, ``chunk`` records at a
    time, or in this one when ``workers`` is 0; by default in one process per core once
    the log holds ``PARALLEL_FROM`` records, here below that. Where it is derived changes
    nothing else: every row is compared, counted and hashed into the tree here, in log
    order, so the report is the same either way.
    """
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
    reading = _read_log(settings, trust, worker_count(total, workers), max(chunk, 1))
    async with aclosing(reading) as batches:
        async for batch in batches:
            for item in batch:
                if item is None:
                    report.unparseable += 1  # no leaf: the audit service skips it too
                    continue
                record, judged = item
                held = next(stored, None)
                derived, invalidated = _derived(seq, record, held, trust, judged)
                divergence = _check_leaf(seq, derived, held)
                if divergence is not None:
                    report.divergence = divergence
                    return report
                report.count(seq, derived.invalid, invalidated=invalidated)
                compact.append(derived.leaf_hash)
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
    stray = store.stray_event_seq()
    if extra is not None:
        report.divergence = Divergence(
            extra.seq, f"the store holds leaf {extra.seq}, beyond the end of the log ({seq})"
        )
    elif stray is not None:
        report.divergence = Divergence(
            stray, f"the store's event index names leaf {stray}, which the log does not have"
        )
    beyond = [size for size in checkpoints if size > seq]
    if report.divergence is None and beyond:
        report.divergence = Divergence(
            seq,
            f"a signed checkpoint covers {max(beyond)} records but the log has only {seq}:"
            " records were removed from its end",
        )
    return report


_Item: TypeAlias = tuple[InboundRecord, StoredLeaf | None] | None
"""One record of the log as read, in order: None for a record the Kafka client could not
parse (no leaf), else the record and its row derived with today's trust store (None if
it is to be derived in this process, when it is reached)."""


def cores() -> int:
    """The cores this process may run on (``os.process_cpu_count`` from Python 3.13)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(total: int, workers: int | None = None) -> int:
    """How many worker processes derive the rows of a log of ``total`` records: ``workers``
    if given, else one per core from ``PARALLEL_FROM`` records on (0: none, this process
    derives them; so too on one core, where a worker would only add its pickling)."""
    if workers is not None:
        return max(workers, 0)
    count = cores()
    return count if total >= PARALLEL_FROM and count > 1 else 0


_Row: TypeAlias = tuple[bytes, str, str, tuple[str, ...], str | None, str | None]
"""A derived row as a worker sends it back: what ``leaf_row`` adds to the record (hash,
at, actor, event ids, invalid, signer); the record's bytes are not sent back."""


async def _read_log(
    settings: Settings, trust: TrustStore, workers: int, chunk: int
) -> AsyncGenerator[list[_Item], None]:
    """The audit topic from its start to its end now, in batches of ``_Item``. With
    ``workers``, the rows are derived in that many processes, a chunk of records at a
    time, a few chunks ahead of the batch given out; batches are given in log order,
    never as chunks finish."""
    async with assigned(settings, settings.topics.audit) as consumer:
        if not workers:
            async for batch in catch_up(consumer):
                yield [
                    None if isinstance(raw, UnparseableRecord) else (inbound(raw), None)
                    for raw in batch
                ]
            return
        # Spawned, not forked: this process runs an event loop and the Kafka client,
        # whose state a fork would copy mid-flight.
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        loop = asyncio.get_running_loop()
        sent: deque[tuple[int, list[InboundRecord | None], asyncio.Future[list[_Row]]]]
        sent = deque()
        pending: list[InboundRecord | None] = []
        first = 0  # the seq of the first record of the next chunk sent

        def send(part: list[InboundRecord | None]) -> None:
            nonlocal first
            # Sent as plain tuples: a dataclass costs ten times as much to pickle.
            records = [_sent(record) for record in part if record is not None]
            rows = loop.run_in_executor(pool, judged_rows, first, records, trust)
            sent.append((first, part, rows))
            first += len(records)

        async def received() -> list[_Item]:
            seq, part, rows = sent.popleft()
            try:
                return reassembled(seq, part, await rows)
            except BrokenExecutor:
                # A worker died (killed, out of memory): this process derives the rows.
                return reassembled(seq, part, None)

        try:
            async for batch in catch_up(consumer):
                pending.extend(
                    None if isinstance(raw, UnparseableRecord) else inbound(raw) for raw in batch
                )
                while len(pending) >= chunk:
                    send(pending[:chunk])
                    del pending[:chunk]
                while sent and (len(sent) > 2 * workers or sent[0][2].done()):
                    yield await received()
            if pending:
                send(pending)
            while sent:
                yield await received()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


_sent: Final[Callable[[InboundRecord], tuple[object, ...]]] = operator.attrgetter(
    *(f.name for f in dataclasses.fields(InboundRecord))
)
"""An inbound record as the tuple of its fields, in order (``InboundRecord(*fields)``)."""


def judged_rows(first: int, records: list[tuple[Any, ...]], trust: TrustStore) -> list[_Row]:
    """The rows of leaves ``first, first + 1...`` derived with ``trust`` from ``records``
    (each the fields of an ``InboundRecord``), in a worker process."""
    rows: list[_Row] = []
    for seq, fields in enumerate(records, first):
        record = InboundRecord(*fields)
        row = leaf_row(seq, record, judge_value(record, trust))
        rows.append((row.leaf_hash, row.at, row.actor, row.event_ids, row.invalid, row.signer))
    return rows


def reassembled(
    first: int, records: Sequence[InboundRecord | None], rows: Sequence[_Row] | None
) -> list[_Item]:
    """The items of ``records`` (None: unparseable) given ``rows``, what a worker derived
    for the parseable ones in order, the first of them leaf ``first``; with ``rows``
    None, items whose row is still to be derived (pure)."""
    judged: Iterator[_Row | None] = itertools.repeat(None) if rows is None else iter(rows)
    items: list[_Item] = []
    seq = first
    for record in records:
        if record is None:
            items.append(None)
            continue
        row = next(judged)
        if row is None:
            items.append((record, None))
        else:
            leaf_hash_, at, actor, event_ids, invalid, signer = row
            items.append((record, StoredLeaf(
                seq=seq, kafka_offset=record.offset, record=record.value, leaf_hash=leaf_hash_,
                at=at, actor=actor, event_ids=event_ids, invalid=invalid, signer=signer,
            )))  # fmt: skip
        seq += 1
    return items


def _derived(
    seq: int,
    record: InboundRecord,
    held: StoredLeaf | None,
    trust: TrustStore,
    judged: StoredLeaf | None = None,
) -> tuple[StoredLeaf, bool]:
    """Leaf ``seq``'s row derived again from the log (``judged``: as a worker already
    derived it with ``trust``), and whether it is invalidated since by a key change (then
    derived as the audit service judged it, before that change: every other field must
    still agree with the store, or it is a divergence)."""
    derived = leaf_row(seq, record, judge_value(record, trust)) if judged is None else judged
    signer = invalidated_since(held, derived)
    if signer is None:
        return derived, False
    return leaf_row(seq, record, judge_value(record, unrevoked(trust, signer))), True


def invalidated_since(stored: StoredLeaf | None, derived: StoredLeaf) -> str | None:
    """The signer's key id if the store holds this leaf valid and the log's value is
    refused now only as ``key_not_valid`` by that same signer (revoked or retired since,
    back to before the leaf); None otherwise (pure)."""
    if (
        stored is None
        or stored.invalid is not None
        or derived.invalid != InvalidReason.KEY_NOT_VALID.value
        or derived.signer is None
        or derived.signer != stored.signer
    ):
        return None
    return derived.signer


def unrevoked(trust: TrustStore, keyid: str) -> TrustStore:
    """``trust`` with key ``keyid`` as it was before it was revoked or retired (its
    ``valid_from`` unchanged): the trust the audit service judged an older leaf by."""
    key = trust.get(keyid)
    if key is None:
        return trust
    return trust.with_key(
        key.model_copy(
            update={
                "status": KeyStatus.ACTIVE,
                "valid_until": None,
                "revoked_at": None,
                "revocation_reason": None,
            }
        )
    )


def signer_refusal(leaf: StoredLeaf, at: dt.datetime, trust: TrustStore) -> str | None:
    """Why today's trust store refuses the signer of a stored valid leaf at the record's
    ``at`` ("signer revoked", "signer retired", "signer unknown"), or None (pure)."""
    key = None if leaf.signer is None else trust.get(leaf.signer)
    if key is None:
        return "signer unknown"
    if key.refuses_at(at) is None:
        return None
    if key.revoked_at is not None and at >= key.revoked_at:
        return "signer revoked"
    return "signer retired" if key.status is KeyStatus.RETIRED else "signer not yet valid"


def _check_leaf(seq: int, derived: StoredLeaf, stored: StoredLeaf | None) -> Divergence | None:
    if stored is None:
        return Divergence(seq, f"the store ends before leaf {seq} (leaves removed from its end?)")
    if stored.seq != seq:
        return Divergence(seq, f"the store has no leaf {seq}; its next leaf is {stored.seq}")
    difference = index_difference(stored, derived)
    return None if difference is None else Divergence(seq, f"leaf {seq}: {difference}")


# A key the audit service did not know when it judged a value may be registered later,
# valid only from then on: the value is still invalid, now as "key not valid then".
_LATER_KNOWN: Final = (InvalidReason.UNKNOWN_KEY.value, InvalidReason.KEY_NOT_VALID.value)


def index_difference(stored: StoredLeaf, derived: StoredLeaf) -> str | None:
    """What the store says about a leaf that the log does not (pure); None if they agree.

    ``derived`` is ``audit_service.leaf_row`` of the log's value. Words name the field,
    never its contents: a stored value may be anything.
    """
    later_known = (stored.invalid, derived.invalid) == _LATER_KNOWN and stored.signer is None
    checks = (
        (stored.record == derived.record, "the stored record differs from the log's"),
        (stored.leaf_hash == derived.leaf_hash, "the stored hash is not the hash of its record"),
        (
            stored.kafka_offset == derived.kafka_offset,
            "the stored Kafka offset is not where the log holds the record",
        ),
        (stored.invalid == derived.invalid or later_known, _invalid_difference(stored, derived)),
        (stored.signer == derived.signer or later_known, _differs("signer (key id)")),
        (stored.actor == derived.actor, _differs("actor")),
        (stored.at == derived.at, _differs("time (at)")),
        (stored.event_ids == derived.event_ids, _differs("event ids (leaf_events rows)")),
    )
    return next((what for agree, what in checks if not agree), None)


def _differs(what: str) -> str:
    return f"the stored {what} differs from what the log's value says"


def _invalid_difference(stored: StoredLeaf, derived: StoredLeaf) -> str:
    if derived.invalid is None:
        return "the store marks a valid signed record invalid"
    if stored.invalid is None:
        return f"the store indexes a value the log holds invalid ({derived.invalid})"
    return f"the stored invalid reason is not the log's ({derived.invalid})"


def latest_signed(store: SqliteAuditStore) -> tuple[int, str]:
    """The size and signed note of the latest checkpoint; ``ConfigurationError`` if none."""
    latest = store.latest_checkpoint()
    if latest is None:
        raise ConfigurationError("no checkpoint yet: run `liaison audit checkpoint` first")
    return latest.size, latest.note


def prove(
    settings: Settings, store: SqliteAuditStore, trust: TrustStore, event_id: str
) -> InclusionProof:
    """Inclusion proofs of every record about ``event_id`` against the latest checkpoint."""
    event_id = event_id_text(event_id)
    size, note = latest_signed(store)
    seqs = store.seqs_for_event(event_id)
    if not seqs:
        raise ConfigurationError(f"no audit record concerns event {event_id}")
    return inclusion_document(settings, store, trust, event_id, seqs=seqs, checkpoint=(size, note))


def inclusion_document(
    settings: Settings,
    store: SqliteAuditStore,
    trust: TrustStore,
    event_id: str,
    *,
    seqs: list[int],
    checkpoint: tuple[int, str],
    hashes: list[bytes] | None = None,
) -> InclusionProof:
    """Inclusion proofs of leaves ``seqs`` about ``event_id`` against ``checkpoint``
    (size, signed note); invalid leaves, leaves whose signed record does not name the
    event (an index edited by hand) and leaves whose signer today's trust store refuses
    at the record's time (revoked since) are left out, and those beyond the checkpoint
    are listed as
    ``not_yet_checkpointed``. The paths are read from the store's Merkle nodes (O(log n)
    rows per leaf), or computed from ``hashes``, the first ``size`` leaf hashes, if the
    caller has them already: the same paths either way."""
    size, note = checkpoint
    leaves = [
        leaf
        for leaf in _leaves_at(store, [s for s in seqs if s < size])
        if _provable(leaf, event_id, trust)
    ]
    paths = (
        _inclusion_paths(store, [leaf.seq for leaf in leaves], size)
        if hashes is None
        else [inclusion_proof(hashes, leaf.seq) for leaf in leaves]
    )
    proofs = [
        LeafProof(
            seq=leaf.seq,
            leaf=base64.b64encode(leaf_data(leaf.seq, leaf.record)).decode(),
            proof=tuple(h.hex() for h in path),
        )
        for leaf, path in zip(leaves, paths, strict=True)
    ]
    return InclusionProof(
        event_id=event_id,
        checkpoint=note,
        verifier_keys=tuple(verifier_keys(settings, trust)),
        proofs=tuple(proofs),
        not_yet_checkpointed=tuple(s for s in seqs if s >= size),
    )


def _inclusion_paths(
    store: SqliteAuditStore, seqs: list[int], size: int
) -> list[tuple[bytes, ...]]:
    """The audit paths of leaves ``seqs`` in the tree of ``size`` leaves, from one read of
    the nodes they need."""
    node = _node_reader(store, (n for seq in seqs for n in inclusion_nodes(seq, size)))
    return [inclusion_proof_from_nodes(node, seq, size) for seq in seqs]


def _node_reader(store: SqliteAuditStore, ids: Iterable[NodeId]) -> NodeReader:
    """Read these nodes from the store now (``AuditStoreError`` if one is missing); the
    proof builders then look them up."""
    found = store.nodes(ids)
    return lambda level, index: found[NodeId(level, index)]


def _provable(leaf: StoredLeaf, event_id: str, trust: TrustStore) -> bool:
    """Whether a stored leaf is a valid record about ``event_id`` whose signer is still
    good at its time: what ``check_proof`` with today's keys accepts."""
    record = _record_in(leaf.record)
    return (
        leaf.invalid is None
        and record is not None
        and uuid.UUID(event_id) in record.event_ids
        and signer_refusal(leaf, record.at, trust) is None
    )


def _record_in(value: bytes) -> AuditRecord | None:
    """The audit record inside a signed value (signature not checked here), if any."""
    payload = unsealed(value)
    judged = None if payload is None else judge_record(payload)
    return None if judged is None or isinstance(judged, InvalidRecord) else judged


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
    node = _node_reader(store, consistency_nodes(old_size, new_size))
    proof = consistency_proof_from_nodes(node, old_size, new_size)
    return ConsistencyProof(
        old_checkpoint=notes[old_size],
        new_checkpoint=notes[new_size],
        verifier_keys=tuple(verifier_keys(settings, trust)),
        proof=tuple(h.hex() for h in proof),
    )


CLAIMED_TIME_LIMIT: Final = (
    "limit: each signer's key was checked at the record's own time (at), as a proof"
    " holds no append time; a record back-dated by a key's holder to before the key's"
    " revocation passes here, and `liaison audit verify` (which sees append times)"
    " reports it as an invalid leaf"
)
"""What an offline check of an inclusion proof cannot see, printed with every OK."""


def check_proof(
    document: ProofDocument, verifier_key: str, signers: TrustStore | None
) -> list[str]:
    """Verify a parsed proof document offline with one verifier key and, for an
    inclusion proof, the signers' public keys (both obtained out of band); return what
    it proves.

    Raises ``ProofError``, ``CheckpointError`` or ``SchemaError`` (all ``LiaisonError``)
    when it fails; nothing else, whatever the document holds.
    """
    name, raw = parse_verifier_key(verifier_key)
    if isinstance(document, InclusionProof):
        if signers is None:
            raise ProofError("an inclusion proof is checked with the signers' public keys")
        event_id = _proof_event_id(document.event_id)
        cp = verify_checkpoint(document.checkpoint, raw, name)
        if not document.proofs:
            raise ProofError(f"the proof holds no record about event {event_id}: it proves nothing")
        lines = [f"checkpoint {cp.origin} size {cp.size}: signature OK"]
        for item in document.proofs:
            data = item.leaf_data()
            seq, value = split_leaf(data)
            if seq != item.seq:
                raise ProofError(f"leaf data says seq {seq}, the proof says {item.seq}")
            verify_inclusion(leaf_hash(data), seq, cp.size, item.path(), cp.root)
            lines.append(f"leaf {seq}: {_described(seq, value, event_id, signers)}: included")
        lines.append(CLAIMED_TIME_LIMIT)
        return lines
    old = verify_checkpoint(document.old_checkpoint, raw, name)
    new = verify_checkpoint(document.new_checkpoint, raw, name, origin=old.origin)
    verify_consistency(old.size, new.size, old.root, new.root, document.path())
    return [f"checkpoints {old.size} and {new.size} of {old.origin}: consistent (append-only)"]


def _proof_event_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ProofError("the proof's event_id is not an event's UUID") from None


def _described(seq: int, value: bytes, event_id: uuid.UUID, signers: TrustStore) -> str:
    """What leaf ``seq`` records; ``ProofError`` unless it is an audit record signed by
    one of ``signers``, entitled to its actor and valid at its ``at``, that names
    ``event_id`` (a proof must prove what it claims)."""
    try:
        parse_dsse(value)
    except EnvelopeError:
        raise ProofError(f"leaf {seq} is not a signed audit record") from None
    sealed = judge_sealed_as_claimed(value, signers)
    if isinstance(sealed, InvalidRecord):
        raise ProofError(f"leaf {seq} is not a record the signers' keys vouch for: {_why(sealed)}")
    record = sealed.record
    if event_id not in record.event_ids:
        raise ProofError(f"leaf {seq}'s record does not concern event {event_id}")
    return (
        f"{record.action} by {record.actor} at {record.at.isoformat()}"
        f" (signed by key {sealed.key.keyid}, owner {sealed.key.owner}: signature OK)"
    )


_WHY: Final = {
    InvalidReason.UNSIGNED: "it is not a signed audit record",
    InvalidReason.UNKNOWN_KEY: "its signer's key is not in the signers' keys given",
    InvalidReason.BAD_SIGNATURE: "its signature does not verify",
    InvalidReason.NOT_ENTITLED: "its signer's key may not sign for its actor",
    InvalidReason.KEY_NOT_VALID: "its signer's key was not valid at the record's time",
}


def _why(invalid: InvalidRecord) -> str:
    """Why a proven leaf is refused, in words that never repeat the leaf's contents."""
    return f"{_WHY.get(invalid.reason, 'it does not hold a valid audit record')} ({invalid.reason})"


def read_proof(path: Path) -> ProofDocument:
    """The proof document in the file at ``path``, read no further than the size limit
    (``/dev/zero`` ends too); ``ProofError`` if it is not one, ``OSError`` if unreadable."""
    with path.open("rb") as file:
        data = file.read(MAX_PROOF_BYTES + 1)
    return parse_proof(data)


def read_signers(path: Path) -> TrustStore:
    """The signers' public keys in the file at ``path`` (``liaison keys export``'s JSON),
    read no further than the size limit; ``ProofError`` if it is not that, ``OSError`` if
    unreadable."""
    with path.open("rb") as file:
        data = file.read(MAX_PROOF_BYTES + 1)
    return parse_signers(data)


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
