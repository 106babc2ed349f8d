"""Signed audit records: how the audit service judges each value, and what it derives.

``judge_sealed`` is the whole decision for one value on ``liaison.audit``; ``leaf_row``
turns it into the store's index, and ``index_difference`` is how ``audit verify`` compares
that index with the one it derives again from the log. All pure: no broker, no store.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from schemas.audit import (
    AT_TOLERANCE,
    AUDIT_RECORD_TYPE,
    AuditRecord,
    EventRouted,
    InvalidReason,
    InvalidRecord,
    SealedRecord,
    encode_record,
    judge_sealed,
    seal_record,
    unsealed,
)
from schemas.envelope import pae, sign_envelope
from schemas.errors import SchemaError
from schemas.inspectorates import Inspectorate
from schemas.keys import AUDIT, AUDITOR, BUS, OPERATOR, OWNERS, READER, SigningKey, TrustStore
from schemas.records import InboundRecord
from services.audit_service import RECONSIDERED, appended_at, judge_value, leaf_row
from services.audit_store import StoredLeaf
from services.auditor import index_difference
from tests.unit.test_audit_records import SAMPLES

AT = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
AT_MS = int(AT.timestamp() * 1000)
_OWNER_OF_KIND = {"router": BUS, "audit": AUDIT, "analyst": READER, "auditor": AUDITOR,
                  "operator": OPERATOR}  # fmt: skip


def signing_keys() -> dict[str, SigningKey]:
    """A fixed key for every owner (seeded, so signatures are known answers)."""
    return {
        owner: SigningKey(Ed25519PrivateKey.from_private_bytes(bytes([n + 1]) * 32), owner)
        for n, owner in enumerate(sorted(OWNERS))
    }


def trust_of(keys: Mapping[str, SigningKey], valid_from: dt.datetime) -> TrustStore:
    """A trust store of ``keys``, each valid from ``valid_from``."""
    return TrustStore(keys=tuple(key.trusted(valid_from) for key in keys.values()))


def owner_of(actor: str) -> str:
    """The owner whose key may sign for ``actor`` (an inspectorate signs for itself)."""
    kind, _, name = actor.partition(":")
    return _OWNER_OF_KIND.get(kind, name)


def sealed(record: AuditRecord, keys: Mapping[str, SigningKey]) -> bytes:
    """``record`` sealed by the key entitled to its actor."""
    return seal_record(record, keys[owner_of(record.actor)])


KEYS = signing_keys()
TRUST = trust_of(KEYS, AT - dt.timedelta(days=1))
READ = SAMPLES["feed.read"]
GOOD = sealed(READ, KEYS)


def judged(data: bytes, when: dt.datetime = AT, trust: TrustStore = TRUST) -> InvalidRecord:
    result = judge_sealed(data, when, trust)
    assert isinstance(result, InvalidRecord), result
    return result


def signed_raw(payload: bytes, key: SigningKey, payload_type: str = AUDIT_RECORD_TYPE) -> bytes:
    """A DSSE envelope of ``payload`` signed by ``key``, skipping seal_record's checks."""
    return sign_envelope(payload_type, payload, key)


# ---- known answers ---------------------------------------------------------------------


def test_a_sealed_record_is_a_dsse_envelope_of_its_canonical_bytes() -> None:
    envelope = json.loads(GOOD)
    assert envelope["payloadType"] == AUDIT_RECORD_TYPE == "uk.liaison.audit.record.v1"
    payload = base64.b64decode(envelope["payload"])
    assert payload == encode_record(READ) == unsealed(GOOD)
    (signature,) = envelope["signatures"]
    assert signature["keyid"] == KEYS[READER].keyid
    KEYS[READER].private.public_key().verify(
        base64.b64decode(signature["sig"]), pae(AUDIT_RECORD_TYPE, payload)
    )


