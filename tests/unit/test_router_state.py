"""The router's state as records of liaison.router.state: what is written loads back to
the same state, a router restored from it decides as the one that wrote it, forged or
moved records teach nothing, and ids past the dedupe horizon are forgotten."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.copartition import partition_for
from consumers.jtai import Claimed, Evidence, Forgotten, Released
from consumers.router import BatchOutcome, Router
from consumers.router_state import (
    ConcernGroups,
    LoadedState,
    RoutedGroups,
    RoutedId,
    StateRecord,
    encode_offsets,
    encode_routed,
    encode_window_change,
    load_state,
    mac,
)
from consumers.rules import JtaiSettings
from schemas.audit import ConsiderationEmitted, DuplicateIgnored, EventQuarantined
from schemas.events import Theme
from schemas.inspectorates import Inspectorate
from schemas.jtai import JtaiTrigger
from schemas.records import InboundRecord
from schemas.topics import Topics
from services.rules_file import load_rules
from tests.factories import NOW, concern, key_for, sealed_inbound, trust_of

SECRET = b"k" * 32
TOPICS = Topics("t.")
RULES = load_rules(Path(__file__).resolve().parents[2] / "deploy" / "rules.toml")
KEYS = {i: key_for(i.value) for i in Inspectorate}
BUS = key_for("liaison")
TRUST = trust_of(*KEYS.values(), BUS)
HORIZON = dt.timedelta(days=400)


def evidence(**overrides: object) -> Evidence:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "source": Inspectorate.CQC,
        "occurred_at": NOW - dt.timedelta(days=3, microseconds=17),
        "area": "E08000035",
        "theme": Theme.NEGLECT,
        "alone": None,
        "review": False,
    }
    fields.update(overrides)
    return Evidence(**fields)  # type: ignore[arg-type]


def test_every_kind_of_record_loads_back_as_written() -> None:
    routed = RoutedId(uuid.uuid4().hex, "ofsted", "finding", 1_700_000_000_123)
    kept = evidence(alone=JtaiTrigger.SEVERITY_4)
    window = Claimed("E08000035", Theme.NEGLECT, NOW - dt.timedelta(microseconds=5), NOW)
    other = evidence(source=Inspectorate.OFSTED, area="E06000001", review=True)
    records = [
        encode_routed(SECRET, 2, [routed]),
        *ConcernGroups(SECRET, 2).record([kept, other]),
        encode_window_change(SECRET, 2, window),
        encode_offsets(SECRET, 2, {"t.liaison.events.ofsted": 7}),
    ]
    loaded = load_state(SECRET, 2, records)
    assert loaded == LoadedState(
        offsets={"t.liaison.events.ofsted": 7},
        routed=[routed],
        groups={records[0].key: [routed]},
        evidence=[kept, other],
        concern_groups={records[1].key: [kept, other]},
        claims=[window],
        refused=0,
    )
    assert records[1].key == b"g/" + kept.id.hex.encode()


def _legacy(partition: int, concern: Evidence) -> StateRecord:
    """A concern as the first state records held it, one per record (``e/<id>``)."""
    body = {
        "s": concern.source.value,
        "o": concern.occurred_at.isoformat(),
        "a": concern.area,
        "t": concern.theme.value,
        "x": concern.alone.value if concern.alone is not None else None,
        "r": concern.review,
    }
    key = b"e/" + concern.id.hex.encode()
    value = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return StateRecord(partition, key, value, mac(SECRET, partition, key, value))


def test_a_concern_recorded_one_per_record_still_loads_and_is_deleted_when_forgotten() -> None:
    old = evidence(alone=JtaiTrigger.IMMEDIATE_RISK)
    record = _legacy(1, old)
    loaded = load_state(SECRET, 1, [record])
    assert loaded.evidence == [old]
    groups = ConcernGroups(SECRET, 1)
    groups.load(loaded.concern_groups)
    assert groups.forget([old.id]) == [StateRecord(1, record.key, None)]
    assert load_state(SECRET, 1, [record, StateRecord(1, record.key, None)]).evidence == []


def test_the_latest_value_wins_and_a_tombstone_deletes() -> None:
    kept = evidence()
    window = Claimed("E08000035", Theme.NEGLECT, NOW, NOW + dt.timedelta(days=1))
    groups = ConcernGroups(SECRET, 0)
    records = [
        encode_offsets(SECRET, 0, {"a": 1}),
        *groups.record([kept]),
        encode_window_change(SECRET, 0, window),
        encode_offsets(SECRET, 0, {"a": 9}),
        *groups.forget([kept.id]),
        encode_window_change(SECRET, 0, dataclasses.replace(window, area="E08000035")),
        StateRecord(0, b"r/" + uuid.uuid4().hex.encode(), None),
    ]
    loaded = load_state(SECRET, 0, records)
    assert loaded.offsets == {"a": 9}
    assert loaded.evidence == []
    assert loaded.claims == [window]


def test_forged_moved_or_unsigned_records_teach_nothing() -> None:
    routed = RoutedId(uuid.uuid4().hex, "ofsted", "finding", 1)
    good = encode_routed(SECRET, 1, [routed])
    forged = encode_routed(b"x" * 32, 1, [RoutedId(uuid.uuid4().hex, "cqc", "finding", 1)])
    moved = dataclasses.replace(good, partition=2)  # a real record copied to partition 2
    rekeyed = dataclasses.replace(good, key=b"r/" + uuid.uuid4().hex.encode())
    tampered = dataclasses.replace(good, value=good.value.replace(b"ofsted", b"cqc"))  # type: ignore[union-attr]
    unsigned = dataclasses.replace(good, mac=None)
    assert load_state(SECRET, 2, [moved]).routed == []
    loaded = load_state(SECRET, 1, [good, forged, rekeyed, tampered, unsigned])
    assert loaded.routed == [routed]  # a forged later value does not replace the good one
    assert loaded.refused == 4


@given(
    st.lists(
        st.tuples(
            st.binary(max_size=40), st.none() | st.binary(max_size=200), st.binary(max_size=40)
        ),
        max_size=20,
    )
)
def test_any_bytes_never_raise(raw: list[tuple[bytes, bytes | None, bytes]]) -> None:
    records = [StateRecord(0, key, value, mac) for key, value, mac in raw]
    loaded = load_state(SECRET, 0, records)
    assert loaded.routed == []
    assert loaded.evidence == []
    assert loaded.claims == []


def test_a_well_signed_value_that_does_not_decode_is_refused_not_raised() -> None:
    huge = str(10**30).encode()
    one = f'"{uuid.uuid4().hex}","cqc",1,"E08000035","neglect",null,false'
    naive = b'{"s":"cqc","o":"2026-01-01T00:00:00","a":"E1","t":"neglect","x":null,"r":false}'
    bad = [
        StateRecord(0, b"r/zz", b"{}"),
        StateRecord(0, b"e/" + uuid.uuid4().hex.encode(), b'{"s":"nobody"}'),
        StateRecord(0, b"e/" + uuid.uuid4().hex.encode(), naive),
        StateRecord(0, b"g/a", b'{"c":[]}'),
        StateRecord(0, b"g/b", b'{"c":[[' + one.replace(",1,", ",1e400,").encode() + b"]]}"),
        StateRecord(
            0, b"g/d", b'{"c":[[' + one.encode().replace(b",1,", b"," + huge + b",") + b"]]}"
        ),
        StateRecord(0, b"g/e", b'{"c":[[' + one.replace('"cqc"', '["cqc"]').encode() + b"]]}"),
        StateRecord(0, b"g/f", b'{"c":[[' + one.replace("false", "0").encode() + b"]]}"),
        StateRecord(0, b"g/g", b'{"c":[[' + one.replace("null", '"often"').encode() + b"]]}"),
        StateRecord(0, b"g/h", b'{"c":[[' + one.replace(",false", "").encode() + b"]]}"),
        StateRecord(0, b"c/a/neglect", b'{"e":1}'),
        StateRecord(0, b"c/a/neglect/1/" + huge, b'{"e":' + huge + b"}"),
        StateRecord(0, b"o", b'{"o":{"t":"1"}}'),
        StateRecord(0, b"zz", b"[]"),
        StateRecord(0, b"\xff", b"{}"),
    ]
    good = StateRecord(0, b"g/z", b'{"c":[[' + one.encode() + b"]]}")
    bad.append(good)

    signed = [dataclasses.replace(r, mac=mac(SECRET, 0, r.key, r.value or b"")) for r in bad]
    loaded = load_state(SECRET, 0, signed)
    assert loaded.refused == len(bad) - 1
    assert loaded.offsets is None
    assert len(loaded.evidence) == 1


# -- a router restored from its records decides as the one that wrote them ---------------


class _Store:
    """What a router service writes of one partition's state, commit by commit."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.ids = RoutedGroups(SECRET, partition)
        self.concerns = ConcernGroups(SECRET, partition)
        self.records: list[StateRecord] = []

    def commit(self, router: Router) -> None:
        ids, changes = router.drain_changes()
        self.records.extend(
            [
                *self.ids.add(ids),
                *self.concerns.record([c for c in changes if isinstance(c, Evidence)]),
                *self.concerns.forget([c.id for c in changes if isinstance(c, Forgotten)]),
                *(
                    encode_window_change(SECRET, self.partition, c)
                    for c in changes
                    if isinstance(c, Claimed | Released)
                ),
                *self.ids.consolidate(),
                *self.concerns.consolidate(),
            ]
        )


