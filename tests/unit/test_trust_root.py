"""The trust root and the judge of key records: known answers, every refusal, properties."""

from __future__ import annotations

import base64
import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.audit import KeyGenerated, KeyRevoked, KeyRotated
from schemas.errors import ConfigurationError
from schemas.keys import ROOT, KeyStatus, SigningKey, TrustStore
from schemas.records import InboundRecord
from schemas.trust_root import (
    KEY_CHANGE_TYPE,
    KeyChange,
    KeyRecordRefused,
    KeyRefusal,
    KeyState,
    SignedKeyChange,
    TrustRoot,
    TrustState,
    add_signature,
    judge_key_record,
    root_key,
)
from services.keys_admin import (
    audit_records,
    init_root,
    read_change,
    sign_change,
    write_change,
)
from services.keystore import KeyStore, trust_root_path
from services.settings import Settings
from services.trust import judge_inbound, load_root

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def fixed(seed: int, owner: str) -> SigningKey:
    return SigningKey(Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32), owner)


ROOTS = [fixed(i, ROOT) for i in (1, 2, 3)]
OFSTED = fixed(10, "ofsted")
CQC = fixed(11, "cqc")


def root_of(threshold: int, keys: list[SigningKey] = ROOTS) -> TrustRoot:
    return TrustRoot(threshold=threshold, keys=tuple(root_key(k) for k in keys))


def state_of(key: SigningKey, **fields: object) -> KeyState:
    public = base64.b64encode(key.public_raw).decode()
    return KeyState(keyid=key.keyid, public_key=public, owner=key.owner, **fields)  # type: ignore[arg-type]


def change(version: int, *keys: KeyState) -> KeyChange:
    return KeyChange(version=version, keys=keys, proposed_at=T0, note="test")


def signed(c: KeyChange, *by: SigningKey) -> bytes:
    out = SignedKeyChange(c, c.payload(), ())
    for key in by:
        out = add_signature(out, key)
    return out.envelope()


def with_repeats(c: KeyChange, by: list[SigningKey]) -> bytes:
    """The envelope with one signature entry per item of ``by``, repeats kept."""
    entries = {key.keyid: json.loads(signed(c, key))["signatures"][0] for key in by}
    envelope = json.loads(signed(c))
    envelope["signatures"] = [entries[key.keyid] for key in by]
    return json.dumps(envelope).encode()


def accepted(result: TrustState | KeyRecordRefused) -> TrustState:
    assert isinstance(result, TrustState), result
    return result


def refused(result: TrustState | KeyRecordRefused) -> KeyRefusal:
    assert isinstance(result, KeyRecordRefused), result
    return result.reason


# ---- known answers -----------------------------------------------------------------------


KAT_PAYLOAD = (
    b'{"keys":[{"keyid":"' + OFSTED.keyid.encode() + b'","owner":"ofsted","public_key":"'
    + base64.b64encode(OFSTED.public_raw) + b'","status":"active"}],'
    b'"note":"test","proposed_at":"2026-11-01T09:00:00Z","type":"liaison.key-change",'
    b'"version":1}'
)  # fmt: skip


def test_the_signed_bytes_are_compact_sorted_json_without_nulls() -> None:
    assert change(1, state_of(OFSTED)).payload() == KAT_PAYLOAD


def test_the_envelope_is_dsse_over_the_exact_payload() -> None:
    envelope = json.loads(signed(change(1, state_of(OFSTED)), ROOTS[0]))
    assert envelope["payloadType"] == KEY_CHANGE_TYPE == "uk.liaison.key.change.v1"
    assert base64.b64decode(envelope["payload"]) == KAT_PAYLOAD
    (signature,) = envelope["signatures"]
    assert signature["keyid"] == ROOTS[0].keyid
    pae = b"DSSEv1 %d %b %d %b" % (
        len(KEY_CHANGE_TYPE), KEY_CHANGE_TYPE.encode(), len(KAT_PAYLOAD), KAT_PAYLOAD,
    )  # fmt: skip
    ROOTS[0].private.public_key().verify(base64.b64decode(signature["sig"]), pae)
    # Ed25519 is deterministic: the same change signed by the same key is the same bytes.
    assert signed(change(1, state_of(OFSTED)), ROOTS[0]) == signed(
        change(1, state_of(OFSTED)), ROOTS[0]
    )