# Ed25519 is deterministic: this record and this key give these very bytes, today and in
# any later version (a change here breaks every stored leaf's meaning).
KAT_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))), READER)
KAT_SHA256 = "1db559917c4e602539c6f79a183ced453a78b8bde32b8dab316020c2c5d5e2da"


def test_sealing_is_a_known_answer() -> None:
    value = seal_record(READ, KAT_KEY)
    assert hashlib.sha256(value).hexdigest() == KAT_SHA256
    assert value.startswith(b'{"payload":"')


def test_a_valid_record_is_accepted_with_its_signer() -> None:
    result = judge_sealed(GOOD, AT, TRUST)
    assert isinstance(result, SealedRecord)
    assert (result.record, result.payload, result.key.keyid) == (
        READ, encode_record(READ), KEYS[READER].keyid,
    )  # fmt: skip


def test_seal_record_refuses_a_key_not_entitled_to_the_actor() -> None:
    with pytest.raises(SchemaError, match="cannot sign"):
        seal_record(READ, KEYS[Inspectorate.OFSTED.value])


ROUTED = EventRouted.model_validate(SAMPLES["event.routed"].model_dump() | {"actor": "router:0"})


@pytest.mark.parametrize(
    ("name", "value", "reason", "signer"),
    [
        ("a bare record", encode_record(READ), InvalidReason.UNSIGNED, None),
        ("a bare router record", encode_record(ROUTED), InvalidReason.UNSIGNED, None),
        (
            "another payload type",
            signed_raw(encode_record(READ), KEYS[READER], "uk.inspectorate.concern.raised.v1"),
            InvalidReason.UNSIGNED,
            None,
        ),
        (
            "an unknown key",
            signed_raw(encode_record(READ), SigningKey.generate(READER)),
            InvalidReason.UNKNOWN_KEY,
            None,
        ),
        (
            "an inspectorate's key for an analyst",
            signed_raw(encode_record(READ), KEYS[Inspectorate.OFSTED.value]),
            InvalidReason.NOT_ENTITLED,
            KEYS[Inspectorate.OFSTED.value].keyid,
        ),
        (
            "the reader's key for the router",
            signed_raw(encode_record(ROUTED), KEYS[READER]),
            InvalidReason.NOT_ENTITLED,
            KEYS[READER].keyid,
        ),
        (
            "an inspectorate's key for another inspectorate",
            signed_raw(encode_record(SAMPLES["event.published"]), KEYS[Inspectorate.CQC.value]),
            InvalidReason.NOT_ENTITLED,
            KEYS[Inspectorate.CQC.value].keyid,
        ),
        (
            "30 days back-dated",
            sealed(READ.model_copy(update={"at": AT - dt.timedelta(days=30)}), KEYS),
            InvalidReason.BACKDATED,
            KEYS[READER].keyid,
        ),
        (
            "just over the tolerance ahead",
            sealed(
                READ.model_copy(update={"at": AT + AT_TOLERANCE + dt.timedelta(seconds=1)}), KEYS
            ),
            InvalidReason.BACKDATED,
            KEYS[READER].keyid,
        ),
        (
            "a signed value that is no record",
            signed_raw(b'{"action":"feed.deleted"}', KEYS[READER]),
            InvalidReason.UNKNOWN_ACTION,
            KEYS[READER].keyid,
        ),
    ],
)
def test_each_forgery_is_invalid_with_its_reason_and_verified_signer(
    name: str, value: bytes, reason: InvalidReason, signer: str | None
) -> None:
    result = judged(value)
    assert (result.reason, result.signer) == (reason, signer), name
    assert str(result.error).startswith("invalid audit record")


def test_a_bad_signature_names_no_signer() -> None:
    envelope = json.loads(GOOD)
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    result = judged(json.dumps(envelope, separators=(",", ":")).encode())
    assert (result.reason, result.signer) == (InvalidReason.BAD_SIGNATURE, None)


