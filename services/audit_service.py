"""``liaison serve audit``: every audit record becomes a leaf of an RFC 9162 Merkle tree.

The service reads ``liaison.audit`` (one partition, read committed) from where its store
says it stopped, and appends each record as leaf ``seq`` (0, 1, 2, ... in log order;
never the Kafka offset, which has gaps at transaction markers). The leaf data is
``leaf_data(seq, record bytes)``, so each leaf carries its own sequence number. A batch
of leaves, the next offset to read and the tree's right edge are stored in one durable
SQLite transaction: a service killed at any moment resumes with no leaf lost or repeated.

Anyone who can write to ``liaison.audit`` can write anything, so each value is judged
on its own (``judge_value``: ``schemas.audit.judge_sealed`` against the trust store, at
the broker's append time of the value) and whatever its bytes, it becomes a leaf
(``leaf_row``). A value that is not a valid signed audit record (unsigned, signed by an
unknown key or one not valid then, by a key not entitled to the record's actor,
back-dated, not JSON, an unknown action...) is an *invalid leaf*: kept byte for byte, so
the tree still matches the log, and marked in the store with its reason code, so who-saw
and activity never show it. No value can stop the service; ``audit verify`` counts the
invalid leaves by reason.

The trust store is followed while the service runs (``services.trust.TrustFollower``); a
value signed by a key the service does not know yet, or not valid yet, makes it catch up
on ``liaison.keys`` once per batch and judge again, so a key registered just before its
first record is not missed. Every index in the store (time, actor, signer, event ids,
invalid reason) is a pure function of the value, its append time and the trust store, so
``audit verify`` derives it again from the log and compares.

Checkpoints (tree size, root, origin) are C2SP signed notes, signed with the audit
service's own key (owner ``audit``, never the router's) under the note key name
``<origin>``, kept in the store and published to ``liaison.audit.checkpoints``:
periodically, and on demand (``liaison audit checkpoint``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

import structlog
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from schemas.audit import (
    EARLIEST_AT,
    LATEST_AT,
    InvalidReason,
    InvalidRecord,
    SealedRecord,
    judge_sealed,
    leaf_data,
)
from schemas.checkpoint import Checkpoint, sign_checkpoint
from schemas.envelope import LOG_APPEND_TIME
from schemas.errors import BrokerError, ConfigurationError, SchemaError
from schemas.keys import AUDIT, SigningKey, TrustStore
from schemas.merkle import CompactRange, CompactRangeState, ProofError, leaf_hash
from schemas.records import InboundRecord, OutboundRecord
from services.audit_store import AuditStoreError, SqliteAuditStore, StoredLeaf, utc_text
from services.kafka import (
    Outage,
    assigned,
    backoff,
    inbound,
    kafka_sink,
    prompt_sink,
)
from services.settings import Settings
from services.trust import TrustFollower

__all__ = [
    "CHECKPOINT_EVERY",
    "CHECKPOINT_TIMEOUT_S",
    "RECONSIDERED",
    "AuditService",
    "appended_at",
    "audit_origin",
    "judge_value",
    "leaf_row",
    "open_store",
    "publish_checkpoint",
]

_log = structlog.get_logger("liaison.audit")


def audit_origin(settings: Settings) -> str:
    """The checkpoint origin (and note key name) of this deployment's audit log."""
    return f"{settings.topic_prefix}liaison.audit"


def open_store(settings: Settings) -> SqliteAuditStore:
    """The audit store at ``LIAISON_AUDIT_STORE`` (default under ``LIAISON_HOME``)."""
    path = settings.audit_store or settings.home / "audit" / f"{settings.topic_prefix}audit.sqlite3"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteAuditStore(Path(path))


def _encode_state(compact: CompactRange) -> bytes:
    state = compact.to_state()
    return json.dumps({"size": state.size, "hashes": [h.hex() for h in state.hashes]}).encode()


