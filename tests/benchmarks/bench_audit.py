"""The auditor's tools on a long log: ``python -m tests.benchmarks.bench_audit [N [M]]``.

Builds an audit store of N leaves (default 1,000,000) in a temporary directory, with two
signed checkpoints, then times what ``liaison audit prove``, ``who-saw`` and
``consistency`` do with the store. Issue 14's targets: ``prove`` and ``who-saw`` under
50 ms at 1,000,000 leaves, in O(log n) reads of the store; ``verify`` under 60 s.

The proofs and who-saw are timed from opening the store (as each command does) to the
finished document, without the trust store's read from ``liaison.keys`` that the CLI adds.

``audit verify`` is measured end to end on the real broker (started if none answers, and
stopped again): M real signed audit records (default 100,000; M=0 skips this) are
written once to a fresh ``liaison.audit`` topic (``LogAppendTime``, as deployed), the
store is built from them with two checkpoints signed on ``liaison.audit.checkpoints``,
then ``verify_log`` runs as ``liaison audit verify`` does (without the trust store's
read from ``liaison.keys``), once deriving every leaf in this process and once in a
worker process per core (the default from ``PARALLEL_FROM`` records on). Each run's
wall time and CPU (this process, the workers, the broker, from their own accounting)
are reported, with how busy the machine's cores were meanwhile; the time at 1,000,000
leaves is an extrapolation from M, labelled so, unless M is 1,000,000. Prints numbers;
asserts none (timing lives here, never in the test suite).

Most leaves are synthetic (record bytes of a realistic length, an actor, a signer and an
event id in the index); the leaves that are proven are real signed audit records, and
every proof is checked with ``check_proof`` as an auditor would (not timed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import platform
import random
import resource
import sqlite3
import statistics
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Final, TypeVar

from aiokafka import AIOKafkaProducer

from schemas.audit import FeedRead, leaf_data, seal_record
from schemas.audit_proof import ConsistencyProof, InclusionProof
from schemas.checkpoint import Checkpoint, note_verifier_key, sign_checkpoint
from schemas.keys import AUDIT, READER, SigningKey, TrustStore
from schemas.merkle import CompactRange, leaf_hash
from schemas.records import InboundRecord
from services.audit_service import audit_origin, judge_value, leaf_row
from services.audit_store import SqliteAuditStore, StoredLeaf, utc_text
from services.auditor import (
    check_proof,
    consistency,
    cores,
    inclusion_document,
    index_difference,
    latest_signed,
    leaves_about,
    prove,
    verify_log,
    worker_count,
)
from services.kafka import (
    UnparseableRecord,
    apply_topics,
    assigned,
    catch_up,
    client_options,
    delete_topics,
    inbound,
)
from services.local_broker import LocalBroker, answers_metadata
from services.settings import Settings
from tests.benchmarks._procs import cpu_seconds, system_busy_seconds

AT: Final = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
AT_MS: Final = int(AT.timestamp() * 1000)
PROVEN: Final = 20
"""Leaves proven (each a real signed record about its own event): the median is reported."""
BATCH: Final = 10_000
RECORD_BYTES: Final = 700
"""About the length of a sealed audit record."""
SIGNER: Final = "ab" * 32

T = TypeVar("T")


def _print(text: str = "") -> None:
    print(text)  # noqa: T201 - a benchmark reports on stdout


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f} ms"


def _timed(work: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


class Log:
    """The store being measured, its keys, and where its real records are."""

    def __init__(self, path: Path, size: int, seed: int = 14) -> None:
        self.path, self.size = path, size
        self.settings = Settings(bootstrap_servers="127.0.0.1:1", topic_prefix="")
        self.origin = audit_origin(self.settings)
        self.audit_key = SigningKey.generate(AUDIT)
        self.reader_key = SigningKey.generate(READER)
        self.trust = TrustStore(
            keys=tuple(
                k.trusted(AT - dt.timedelta(days=1)) for k in (self.audit_key, self.reader_key)
            )
        )
        self.vkey = note_verifier_key(self.origin, self.audit_key.public_raw)
        rng = random.Random(seed)  # noqa: S311 - test data
        self.proven = dict.fromkeys(sorted(rng.sample(range(size), min(PROVEN, size))), "")
        self.old_size = size * 2 // 3 + 1
        self.hashes_built = 0.0

    def real(self, seq: int) -> StoredLeaf:
        """A real signed record about a new event, as the audit service stores it."""
        event_id = uuid.uuid4()
        self.proven[seq] = str(event_id)
        record = FeedRead(
            at=AT, actor="analyst:a.khan", analyst="a.khan", purpose="bench", returned=1,
            event_ids=(event_id,),
        )  # fmt: skip
        value = seal_record(record, self.reader_key)
        inbound = InboundRecord("liaison.audit", 0, seq, AT_MS, None, value, timestamp_type=1)
        return leaf_row(seq, inbound, judge_value(inbound, self.trust))

    def rows(self) -> Iterator[StoredLeaf]:
        pad = b"x" * RECORD_BYTES
        at = utc_text(AT)
        for seq in range(self.size):
            if seq in self.proven:
                yield self.real(seq)
                continue
            record = b'{"n":%d,"pad":"%s"}' % (seq, pad)
            yield StoredLeaf(
                seq=seq,
                kafka_offset=seq,
                record=record,
                leaf_hash=leaf_hash(leaf_data(seq, record)),
                at=at,
                actor="router:0",
                event_ids=(str(uuid.UUID(int=seq + 1)),),
                signer=SIGNER,
            )

    def build(self) -> float:
        """Append every leaf in batches and sign checkpoints at ``old_size`` and ``size``."""
        compact = CompactRange()
        start = time.perf_counter()
        with SqliteAuditStore(self.path) as store:
            batch: list[StoredLeaf] = []
            for row in self.rows():
                batch.append(row)
                compact.append(row.leaf_hash)
                if compact.size == self.old_size:
                    old = (self.old_size, compact.root())
                if len(batch) == BATCH:
                    store.append_batch(batch, batch[-1].kafka_offset + 1, b"")
                    batch = []
            if batch:
                store.append_batch(batch, batch[-1].kafka_offset + 1, b"")
            for size, top in (old, (compact.size, compact.root())):
                note = sign_checkpoint(
                    Checkpoint(self.origin, size, top), self.audit_key, self.origin
                )
                store.add_checkpoint(size, top, utc_text(AT), note)
        return time.perf_counter() - start


def prove_once(log: Log, event_id: str) -> tuple[float, InclusionProof]:
    def work() -> InclusionProof:
        with SqliteAuditStore(log.path) as store:
            return prove(log.settings, store, log.trust, event_id)

    return _timed(work)


def who_saw_once(log: Log, event_id: str) -> float:
    def work() -> object:
        with SqliteAuditStore(log.path) as store:
            return leaves_about(store, event_id)

    return _timed(work)[0]


def consistency_once(log: Log) -> tuple[float, ConsistencyProof]:
    def work() -> ConsistencyProof:
        with SqliteAuditStore(log.path) as store:
            return consistency(log.settings, store, log.trust, log.old_size, log.size)

    return _timed(work)


def prove_from_every_leaf(log: Log, event_id: str) -> float:
    """The path before issue 14: every leaf hash read, then the proof computed from them."""

    def work() -> object:
        with SqliteAuditStore(log.path) as store:
            checkpoint = latest_signed(store)
            return inclusion_document(
                log.settings, store, log.trust, event_id,
                seqs=store.seqs_for_event(event_id), checkpoint=checkpoint,
                hashes=store.leaf_hashes(checkpoint[0]),
            )  # fmt: skip

    return _timed(work)[0]


def verify_store_side(log: Log) -> float:
    """``verify_log``'s O(n) work on the store: every leaf streamed, the root rebuilt and
    compared with the latest checkpoint's."""

    def work() -> bool:
        compact = CompactRange()
        with SqliteAuditStore(log.path) as store:
            latest = store.latest_checkpoint()
            for stored in store.leaves():
                compact.append(stored.leaf_hash)
        return latest is not None and compact.root() == latest.root

    seconds, agreed = _timed(work)
    if not agreed:
        sys.exit("the rebuilt root differs from the checkpoint's")
    return seconds


