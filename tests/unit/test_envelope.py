"""Signed envelopes: known answers, every adversarial case, and tamper properties."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from schemas.envelope import (
    LOG_APPEND_TIME,
    MAX_ENVELOPE_BYTES,
    Reason,
    open,
    pae,
    seal,
    sign_envelope,
)
from schemas.errors import EnvelopeError, SignatureError
from schemas.events import ConcernRaised, encode_event
from schemas.keys import SigningKey, TrustStore
from schemas.records import event_headers
from tests.factories import NOW, concern, good_practice, inbound, key_for, sealed_inbound, trust_of

# RFC 8032 section 7.1, test 1: a published Ed25519 key pair.
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC_EMPTY_SIG = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
    "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
RFC_KEYID = "21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9"
KAT_EVENT = {
    "id": "00000000-0000-4000-8000-000000000001",
    "source": "ofsted",
    "occurred_at": "2026-11-20T10:30:00Z",
    "area": "E08000025",
    "programme": "ilacs",
    "subject_agencies": ["police"],
    "theme": "front_door",
    "summary": "Police referrals wait days for a strategy discussion.",
    "finding": "area_for_priority_action",
    "severity": 3,
    "immediate_risk": False,
}
KAT_SIG = "Wm2Nz++VsgTM3kW8mfE1eqY9aBF1BhB1S30MMlDYSnEoMH4O3wiW1ByT88bulUOcohIG73NURkjALXuyzWD4AA=="

OFSTED = key_for("ofsted")
CQC = key_for("cqc")
TRUST = trust_of(OFSTED, CQC)


def rfc_key(owner: str = "ofsted") -> SigningKey:
    return SigningKey(Ed25519PrivateKey.from_private_bytes(RFC_SECRET), owner)


def refused(record: Any, trust: TrustStore = TRUST, now: dt.datetime = NOW) -> Reason:
    with pytest.raises(EnvelopeError) as caught:
        open(record, trust, now)
    return Reason(caught.value.reason)


def envelope(record_value: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(record_value)
    return loaded


def rewrap(event: ConcernRaised, doc: dict[str, Any]) -> Any:
    return inbound(json.dumps(doc).encode(), event_headers(event))


# -- known answers ----------------------------------------------------------------------


def test_rfc8032_vector_and_keyid() -> None:
    key = rfc_key()
    assert key.public_raw.hex() == RFC_PUBLIC
    assert key.sign(b"").hex() == RFC_EMPTY_SIG
    assert key.keyid == RFC_KEYID


def test_pae_matches_the_dsse_specification() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("", b"") == b"DSSEv1 0  0 "


def test_sealed_envelope_known_answer() -> None:
    event = ConcernRaised.model_validate(KAT_EVENT)
    sealed = seal(event, rfc_key(), NOW)
    doc = envelope(sealed.envelope)
    assert doc["payloadType"] == "uk.inspectorate.concern.raised.v1"
    assert base64.b64decode(doc["payload"]) == encode_event(event) == sealed.payload
    assert doc["signatures"] == [{"keyid": RFC_KEYID, "sig": KAT_SIG}]


def test_open_returns_the_verified_event_and_key() -> None:
    event = concern()
    opened = open(sealed_inbound(event, OFSTED), TRUST, NOW)
    assert opened.event == event
    assert opened.key.keyid == OFSTED.keyid
    assert opened.judged_at == NOW


# -- refusals ---------------------------------------------------------------------------


def test_seal_refuses_another_inspectorates_event() -> None:
    with pytest.raises(SignatureError, match="wrong_inspectorate"):
        seal(good_practice(), OFSTED, NOW)  # a CQC event, an Ofsted key


def test_tampered_payload_is_a_bad_signature() -> None:
    event = concern()
    doc = envelope(sealed_inbound(event, OFSTED).value)
    payload = base64.b64decode(doc["payload"]).replace(b'"severity":2', b'"severity":1')
    doc["payload"] = base64.b64encode(payload).decode()
    assert refused(rewrap(event, doc)) is Reason.BAD_SIGNATURE


def test_signature_by_a_different_key_with_the_same_keyid_fails() -> None:
    event = concern()
    doc = envelope(sealed_inbound(event, OFSTED).value)
    impostor = key_for("ofsted")
    forged = impostor.sign(pae(event.type, base64.b64decode(doc["payload"])))
    doc["signatures"][0]["sig"] = base64.b64encode(forged).decode()
    assert refused(rewrap(event, doc)) is Reason.BAD_SIGNATURE


def test_truncated_signature_is_refused() -> None:
    event = concern()
    doc = envelope(sealed_inbound(event, OFSTED).value)
    doc["signatures"][0]["sig"] = base64.b64encode(
        base64.b64decode(doc["signatures"][0]["sig"])[:40]
    ).decode()
    assert refused(rewrap(event, doc)) is Reason.BAD_SIGNATURE


def test_unknown_key_id_is_refused() -> None:
    stranger = key_for("ofsted")
    assert refused(sealed_inbound(concern(), stranger)) is Reason.UNKNOWN_KEY


def test_key_of_another_inspectorate_is_refused() -> None:
    # A CQC key signs an Ofsted event by hand (seal would refuse to).
    event = concern()
    payload = encode_event(event)
    doc = json.loads(sign_envelope(event.type, payload, CQC))
    assert refused(rewrap(event, doc)) is Reason.WRONG_INSPECTORATE


def test_payload_type_must_match_the_event() -> None:
    event = concern()
    payload = encode_event(event)
    kind = "uk.inspectorate.exceptional_practice.identified.v1"
    doc = json.loads(sign_envelope(kind, payload, OFSTED))
    assert refused(rewrap(event, doc)) is Reason.TYPE_MISMATCH


def test_signed_but_schema_invalid_payload_is_refused() -> None:
    event = concern()
    data = json.loads(encode_event(event))
    data["severity"] = 9
    payload = json.dumps(data).encode()
    doc = json.loads(sign_envelope(event.type, payload, OFSTED))
    assert refused(rewrap(event, doc)) is Reason.SCHEMA_INVALID


def test_header_disagreeing_with_the_payload_is_refused() -> None:
    record = sealed_inbound(concern(), OFSTED)
    forged = tuple((n, b"ofsted-not" if n == "source" else v) for n, v in record.headers)
    assert refused(inbound(record.value, forged)) is Reason.HEADER_MISMATCH
    assert refused(inbound(record.value, ())) is Reason.HEADER_MISMATCH


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", Reason.MALFORMED_JSON),
        (b"\xff\xfe", Reason.MALFORMED_JSON),
        (b"[]", Reason.NOT_DSSE),
        (b'{"payload": "", "payloadType": "x"}', Reason.NOT_DSSE),
        (b'{"payload": "", "payloadType": "x", "signatures": []}', Reason.NOT_DSSE),
        (
            b'{"payload": "!!", "payloadType": "x", "signatures": [{"keyid": "a", "sig": ""}]}',
            Reason.NOT_DSSE,
        ),
        (
            b'{"payload": "", "payloadType": 7, "signatures": [{"keyid": "a", "sig": ""}]}',
            Reason.NOT_DSSE,
        ),
        (b" " * (MAX_ENVELOPE_BYTES + 1), Reason.OVERSIZED),
    ],
)
def test_malformed_records_are_refused(value: bytes, reason: Reason) -> None:
    assert refused(inbound(value)) is reason


def test_two_signatures_are_refused() -> None:
    event = concern()
    doc = envelope(sealed_inbound(event, OFSTED).value)
    doc["signatures"] = doc["signatures"] * 2
    assert refused(rewrap(event, doc)) is Reason.NOT_DSSE


def test_non_canonical_base64_is_refused() -> None:
    event = concern()
    doc = envelope(sealed_inbound(event, OFSTED).value)
    assert base64.b64decode("QR==") == base64.b64decode("QQ==") == b"A"
    doc["payload"] = "QR=="  # decodes, but is not how "A" is written: refused, not guessed
    assert refused(rewrap(event, doc)) is Reason.NOT_DSSE
    doc["payload"] = "QQ"  # unpadded
    assert refused(rewrap(event, doc)) is Reason.NOT_DSSE


def test_url_safe_base64_is_accepted() -> None:
    event = concern()
    record = sealed_inbound(event, OFSTED)
    doc = envelope(record.value)
    sig = base64.b64decode(doc["signatures"][0]["sig"])
    doc["signatures"][0]["sig"] = base64.urlsafe_b64encode(sig).decode()
    doc["payload"] = base64.urlsafe_b64encode(base64.b64decode(doc["payload"])).decode()
    assert open(rewrap(event, doc), TRUST, NOW).event == event


# -- key life cycle, judged by the broker's append time ---------------------------------


def test_revoked_key_refuses_what_was_appended_after_revocation() -> None:
    revoked_at = NOW - dt.timedelta(hours=1)
    entry = OFSTED.trusted(valid_from=NOW - dt.timedelta(days=30)).revoked(revoked_at, "stolen")
    trust = TrustStore(keys=(entry,))
    before = sealed_inbound(concern(), OFSTED, appended_at=revoked_at - dt.timedelta(seconds=1))
    after = sealed_inbound(concern(), OFSTED, appended_at=revoked_at)
    assert open(before, trust, NOW).key.keyid == OFSTED.keyid
    assert refused(after, trust) is Reason.KEY_REVOKED


def test_revocation_cannot_be_dodged_by_a_claimed_time() -> None:
    # An event that claims to have occurred long ago is still judged by its append time.
    revoked_at = NOW - dt.timedelta(hours=1)
    entry = OFSTED.trusted(valid_from=NOW - dt.timedelta(days=3000)).revoked(revoked_at, "stolen")
    backdated = concern(occurred_at=NOW - dt.timedelta(days=400))
    record = sealed_inbound(backdated, OFSTED, appended_at=NOW)
    assert refused(record, TrustStore(keys=(entry,))) is Reason.KEY_REVOKED


def test_retired_key_verifies_the_past_only() -> None:
    retired_at = NOW - dt.timedelta(days=1)
    entry = OFSTED.trusted(valid_from=NOW - dt.timedelta(days=30)).retired(retired_at)
    trust = TrustStore(keys=(entry,))
    old = sealed_inbound(concern(), OFSTED, appended_at=retired_at - dt.timedelta(days=2))
    new = sealed_inbound(concern(), OFSTED, appended_at=retired_at + dt.timedelta(seconds=1))
    assert open(old, trust, NOW).event is not None
    assert refused(new, trust) is Reason.KEY_NOT_VALID


def test_key_not_yet_valid_is_refused() -> None:
    trust = trust_of(OFSTED, valid_from=NOW + dt.timedelta(days=1))
    assert refused(sealed_inbound(concern(), OFSTED), trust) is Reason.KEY_NOT_VALID


def test_without_an_append_time_the_readers_clock_is_used() -> None:
    revoked_at = NOW - dt.timedelta(hours=1)
    entry = OFSTED.trusted(valid_from=NOW - dt.timedelta(days=30)).revoked(revoked_at, "stolen")
    record = sealed_inbound(concern(), OFSTED, appended_at=revoked_at - dt.timedelta(days=1))
    create_time = inbound(
        record.value,
        record.headers,
        appended_at=revoked_at - dt.timedelta(days=1),
        timestamp_type=0,
    )
    assert create_time.timestamp_type != LOG_APPEND_TIME
    # The producer's own timestamp says "before revocation"; it is not believed.
    assert refused(create_time, TrustStore(keys=(entry,)), NOW) is Reason.KEY_REVOKED


# -- properties -------------------------------------------------------------------------

SEALED = seal(concern(), OFSTED, NOW)
SEALED_DOC = envelope(SEALED.envelope)
SIGNATURE = base64.b64decode(SEALED_DOC["signatures"][0]["sig"])


def flip(data: bytes, index: int, delta: int) -> bytes:
    changed = bytearray(data)
    changed[index % len(data)] = (changed[index % len(data)] + delta) % 256
    return bytes(changed)


@given(index=st.integers(min_value=0), delta=st.integers(min_value=1, max_value=255))
def test_any_single_byte_change_to_the_payload_is_refused(index: int, delta: int) -> None:
    doc = dict(SEALED_DOC)
    doc["payload"] = base64.b64encode(flip(SEALED.payload, index, delta)).decode()
    record = inbound(json.dumps(doc).encode(), event_headers(SEALED.event))
    with pytest.raises(SignatureError):
        open(record, TRUST, NOW)


@given(index=st.integers(min_value=0), delta=st.integers(min_value=1, max_value=255))
def test_any_single_byte_change_to_the_signature_is_refused(index: int, delta: int) -> None:
    doc = dict(SEALED_DOC)
    doc["signatures"] = [
        {"keyid": OFSTED.keyid, "sig": base64.b64encode(flip(SIGNATURE, index, delta)).decode()}
    ]
    record = inbound(json.dumps(doc).encode(), event_headers(SEALED.event))
    with pytest.raises(SignatureError):
        open(record, TRUST, NOW)


@given(payload_type=st.text(max_size=40), payload=st.binary(max_size=300))
def test_sign_envelope_writes_what_json_dumps_would(payload_type: str, payload: bytes) -> None:
    # sign_envelope writes the envelope's bytes directly; they must be json.dumps's, for
    # any type text (escaped) and any payload, or old and new envelopes would differ.
    key = rfc_key()
    written = sign_envelope(payload_type, payload, key)
    signature = key.sign(pae(payload_type, payload))
    expected = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"keyid": key.keyid, "sig": base64.b64encode(signature).decode()}],
    }
    assert written == json.dumps(expected, separators=(",", ":")).encode()
