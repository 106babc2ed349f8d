"""The router's whole decision for a batch (``Router.step``): hostile input, one verdict
per record, duplicates and id conflicts judged on verified data, nothing personal kept."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.router import BatchOutcome, Router
from schemas.audit import (
    DuplicateIgnored,
    EventQuarantined,
    EventRouted,
    EventUnrouted,
    decode_record,
    encode_record,
)
from schemas.envelope import open_envelope, pae, sign_envelope
from schemas.events import CONCERN_RAISED, encode_event
from schemas.records import InboundRecord, event_headers
from schemas.topics import Topics
from services.rules_file import load_rules
from tests.factories import NOW, concern, good_practice, inbound, key_for, sealed_inbound, trust_of

TOPICS = Topics("t.")
OFSTED = key_for("ofsted")
CQC = key_for("cqc")
BUS = key_for("liaison")
TRUST = trust_of(OFSTED, CQC, BUS)
RULES = load_rules(Path(__file__).resolve().parents[2] / "deploy" / "rules.toml")
CHILD = "Amelia Jones 943 476 5919"
"""Text standing for a child's details: it must never reach an audit record or log."""


def router() -> Router:
    return Router(TOPICS, RULES, BUS, "router:0")


def verdicts(outcome: BatchOutcome) -> list[Any]:
    """The one audit record per input record (considerations are extra)."""
    kinds = (EventQuarantined, DuplicateIgnored, EventRouted, EventUnrouted)
    return [a for a in outcome.audit if isinstance(a, kinds)]


def signed_payload(payload: bytes, *, key: Any = OFSTED, kind: str = CONCERN_RAISED) -> bytes:
    """An envelope whose signature verifies over ``payload``, whatever the payload holds."""
    return sign_envelope(kind, payload, key)


