"""The SQLite leaf store: order, atomic batches, durability across crashes, queries."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.audit import (
    EARLIEST_AT,
    LATEST_AT,
    FeedRead,
    InvalidReason,
    decode_record,
    encode_record,
    leaf_data,
    unsealed,
)
from schemas.merkle import leaf_hash
from schemas.records import InboundRecord
from services.audit_service import judge_value, leaf_row
from services.audit_store import (
    AuditStore,
    AuditStoreError,
    SqliteAuditStore,
    StoredCheckpoint,
    StoredLeaf,
    utc_text,
)
from tests.unit.test_audit_proof import one_error_line
from tests.unit.test_audit_records import HOSTILE, SAMPLES
from tests.unit.test_audit_sealed import owner_of, sealed, signing_keys, trust_of

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
EVENT = "6f1c0d2e-0c5e-4e0e-9b1e-2b0b1c8d6e77"
SIGNER = "ab" * 32


def leaf(
    seq: int,
    *,
    offset: int | None = None,
    actor: str = "router:0",
    event_ids: tuple[str, ...] = (),
    minutes: int | None = None,
    signer: str = SIGNER,
) -> StoredLeaf:
    """A leaf with made-up record bytes and hash (the store does no maths on them)."""
    record = b'{"n":%d}' % seq
    return StoredLeaf(
        seq=seq,
        kafka_offset=seq * 2 if offset is None else offset,
        record=record,
        leaf_hash=hashlib.sha256(b"\x00%d\n" % seq + record).digest(),
        at=utc_text(T0 + dt.timedelta(minutes=seq if minutes is None else minutes)),
        actor=actor,
        event_ids=event_ids,
        signer=signer,
    )


def batch(start: int, count: int) -> list[StoredLeaf]:
    return [leaf(seq) for seq in range(start, start + count)]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "leaves.sqlite"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteAuditStore]:
    with SqliteAuditStore(path) as opened:
        yield opened


def run_python(code: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, from the repository root, with ``PATH`` set
    to the store's path."""
    return subprocess.run(
        [sys.executable, "-c", f"PATH = {str(path)!r}\n" + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# ---- a fresh store ---------------------------------------------------------------------


def test_a_new_store_is_empty(store: SqliteAuditStore) -> None:
    assert (store.next_seq(), store.size(), store.next_offset()) == (0, 0, 0)
    assert store.range_state() is None
    assert list(store.leaves()) == []
    assert store.leaf_hashes() == []
    assert store.checkpoints() == []
    assert store.latest_checkpoint() is None


def test_sqlite_store_is_an_audit_store(store: SqliteAuditStore) -> None:
    as_protocol: AuditStore = store
    assert as_protocol.size() == 0


def test_durability_settings_are_in_force(store: SqliteAuditStore, path: Path) -> None:
    # synchronous: 2 is FULL (fsync the WAL at every commit, so it survives power loss).
    assert store.pragmas() == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}
    # WAL mode is a property of the file: another connection sees it too.
    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_schema_version_is_recorded_and_a_newer_store_refused(path: Path) -> None:
    SqliteAuditStore(path).close()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(4,)]
        with raw:
            raw.execute("UPDATE schema_version SET version = 5")
    finally:
        raw.close()
    with pytest.raises(AuditStoreError, match="schema version 5"):
        SqliteAuditStore(path)