def verify_per_leaf(log: Log, samples: int = 500) -> float:
    """Seconds per leaf of ``verify_log``'s re-derivation of a real signed record from the
    log's bytes (``_derived``: judge, leaf row) and its comparison with the store's row."""
    inbound = []
    stored = []
    for seq in range(samples):
        row = log.real(seq)
        inbound.append(
            InboundRecord("liaison.audit", 0, seq, AT_MS, None, row.record, timestamp_type=1)
        )
        stored.append(row)
    start = time.perf_counter()
    compact = CompactRange()
    for seq, (record, held) in enumerate(zip(inbound, stored, strict=True)):
        derived = leaf_row(seq, record, judge_value(record, log.trust))
        if index_difference(held, derived) is not None:
            sys.exit("a derived leaf differs from the stored one")
        compact.append(derived.leaf_hash)
    return (time.perf_counter() - start) / samples


# -- audit verify, end to end on the real broker -----------------------------------------

SEALED_PER_TASK: Final = 5_000
"""Records sealed per task of the pool that writes the log (building it is not timed)."""
IN_FLIGHT: Final = 20_000
"""Records the producer may have unacknowledged while the log is written."""


def _sealed(pem: bytes, first: int, count: int) -> tuple[dt.datetime, list[bytes]]:
    """Records ``first`` to ``first + count - 1`` of the log: each a feed.read about its own
    event at the time now, sealed by the reader key (run in the pool that writes the log)."""
    key = SigningKey.from_pem(pem, READER)
    at = dt.datetime.now(dt.UTC)
    records = (
        FeedRead(at=at, actor=ACTOR, analyst="a.khan", purpose="bench", returned=n,
                 event_ids=(uuid.UUID(int=n + 1),))
        for n in range(first, first + count)
    )  # fmt: skip
    return at, [seal_record(record, key) for record in records]