# A 30-day JTAI window over 400 days of concerns: the watch forgets often, so groups of
# concerns are left holding some it has forgotten (a restored watch must forget them too).
SHORT_WINDOW = RULES.model_copy(update={"jtai": JtaiSettings(window_days=30)})


def _router(partitions: int = 0) -> Router:
    return Router(TOPICS, SHORT_WINDOW, BUS, "router:0", partitions=partitions, log_changes=True)


def _decisions(outcome: BatchOutcome) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for record in outcome.audit:
        if isinstance(record, ConsiderationEmitted):
            out.append(("consideration", (record.consideration_id, record.event_ids)))
        elif isinstance(record, DuplicateIgnored):
            out.append(("duplicate", record.event_ids))
        elif isinstance(record, EventQuarantined):
            out.append(("quarantined", record.reason))
        else:
            out.append((type(record).__name__, record.event_ids))
    return out


concerns_st = st.lists(
    st.tuples(
        st.sampled_from(list(Inspectorate)),
        st.integers(min_value=0, max_value=400),  # days before NOW
        st.sampled_from([Theme.NEGLECT, Theme.FRONT_DOOR]),
        st.integers(min_value=1, max_value=4),
        st.booleans(),  # a copy of an earlier event (a duplicate) instead of a new one
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(concerns_st, st.integers(min_value=0, max_value=14), st.integers(1, 4))
def test_a_restored_router_decides_as_the_one_that_wrote_the_state(
    spec: list[tuple[Inspectorate, int, Theme, int, bool]], split: int, batch: int
) -> None:
    records: list[InboundRecord] = []
    for source, days, theme, severity, copy in spec:
        if copy and records:
            records.append(records[len(records) // 2])
            continue
        event = concern(
            source=source.value,
            programme={"ofsted": "ilacs", "cqc": "clas", "hmicfrs": "ncpi"}.get(
                source.value, "youth_justice" if source is Inspectorate.HMI_PROBATION else "custody"
            ),
            occurred_at=NOW - dt.timedelta(days=days),
            area="E08000035",
            theme=theme.value,
            severity=severity,
        )
        records.append(sealed_inbound(event, KEYS[source]))
    split = min(split, len(records))
    writer, store = _router(), _Store(0)
    for start in range(0, split, batch):  # a group of concerns per commit, some forgotten
        writer.step(records[start : min(start + batch, split)], TRUST, NOW)
        store.commit(writer)
    restored = _router()
    restored.restore(load_state(SECRET, 0, store.records), NOW, HORIZON)
    assert restored.jtai_held() == writer.jtai_held()
    for record in records[split:]:
        assert _decisions(restored.step([record], TRUST, NOW)) == _decisions(
            writer.step([record], TRUST, NOW)
        )


def test_an_event_on_a_partition_its_area_does_not_give_is_refused() -> None:
    event = concern(area="E08000035")
    right = partition_for(b"E08000035", 3)
    record = sealed_inbound(event, KEYS[Inspectorate.OFSTED])
    wrong = dataclasses.replace(record, partition=(right + 1) % 3)
    router = _router(partitions=3)
    (refused,) = list(router.step([wrong], TRUST, NOW).audit)
    assert isinstance(refused, EventQuarantined)
    assert refused.reason == "wrong_partition"
    routed = router.step([dataclasses.replace(record, partition=right)], TRUST, NOW)
    assert not any(isinstance(a, EventQuarantined) for a in routed.audit)


def test_ids_past_the_dedupe_horizon_are_forgotten_and_returned_for_deletion() -> None:
    old = RoutedId(
        uuid.uuid4().hex, "ofsted", "finding", int((NOW - HORIZON).timestamp() * 1000) - 1
    )
    young = RoutedId(uuid.uuid4().hex, "ofsted", "finding", int(NOW.timestamp() * 1000))
    router = _router()
    expired = router.restore(LoadedState(routed=[old, young]), NOW, HORIZON)
    assert expired == [old.id]
    assert router.routed == 1
    assert router.expire(NOW + dt.timedelta(days=1), HORIZON) == []
    assert router.expire(NOW + HORIZON + dt.timedelta(days=1), HORIZON) == [young.id]
    assert router.routed == 0


# -- groups of routed ids: few records to load, however the ids arrived --------------------


def _ids(n: int, at_ms: int) -> list[RoutedId]:
    return [RoutedId(uuid.uuid4().hex, "ofsted", "finding", at_ms) for _ in range(n)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 250), st.integers(0, 1000)),
            st.tuples(st.just("expire"), st.integers(0, 1000), st.just(0)),
            st.tuples(st.just("consolidate"), st.just(0), st.just(0)),
        ),
        max_size=120,
    )
)
def test_the_groups_written_load_back_to_every_id_not_expired(
    operations: list[tuple[str, int, int]],
) -> None:
    groups, written, live = RoutedGroups(SECRET, 0), [], {}
    for op, a, b in operations:
        if op == "add":
            ids = _ids(a, b)
            written.extend(groups.add(ids))
            live.update({r.id: r for r in ids})
        elif op == "expire":
            written.extend(groups.expire(a))
        else:
            written.extend(groups.consolidate())
    loaded = load_state(SECRET, 0, written)
    kept = {r.id for r in loaded.routed}
    assert kept <= set(live)
    assert len(loaded.routed) == len(kept)  # each id in one group only
    assert len(loaded.groups) == len(groups)
    # An id is deleted only with a group whose newest id is past the horizon given.
    for missing in set(live) - kept:
        assert any(op == "expire" and a > live[missing].at_ms for op, a, _ in operations)