def test_a_key_revoked_or_not_yet_valid_when_appended_is_not_valid() -> None:
    reader = KEYS[READER]
    revoked = TRUST.with_key(TRUST.get(reader.keyid).revoked(AT - dt.timedelta(hours=1), "lost"))  # type: ignore[union-attr]
    assert judged(GOOD, trust=revoked).reason is InvalidReason.KEY_NOT_VALID
    later = TRUST.with_key(reader.trusted(AT + dt.timedelta(hours=1)))
    result = judged(GOOD, trust=later)
    assert (result.reason, result.signer) == (InvalidReason.KEY_NOT_VALID, reader.keyid)
    # Revoked after the append: the record stands (times are append times).
    after = TRUST.with_key(TRUST.get(reader.keyid).revoked(AT + dt.timedelta(hours=1), "lost"))  # type: ignore[union-attr]
    assert isinstance(judge_sealed(GOOD, AT, after), SealedRecord)


def test_the_tolerance_edge_is_accepted() -> None:
    edge = sealed(READ.model_copy(update={"at": AT - AT_TOLERANCE}), KEYS)
    assert isinstance(judge_sealed(edge, AT, TRUST), SealedRecord)


def test_refusals_never_repeat_the_actor_name() -> None:
    personal = READ.model_copy(update={"actor": "analyst:Amelia.Jones.2017"})
    result = judged(signed_raw(encode_record(personal), KEYS[Inspectorate.OFSTED.value]))
    assert result.reason is InvalidReason.NOT_ENTITLED
    assert "Amelia" not in str(result.error)


# ---- properties ------------------------------------------------------------------------


@given(st.binary(max_size=3000), st.integers(-(2**63), 2**63 - 1))
def test_any_bytes_at_any_time_are_judged_and_never_raise(data: bytes, ms: int) -> None:
    result = judge_sealed(data, appended_at(ms), TRUST)
    assert isinstance(result, InvalidRecord)
    assert result.reason in InvalidReason


SEALED_SAMPLES = [(record, sealed(record, KEYS)) for record in SAMPLES.values()]


@given(
    st.sampled_from(SEALED_SAMPLES),
    st.integers(min_value=0),
    st.integers(min_value=1, max_value=255),
)
def test_a_flipped_byte_is_never_accepted_as_a_different_record(
    sample: tuple[AuditRecord, bytes], where: int, mask: int
) -> None:
    record, value = sample
    at = where % len(value)
    flipped = value[:at] + bytes([value[at] ^ mask]) + value[at + 1 :]
    result = judge_sealed(flipped, AT, TRUST)
    if isinstance(result, SealedRecord):
        # Only a change the signature does not cover (none is known) could pass: it must
        # then be the very same record, signed by the same key.
        assert (result.record, result.payload) == (record, encode_record(record))
        assert result.key.keyid == KEYS[owner_of(record.actor)].keyid


@given(st.sampled_from(SEALED_SAMPLES))
def test_every_sample_is_accepted_when_sealed_by_its_entitled_key(
    sample: tuple[AuditRecord, bytes],
) -> None:
    record, value = sample
    result = judge_sealed(value, AT, TRUST)
    assert isinstance(result, SealedRecord)
    assert result.record == record


# ---- what the audit service derives, and how verify compares ----------------------------


def inbound(value: bytes, ms: int = AT_MS, offset: int = 7, kind: int = 1) -> InboundRecord:
    """A value read from liaison.audit, stamped (``kind`` 1) with the broker's append time."""
    return InboundRecord("liaison.audit", 0, offset, ms, None, value, timestamp_type=kind)


def test_a_value_stamped_with_the_producers_time_is_never_valid() -> None:
    # On a CreateTime topic the holder of a revoked key could claim any time.
    assert isinstance(judge_value(inbound(GOOD), TRUST), SealedRecord)
    judged = judge_value(inbound(GOOD, kind=0), TRUST)
    assert isinstance(judged, InvalidRecord)
    assert judged.reason is InvalidReason.NOT_APPEND_TIME
    assert judged.signer == KEYS[READER].keyid


