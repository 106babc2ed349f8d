"""The checker finds every planted fault, in its category, and nothing in a clean run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from consumers.jtai import consideration_id
from schemas.events import ConcernRaised, Theme
from schemas.topics import Topics
from services.rules_file import load_rules
from tests.chaos.checker import (
    CATEGORIES,
    AuditLeaf,
    Consideration,
    Expectation,
    Observed,
    expect,
    judge,
    leaf_of,
)
from tests.factories import NOW, concern

RULES = load_rules(Path(__file__).parents[2] / "deploy" / "rules.toml")
TOPICS = Topics("t.")
FEED, UNROUTED = TOPICS.feed, TOPICS.unrouted
NCPI, PEEL = "t.liaison.programme.ncpi", "t.liaison.programme.peel"

POLICE = concern(subject_agencies=["police"], finding="cause_of_concern", theme="front_door")
NOWHERE = concern(subject_agencies=["education"], area="E10000016", theme="early_help")
PAIR = (
    concern(area="E08000026", occurred_at=NOW - dt.timedelta(days=30)),
    concern(
        source="hmicfrs",
        programme="ncpi",
        area="E08000026",
        occurred_at=NOW - dt.timedelta(days=10),
        subject_agencies=["education"],
    ),
)
EVENTS = (POLICE, NOWHERE, *PAIR)
PAIR_CONSIDERATION = str(
    consideration_id("E08000026", Theme.NEGLECT, (NOW - dt.timedelta(days=30)).astimezone(dt.UTC))
)


def test_the_rules_give_known_destinations_and_the_pair_a_consideration() -> None:
    expected = expect(EVENTS, RULES, TOPICS)
    assert expected.destinations[str(POLICE.id)] == {NCPI, PEEL, FEED}
    assert expected.destinations[str(NOWHERE.id)] == {UNROUTED, FEED}
    assert expected.jtai == {("E08000026", "neglect")}


def clean(expected: Expectation, considerations: dict[str, tuple[str, str]]) -> Observed:
    """What a faultless run shows: each event once in each destination, each
    consideration once, and one leaf per audit record."""
    deliveries = [(e, t) for e, topics in sorted(expected.destinations.items()) for t in topics]
    leaves: list[AuditLeaf] = []
    for event_id in sorted(expected.destinations):
        leaves.append(AuditLeaf(0, 0, "event.published", (event_id,), f"t:0:{len(leaves)}"))
        leaves.append(AuditLeaf(0, 0, "event.routed", (event_id,)))
    leaves.extend(AuditLeaf(0, 0, "jtai.consideration_emitted", (), c) for c in considerations)
    leaves = [dataclasses.replace(leaf, seq=i, offset=2 * i) for i, leaf in enumerate(leaves)]
    return Observed(
        deliveries=tuple(deliveries),
        considerations=tuple(Consideration(c, a, t) for c, (a, t) in considerations.items()),
        audit_offsets=tuple(leaf.offset for leaf in leaves),
        leaves=tuple(leaves),
    )


EXPECTED = expect(EVENTS, RULES, TOPICS)
CLEAN = clean(EXPECTED, {PAIR_CONSIDERATION: ("E08000026", "neglect")})


def only(observed: Observed) -> dict[str, int]:
    """The non-zero counts of the checker's report."""
    return {name: n for name, n in judge(EXPECTED, observed).counts.items() if n}


def test_a_clean_run_has_every_count_zero() -> None:
    report = judge(EXPECTED, CLEAN)
    assert report.ok
    assert report.counts == dict.fromkeys(CATEGORIES, 0)
    assert "e.g." not in report.render()


def without(observed: Observed, *drop: tuple[str, str]) -> Observed:
    return dataclasses.replace(
        observed, deliveries=tuple(d for d in observed.deliveries if d not in drop)
    )


def test_a_planted_loss_tear_duplicate_and_misroute_are_found() -> None:
    police, nowhere = str(POLICE.id), str(NOWHERE.id)
    lost = without(CLEAN, (nowhere, UNROUTED), (nowhere, FEED))
    assert only(lost) == {"lost": 1}
    torn = without(CLEAN, (police, PEEL))
    assert only(torn) == {"torn": 1}
    assert f"{police} missing from ['{PEEL}']" in judge(EXPECTED, torn).cases["torn"]
    twice = dataclasses.replace(CLEAN, deliveries=(*CLEAN.deliveries, (police, NCPI)))
    assert only(twice) == {"duplicated": 1}
    astray = dataclasses.replace(CLEAN, deliveries=(*CLEAN.deliveries, (nowhere, NCPI)))
    assert only(astray) == {"misrouted": 1}
    stranger = dataclasses.replace(CLEAN, deliveries=(*CLEAN.deliveries, (str(uuid.uuid4()), FEED)))
    assert only(stranger) == {"misrouted": 1}


def test_a_missing_repeated_or_unexpected_consideration_is_found() -> None:
    missing = dataclasses.replace(
        CLEAN,
        considerations=(),
        leaves=tuple(x for x in CLEAN.leaves if x.action != "jtai.consideration_emitted"),
    )
    missing = dataclasses.replace(missing, audit_offsets=tuple(x.offset for x in missing.leaves))
    assert only(missing) == {"jtai_missing": 1}
    again = dataclasses.replace(CLEAN, considerations=(*CLEAN.considerations,) * 2)
    assert only(again) == {"jtai_repeated": 1}
    odd = Consideration(str(uuid.uuid4()), "E10000016", "early_help")
    extra = dataclasses.replace(CLEAN, considerations=(*CLEAN.considerations, odd))
    assert only(extra) == {"jtai_unexpected": 1, "audit_missing": 1}  # and no emission leaf