def test_a_change_signed_to_threshold_is_applied_at_the_append_time() -> None:
    state = accepted(
        judge_key_record(
            signed(change(1, state_of(OFSTED)), *ROOTS[:2]), T0, root_of(2), TrustState()
        )
    )
    assert state.version == 1
    entry = state.store.get(OFSTED.keyid)
    assert entry is not None
    assert (entry.owner, entry.status, entry.valid_from) == ("ofsted", KeyStatus.ACTIVE, T0)


# ---- every refusal -------------------------------------------------------------------------


def test_a_bare_key_record_is_unsigned() -> None:
    bare = OFSTED.trusted(T0 - 30 * 24 * HOUR).model_dump_json().encode()
    assert refused(judge_key_record(bare, T0, root_of(1), TrustState())) is KeyRefusal.UNSIGNED


def test_a_change_signed_by_a_key_outside_the_root_is_unsigned() -> None:
    record = signed(change(1, state_of(OFSTED)), fixed(99, ROOT))
    assert refused(judge_key_record(record, T0, root_of(1), TrustState())) is KeyRefusal.UNSIGNED


def test_an_under_signed_change_is_refused_and_says_how_many() -> None:
    result = judge_key_record(
        signed(change(1, state_of(OFSTED)), ROOTS[0]), T0, root_of(2), TrustState()
    )
    assert refused(result) is KeyRefusal.UNDER_SIGNED
    assert isinstance(result, KeyRecordRefused)
    assert "1 of the 2" in result.detail


def test_one_root_keys_signature_twice_counts_once() -> None:
    record = with_repeats(change(1, state_of(OFSTED)), [ROOTS[0], ROOTS[0]])
    assert len(json.loads(record)["signatures"]) == 2
    result = judge_key_record(record, T0, root_of(2), TrustState())
    assert refused(result) is KeyRefusal.UNDER_SIGNED


def test_an_old_change_replayed_is_a_rollback() -> None:
    root = root_of(1)
    v1 = signed(change(1, state_of(OFSTED)), ROOTS[0])
    state = accepted(judge_key_record(v1, T0, root, TrustState()))
    revoke = state_of(OFSTED, status=KeyStatus.REVOKED, revocation_reason="stolen")
    state = accepted(judge_key_record(signed(change(2, revoke), ROOTS[0]), T0 + HOUR, root, state))
    assert refused(judge_key_record(v1, T0 + 2 * HOUR, root, state)) is KeyRefusal.ROLLBACK
    entry = state.store.get(OFSTED.keyid)
    assert entry is not None
    assert entry.status is KeyStatus.REVOKED


def test_a_back_dated_valid_from_is_refused() -> None:
    back = state_of(CQC, valid_from=T0 - 30 * 24 * HOUR)
    result = judge_key_record(signed(change(1, back), ROOTS[0]), T0, root_of(1), TrustState())
    assert refused(result) is KeyRefusal.BACKDATED


def test_a_valid_from_within_the_skew_is_accepted() -> None:
    near = state_of(CQC, valid_from=T0 - dt.timedelta(minutes=4))
    accepted(judge_key_record(signed(change(1, near), ROOTS[0]), T0, root_of(1), TrustState()))


