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

from schemas.audit import FeedRead, encode_record, leaf_data, seal_record
from schemas.audit_proof import (
    CONSISTENCY,
    INCLUSION,
    MAX_PROOF_BYTES,
    ConsistencyProof,
    InclusionProof,
    LeafProof,
    encode_proof,
    parse_proof,
)
from schemas.checkpoint import Checkpoint, note_verifier_key, sign_checkpoint
from schemas.errors import LiaisonError
from schemas.keys import AUDIT, READER, SigningKey
from schemas.merkle import ProofError, consistency_proof, inclusion_proof, leaf_hash, root
from services.auditor import check_proof  # pure: what the CLI runs, with no I/O

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "test.liaison.audit"
KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))), AUDIT)
VKEY = note_verifier_key(ORIGIN, KEY.public_raw)
OTHER = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))), AUDIT)
READER_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34))), READER)
EVENT = uuid.UUID("6f1c0d2e-0c5e-4e0e-9b1e-2b0b1c8d6e77")
ELSEWHERE = uuid.UUID("0b0b2d4c-7d0a-4f43-8d4e-6a1c1d7f0a11")
AT = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


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
    lines = check_proof(parse_proof(text), VKEY)
    assert lines[0] == f"checkpoint {ORIGIN} size 7: signature OK"
    assert lines[1] == (
        "leaf 2: feed.read by analyst:a.khan at 2026-11-22T12:00:00+00:00"
        f" (signed by key {READER_KEY.keyid}): included"
    )
    assert lines[2].startswith("leaf 5: feed.read")
    assert len(lines) == 3


def test_a_consistency_proof_round_trips_and_verifies() -> None:
    document = consistency()
    assert parse_proof(encode_proof(document)) == document
    assert check_proof(document, VKEY) == [
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
            check_proof(parse_proof(json.dumps(forged)), VKEY)
    with pytest.raises(ProofError):
        check_proof(consistency(3, 7).model_copy(update={"proof": ("00" * 32,)}), VKEY)


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
        check_proof(document, VKEY)


def test_an_inclusion_proof_about_another_event_verifies_for_that_event() -> None:
    assert check_proof(inclusion(seqs=(3,), event=ELSEWHERE), VKEY)[1].startswith("leaf 3:")


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
        check_proof(document, VKEY)


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
    done = check_proof_cli(good, "--key", VKEY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "OK"
    forged = tmp_path / "forged.json"
    forged.write_bytes(changed(GOOD, ("proofs", 0, "proof", 0), "00" * 32))
    refused = check_proof_cli(forged, "--key", VKEY)
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
    done = check_proof_cli(edited, "--key", VKEY)
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
    done = script(good, VKEY)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "OK: 2 record(s) about the event in the log of size 7"
    assert f"signed by key {READER_KEY.keyid}" in done.stdout
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
        refused = script(bad, VKEY)
        assert refused.returncode != 0, name
        assert "Traceback" not in refused.stderr, name
        assert "OK" not in refused.stdout, name


def test_the_standalone_script_requires_the_verifier_key(tmp_path: Path) -> None:
    good = tmp_path / "proof.json"
    good.write_text(encode_proof(inclusion()))
    done = script(good)
    assert done.returncode == 2
    assert "VERIFIER_KEY" in done.stderr
    assert "Traceback" not in done.stderr
