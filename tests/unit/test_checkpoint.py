"""Signed checkpoints: known answers, published vectors, tampering, strict parsing."""

from __future__ import annotations

import base64
import contextlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from schemas.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointError,
    NoteSignature,
    note_key_hash,
    note_verifier_key,
    open_note,
    parse_signed_note,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    verify_note,
)
from schemas.errors import LiaisonError
from schemas.keys import AUDIT, SigningKey
from schemas.merkle import leaf_hash


def key_from_seed(seed: bytes) -> SigningKey:
    return SigningKey(Ed25519PrivateKey.from_private_bytes(seed), AUDIT)


def key_from_note_skey(skey: str) -> SigningKey:
    """The key in a golang.org/x/mod/sumdb/note signer key "PRIVATE+KEY+name+hash+key"."""
    encoded = skey.split("+", 4)[4]
    return key_from_seed(base64.b64decode(encoded)[1:])


# RFC 8032 section 7.1, test 1: a published Ed25519 key pair.
RFC_KEY = key_from_seed(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
)
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
OTHER_KEY = key_from_seed(bytes(range(32)))

NAME = "liaison.example/audit"
# The root of the eight-leaf RFC 6962 test tree (transparency-dev/merkle
# testonly/constants.go RootHashes()[8]).
ROOT_8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
KAT_CHECKPOINT = Checkpoint(NAME, 8, ROOT_8)
# Pinned byte for byte. Ed25519 is deterministic, so this never changes; it was also
# opened and verified by golang.org/x/mod v0.42.0 sumdb/note.Open with the verifier key
# below, which NewEd25519VerifierKey derived identically.
KAT_NOTE = (
    "liaison.example/audit\n"
    "8\n"
    "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    "\n"
    "\u2014 liaison.example/audit "
    "Li14GFfNfLRRTuon53HiMbSsdT1YFSXhTkof9WFMBV7RwaSSVRWf9xAbc+XZcxROYb0WZj1tdHSX7Gz87slqePMc8wM=\n"
)
KAT_VKEY = "liaison.example/audit+2e2d7818+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea"

