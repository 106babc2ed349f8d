from __future__ import annotations

import json

from consumers.router import HEADER_REASON, HEADER_RULES, plan
from schemas.records import InboundRecord, event_record, header_map
from schemas.topics import Topics
from tests.factories import concern, good_practice

TOPICS = Topics("t.")


def consumed(value: bytes, headers: tuple[tuple[str, bytes], ...]) -> InboundRecord:
    return InboundRecord(
        topic="t.liaison.events.ofsted",
        partition=1,
        offset=42,
        timestamp_ms=1_700_000_000_000,
        key=b"E08000025",
        value=value,
        headers=headers,
    )


def test_police_cause_of_concern_goes_to_ncpi_and_peel_once_each_plus_feed() -> None:
    event = concern(subject_agencies=["police"], finding="cause_of_concern")
    record = event_record(event, TOPICS)
    decision = plan(consumed(record.value, record.headers), TOPICS)
    topics = [out.topic for out in decision.outbound]
    assert sorted(topics) == sorted(
        ["t.liaison.feed.areas", "t.liaison.programme.ncpi", "t.liaison.programme.peel"]
    )
    for out in decision.outbound:
        assert out.value == record.value  # forwarded unchanged
        assert out.key == b"E08000025"
    peel = next(o for o in decision.outbound if o.topic.endswith("peel"))
    assert header_map(peel.headers)[HEADER_RULES] == b"police.peel"
    assert b"PEEL" in header_map(peel.headers)[HEADER_REASON]


def test_two_rules_to_one_programme_make_one_record_naming_both() -> None:
    event = concern(source="cqc", programme="clas", subject_agencies=["local_authority"],
                    theme="front_door")  # fmt: skip
    record = event_record(event, TOPICS)
    decision = plan(consumed(record.value, record.headers), TOPICS)
    ilacs = [o for o in decision.outbound if o.topic == "t.liaison.programme.ilacs"]
    assert len(ilacs) == 1
    assert header_map(ilacs[0].headers)[HEADER_RULES] == b"front_door.ilacs,social_care.ilacs"


def test_no_rule_goes_to_unrouted_and_the_feed() -> None:
    event = concern(subject_agencies=["education"])
    record = event_record(event, TOPICS)
    decision = plan(consumed(record.value, record.headers), TOPICS)
    assert sorted(o.topic for o in decision.outbound) == [
        "t.liaison.feed.areas",
        "t.liaison.unrouted",
    ]
    assert decision.refused is None


def test_undecodable_record_is_quarantined_with_its_origin() -> None:
    decision = plan(consumed(b"\xff not json", ()), TOPICS)
    assert decision.refused is not None
    assert decision.refused.startswith("schema_invalid")
    (out,) = decision.outbound
    assert out.topic == "t.liaison.quarantine"
    body = json.loads(out.value)
    assert body["source_topic"] == "t.liaison.events.ofsted"
    assert (body["partition"], body["offset"]) == (1, 42)
    assert bytes.fromhex(body["raw_value_hex"]) == b"\xff not json"


def test_header_that_disagrees_with_the_payload_is_quarantined() -> None:
    event = good_practice()
    record = event_record(event, TOPICS)
    forged = tuple((n, b"E09000001" if n == "area" else v) for n, v in record.headers)
    decision = plan(consumed(record.value, forged), TOPICS)
    assert decision.refused == "header_mismatch: area"
    assert [o.topic for o in decision.outbound] == ["t.liaison.quarantine"]


def test_missing_headers_are_quarantined() -> None:
    record = event_record(concern(), TOPICS)
    decision = plan(consumed(record.value, ()), TOPICS)
    assert decision.refused is not None
    assert decision.refused.startswith("header_mismatch")