def test_a_revoked_key_is_never_revived_nor_a_retired_one_reactivated() -> None:
    root = root_of(1)
    state = accepted(
        judge_key_record(
            signed(change(1, state_of(OFSTED), state_of(CQC)), ROOTS[0]), T0, root, TrustState()
        )
    )
    gone = change(
        2,
        state_of(OFSTED, status=KeyStatus.REVOKED, revocation_reason="stolen"),
        state_of(CQC, status=KeyStatus.RETIRED, valid_from=T0),
    )
    state = accepted(judge_key_record(signed(gone, ROOTS[0]), T0 + HOUR, root, state))
    for key in (OFSTED, CQC):
        back = signed(change(3, state_of(key, valid_from=T0)), ROOTS[0])
        assert refused(judge_key_record(back, T0 + 2 * HOUR, root, state)) is KeyRefusal.CONFLICT


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", KeyRefusal.MALFORMED),
        (b"[]", KeyRefusal.MALFORMED),
        (b'{"a":1,"a":2}', KeyRefusal.MALFORMED),
        (b"x" * (256 * 1024 + 1), KeyRefusal.OVERSIZED),
        (
            json.dumps({"payload": "e30=", "payloadType": "other", "signatures": []}).encode(),
            KeyRefusal.MALFORMED,
        ),
        (
            json.dumps(
                {"payload": "e30=", "payloadType": KEY_CHANGE_TYPE, "signatures": []}
            ).encode(),
            KeyRefusal.INVALID_FIELDS,
        ),
    ],
)
def test_what_is_not_a_signed_change_is_refused_with_its_reason(
    data: bytes, reason: KeyRefusal
) -> None:
    assert refused(judge_key_record(data, T0, root_of(1), TrustState())) is reason


def record_at(value: bytes, timestamp_type: int) -> InboundRecord:
    return InboundRecord(
        topic="liaison.keys", partition=0, offset=0,
        timestamp_ms=int(T0.timestamp() * 1000), key=b"v1", value=value, headers=(),
        timestamp_type=timestamp_type,
    )  # fmt: skip


def test_only_the_brokers_append_time_is_a_clock() -> None:
    good = signed(change(1, state_of(OFSTED)), ROOTS[0])
    state = accepted(judge_inbound(record_at(good, 1), root_of(1), TrustState()))
    entry = state.store.get(OFSTED.keyid)
    assert entry is not None
    assert entry.valid_from == T0
    # The producer's own time (CreateTime) could be anything it likes:
    result = judge_inbound(record_at(good, 0), root_of(1), TrustState())
    assert refused(result) is KeyRefusal.NOT_APPEND_TIME


# ---- properties -----------------------------------------------------------------------------


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = judge_key_record(data, T0, root_of(1), TrustState())
    assert isinstance(result, TrustState | KeyRecordRefused)


VALID = signed(change(1, state_of(OFSTED), state_of(CQC)), *ROOTS[:2])
VALID_STATE = accepted(judge_key_record(VALID, T0, root_of(2), TrustState()))


@given(st.integers(0, len(VALID) - 1), st.integers(1, 255))
def test_flipping_any_byte_never_yields_another_accepted_state(index: int, mask: int) -> None:
    damaged = bytearray(VALID)
    damaged[index] ^= mask
    result = judge_key_record(bytes(damaged), T0, root_of(2), TrustState())
    assert isinstance(result, KeyRecordRefused) or result == VALID_STATE


@given(st.lists(st.integers(1, 8), min_size=1, max_size=8))
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_the_version_only_goes_up(versions: list[int]) -> None:
    root, state = root_of(1), TrustState()
    keys = [fixed(40 + i, "ofsted") for i in range(len(versions))]
    for i, (version, key) in enumerate(zip(versions, keys, strict=True)):
        before = state
        result = judge_key_record(
            signed(change(version, state_of(key)), ROOTS[0]), T0 + i * HOUR, root, state
        )
        if version > before.version:
            state = accepted(result)
            assert state.version == version
        else:
            assert refused(result) is KeyRefusal.ROLLBACK
        assert state.version >= before.version


@given(st.lists(st.sampled_from(range(3)), max_size=6), st.integers(1, 3))
@settings(deadline=None)
def test_the_threshold_counts_distinct_root_keys(signers: list[int], threshold: int) -> None:
    record = with_repeats(change(1, state_of(OFSTED)), [ROOTS[i] for i in signers])
    result = judge_key_record(record, T0, root_of(threshold), TrustState())
    if len(set(signers)) >= threshold:
        accepted(result)
    else:
        assert refused(result) in {KeyRefusal.UNSIGNED, KeyRefusal.UNDER_SIGNED}