def test_a_trickle_of_single_ids_is_merged_into_few_records() -> None:
    groups, written = RoutedGroups(SECRET, 0), []
    for i in range(1000):
        written.extend(groups.add(_ids(1, i)))
        written.extend(groups.consolidate())
    loaded = load_state(SECRET, 0, written)
    assert len(loaded.routed) == 1000
    assert len(loaded.groups) < 80
    big = RoutedGroups(SECRET, 0).add(_ids(9000, 5))
    assert [len(load_state(SECRET, 0, [r]).routed) for r in big] == [4000, 4000, 1000]


def test_two_windows_with_one_start_are_two_keys() -> None:
    # The window setting changed between two claims: releasing one keeps the other.
    short = Claimed("E08000035", Theme.NEGLECT, NOW, NOW + dt.timedelta(days=90))
    long = dataclasses.replace(short, end=NOW + dt.timedelta(days=180))
    records = [
        encode_window_change(SECRET, 0, short),
        encode_window_change(SECRET, 0, long),
        encode_window_change(SECRET, 0, Released(short)),
    ]
    assert load_state(SECRET, 0, records).claims == [long]


def test_what_is_recorded_and_forgotten_between_two_drains_is_never_written() -> None:
    from consumers.jtai import JtaiWatch  # noqa: PLC0415 - only this test needs the watch

    watch = JtaiWatch(dt.timedelta(days=10), log_changes=True)
    old = concern(occurred_at=NOW - dt.timedelta(days=100), source="cqc", programme="clas")
    watch.replay_finding(old)
    assert [type(c) for c in watch.drain_changes()] == [Evidence]  # written: it was kept
    new = concern(occurred_at=NOW)
    stale = concern(occurred_at=NOW - dt.timedelta(days=50), source="hmicfrs", programme="ncpi")
    watch.replay_finding(new)  # forgets the old one (written before: a tombstone)
    watch.replay_finding(stale)  # recorded and forgotten at once: never written
    drained = watch.drain_changes()
    assert Forgotten(old.id) in drained
    assert all(getattr(c, "id", None) != stale.id for c in drained)
    assert [c.id for c in drained if isinstance(c, Evidence)] == [new.id]