# The schema as version 1 created it, verbatim: a store written then must still open.
V1_SCHEMA = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE leaves (
        seq INTEGER PRIMARY KEY,
        kafka_offset INTEGER NOT NULL UNIQUE,
        record BLOB NOT NULL,
        leaf_hash BLOB NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL
    )""",
    "CREATE INDEX leaves_by_actor ON leaves (actor, seq)",
    """CREATE TABLE leaf_events (
        seq INTEGER NOT NULL REFERENCES leaves (seq),
        position INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (seq, position)
    )""",
    "CREATE INDEX leaf_events_by_event ON leaf_events (event_id)",
    """CREATE TABLE checkpoints (
        size INTEGER PRIMARY KEY,
        root BLOB NOT NULL,
        at TEXT NOT NULL,
        note TEXT NOT NULL
    )""",
    "CREATE TABLE state (key TEXT PRIMARY KEY, value BLOB)",
)


def test_a_version_1_store_is_migrated_and_its_invalid_and_unsigned_leaves_marked(
    path: Path,
) -> None:
    good, bad = leaf(0, event_ids=(EVENT,)), leaf(1)
    path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        for statement in V1_SCHEMA:
            raw.execute(statement)
        raw.execute("INSERT INTO schema_version VALUES (1)")
        # Version 1 kept a value that was no record under this made-up actor.
        for row, actor in ((good, good.actor), (bad, "unknown:invalid-record")):
            raw.execute(
                "INSERT INTO leaves VALUES (?, ?, ?, ?, ?, ?)",
                (row.seq, row.kafka_offset, row.record, row.leaf_hash, row.at, actor),
            )
        raw.execute("INSERT INTO leaf_events VALUES (0, 0, ?)", (EVENT,))
    with SqliteAuditStore(path) as store:
        # Version 1's records were bare JSON: unsigned, so invalid from version 3 on.
        assert list(store.leaves()) == [
            replace(good, actor="", invalid="unsigned", event_ids=(), signer=None),
            replace(bad, actor="", invalid="unclassified", signer=None),
        ]
        assert store.invalid_count() == 2
        assert list(store.by_actor("unknown:invalid-record")) == []
        assert store.seqs_for_event(EVENT) == []
        store.append_batch([leaf(2)], next_offset=10, range_state=b"")
    with contextlib.closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(4,)]


def test_a_version_2_store_gains_signers_and_its_bare_records_become_unsigned(
    path: Path,
) -> None:
    good, bad = leaf(0, event_ids=(EVENT,), actor="analyst:a.khan"), leaf(1)
    path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        for statement in V1_SCHEMA:
            raw.execute(statement)
        raw.execute("ALTER TABLE leaves ADD COLUMN invalid TEXT")
        raw.execute("INSERT INTO schema_version VALUES (2)")
        for row, invalid in ((good, None), (bad, "not_json")):
            raw.execute(
                "INSERT INTO leaves VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.seq, row.kafka_offset, row.record, row.leaf_hash, row.at,
                 row.actor if invalid is None else "", invalid),
            )  # fmt: skip
        raw.execute("INSERT INTO leaf_events VALUES (0, 0, ?)", (EVENT,))
    with SqliteAuditStore(path) as store:
        assert [(r.invalid, r.actor, r.event_ids, r.signer) for r in store.leaves()] == [
            ("unsigned", "", (), None),
            ("not_json", "", (), None),
        ]
        assert list(store.by_actor("analyst:a.khan")) == []
        assert store.seqs_for_event(EVENT) == []
        assert store.stray_event_seq() is None
        store.append_batch([leaf(2, event_ids=(EVENT,))], next_offset=10, range_state=b"")
        assert [r.signer for r in store.leaves(2)] == [SIGNER]
        assert store.seqs_for_event(EVENT) == [2]
    with contextlib.closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(4,)]


# ---- a file that is not a usable store ---------------------------------------------------


def full_store(path: Path) -> Path:
    with SqliteAuditStore(path) as store:
        store.append_batch(
            [leaf(n, event_ids=(EVENT,)) for n in range(3000)], next_offset=6000, range_state=b""
        )
    return path


def random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(3).randbytes(8192))  # noqa: S311 - test data


def truncated(path: Path) -> None:
    full_store(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def tables_dropped(path: Path) -> None:
    full_store(path)
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("DROP TABLE leaf_events")
        raw.execute("DROP TABLE leaves")


def version_emptied(path: Path) -> None:
    full_store(path)
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("DELETE FROM schema_version")


def another_programs_database(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")


def a_directory(path: Path) -> None:
    path.mkdir()


DAMAGE = {
    "random bytes": (random_bytes, "not a database"),
    "truncated": (truncated, "malformed"),
    "tables dropped": (tables_dropped, "leaf_events, leaves missing"),
    "schema version emptied": (version_emptied, "schema version is unreadable"),
    "another program's database": (another_programs_database, "not an audit store"),
    "a directory": (a_directory, "cannot be opened"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_store_is_one_audit_store_error_naming_the_problem(
    path: Path, damage: str
) -> None:
    spoil, problem = DAMAGE[damage]
    path.parent.mkdir(parents=True, exist_ok=True)
    spoil(path)
    with pytest.raises(AuditStoreError, match=problem) as caught, SqliteAuditStore(path) as store:
        store.seqs_for_event(EVENT)
    assert not caught.value.retriable


def test_a_store_damaged_while_open_fails_with_an_audit_store_error(
    store: SqliteAuditStore, path: Path
) -> None:
    store.append_batch(batch(0, 3), next_offset=6, range_state=b"")
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("DROP TABLE leaf_events")
    for read in (
        lambda: list(store.leaves()),
        lambda: store.seqs_for_event(EVENT),
        lambda: list(store.by_actor("router:0")),
    ):
        with pytest.raises(AuditStoreError, match="no such table"):
            read()
    with pytest.raises(AuditStoreError, match="no such table"):
        store.append_batch([leaf(3, event_ids=(EVENT,))], next_offset=8, range_state=b"")


def test_text_sqlite_cannot_store_is_refused_not_raised_on(store: SqliteAuditStore) -> None:
    # A command line's undecodable bytes arrive as lone surrogates.
    with pytest.raises(AuditStoreError, match="not valid Unicode"):
        store.seqs_for_event("\udcff")
    with pytest.raises(AuditStoreError, match="not valid Unicode"):
        list(store.by_actor("analyst:\udcff"))
    with pytest.raises(AuditStoreError, match="not valid Unicode"):
        store.append_batch([leaf(0, actor="analyst:\udcff")], next_offset=1, range_state=b"")


# ---- appending and reading back --------------------------------------------------------


def test_append_then_read_back(store: SqliteAuditStore) -> None:
    rows = [leaf(0, event_ids=(EVENT,)), leaf(1), leaf(2, event_ids=(str(uuid.uuid4()), EVENT))]
    store.append_batch(rows, next_offset=5, range_state=b"state-1")
    assert list(store.leaves()) == rows
    assert list(store.leaves(1, 2)) == rows[1:2]
    assert store.leaf_hashes() == [r.leaf_hash for r in rows]
    assert store.leaf_hashes(2) == [r.leaf_hash for r in rows[:2]]
    assert store.leaf_hashes(3, start=1) == [r.leaf_hash for r in rows[1:]]
    assert (store.next_seq(), store.size(), store.next_offset()) == (3, 3, 5)
    assert store.range_state() == b"state-1"


def test_batches_accumulate_and_state_is_replaced(store: SqliteAuditStore) -> None:
    store.append_batch(batch(0, 2), next_offset=3, range_state=b"a")
    store.append_batch(batch(2, 3), next_offset=9, range_state=b"b")
    assert [r.seq for r in store.leaves()] == [0, 1, 2, 3, 4]
    assert (store.next_offset(), store.range_state()) == (9, b"b")


def test_an_empty_batch_only_moves_the_offset_on(store: SqliteAuditStore) -> None:
    store.append_batch(batch(0, 1), next_offset=1, range_state=b"a")
    # Kafka transaction markers take offsets but carry no record.
    store.append_batch([], next_offset=4, range_state=b"a")
    assert (store.size(), store.next_offset()) == (1, 4)


def test_reading_streams_in_pages_across_a_large_log(store: SqliteAuditStore) -> None:
    store.append_batch(batch(0, 2500), next_offset=5000, range_state=b"")
    seqs = [r.seq for r in store.leaves(10)]
    assert seqs == list(range(10, 2500))


def test_leaves_are_the_log_as_it_was_when_asked(store: SqliteAuditStore) -> None:
    store.append_batch(batch(0, 2), next_offset=4, range_state=b"")
    reading = store.leaves()
    store.append_batch(batch(2, 2), next_offset=8, range_state=b"")
    assert [r.seq for r in reading] == [0, 1]


def test_the_store_reopens_with_everything(path: Path) -> None:
    with SqliteAuditStore(path) as first:
        first.append_batch(batch(0, 3), next_offset=6, range_state=b"r")
        first.add_checkpoint(3, b"\x01" * 32, utc_text(T0), "published at offset 0")
    with SqliteAuditStore(path) as again:
        assert list(again.leaves()) == batch(0, 3)
        assert (again.next_offset(), again.range_state()) == (6, b"r")
        assert again.checkpoints() == [
            StoredCheckpoint(3, b"\x01" * 32, utc_text(T0), "published at offset 0")
        ]


# ---- refusals leave nothing behind -----------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        (batch(1, 2), "out of order"),  # does not start at next_seq
        ([leaf(0), leaf(2)], "out of order"),  # a gap
        ([leaf(0), leaf(1), leaf(1, offset=9)], "out of order"),  # a repeat
        ([leaf(0, offset=4), leaf(1, offset=4)], "already read"),  # offsets not increasing
        ([leaf(0), leaf(1, offset=0)], "already read"),
        ([replace(leaf(0), at="2026-11-22T12:00:00Z")], "fixed-width UTC"),
        ([leaf(0, event_ids=(EVENT.upper(),))], "lowercase hyphenated UUID"),
        ([leaf(0, actor="")], "no actor"),
        ([replace(leaf(0), actor="", invalid="Not JSON")], "a code like"),
        ([replace(leaf(0, event_ids=(EVENT,)), actor="", invalid="not_json")], "no event"),
        ([replace(leaf(0), invalid="not_json")], "no actor"),
        ([leaf(0, signer="AB" * 32)], "signer is not a key id"),
        ([replace(leaf(0), signer=None)], "must name its signer"),
    ],
)
def test_a_bad_batch_is_refused_whole(
    store: SqliteAuditStore, rows: list[StoredLeaf], why: str
) -> None:
    with pytest.raises(AuditStoreError, match=why):
        store.append_batch(rows, next_offset=100, range_state=b"bad")
    assert (store.size(), store.next_offset(), store.range_state()) == (0, 0, None)
    assert store.seqs_for_event(EVENT) == []
    # The store is still usable after a refusal.
    store.append_batch(batch(0, 1), next_offset=1, range_state=b"ok")
    assert store.size() == 1


def test_offsets_already_read_are_refused(store: SqliteAuditStore) -> None:
    store.append_batch(batch(0, 2), next_offset=10, range_state=b"")
    with pytest.raises(AuditStoreError, match="already read"):
        store.append_batch([leaf(2, offset=9)], next_offset=11, range_state=b"")
    with pytest.raises(AuditStoreError, match="re-read"):
        store.append_batch([], next_offset=9, range_state=b"")
    with pytest.raises(AuditStoreError, match="re-read"):
        store.append_batch([leaf(2, offset=12)], next_offset=12, range_state=b"")
    assert (store.size(), store.next_offset()) == (2, 10)


class Exploding(list[StoredLeaf]):
    """Rows whose iteration fails after the first two have been written."""

    def __iter__(self) -> Iterator[StoredLeaf]:
        yield from self[:2]
        raise RuntimeError("the producer of rows failed")


def test_a_batch_interrupted_by_an_exception_leaves_nothing(store: SqliteAuditStore) -> None:
    store.append_batch(batch(0, 1), next_offset=1, range_state=b"before")
    with pytest.raises(RuntimeError):
        store.append_batch(Exploding(batch(1, 3)), next_offset=99, range_state=b"after")
    assert (store.size(), store.next_offset(), store.range_state()) == (1, 1, b"before")
    store.append_batch(batch(1, 3), next_offset=7, range_state=b"after")
    assert store.size() == 4


def test_a_write_locked_by_another_process_is_refused_as_retriable(path: Path) -> None:
    with SqliteAuditStore(path, busy_timeout_s=0.05) as store:
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(AuditStoreError, match="busy") as caught:
                store.append_batch(batch(0, 1), next_offset=1, range_state=b"")
            assert caught.value.retriable
        finally:
            holder.close()
        store.append_batch(batch(0, 1), next_offset=1, range_state=b"")
        assert store.size() == 1


def test_refusals_are_not_retriable(store: SqliteAuditStore) -> None:
    with pytest.raises(AuditStoreError) as caught:
        store.append_batch(batch(5, 1), next_offset=20, range_state=b"")
    assert not caught.value.retriable


# ---- crashes ---------------------------------------------------------------------------

_PRELUDE = """
    import datetime as dt, hashlib, os, signal, sys
    from pathlib import Path
    from services.audit_store import SqliteAuditStore, StoredLeaf, utc_text

    def leaf(seq):
        record = b'{"n":%d}' % seq
        return StoredLeaf(seq, seq * 2, record, hashlib.sha256(record).digest(),
                          utc_text(dt.datetime(2026, 11, 22, tzinfo=dt.UTC)), "router:0",
                          ("6f1c0d2e-0c5e-4e0e-9b1e-2b0b1c8d6e77",), signer="ab" * 32)

    store = SqliteAuditStore(Path(PATH))
    store.append_batch([leaf(0), leaf(1)], next_offset=4, range_state=b"first")