# golang.org/x/mod, sumdb/note/note_test.go (TestSign, TestOpen, TestNewVerifier).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
PETER_SIG = f"\u2014 PeterNeumann {PETER_B64}\n"
ENOCH_SIG = (
    "\u2014 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

# transparency-dev/formats, log/note_test.go: verifier and signer key pairs, and a real
# checkpoint of the Go checksum database signed by sum.golang.org (TestSumDBNoteParsing).
FORMATS_KEYS = [
    (
        "Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs",
        "PRIVATE+KEY+Log+2271c621+AdEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ",
    ),
    (
        "Known+451c786d+AXAQ0T7lbwuY4ABJ9/MYY9bWV3hmSyOGVt2x42NkmdUH",
        "PRIVATE+KEY+Known+451c786d+AQPRoE2+Z+Ed1HaHBA9F/FfracvcZ2rDU39kCecMEoci",
    ),
    (
        "KnownAgain+4893b26c+AQ+LR7BFF/F/dkpIBjBpSvT0crkteizuUkavAoGeaYMj",
        "PRIVATE+KEY+KnownAgain+4893b26c+ARhZda/l25zjGZswYLDZsLNRzNpmv5wYTN9IoTr1OJ2+",
    ),
    (
        "Unknown+fdbb2e08+AWgRIYZ+8x1Vl+1Q+sR8zciNHiYI1SdlBjNw+RV0rots",
        "PRIVATE+KEY+Unknown+fdbb2e08+Aav2knTC6orbhXX8pMWuNiWgO+Wwk2DB+h1eU2Q1W1nU",
    ),
]
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_CHECKPOINT = (
    "go.sum database tree\n"
    "6476701\n"
    "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    "\n"
    "\u2014 sum.golang.org "
    "Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n"
)


# Known answers.


def test_rfc_8032_key_is_the_published_one() -> None:
    assert RFC_KEY.public_raw == RFC_PUBLIC


def test_signed_checkpoint_is_pinned_byte_for_byte() -> None:
    assert (
        KAT_CHECKPOINT.body()
        == "liaison.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    )
    assert sign_checkpoint(KAT_CHECKPOINT, RFC_KEY, NAME) == KAT_NOTE


def test_verifier_key_is_pinned() -> None:
    assert note_verifier_key(NAME, RFC_PUBLIC) == KAT_VKEY
    assert note_key_hash(NAME, RFC_PUBLIC) == bytes.fromhex("2e2d7818")
    assert parse_verifier_key(KAT_VKEY) == (NAME, RFC_PUBLIC)


def test_known_answer_verifies_and_parses() -> None:
    assert verify_checkpoint(KAT_NOTE, RFC_PUBLIC, NAME, origin=NAME) == KAT_CHECKPOINT
    assert verify_checkpoint(KAT_NOTE.encode(), RFC_PUBLIC, NAME) == KAT_CHECKPOINT
    cp, signatures = parse_signed_note(KAT_NOTE)
    assert cp == KAT_CHECKPOINT
    assert len(signatures) == 1
    assert signatures[0].name == NAME
    assert signatures[0].key_hash == bytes.fromhex("2e2d7818")
    assert len(signatures[0].signature) == 64
    assert signatures[0].line() == KAT_NOTE.split("\n\n")[1]


# Published vectors.


def test_go_note_signature_is_reproduced_byte_for_byte() -> None:
    # golang.org/x/mod sumdb/note/note_test.go TestSign.
    peter = key_from_note_skey(PETER_SKEY)
    assert note_verifier_key("PeterNeumann", peter.public_raw) == PETER_VKEY
    assert sign_note(GO_TEXT, peter, "PeterNeumann") == GO_TEXT + "\n" + PETER_SIG


def test_go_note_with_two_signers_verifies_for_each() -> None:
    # golang.org/x/mod sumdb/note/note_test.go TestOpen.
    text = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    for vkey in (PETER_VKEY, ENOCH_VKEY):
        name, public = parse_verifier_key(vkey)
        assert verify_note(text, public, name) == GO_TEXT
    body, signatures = open_note(text)
    assert body == GO_TEXT
    assert [(s.name, s.key_hash.hex()) for s in signatures] == [
        ("PeterNeumann", "c74f20a3"),
        ("EnochRoot", "af0cfe78"),
    ]


def test_go_note_with_a_corrupted_signature_is_refused() -> None:
    # TestOpen "Invalid signature": four characters spliced into the base64.
    name, public = parse_verifier_key(PETER_VKEY)
    bad = GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(CheckpointError, match="signature by PeterNeumann"):
        verify_note(bad, public, name)


@pytest.mark.parametrize(
    "message",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        GO_TEXT + "\n" + f"\u2014 Bad Name {PETER_B64}",
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1),
    ],
)
def test_go_malformed_notes_are_refused(message: str) -> None:
    # TestOpen "Invalid encoded message syntax" and "too many signatures".
    with pytest.raises(CheckpointError):
        open_note(message)


def test_go_malformed_note_bytes_are_refused() -> None:
    # From TestOpen: a leading 0xff byte makes the note invalid UTF-8.
    with pytest.raises(CheckpointError, match="UTF-8"):
        open_note(b"\xff" + (GO_TEXT + "\n" + PETER_SIG).encode())


