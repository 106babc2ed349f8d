"""What ``audit verify``'s worker processes derive, and how their rows come back (issue 14).

A worker derives each leaf's row with ``judged_rows`` from an inbound record sent as the
tuple of its fields (pickled across the process boundary), and this process puts the rows
back with ``reassembled``: together they must give exactly ``leaf_row(judge_value(...))``
of every record, whatever its bytes, time or timestamp type, and keep the log's order
around records the Kafka client could not parse. All pure: no broker, no store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
import pickle

from hypothesis import given
from hypothesis import strategies as st

from schemas.audit import AT_TOLERANCE
from schemas.keys import READER, SigningKey
from schemas.records import InboundRecord
from services.audit_service import judge_value, leaf_row
from services.auditor import (
    CHUNK,
    PARALLEL_FROM,
    cores,
    judged_rows,
    reassembled,
    worker_count,
)
from tests.unit.test_audit_records import SAMPLES
from tests.unit.test_audit_sealed import AT, AT_MS, GOOD, KEYS, TRUST, sealed

FIELDS = operator.attrgetter(*(f.name for f in dataclasses.fields(InboundRecord)))
OUTSIDER = SigningKey.generate(READER)
VALID = [sealed(record, KEYS) for record in SAMPLES.values()]


def flipped(value: bytes, at: int) -> bytes:
    """``value`` with one byte changed (a forged signature, payload or framing)."""
    at %= len(value)
    return value[:at] + bytes([value[at] ^ 0x01]) + value[at + 1 :]


values = st.one_of(
    st.sampled_from(VALID),
    st.builds(flipped, st.sampled_from(VALID), st.integers(0, 10_000)),
    st.just(sealed(SAMPLES["feed.read"], {READER: OUTSIDER})),
    st.binary(max_size=64),
    st.just(b""),
)
times = st.one_of(
    st.just(AT_MS),
    st.integers(AT_MS - 2 * AT_TOLERANCE // dt.timedelta(milliseconds=1), AT_MS + 10**9),
    st.integers(-(2**63), 2**63 - 1),  # a broker's absurd timestamps are clamped
)
records = st.builds(
    InboundRecord,
    topic=st.just("liaison.audit"),
    partition=st.just(0),
    offset=st.integers(0, 2**40),
    timestamp_ms=times,
    key=st.none(),
    value=values,
    headers=st.just(()),
    timestamp_type=st.sampled_from([0, 1]),
)


@given(st.lists(records, max_size=8), st.integers(0, 10**6))
def test_a_workers_rows_are_leaf_row_of_each_record(batch: list[InboundRecord], first: int) -> None:
    sent = pickle.loads(pickle.dumps([FIELDS(r) for r in batch]))  # as to a worker  # noqa: S301
    rows = pickle.loads(pickle.dumps(judged_rows(first, sent, TRUST)))  # noqa: S301 - and back
    items = reassembled(first, batch, rows)
    expected = [leaf_row(first + i, r, judge_value(r, TRUST)) for i, r in enumerate(batch)]
    assert items == [(r, row) for r, row in zip(batch, expected, strict=True)]


@given(st.lists(st.one_of(st.none(), records), max_size=12), st.integers(0, 1000))
def test_unparseable_records_keep_their_place_and_take_no_seq(
    chunk: list[InboundRecord | None], first: int
) -> None:
    parsed = [r for r in chunk if r is not None]
    rows = judged_rows(first, [FIELDS(r) for r in parsed], TRUST)
    items = reassembled(first, chunk, rows)
    assert [item is None for item in items] == [r is None for r in chunk]
    derived = [item for item in items if item is not None]
    assert [record for record, _ in derived] == parsed
    assert [row.seq for _, row in derived if row is not None] == list(
        range(first, first + len(parsed))
    )
    # A chunk a dead worker never derived comes back to be derived here, in the same order.
    undone = reassembled(first, chunk, None)
    assert undone == [None if r is None else (r, None) for r in chunk]


def test_a_valid_record_known_answer() -> None:
    record = InboundRecord("liaison.audit", 0, 7, AT_MS, None, GOOD, timestamp_type=1)
    ((_, row),) = reassembled(3, [record], judged_rows(3, [FIELDS(record)], TRUST))  # type: ignore[misc]
    assert row is not None
    assert (row.seq, row.kafka_offset, row.record, row.invalid) == (3, 7, GOOD, None)
    assert row.actor == SAMPLES["feed.read"].actor
    assert row.at == "2026-11-22T12:00:00.000000Z" == AT.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_short_logs_are_derived_here_and_long_ones_on_every_core() -> None:
    assert worker_count(0) == worker_count(PARALLEL_FROM - 1) == 0
    assert worker_count(PARALLEL_FROM) == (cores() if cores() > 1 else 0)
    assert worker_count(10, workers=3) == 3
    assert worker_count(10**9, workers=0) == 0
    assert worker_count(10**9, workers=-1) == 0
    assert CHUNK >= 100  # pickling a chunk must stay noise beside deriving it
