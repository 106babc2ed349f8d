"""Audit proof documents: the JSON an auditor checks offline, as closed models.

``liaison audit prove`` writes an inclusion proof (records about one event, each with
its leaf data and RFC 9162 audit path, against a signed checkpoint); ``liaison audit
consistency`` writes a consistency proof between two signed checkpoints. ``liaison
audit check-proof`` and ``docs/check_proof.py`` read them; docs/audit.md shows both.

A proof file comes from anywhere, so it is parsed before anything looks inside it:
``parse_proof`` takes any bytes and returns a typed document or raises one
``ProofError`` listing every problem with its field path (never the file's text).
Hashes are lowercase hex of 32 bytes, leaf data standard base64, numbers within int64;
a document of a type this version does not know is refused, not guessed at.

An inclusion proof is checked with the signers' public keys too, which the auditor holds
out of band (the JSON ``liaison keys export`` prints): ``parse_signers`` reads them the
same way, into a ``TrustStore``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Final, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import ErrorDetails

from schemas._problems import plain
from schemas.errors import Problem
from schemas.keys import COMPONENTS, TrustStore
from schemas.merkle import ProofError

__all__ = [
    "CONSISTENCY",
    "INCLUSION",
    "MAX_PROOF_BYTES",
    "ConsistencyProof",
    "InclusionProof",
    "LeafProof",
    "ProofDocument",
    "encode_proof",
    "parse_proof",
    "parse_signers",
]

INCLUSION: Final = "liaison.audit.inclusion_proof.v1"
"""The ``type`` of an inclusion proof document."""
CONSISTENCY: Final = "liaison.audit.consistency_proof.v1"
"""The ``type`` of a consistency proof document."""

MAX_PROOF_BYTES: Final = 16 * 1024 * 1024
"""Largest proof document read; a larger input is refused before it is parsed."""

# A tree of at most 2^64 leaves: an inclusion path has at most 64 hashes and a
# consistency proof at most 2 * 64; anything longer cannot be a proof.
_MAX_PATH: Final = 128
_MAX_NOTE: Final = 64 * 1024
_MAX_LEAF_BASE64: Final = 4 * ((64 * 1024 + 32) // 3 + 1)  # an audit record, its seq, base64
_INT64_MAX: Final = 2**63 - 1


def _standard_base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be standard base64") from None
    return value


HashHex: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Seq: TypeAlias = Annotated[int, Field(ge=0, le=_INT64_MAX)]
Note: TypeAlias = Annotated[str, StringConstraints(min_length=1, max_length=_MAX_NOTE)]
VerifierKey: TypeAlias = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
LeafBase64: TypeAlias = Annotated[
    str,
    StringConstraints(max_length=_MAX_LEAF_BASE64),
    AfterValidator(_standard_base64),
]


class _Closed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LeafProof(_Closed):
    """One leaf of an inclusion proof: its position, its exact leaf data, its audit path."""

    seq: Seq
    leaf: LeafBase64 = Field(description="base64 of the leaf data, b'<seq>\\n' + record.")
    proof: tuple[HashHex, ...] = Field(max_length=_MAX_PATH)

    def leaf_data(self) -> bytes:
        """The leaf data (checked as base64 when the document was parsed)."""
        return base64.b64decode(self.leaf, validate=True)

    def path(self) -> tuple[bytes, ...]:
        """The audit path's hashes, leaf to root."""
        return tuple(bytes.fromhex(h) for h in self.proof)


class InclusionProof(_Closed):
    """Records about one event are leaves of the tree a signed checkpoint commits to."""

    type: Literal["liaison.audit.inclusion_proof.v1"] = INCLUSION
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    checkpoint: Note
    verifier_keys: tuple[VerifierKey, ...] = Field(
        default=(), max_length=100, description="A convenience copy: never trust it as your key."
    )
    proofs: tuple[LeafProof, ...] = Field(max_length=100_000)
    not_yet_checkpointed: tuple[Seq, ...] = Field(default=(), max_length=100_000)


