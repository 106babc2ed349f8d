"""Proof documents: parsed into closed models, checked offline, refused with one error."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from schemas.audit import (
    AUDIT_RECORD_TYPE,
    FeedRead,
    InvalidRecord,
    SealedRecord,
    encode_record,
    judge_sealed,
    judge_sealed_as_claimed,
    leaf_data,
    seal_record,
)
from schemas.audit_proof import (
    CONSISTENCY,
    INCLUSION,
    MAX_PROOF_BYTES,
    ConsistencyProof,
    InclusionProof,
    LeafProof,
    encode_proof,
    parse_proof,
    parse_signers,
)
from schemas.checkpoint import Checkpoint, note_verifier_key, sign_checkpoint
from schemas.envelope import sign_envelope
from schemas.errors import LiaisonError
from schemas.keys import AUDIT, BUS, READER, SigningKey, TrustStore
from schemas.merkle import ProofError, consistency_proof, inclusion_proof, leaf_hash, root
from services.auditor import CLAIMED_TIME_LIMIT, check_proof  # pure: what the CLI runs

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "test.liaison.audit"
KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))), AUDIT)
VKEY = note_verifier_key(ORIGIN, KEY.public_raw)
OTHER = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))), AUDIT)
READER_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34))), READER)
EVENT = uuid.UUID("6f1c0d2e-0c5e-4e0e-9b1e-2b0b1c8d6e77")
ELSEWHERE = uuid.UUID("0b0b2d4c-7d0a-4f43-8d4e-6a1c1d7f0a11")
AT = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
# The signers' public keys as the auditor holds them (`liaison keys export`).
SIGNERS = TrustStore(keys=(READER_KEY.trusted(AT - dt.timedelta(days=30)),))


def read(n: int, event_ids: tuple[uuid.UUID, ...]) -> FeedRead:
    return FeedRead(
        at=AT, actor="analyst:a.khan", analyst="a.khan", purpose=f"read {n}", returned=n,
        event_ids=event_ids,
    )  # fmt: skip


# A log of seven signed leaves: records 2 and 5 concern EVENT, 3 concerns ELSEWHERE;
# leaf 4 is a value that is no record, leaf 6 a bare (unsigned) record naming EVENT.
RECORDS = [
    seal_record(read(n, (EVENT,) if n in (2, 5) else (ELSEWHERE,) if n == 3 else ()), READER_KEY)
    for n in range(7)
]
RECORDS[4] = b"not json"
RECORDS[6] = encode_record(read(6, (EVENT,)))
LEAVES = [leaf_data(seq, record) for seq, record in enumerate(RECORDS)]
HASHES = [leaf_hash(data) for data in LEAVES]


def note(size: int, key: SigningKey = KEY) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, root(HASHES[:size])), key, ORIGIN)


def inclusion(
    seqs: tuple[int, ...] = (2, 5), size: int = 7, event: uuid.UUID = EVENT
) -> InclusionProof:
    return InclusionProof(
        event_id=str(event),
        checkpoint=note(size),
        verifier_keys=(VKEY,),
        proofs=tuple(
            LeafProof(
                seq=seq,
                leaf=base64.b64encode(LEAVES[seq]).decode(),
                proof=tuple(h.hex() for h in inclusion_proof(HASHES[:size], seq)),
            )
            for seq in seqs
        ),
    )


def consistency(old: int = 3, new: int = 7) -> ConsistencyProof:
    return ConsistencyProof(
        old_checkpoint=note(old),
        new_checkpoint=note(new),
        verifier_keys=(VKEY,),
        proof=tuple(h.hex() for h in consistency_proof(HASHES[:new], old)),
    )


def as_json(document: InclusionProof | ConsistencyProof) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(encode_proof(document))
    return data


# ---- good documents ------------------------------------------------------------------


def test_an_inclusion_proof_round_trips_and_verifies() -> None:
    document = inclusion()
    text = encode_proof(document)
    assert json.loads(text)["type"] == INCLUSION
    assert parse_proof(text.encode()) == document
    lines = check_proof(parse_proof(text), VKEY, SIGNERS)
    assert lines[0] == f"checkpoint {ORIGIN} size 7: signature OK"
    assert lines[1] == (
        "leaf 2: feed.read by analyst:a.khan at 2026-11-22T12:00:00+00:00"
        f" (signed by key {READER_KEY.keyid}, owner reader: signature OK): included"
    )
    assert lines[2].startswith("leaf 5: feed.read")
    assert lines[3] == CLAIMED_TIME_LIMIT
    assert "back-dated" in lines[3]
    assert "audit verify" in lines[3]
    assert len(lines) == 4


def test_a_consistency_proof_round_trips_and_verifies() -> None:
    document = consistency()
    assert parse_proof(encode_proof(document)) == document
    assert check_proof(document, VKEY, None) == [
        f"checkpoints 3 and 7 of {ORIGIN}: consistent (append-only)"
    ]


def test_the_documented_format_is_what_is_written() -> None:
    # docs/audit.md shows these fields; docs/check_proof.py reads them.
    assert set(as_json(inclusion())) == {
        "type", "event_id", "checkpoint", "verifier_keys", "proofs", "not_yet_checkpointed",
    }  # fmt: skip
    assert set(as_json(inclusion())["proofs"][0]) == {"seq", "leaf", "proof"}
    assert set(as_json(consistency())) == {
        "type", "old_checkpoint", "new_checkpoint", "verifier_keys", "proof",
    }  # fmt: skip
    assert as_json(consistency())["type"] == CONSISTENCY


# ---- forged documents: parsed, then refused by the maths ------------------------------


def test_forgeries_are_refused_by_verification() -> None:
    good = as_json(inclusion())
    forged_path = json.loads(json.dumps(good))
    forged_path["proofs"][0]["proof"][0] = "00" * 32
    moved = json.loads(json.dumps(good))
    moved["proofs"][0]["seq"] = 3
    other_leaf = json.loads(json.dumps(good))
    other_leaf["proofs"][0]["leaf"] = base64.b64encode(leaf_data(2, b"{}")).decode()
    other_key = json.loads(json.dumps(good))
    other_key["checkpoint"] = note(7, OTHER)
    for forged in (forged_path, moved, other_leaf, other_key):
        with pytest.raises(LiaisonError):
            check_proof(parse_proof(json.dumps(forged)), VKEY, SIGNERS)
    with pytest.raises(ProofError):
        check_proof(consistency(3, 7).model_copy(update={"proof": ("00" * 32,)}), VKEY, None)


@pytest.mark.parametrize(
    ("document", "why"),
    [
        # `audit prove E` with its event_id edited: every proven record still names E.
        (inclusion().model_copy(update={"event_id": str(ELSEWHERE)}), "does not concern event"),
        (inclusion(seqs=(2, 3)), "leaf 3's record does not concern event"),
        # Truly included, but no signed record: proves nothing about the event.
        (inclusion(seqs=(4,)), "leaf 4 is not a signed audit record"),
        (inclusion(seqs=(2, 6)), "leaf 6 is not a signed audit record"),
        (inclusion(seqs=()), "proves nothing"),
        (inclusion().model_copy(update={"event_id": "not-a-uuid"}), "not an event's UUID"),
    ],
)
def test_a_proof_must_prove_what_it_claims(document: InclusionProof, why: str) -> None:
    # Every leaf here is in the signed tree: only the claim about the event is false.
    with pytest.raises(ProofError, match=why):
        check_proof(document, VKEY, SIGNERS)


def test_an_inclusion_proof_about_another_event_verifies_for_that_event() -> None:
    lines = check_proof(inclusion(seqs=(3,), event=ELSEWHERE), VKEY, SIGNERS)
    assert lines[1].startswith("leaf 3:")


# ---- malformed documents: one ProofError, never anything else ------------------------


def changed(document: dict[str, Any], path: tuple[str | int, ...], value: object) -> bytes:
    data = json.loads(json.dumps(document))
    *parents, last = path
    target = data
    for part in parents:
        target = target[part]
    target[last] = value
    return json.dumps(data).encode()


def dropped(document: dict[str, Any], name: str) -> bytes:
    data = dict(document)
    del data[name]
    return json.dumps(data).encode()


GOOD = as_json(inclusion())
GOOD_TEXT = json.dumps(GOOD).encode()
MALFORMED: dict[str, bytes] = {
    "empty": b"",
    "not json": b"this is not a proof",
    "not utf-8": b"\xff\xfe{}",
    "a list": b"[]",
    "a number": b"7",
    "no type": dropped(GOOD, "type"),
    "unknown type": changed(GOOD, ("type",), "liaison.audit.inclusion_proof.v9"),
    "type not a string": changed(GOOD, ("type",), 1),
    "missing checkpoint": dropped(GOOD, "checkpoint"),
    "missing proofs": dropped(GOOD, "proofs"),
    "an extra field": changed(GOOD, ("comment",), "x"),
    "proofs not a list": changed(GOOD, ("proofs",), {"seq": 2}),
    "proof item not an object": changed(GOOD, ("proofs", 0), "leaf"),
    "seq as text": changed(GOOD, ("proofs", 0, "seq"), "2"),
    "seq negative": changed(GOOD, ("proofs", 0, "seq"), -1),
    "seq beyond int64": changed(GOOD, ("proofs", 0, "seq"), 2**64),
    "seq a float": changed(GOOD, ("proofs", 0, "seq"), 2.0),
    "seq too large for a float": GOOD_TEXT.replace(b'"seq": 2', b'"seq": 1e999', 1),
    "seq of 5000 digits": GOOD_TEXT.replace(b'"seq": 2', b'"seq": ' + b"9" * 5000, 1),
    "leaf not base64": changed(GOOD, ("proofs", 0, "leaf"), "!!not base64!!"),
    "leaf badly padded": changed(GOOD, ("proofs", 0, "leaf"), "MTI"),
    "leaf not a string": changed(GOOD, ("proofs", 0, "leaf"), ["MTI="]),
    "hash not hex": changed(GOOD, ("proofs", 0, "proof", 0), "zz" * 32),
    "hash upper case": changed(GOOD, ("proofs", 0, "proof", 0), "AB" * 32),
    "hash too short": changed(GOOD, ("proofs", 0, "proof", 0), "ab" * 31),
    "hash odd length": changed(GOOD, ("proofs", 0, "proof", 0), "abc"),
    "hash a number": changed(GOOD, ("proofs", 0, "proof", 0), 7),
    "path too long": changed(GOOD, ("proofs", 0, "proof"), ["ab" * 32] * 129),
    "checkpoint a number": changed(GOOD, ("checkpoint",), 7),
    "checkpoint null": changed(GOOD, ("checkpoint",), None),
    "verifier keys a string": changed(GOOD, ("verifier_keys",), "k"),
    "lone surrogate": GOOD_TEXT.replace(b'"checkpoint": "', b'"checkpoint": "\\ud800', 1),
    "deep nesting": b"[" * 100_000,
    "deep nesting in a field": GOOD_TEXT.replace(
        b'"verifier_keys": [', b'"verifier_keys": ' + b"[" * 5000, 1
    ),
    "over the size limit": b" " * (MAX_PROOF_BYTES + 1),
    "consistency with an inclusion field": changed(as_json(consistency()), ("proofs",), []),
}


def test_each_malformed_case_changes_a_good_document() -> None:
    parse_proof(json.dumps(GOOD))
    for name, data in MALFORMED.items():
        assert data != json.dumps(GOOD).encode(), name


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_document_is_one_proof_error(name: str) -> None:
    with pytest.raises(ProofError, match=r"^not a proof document: ") as caught:
        parse_proof(MALFORMED[name])
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 2000


def test_problems_are_named_by_field_path_without_repeating_the_input() -> None:
    with pytest.raises(ProofError) as caught:
        parse_proof(changed(GOOD, ("proofs", 0, "leaf"), "!!secret text!!"))
    assert "proofs.0.leaf: must be standard base64" in str(caught.value)
    assert "secret" not in str(caught.value)


def mutations() -> st.SearchStrategy[bytes]:
    documents = [json.dumps(GOOD).encode(), encode_proof(consistency()).encode()]

    def mutate(data: bytes, at: int, insert: bytes, cut: int) -> bytes:
        at %= len(data) + 1
        return data[:at] + insert + data[at + cut :]

    return st.builds(
        mutate,
        st.sampled_from(documents),
        st.integers(0, 5000),
        st.binary(max_size=8) | st.sampled_from([b"\\ud800", b"[" * 300, b"1e999", b'"', b"0"]),
        st.integers(0, 8),
    )


@given(st.binary(max_size=500) | mutations())
def test_any_bytes_parse_or_raise_one_proof_error_and_check_raises_only_liaison_errors(
    data: bytes,
) -> None:
    try:
        document = parse_proof(data)
    except ProofError:
        return
    with contextlib.suppress(LiaisonError):
        check_proof(document, VKEY, SIGNERS)


# ---- `liaison audit check-proof` as a user runs it -----------------------------------


def check_proof_cli(file: Path | str, *key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", "audit", "check-proof", str(file), *key],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def signers_file(tmp_path: Path, signers: TrustStore = SIGNERS, name: str = "keys.json") -> Path:
    """The signers' keys as `liaison keys export` prints them."""
    path = tmp_path / name
    path.write_text(signers.model_dump_json(indent=2) + "\n")
    return path


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode in (1, 2), done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_check_proof_cli_accepts_a_good_proof_and_refuses_a_forged_one(tmp_path: Path) -> None:
    good = tmp_path / "proof.json"
    good.write_text(encode_proof(inclusion()))
    done = check_proof_cli(good, "--key", VKEY, "--signers", str(signers_file(tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "OK"
    assert "back-dated" in done.stdout  # the limit is stated with every OK
    forged = tmp_path / "forged.json"
    forged.write_bytes(changed(GOOD, ("proofs", 0, "proof", 0), "00" * 32))
    refused = check_proof_cli(forged, "--key", VKEY, "--signers", str(signers_file(tmp_path)))
    assert refused.returncode == 1
    assert "FAILED" in refused.stdout


# A sample is enough here: the parser itself is held to every case above.
CLI_CASES = [
    "not json", "a list", "unknown type", "seq as text", "seq beyond int64", "leaf not base64",
    "hash not hex", "checkpoint a number", "lone surrogate", "deep nesting",
    "seq of 5000 digits", "proof item not an object",
]  # fmt: skip


@pytest.mark.parametrize("name", CLI_CASES)
def test_check_proof_cli_on_a_malformed_document_prints_one_error_line(
    tmp_path: Path, name: str
) -> None:
    file = tmp_path / "proof.json"
    file.write_bytes(MALFORMED[name])
    line = one_error_line(check_proof_cli(file, "--key", VKEY))
    assert "not a proof document" in line


def test_check_proof_cli_on_unreadable_or_endless_input_prints_one_error_line(
    tmp_path: Path,
) -> None:
    assert "over the" in one_error_line(check_proof_cli("/dev/zero", "--key", VKEY))
    assert "cannot read" in one_error_line(
        check_proof_cli(tmp_path / "missing.json", "--key", VKEY)
    )
    assert "cannot read" in one_error_line(check_proof_cli(tmp_path, "--key", VKEY))


@pytest.mark.parametrize("key", ["nonsense", "a+b+c", VKEY[:-4], VKEY.replace("+", "+0", 1)])
def test_check_proof_cli_with_a_malformed_key_prints_one_error_line(
    tmp_path: Path, key: str
) -> None:
    good = tmp_path / "proof.json"
    good.write_text(encode_proof(inclusion()))
    assert "--key" in one_error_line(check_proof_cli(good, "--key", key))


def test_check_proof_cli_without_a_key_refuses_to_run(tmp_path: Path) -> None:
    good = tmp_path / "proof.json"
    good.write_text(encode_proof(inclusion()))  # its verifier_keys are never trusted
    line = one_error_line(check_proof_cli(good))
    assert "--key is required" in line
    assert "--key is required" in one_error_line(check_proof_cli(good, "--key", ""))


def test_check_proof_cli_refuses_a_proof_whose_event_id_was_edited(tmp_path: Path) -> None:
    edited = tmp_path / "edited.json"
    edited.write_text(encode_proof(inclusion().model_copy(update={"event_id": str(ELSEWHERE)})))
    done = check_proof_cli(edited, "--key", VKEY, "--signers", str(signers_file(tmp_path)))
    assert done.returncode == 1
    assert "FAILED" in done.stdout
    assert "does not concern event" in done.stdout


# ---- docs/check_proof.py: the same checks with the standard library and cryptography ----


def script(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "docs" / "check_proof.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_standalone_script_agrees_with_check_proof(tmp_path: Path) -> None:
    good = tmp_path / "proof.json"
    good.write_text(encode_proof(inclusion()))
    keys = signers_file(tmp_path)
    done = script(good, VKEY, "--signers", keys)
    assert done.returncode == 0, done.stderr
    assert "OK: 2 record(s) about the event in the log of size 7" in done.stdout
    assert f"signed by key {READER_KEY.keyid}, owner reader: signature OK" in done.stdout
    assert "back-dated" in done.stdout.splitlines()[-1]
    cases = {
        "edited event id": inclusion().model_copy(update={"event_id": str(ELSEWHERE)}),
        "a record about another event": inclusion(seqs=(2, 3)),
        "a leaf that is no record": inclusion(seqs=(4,)),
        "an unsigned record": inclusion(seqs=(6,)),
        "no record": inclusion(seqs=()),
        "another key's checkpoint": inclusion().model_copy(update={"checkpoint": note(7, OTHER)}),
    }
    for name, document in cases.items():
        bad = tmp_path / f"{name}.json"
        bad.write_text(encode_proof(document))
        refused = script(bad, VKEY, "--signers", keys)
        assert refused.returncode != 0, name
        assert "Traceback" not in refused.stderr, name
        assert "OK: " not in refused.stdout, name


def test_the_standalone_script_requires_the_verifier_key(tmp_path: Path) -> None:
    good = tmp_path / "proof.json"
    good.write_text(encode_proof(inclusion()))
    done = script(good)
    assert done.returncode == 2
    assert "VERIFIER_KEY" in done.stderr
    assert "Traceback" not in done.stderr


# ---- the signers' keys: inclusion proves bytes were appended, not who wrote them -------
#
# A log of four leaves about EVENT, each a FeedRead for analyst:a.khan: signed by the
# reader key, by a stranger's key no one registered (anyone can append to the log), by
# an inspectorate's key (not entitled to an analyst), and with its signature broken.

STRANGER = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(3, 35))), READER)
OFSTED_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(4, 36))), "ofsted")
ROUTER_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(5, 37))), BUS)