# -- groups of concerns: few records to load, and what they still hold is bounded ----------


def _concerns(n: int) -> list[Evidence]:
    return [evidence(occurred_at=NOW - dt.timedelta(minutes=i)) for i in range(n)]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("record"), st.integers(0, 300)),
            st.tuples(st.just("forget"), st.floats(0, 1)),
            st.tuples(st.just("consolidate"), st.just(0)),
        ),
        max_size=80,
    )
)
def test_the_concern_groups_written_load_back_to_every_concern_not_forgotten(
    operations: list[tuple[str, float]],
) -> None:
    groups, written = ConcernGroups(SECRET, 0), []
    recorded: dict[uuid.UUID, Evidence] = {}
    live: set[uuid.UUID] = set()
    for op, a in operations:
        if op == "record":
            concerns = _concerns(int(a))
            written.extend(groups.record(concerns))
            recorded.update({c.id: c for c in concerns})
            live.update(c.id for c in concerns)
        elif op == "forget":
            gone = sorted(live)[: int(len(live) * a)]
            live.difference_update(gone)
            written.extend(groups.forget(gone))
        else:
            written.extend(groups.consolidate())
            written.extend(groups.consolidate())  # again: nothing new to merge
    loaded = load_state(SECRET, 0, written)
    held = {c.id for c in loaded.evidence}
    assert live <= held <= set(recorded)  # every live concern, nothing invented
    assert len(loaded.evidence) == len(held)  # each in one record only
    assert all(recorded[c.id] == c for c in loaded.evidence)
    assert len(loaded.concern_groups) == len(groups)
    assert len(held) == groups.held


