"""The store's Merkle nodes: kept with every append, filled once for an older store, and
read O(log n) at a time by the auditor's proofs (the same proofs as from every leaf).
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.audit import FeedRead, seal_record
from schemas.checkpoint import Checkpoint, note_verifier_key, sign_checkpoint
from schemas.keys import AUDIT, READER
from schemas.merkle import (
    CompactRange,
    NodeId,
    consistency_nodes,
    consistency_proof,
    inclusion_nodes,
    inclusion_proof,
    inclusion_proof_from_nodes,
    range_nodes,
    root,
    root_from_nodes,
)
from schemas.records import InboundRecord
from services.audit_service import audit_origin, judge_value, leaf_row
from services.audit_store import AuditStoreError, SqliteAuditStore, StoredLeaf, utc_text
from services.auditor import check_proof, consistency, inclusion_document, prove
from services.settings import Settings
from tests.unit.test_audit_sealed import AT, AT_MS, KEYS, TRUST
from tests.unit.test_audit_store import V1_SCHEMA, batch, leaf
from tests.unit.test_merkle_nodes import every_node

EVENT = "6f1c0d2e-0c5e-4e0e-9b1e-2b0b1c8d6e77"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "leaves.sqlite"


def stored_nodes(path: Path) -> dict[NodeId, bytes]:
    """The ``merkle_nodes`` table as it is on disk."""
    with contextlib.closing(sqlite3.connect(path)) as raw:
        return {
            NodeId(level, index): bytes(h)
            for level, index, h in raw.execute("SELECT level, idx, hash FROM merkle_nodes")
        }


def expected(leaves: Iterable[StoredLeaf]) -> dict[NodeId, bytes]:
    """Every complete aligned subtree of these leaves, computed from their hashes."""
    return every_node([row.leaf_hash for row in leaves])


def inner(nodes: dict[NodeId, bytes]) -> dict[NodeId, bytes]:
    """Nodes above the leaves (the leaves' own hashes stay in ``leaves``)."""
    return {n: h for n, h in nodes.items() if n.level}


# ---- appends ------------------------------------------------------------------------------


@settings(max_examples=25)
@given(st.lists(st.tuples(st.integers(0, 70), st.booleans()), max_size=8))
def test_appends_in_any_batch_shapes_keep_exactly_the_tree_s_nodes(
    shape: list[tuple[int, bool]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leaves.sqlite"
        store = SqliteAuditStore(path)
        try:
            size = 0
            for count, reopen in shape:
                store.append_batch(
                    batch(size, count), next_offset=(size + count) * 2, range_state=b""
                )
                size += count
                if reopen:
                    store.close()
                    store = SqliteAuditStore(path)
            rows = list(store.leaves())
            want = expected(rows)
            assert stored_nodes(path) == inner(want)
            assert store.nodes(want) == want
        finally:
            store.close()


def test_nodes_are_read_by_key_and_a_missing_one_is_refused(path: Path) -> None:
    with SqliteAuditStore(path) as store:
        assert store.nodes([]) == {}
        store.append_batch(batch(0, 5), next_offset=10, range_state=b"")
        rows = list(store.leaves())
        assert store.nodes([NodeId(0, 4), NodeId(2, 0), NodeId(0, 4)]) == {
            NodeId(0, 4): rows[4].leaf_hash,
            NodeId(2, 0): expected(rows)[NodeId(2, 0)],
        }
        # Leaves 4 and 5 are not both stored yet: their parent is no node of this tree.
        with pytest.raises(AuditStoreError, match=r"no Merkle node \(1, 2\) \(leaves 4 to 5\)"):
            store.nodes([NodeId(1, 2)])
        with pytest.raises(AuditStoreError, match=r"no Merkle node \(0, 5\)"):
            store.nodes([NodeId(0, 5)])


def test_a_batch_refused_stores_no_node(path: Path) -> None:
    with SqliteAuditStore(path) as store:
        store.append_batch(batch(0, 3), next_offset=6, range_state=b"")
        before = stored_nodes(path)
        with pytest.raises(AuditStoreError, match="not a 32-byte hash"):
            store.append_batch(
                [leaf(3), replace(leaf(4), leaf_hash=b"short")],
                next_offset=10,
                range_state=b"",
            )
        assert stored_nodes(path) == before
        assert store.size() == 3


def test_a_damaged_right_edge_is_one_audit_store_error(path: Path) -> None:
    with SqliteAuditStore(path) as store:
        store.append_batch(batch(0, 6), next_offset=12, range_state=b"")
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("UPDATE merkle_nodes SET hash = x'00' WHERE level = 1 AND idx = 2")
    with SqliteAuditStore(path) as store, pytest.raises(AuditStoreError, match="damaged"):
        store.append_batch([leaf(6)], next_offset=14, range_state=b"")
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("DELETE FROM merkle_nodes WHERE level = 2")
    with SqliteAuditStore(path) as store, pytest.raises(AuditStoreError, match=r"\(2, 0\)"):
        store.append_batch([leaf(6)], next_offset=14, range_state=b"")


# ---- a store from before the nodes ----------------------------------------------------------


def version_3_store(path: Path, rows: Iterable[StoredLeaf]) -> None:
    """A store as schema version 3 wrote it: no ``merkle_nodes``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        for statement in V1_SCHEMA:
            raw.execute(statement)
        raw.execute("ALTER TABLE leaves ADD COLUMN invalid TEXT")
        raw.execute("ALTER TABLE leaves ADD COLUMN signer TEXT")
        raw.execute("INSERT INTO schema_version VALUES (3)")
        raw.executemany(
            "INSERT INTO leaves VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ((r.seq, r.kafka_offset, r.record, r.leaf_hash, r.at, r.actor, r.invalid, r.signer)
             for r in rows),
        )  # fmt: skip


def test_a_version_3_store_gets_its_nodes_once_when_opened(path: Path) -> None:
    rows = batch(0, 2345)  # more than one page of leaves
    version_3_store(path, rows)
    with SqliteAuditStore(path) as store:
        assert stored_nodes(path) == inner(expected(rows))
        needed = inclusion_nodes(1234, 2345)
        found = store.nodes(needed)
        assert inclusion_proof_from_nodes(
            lambda level, index: found[NodeId(level, index)], 1234, 2345
        ) == inclusion_proof([r.leaf_hash for r in rows], 1234)
        # It goes on appending from where the old leaves end.
        store.append_batch(batch(2345, 7), next_offset=2352 * 2, range_state=b"")
        assert stored_nodes(path) == inner(expected(store.leaves()))
    with contextlib.closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(4,)]


def test_a_version_1_store_is_migrated_to_nodes_too(path: Path) -> None:
    rows = batch(0, 9)
    path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        for statement in V1_SCHEMA:
            raw.execute(statement)
        raw.execute("INSERT INTO schema_version VALUES (1)")
        raw.executemany(
            "INSERT INTO leaves VALUES (?, ?, ?, ?, ?, ?)",
            ((r.seq, r.kafka_offset, r.record, r.leaf_hash, r.at, r.actor) for r in rows),
        )
    SqliteAuditStore(path).close()
    assert stored_nodes(path) == inner(expected(rows))


def test_an_empty_version_3_store_migrates_to_no_nodes(path: Path) -> None:
    version_3_store(path, [])
    with SqliteAuditStore(path) as store:
        assert stored_nodes(path) == {}
        store.append_batch(batch(0, 4), next_offset=8, range_state=b"")
        assert stored_nodes(path) == inner(expected(batch(0, 4)))


def test_an_old_store_with_a_gap_gets_nodes_only_up_to_it(path: Path) -> None:
    rows = [*batch(0, 6), *batch(7, 3)]  # leaf 6 removed by hand
    version_3_store(path, rows)
    with SqliteAuditStore(path) as store:
        assert stored_nodes(path) == inner(expected(rows[:6]))
        with pytest.raises(AuditStoreError, match=r"no Merkle node \(0, 6\)"):
            store.nodes(inclusion_nodes(0, 7))


# ---- the auditor's proofs read O(log n) nodes ------------------------------------------------

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1", topic_prefix="")
ORIGIN = audit_origin(SETTINGS)
VKEY = note_verifier_key(ORIGIN, KEYS[AUDIT].public_raw)
ABOUT = (7, 1500, 2999, 3000, 4095)  # leaves whose records name EVENT
SIZE, OLD = 4100, 3001


class CountingStore(SqliteAuditStore):
    """The SQLite store, counting the SQL statements it runs and the nodes it is asked
    for; reading every leaf hash fails the test."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.statements: list[str] = []
        self.node_reads: list[int] = []
        self._db.set_trace_callback(self.statements.append)

    def nodes(self, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
        found = super().nodes(ids)
        self.node_reads.append(len(found))
        return found

    def leaf_hashes(self, end: int | None = None, *, start: int = 0) -> list[bytes]:
        raise AssertionError("a proof read every leaf hash")


def value(seq: int) -> bytes:
    if seq not in ABOUT:
        return b'{"not": "a signed record"}'  # an invalid leaf: cheap, and still a leaf
    record = FeedRead(
        at=AT, actor="analyst:a.khan", analyst="a.khan", purpose=f"read {seq}", returned=1,
        event_ids=(uuid.UUID(EVENT),),
    )  # fmt: skip
    return seal_record(record, KEYS[READER])


def log_rows(count: int) -> list[StoredLeaf]:
    return [
        leaf_row(seq, inbound, judge_value(inbound, TRUST))
        for seq in range(count)
        for inbound in [
            InboundRecord("liaison.audit", 0, seq, AT_MS, None, value(seq), timestamp_type=1)
        ]
    ]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """A store of ``SIZE`` leaves with checkpoints at ``OLD`` and ``SIZE``."""
    path = tmp_path_factory.mktemp("log") / "leaves.sqlite"
    rows = log_rows(SIZE)
    hashes = [r.leaf_hash for r in rows]
    with SqliteAuditStore(path) as store:
        for start in range(0, SIZE, 1000):
            part = rows[start : start + 1000]
            store.append_batch(part, next_offset=part[-1].kafka_offset + 1, range_state=b"")
        for size in (OLD, SIZE):
            top = root(hashes[:size])
            note = sign_checkpoint(Checkpoint(ORIGIN, size, top), KEYS[AUDIT], ORIGIN)
            store.add_checkpoint(size, top, utc_text(AT), note)
    return path, hashes


def test_prove_reads_log_n_nodes_and_its_proof_verifies(log: tuple[Path, list[bytes]]) -> None:
    path, hashes = log
    with CountingStore(path) as store:
        document = prove(SETTINGS, store, TRUST, EVENT)
        statements, reads = list(store.statements), list(store.node_reads)
    assert [p.seq for p in document.proofs] == list(ABOUT)
    for item in document.proofs:
        assert item.path() == inclusion_proof(hashes, item.seq)
    lines = check_proof(document, VKEY, TRUST)
    assert lines[0] == f"checkpoint {ORIGIN} size {SIZE}: signature OK"
    assert all(line.endswith(": included") for line in lines[1:-1])
    # One read of the nodes for every proof at once: at most two per level each.
    assert len(reads) == 1
    assert reads[0] <= len(ABOUT) * (2 * math.ceil(math.log2(SIZE)) + 1)
    # A handful of statements per proven leaf, whatever the size of the log.
    assert len(statements) <= 8 + 4 * len(ABOUT)
    assert not any("leaf_hash FROM leaves WHERE seq >=" in s for s in statements)


def test_proofs_from_nodes_equal_proofs_from_every_leaf(log: tuple[Path, list[bytes]]) -> None:
    path, hashes = log
    with SqliteAuditStore(path) as store:
        checkpoint = (SIZE, store.checkpoints()[-1].note)
        seqs = store.seqs_for_event(EVENT)
        from_nodes = inclusion_document(
            SETTINGS, store, TRUST, EVENT, seqs=seqs, checkpoint=checkpoint
        )
        from_hashes = inclusion_document(
            SETTINGS, store, TRUST, EVENT, seqs=seqs, checkpoint=checkpoint, hashes=hashes
        )
    assert from_nodes == from_hashes


def test_consistency_reads_log_n_nodes_and_verifies(log: tuple[Path, list[bytes]]) -> None:
    path, hashes = log
    with CountingStore(path) as store:
        document = consistency(SETTINGS, store, TRUST, OLD, SIZE)
        reads = list(store.node_reads)
    assert document.path() == consistency_proof(hashes, OLD)
    assert check_proof(document, VKEY, None) == [
        f"checkpoints {OLD} and {SIZE} of {ORIGIN}: consistent (append-only)"
    ]
    assert reads == [len(consistency_nodes(OLD, SIZE))]
    assert reads[0] <= 2 * math.ceil(math.log2(SIZE)) + 1


def test_a_root_from_the_store_s_nodes_is_the_log_s_root(log: tuple[Path, list[bytes]]) -> None:
    path, hashes = log
    compact = CompactRange()
    compact.extend(hashes)
    with SqliteAuditStore(path) as store:
        edge = store.nodes(range_nodes(SIZE))
    assert tuple(edge[n] for n in range_nodes(SIZE)) == compact.to_state().hashes
    assert root_from_nodes(lambda level, index: edge[NodeId(level, index)], SIZE) == root(hashes)


# ---- streaming every leaf (what `audit verify` does) stays linear ----------------------


def vm_steps_to_stream(path: Path, leaves: int) -> int:
    """SQLite virtual-machine steps (in thousands) to stream every leaf of a new store of
    ``leaves`` leaves: a count of work done, not a time."""
    with SqliteAuditStore(path) as store:
        for start in range(0, leaves, 5000):
            store.append_batch(batch(start, 5000), next_offset=(start + 5000) * 2, range_state=b"")
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        store._db.set_progress_handler(count, 1000)
        assert sum(1 for _ in store.leaves()) == leaves
        assert sum(1 for _ in store.leaves(leaves // 2)) == leaves - leaves // 2
        return steps[0]


def test_streaming_every_leaf_is_linear_in_the_log(tmp_path: Path) -> None:
    # Each page of leaves must start where the last ended, not scan from the first leaf.
    small = vm_steps_to_stream(tmp_path / "small.sqlite", 5000)
    large = vm_steps_to_stream(tmp_path / "large.sqlite", 20000)
    assert large < 6 * small