def _broken(value: bytes) -> bytes:
    envelope = json.loads(value)
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return json.dumps(envelope).encode()


SIGNED = [
    seal_record(read(0, (EVENT,)), READER_KEY),
    seal_record(read(1, (EVENT,)), STRANGER),
    sign_envelope(AUDIT_RECORD_TYPE, encode_record(read(2, (EVENT,))), OFSTED_KEY),
    _broken(seal_record(read(3, (EVENT,)), READER_KEY)),
]
SIGNED_LEAVES = [leaf_data(seq, value) for seq, value in enumerate(SIGNED)]
SIGNED_HASHES = [leaf_hash(data) for data in SIGNED_LEAVES]
KEYS_OF_ALL = TrustStore(
    keys=(
        READER_KEY.trusted(AT - dt.timedelta(days=30)),
        OFSTED_KEY.trusted(AT - dt.timedelta(days=30)),
        ROUTER_KEY.trusted(AT - dt.timedelta(days=30)),
    )
)


def signed_proof(seq: int) -> InclusionProof:
    size = len(SIGNED)
    cp = sign_checkpoint(Checkpoint(ORIGIN, size, root(SIGNED_HASHES)), KEY, ORIGIN)
    return InclusionProof(
        event_id=str(EVENT),
        checkpoint=cp,
        proofs=(
            LeafProof(
                seq=seq,
                leaf=base64.b64encode(SIGNED_LEAVES[seq]).decode(),
                proof=tuple(h.hex() for h in inclusion_proof(SIGNED_HASHES, seq)),
            ),
        ),
    )