def _decode_state(raw: bytes | None) -> CompactRange:
    if raw is None:
        return CompactRange()
    try:
        data = json.loads(raw)
        return CompactRange.from_state(
            CompactRangeState(tuple(bytes.fromhex(h) for h in data["hashes"]), data["size"])
        )
    except (ValueError, TypeError, KeyError, ProofError):
        raise AuditStoreError("the audit store's saved tree state is unreadable") from None


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EARLIEST_MS: Final = (EARLIEST_AT - _EPOCH) // dt.timedelta(milliseconds=1)
_LATEST_MS: Final = (LATEST_AT - _EPOCH) // dt.timedelta(milliseconds=1)


def appended_at(timestamp_ms: int) -> dt.datetime:
    """When the broker appended a value: its Kafka timestamp, held to the years records
    may have (``EARLIEST_AT`` to ``LATEST_AT``).

    ``liaison.audit`` is stamped with the broker's ``LogAppendTime``; a topic configured
    otherwise keeps whatever number a producer sent. An absurd one is clamped rather than
    replaced by the clock, so the judgement stays a function of the log (``audit verify``
    derives the same) and no signed record passes at such a time: its key is not valid in
    2000, or its ``at`` is far from the clamped time.
    """
    ms = min(max(timestamp_ms, _EARLIEST_MS), _LATEST_MS - 1)
    return _EPOCH + dt.timedelta(milliseconds=ms)


RECONSIDERED: Final = frozenset({InvalidReason.UNKNOWN_KEY, InvalidReason.KEY_NOT_VALID})
"""Reasons that a newer trust store could change: the audit service catches up on
``liaison.keys`` and judges again before it stores a leaf with one of them."""


def judge_value(record: InboundRecord, trust: TrustStore) -> SealedRecord | InvalidRecord:
    """One value of the audit topic judged at its append time; never raises.

    Only the broker's time counts: on a topic stamped with the producer's time
    (``CreateTime``) a revoked key's holder could write any time, so such a value is
    invalid whatever it holds.
    """
    if record.timestamp_type != LOG_APPEND_TIME:
        judged = judge_sealed(record.value, appended_at(record.timestamp_ms), trust)
        signer = judged.signer if isinstance(judged, InvalidRecord) else judged.key.keyid
        return InvalidRecord(
            InvalidReason.NOT_APPEND_TIME,
            SchemaError("invalid audit record: not stamped with the broker's append time"),
            signer=signer,
        )
    return judge_sealed(record.value, appended_at(record.timestamp_ms), trust)


def leaf_row(seq: int, record: InboundRecord, judged: SealedRecord | InvalidRecord) -> StoredLeaf:
    """Leaf ``seq`` for one value read from the audit topic and its judgement (pure)."""
    value = record.value
    event_ids: tuple[str, ...] = ()
    if isinstance(judged, InvalidRecord):
        # Kept as a leaf all the same: the log is what it is; `audit verify` reports it.
        at, actor = appended_at(record.timestamp_ms), ""
        invalid: str | None = judged.reason.value
        signer = judged.signer
    else:
        at, actor, invalid = judged.record.at, judged.record.actor, None
        event_ids = tuple(str(i) for i in judged.record.event_ids)
        signer = judged.key.keyid
    return StoredLeaf(
        seq=seq,
        kafka_offset=record.offset,
        record=value,
        leaf_hash=leaf_hash(leaf_data(seq, value)),
        at=utc_text(at),
        actor=actor,
        event_ids=event_ids,
        invalid=invalid,
        signer=signer,
    )