def renumbered(observed: Observed, leaves: list[AuditLeaf]) -> Observed:
    """``leaves`` as the store holds them (seq 0..), each from its own committed offset."""
    leaves = [dataclasses.replace(x, seq=i, offset=2 * i) for i, x in enumerate(leaves)]
    return dataclasses.replace(
        observed, leaves=tuple(leaves), audit_offsets=tuple(x.offset for x in leaves)
    )


def test_missing_and_repeated_audit_leaves_are_found() -> None:
    police = str(POLICE.id)
    leaves = list(CLEAN.leaves)
    no_decision = [x for x in leaves if not (x.action == "event.routed" and police in x.event_ids)]
    assert only(renumbered(CLEAN, no_decision)) == {"audit_missing": 1}
    no_publication = [
        x for x in leaves if not (x.action == "event.published" and police in x.event_ids)
    ]
    assert only(renumbered(CLEAN, no_publication)) == {"audit_missing": 1}
    decided = next(x for x in leaves if x.action == "event.routed")
    assert only(renumbered(CLEAN, [*leaves, decided])) == {"audit_repeated": 1}
    published = next(x for x in leaves if x.action == "event.published")
    assert only(renumbered(CLEAN, [*leaves, published])) == {"audit_repeated": 1}
    # The same event published again elsewhere (a re-sent batch) is not a repeat.
    resent = dataclasses.replace(published, subject="t:1:99")
    assert only(renumbered(CLEAN, [*leaves, resent])) == {}
    emitted = next(x for x in leaves if x.action == "jtai.consideration_emitted")
    assert only(renumbered(CLEAN, [*leaves, emitted])) == {"audit_repeated": 1}


def test_the_store_must_hold_each_committed_audit_record_once() -> None:
    *kept, last = CLEAN.leaves
    spare = AuditLeaf(last.seq, last.offset, "key.generated")  # not about any event
    base = dataclasses.replace(
        CLEAN, leaves=(*kept, last, dataclasses.replace(spare, seq=last.seq + 1, offset=999))
    )
    base = dataclasses.replace(base, audit_offsets=(*CLEAN.audit_offsets, 999))
    assert only(base) == {}
    assert only(dataclasses.replace(base, leaves=base.leaves[:-1])) == {"audit_missing": 1}
    twice = (*base.leaves, dataclasses.replace(base.leaves[-1], seq=len(base.leaves)))
    assert only(dataclasses.replace(base, leaves=twice)) == {"audit_repeated": 1}
    foreign = dataclasses.replace(base, audit_offsets=base.audit_offsets[:-1])
    assert only(foreign) == {"audit_foreign": 1}
    gap = (*base.leaves[:-1], dataclasses.replace(base.leaves[-1], seq=len(base.leaves) + 5))
    assert only(dataclasses.replace(base, leaves=gap)) == {"audit_missing": 1}


def test_leaves_are_read_from_record_payloads() -> None:
    published = json.dumps(
        {"action": "event.published", "event_ids": ["a"], "topic": "t", "partition": 1, "offset": 7}
    ).encode()
    assert leaf_of(3, 9, published) == AuditLeaf(3, 9, "event.published", ("a",), "t:1:7")
    emitted = json.dumps({"action": "jtai.consideration_emitted", "consideration_id": "c"})
    assert leaf_of(0, 0, emitted.encode()).subject == "c"
    assert leaf_of(0, 0, None) == AuditLeaf(0, 0, "")
    assert leaf_of(0, 0, b"not json") == AuditLeaf(0, 0, "")
    assert leaf_of(0, 0, b"[1]") == AuditLeaf(0, 0, "")


themes = st.sampled_from(["neglect", "front_door", "early_help"])
areas = st.sampled_from(["E08000025", "E10000016"])
sources = st.sampled_from([("ofsted", "ilacs"), ("cqc", "clas"), ("hmicfrs", "ncpi")])


@st.composite
def concerns(draw: st.DrawFn) -> ConcernRaised:
    source, programme = draw(sources)
    return concern(
        id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1)), version=4),
        source=source,
        programme=programme,
        area=draw(areas),
        theme=draw(themes),
        subject_agencies=draw(
            st.lists(
                st.sampled_from(["police", "health", "education"]),
                min_size=1,
                max_size=2,
                unique=True,
            )
        ),
        occurred_at=NOW - dt.timedelta(days=draw(st.integers(1, 400))),
        severity=draw(st.integers(1, 4)),
    )


@given(
    events=st.lists(concerns(), min_size=1, max_size=12, unique_by=lambda e: e.id),
    data=st.data(),
)
def test_any_clean_run_passes_and_any_dropped_or_repeated_delivery_is_found(
    events: list[ConcernRaised], data: st.DataObject
) -> None:
    expected = expect(events, RULES, TOPICS)
    ok = clean(expected, {str(uuid.uuid4()): key for key in sorted(expected.jtai)})
    shuffled = data.draw(st.permutations(ok.deliveries))
    assert judge(expected, dataclasses.replace(ok, deliveries=tuple(shuffled))).ok
    dropped = data.draw(st.sampled_from(ok.deliveries))
    counts = judge(expected, without(ok, dropped)).counts
    event_id, _ = dropped
    alone = len(expected.destinations[event_id]) == 1
    assert counts == dict.fromkeys(CATEGORIES, 0) | ({"lost": 1} if alone else {"torn": 1})
    repeated = dataclasses.replace(ok, deliveries=(*ok.deliveries, dropped))
    assert judge(expected, repeated).counts["duplicated"] == 1