"""


def test_a_batch_is_durable_once_append_returns_even_if_the_process_dies(path: Path) -> None:
    done = run_python(
        _PRELUDE
        + """
    store.append_batch([leaf(2), leaf(3), leaf(4)], next_offset=10, range_state=b"second")
    os.kill(os.getpid(), signal.SIGKILL)  # no close(), no interpreter shutdown
    """,
        path,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    with SqliteAuditStore(path) as reopened:
        assert [r.seq for r in reopened.leaves()] == [0, 1, 2, 3, 4]
        assert (reopened.next_offset(), reopened.range_state()) == (10, b"second")
        assert reopened.seqs_for_event(EVENT) == [0, 1, 2, 3, 4]


def test_a_process_killed_inside_a_batch_leaves_none_of_it(path: Path) -> None:
    done = run_python(
        _PRELUDE
        + """
    class DieMidway(list):
        # Two rows are inserted inside the open transaction, then the process dies.
        def __iter__(self):
            yield from self[:2]
            print("inside", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    store.append_batch(DieMidway([leaf(2), leaf(3), leaf(4)]), next_offset=10,
                       range_state=b"second")
    """,
        path,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout == "inside\n"
    with SqliteAuditStore(path) as reopened:
        assert [r.seq for r in reopened.leaves()] == [0, 1]
        assert (reopened.next_offset(), reopened.range_state()) == (4, b"first")
        reopened.append_batch([leaf(2), leaf(3)], next_offset=8, range_state=b"resumed")
        assert reopened.size() == 4


# ---- queries ---------------------------------------------------------------------------


def test_who_saw_an_event(store: SqliteAuditStore) -> None:
    other = str(uuid.uuid4())
    store.append_batch(
        [
            leaf(0, event_ids=(EVENT,), actor="inspectorate:ofsted"),
            leaf(1, event_ids=(other,)),
            leaf(2, event_ids=(other, EVENT), actor="analyst:a.khan"),
            leaf(3),
        ],
        next_offset=8,
        range_state=b"",
    )
    assert store.seqs_for_event(EVENT) == [0, 2]
    assert store.seqs_for_event(other) == [1, 2]
    # A person may type the id in upper case or without hyphens.
    assert store.seqs_for_event(EVENT.upper()) == [0, 2]
    assert store.seqs_for_event(uuid.UUID(EVENT).hex) == [0, 2]
    assert store.seqs_for_event("not-an-id") == []
    # Event ids come back in the order the record listed them.
    assert next(store.leaves(2, 3)).event_ids == (other, EVENT)


def test_by_actor_in_order_and_since(store: SqliteAuditStore) -> None:
    rows = [
        leaf(0, actor="analyst:a.khan", minutes=0),
        leaf(1, actor="router:0", minutes=1),
        leaf(2, actor="analyst:a.khan", minutes=2),
        leaf(3, actor="analyst:a.khan", minutes=3),
    ]
    store.append_batch(rows, next_offset=8, range_state=b"")
    assert [r.seq for r in store.by_actor("analyst:a.khan")] == [0, 2, 3]
    since = utc_text(T0 + dt.timedelta(minutes=2))
    assert [r.seq for r in store.by_actor("analyst:a.khan", since)] == [2, 3]
    assert list(store.by_actor("analyst:nobody")) == []


def test_invalid_leaves_are_kept_and_counted_but_never_listed_as_anyones(
    store: SqliteAuditStore,
) -> None:
    rows = [
        leaf(0, event_ids=(EVENT,), actor="analyst:a.khan"),
        replace(leaf(1), actor="", invalid="not_json"),
        leaf(2, event_ids=(EVENT,), actor="analyst:a.khan"),
        replace(leaf(3), actor="", invalid="invalid_fields"),
    ]
    store.append_batch(rows, next_offset=8, range_state=b"")
    assert list(store.leaves()) == rows
    assert [r.invalid for r in store.leaves()] == [None, "not_json", None, "invalid_fields"]
    assert store.invalid_count() == 2
    assert store.leaf_hashes() == [r.leaf_hash for r in rows]
    assert store.seqs_for_event(EVENT) == [0, 2]
    assert [r.seq for r in store.by_actor("analyst:a.khan")] == [0, 2]
    assert list(store.by_actor("")) == []


def test_times_in_other_forms_are_refused(store: SqliteAuditStore) -> None:
    # Text order is time order only in one fixed-width form.
    with pytest.raises(AuditStoreError, match="fixed-width UTC"):
        store.by_actor("router:0", "2026-11-22T12:00:00+00:00")
    with pytest.raises(AuditStoreError, match="aware"):
        utc_text(dt.datetime(2026, 11, 22))  # noqa: DTZ001 - the naive time is the point
    assert utc_text(T0.astimezone(dt.timezone(dt.timedelta(hours=-5)))) == (
        "2026-11-22T12:00:00.000000Z"
    )


def test_stored_times_are_fixed_width_in_every_year() -> None:
    # strftime writes the year 1 as "1" on Linux: text order would no longer be time order.
    assert utc_text(dt.datetime(1, 1, 1, tzinfo=dt.UTC)) == "0001-01-01T00:00:00.000000Z"
    assert utc_text(dt.datetime(999, 2, 3, 4, 5, 6, 7, tzinfo=dt.UTC)) == (
        "0999-02-03T04:05:06.000007Z"
    )
    far = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(-dt.timedelta(hours=23)))
    with pytest.raises(AuditStoreError, match="years 1 to 9999"):
        utc_text(far)


# ---- checkpoints -----------------------------------------------------------------------


def test_checkpoints_are_ordered_by_size(store: SqliteAuditStore) -> None:
    store.append_batch(batch(0, 10), next_offset=20, range_state=b"")
    for size in (7, 2, 10, 0):
        store.add_checkpoint(size, bytes([size]) * 32, utc_text(T0), f"size {size}")
    assert [c.size for c in store.checkpoints()] == [0, 2, 7, 10]
    latest = store.latest_checkpoint()
    assert latest == StoredCheckpoint(10, bytes([10]) * 32, utc_text(T0), "size 10")


def test_the_same_checkpoint_twice_is_harmless_but_a_fork_is_refused(
    store: SqliteAuditStore,
) -> None:
    store.append_batch(batch(0, 4), next_offset=8, range_state=b"")
    store.add_checkpoint(4, b"\x01" * 32, utc_text(T0), "first")
    store.add_checkpoint(4, b"\x01" * 32, utc_text(T0), "again")
    with pytest.raises(AuditStoreError, match="different root"):
        store.add_checkpoint(4, b"\x02" * 32, utc_text(T0), "fork")
    assert store.checkpoints() == [StoredCheckpoint(4, b"\x01" * 32, utc_text(T0), "first")]


def test_a_checkpoint_beyond_the_log_is_refused(store: SqliteAuditStore) -> None:
    store.append_batch(batch(0, 2), next_offset=4, range_state=b"")
    with pytest.raises(AuditStoreError, match="beyond"):
        store.add_checkpoint(3, b"\x00" * 32, utc_text(T0), "too far")
    assert store.checkpoints() == []


# ---- what the audit service stores for each value on the topic ---------------------------

T0_MS = int(T0.timestamp() * 1000)
KEYS = signing_keys()
TRUST = trust_of(KEYS, T0 - dt.timedelta(days=1))
# judge_sealed's own reasons for values that are no DSSE envelope at all.
_SHAPELESS = {InvalidReason.EMPTY, InvalidReason.TOO_LARGE, InvalidReason.NOT_JSON,
              InvalidReason.NOT_AN_OBJECT}  # fmt: skip


def inbound(offset: int, value: bytes, timestamp_ms: int = T0_MS) -> InboundRecord:
    return InboundRecord("liaison.audit", 0, offset, timestamp_ms, None, value, timestamp_type=1)


def row_of(seq: int, record: InboundRecord) -> StoredLeaf:
    """What the audit service stores for ``record`` (judged against ``TRUST``)."""
    return leaf_row(seq, record, judge_value(record, TRUST))


def test_every_value_becomes_a_leaf_and_the_bad_ones_are_marked(
    store: SqliteAuditStore,
) -> None:
    good = [sealed(record, KEYS) for record in SAMPLES.values()]
    values = [good[0], *(raw for raw, _ in HOSTILE.values()), *good[1:]]
    rows = [row_of(seq, inbound(seq * 2, value)) for seq, value in enumerate(values)]
    store.append_batch(rows, next_offset=len(values) * 2, range_state=b"")

    stored = list(store.leaves())
    assert [r.record for r in stored] == values  # byte for byte, nothing dropped
    assert [r.leaf_hash for r in stored] == [
        leaf_hash(leaf_data(seq, value)) for seq, value in enumerate(values)
    ]
    invalid = {r.record: r.invalid for r in stored if r.invalid is not None}
    # A bare record, however well formed, is unsigned; shapeless bytes keep their reason.
    assert invalid == {
        raw: (reason if reason in _SHAPELESS else InvalidReason.UNSIGNED).value
        for raw, reason in HOSTILE.values()
    }
    assert store.invalid_count() == len(HOSTILE)
    for row in stored:
        if row.invalid is None:
            payload = unsealed(row.record)
            assert payload is not None
            record = decode_record(payload)
            assert (row.actor, row.at) == (record.actor, utc_text(record.at))
            assert row.event_ids == tuple(str(i) for i in record.event_ids)
            assert row.signer == KEYS[owner_of(record.actor)].keyid
        else:
            assert (row.actor, row.event_ids, row.at, row.signer) == ("", (), utc_text(T0), None)


@pytest.mark.parametrize(
    ("timestamp_ms", "at"),
    [
        (-1, EARLIEST_AT),
        (0, EARLIEST_AT),
        (-(2**63), EARLIEST_AT),
        (2**63 - 1, LATEST_AT - dt.timedelta(milliseconds=1)),
        (253402300800000, LATEST_AT - dt.timedelta(milliseconds=1)),
    ],
)
def test_an_absurd_broker_time_is_clamped_and_no_signed_record_passes_at_it(
    timestamp_ms: int, at: dt.datetime
) -> None:
    row = row_of(0, inbound(0, b"not json", timestamp_ms))
    assert (row.invalid, row.at) == ("not_json", utc_text(at))
    signed = row_of(0, inbound(0, sealed(SAMPLES["feed.read"], KEYS), timestamp_ms))
    assert signed.invalid in {"key_not_valid", "backdated"}
    assert (signed.actor, signed.event_ids) == ("", ())
    # The same bytes at the same time give the same leaf: `audit verify` can derive it.
    assert row_of(0, inbound(0, b"not json", timestamp_ms)) == row


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.binary(max_size=300), min_size=1, max_size=5),
    timestamp_ms=st.integers(-(2**63), 2**63 - 1),
)
def test_no_value_and_no_timestamp_can_stop_the_store(
    values: list[bytes], timestamp_ms: int
) -> None:
    rows = [row_of(seq, inbound(seq, value, timestamp_ms)) for seq, value in enumerate(values)]
    with (
        tempfile.TemporaryDirectory() as scratch,
        SqliteAuditStore(Path(scratch) / "store.sqlite") as scratch_store,
    ):
        scratch_store.append_batch(rows, next_offset=len(rows), range_state=b"")
        assert [r.record for r in scratch_store.leaves()] == values


# ---- the auditor's commands on a damaged store or bad arguments (no broker needed) ----


def liaison(store_path: Path, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    """`liaison ARGS...` against the store at ``store_path``, as a user runs it."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")},
        "LIAISON_AUDIT_STORE": str(store_path),
        "LIAISON_HOME": str(store_path.parent / "home"),
    }
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("damage", DAMAGE)
def test_who_saw_and_activity_on_a_damaged_store_print_one_error_line(
    path: Path, damage: str
) -> None:
    spoil, problem = DAMAGE[damage]
    path.parent.mkdir(parents=True, exist_ok=True)
    spoil(path)
    for args in (("audit", "who-saw", EVENT), ("audit", "activity", "--actor", "router:0")):
        line = one_error_line(liaison(path, *args))
        assert problem in line, line