async def publish_checkpoint(
    settings: Settings,
    store: SqliteAuditStore,
    key: SigningKey,
    now: dt.datetime,
    *,
    request_timeout_s: float | None = None,
) -> str | None:
    """Sign and publish a checkpoint of the store's tree now; None if nothing changed.

    ``key`` must be the audit service's own (owner ``audit``): the router's key signs JTAI
    considerations, and one key must not vouch for both. The checkpoint is stored only once
    the broker has it, so after a failure (``BrokerError``) the same checkpoint is published
    again: the same bytes (Ed25519 signatures are deterministic), kept once in the store.
    ``request_timeout_s`` bounds each wait for a broker that does not answer
    (``services.kafka.prompt_sink``; aiokafka's default is 40 s).
    """
    _check_audit_key(key)
    compact = _decode_state(store.range_state())
    latest = store.latest_checkpoint()
    if latest is not None and latest.size == compact.size:
        return None
    origin = audit_origin(settings)
    note = sign_checkpoint(Checkpoint(origin, compact.size, compact.root()), key, origin)
    record = OutboundRecord(
        settings.topics.audit_checkpoints, str(compact.size).encode(), note.encode()
    )
    opened = (
        kafka_sink(settings)
        if request_timeout_s is None
        else prompt_sink(settings, request_timeout_s)
    )
    async with opened as sink:
        await sink.send(record)
    store.add_checkpoint(compact.size, compact.root(), utc_text(now), note)
    _log.info("checkpoint_published", size=compact.size, root=compact.root().hex())
    return note


def _check_audit_key(key: SigningKey) -> None:
    if key.owner != AUDIT:
        msg = (
            f"checkpoints are signed by the audit service's key (owner {AUDIT}), not {key.owner}'s"
        )
        raise ConfigurationError(msg)


CHECKPOINT_EVERY: Final = dt.timedelta(seconds=30)
"""How often the service publishes a checkpoint (when the tree has grown)."""
CHECKPOINT_TIMEOUT_S: Final = 10.0
"""How long the service's checkpoint waits for a broker that does not answer (to connect,
then to acknowledge) before it counts as unreachable."""