def reader_key(
    *,
    revoked: dt.datetime | None = None,
    retired: dt.datetime | None = None,
    valid_from: dt.datetime | None = None,
) -> TrustStore:
    """KEYS_OF_ALL with the reader key revoked, retired, or valid only from a time."""
    key = KEYS_OF_ALL.keys[0]
    if revoked is not None:
        key = key.revoked(revoked, "stolen")
    if retired is not None:
        key = key.retired(retired)
    if valid_from is not None:
        key = READER_KEY.trusted(valid_from)
    return KEYS_OF_ALL.with_key(key)


HOUR = dt.timedelta(hours=1)
REFUSED_SIGNERS = {
    "forged signer (a key not in the file)": (1, KEYS_OF_ALL, "not in the signers' keys"),
    "an inspectorate's key signing for an analyst": (2, KEYS_OF_ALL, "may not sign for"),
    "a broken signature": (3, KEYS_OF_ALL, "signature does not verify"),
    "the key revoked before the record's time": (
        0,
        reader_key(revoked=AT - HOUR),
        "not valid at the record's time",
    ),
    "the key revoked at the record's time": (
        0,
        reader_key(revoked=AT),
        "not valid at the record's time",
    ),
    "the key retired before the record's time": (
        0,
        reader_key(retired=AT - HOUR),
        "not valid at the record's time",
    ),
    "the key valid only after the record's time": (
        0,
        reader_key(valid_from=AT + HOUR),
        "not valid at the record's time",
    ),
    "the reader's key owned by the router in the file": (
        0,
        TrustStore(keys=(ROUTER_KEY.trusted(AT - HOUR),)),
        "not in the signers' keys",
    ),
}