ACTOR: Final = "analyst:a.khan"


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run: wall seconds and CPU seconds of each process, and the machine's."""

    wall: float
    main_cpu: float
    worker_cpu: float
    broker_cpu: float
    busy: float
    workers: int

    def per_leaf_us(self, leaves: int) -> tuple[float, float, float]:
        """Wall, Liaison's CPU (this process + workers) and the broker's CPU, per leaf."""
        return tuple(  # type: ignore[return-value]
            x / leaves * 1e6 for x in (self.wall, self.main_cpu + self.worker_cpu, self.broker_cpu)
        )

    def others_cores(self) -> float:
        """Cores kept busy meanwhile by processes other than these (0 on an idle machine)."""
        ours = self.main_cpu + self.worker_cpu + self.broker_cpu
        return max(self.busy - ours, 0.0) / self.wall


async def _measured(work: Callable[[], object], broker_pid: int | None, workers: int = 0) -> Run:
    def children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def broker() -> float:
        return 0.0 if broker_pid is None else cpu_seconds(broker_pid)

    before = (time.perf_counter(), time.process_time(), children(), broker(),
              system_busy_seconds())  # fmt: skip
    result = work()
    if asyncio.iscoroutine(result):
        await result
    after = (time.perf_counter(), time.process_time(), children(), broker(),
             system_busy_seconds())  # fmt: skip
    wall, main, kids, brk, busy = (b - a for a, b in zip(before, after, strict=True))
    return Run(wall, main, kids, brk, busy, workers)