def test_a_trickle_of_concerns_is_merged_and_what_is_forgotten_does_not_pile_up() -> None:
    groups, written, live = ConcernGroups(SECRET, 0), [], []
    for one in _concerns(3000):
        written.extend(groups.record([one]))
        live.append(one.id)
        if len(live) > 500:  # a sliding window: the oldest forgotten as new ones come
            written.extend(groups.forget([live.pop(0)]))
        written.extend(groups.consolidate())
    loaded = load_state(SECRET, 0, written)
    assert {c.id for c in loaded.evidence} >= set(live)
    assert len(loaded.concern_groups) < 80
    assert len(loaded.evidence) < 2 * len(live) + 2 * 4000 // 2
    big = ConcernGroups(SECRET, 0).record(_concerns(9000))
    assert [len(load_state(SECRET, 0, [r]).evidence) for r in big] == [4000, 4000, 1000]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


@given(
    st.sampled_from([b"o", b"r/x", b"g/x", b"e/" + b"a" * 32, b"c/E1/neglect/1/2"]),
    json_values | st.fixed_dictionaries({"c": json_values, "i": json_values, "o": json_values}),
    st.binary(max_size=60),
)
def test_any_well_signed_value_is_loaded_or_refused_never_raised(
    key: bytes, body: object, noise: bytes
) -> None:
    for value in (json.dumps(body).encode(), noise):
        record = StateRecord(0, key, value, mac(SECRET, 0, key, value))
        loaded = load_state(SECRET, 0, [record])
        assert loaded.refused in {0, 1}
        ConcernGroups(SECRET, 0).load(loaded.concern_groups)
        RoutedGroups(SECRET, 0).load(loaded.groups)