def test_a_leaf_signed_by_a_key_in_the_file_valid_at_its_time_is_accepted() -> None:
    lines = check_proof(signed_proof(0), VKEY, KEYS_OF_ALL)
    assert lines[1] == (
        "leaf 0: feed.read by analyst:a.khan at 2026-11-22T12:00:00+00:00"
        f" (signed by key {READER_KEY.keyid}, owner reader: signature OK): included"
    )
    # Revoked or retired after the record's time: the key still vouches for it.
    later = reader_key(revoked=AT + HOUR)
    assert check_proof(signed_proof(0), VKEY, later)[1].startswith("leaf 0: feed.read")
    retired = reader_key(retired=AT + HOUR)
    assert check_proof(signed_proof(0), VKEY, retired)[1].startswith("leaf 0: feed.read")


@pytest.mark.parametrize("name", REFUSED_SIGNERS)
def test_a_leaf_whose_signer_the_file_does_not_vouch_for_is_refused(name: str) -> None:
    seq, signers, why = REFUSED_SIGNERS[name]
    # Each of these leaves truly is in the signed tree: only its signer is wrong.
    with pytest.raises(ProofError, match=f"^leaf {seq} is not a record") as caught:
        check_proof(signed_proof(seq), VKEY, signers)
    assert why in str(caught.value)


