"""Checkpoints: the audit log's signed tree heads, as C2SP tlog-checkpoint signed notes.

A checkpoint commits to the whole log at one size (c2sp.org/tlog-checkpoint). Its body is
three or more non-empty lines; it is published as a signed note (c2sp.org/signed-note,
as golang.org/x/mod/sumdb/note writes it) with Ed25519::

    liaison.example/audit                           origin: which log
    8                                               size: decimal, no leading zeros
    XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=    root: base64 of the Merkle root
                                                    (a blank line)
    — liaison.example/audit <base64(key hash || Ed25519 signature of the text)>

The key hash is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key), so
a verifier finds its key's line by name and hash and ignores every other signer's
(witnesses may cosign). ``note_verifier_key`` gives the "<name>+<hash>+<key>" string an
auditor keeps offline; ``parse_verifier_key`` reads it back.

Parsing is strict: anything the specifications do not allow raises ``CheckpointError``
naming what is wrong. ``verify_checkpoint`` verifies the exact body bytes before it
parses the body, and refuses the note unless the named key's signature verifies.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.errors import LiaisonError
from schemas.keys import SigningKey

__all__ = [
    "MAX_SIGNATURES",
    "Checkpoint",
    "CheckpointError",
    "NoteSignature",
    "note_key_hash",
    "note_verifier_key",
    "open_note",
    "parse_signed_note",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
    "verify_note",
]

MAX_SIGNATURES: Final = 100
"""Most signature lines a note may carry (the signed-note spec requires accepting 16;
golang.org/x/mod/sumdb/note stops at 100, so a hostile note cannot make us spin)."""

_ED25519: Final = b"\x01"  # the signed-note signature type byte for Ed25519
_KEY_HASH_SIZE: Final = 4
_ROOT_SIZE: Final = 32
_PUBLIC_KEY_SIZE: Final = 32
_SIGNATURE_SIZE: Final = 64
_MAX_SIZE: Final = 2**64 - 1  # tree sizes are uint64 everywhere else (Go, Trillian)
_DASH: Final = "\u2014 "  # em dash and space open every signature line
# ASCII only: int() would take "٣" or "1_0"; at most 20 digits (2^64 - 1 has 20), so a
# hostile size never reaches int()'s own digit limit (a ValueError, not a CheckpointError).
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]{0,19}")
_HEX_KEY_HASH: Final = re.compile(r"[0-9a-fA-F]{8}")


class CheckpointError(LiaisonError, ValueError):
    """A checkpoint or signed note is malformed or its signature does not verify."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: which log (``origin``), how many leaves, their Merkle root.

    ``extensions`` are optional opaque extra lines; the spec discourages them, as
    monitors cannot audit them.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line("origin", self.origin)
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError(f"checkpoint size is a {type(self.size).__name__}, not an int")
        if not 0 <= self.size <= _MAX_SIZE:
            raise CheckpointError(f"checkpoint size {self.size} is not between 0 and 2^64 - 1")
        if not isinstance(self.root, bytes) or len(self.root) != _ROOT_SIZE:
            got = f"{len(self.root)} bytes" if isinstance(self.root, bytes) else "not bytes"
            raise CheckpointError(f"checkpoint root is {got}, a Merkle root is {_ROOT_SIZE}")
        if not isinstance(self.extensions, tuple):
            raise CheckpointError("checkpoint extensions must be a tuple of lines")
        for i, line in enumerate(self.extensions, start=1):
            _check_line(f"extension line {i}", line)

    def body(self) -> str:
        """The note text, exactly as c2sp.org/tlog-checkpoint lays it out."""
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """The checkpoint a note text states; raises ``CheckpointError`` if malformed."""
        if not body.endswith("\n"):
            raise CheckpointError("checkpoint text does not end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:  # noqa: PLR2004 - origin, size and root
            raise CheckpointError(
                f"checkpoint has {len(lines)} line(s); it needs an origin, a size and a root"
            )
        for number, line in enumerate(lines, start=1):
            if not line:
                raise CheckpointError(f"checkpoint line {number} is empty")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise CheckpointError(
                "checkpoint size is not a decimal number (at most 20 digits) without leading zeros"
            )
        root = _b64decode("checkpoint root", root_text)
        return cls(origin, int(size_text), root, tuple(extensions))


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a signed note, verified or not."""

    name: str
    key_hash: bytes
    """The 4-byte key hash (the signed-note "key ID") naming which key signed."""
    signature: bytes
    """The signature itself, without the key hash."""

    def line(self) -> str:
        """The signature line as it appears in the note, newline included."""
        data = base64.b64encode(self.key_hash + self.signature).decode("ascii")
        return f"{_DASH}{self.name} {data}\n"


def note_key_hash(key_name: str, public_raw: bytes) -> bytes:
    """The 4-byte key hash of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    _check_key_name(key_name)
    _check_public_key(public_raw)
    digest = hashlib.sha256(key_name.encode() + b"\n" + _ED25519 + public_raw).digest()
    return digest[:_KEY_HASH_SIZE]


def note_verifier_key(key_name: str, public_raw: bytes) -> str:
    """The verifier key "<name>+<hex key hash>+<base64(0x01 || key)>" for auditors."""
    key_hash = note_key_hash(key_name, public_raw).hex()
    return f"{key_name}+{key_hash}+{base64.b64encode(_ED25519 + public_raw).decode('ascii')}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes]:
    """The key name and raw Ed25519 public key in a verifier key; checks its key hash."""
    # The name holds no "+" but the base64 key may, so only the first two separate fields.
    parts = vkey.split("+", 2)
    if len(parts) != 3:  # noqa: PLR2004 - name, hash, key
        raise CheckpointError("verifier key is not <name>+<key hash>+<key>")
    name, hash_text, key_text = parts
    _check_key_name(name)
    if not _HEX_KEY_HASH.fullmatch(hash_text):
        raise CheckpointError("verifier key hash is not 8 hexadecimal digits")
    key = _b64decode("verifier key", key_text)
    if key[:1] != _ED25519:
        raise CheckpointError("verifier key is not an Ed25519 (type 0x01) key")
    public_raw = key[1:]
    _check_public_key(public_raw)
    if note_key_hash(name, public_raw) != bytes.fromhex(hash_text):
        raise CheckpointError("verifier key hash does not match its name and key")
    return name, public_raw


def sign_note(body: str, key: SigningKey, key_name: str) -> str:
    """A signed note: ``body``, a blank line, and one Ed25519 signature line by ``key``."""
    if not body.endswith("\n"):
        raise CheckpointError("note text does not end with a newline")
    _check_characters("note text", body)
    signature = NoteSignature(
        name=key_name,
        key_hash=note_key_hash(key_name, key.public_raw),
        signature=key.sign(body.encode()),
    )
    return f"{body}\n{signature.line()}"


def sign_checkpoint(cp: Checkpoint, key: SigningKey, key_name: str) -> str:
    """The checkpoint as a note signed by ``key`` under ``key_name`` (normally the origin)."""
    return sign_note(cp.body(), key, key_name)


def open_note(text: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and signature lines, checking only the syntax.

    Nothing is verified: the text must not be trusted until ``verify_note`` succeeds.
    """
    note = _as_text(text)
    _check_characters("note", note)
    # The text may itself hold blank lines; the signatures follow the last one.
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("note has no blank line between its text and its signatures")
    body, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise CheckpointError("note has no signature lines")
    if not block.endswith("\n"):
        raise CheckpointError("note's last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"note has {len(lines)} signature lines, over {MAX_SIGNATURES}")
    return body, [_parse_signature_line(number, line) for number, line in enumerate(lines, 1)]


def parse_signed_note(text: str | bytes) -> tuple[Checkpoint, list[NoteSignature]]:
    """The checkpoint and signature lines of a signed note, unverified; strict syntax."""
    body, signatures = open_note(text)
    return Checkpoint.parse(body), signatures


def verify_note(text: str | bytes, public_key_raw: bytes, key_name: str) -> str:
    """The note's text, once a signature by this key verifies over its exact bytes.

    Lines by other keys are ignored (witnesses may cosign). Every line carrying this key's
    name and key hash must verify, and at least one must be present.
    """
    body, signatures = open_note(text)
    key_hash = note_key_hash(key_name, public_key_raw)
    ours = [s for s in signatures if s.name == key_name and s.key_hash == key_hash]
    if not ours:
        raise CheckpointError(f"note has no signature by key {key_name}+{key_hash.hex()}")
    verifier = Ed25519PublicKey.from_public_bytes(public_key_raw)
    message = body.encode()
    for signature in ours:
        if len(signature.signature) != _SIGNATURE_SIZE:
            raise CheckpointError(
                f"signature by {key_name} is {len(signature.signature)} bytes, "
                f"an Ed25519 signature is {_SIGNATURE_SIZE}"
            )
        try:
            verifier.verify(signature.signature, message)
        except InvalidSignature:
            raise CheckpointError(
                f"signature by {key_name} does not verify over the note text"
            ) from None
    return body


def verify_checkpoint(
    text: str | bytes, public_key_raw: bytes, key_name: str, *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint, once this key's signature verifies; raises ``CheckpointError``.

    Pass ``origin`` to also require the checkpoint to be from that log: one key could
    sign for several logs.
    """
    cp = Checkpoint.parse(verify_note(text, public_key_raw, key_name))
    if origin is not None and cp.origin != origin:
        raise CheckpointError(f"checkpoint is from {cp.origin!r}, not {origin!r}")
    return cp


def _parse_signature_line(number: int, line: str) -> NoteSignature:
    if not line.startswith(_DASH):
        raise CheckpointError(
            f"signature line {number} does not start with an em dash (U+2014) and a space"
        )
    name, space, data = line[len(_DASH) :].partition(" ")
    if not space:
        raise CheckpointError(f"signature line {number} has no space after the key name")
    _check_key_name(name, f"signature line {number}: ")
    raw = _b64decode(f"signature line {number}", data)
    if len(raw) <= _KEY_HASH_SIZE:
        raise CheckpointError(f"signature line {number} holds a key hash but no signature")
    return NoteSignature(name, raw[:_KEY_HASH_SIZE], raw[_KEY_HASH_SIZE:])


def _as_text(text: str | bytes) -> str:
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError("note is not valid UTF-8") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CheckpointError("note is not valid UTF-8") from None
    return text


def _check_characters(what: str, text: str) -> None:
    # The signed-note spec forbids every ASCII control character except newline, so a
    # note cannot smuggle a carriage return or a NUL past a human reader.
    for i, char in enumerate(text):
        if char < " " and char != "\n":
            raise CheckpointError(f"{what} holds control character {char!r} at offset {i}")


def _check_line(what: str, line: str) -> None:
    if not isinstance(line, str) or not line:
        raise CheckpointError(f"checkpoint {what} is empty")
    if "\n" in line:
        raise CheckpointError(f"checkpoint {what} holds a newline")
    _check_characters(f"checkpoint {what}", line)


def _check_key_name(name: str, where: str = "") -> None:
    if not name:
        raise CheckpointError(f"{where}key name is empty")
    if any(c.isspace() or c < " " for c in name):
        raise CheckpointError(f"{where}key name {name!r} holds a space or control character")
    if "+" in name:
        raise CheckpointError(f"{where}key name {name!r} holds a plus sign")


def _check_public_key(public_raw: bytes) -> None:
    if not isinstance(public_raw, bytes) or len(public_raw) != _PUBLIC_KEY_SIZE:
        got = f"{len(public_raw)} bytes" if isinstance(public_raw, bytes) else "not bytes"
        raise CheckpointError(f"public key is {got}, an Ed25519 key is {_PUBLIC_KEY_SIZE}")


def _b64decode(what: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise CheckpointError(f"{what} is not standard base64") from None
    # Only the canonical spelling is accepted: otherwise a line could change (unused
    # padding bits, say) and still verify, and two notes would carry one signature.
    if base64.b64encode(raw).decode("ascii") != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw
