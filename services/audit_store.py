"""The audit service's durable leaf store: every audit record, in order, with its hash.

The audit service reads ``liaison.audit`` and appends each record as a leaf: its
sequence number in the Merkle tree, the Kafka offset it came from, the record's exact
bytes and its leaf hash. With each batch it saves the next offset to read and the
caller's compact Merkle range state, in the same transaction, so after a crash the
service resumes exactly where the durable leaves end: never a leaf twice, never a gap.

``AuditStore`` is the interface (PostgreSQL can replace SQLite behind it);
``SqliteAuditStore`` is the default, in one file: WAL journal, ``synchronous=FULL`` (a
commit survives power loss, not only a crash of the process), foreign keys on. The store
knows nothing of Kafka: leaf hashes and range state are the caller's bytes.

So that a proof reads O(log n) rows, not every leaf hash, the store also keeps the hash
of every complete aligned subtree of the Merkle tree (``schemas.merkle.NodeId``; level
0, the leaves' own hashes, stays in ``leaves``, the rest in ``merkle_nodes``), added in
the same transaction as the leaves that complete them; ``nodes`` reads them. A store
from before them gets them once when it is opened (migration to schema version 4).

Times (``at``) are stored as fixed-width UTC text (``utc_text``) so that text order is
time order; ``append_batch`` refuses any other form.

A value on the topic that is not a valid signed audit record is still a leaf (the tree
must match the log byte for byte), stored with its reason code in ``invalid``: it names
no event and no actor, so ``seqs_for_event`` and ``by_actor`` never return it. ``signer``
is the key id whose signature verified (every valid leaf has one).

Everything but the bytes is an index the audit service derived from the log; ``audit
verify`` derives it again and compares, so an edited index is found, not trusted.

A file that is not a usable store (not SQLite, truncated, tables missing, another
program's database) fails with one ``AuditStoreError`` naming the problem, whichever
method meets it first: never a raw ``sqlite3`` error.

One store object belongs to one thread (sqlite3's rule); readers in other threads or
processes open their own, which WAL lets run beside the writer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Protocol, Self

from schemas.errors import LiaisonError
from schemas.merkle import HASH_SIZE, NodeId, ProofError, completed_nodes, range_nodes

__all__ = [
    "AuditStore",
    "AuditStoreError",
    "SqliteAuditStore",
    "StoredCheckpoint",
    "StoredLeaf",
    "utc_text",
]

SCHEMA_VERSION: Final = 4
"""1: the first; 2: ``leaves.invalid`` (the reason code of a value that is no record);
3: ``leaves.signer`` (the key id that signed the record: records are signed);
4: ``merkle_nodes`` (every complete subtree's hash: proofs in O(log n) reads)."""

# Leaves are read in pages: no read transaction stays open while a caller holds the
# iterator, and memory stays bounded however long the log grows.
_PAGE: Final = 1000

# Bound parameters per statement when reading nodes by key: far below SQLite's limit.
_PARAMS: Final = 500

_NEXT_OFFSET: Final = "next_offset"
_RANGE_STATE: Final = "range_state"

_UTC_TEXT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_REASON: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")

# Level 1 and up: level 0 is ``leaves.leaf_hash``, not kept twice. Rows only ever arrive
# at the end of each level, and are read by their key, so no rowid table is needed.
_MERKLE_NODES: Final = """CREATE TABLE merkle_nodes (
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID"""

_SCHEMA: Final = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE leaves (
        seq INTEGER PRIMARY KEY,
        kafka_offset INTEGER NOT NULL UNIQUE,
        record BLOB NOT NULL,
        leaf_hash BLOB NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        invalid TEXT,
        signer TEXT
    )""",
    "CREATE INDEX leaves_by_actor ON leaves (actor, seq)",
    # ``position`` keeps a record's event ids in the order the record lists them.
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
    _MERKLE_NODES,
)
_TABLES: Final = frozenset(
    {"schema_version", "leaves", "leaf_events", "checkpoints", "state", "merkle_nodes"}
)

# Version 1 kept a value that is no record under this made-up actor (no actor kind is
# "unknown", so no record can have it); version 2 marks it invalid instead.
_V1_INVALID_ACTOR: Final = "unknown:invalid-record"
_V1_INVALID_REASON: Final = "unclassified"
_MIGRATE_1_TO_2: Final = (
    "ALTER TABLE leaves ADD COLUMN invalid TEXT",
    f"UPDATE leaves SET invalid = '{_V1_INVALID_REASON}', actor = ''"  # noqa: S608 - constants
    f" WHERE actor = '{_V1_INVALID_ACTOR}'",
    "UPDATE schema_version SET version = 2",
)
# Version 2 accepted bare JSON records; from version 3 on, a record is valid only if it is
# signed by a key entitled to its actor. Every leaf version 2 held valid is a bare record,
# so it is now an invalid leaf ("unsigned"), named by no event and no actor: the same
# judgement the audit service and `audit verify` give its bytes today.
_MIGRATE_2_TO_3: Final = (
    "ALTER TABLE leaves ADD COLUMN signer TEXT",
    "DELETE FROM leaf_events WHERE seq IN (SELECT seq FROM leaves WHERE invalid IS NULL)",
    "UPDATE leaves SET invalid = 'unsigned', actor = '' WHERE invalid IS NULL",
    "UPDATE schema_version SET version = 3",
)
# Version 4 keeps every complete subtree's hash: the table, then ``_fill_nodes`` from
# the leaf hashes already stored (once, streamed), then the version.
_MIGRATE_3_TO_4: Final = (_MERKLE_NODES,)
_VERSION_4: Final = "UPDATE schema_version SET version = 4"
_SIGNER: Final = re.compile(r"[0-9a-f]{64}")


class AuditStoreError(LiaisonError):
    """The store refused an operation (a gap, a repeat, a conflicting checkpoint) or could
    not be used; ``retriable`` is true when the database was only busy."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        self.retriable = retriable
        super().__init__(message)


def utc_text(when: dt.datetime) -> str:
    """``when`` as the store keeps times: fixed-width UTC, ``2026-11-22T12:00:00.000000Z``."""
    if when.tzinfo is None:
        raise AuditStoreError("a stored time must be timezone-aware")
    try:
        utc = when.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:59-23:59 is in the year 10000 in UTC
        raise AuditStoreError("a time must fall within the years 1 to 9999 in UTC") from None
    # Not strftime: it writes the year 999 as "999" on some platforms, breaking the width.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond:06d}Z"
    )


@dataclass(frozen=True, slots=True)
class StoredLeaf:
    """One leaf: its position, where it came from, its exact record bytes and hash.

    ``invalid`` is None for a valid signed audit record, or the reason code of a value
    that is not one; an invalid leaf has no ``event_ids`` and an empty ``actor``, and its
    ``at`` is when the broker appended it. ``signer`` is the key id whose signature
    verified (always set on a valid leaf; on an invalid one when a trusted key signed it).
    """

    seq: int
    kafka_offset: int
    record: bytes
    leaf_hash: bytes
    at: str
    actor: str
    event_ids: tuple[str, ...] = ()
    invalid: str | None = None
    signer: str | None = None


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A tree size, its root hash, when it was taken and a note (e.g. where published)."""

    size: int
    root: bytes
    at: str
    note: str


class AuditStore(Protocol):
    """Where audit leaves, checkpoints and resume state are kept; every write is durable
    before it returns."""

    def next_seq(self) -> int:
        """The sequence number the next leaf must have (the number of leaves)."""
        ...

    def next_offset(self) -> int:
        """The next Kafka offset to read from ``liaison.audit`` (0 when empty)."""
        ...

    def append_batch(
        self, rows: Sequence[StoredLeaf], next_offset: int, range_state: bytes
    ) -> None:
        """Append ``rows`` and save the resume state, all or nothing."""
        ...

    def range_state(self) -> bytes | None:
        """The Merkle range state saved with the last batch, if any."""
        ...

    def leaves(self, start: int = 0, end: int | None = None) -> Iterator[StoredLeaf]:
        """Leaves ``start <= seq < end`` in order, streamed."""
        ...

    def leaf_hashes(self, end: int | None = None, *, start: int = 0) -> list[bytes]:
        """The hashes of leaves ``start <= seq < end``, in order."""
        ...

    def size(self) -> int:
        """The number of leaves."""
        ...

    def nodes(self, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
        """The hashes of these complete aligned subtrees of the tree (level 0: leaf
        hashes), one row each; ``AuditStoreError`` if one is not stored."""
        ...

    def seqs_for_event(self, event_id: str) -> list[int]:
        """The leaves whose records concern ``event_id`` (who saw it, and when)."""
        ...

    def by_actor(self, actor: str, since: str | None = None) -> Iterator[StoredLeaf]:
        """The leaves of one actor, in order, optionally only those at or after ``since``."""
        ...

    def invalid_count(self) -> int:
        """How many leaves hold a value that is not an audit record."""
        ...

    def stray_event_seq(self) -> int | None:
        """The first ``seq`` that event-id rows name but no leaf has, if any."""
        ...

    def add_checkpoint(self, size: int, root: bytes, at: str, note: str) -> None:
        """Record a checkpoint of the tree at ``size``."""
        ...

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every checkpoint, smallest tree first."""
        ...

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The checkpoint of the largest tree, if any."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class SqliteAuditStore:
    """``AuditStore`` in one SQLite file, created on first use."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 5.0) -> None:
        """Open (creating if need be) the store at ``path``; ``busy_timeout_s`` is how long
        a write waits for another process's write lock before ``AuditStoreError``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        try:
            # Autocommit mode: this class opens and ends every transaction itself, so each
            # batch is exactly one transaction and no write is left pending by accident.
            self._db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise AuditStoreError(f"the audit store {path} cannot be opened: {exc}") from None
        try:
            with self._reading():
                self._configure(busy_timeout_s)
                self._migrate()
                self._check_tables()
        except BaseException:
            self._db.close()
            raise

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """SQLite's errors as one ``AuditStoreError`` naming the file and the problem."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                msg = f"the audit store {self._path} is busy: {exc}"
                raise AuditStoreError(msg, retriable=True) from None
            raise AuditStoreError(f"the audit store {self._path} cannot be used: {exc}") from None
        except sqlite3.Error as exc:
            raise AuditStoreError(f"the audit store {self._path} cannot be used: {exc}") from None

    def _configure(self, busy_timeout_s: float) -> None:
        # A second process (an auditor's query, a migration) may hold the lock briefly.
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            # Some file systems (network mounts) cannot do WAL; refuse rather than run
            # with weaker guarantees than documented.
            msg = f"the audit store needs WAL journal mode; SQLite reports {mode!r}"
            raise AuditStoreError(msg)
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("PRAGMA foreign_keys = ON")

    def _tables(self) -> set[str]:
        return {
            name
            for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }

    def _migrate(self) -> None:
        with self._transaction():
            tables = self._tables()
            if "schema_version" not in tables:
                if tables:
                    msg = (
                        f"{self._path} is not an audit store (it holds other tables and no"
                        " schema version)"
                    )
                    raise AuditStoreError(msg)
                for statement in _SCHEMA:
                    self._db.execute(statement)
                self._db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                return
            rows = self._db.execute("SELECT version FROM schema_version").fetchall()
            if len(rows) != 1 or not isinstance(rows[0][0], int):
                msg = f"the audit store {self._path} is damaged: its schema version is unreadable"
                raise AuditStoreError(msg)
            version = rows[0][0]
            if version in (1, 2, 3):
                if "leaves" in tables:  # if not, _check_tables says so
                    steps = {
                        1: (*_MIGRATE_1_TO_2, *_MIGRATE_2_TO_3, *_MIGRATE_3_TO_4),
                        2: (*_MIGRATE_2_TO_3, *_MIGRATE_3_TO_4),
                        3: _MIGRATE_3_TO_4,
                    }[version]
                    for statement in steps:
                        self._db.execute(statement)
                    self._fill_nodes()
                    self._db.execute(_VERSION_4)
            elif version != SCHEMA_VERSION:
                msg = (
                    f"the audit store is at schema version {version}; this Liaison reads"
                    f" versions 1 to {SCHEMA_VERSION}"
                )
                raise AuditStoreError(msg)

    def _fill_nodes(self) -> None:
        """Every complete subtree of the leaves stored, from their hashes read in pages:
        O(n) once, O(log n) memory. A damaged store's leaves may have a gap (seq numbers
        are contiguous from 0 as the service writes them): nodes stop at the gap, so
        ``nodes`` refuses a proof beyond it rather than prove the wrong tree."""
        size = 0
        edge: list[bytes] = []
        while True:
            rows = self._db.execute(
                "SELECT seq, leaf_hash FROM leaves WHERE seq >= ? ORDER BY seq LIMIT ?",
                (size, _PAGE),
            ).fetchall()
            hashes: list[bytes] = []
            for seq, h in rows:
                if seq != size + len(hashes) or not _is_hash(h):
                    break
                hashes.append(bytes(h))
            self._insert_nodes(completed_nodes(size, edge, hashes))
            size += len(hashes)
            if len(hashes) < _PAGE:
                return
            edge = self._node_hashes(range_nodes(size))

    def _insert_nodes(self, completed: Iterator[tuple[NodeId, bytes]]) -> None:
        # OR REPLACE: a node is a function of the leaves below it; a store whose end was
        # cut by hand and appended again gets the nodes of the leaves it holds now.
        self._db.executemany(
            "INSERT OR REPLACE INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)",
            ((node.level, node.index, h) for node, h in completed if node.level),
        )

    def _check_tables(self) -> None:
        missing = _TABLES - self._tables()
        if missing:
            msg = (
                f"the audit store {self._path} is damaged: table(s)"
                f" {', '.join(sorted(missing))} missing"
            )
            raise AuditStoreError(msg)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # ---- reads -------------------------------------------------------------------------

    def next_seq(self) -> int:
        """The sequence number the next leaf must have (the number of leaves)."""
        with self._reading():
            (last,) = self._db.execute("SELECT MAX(seq) FROM leaves").fetchone()
        return 0 if last is None else int(last) + 1

    def invalid_count(self) -> int:
        """How many leaves hold a value that is not an audit record."""
        with self._reading():
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM leaves WHERE invalid IS NOT NULL"
            ).fetchone()
        return int(count)

    def stray_event_seq(self) -> int | None:
        """The first ``seq`` that event-id rows name but no leaf has, if any (an index
        edited by hand: the audit service never writes one)."""
        with self._reading():
            (seq,) = self._db.execute(
                "SELECT MIN(seq) FROM leaf_events WHERE seq NOT IN (SELECT seq FROM leaves)"
            ).fetchone()
        return None if seq is None else int(seq)

    def size(self) -> int:
        """The number of leaves (sequence numbers start at 0 and have no gaps)."""
        return self.next_seq()

    def next_offset(self) -> int:
        """The next Kafka offset to read from ``liaison.audit`` (0 when empty)."""
        value = self._state(_NEXT_OFFSET)
        return value if isinstance(value, int) else 0

    def range_state(self) -> bytes | None:
        """The Merkle range state saved with the last batch, if any."""
        value = self._state(_RANGE_STATE)
        return value if isinstance(value, bytes) else None

    def _state(self, key: str) -> object:
        with self._reading():
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def leaves(self, start: int = 0, end: int | None = None) -> Iterator[StoredLeaf]:
        """Leaves ``start <= seq < end`` (``end``: the size now), streamed in pages."""
        # Fixed here, not when the iterator is first advanced: the caller gets the log
        # as it was when asked, even if a writer appends meanwhile.
        stop = self.next_seq() if end is None else end
        # The lower bound is the pages' own ``seq > ?``: given ``seq >= start`` too, SQLite
        # bounds the rowid search by that one and scans from ``start`` for every page
        # (quadratic: minutes to stream a million leaves).
        return self._pages("seq < ?", (stop,), after=start - 1)

    def by_actor(self, actor: str, since: str | None = None) -> Iterator[StoredLeaf]:
        """The leaves of one actor in order; with ``since`` (``utc_text``), only those at
        or after it."""
        _check_text(actor, "actor")
        if since is None:
            return self._pages("actor = ? AND invalid IS NULL", (actor,))
        _check_time(since, "since")
        return self._pages("actor = ? AND invalid IS NULL AND at >= ?", (actor, since))

    def _pages(
        self, where: str, args: tuple[object, ...], *, after: int = -1
    ) -> Iterator[StoredLeaf]:
        while True:
            with self._reading():
                rows = self._db.execute(
                    "SELECT seq, kafka_offset, record, leaf_hash, at, actor, invalid, signer"  # noqa: S608 - `where` is one of this module's literals
                    f" FROM leaves WHERE {where} AND seq > ? ORDER BY seq LIMIT ?",
                    (*args, after, _PAGE),
                ).fetchall()
                if not rows:
                    return
                ids = self._event_ids(rows[0][0], rows[-1][0])
            for seq, offset, record, leaf_hash, at, actor, invalid, signer in rows:
                yield StoredLeaf(
                    seq,
                    offset,
                    bytes(record),
                    bytes(leaf_hash),
                    at,
                    actor,
                    ids.get(seq, ()),
                    invalid,
                    signer,
                )
            after = rows[-1][0]

    def _event_ids(self, first: int, last: int) -> dict[int, tuple[str, ...]]:
        found: dict[int, list[str]] = {}
        for seq, event_id in self._db.execute(
            "SELECT seq, event_id FROM leaf_events WHERE seq BETWEEN ? AND ?"
            " ORDER BY seq, position",
            (first, last),
        ):
            found.setdefault(seq, []).append(event_id)
        return {seq: tuple(ids) for seq, ids in found.items()}

    def leaf_hashes(self, end: int | None = None, *, start: int = 0) -> list[bytes]:
        """The hashes of leaves ``start <= seq < end`` (``end``: all), in order."""
        stop = self.next_seq() if end is None else end
        with self._reading():
            return [
                bytes(h)
                for (h,) in self._db.execute(
                    "SELECT leaf_hash FROM leaves WHERE seq >= ? AND seq < ? ORDER BY seq",
                    (start, stop),
                )
            ]

    def nodes(self, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
        """The hashes of these complete aligned subtrees (level 0: leaf hashes), read by
        key: one row each, whatever the size of the log. ``AuditStoreError`` if one is
        not stored (beyond the leaves stored, or a damaged store)."""
        with self._reading():
            return self._nodes(ids)

    def _nodes(self, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
        wanted = list(dict.fromkeys(ids))
        found: dict[NodeId, bytes] = {}
        leaves = [i.index for i in wanted if i.level == 0]
        inner = [i for i in wanted if i.level > 0]
        # One statement per kind, each a lookup by primary key per wanted row. Batches
        # stay well under SQLite's limit on bound parameters (32,766; 999 before 3.32).
        for start in range(0, len(leaves), _PARAMS):
            seqs = leaves[start : start + _PARAMS]
            marks = ", ".join("?" * len(seqs))
            for seq, h in self._db.execute(
                f"SELECT seq, leaf_hash FROM leaves WHERE seq IN ({marks})",  # noqa: S608 - placeholders only
                seqs,
            ):
                found[NodeId(0, seq)] = bytes(h)
        for start in range(0, len(inner), _PARAMS // 2):
            keys = inner[start : start + _PARAMS // 2]
            values = ", ".join(["(?, ?)"] * len(keys))
            for level, index, h in self._db.execute(
                f"WITH wanted (level, idx) AS (VALUES {values})"  # noqa: S608 - placeholders only
                " SELECT n.level, n.idx, n.hash FROM wanted w"
                " JOIN merkle_nodes n ON n.level = w.level AND n.idx = w.idx",
                [x for key in keys for x in (key.level, key.index)],
            ):
                found[NodeId(level, index)] = bytes(h)
        missing = [i for i in wanted if i not in found]
        if missing:
            level, index = missing[0].level, missing[0].index
            msg = (
                f"the audit store {self._path} has no Merkle node ({level}, {index}) (leaves"
                f" {index << level} to {((index + 1) << level) - 1}): beyond its leaves, or"
                " damaged (run `liaison audit verify`)"
            )
            raise AuditStoreError(msg)
        return found

    def _node_hashes(self, ids: Sequence[NodeId]) -> list[bytes]:
        found = self._nodes(ids)
        return [found[i] for i in ids]

    def seqs_for_event(self, event_id: str) -> list[int]:
        """The leaves whose records concern ``event_id``, in order (who saw it)."""
        _check_text(event_id, "event id")
        with self._reading():
            return [
                int(seq)
                for (seq,) in self._db.execute(
                    "SELECT DISTINCT seq FROM leaf_events WHERE event_id = ? ORDER BY seq",
                    (_canonical_event_id(event_id),),
                )
            ]

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every checkpoint, smallest tree first."""
        with self._reading():
            return [
                StoredCheckpoint(size, bytes(root), at, note)
                for size, root, at, note in self._db.execute(
                    "SELECT size, root, at, note FROM checkpoints ORDER BY size"
                )
            ]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The checkpoint of the largest tree, if any."""
        with self._reading():
            row = self._db.execute(
                "SELECT size, root, at, note FROM checkpoints ORDER BY size DESC LIMIT 1"
            ).fetchone()
        return None if row is None else StoredCheckpoint(row[0], bytes(row[1]), row[2], row[3])

    def pragmas(self) -> dict[str, object]:
        """The durability settings in force on this connection (for status and tests)."""
        with self._reading():
            return {
                name: self._db.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys")
            }

    # ---- writes ------------------------------------------------------------------------

    def append_batch(
        self, rows: Sequence[StoredLeaf], next_offset: int, range_state: bytes
    ) -> None:
        """Append ``rows`` and save ``next_offset`` and ``range_state``: one transaction,
        durable when this returns; after a crash, either all of it is stored or none.

        Refused with ``AuditStoreError`` (and nothing stored): a first ``seq`` that is not
        ``next_seq()``, a gap or repeat in ``seq``, Kafka offsets not increasing or
        already read, a ``next_offset`` that does not pass them, an ``at`` not in
        ``utc_text`` form, a leaf hash that is not 32 bytes, an event id not in canonical
        UUID form. An empty batch only moves ``next_offset`` on (past Kafka's transaction
        markers, for instance). The Merkle nodes the new leaves complete are added in the
        same transaction.
        """
        with self._transaction():
            # Read inside the transaction: BEGIN IMMEDIATE holds the write lock, so no
            # other writer can append between this check and the inserts.
            expected_seq = self.next_seq()
            min_offset = self.next_offset()
            size = expected_seq
            for row in rows:
                _check_row(row, expected_seq, min_offset)
                self._insert(row)
                expected_seq, min_offset = row.seq + 1, row.kafka_offset + 1
            if rows:
                edge = self._node_hashes(range_nodes(size))
                try:
                    self._insert_nodes(completed_nodes(size, edge, [r.leaf_hash for r in rows]))
                except ProofError as exc:  # a stored edge hash edited to another length
                    msg = f"the audit store {self._path} is damaged: {exc}"
                    raise AuditStoreError(msg) from None
            if next_offset < min_offset:
                msg = f"next_offset {next_offset} would re-read offsets (at least {min_offset})"
                raise AuditStoreError(msg)
            self._db.executemany(
                "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
                ((_NEXT_OFFSET, next_offset), (_RANGE_STATE, range_state)),
            )

    def _insert(self, row: StoredLeaf) -> None:
        try:
            self._db.execute(
                "INSERT INTO leaves"
                " (seq, kafka_offset, record, leaf_hash, at, actor, invalid, signer)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.seq,
                    row.kafka_offset,
                    row.record,
                    row.leaf_hash,
                    row.at,
                    row.actor,
                    row.invalid,
                    row.signer,
                ),
            )
        except sqlite3.IntegrityError as exc:
            msg = f"leaf {row.seq} (offset {row.kafka_offset}) conflicts with the store: {exc}"
            raise AuditStoreError(msg) from None
        self._db.executemany(
            "INSERT INTO leaf_events (seq, position, event_id) VALUES (?, ?, ?)",
            ((row.seq, n, event_id) for n, event_id in enumerate(row.event_ids)),
        )

    def add_checkpoint(self, size: int, root: bytes, at: str, note: str) -> None:
        """Record a checkpoint of the tree at ``size`` (at most the store's size).

        Adding the same checkpoint again does nothing; a different root for a size
        already checkpointed is refused: the log would have two histories.
        """
        _check_time(at, "at")
        with self._transaction():
            if not 0 <= size <= self.next_seq():
                msg = f"a checkpoint of size {size} is beyond the {self.next_seq()} leaves stored"
                raise AuditStoreError(msg)
            row = self._db.execute(
                "SELECT root FROM checkpoints WHERE size = ?", (size,)
            ).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO checkpoints (size, root, at, note) VALUES (?, ?, ?, ?)",
                    (size, root, at, note),
                )
            elif bytes(row[0]) != root:
                msg = f"a checkpoint of size {size} with a different root is already stored"
                raise AuditStoreError(msg)

    # ---- life --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database; every committed write is already durable."""
        with self._reading():
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception (even a
    ``KeyboardInterrupt``), with SQLite's errors turned into ``AuditStoreError``."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise AuditStoreError(f"the audit store cannot be used: {exc}") from None
            # Another writer held the lock beyond busy_timeout: later may succeed.
            raise AuditStoreError(f"the audit store is busy: {exc}", retriable=True) from None
        except sqlite3.Error as exc:
            raise AuditStoreError(f"the audit store cannot be used: {exc}") from None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            # Some SQLite errors (a full disk) have already rolled back by themselves; a
            # damaged file may refuse even the rollback, and the first error is the news.
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise AuditStoreError(f"the audit store failed: {exc}") from exc
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as failure:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise AuditStoreError(f"the audit store could not commit: {failure}") from None


def _check_row(row: StoredLeaf, seq: int, min_offset: int) -> None:
    if row.seq != seq:
        msg = f"leaf {row.seq} is out of order: the next leaf must be {seq}"
        raise AuditStoreError(msg)
    if row.kafka_offset < min_offset:
        msg = f"leaf {row.seq} comes from offset {row.kafka_offset}, already read (< {min_offset})"
        raise AuditStoreError(msg)
    _check_time(row.at, f"leaf {row.seq} at")
    if not _is_hash(row.leaf_hash):
        raise AuditStoreError(f"leaf {row.seq}'s hash is not a 32-byte hash")
    if row.signer is not None and _SIGNER.fullmatch(row.signer) is None:
        raise AuditStoreError(f"leaf {row.seq}'s signer is not a key id (64 lowercase hex)")
    if row.invalid is not None:
        if _REASON.fullmatch(row.invalid) is None:
            msg = f"leaf {row.seq}'s invalid reason is not a code like 'not_json'"
            raise AuditStoreError(msg)
        if row.event_ids or row.actor:
            msg = f"leaf {row.seq} is invalid, so it can name no event and no actor"
            raise AuditStoreError(msg)
        return
    if not row.actor:
        raise AuditStoreError(f"leaf {row.seq} has no actor")
    if row.signer is None:
        raise AuditStoreError(f"leaf {row.seq} is a valid record, so it must name its signer")
    _check_text(row.actor, f"leaf {row.seq} actor")
    for event_id in row.event_ids:
        if _canonical_event_id(event_id) != event_id:
            msg = f"leaf {row.seq} event id {event_id!r} is not a lowercase hyphenated UUID"
            raise AuditStoreError(msg)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _check_time(value: str, what: str) -> None:
    if _UTC_TEXT.fullmatch(value) is None:
        msg = f"{what} {value!r} is not a fixed-width UTC time like 2026-11-22T12:00:00.000000Z"
        raise AuditStoreError(msg)


def _check_text(value: str, what: str) -> None:
    # SQLite stores UTF-8: a lone surrogate (from a command line's undecodable bytes, say)
    # would fail deep inside sqlite3 with a UnicodeEncodeError.
    try:
        value.encode()
    except UnicodeEncodeError:
        raise AuditStoreError(f"the {what} is not valid Unicode text") from None


def _canonical_event_id(event_id: str) -> str:
    # UUIDs typed by a person may be upper case or unhyphenated; stored ids never are.
    try:
        return str(uuid.UUID(event_id))
    except ValueError:
        return event_id