def test_an_inclusion_proof_is_never_checked_without_the_signers_keys() -> None:
    with pytest.raises(ProofError, match="signers' public keys"):
        check_proof(signed_proof(0), VKEY, None)


@given(st.integers(-10_000, 10_000), st.sampled_from(["revoked", "retired"]))
def test_a_key_vouches_for_a_record_exactly_when_it_is_valid_at_the_records_time(
    minutes: int, how: str
) -> None:
    ends = AT + dt.timedelta(minutes=minutes)
    signers = reader_key(revoked=ends) if how == "revoked" else reader_key(retired=ends)
    judged = judge_sealed_as_claimed(SIGNED[0], signers)
    assert isinstance(judged, SealedRecord) == (minutes > 0)
    # The same judgement the audit service makes when the append time is the record's.
    online = judge_sealed(SIGNED[0], AT, signers)
    assert type(online) is type(judged)


@given(st.binary(max_size=300) | st.sampled_from(SIGNED))
def test_judging_any_value_as_claimed_never_raises(data: bytes) -> None:
    judged = judge_sealed_as_claimed(data, KEYS_OF_ALL)
    assert isinstance(judged, SealedRecord | InvalidRecord)
    if isinstance(judged, SealedRecord):
        assert judged.key.owner == READER


def test_the_signers_file_is_what_keys_export_prints_and_nothing_else() -> None:
    assert parse_signers(KEYS_OF_ALL.model_dump_json(indent=2).encode()) == KEYS_OF_ALL
    bad_owner = KEYS_OF_ALL.model_dump(mode="json")
    bad_owner["keys"][0]["owner"] = "someone secret"
    cases = {
        b"not json": "not a key list",
        b"[]": "not a key list",
        b'{"keys": []}': "holds no key",
        json.dumps(bad_owner).encode(): "owner is not an inspectorate",
        b'{"keys": [], "extra": 1}': "is not a field of a key list",
        b" " * (MAX_PROOF_BYTES + 1): "over the",
    }
    for data, why in cases.items():
        with pytest.raises(ProofError, match=why) as caught:
            parse_signers(data)
        assert "secret" not in str(caught.value)
        assert "\n" not in str(caught.value)