def test_every_mangled_go_verifier_key_is_refused() -> None:
    # golang.org/x/mod sumdb/note/note_test.go TestNewVerifier: every proper substring and
    # every single-character increment of a verifier key must be refused.
    assert parse_verifier_key(PETER_VKEY)[0] == "PeterNeumann"
    mangled = {
        PETER_VKEY[i:j]
        for i in range(len(PETER_VKEY) + 1)
        for j in range(i + 1, len(PETER_VKEY) + 1)
        if (i, j) != (0, len(PETER_VKEY))
    }
    mangled |= {
        PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        for i in range(len(PETER_VKEY))
    }
    mangled |= {
        # Wrong-length key and unknown algorithm, each with a recomputed key hash.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    }
    accepted = [vkey for vkey in sorted(mangled) if _accepts_vkey(vkey)]
    assert accepted == []


def _accepts_vkey(vkey: str) -> bool:
    try:
        parse_verifier_key(vkey)
    except CheckpointError:
        return False
    return True


@pytest.mark.parametrize(("vkey", "skey"), FORMATS_KEYS)
def test_formats_key_pairs_give_their_published_verifier_keys(vkey: str, skey: str) -> None:
    name = vkey.split("+", maxsplit=1)[0]
    key = key_from_note_skey(skey)
    assert note_verifier_key(name, key.public_raw) == vkey
    assert parse_verifier_key(vkey) == (name, key.public_raw)


def test_a_real_sum_golang_org_checkpoint_verifies() -> None:
    # transparency-dev/formats log/note_test.go TestSumDBNoteParsing.
    name, public = parse_verifier_key(SUMDB_VKEY)
    cp = verify_checkpoint(SUMDB_CHECKPOINT, public, name, origin="go.sum database tree")
    assert cp.origin == "go.sum database tree"
    assert cp.size == 6476701
    assert cp.root == base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=")
    with pytest.raises(CheckpointError, match="not 'Go rocks"):
        verify_checkpoint(SUMDB_CHECKPOINT, public, name, origin="Go rocks")


def test_go_tree_note_body_matches() -> None:
    # golang.org/x/mod sumdb/tlog/note_test.go TestFormatTree: RecordHash is the RFC 6962
    # leaf hash.
    golden = "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n"
    cp = Checkpoint("go.sum database tree", 123456789012, leaf_hash(b"hello world"))
    assert cp.body() == golden
    assert Checkpoint.parse(golden) == cp


@pytest.mark.parametrize(
    "body",
    [
        # transparency-dev/formats log/checkpoint_test.go TestUnmarshalLogState invalid
        # cases, and golang.org/x/mod sumdb/tlog/note_test.go TestParseTree bad trees.
        "Head\n9944\n",
        "\n9944\ndGhlIHZpZXcgZnJvbSB0aGUgdHJlZSB0b3BzIGlzIGdyZWF0IQ==\n",
        "Log\n123\nYmFuYW5hcw==",
        "Log\nbananas\ndGhlIHZpZXcgZnJvbSB0aGUgdHJlZSB0b3BzIGlzIGdyZWF0IQ==\n",
        "Log\n-34\ndGhlIHZpZXcgZnJvbSB0aGUgdHJlZSB0b3BzIGlzIGdyZWF0IQ==\n",
        "Log\n3438945738945739845734895735\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "Log\n123\nThisIsn'tBase64\n",
        "go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n",
        # The formats package accepts any hash length; a Merkle root here is 32 bytes.
        "Log\n123\nYmFuYW5hcw==\n",
    ],
)
def test_published_bad_checkpoint_bodies_are_refused(body: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(body)


# Round trips.

line_text = st.text(st.characters(codec="utf-8", min_codepoint=0x20), min_size=1, max_size=30)
key_names = st.text(
    st.characters(
        codec="utf-8", exclude_categories=["Zs", "Zl", "Zp", "Cc"], exclude_characters="+"
    ),
    min_size=1,
    max_size=30,
).filter(lambda s: not any(c.isspace() for c in s))
checkpoints = st.builds(
    Checkpoint,
    origin=line_text,
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(line_text, max_size=3).map(tuple),
)


@given(checkpoints, key_names)
def test_sign_parse_verify_round_trip(cp: Checkpoint, name: str) -> None:
    note = sign_checkpoint(cp, RFC_KEY, name)
    parsed, signatures = parse_signed_note(note)
    assert parsed == cp
    assert [s.name for s in signatures] == [name]
    assert verify_checkpoint(note, RFC_PUBLIC, name) == cp
    assert parse_verifier_key(note_verifier_key(name, RFC_PUBLIC)) == (name, RFC_PUBLIC)


def test_a_signed_size_too_long_to_be_a_tree_size_is_refused_not_raised_on() -> None:
    # int() refuses over 4300 digits with a ValueError; the parser must stop well before.
    for digits in (21, 5000):
        body = f"{NAME}\n{'9' * digits}\n{base64.b64encode(ROOT_8).decode()}\n"
        note = sign_note(body, RFC_KEY, NAME)
        with pytest.raises(CheckpointError, match="at most 20 digits"):
            verify_checkpoint(note, RFC_PUBLIC, NAME)
    assert Checkpoint.parse(Checkpoint(NAME, 2**64 - 1, ROOT_8).body()).size == 2**64 - 1


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_any_input_is_a_checkpoint_or_one_checkpoint_error(text: str | bytes) -> None:
    # What a reader of liaison.audit.checkpoints may meet: anything anyone wrote there.
    with contextlib.suppress(CheckpointError):
        verify_checkpoint(text, RFC_PUBLIC, NAME)
    with contextlib.suppress(CheckpointError):
        parse_signed_note(text)
    if isinstance(text, str):
        with contextlib.suppress(CheckpointError):
            Checkpoint.parse(text)
        with contextlib.suppress(CheckpointError):
            parse_verifier_key(text)


def test_unknown_cosignatures_are_ignored() -> None:
    cosigned = (
        KAT_NOTE + sign_note(KAT_CHECKPOINT.body(), OTHER_KEY, "witness.example").split("\n\n")[1]
    )
    assert verify_checkpoint(cosigned, RFC_PUBLIC, NAME) == KAT_CHECKPOINT
    assert verify_checkpoint(cosigned, OTHER_KEY.public_raw, "witness.example") == KAT_CHECKPOINT


# Tampering.


@given(st.integers(0, len(KAT_NOTE.encode()) - 1), st.integers(1, 255))
def test_any_single_byte_change_is_refused(offset: int, delta: int) -> None:
    raw = bytearray(KAT_NOTE.encode())
    raw[offset] = (raw[offset] + delta) % 256
    with pytest.raises(CheckpointError):
        verify_checkpoint(bytes(raw), RFC_PUBLIC, NAME)


def test_every_single_byte_change_is_refused() -> None:
    # Exhaustive over positions (one replacement each) so no offset is left to chance.
    original = KAT_NOTE.encode()
    accepted = []
    for offset in range(len(original)):
        raw = bytearray(original)
        raw[offset] ^= 0x01
        if _accepts_note(bytes(raw)):
            accepted.append(offset)
    assert accepted == []


def _accepts_note(raw: bytes) -> bool:
    try:
        verify_checkpoint(raw, RFC_PUBLIC, NAME)
    except CheckpointError:
        return False
    return True


def test_non_canonical_signature_base64_is_refused() -> None:
    # 68 bytes of key hash and signature leave two unused bits in the last base64
    # character; setting them must not give a second accepted spelling.
    body, line = KAT_NOTE.split("\n\n")
    data = line.rstrip("\n").rsplit(" ", 1)[1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twisted = data[:-2] + alphabet[alphabet.index(data[-2]) | 1] + "="
    assert base64.b64decode(twisted) == base64.b64decode(data)
    with pytest.raises(CheckpointError, match="not canonical base64"):
        verify_checkpoint(f"{body}\n\n\u2014 {NAME} {twisted}\n", RFC_PUBLIC, NAME)


def test_wrong_key_name_is_refused() -> None:
    with pytest.raises(
        CheckpointError, match=re.escape("no signature by key liaison.example/other")
    ):
        verify_checkpoint(KAT_NOTE, RFC_PUBLIC, "liaison.example/other")


def test_wrong_key_is_refused() -> None:
    with pytest.raises(CheckpointError, match="no signature by key"):
        verify_checkpoint(KAT_NOTE, OTHER_KEY.public_raw, NAME)


def test_a_signature_by_another_key_under_our_key_hash_is_refused() -> None:
    forged = NoteSignature(
        NAME, note_key_hash(NAME, RFC_PUBLIC), OTHER_KEY.sign(KAT_CHECKPOINT.body().encode())
    )
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(f"{KAT_CHECKPOINT.body()}\n{forged.line()}", RFC_PUBLIC, NAME)


def test_one_bad_line_from_our_key_spoils_the_note() -> None:
    bad = NoteSignature(NAME, note_key_hash(NAME, RFC_PUBLIC), bytes(64))
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(KAT_NOTE + bad.line(), RFC_PUBLIC, NAME)


def test_a_short_signature_from_our_key_is_refused() -> None:
    short = NoteSignature(NAME, note_key_hash(NAME, RFC_PUBLIC), bytes(10))
    with pytest.raises(CheckpointError, match="10 bytes, an Ed25519 signature is 64"):
        verify_checkpoint(f"{KAT_CHECKPOINT.body()}\n{short.line()}", RFC_PUBLIC, NAME)


def test_a_forged_body_under_a_valid_signature_is_refused() -> None:
    line = KAT_NOTE.split("\n\n")[1]
    forged = Checkpoint(NAME, 9, ROOT_8).body()
    with pytest.raises(CheckpointError, match="does not verify over the note text"):
        verify_checkpoint(f"{forged}\n{line}", RFC_PUBLIC, NAME)


# Malformed notes and checkpoints.

KAT_BODY = KAT_CHECKPOINT.body()
KAT_LINE = KAT_NOTE.removeprefix(KAT_BODY + "\n")
GOOD_SIG = KAT_LINE.rstrip("\n").rsplit(" ", 1)[1]


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (KAT_BODY + KAT_LINE, "no blank line"),
        (KAT_BODY + "\n", "no signature lines"),
        (KAT_BODY + "\n\n", "no signature lines"),
        (KAT_BODY + "\n" + KAT_LINE.rstrip("\n"), "does not end with a newline"),
        (KAT_BODY + "\n" + KAT_LINE.replace("\u2014", "-"), "em dash"),
        (KAT_BODY + "\n" + KAT_LINE.replace("\u2014 ", "\u2014"), "em dash"),
        (KAT_BODY + "\n" + f"\u2014 {NAME}\n", "no space after the key name"),
        (KAT_BODY + "\n" + f"\u2014 {NAME} not*base64\n", "not standard base64"),
        (KAT_BODY + "\n" + f"\u2014 {NAME} {GOOD_SIG[:-1]}\n", "not standard base64"),
        (KAT_BODY + "\n" + f"\u2014 {NAME} {GOOD_SIG} \n", "not standard base64"),
        (KAT_BODY + "\n" + f"\u2014 {NAME} Li14GA==\n", "key hash but no signature"),
        (KAT_BODY + "\n" + f"\u2014 {NAME} \n", "key hash but no signature"),
        (KAT_BODY + "\n" + f"\u2014 a+b {GOOD_SIG}\n", "plus sign"),
        (KAT_BODY + "\n" + f"\u2014  {GOOD_SIG}\n", "key name is empty"),
        (KAT_NOTE.replace("\n", "\r\n"), "control character"),
        (KAT_NOTE.replace("8\n", "8\t\n", 1), "control character"),
        ("\ud800" + KAT_NOTE, "UTF-8"),
    ],
)
def test_malformed_notes_are_refused(note: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        parse_signed_note(note)
    with pytest.raises(CheckpointError, match=message):
        verify_checkpoint(note, RFC_PUBLIC, NAME)


def _signed(body: str) -> str:
    return sign_note(body, RFC_KEY, NAME)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("liaison.example/audit\n8\n", "2 line"),
        ("liaison.example/audit\n", "1 line"),
        (
            "liaison.example/audit\n\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
            "line 2 is empty",
        ),
        (
            "liaison.example/audit\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
            "leading zeros",
        ),
        ("liaison.example/audit\n-1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "decimal"),
        ("liaison.example/audit\n+8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "decimal"),
        ("liaison.example/audit\n1_0\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "decimal"),
        (
            "liaison.example/audit\n\u0668\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
            "decimal",
        ),
        ("liaison.example/audit\n 8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "decimal"),
        ("liaison.example/audit\n8.0\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "decimal"),
        (
            "liaison.example/audit\n18446744073709551616\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
            r"2\^64",
        ),
        ("liaison.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQw==\n", "31 bytes"),
        ("liaison.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyhA\n", "33 bytes"),
        (
            "liaison.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg\n",
            "standard base64",
        ),
        ("liaison.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n", "canonical"),
        ("liaison.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz-Nw7_RgQyg=\n", "base64"),
        (
            "liaison.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\nx\n",
            "line 4 is empty",
        ),
    ],
)
def test_malformed_checkpoints_are_refused_even_when_signed(body: str, message: str) -> None:
    note = _signed(body)
    with pytest.raises(CheckpointError, match=message):
        parse_signed_note(note)
    with pytest.raises(CheckpointError, match=message):
        verify_checkpoint(note, RFC_PUBLIC, NAME)


def test_checkpoint_with_extensions_round_trips() -> None:
    cp = Checkpoint(NAME, 0, bytes(32), ("Timestamp: 1700000000", "\u2603 snow"))
    assert cp.body() == f"{NAME}\n0\n{'A' * 43}=\nTimestamp: 1700000000\n\u2603 snow\n"
    assert verify_checkpoint(sign_checkpoint(cp, RFC_KEY, NAME), RFC_PUBLIC, NAME) == cp


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"origin": ""}, "origin is empty"),
        ({"origin": "a\nb"}, "origin holds a newline"),
        ({"origin": "a\rb"}, "control character"),
        ({"size": -1}, "not between 0 and 2"),
        ({"size": 2**64}, "not between 0 and 2"),
        ({"size": True}, "bool, not an int"),
        ({"size": 8.0}, "float, not an int"),
        ({"root": bytes(31)}, "31 bytes"),
        ({"root": "root"}, "not bytes"),
        ({"extensions": ("",)}, "extension line 1 is empty"),
        ({"extensions": ("ok", "a\nb")}, "extension line 2 holds a newline"),
        ({"extensions": ["list"]}, "tuple"),
    ],
)
def test_checkpoint_refuses_impossible_fields(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"origin": NAME, "size": 8, "root": ROOT_8, **kwargs}
    with pytest.raises(CheckpointError, match=message):
        Checkpoint(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        ("a b", "space"),
        ("a\u00a0b", "space"),
        ("a+b", "plus"),
        ("a\x00b", "control"),
    ],
)
def test_bad_key_names_are_refused(name: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        sign_checkpoint(KAT_CHECKPOINT, RFC_KEY, name)
    with pytest.raises(CheckpointError, match=message):
        note_verifier_key(name, RFC_PUBLIC)


def test_bad_public_keys_and_note_texts_are_refused() -> None:
    with pytest.raises(CheckpointError, match="31 bytes, an Ed25519 key is 32"):
        verify_checkpoint(KAT_NOTE, RFC_PUBLIC[:31], NAME)
    with pytest.raises(CheckpointError, match="does not end with a newline"):
        sign_note("no newline", RFC_KEY, NAME)
    with pytest.raises(CheckpointError, match="control character"):
        sign_note("bell\x07\n", RFC_KEY, NAME)
    with pytest.raises(CheckpointError, match="not <name>"):
        parse_verifier_key("just-a-name")
    with pytest.raises(CheckpointError, match="8 hexadecimal digits"):
        parse_verifier_key("name+2e2d78+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea")


def test_checkpoint_error_is_a_liaison_value_error() -> None:
    assert issubclass(CheckpointError, LiaisonError)
    assert issubclass(CheckpointError, ValueError)
    assert not CheckpointError.retriable