class ConsistencyProof(_Closed):
    """The log at the new checkpoint is the log at the old one with records appended."""

    type: Literal["liaison.audit.consistency_proof.v1"] = CONSISTENCY
    old_checkpoint: Note
    new_checkpoint: Note
    verifier_keys: tuple[VerifierKey, ...] = Field(default=(), max_length=100)
    proof: tuple[HashHex, ...] = Field(max_length=_MAX_PATH)

    def path(self) -> tuple[bytes, ...]:
        """The proof's hashes, in RFC 9162 order."""
        return tuple(bytes.fromhex(h) for h in self.proof)


ProofDocument: TypeAlias = Annotated[InclusionProof | ConsistencyProof, Field(discriminator="type")]
"""Either proof document, told apart by ``type``."""

_DOCUMENT: Final[TypeAdapter[ProofDocument]] = TypeAdapter(ProofDocument)
_TYPES: Final = (INCLUSION, CONSISTENCY)


def parse_proof(data: bytes | str) -> ProofDocument:
    """The proof document in ``data``; ``ProofError`` listing every problem if it is not one."""
    if isinstance(data, str):
        try:
            data = data.encode()
        except UnicodeEncodeError:
            raise ProofError("not a proof document: not valid UTF-8 text") from None
    if len(data) > MAX_PROOF_BYTES:
        msg = f"not a proof document: {len(data)} bytes, over the {MAX_PROOF_BYTES}-byte limit"
        raise ProofError(msg)
    try:
        return _DOCUMENT.validate_json(data, strict=True)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors(include_url=False, include_input=False)]
        shown = "; ".join(str(p) for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""  # noqa: PLR2004 - shown
        raise ProofError(f"not a proof document: {shown}{more}") from None


def _problem(error: ErrorDetails) -> Problem:
    # pydantic puts the union member's tag first in each path: drop it.
    loc = error["loc"]
    if loc and loc[0] in _TYPES:
        error["loc"] = loc[1:]
    kind = error["type"]
    if kind == "union_tag_invalid":
        return Problem("type", "must be " + " or ".join(map(repr, _TYPES)))
    if kind == "union_tag_not_found":
        return Problem("type", "is required (it says which kind of proof this is)")
    if kind == "extra_forbidden":
        return Problem(plain(error).path, "is not a field of this proof document")
    return plain(error)


def encode_proof(document: InclusionProof | ConsistencyProof) -> str:
    """The document as the indented JSON the CLI writes (a trailing newline included)."""
    return document.model_dump_json(indent=2) + "\n"


def parse_signers(data: bytes) -> TrustStore:
    """The signers' public keys in ``data`` (``liaison keys export``'s JSON);
    ``ProofError`` listing every problem (never the file's text) if it is not that."""
    if len(data) > MAX_PROOF_BYTES:
        msg = f"not a key list: {len(data)} bytes, over the {MAX_PROOF_BYTES}-byte limit"
        raise ProofError(msg)
    try:
        signers = TrustStore.model_validate_json(data)
    except ValidationError as exc:
        problems = [_key_problem(e) for e in exc.errors(include_url=False, include_input=False)]
        shown = "; ".join(str(p) for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""  # noqa: PLR2004 - shown
        raise ProofError(f"not a key list (`liaison keys export`): {shown}{more}") from None
    except (ArithmeticError, RecursionError):
        raise ProofError(
            "not a key list (`liaison keys export`): a value is out of range"
        ) from None
    if not signers.keys:
        raise ProofError("the key list holds no key: no record could be checked against it")
    return signers


def _key_problem(error: ErrorDetails) -> Problem:
    problem = plain(error)
    # The key model's own checks name an owner it refuses: word it without the input.
    if error["type"] == "value_error" and problem.reason.startswith("owner "):
        return Problem(
            problem.path, f"owner is not an inspectorate or one of {', '.join(COMPONENTS)}"
        )
    if error["type"] == "extra_forbidden":
        return Problem(problem.path, "is not a field of a key list")
    return problem
