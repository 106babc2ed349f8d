"""The auditor's tools on a long log: ``python -m tests.benchmarks.bench_audit [N]``.

Builds an audit store of N leaves (default 1,000,000) in a temporary directory, with two
signed checkpoints, then times what ``liaison audit prove``, ``who-saw``, ``consistency``
and ``verify`` do with the store. Issue 14's targets: ``prove`` and ``who-saw`` under
50 ms at 1,000,000 leaves, in O(log n) reads of the store; ``verify`` under 60 s.

No broker: the proofs and who-saw are timed from opening the store (as each command does)
to the finished document, without the trust store's read from ``liaison.keys`` that the
CLI adds. ``verify_log`` reads every record from Kafka; here its store-side O(n) part is
timed (stream every stored leaf and rebuild the tree's root), and its per-leaf
re-derivation (signature check, record parse, index comparison) is measured on real
signed records and multiplied by N: an estimate, labelled so. Prints numbers; asserts
none (timing lives here, never in the test suite).

Most leaves are synthetic (record bytes of a realistic length, an actor, a signer and an
event id in the index); the leaves that are proven are real signed audit records, and
every proof is checked with ``check_proof`` as an auditor would (not timed).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Final, TypeVar

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
    inclusion_document,
    index_difference,
    latest_signed,
    leaves_about,
    prove,
)
from services.settings import Settings

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


def main(size: int) -> None:
    """Build, measure, print the table."""
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
        ("audit verify, store side (stream + root)", f"{store_side:,.1f} s", ""),
        ("audit verify, re-derive per signed leaf", f"{per_leaf * 1e6:,.0f} us", ""),
        (
            f"audit verify at {size:,} signed leaves (est.)",
            f"{store_side + per_leaf * size:,.1f} s",
            "< 60 s",
        ),
        ("one-time migration of a version 3 store", f"{migrated:,.1f} s", ""),
    ]
    width = max(len(name) for name, _, _ in rows)
    _print()
    _print(f"{'what':<{width}}  {'time':>12}  target")
    for name, value, target in rows:
        _print(f"{name:<{width}}  {value:>12}  {target}")
    _print()
    _print(
        "prove, who-saw and consistency: from opening the store to the document, without"
        " the trust store's read from Kafka; every proof checked with check_proof."
    )
    _print(
        "verify's estimate: the store side measured, plus the per-leaf re-derivation"
        " measured on real signed records times N; reading the log from Kafka is not included."
    )


if __name__ == "__main__":
    main(int(sys.argv[1].replace("_", "")) if len(sys.argv) > 1 else 1_000_000)