def test_check_proof_cli_needs_the_signers_and_refuses_a_forged_signer(tmp_path: Path) -> None:
    proof = tmp_path / "proof.json"
    proof.write_text(encode_proof(signed_proof(0)))
    assert "--signers is required" in one_error_line(check_proof_cli(proof, "--key", VKEY))
    keys = signers_file(tmp_path, KEYS_OF_ALL)
    done = check_proof_cli(proof, "--key", VKEY, "--signers", str(keys))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signature OK): included" in done.stdout
    forged = tmp_path / "forged.json"
    forged.write_text(encode_proof(signed_proof(1)))
    refused = check_proof_cli(forged, "--key", VKEY, "--signers", str(keys))
    assert refused.returncode == 1
    assert "FAILED: leaf 1 is not a record the signers' keys vouch for" in refused.stdout
    assert "feed.read by analyst" not in refused.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert "--signers" in one_error_line(
        check_proof_cli(proof, "--key", VKEY, "--signers", str(bad))
    )
    missing = str(tmp_path / "missing.json")
    assert "cannot read" in one_error_line(
        check_proof_cli(proof, "--key", VKEY, "--signers", missing)
    )
    # A consistency proof holds no record: the verifier key alone checks it.
    grown = tmp_path / "consistency.json"
    grown.write_text(encode_proof(consistency()))
    assert check_proof_cli(grown, "--key", VKEY).returncode == 0


@pytest.mark.parametrize("name", REFUSED_SIGNERS)
def test_the_standalone_script_refuses_the_same_signers(tmp_path: Path, name: str) -> None:
    seq, signers, _ = REFUSED_SIGNERS[name]
    proof = tmp_path / "proof.json"
    proof.write_text(encode_proof(signed_proof(seq)))
    done = script(proof, VKEY, "--signers", signers_file(tmp_path, signers))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"FAILED: leaf {seq}" in done.stderr
    assert "Traceback" not in done.stderr
    assert "OK: " not in done.stdout
    good = script(proof, VKEY, "--signers", signers_file(tmp_path, KEYS_OF_ALL, "all.json"))
    assert (good.returncode == 0) == (seq == 0)


def test_the_standalone_script_requires_the_signers(tmp_path: Path) -> None:
    good = tmp_path / "proof.json"
    good.write_text(encode_proof(inclusion()))
    done = script(good, VKEY)
    assert done.returncode == 2
    assert "--signers" in done.stderr
    assert "Traceback" not in done.stderr