# ---- the pinned root as a file, and offline signing ----------------------------------------


def local(tmp_path: Path, **update: object) -> Settings:
    return Settings(home=tmp_path / "home").model_copy(update=update)


def test_a_missing_root_says_where_and_what_to_run(tmp_path: Path) -> None:
    settings = local(tmp_path)
    with pytest.raises(ConfigurationError, match="keys root init") as raised:
        load_root(settings)
    assert str(trust_root_path(settings)) in str(raised.value)


@pytest.mark.parametrize("content", [b"", b"{}", b"not json", b'{"threshold": 1}'])
def test_an_invalid_root_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "root.json"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match="is not a trust root") as raised:
        load_root(local(tmp_path, trust_root=path))
    assert str(path) in str(raised.value)


def test_root_init_pins_the_public_halves_and_keeps_private_ones_0600(tmp_path: Path) -> None:
    settings = local(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    created = init_root(settings, 2, 3, out, ("a", "b", "c"))
    assert load_root(settings) == created.root
    assert [k.holder for k in created.root.keys] == ["a", "b", "c"]
    assert created.root.threshold == 2
    for path in created.private_files:
        assert path.parent == out
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "PRIVATE" not in trust_root_path(settings).read_text()
    with pytest.raises(ConfigurationError, match="never overwritten"):
        init_root(settings, 1, 1)


@pytest.mark.parametrize(("threshold", "count"), [(0, 1), (2, 1), (1, 17)])
def test_root_init_refuses_an_impossible_threshold(
    tmp_path: Path, threshold: int, count: int
) -> None:
    with pytest.raises(ConfigurationError, match="threshold"):
        init_root(local(tmp_path), threshold, count)
    assert not trust_root_path(local(tmp_path)).exists()


def test_a_change_file_is_signed_offline_by_root_keys_only(tmp_path: Path) -> None:
    settings = local(tmp_path)
    init_root(settings, 2, 2)
    keys = KeyStore(settings).root_keys(load_root(settings))
    path = write_change(tmp_path / "change.json", change(1, state_of(OFSTED)))
    assert read_change(path).signatures == ()
    with pytest.raises(ConfigurationError, match="exists"):
        write_change(path, change(1, state_of(OFSTED)))
    with pytest.raises(ConfigurationError, match="not one of the root keys"):
        sign_change(settings, read_change(path), fixed(99, ROOT))
    for key in keys:
        write_change(path, sign_change(settings, read_change(path), key), replace=True)
    again = read_change(path)
    assert set(again.signers(load_root(settings))) == {k.keyid for k in keys}
    accepted(judge_key_record(again.envelope(), T0, load_root(settings), TrustState()))


def test_a_file_that_is_not_a_change_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b'{"hello": 1}')
    with pytest.raises(ConfigurationError, match="is not a key change file"):
        read_change(path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        read_change(tmp_path / "missing.json")


# ---- what is audited ---------------------------------------------------------------------------


def test_audit_records_name_generation_rotation_and_revocation() -> None:
    old = OFSTED.trusted(T0)
    before = TrustStore(keys=(old, CQC.trusted(T0)))
    new = fixed(12, "ofsted")
    c = change(
        5,
        state_of(OFSTED, status=KeyStatus.RETIRED, valid_from=T0),
        state_of(new),
        state_of(CQC, status=KeyStatus.REVOKED, revocation_reason="stolen"),
        state_of(fixed(13, "hmicfrs")),
    )
    records = audit_records(c, before, T0, "operator:alice")
    by_type = {type(r): r for r in records}
    assert set(by_type) == {KeyRotated, KeyRevoked, KeyGenerated}
    rotated = by_type[KeyRotated]
    assert isinstance(rotated, KeyRotated)
    assert (rotated.keyid, rotated.retired_keyids) == (new.keyid, (OFSTED.keyid,))
    revoked = by_type[KeyRevoked]
    assert isinstance(revoked, KeyRevoked)
    assert (revoked.keyid, revoked.reason) == (CQC.keyid, "stolen")
    assert all(r.actor == "operator:alice" for r in records)