def test_who_saw_and_activity_show_records_not_invalid_values(path: Path) -> None:
    read = FeedRead(
        at=T0, actor="analyst:a.khan", analyst="a.khan", purpose="[/] [bold]JTAI[/bold] prep",
        returned=1, event_ids=(uuid.UUID(EVENT),),
    )  # fmt: skip
    forged = encode_record(read.model_copy(update={"purpose": "forged"}))  # bare: unsigned
    values = [sealed(read, KEYS), b"not json", HOSTILE["year 10000 in UTC"][0], forged]
    with SqliteAuditStore(path) as store:
        rows = [row_of(seq, inbound(seq, value)) for seq, value in enumerate(values)]
        store.append_batch(rows, next_offset=len(rows), range_state=b"")

    saw = liaison(path, "audit", "who-saw", EVENT.upper())
    assert saw.returncode == 0, saw.stderr
    assert "[/] [bold]JTAI[/bold] prep" in saw.stdout  # shown as text, never as markup
    assert "analyst:a.khan" in saw.stdout
    assert "invalid" not in saw.stdout
    done = liaison(path, "audit", "activity", "--actor", "analyst:a.khan", "--since", "2026-01-01")
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if "feed.read" in line]
    assert "not json" not in done.stdout
    assert "forged" not in saw.stdout + done.stdout


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("audit", "who-saw", "not-an-id"), "EVENT_ID must be an event's UUID"),
        (("audit", "who-saw", os.fsdecode(b"\xff\xfe")), "EVENT_ID must be an event's UUID"),
        (("audit", "who-saw", "[/]"), "EVENT_ID must be an event's UUID"),
        (("audit", "who-saw", str(uuid.UUID(int=1))), "no audit record concerns event"),
        (("audit", "activity", "--actor", "a khan"), "actor: must be <kind>:<name>"),
        (("audit", "activity", "--actor", "robot:r2"), "actor: its kind"),
        (("audit", "activity", "--actor", os.fsdecode(b"analyst:\xff")), "actor: must be"),
        (
            ("audit", "activity", "--actor", "router:0", "--since", "0001-01-01T00:00:00+23:59"),
            "--since",
        ),
        (("audit", "activity", "--actor", "router:0", "--since", "[/]"), "--since"),
    ],
)
def test_bad_arguments_get_one_error_line(
    store: SqliteAuditStore, path: Path, args: tuple[str, ...], problem: str
) -> None:
    line = one_error_line(liaison(path, *args))
    assert problem in line, line