def payload_of(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(encode_event(concern()))
    document.update(overrides)
    return document


def raw_envelope(keyid: str = "0" * 64, payload_type: str = CONCERN_RAISED) -> bytes:
    sig = base64.b64encode(b"\x00" * 64).decode()
    payload = base64.b64encode(b"{}").decode()
    # Written by hand: the keyid and type may hold JSON escapes such as a lone surrogate.
    signature = '[{"keyid":"' + keyid + '","sig":"' + sig + '"}]'
    return (
        ('{"payload":"' + payload + '","payloadType":"' + payload_type + '","signatures":').encode()
        + signature.encode()
        + b"}"
    )


def audit_text(outcome: BatchOutcome) -> str:
    return "\n".join(encode_record(a).decode() for a in outcome.audit) + "\n".join(
        repr(line) for line in outcome.logs
    )


# -- the reproductions of issue 9 ---------------------------------------------------------------


HOSTILE = {
    "lone surrogate keyid": raw_envelope(keyid="\\ud800"),
    "lone surrogate payloadType": raw_envelope(payload_type="\\ud800"),
    "deep nesting": b"[" * 80000,
    "deep nesting of objects": b'{"a":' * 15000,
    "not utf-8": b"\xff\xfe{}",
    "NaN": b'{"payload": NaN}',
    "huge integer": b'{"payload": ' + b"9" * 5000 + b"}",
    "keyid holding text": raw_envelope(keyid=CHILD),
    "payloadType holding text": raw_envelope(payload_type=CHILD),
    "duplicate envelope key": raw_envelope()[:-1] + b',"payload":"e30="}',
    "empty": b"",
}


def test_one_malformed_record_never_loses_the_good_ones_around_it() -> None:
    good = [sealed_inbound(concern(), OFSTED), sealed_inbound(good_practice(), CQC)]
    bad = [inbound(value) for value in HOSTILE.values()]
    outcome = router().step([good[0], *bad, good[1]], TRUST, NOW)
    judged = verdicts(outcome)
    assert len(judged) == len(bad) + 2
    quarantined = [a for a in judged if isinstance(a, EventQuarantined)]
    assert len(quarantined) == len(bad)
    assert {a.reason for a in quarantined} <= {"malformed_json", "not_dsse", "duplicate_key"}
    routed = [a for a in judged if isinstance(a, EventRouted | EventUnrouted)]
    assert [a.event_ids for a in routed] == [(concern_id(good[0]),), (concern_id(good[1]),)]
    assert CHILD not in audit_text(outcome)
    for record in outcome.audit:  # every audit record is valid and round-trips
        assert decode_record(encode_record(record)) == record


def concern_id(record: InboundRecord) -> uuid.UUID:
    payload = json.loads(base64.b64decode(json.loads(record.value)["payload"]))
    return uuid.UUID(payload["id"])


def test_duplicate_keys_in_a_signed_payload_are_refused_not_smuggled() -> None:
    body = encode_event(concern(summary="clean"))
    smuggled = body.replace(
        b'"summary":"clean"', b'"summary":"NHS 943 476 5919, born 1/2/2019","summary":"clean"'
    ).replace(b'"source":"ofsted"', b'"source":"cqc","source":"ofsted"')
    assert smuggled != body
    outcome = router().step([inbound(signed_payload(smuggled))], TRUST, NOW)
    (verdict,) = verdicts(outcome)
    assert isinstance(verdict, EventQuarantined)
    assert verdict.reason == "duplicate_key"
    assert [o.topic for o in outcome.outbound] == ["t.liaison.quarantine"]
    assert "943 476 5919" not in audit_text(outcome)
    assert "1/2/2019" not in audit_text(outcome)


def test_lax_types_in_a_signed_payload_are_refused() -> None:
    lax = [
        payload_of(immediate_risk="false"),
        payload_of(severity=2.0),
        payload_of(severity="2"),
        payload_of(id=uuid.uuid4().hex),
        payload_of(id=str(uuid.uuid4()).upper()),
        payload_of(occurred_at="2026-10-14 09:30:00+01:00"),
        payload_of(occurred_at="2026-10-14T09:30:00"),
        payload_of(occurred_at="0001-01-01T00:00:00+23:59"),
        payload_of(occurred_at="9999-12-31T23:59:59-23:59"),
        payload_of(area="E08000\uff10\uff12\uff15"),
    ]
    records = [inbound(signed_payload(json.dumps(p).encode())) for p in lax]
    outcome = router().step(records, TRUST, NOW)
    assert [getattr(v, "reason", None) for v in verdicts(outcome)] == ["schema_invalid"] * len(lax)


def test_an_unknown_field_named_like_a_child_is_never_named_in_the_audit_log() -> None:
    payload = payload_of(**{CHILD: "x"})
    outcome = router().step([inbound(signed_payload(json.dumps(payload).encode()))], TRUST, NOW)
    (verdict,) = verdicts(outcome)
    assert isinstance(verdict, EventQuarantined)
    assert verdict.reason == "schema_invalid"
    assert "<unknown field>" in verdict.detail
    assert CHILD not in audit_text(outcome)
    (quarantined,) = outcome.outbound
    assert CHILD not in json.loads(quarantined.value)["detail"]


def test_quarantine_keeps_the_sha256_of_the_raw_bytes() -> None:
    record = inbound(b"not json at all")
    outcome = router().step([record], TRUST, NOW)
    (verdict,) = verdicts(outcome)
    assert isinstance(verdict, EventQuarantined)
    digest = hashlib.sha256(b"not json at all").hexdigest()
    assert verdict.raw_sha256 == digest
    assert json.loads(outcome.outbound[0].value)["raw_sha256"] == digest


def test_a_reused_id_from_another_inspectorate_is_an_id_conflict_not_a_duplicate() -> None:
    first = concern(subject_agencies=["police"])
    theirs = concern(id=first.id, source="cqc", programme="clas")
    outcome = router().step(
        [sealed_inbound(first, OFSTED), sealed_inbound(theirs, CQC), sealed_inbound(first, OFSTED)],
        TRUST,
        NOW,
    )
    kinds = [(type(v).__name__, getattr(v, "reason", None)) for v in verdicts(outcome)]
    assert kinds == [
        ("EventRouted", None),
        ("EventQuarantined", "id_conflict"),
        ("DuplicateIgnored", None),
    ]


def test_only_verified_events_are_remembered_across_a_rebuild() -> None:
    first = concern()
    before = router()
    before.step([sealed_inbound(first, OFSTED)], TRUST, NOW)
    assert before.routed == 1
    rebuilt = router()
    # What the service does with each record of the feed that verifies.
    opened = open_envelope(sealed_inbound(first, OFSTED), TRUST, NOW)
    rebuilt.remember(opened)
    outcome = rebuilt.step([sealed_inbound(first, OFSTED)], TRUST, NOW)
    assert [type(v) for v in verdicts(outcome)] == [DuplicateIgnored]


def test_an_unforeseen_failure_quarantines_the_record_and_the_batch_goes_on() -> None:
    class Exploding(Router):
        def _judge(self, record: InboundRecord, *args: Any) -> None:
            if record.value == b"boom":
                raise KeyError(CHILD)
            super()._judge(record, *args)

    good = sealed_inbound(concern(), OFSTED)
    outcome = Exploding(TOPICS, RULES, BUS, "router:0").step([inbound(b"boom"), good], TRUST, NOW)
    judged = verdicts(outcome)
    assert [getattr(v, "reason", None) for v in judged] == ["internal_error", None]
    assert CHILD not in audit_text(outcome)


# -- properties -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
headers = st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=40)), max_size=4)