class AuditService:
    """Appends ``liaison.audit`` to the store and publishes checkpoints.

    A broker outage stops neither. The consumer reconnects by itself; a checkpoint that
    cannot be published (the broker refused the connection, or did not answer within
    ``CHECKPOINT_TIMEOUT_S``) is tried again with backoff (``services.kafka.Outage``: one
    log line when the broker is found unreachable, one when it is back); any other Kafka
    failure ends the session and a new one starts, after the same backoff, from the
    store's next offset, so no leaf is lost or repeated.
    """

    def __init__(
        self,
        settings: Settings,
        store: SqliteAuditStore,
        key: SigningKey,
        *,
        checkpoint_every: dt.timedelta = CHECKPOINT_EVERY,
        delays: Callable[[], Iterator[float]] = lambda: backoff(1.0, 10.0),
    ) -> None:
        """``delays``: the waits between tries while the broker cannot be reached."""
        _check_audit_key(key)
        self._settings = settings
        self._store = store
        self._key = key
        self._every = checkpoint_every
        self._delays = delays
        self._due = 0.0  # loop time of the next checkpoint
        self._trust = TrustFollower(settings)
        self._task: asyncio.Task[None] | None = None
        self.appended = 0
        self.invalid = 0

    async def _judged(self, records: Sequence[InboundRecord]) -> list[SealedRecord | InvalidRecord]:
        """Each value's judgement; once more after catching up on ``liaison.keys`` if a
        value's key is unknown or not valid in the store followed so far."""
        trust = self._trust.store
        judged = [judge_value(record, trust) for record in records]
        if any(isinstance(j, InvalidRecord) and j.reason in RECONSIDERED for j in judged):
            trust = await self._caught_up()
            judged = [judge_value(record, trust) for record in records]
        return judged

    async def _caught_up(self) -> TrustStore:
        """The trust store with every key record on ``liaison.keys`` now applied."""
        await self._trust.catch_up()
        return self._trust.store

    def _append(
        self,
        records: Sequence[InboundRecord],
        judged: Sequence[SealedRecord | InvalidRecord],
        compact: CompactRange,
    ) -> CompactRange:
        """Store ``records`` as the next leaves; the grown tree (``compact`` is untouched,
        so a batch the store refuses leaves the service's tree as the store's)."""
        if not records:
            return compact
        seq = self._store.next_seq()
        grown = CompactRange.from_state(compact.to_state())
        rows = []
        for record, judgement in zip(records, judged, strict=True):
            row = leaf_row(seq, record, judgement)
            grown.append(row.leaf_hash)
            rows.append(row)
            seq += 1
        self._store.append_batch(rows, records[-1].offset + 1, _encode_state(grown))
        self.appended += len(rows)
        for row in rows:
            if row.invalid is not None:
                self.invalid += 1
                # The reason and position only: the value itself may be anything.
                _log.warning(
                    "audit_value_invalid", seq=row.seq, offset=row.kafka_offset, reason=row.invalid
                )
        return grown

    async def _store_batch(
        self, records: Sequence[InboundRecord], compact: CompactRange
    ) -> CompactRange:
        """``_append``, waiting out a store another process holds locked."""
        judged = await self._judged(records)
        waited = False
        delay = 0.1
        while True:
            try:
                grown = self._append(records, judged, compact)
            except AuditStoreError as exc:
                if not exc.retriable:
                    raise
                if not waited:
                    _log.warning("audit_store_busy", detail=str(exc))
                    waited = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if waited:
                _log.info("audit_store_free")
            return grown

    async def _run(self) -> None:
        """Append and checkpoint until cancelled, riding out broker outages: the store
        says where to resume, so a session cut short loses and repeats no leaf."""
        compact = _decode_state(self._store.range_state())
        if compact.size != self._store.size():
            msg = (
                f"the store's tree state covers {compact.size} leaves"
                f" but it holds {self._store.size()}"
            )
            raise SchemaError(msg)
        outage = Outage(self._settings, "audit", delays=self._delays)
        self._due = asyncio.get_running_loop().time() + self._every.total_seconds()
        while True:
            try:
                await self._session(outage)
            except (KafkaError, BrokerError) as exc:
                await outage.pause(exc)  # raised again unless retriable

    async def _session(self, outage: Outage) -> None:
        """Read the audit topic from where the store stopped, store each batch and publish
        a checkpoint when one is due; returns only by raising."""
        settings = self._settings
        loop = asyncio.get_running_loop()
        compact = _decode_state(self._store.range_state())
        async with assigned(settings, settings.topics.audit) as consumer:
            outage.recovered()
            tp = TopicPartition(settings.topics.audit, 0)
            consumer.seek(tp, self._store.next_offset())
            while True:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1000)
                records = [inbound(raw) for raw in batch.get(tp, [])]
                for record in records:
                    if not record.parsed:
                        # Nothing of it can be read, not even its bytes: no leaf (the
                        # auditor's check skips it too), only this line.
                        _log.warning("audit_record_unparseable", offset=record.offset)
                records = [record for record in records if record.parsed]
                compact = await self._store_batch(records, compact)
                if loop.time() >= self._due:
                    self._due = loop.time() + await self._checkpoint(outage)

    async def _checkpoint(self, outage: Outage) -> float:
        """Publish a checkpoint; seconds until the next one (sooner, with backoff, when the
        broker could not be reached: leaves are stored meanwhile, the consumer reconnects
        by itself)."""
        publishing = asyncio.ensure_future(
            publish_checkpoint(
                self._settings,
                self._store,
                self._key,
                dt.datetime.now(dt.UTC),
                request_timeout_s=CHECKPOINT_TIMEOUT_S,
            )
        )
        try:
            await asyncio.shield(publishing)
        except asyncio.CancelledError:
            # Stopping: the checkpoint in hand ends first (within its timeout), so no
            # producer is left half-started and the store is not closed under it.
            await asyncio.gather(publishing, return_exceptions=True)
            raise
        except BrokerError as exc:
            return outage.failed(exc)  # raised again unless retriable
        outage.recovered()
        return self._every.total_seconds()

    async def start(self) -> None:
        """Load the trust store, then start appending in the background."""
        await self._trust.start()
        self._task = asyncio.create_task(self._run())

    def log_started(self) -> None:
        """One line once the service (and anything started beside it) runs: from here on
        an outage is the service's to ride out, logged with ``service="audit"``."""
        _log.info("audit_started", store_size=self._store.size())

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The running append loop (its failure ends the service)."""
        return self._task

    async def stop(self) -> None:
        """Stop appending (a batch in hand is either stored whole or not at all)."""
        try:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        finally:
            await self._trust.stop()
