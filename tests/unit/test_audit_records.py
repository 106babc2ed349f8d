"""The audit record contract: round trips, canonical bytes, refusals, leaves."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, StringConstraints, ValidationError

from schemas.audit import (
    ACTIONS,
    EARLIEST_AT,
    LATEST_AT,
    MAX_RECORD_BYTES,
    AnalystAdded,
    AnalystRevoked,
    AnalystScope,
    AuditRecord,
    CheckpointPublished,
    ConsiderationEmitted,
    DeliveryRefused,
    DuplicateIgnored,
    EnvelopeDelivered,
    EventPublished,
    EventQuarantined,
    EventRouted,
    EventUnrouted,
    FeedRead,
    FeedRefused,
    InboxRead,
    InvalidReason,
    InvalidRecord,
    JtaiDecided,
    KeyGenerated,
    KeyRevoked,
    KeyRotated,
    Leaf,
    OutcomeGiven,
    QuarantineRedriven,
    ReminderRaised,
    ReplayRun,
    RouteTaken,
    VerificationFailed,
    check_actor,
    decode_leaf,
    decode_record,
    encode_record,
    judge_record,
    leaf_data,
    split_leaf,
)
from schemas.errors import SchemaError
from schemas.events import Theme
from schemas.inspectorates import Inspectorate, Programme
from schemas.jtai import JtaiDecision, JtaiTrigger
from schemas.outcomes import Outcome

AT = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
EVENT = uuid.UUID("6f1c0d2e-0c5e-4e0e-9b1e-2b0b1c8d6e77")
OTHER = uuid.UUID("0b0b2d4c-7d0a-4f43-8d4e-6a1c1d7f0a11")
KEYID = "ab" * 32
BASE: dict[str, Any] = {"at": AT, "event_ids": (EVENT,)}

# One valid record of every action (each also a template for refusal tests).
SAMPLES: dict[str, AuditRecord] = {
    "event.published": EventPublished(
        **BASE,
        actor="inspectorate:ofsted",
        topic="liaison.events.ofsted",
        partition=0,
        offset=41,
        keyid=KEYID,
        inspectorate=Inspectorate.OFSTED,
    ),
    "event.quarantined": EventQuarantined(
        at=AT,
        actor="router:0",
        reason="bad_signature",
        source_topic="liaison.events.cqc",
        partition=2,
        offset=7,
        detail="the signature does not verify with key ab…",
    ),
    "event.routed": EventRouted(
        **BASE,
        actor="router:0",
        inspectorate=Inspectorate.HMICFRS,
        area="E08000025",
        destinations=(
            RouteTaken(topic="liaison.programme.ilacs", rules=("police-to-ofsted",)),
            RouteTaken(topic="liaison.feed.areas", rules=()),
        ),
    ),
    "event.unrouted": EventUnrouted(
        **BASE, actor="router:1", inspectorate=Inspectorate.CQC, area="E10000016"
    ),
    "event.duplicate_ignored": DuplicateIgnored(
        **BASE, actor="router:0", inspectorate=Inspectorate.HMI_PRISONS
    ),
    "jtai.consideration_emitted": ConsiderationEmitted(
        at=AT,
        actor="router:0",
        event_ids=(EVENT, OTHER),
        consideration_id=uuid.UUID("3d6f0a4e-1b2c-4d5e-8f90-123456789abc"),
        area="E08000025",
        theme=Theme.NEGLECT,
        trigger=JtaiTrigger.SEVERAL_INSPECTORATES,
    ),
    "key.generated": KeyGenerated(at=AT, actor="operator:cli", keyid=KEYID, owner="hmi_probation"),
    "key.rotated": KeyRotated(
        at=AT, actor="operator:cli", keyid=KEYID, owner="liaison", retired_keyids=("cd" * 32,)
    ),
    "key.revoked": KeyRevoked(
        at=AT, actor="operator:cli", keyid=KEYID, owner="cqc", reason="laptop stolen"
    ),
    "feed.read": FeedRead(
        at=AT,
        actor="analyst:a.khan",
        event_ids=(EVENT,),
        analyst="a.khan",
        purpose="preparing the Birmingham JTAI briefing",
        filters={"area": "E08000025", "theme": "neglect"},
        returned=1,
    ),
    "replay.run": ReplayRun(
        at=AT, actor="auditor:j.smith", filters={"since": "2026-01-01"}, verified=9, unverifiable=1
    ),
    "quarantine.redriven": QuarantineRedriven(
        at=AT, actor="operator:cli", quarantine_id=12, source_topic="liaison.events.ofsted"
    ),
    "audit.verification_failed": VerificationFailed(
        at=AT, actor="audit:0", position=17, detail="leaf hash does not match the record"
    ),
    "audit.checkpoint_published": CheckpointPublished(
        at=AT, actor="audit:0", size=18, root_hex="0f" * 32
    ),
    "feed.refused": FeedRefused(
        at=AT,
        actor="analyst:a.khan",
        analyst="a.khan",
        purpose="preparing the Kent JTAI briefing",
        filters={"area": "E10000016"},
        reason="out_of_scope",
        detail="the area is outside the analyst's scope",
    ),
    "analyst.added": AnalystAdded(
        at=AT,
        actor="operator:cli",
        analyst="a.khan",
        scope=AnalystScope(
            areas=("E08000035",), regions=("Yorkshire and The Humber",), themes=(Theme.NEGLECT,)
        ),
        credential_sha256="cd" * 32,
    ),
    "analyst.revoked": AnalystRevoked(
        at=AT, actor="operator:cli", analyst="a.khan", reason="left the inspectorate"
    ),
    "inbox.read": InboxRead(
        at=AT,
        actor="inspectorate:hmicfrs",
        event_ids=(EVENT,),
        queue="liaison.programme.ncpi",
        filters={"programme": "ncpi"},
        returned=1,
    ),
    "outcome.recorded": OutcomeGiven(
        at=AT,
        actor="inspectorate:hmicfrs",
        event_ids=(EVENT, OTHER),
        outcome_id=OTHER,
        programme=Programme.NCPI,
        outcome=Outcome.INFORMS_SCHEDULING,
    ),
    "outcome.reminder_raised": ReminderRaised(
        at=AT,
        actor="router:overdue",
        event_ids=(EVENT,),
        reminder_id=OTHER,
        programme=Programme.CLAS,
    ),
    "jtai.decision_recorded": JtaiDecided(
        at=AT,
        actor="inspectorate:ofsted",
        event_ids=(OTHER, EVENT),
        decision_id=OTHER,
        consideration_id=EVENT,
        area="E08000035",
        theme=Theme.NEGLECT,
        decision=JtaiDecision.SELECT,
    ),
    "delivery.delivered": EnvelopeDelivered(
        at=AT, actor="inspectorate:cqc", event_ids=(EVENT,), programme=Programme.CLAS, attempts=3
    ),
    "delivery.refused": DeliveryRefused(
        at=AT,
        actor="inspectorate:cqc",
        event_ids=(EVENT,),
        programme=Programme.CLAS,
        attempts=8,
        reason="http_503",
    ),
}


def fields_of(action: str, /, **changes: Any) -> dict[str, Any]:
    """The JSON object of the sample record of ``action`` with ``changes`` applied."""
    data: dict[str, Any] = json.loads(encode_record(SAMPLES[action]))
    data.update(changes)
    return data


def refusal(data: dict[str, Any] | bytes) -> SchemaError:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(SchemaError) as caught:
        decode_record(raw)
    return caught.value


def paths(error: SchemaError) -> set[str]:
    return {p.path for p in error.problems}


# ---- round trips and canonical bytes ---------------------------------------------------


def test_there_is_a_sample_of_every_action() -> None:
    assert set(SAMPLES) == set(ACTIONS)
    assert len(set(ACTIONS)) == len(ACTIONS) == 23


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_round_trips(action: str) -> None:
    record = SAMPLES[action]
    data = encode_record(record)
    decoded = decode_record(data)
    assert decoded == record
    assert type(decoded) is type(record)
    assert encode_record(decoded) == data
    assert json.loads(data)["action"] == action


@pytest.mark.parametrize("action", ACTIONS)
def test_bytes_are_compact_sorted_json(action: str) -> None:
    data = encode_record(SAMPLES[action])
    parsed = json.loads(data)
    assert (
        data
        == json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert None not in parsed.values()


def test_the_same_record_built_in_any_order_has_the_same_bytes() -> None:
    forwards = {
        "at": AT,
        "actor": "router:1",
        "event_ids": [str(EVENT)],
        "inspectorate": "cqc",
        "area": "E10000016",
    }
    backwards = dict(reversed(list(forwards.items())))
    first = EventUnrouted.model_validate(forwards)
    second = EventUnrouted.model_validate(backwards)
    assert encode_record(first) == encode_record(second)
    assert encode_record(first) == encode_record(SAMPLES["event.unrouted"].model_copy())


def test_an_instant_has_one_spelling_whatever_its_offset() -> None:
    london = dt.timezone(dt.timedelta(hours=1))
    in_utc = KeyGenerated(at=AT, actor="operator:cli", keyid=KEYID, owner="cqc")
    in_bst = KeyGenerated(at=AT.astimezone(london), actor="operator:cli", keyid=KEYID, owner="cqc")
    assert encode_record(in_utc) == encode_record(in_bst)
    assert json.loads(encode_record(in_bst))["at"] == "2026-11-22T12:00:00Z"


def test_routes_are_sorted_by_topic_so_one_decision_has_one_encoding() -> None:
    routed = SAMPLES["event.routed"]
    assert isinstance(routed, EventRouted)
    flipped = routed.model_copy(update={"destinations": routed.destinations[::-1]})
    rebuilt = EventRouted.model_validate(flipped.model_dump())
    assert [d.topic for d in routed.destinations] == sorted(d.topic for d in routed.destinations)
    assert encode_record(rebuilt) == encode_record(routed)


def test_none_is_left_out_and_decodes_back() -> None:
    record = VerificationFailed(at=AT, actor="auditor:j.smith", detail="root mismatch")
    data = encode_record(record)
    assert b"position" not in data
    assert decode_record(data) == record


def test_records_carry_no_event_content() -> None:
    # The audit log names events; it never repeats what an event says about a child.
    for action in ACTIONS:
        keys = set(json.loads(encode_record(SAMPLES[action])))
        assert not keys & {"summary", "rationale", "shareable_learning", "evidence_refs"}


def test_records_are_frozen() -> None:
    record = KeyGenerated(at=AT, actor="operator:cli", keyid=KEYID, owner="cqc")
    with pytest.raises(ValidationError):
        record.keyid = "cd" * 32  # type: ignore[misc]


# ---- refusals --------------------------------------------------------------------------


def test_unknown_field_is_refused_with_its_path() -> None:
    error = refusal(fields_of("event.published", summary="Referrals wait too long."))
    assert paths(error) == {"summary"}
    assert "not a field of this audit record" in str(error)


def test_unknown_nested_field_is_refused_with_its_path() -> None:
    data = fields_of("event.routed")
    data["destinations"][0]["weight"] = 1
    assert paths(refusal(data)) == {"destinations.0.weight"}


def test_unknown_action_is_refused() -> None:
    error = refusal(fields_of("feed.read", action="feed.deleted"))
    assert paths(error) == {"action"}
    assert "'feed.read'" in str(error)


def test_missing_action_is_refused() -> None:
    data = fields_of("feed.read")
    del data["action"]
    assert paths(refusal(data)) == {"action"}


def test_every_problem_is_listed_with_its_path() -> None:
    data = fields_of("event.published", offset=-1, keyid="not-hex")
    del data["topic"]
    error = refusal(data)
    assert paths(error) == {"offset", "keyid", "topic"}
    assert "topic: is required" in str(error)


@pytest.mark.parametrize(
    ("field", "bad"), [("offset", 2**63), ("partition", 2**31), ("offset", 10**4000)]
)
def test_numbers_are_held_to_kafkas_integer_sizes(field: str, bad: int) -> None:
    data = json.dumps(fields_of("event.published", **{field: bad})).encode()
    judged = judge_record(data)
    assert isinstance(judged, InvalidRecord)
    assert {p.path for p in judged.error.problems} == {field}


def test_decoding_is_strict_about_types() -> None:
    assert paths(refusal(fields_of("event.published", offset="41"))) == {"offset"}


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'"event.published"', b"{}", b""],
)
def test_non_records_are_refused(raw: bytes) -> None:
    refusal(raw)


def test_oversized_input_is_refused_before_parsing() -> None:
    error = refusal(b"{" + b" " * MAX_RECORD_BYTES + b"}")
    assert "limit" in str(error)


@pytest.mark.parametrize(
    "actor",
    [
        "inspectorate:ofsted",
        "inspectorate:hmi_probation",
        "router:0",
        "audit:0",
        "analyst:a.khan",
        "auditor:j.smith",
        "operator:cli",
        "analyst:amina.khan@ofsted.gov.uk",
    ],
)
def test_actor_forms_accepted(actor: str) -> None:
    assert decode_record(json.dumps(fields_of("replay.run", actor=actor))).actor == actor


@pytest.mark.parametrize(
    "actor",
    [
        "",
        "ofsted",
        "ofsted:inspectorate",
        "inspectorate:",
        ":router",
        "robot:r2",
        "Router:0",
        "inspectorate:liaison",
        "inspectorate:police",
        "analyst:a khan",
        "analyst:a.khan\n",
        "analyst:" + "a" * 200,
    ],
)
def test_actor_forms_refused(actor: str) -> None:
    assert paths(refusal(fields_of("replay.run", actor=actor))) == {"actor"}


def test_event_records_must_name_their_events() -> None:
    for action in ("event.published", "event.routed", "jtai.consideration_emitted"):
        assert paths(refusal(fields_of(action, event_ids=[]))) == {"event_ids"}
    # A record about no event in particular may name none.
    decode_record(json.dumps(fields_of("replay.run", event_ids=[])))


def test_an_event_id_listed_twice_is_refused() -> None:
    data = fields_of("feed.read", event_ids=[str(EVENT), str(EVENT)])
    assert paths(refusal(data)) == {"event_ids"}


def test_a_topic_routed_to_twice_is_refused() -> None:
    data = fields_of("event.routed")
    data["destinations"] = [{"topic": "liaison.jtai", "rules": []}] * 2
    assert paths(refusal(data)) == {"destinations"}


def test_routing_needs_a_destination() -> None:
    assert paths(refusal(fields_of("event.routed", destinations=[]))) == {"destinations"}


def test_key_owner_must_be_an_inspectorate_or_the_bus() -> None:
    assert paths(refusal(fields_of("key.generated", owner="mi5"))) == {"owner"}


def test_time_must_be_aware() -> None:
    assert paths(refusal(fields_of("key.generated", at="2026-11-22T12:00:00"))) == {"at"}


def test_quarantine_detail_is_bounded() -> None:
    assert paths(refusal(fields_of("event.quarantined", detail="x" * 501))) == {"detail"}


# ---- leaves ----------------------------------------------------------------------------


def test_leaf_data_binds_the_sequence_number_to_the_exact_bytes() -> None:
    record = encode_record(SAMPLES["event.routed"])
    assert leaf_data(0, record) == b"0\n" + record
    assert leaf_data(1234, record) == b"1234\n" + record
    assert split_leaf(leaf_data(1234, record)) == (1234, record)


def test_split_leaf_keeps_record_bytes_exactly_even_if_not_canonical() -> None:
    # Stored bytes are what the hash covers: splitting must never re-serialise them.
    odd = b'{ "b": 1,\n  "a": 2 }'
    assert split_leaf(leaf_data(7, odd)) == (7, odd)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"12",
        b"\n{}",
        b"-1\n{}",
        b"01\n{}",
        b"1a\n{}",
        b" 1\n{}",
        b"1 \n{}",
        b"9" * 20 + b"\n{}",
    ],
)
def test_split_leaf_refuses_malformed(data: bytes) -> None:
    with pytest.raises(SchemaError):
        split_leaf(data)


def test_leaf_data_refuses_a_negative_position() -> None:
    with pytest.raises(SchemaError):
        leaf_data(-1, b"{}")


def test_any_bytes_make_a_leaf_so_a_bad_record_leaves_no_gap() -> None:
    # An empty or invalid value on the audit topic is still a leaf; verification reports it.
    assert split_leaf(leaf_data(3, b"")) == (3, b"")
    assert split_leaf(leaf_data(4, b"\xff\n\x00")) == (4, b"\xff\n\x00")
    with pytest.raises(SchemaError):
        decode_leaf(leaf_data(3, b""))


def test_decode_leaf_gives_position_and_record() -> None:
    record = SAMPLES["feed.read"]
    assert decode_leaf(leaf_data(3, encode_record(record))) == Leaf(seq=3, record=record)
    with pytest.raises(SchemaError):
        decode_leaf(b"3\n{}")


# ---- property: generated records round trip ------------------------------------------
#
# The strategies draw exactly what the models allow: text lengths and the span of ``at``
# are read from the models, so a limit changed there cannot make this test flaky.


def string_limits(model: type[BaseModel], name: str) -> tuple[int, int]:
    """The (min, max) length a string field of ``model`` allows: the field itself, or the
    elements of a tuple field."""
    field = model.model_fields[name]
    found = [m for m in field.metadata if isinstance(m, StringConstraints)]
    if not found:
        (element, _) = get_args(field.annotation)
        found = [m for m in get_args(element)[1:] if isinstance(m, StringConstraints)]
    (limits,) = found
    assert limits.max_length is not None
    return limits.min_length or 0, limits.max_length


def text_for(model: type[BaseModel], name: str) -> st.SearchStrategy[str]:
    """Any text (surrogates aside: they are not Unicode text) as long as the field allows."""
    least, most = string_limits(model, name)
    return st.one_of(
        st.text(min_size=least, max_size=most),
        # Lengths at the limit are rare in st.text: draw them on purpose.
        st.text(min_size=most, max_size=most),
    )


def dict_limits(model: type[BaseModel], name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """The (min, max) lengths of the keys and of the values of a dict field."""
    key, value = get_args(model.model_fields[name].annotation)
    found = [
        next(m for m in get_args(t)[1:] if isinstance(m, StringConstraints)) for t in (key, value)
    ]
    limits = [(f.min_length or 0, f.max_length) for f in found]
    assert all(most is not None for _, most in limits)
    return (limits[0][0], limits[0][1] or 0), (limits[1][0], limits[1][1] or 0)


names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,30}", fullmatch=True)
actors = st.builds(
    "{}:{}".format, st.sampled_from(["router", "audit", "analyst", "auditor", "operator"]), names
)
DAY = dt.timedelta(days=1)
times = st.datetimes(
    # hypothesis takes naive bounds and attaches the drawn zone itself; a day inside the
    # span each side leaves room for any UTC offset (under a day).
    min_value=(EARLIEST_AT + DAY).replace(tzinfo=None),
    max_value=(LATEST_AT - DAY).replace(tzinfo=None),
    timezones=st.sampled_from(
        [
            dt.UTC,
            dt.timezone(dt.timedelta(hours=1)),
            dt.timezone(-dt.timedelta(hours=23, minutes=59)),
        ]
    ),
)
ids = st.lists(st.uuids(), min_size=1, max_size=5, unique=True).map(tuple)
counts = st.integers(min_value=0, max_value=2**63 - 1)
partitions = st.integers(min_value=0, max_value=2**31 - 1)
topics = st.from_regex(r"[A-Za-z0-9._-]{1,60}", fullmatch=True)
(_key_least, _key_most), (_value_least, _value_most) = dict_limits(FeedRead, "filters")
filters = st.dictionaries(
    st.text(min_size=_key_least, max_size=_key_most),
    st.text(min_size=_value_least, max_size=_value_most),
    max_size=4,
)
hexes = st.binary(min_size=32, max_size=32).map(bytes.hex)
inspectorates = st.sampled_from(["ofsted", "cqc", "hmicfrs", "hmi_probation", "hmi_prisons"])
areas = st.sampled_from(["E08000025", "E10000016", "E09000033", "E06000001"])

records: st.SearchStrategy[AuditRecord] = st.one_of(
    st.builds(
        EventPublished,
        at=times,
        actor=actors,
        event_ids=ids,
        topic=topics,
        partition=partitions,
        offset=counts,
        keyid=hexes,
        inspectorate=inspectorates,
    ),
    st.builds(
        EventQuarantined,
        at=times,
        actor=actors,
        event_ids=st.just(()),
        reason=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
        source_topic=topics,
        partition=partitions,
        offset=counts,
        detail=text_for(EventQuarantined, "detail"),
        raw_sha256=st.none() | hexes,
    ),
    st.builds(
        EventRouted,
        at=times,
        actor=actors,
        event_ids=ids,
        inspectorate=inspectorates,
        area=areas,
        destinations=st.lists(
            st.builds(
                RouteTaken,
                topic=topics,
                rules=st.lists(text_for(RouteTaken, "rules"), max_size=3).map(tuple),
            ),
            min_size=1,
            max_size=4,
            unique_by=lambda d: d.topic,
        ).map(tuple),
    ),
    st.builds(
        FeedRead,
        at=times,
        actor=actors,
        event_ids=ids,
        analyst=text_for(FeedRead, "analyst"),
        purpose=text_for(FeedRead, "purpose"),
        filters=filters,
        returned=counts,
    ),
    st.builds(
        VerificationFailed,
        at=times,
        actor=actors,
        position=st.none() | counts,
        detail=text_for(VerificationFailed, "detail"),
    ),
    st.builds(
        KeyRotated,
        at=times,
        actor=actors,
        keyid=hexes,
        owner=st.sampled_from(["liaison", "ofsted"]),
        retired_keyids=st.lists(hexes, max_size=3).map(tuple),
    ),
)


def test_the_strategies_use_the_models_limits() -> None:
    # RouteTaken.rules once drew 500 characters where the model allows 200: a flaky test.
    assert string_limits(RouteTaken, "rules") == (1, 200)
    assert string_limits(EventQuarantined, "detail") == (1, 500)
    with pytest.raises(ValidationError):
        RouteTaken(topic="liaison.jtai", rules=("x" * 201,))


@given(records)
def test_generated_records_round_trip_byte_for_byte(record: AuditRecord) -> None:
    data = encode_record(record)
    decoded = decode_record(data)
    assert decoded == record
    assert encode_record(decoded) == data
    assert judge_record(data) == record
    seq, stored = split_leaf(leaf_data(len(data), data))
    assert (seq, stored) == (len(data), data)


# ---- judging any bytes -----------------------------------------------------------------

GOOD = encode_record(SAMPLES["feed.read"])

HOSTILE: dict[str, tuple[bytes, InvalidReason]] = {
    "empty": (b"", InvalidReason.EMPTY),
    "over the limit": (b"{" + b" " * MAX_RECORD_BYTES + b"}", InvalidReason.TOO_LARGE),
    "80000 open brackets": (b"[" * 80000, InvalidReason.TOO_LARGE),
    "60000 open brackets": (b"[" * 60000, InvalidReason.NOT_JSON),
    "not json": (b"not json", InvalidReason.NOT_JSON),
    "not utf-8": (b"\xff\xfe{}", InvalidReason.NOT_JSON),
    "lone surrogate escape": (
        GOOD.replace(b'"a.khan"', b'"\\ud800"', 1),
        InvalidReason.NOT_JSON,
    ),
    "surrogate bytes": (GOOD.replace(b"a.khan", b"\xed\xa0\x80", 1), InvalidReason.NOT_JSON),
    "a number too large for a float": (
        GOOD.replace(b'"returned":1', b'"returned":1e999', 1),
        InvalidReason.INVALID_FIELDS,
    ),
    "an integer beyond 64 bits": (
        GOOD.replace(b'"returned":1', b'"returned":' + b"9" * 4000, 1),
        InvalidReason.INVALID_FIELDS,
    ),
    "an integer too long to parse": (
        GOOD.replace(b'"returned":1', b'"returned":' + b"9" * 5000, 1),
        InvalidReason.NOT_JSON,
    ),
    "a list": (b"[]", InvalidReason.NOT_AN_OBJECT),
    "a string": (b'"feed.read"', InvalidReason.NOT_AN_OBJECT),
    "no action": (b"{}", InvalidReason.UNKNOWN_ACTION),
    "unknown action": (
        GOOD.replace(b'"feed.read"', b'"feed.deleted"', 1),
        InvalidReason.UNKNOWN_ACTION,
    ),
    "year 10000 in UTC": (
        GOOD.replace(b'"2026-11-22T12:00:00Z"', b'"9999-12-31T23:59:59-23:59"', 1),
        InvalidReason.INVALID_FIELDS,
    ),
    "year 0 in UTC": (
        GOOD.replace(b'"2026-11-22T12:00:00Z"', b'"0001-01-01T00:00:00+23:59"', 1),
        InvalidReason.INVALID_FIELDS,
    ),
    "missing field": (GOOD.replace(b',"returned":1', b"", 1), InvalidReason.INVALID_FIELDS),
}


def test_the_hostile_corpus_changes_only_what_it_names() -> None:
    # Each case must differ from the good record, or it would test nothing.
    for name, (raw, _) in HOSTILE.items():
        assert raw != GOOD, name
    assert judge_record(GOOD) == SAMPLES["feed.read"]


@pytest.mark.parametrize("name", HOSTILE)
def test_each_hostile_value_is_judged_with_its_reason(name: str) -> None:
    raw, reason = HOSTILE[name]
    judged = judge_record(raw)
    assert isinstance(judged, InvalidRecord)
    assert judged.reason is reason
    with pytest.raises(SchemaError) as caught:
        decode_record(raw)
    assert str(caught.value) == str(judged.error)


def _mutations() -> st.SearchStrategy[bytes]:
    """Valid records with bytes changed, cut, repeated or inserted."""
    valid = st.sampled_from([encode_record(r) for r in SAMPLES.values()])

    def mutate(data: bytes, at: int, insert: bytes, cut: int) -> bytes:
        at %= len(data) + 1
        return data[:at] + insert + data[at + cut :]

    return st.builds(
        mutate,
        valid,
        st.integers(0, 2000),
        st.binary(max_size=20) | st.sampled_from([b"\\ud800", b"[" * 500, b"-23:59", b"1e999"]),
        st.integers(0, 10),
    )


@given(st.binary(max_size=2000) | _mutations() | st.text().map(str.encode))
def test_any_bytes_are_judged_and_never_raise(data: bytes) -> None:
    judged = judge_record(data)
    if isinstance(judged, InvalidRecord):
        assert judged.reason in InvalidReason
        assert str(judged.error).startswith("invalid audit record")
    else:
        assert decode_record(data) == judged


@given(st.text(max_size=200))
def test_any_text_is_judged_and_never_raises(text: str) -> None:
    # Lone surrogates included: a str that is not Unicode text is refused, not raised on.
    assert isinstance(judge_record(text + "\ud800"), InvalidRecord)
    judge_record(text)


@pytest.mark.parametrize(
    "at",
    [
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59.999999Z",
        "9000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
    ],
)
def test_a_time_out_of_range_is_a_schema_error_not_an_overflow(at: str) -> None:
    assert paths(refusal(fields_of("feed.read", at=at))) == {"at"}


def test_the_edges_of_the_time_range() -> None:
    first = fields_of("feed.read", at="2000-01-01T00:00:00Z")
    last = fields_of("feed.read", at="8999-12-31T23:59:59.999999Z")
    assert decode_record(json.dumps(first)).at == EARLIEST_AT
    assert decode_record(json.dumps(last)).at == LATEST_AT - dt.timedelta(microseconds=1)
    # Built in Python, an overflowing time is a validation error too.
    far = dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(-dt.timedelta(hours=23)))
    with pytest.raises(ValidationError):
        KeyGenerated(at=far, actor="operator:cli", keyid=KEYID, owner="cqc")


def test_text_that_is_not_unicode_is_refused_when_a_record_is_built() -> None:
    # Otherwise encode_record would fail later, on the way to the log.
    with pytest.raises(ValidationError):
        EventQuarantined(
            at=AT, actor="router:0", reason="not_dsse", source_topic="liaison.events.cqc",
            partition=0, offset=1, detail="refused \ud800",
        )  # fmt: skip
    with pytest.raises(ValidationError):
        RouteTaken(topic="liaison.jtai", rules=("rule \udc00",))


def test_refusals_never_repeat_the_refused_text() -> None:
    personal = "Amelia.Jones.2017"
    cases = [
        fields_of("replay.run", actor=f"robot:{personal}"),
        fields_of("replay.run", actor=f"inspectorate:{personal}"),
        fields_of("key.generated", owner=personal),
    ]
    for data in cases:
        assert personal not in str(refusal(data))
    with pytest.raises(SchemaError) as caught:
        check_actor(f"robot:{personal}")
    assert personal not in str(caught.value)
    assert check_actor("analyst:a.khan") == "analyst:a.khan"


# ---- the quarantine record's hash of the refused value --------------------------------

OLD_QUARANTINE = (
    b'{"action":"event.quarantined","actor":"router:0","at":"2026-11-22T12:00:00Z",'
    b'"detail":"bad_signature: the signature does not verify","event_ids":[],"offset":7,'
    b'"partition":2,"reason":"bad_signature","source_topic":"liaison.events.cqc"}'
)


def test_a_quarantine_record_written_before_raw_sha256_decodes_byte_for_byte() -> None:
    record = decode_record(OLD_QUARANTINE)
    assert isinstance(record, EventQuarantined)
    assert record.raw_sha256 is None
    assert encode_record(record) == OLD_QUARANTINE


def test_a_quarantine_record_carries_the_sha256_of_the_refused_value() -> None:
    raw = b"the refused bytes"
    digest = hashlib.sha256(raw).hexdigest()
    record = SAMPLES["event.quarantined"].model_copy(update={"raw_sha256": digest})
    data = encode_record(record)
    assert json.loads(data)["raw_sha256"] == digest
    assert decode_record(data) == record
    assert raw not in data


@pytest.mark.parametrize("bad", ["AB" * 32, "ab" * 31, "ab" * 33, "zz" * 32, "", 5])
def test_raw_sha256_must_be_64_lowercase_hex_digits(bad: object) -> None:
    data = json.loads(OLD_QUARANTINE)
    data["raw_sha256"] = bad
    assert paths(refusal(data)) == {"raw_sha256"}