@st.composite
def hostile_records(draw: st.DrawFn) -> InboundRecord:
    """Arbitrary bytes, mutated valid envelopes, and signed payloads of any JSON."""
    kind = draw(st.sampled_from(["bytes", "mutated", "signed", "signed_field"]))
    event = concern(area="E08000025")
    if kind == "bytes":
        value = draw(st.binary(max_size=300))
    elif kind == "mutated":
        mutated = bytearray(sealed_inbound(event, OFSTED).value)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(mutated) - 1))
            mutated[at] = draw(st.integers(0, 255))
        value = bytes(mutated)
    elif kind == "signed":
        value = signed_payload(json.dumps(draw(json_values)).encode())
    else:
        document: dict[str, Any] = json.loads(encode_event(event))
        name = draw(st.sampled_from([*document, "extra", CHILD]))
        document[name] = draw(json_values)
        value = signed_payload(json.dumps(document).encode())
    header_list = (
        draw(headers) if draw(st.booleans()) else [(n, v) for n, v in event_headers(event)]
    )
    return InboundRecord(
        topic="t.liaison.events.ofsted",
        partition=draw(st.integers(0, 2**31 - 1)),
        offset=draw(st.integers(0, 2**63 - 1)),
        # Whatever Kafka can deliver: -1 (no time) or any int64 from 0.
        timestamp_ms=draw(st.integers(0, 2**45) | st.integers(-1, 2**63 - 1)),
        key=draw(st.none() | st.binary(max_size=20)),
        value=value,
        headers=tuple(header_list),
        timestamp_type=draw(st.sampled_from([0, 1])),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_records(), min_size=1, max_size=6))
def test_step_never_raises_and_judges_every_record_once(records: list[InboundRecord]) -> None:
    good = sealed_inbound(good_practice(), CQC)
    outcome = router().step([*records, good], TRUST, NOW)
    judged = verdicts(outcome)
    assert len(judged) == len(records) + 1
    assert isinstance(judged[-1], EventRouted | EventUnrouted)
    for record in outcome.audit:
        assert decode_record(encode_record(record)) == record
    quarantined = [a for a in judged if isinstance(a, EventQuarantined)]
    assert all(a.reason != "internal_error" for a in quarantined)
    assert CHILD not in audit_text(outcome)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_a_signed_payload_of_any_bytes_is_judged(payload: bytes) -> None:
    record = inbound(signed_payload(payload))
    outcome = router().step([record], TRUST, NOW)
    (verdict,) = verdicts(outcome)
    assert isinstance(verdict, EventQuarantined)
    assert verdict.reason in {"malformed_json", "schema_invalid", "duplicate_key"}
    assert pae(CONCERN_RAISED, payload)  # the signature covered exactly these bytes


def test_a_record_the_kafka_client_could_not_parse_is_quarantined_as_unparseable() -> None:
    unparsed = InboundRecord(
        topic="t.liaison.events.ofsted", partition=0, offset=7, timestamp_ms=-1,
        key=None, value=b"", parsed=False,
    )  # fmt: skip
    outcome = router().step([unparsed, sealed_inbound(good_practice(), CQC)], TRUST, NOW)
    judged = verdicts(outcome)
    assert [getattr(v, "reason", None) for v in judged] == ["unparseable", None]
    assert isinstance(judged[0], EventQuarantined)
    assert judged[0].offset == 7
