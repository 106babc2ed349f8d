from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from consumers.router import HEADER_REASON, HEADER_RULES, plan
from schemas.envelope import Reason
from schemas.records import header_map
from schemas.topics import Topics
from services.rules_file import load_rules
from tests.factories import NOW, concern, good_practice, inbound, key_for, sealed_inbound, trust_of

TOPICS = Topics("t.")
OFSTED = key_for("ofsted")
CQC = key_for("cqc")
BUS = key_for("liaison")
TRUST = trust_of(OFSTED, CQC)
# plan() has no built-in rules: the tests route by the shipped file, as the router does.
RULES = load_rules(Path(__file__).resolve().parents[2] / "deploy" / "rules.toml").rules


def test_police_cause_of_concern_goes_to_ncpi_and_peel_once_each_plus_feed() -> None:
    event = concern(subject_agencies=["police"], finding="cause_of_concern")
    record = sealed_inbound(event, OFSTED)
    decision = plan(record, TOPICS, TRUST, NOW, rules=RULES, bus_key=BUS)
    topics = [out.topic for out in decision.outbound]
    assert sorted(topics) == sorted(
        ["t.liaison.feed.areas", "t.liaison.programme.ncpi", "t.liaison.programme.peel"]
    )
    for out in decision.outbound:
        assert out.value == record.value  # the signed envelope, unchanged
        assert out.key == b"E08000025"
    peel = next(o for o in decision.outbound if o.topic.endswith("peel"))
    assert header_map(peel.headers)[HEADER_RULES] == b"police.peel"
    assert b"PEEL" in header_map(peel.headers)[HEADER_REASON]
    assert decision.opened is not None
    assert decision.opened.key.keyid == OFSTED.keyid


def test_two_rules_to_one_programme_make_one_record_naming_both() -> None:
    event = concern(source="cqc", programme="clas", subject_agencies=["local_authority"],
                    theme="front_door")  # fmt: skip
    decision = plan(sealed_inbound(event, CQC), TOPICS, TRUST, NOW, rules=RULES, bus_key=BUS)
    ilacs = [o for o in decision.outbound if o.topic == "t.liaison.programme.ilacs"]
    assert len(ilacs) == 1
    assert header_map(ilacs[0].headers)[HEADER_RULES] == b"front_door.ilacs,social_care.ilacs"


def test_no_rule_goes_to_unrouted_and_the_feed() -> None:
    event = concern(subject_agencies=["education"])
    decision = plan(sealed_inbound(event, OFSTED), TOPICS, TRUST, NOW, rules=RULES, bus_key=BUS)
    assert sorted(o.topic for o in decision.outbound) == [
        "t.liaison.feed.areas",
        "t.liaison.unrouted",
    ]
    assert decision.refused is None


def test_refused_record_is_quarantined_with_origin_reason_and_time() -> None:
    decision = plan(inbound(b"\xff not json"), TOPICS, TRUST, NOW, rules=RULES, bus_key=BUS)
    assert decision.refused is not None
    assert decision.refused.reason == Reason.MALFORMED_JSON
    (out,) = decision.outbound
    assert out.topic == "t.liaison.quarantine"
    body = json.loads(out.value)
    assert body["reason"] == "malformed_json"
    assert body["source_topic"] == "t.liaison.events.ofsted"
    assert (body["partition"], body["offset"]) == (1, 42)
    assert bytes.fromhex(body["raw_value_hex"]) == b"\xff not json"
    assert dt.datetime.fromisoformat(body["quarantined_at"]) == NOW


def test_quarantine_keeps_headers_byte_for_byte() -> None:
    event = good_practice()
    record = sealed_inbound(event, CQC)
    forged = tuple((n, b"E09000001" if n == "area" else v) for n, v in record.headers)
    decision = plan(inbound(record.value, forged), TOPICS, TRUST, NOW, rules=RULES, bus_key=BUS)
    assert decision.refused is not None
    assert decision.refused.reason == Reason.HEADER_MISMATCH
    body = json.loads(decision.outbound[0].value)
    assert [name for name, _ in body["raw_headers_hex"]] == [n for n, _ in forged]
    assert bytes.fromhex(dict(body["raw_headers_hex"])["area"]) == b"E09000001"