def derived(value: bytes, seq: int = 3, trust: TrustStore = TRUST) -> StoredLeaf:
    record = inbound(value)
    return leaf_row(seq, record, judge_value(record, trust))


def test_a_valid_leaf_is_indexed_by_its_record_and_signer() -> None:
    row = derived(GOOD)
    assert (row.seq, row.kafka_offset, row.record) == (3, 7, GOOD)
    assert (row.actor, row.invalid, row.signer) == ("analyst:a.khan", None, KEYS[READER].keyid)
    assert row.event_ids == tuple(str(e) for e in READ.event_ids)
    assert row.at == "2026-11-22T12:00:00.000000Z"


def test_an_invalid_leaf_names_no_actor_and_no_event_whatever_it_claims() -> None:
    forged = derived(encode_record(READ))
    assert (forged.actor, forged.event_ids, forged.invalid) == ("", (), "unsigned")
    assert forged.at == "2026-11-22T12:00:00.000000Z"  # the append time, not its claim
    wrong = derived(signed_raw(encode_record(ROUTED), KEYS[READER]))
    assert (wrong.actor, wrong.event_ids) == ("", ())
    assert (wrong.invalid, wrong.signer) == ("not_entitled", KEYS[READER].keyid)


def test_appended_at_is_the_kafka_time_held_to_the_record_years() -> None:
    assert appended_at(AT_MS) == AT
    assert appended_at(-5).year == 2000
    assert appended_at(2**63 - 1).year == 8999


def test_only_a_newer_trust_store_could_change_unknown_key_or_key_not_valid() -> None:
    assert {r.value for r in RECONSIDERED} == {"unknown_key", "key_not_valid"}


def test_the_index_agrees_with_itself() -> None:
    for value in (GOOD, encode_record(READ), b"not json"):
        assert index_difference(derived(value), derived(value)) is None


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ({"actor": "analyst:someone.else"}, "actor"),
        ({"event_ids": ()}, "event ids"),
        ({"at": "2026-01-01T00:00:00.000000Z"}, "time"),
        ({"signer": "cd" * 32}, "signer"),
        ({"invalid": "not_json", "actor": "", "event_ids": ()}, "marks a valid signed record"),
        ({"kafka_offset": 99}, "offset"),
        ({"leaf_hash": b"\x00" * 32}, "hash"),
        ({"record": b"{}"}, "record differs"),
    ],
)
def test_each_edited_index_field_is_named(edit: dict[str, object], named: str) -> None:
    row = derived(GOOD)
    difference = index_difference(dataclasses.replace(row, **edit), row)  # type: ignore[arg-type]
    assert difference is not None
    assert named in difference
    assert "someone" not in difference  # the field, never its contents


def test_a_forgery_indexed_as_a_record_is_a_difference() -> None:
    forged = derived(encode_record(READ))
    indexed = dataclasses.replace(
        forged, invalid=None, actor="analyst:a.khan", event_ids=derived(GOOD).event_ids
    )
    difference = index_difference(indexed, forged)
    assert difference is not None
    assert "unsigned" in difference


def test_a_key_registered_after_the_service_judged_is_no_difference() -> None:
    stranger = SigningKey(Ed25519PrivateKey.from_private_bytes(b"\x77" * 32), READER)
    value = sign_envelope(AUDIT_RECORD_TYPE, encode_record(READ), stranger)
    then = derived(value)  # unknown when the service judged it
    assert (then.invalid, then.signer) == ("unknown_key", None)
    later = TRUST.with_key(stranger.trusted(AT + dt.timedelta(days=1)))
    now = derived(value, trust=later)  # known now, valid only from after the append
    assert (now.invalid, now.signer) == ("key_not_valid", stranger.keyid)
    assert index_difference(then, now) is None
    # Not the other way round: a key_not_valid leaf never becomes unknown.
    assert index_difference(now, then) is not None