class KafkaLog:
    """M signed audit records on a fresh audit topic, and the store the audit service
    would have built from them (two checkpoints, signed and published)."""

    def __init__(self, settings: Settings, home: Path, size: int) -> None:
        self.settings, self.size = settings, size
        self.path = home / "audit.sqlite3"
        self.origin = audit_origin(settings)
        self.audit_key = SigningKey.generate(AUDIT)
        self.reader_key = SigningKey.generate(READER)
        now = dt.datetime.now(dt.UTC)
        self.trust = TrustStore(
            keys=tuple(
                k.trusted(now - dt.timedelta(days=1)) for k in (self.audit_key, self.reader_key)
            )
        )

    async def write(self) -> float:
        """Seal and produce every record, store its leaf and publish the checkpoints;
        seconds taken (not a measured figure: the log exists before an auditor comes)."""
        start = time.perf_counter()
        producer = AIOKafkaProducer(
            **client_options(self.settings), acks="all", enable_idempotence=True,
            linger_ms=20, max_batch_size=1024 * 1024,
        )  # fmt: skip
        await producer.start()
        try:
            with SqliteAuditStore(self.path) as store:
                await self._write(producer, store)
        finally:
            await producer.stop()
        return time.perf_counter() - start

    async def _write(self, producer: AIOKafkaProducer, store: SqliteAuditStore) -> None:
        compact = CompactRange()
        checkpoints: list[tuple[int, bytes]] = []
        half = self.size // 2 + 1
        pem = self.reader_key.to_pem()
        loop = asyncio.get_running_loop()
        ahead: deque[asyncio.Future[tuple[dt.datetime, list[bytes]]]] = deque()
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(cores(), mp_context=spawn) as pool:
            for first in [*range(0, self.size, SEALED_PER_TASK), None]:
                if first is not None:
                    count = min(SEALED_PER_TASK, self.size - first)
                    ahead.append(loop.run_in_executor(pool, _sealed, pem, first, count))
                while ahead and (first is None or len(ahead) > 2 * cores()):
                    at, values = await ahead.popleft()
                    sent = [await producer.send(self.settings.topics.audit, v) for v in values]
                    rows = []
                    for value, future in zip(values, sent, strict=True):
                        rows.append(self._row(compact.size, value, (await future).offset, at))
                        compact.append(rows[-1].leaf_hash)
                        if compact.size in (half, self.size):
                            checkpoints.append((compact.size, compact.root()))
                    store.append_batch(rows, rows[-1].kafka_offset + 1, b"")
        for size, root in checkpoints:
            checkpoint = Checkpoint(self.origin, size, root)
            note = sign_checkpoint(checkpoint, self.audit_key, self.origin)
            topic = self.settings.topics.audit_checkpoints
            await producer.send_and_wait(topic, note.encode(), key=str(size).encode())
            store.add_checkpoint(size, root, utc_text(dt.datetime.now(dt.UTC)), note)

    def _row(self, seq: int, value: bytes, offset: int, at: dt.datetime) -> StoredLeaf:
        """Leaf ``seq`` as the audit service stores a valid record of the reader's about
        event ``seq + 1`` (``verify`` says so, or the benchmark stops)."""
        return StoredLeaf(
            seq=seq, kafka_offset=offset, record=value, leaf_hash=leaf_hash(leaf_data(seq, value)),
            at=utc_text(at), actor=ACTOR, event_ids=(str(uuid.UUID(int=seq + 1)),),
            signer=self.reader_key.keyid,
        )  # fmt: skip

    async def read_only(self) -> int:
        """Read the log as ``verify_log`` does, and nothing else: the Kafka part of it."""
        count = 0
        async with assigned(self.settings, self.settings.topics.audit) as consumer:
            async for batch in catch_up(consumer):
                count += sum(not isinstance(r, UnparseableRecord) and bool(inbound(r).value)
                             for r in batch)  # fmt: skip
        return count

    async def verify(self, workers: int) -> None:
        with SqliteAuditStore(self.path) as store:
            report = await verify_log(self.settings, store, self.trust, workers=workers)
        if not report.ok or report.leaves != self.size or report.invalid_records:
            sys.exit(f"verify did not pass on the benchmark's log: {report}")


def verify_end_to_end(size: int) -> list[tuple[str, str, str]]:
    """Write ``size`` records to a real audit topic and verify it; the table's rows. The
    local broker is started if none answers, and then stopped again."""
    base = Settings()
    started = None
    if not answers_metadata(base.bootstrap_servers, timeout_s=5.0):
        started = LocalBroker(base)
        started.start(_print)
    try:
        return asyncio.run(_on_a_fresh_topic(base, size, LocalBroker(base).recorded_pid()))
    finally:
        if started is not None:
            started.stop(_print)


async def _on_a_fresh_topic(
    base: Settings, size: int, broker_pid: int | None
) -> list[tuple[str, str, str]]:
    with TemporaryDirectory(prefix="liaison-bench-verify-") as tmp:
        settings = base.model_copy(
            update={"topic_prefix": f"bench.{uuid.uuid4().hex[:8]}.", "home": Path(tmp)}
        )
        topics = [settings.topics.audit, settings.topics.audit_checkpoints]
        await apply_topics(settings, [s for s in settings.topics.specs() if s.name in topics])
        try:
            log = KafkaLog(settings, Path(tmp), size)
            written = await log.write()
            _print(f"verify: {size:,} signed records written and stored in {written:,.0f} s")
            return await _verify_runs(log, broker_pid)
        finally:
            await delete_topics(settings, topics)


