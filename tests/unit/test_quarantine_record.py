"""Quarantine records and redrive decisions: round trips, hostile input, forged origins."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.envelope import Reason
from schemas.errors import QuarantineRecordError, RedriveError
from schemas.inspectorates import Programme
from schemas.keys import TrustStore
from schemas.quarantine import (
    HEADER_REDRIVE_OF,
    MAX_DETAIL_CHARS,
    MAX_QUARANTINE_RECORD_BYTES,
    MAX_RAW_HEADERS,
    MAX_RAW_VALUE_BYTES,
    QuarantinedRecord,
    QuarantineEntry,
    RedriveMarker,
    decode_marker,
    decode_quarantined,
    encode_quarantined,
    listing,
    quarantined,
)
from schemas.records import InboundRecord
from schemas.topics import Topics
from services.quarantine import plan_redrive
from tests.factories import NOW, concern, inbound, key_for, sealed_inbound, trust_of

AT = dt.datetime(2026, 11, 22, 12, 0, 0, 123456, tzinfo=dt.UTC)
VALUE = b'{"payload":"e30=","payloadType":"x","signatures":[]}'

# A record as the router writes it today, spelled out by hand: a change of format must
# break this test (the records already on the topic must stay readable).
BODY: dict[str, Any] = {
    "reason": "unknown_key",
    "detail": "unknown_key: no trusted key has this id",
    "quarantined_at": "2026-11-22T12:00:00.123456+00:00",
    "source_topic": "liaison.events.ofsted",
    "partition": 1,
    "offset": 42,
    "timestamp_ms": 1795348800000,
    "timestamp_type": 1,
    "raw_key_hex": "453038303030303235",
    "raw_value_hex": VALUE.hex(),
    "raw_headers_hex": [["type", "6b"], ["empty", ""]],
}
VECTOR = (
    b'{"detail": "unknown_key: no trusted key has this id", "offset": 42, "partition": 1,'
    b' "quarantined_at": "2026-11-22T12:00:00.123456+00:00", "raw_headers_hex": [["type",'
    b' "6b"], ["empty", ""]], "raw_key_hex": "453038303030303235", "raw_value_hex": "'
    + VALUE.hex().encode()
    + b'", "reason": "unknown_key", "source_topic": "liaison.events.ofsted",'
    b' "timestamp_ms": 1795348800000, "timestamp_type": 1}'
)


def body(**changes: Any) -> bytes:
    return json.dumps({**BODY, **changes}, sort_keys=True).encode()


# -- the record ------------------------------------------------------------------------


def test_a_record_in_todays_format_decodes_and_encodes_to_the_same_bytes() -> None:
    record = decode_quarantined(VECTOR)
    assert record.raw_sha256 is None  # written before raw_sha256 existed
    assert record.quarantined_at == AT
    assert record.raw_headers_hex == (("type", "6b"), ("empty", ""))
    assert encode_quarantined(record) == VECTOR == record.to_bytes()
    assert record.original() == InboundRecord(
        topic="liaison.events.ofsted",
        partition=1,
        offset=42,
        timestamp_ms=1795348800000,
        key=b"E08000025",
        value=VALUE,
        headers=(("type", b"k"), ("empty", b"")),
        timestamp_type=1,
    )


def test_quarantined_keeps_the_raw_parts_and_their_sha256_as_the_router_did() -> None:
    record = inbound(VALUE, (("type", b"k"), ("empty", b"")), topic="liaison.events.ofsted")
    built = quarantined(record, "unknown_key", "unknown_key: no trusted key has this id", AT)
    expected = {**BODY, "raw_sha256": hashlib.sha256(VALUE).hexdigest()}
    assert built.to_bytes() == json.dumps(expected, sort_keys=True).encode()
    assert built.raw_value_intact()
    assert built.original() == record


def test_an_empty_key_is_none_again() -> None:
    record = dataclasses.replace(inbound(VALUE), key=None)
    assert quarantined(record, "malformed_json", "d", AT).original().key is None


def test_quarantined_cuts_what_is_over_the_bounds_and_then_never_verifies_intact() -> None:
    huge = b"x" * (MAX_RAW_VALUE_BYTES + 1)
    record = dataclasses.replace(
        inbound(huge, tuple((f"h{i}", b"v") for i in range(MAX_RAW_HEADERS + 3))),
        key=b"k" * 5000,
    )
    built = quarantined(record, "oversized", "d" * (MAX_DETAIL_CHARS + 50), AT)
    assert len(built.raw_value) == MAX_RAW_VALUE_BYTES
    assert len(built.raw_headers_hex) == MAX_RAW_HEADERS
    assert len(built.detail) == MAX_DETAIL_CHARS
    assert built.raw_sha256 == hashlib.sha256(huge).hexdigest()
    assert not built.raw_value_intact()
    assert len(built.to_bytes()) < MAX_QUARANTINE_RECORD_BYTES
    assert decode_quarantined(built.to_bytes()) == built


headers = st.lists(st.tuples(st.text(), st.binary(max_size=2000)), max_size=40).map(tuple)


@given(
    value=st.binary(max_size=5000),
    key=st.none() | st.binary(max_size=2000),
    headers=headers,
    surrogate=st.booleans(),
    detail=st.text(max_size=1500),
)
def test_quarantined_is_total_and_round_trips(
    value: bytes,
    key: bytes | None,
    headers: tuple[tuple[str, bytes], ...],
    surrogate: bool,
    detail: str,
) -> None:
    if surrogate:  # a name decoded with surrogateescape, say
        headers = (("\udcff-name", b"v"), *headers)
    record = dataclasses.replace(inbound(value, headers), key=key)
    built = quarantined(record, "not_dsse", detail, NOW)
    assert decode_quarantined(encode_quarantined(built)) == built
    assert built.raw_value_intact() == (len(value) <= MAX_RAW_VALUE_BYTES)


offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: dt.timedelta(minutes=m))
instants = st.datetimes(
    min_value=dt.datetime(1900, 1, 2),  # noqa: DTZ001 - bounds; the zone is drawn below
    max_value=dt.datetime(8999, 12, 30),  # noqa: DTZ001
    timezones=offsets.map(dt.timezone),
)
hex_of = st.binary(max_size=64).map(bytes.hex)
records = st.builds(
    QuarantinedRecord,
    reason=st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True),
    detail=st.text(max_size=300),
    quarantined_at=instants,
    source_topic=st.from_regex(r"[A-Za-z0-9._-]{1,249}", fullmatch=True),
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
    timestamp_ms=st.integers(-1, 2**63 - 1),
    timestamp_type=st.sampled_from([0, 1]),
    raw_key_hex=hex_of,
    raw_value_hex=hex_of,
    raw_headers_hex=st.lists(st.tuples(st.text(max_size=30), hex_of), max_size=5).map(tuple),
    raw_sha256=st.none() | st.binary(min_size=32, max_size=32).map(bytes.hex),
)


@given(records)
def test_every_record_round_trips_byte_for_byte(record: QuarantinedRecord) -> None:
    data = encode_quarantined(record)
    again = decode_quarantined(data)
    assert again == record
    assert encode_quarantined(again) == data


def decodes_or_refuses(data: bytes) -> None:
    """Only ever a record or the one domain error, whatever ``data`` holds."""
    with contextlib.suppress(QuarantineRecordError):
        decode_quarantined(data)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_decode_or_raise_only_the_domain_error(data: bytes) -> None:
    decodes_or_refuses(data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.just("\ud800"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(field=st.sampled_from([*BODY, "raw_sha256", "unknown"]), value=json_values)
def test_any_json_in_any_field_decodes_or_raises_only_the_domain_error(
    field: str, value: object
) -> None:
    decodes_or_refuses(json.dumps({**BODY, field: value}, sort_keys=True).encode())


@given(st.binary(max_size=50), st.integers(0, len(VECTOR)))
def test_spliced_bytes_decode_or_raise_only_the_domain_error(junk: bytes, at: int) -> None:
    decodes_or_refuses(VECTOR[:at] + junk + VECTOR[at:])


NAMED_LIKE_A_CHILD = "Amelia Jones dob 2016-03-01"

HOSTILE = {
    "not JSON": b"not json at all",
    "not UTF-8": b'{"reason": "\xff"}',
    "empty": b"",
    "a list": b"[]",
    "deep nesting": b"[" * 80000,
    "deep object": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "over the size limit": b" " * (MAX_QUARANTINE_RECORD_BYTES + 1),
    "NaN": body(offset=float("nan")),
    "unpaired surrogate in detail": body(detail="\ud800"),
    "unpaired surrogate in a header name": body(raw_headers_hex=[["\udc00", "00"]]),
    "duplicate key": VECTOR[:-1] + b', "reason": "clean"}',
    "partition as a string": body(partition="1"),
    "timestamp type true": body(timestamp_type=True),
    "offset as a float": body(offset=42.0),
    "a huge integer": body(offset=10**30),
    "an integer of 5000 digits": VECTOR.replace(b'"offset": 42', b'"offset": ' + b"9" * 5000),
    "a negative offset": body(offset=-1),
    "hex that is not hex": body(raw_value_hex="zz"),
    "upper-case hex": body(raw_value_hex="ABCD"),
    "an odd number of hex digits": body(raw_key_hex="abc"),
    "a sha256 that is not one": body(raw_sha256="00"),
    "a header that is not a pair": body(raw_headers_hex=[["a", "00", "01"]]),
    "headers as an object": body(raw_headers_hex={"a": "00"}),
    "a naive time": body(quarantined_at="2026-11-22T12:00:00"),
    "a time out of range": body(quarantined_at="9999-12-31T23:59:59-23:59"),
    "a topic that is not one": body(source_topic="liaison programme"),
    "a missing field": json.dumps({k: v for k, v in BODY.items() if k != "detail"}).encode(),
    "an unknown field named like a child": body(**{NAMED_LIKE_A_CHILD: "x"}),
    "a reason that is not a code": body(reason=NAMED_LIKE_A_CHILD),
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_records_are_refused_with_the_domain_error(data: bytes) -> None:
    with pytest.raises(QuarantineRecordError) as refused:
        decode_quarantined(data)
    assert "Amelia" not in str(refused.value)
    assert "Amelia" not in " ".join(str(p) for p in refused.value.problems)


def test_the_model_refuses_unpaired_surrogates_built_in_python() -> None:
    with pytest.raises(ValidationError, match="detail"):
        QuarantinedRecord.model_validate(
            {**decode_quarantined(VECTOR).model_dump(), "detail": "\ud800"}
        )


def test_markers_round_trip_and_refuse_junk() -> None:
    marker = RedriveMarker(redriven_at=AT, to="liaison.events.cqc")
    assert marker.to_bytes() == (
        b'{"redriven_at": "2026-11-22T12:00:00.123456+00:00", "to": "liaison.events.cqc"}'
    )
    assert decode_marker(marker.to_bytes()) == marker
    for junk in (b"", b"{", b'{"redriven_at": 1, "to": "x"}', b'{"to": "x"}'):
        with pytest.raises(QuarantineRecordError):
            decode_marker(junk)


# -- the listing -----------------------------------------------------------------------


def on_topic(
    offset: int, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
) -> InboundRecord:
    return InboundRecord("liaison.quarantine", 0, offset, 0, None, value, headers)


def marker(offset: int, of: bytes, value: bytes | None = None) -> InboundRecord:
    value = (
        RedriveMarker(redriven_at=AT, to="liaison.events.ofsted").to_bytes()
        if value is None
        else value
    )
    return on_topic(offset, value, ((HEADER_REDRIVE_OF, of),))


def test_listing_lists_unreadable_records_as_such_and_the_rest_as_usual() -> None:
    entries = listing(
        [
            on_topic(0, VECTOR),
            on_topic(1, b"not json"),
            on_topic(2, b""),  # a tombstone
            on_topic(3, VECTOR),
            marker(4, b"0"),
            marker(5, b"3", b"garbage"),  # the marker counts; its time cannot be read
            marker(6, b"9"),  # names a later record: not a true marker
            marker(7, b"one"),
            marker(8, b"0"),  # a second marker of record 0: the first one stands
            on_topic(9, VECTOR, ((HEADER_REDRIVE_OF, b"1"), (HEADER_REDRIVE_OF, b"2"))),
        ]
    )
    readable = decode_quarantined(VECTOR)
    assert entries == (
        QuarantineEntry(0, readable, redriven=True, redriven_at=AT),
        QuarantineEntry(1, None),
        QuarantineEntry(2, None),
        QuarantineEntry(3, readable, redriven=True, redriven_at=None),
        QuarantineEntry(6, None),
        QuarantineEntry(7, None),
        QuarantineEntry(9, None),
    )


@given(
    st.lists(
        st.tuples(
            st.binary(max_size=300) | st.sampled_from([VECTOR, b"0", b"{}"]),
            st.lists(
                st.tuples(st.sampled_from([HEADER_REDRIVE_OF, "x"]), st.binary(max_size=5)),
                max_size=2,
            ),
        ),
        max_size=8,
    )
)
def test_listing_never_raises_and_lists_every_record_that_is_not_a_marker(
    raw: list[tuple[bytes, list[tuple[str, bytes]]]],
) -> None:
    records = [on_topic(i, value, tuple(h)) for i, (value, h) in enumerate(raw)]
    entries = listing(records)
    markers = {
        r.offset
        for r in records
        if [n for n, _ in r.headers if n == HEADER_REDRIVE_OF]
        and r.offset not in {e.id for e in entries}
    }
    assert {e.id for e in entries} | markers == {r.offset for r in records}


# -- the redrive decision --------------------------------------------------------------

TOPICS = Topics("t.")
OFSTED = key_for("ofsted")
TRUST = trust_of(OFSTED)


def entry_of(record: InboundRecord, *, redriven: bool = False) -> QuarantineEntry:
    refused = quarantined(record, "unknown_key", "unknown_key: no trusted key has this id", NOW)
    return QuarantineEntry(7, refused, redriven=redriven)


def test_a_record_that_verifies_now_goes_back_byte_for_byte_to_its_events_topic() -> None:
    original = sealed_inbound(concern(), OFSTED)
    planned = plan_redrive(entry_of(original), 7, TOPICS, TRUST, NOW)
    assert planned.to == "t.liaison.events.ofsted" == original.topic
    assert planned.event.topic == planned.to
    assert (planned.event.key, planned.event.value, planned.event.headers) == (
        original.key,
        original.value,
        original.headers,
    )
    assert planned.marker.topic == "t.liaison.quarantine"
    assert planned.marker.headers == ((HEADER_REDRIVE_OF, b"7"),)
    assert decode_marker(planned.marker.value) == RedriveMarker(redriven_at=NOW, to=planned.to)


FORGED_TOPICS = [
    "t.liaison.programme.custody",
    TOPICS.programme(Programme.NCPI),
    TOPICS.jtai,
    TOPICS.feed,
    "t.liaison.events.cqc",  # another inspectorate's topic
    "liaison.events.ofsted",  # the contract name, without this deployment's prefix
]


@pytest.mark.parametrize("forged", FORGED_TOPICS)
def test_a_record_claiming_another_topic_is_refused(forged: str) -> None:
    original = dataclasses.replace(sealed_inbound(concern(), OFSTED), topic=forged)
    with pytest.raises(RedriveError, match="only redriven there") as refused:
        plan_redrive(entry_of(original), 7, TOPICS, TRUST, NOW)
    message = str(refused.value)
    assert "t.liaison.events.ofsted" in message
    # What the record says is never repeated, only the topic derived from the key.
    assert forged not in message.replace("t.liaison.events.ofsted", "")


def test_a_record_that_still_fails_names_its_reason_only() -> None:
    original = sealed_inbound(concern(), key_for("ofsted"))  # a key nobody registered
    with pytest.raises(RedriveError, match=r"still fails \(unknown_key\)") as refused:
        plan_redrive(entry_of(original), 7, TOPICS, TRUST, NOW)
    assert original.value.decode() not in str(refused.value)


def test_a_record_is_judged_now_not_at_the_time_it_claims() -> None:
    # Revoked an hour ago: a forged append time from before the revocation does not help.
    key = OFSTED.trusted(valid_from=NOW - dt.timedelta(days=30))
    trust = TrustStore(keys=(key.revoked(NOW - dt.timedelta(hours=1), "lost"),))
    original = sealed_inbound(concern(), OFSTED, appended_at=NOW - dt.timedelta(days=1))
    with pytest.raises(RedriveError, match=Reason.KEY_REVOKED.value):
        plan_redrive(entry_of(original), 7, TOPICS, trust, NOW)


def test_a_raw_value_that_does_not_match_its_sha256_is_refused() -> None:
    entry = entry_of(sealed_inbound(concern(), OFSTED))
    assert entry.record is not None
    altered = entry.record.model_copy(update={"raw_sha256": "0" * 64})
    with pytest.raises(RedriveError, match="SHA-256"):
        plan_redrive(QuarantineEntry(7, altered), 7, TOPICS, TRUST, NOW)


def test_unknown_unreadable_and_already_redriven_records_are_refused() -> None:
    good = sealed_inbound(concern(), OFSTED)
    with pytest.raises(RedriveError, match="no quarantined record has id 7"):
        plan_redrive(None, 7, TOPICS, TRUST, NOW)
    with pytest.raises(RedriveError, match="unreadable quarantine record"):
        plan_redrive(QuarantineEntry(7, None), 7, TOPICS, TRUST, NOW)
    with pytest.raises(RedriveError, match="already redriven"):
        plan_redrive(entry_of(good, redriven=True), 7, TOPICS, TRUST, NOW)