async def _verify_runs(log: KafkaLog, broker_pid: int | None) -> list[tuple[str, str, str]]:
    size = log.size
    auto = worker_count(size)
    runs = [("read the log from Kafka only", await _measured(log.read_only, broker_pid))]
    if size <= 200_000:  # in this process alone: about 0.2 ms a leaf
        runs.append(("verify, this process only", await _measured(
            lambda: log.verify(0), broker_pid)))  # fmt: skip
    runs.append((f"verify, {auto} worker processes (default)", await _measured(
        lambda: log.verify(auto), broker_pid, auto)))  # fmt: skip
    rows = []
    for name, run in runs:
        wall, cpu, broker = run.per_leaf_us(size)
        rows.append((
            f"{name}: {size:,} leaves",
            f"{run.wall:,.1f} s",
            f"{wall:,.0f} us/leaf wall; CPU {cpu:,.0f} us/leaf Liaison"
            f" ({run.main_cpu:,.1f} s here + {run.worker_cpu:,.1f} s workers),"
            f" {broker:,.0f} us/leaf broker; other processes {run.others_cores():.2f} cores",
        ))  # fmt: skip
    full = 1_000_000
    final = runs[-1][1]
    if size != full:
        wall, cpu, broker = final.per_leaf_us(size)
        rows.append((
            f"verify at {full:,} leaves (EXTRAPOLATED from {size:,})",
            f"{wall * full / 1e6:,.0f} s",
            f"< 60 s; CPU {(cpu + broker) * full / 1e6:,.0f} s over {cores()} cores",
        ))  # fmt: skip
    else:
        rows.append((f"verify at {full:,} leaves (measured)", f"{final.wall:,.0f} s", "< 60 s"))
    return rows


def _table(rows: Sequence[tuple[str, str, str]]) -> None:
    width = max(len(name) for name, _, _ in rows)
    _print()
    _print(f"{'what':<{width}}  {'time':>12}  target / detail")
    for name, value, target in rows:
        _print(f"{name:<{width}}  {value:>12}  {target}")


def main(size: int, verify_size: int) -> None:
    """Build, measure, print the tables."""
    _print(
        f"bench_audit: {size:,} leaves; {platform.python_implementation()}"
        f" {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" {os.cpu_count()} cores ({platform.processor() or platform.machine()})"
    )
    with TemporaryDirectory(prefix="liaison-bench-audit-") as tmp:
        log = Log(Path(tmp) / "audit.sqlite3", size)
        built = log.build()
        megabytes = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        _print(
            f"built in {built:,.1f} s ({size / built:,.0f} leaves/s), {megabytes:,.0f} MB on disk"
        )

        proofs = []
        for event_id in log.proven.values():
            seconds, document = prove_once(log, event_id)
            proofs.append(seconds)
            check_proof(document, log.vkey, log.trust)
        who = [who_saw_once(log, event_id) for event_id in log.proven.values()]
        cons = []
        for _ in range(5):
            seconds, grown = consistency_once(log)
            cons.append(seconds)
        check_proof(grown, log.vkey, None)
        before = prove_from_every_leaf(log, next(iter(log.proven.values())))
        store_side = verify_store_side(log)
        per_leaf = verify_per_leaf(log)

        with sqlite3.connect(log.path) as raw:
            raw.execute("DROP TABLE merkle_nodes")
            raw.execute("UPDATE schema_version SET version = 3")
        raw.close()
        migrated = _timed(lambda: SqliteAuditStore(log.path).close())[0]

    rows = [
        ("audit prove (one leaf), median", _ms(statistics.median(proofs)), "< 50 ms"),
        ("audit prove, slowest", _ms(max(proofs)), ""),
        ("audit prove from every leaf hash (before)", _ms(before), ""),
        ("audit who-saw, median", _ms(statistics.median(who)), "< 50 ms"),
        ("audit consistency, median", _ms(statistics.median(cons)), ""),
        ("audit verify's store side (stream + root)", f"{store_side:,.1f} s", ""),
        ("audit verify's re-derivation of a signed leaf", f"{per_leaf * 1e6:,.0f} us", ""),
        ("one-time migration of a version 3 store", f"{migrated:,.1f} s", ""),
    ]
    _table(rows)
    _print()
    _print(
        "prove, who-saw and consistency: from opening the store to the document, without"
        " the trust store's read from Kafka; every proof checked with check_proof."
    )
    _print(
        "verify's store side and re-derivation: parts of it, in this process (CPU per leaf"
        " of the re-derivation: signature, record, index; no Kafka)."
    )
    if verify_size:
        _table(verify_end_to_end(verify_size))
        _print()
        _print(
            "verify end to end: Kafka read, store stream, every leaf re-derived and compared,"
            " root and checkpoints; CPU from each process's own accounting; 'other processes':"
            " cores busy meanwhile outside Liaison and the broker (a shared machine)."
        )


if __name__ == "__main__":
    sizes = [int(arg.replace("_", "")) for arg in sys.argv[1:3]]
    main(*sizes, *(1_000_000, 100_000)[len(sizes) :])
