"""Check a Liaison audit inclusion proof offline, without Liaison: Python and `cryptography`.

Usage: python docs/check_proof.py PROOF.json VERIFIER_KEY --signers KEYS.json
                                  [--envelope EVENT.dsse] [--public-key BASE64]

VERIFIER_KEY is the audit log's signed-note verifier key, obtained independently of the
proof (from the operator: `liaison audit verifier-key`), never from the proof itself:
"<name>+<8 hex key hash>+<base64(0x01 || public key)>". KEYS.json is the signers' public
keys, also obtained independently (the JSON `liaison keys export` prints).

Checks: the checkpoint is signed by that key; every leaf is in the tree the checkpoint
commits to (RFC 9162); every leaf is an audit record (a DSSE envelope) signed by a key in
KEYS.json, whose owner may sign for the record's actor, valid at the record's time, and
whose record names the event the proof is about (anyone can append to the log, so
inclusion alone proves nothing about who wrote a record). With --envelope (an event
exported by `liaison replay --export`), also that the envelope is that event, and with
--public-key (the publisher's raw Ed25519 public key, base64) that its DSSE signature
verifies. Limit: a proof holds no append time, so a key is checked at the time the record
claims; a record back-dated by a key's holder to before the key's revocation passes here
(`liaison audit verify`, which sees append times, reports it as an invalid leaf).
Exit code 0 when everything verifies, 1 when anything does not, 2 on a usage error.
"""

import argparse
import base64
import datetime as dt
import hashlib
import json
import sys
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

RECORD_TYPE = "uk.liaison.audit.record.v1"
# schemas.keys.entitled: which key owner may sign a record for which actor kind; an
# inspectorate's key signs only for "inspectorate:<itself>".
ACTOR_KIND = {
    "liaison": "router", "audit": "audit", "reader": "analyst", "auditor": "auditor",
    "operator": "operator",
}  # fmt: skip
INSPECTORATES = {"ofsted", "cqc", "hmicfrs", "hmi_probation", "hmi_prisons"}


class FailedError(Exception):
    """The proof does not prove what it claims."""


def check_note(note: str, vkey: str) -> tuple[int, bytes]:
    """Verify the C2SP signed note; return the checkpoint's size and root."""
    name, key_hash, key = vkey.split("+", 2)
    raw = base64.b64decode(key)[1:]  # drop the 0x01 (Ed25519) algorithm byte
    body, _, signatures = note.partition("\n\n")
    body += "\n"
    for line in signatures.splitlines():
        signer, _, blob = line.removeprefix("\u2014 ").rpartition(" ")
        sig = base64.b64decode(blob)
        if signer == name and sig[:4].hex() == key_hash:
            Ed25519PublicKey.from_public_bytes(raw).verify(sig[4:], body.encode())
            _, size, root = body.splitlines()[:3]
            return int(size), base64.b64decode(root)
    raise FailedError("the checkpoint has no signature by that key")


def root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to."""
    if not 0 <= index < size:
        raise FailedError("leaf index outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise FailedError("proof too long")
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise FailedError("proof too short")
    return r


def dsse(envelope_bytes: bytes) -> tuple[str, bytes, str, bytes]:
    """A one-signature DSSE envelope's payloadType, payload, keyid and signature."""
    envelope = json.loads(envelope_bytes)
    (signature,) = envelope["signatures"]
    payload = base64.b64decode(envelope["payload"], validate=True)
    return envelope["payloadType"], payload, signature["keyid"], base64.b64decode(signature["sig"])


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def entitled(owner: str, actor: str) -> bool:
    """Whether a key of ``owner`` may sign an audit record whose actor is ``actor``."""
    kind, colon, name = actor.partition(":")
    if not colon or not name:
        return False
    if owner in ACTOR_KIND:
        return kind == ACTOR_KIND[owner]
    return owner in INSPECTORATES and kind == "inspectorate" and name == owner


def when(text: str | None) -> dt.datetime | None:
    """An RFC 3339 time (with an offset) as an aware datetime."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise FailedError("a time is not an RFC 3339 date-time") from None
    if value.tzinfo is None:
        raise FailedError("a time has no offset")
    return value


def load_signers(path: str) -> dict:
    """The signers' keys (``liaison keys export``'s JSON), by key id."""
    with open(path, "rb") as file:  # noqa: PTH123 - a short script
        keys = json.load(file)["keys"]
    found = {}
    for key in keys:
        raw = base64.b64decode(key["public_key"], validate=True)
        if hashlib.sha256(raw).hexdigest() != key["keyid"]:
            raise FailedError("a key in the signers' file does not match its keyid")
        found[key["keyid"]] = key
    if not found:
        raise FailedError("the signers' file holds no key")
    return found


def check_signer(seq: int, value: bytes, record: dict, signers: dict) -> dict:
    """The key that signed leaf ``seq``: in ``signers``, signature OK, entitled to the
    record's actor, valid at the record's ``at``; ``FailedError`` otherwise."""
    payload_type, payload, keyid, sig = dsse(value)
    key = signers.get(keyid)
    if key is None:
        raise FailedError(f"leaf {seq}: its signer's key is not in the signers' file")
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
        public.verify(sig, pae(payload_type, payload))
    except InvalidSignature:
        raise FailedError(f"leaf {seq}: its signature does not verify") from None
    if not entitled(key["owner"], record["actor"]):
        raise FailedError(f"leaf {seq}: a key of {key['owner']} may not sign for its actor")
    at = when(record["at"])
    revoked_at, valid_until = when(key.get("revoked_at")), when(key.get("valid_until"))
    if (
        at < when(key["valid_from"])
        or (revoked_at is not None and at >= revoked_at)
        or (valid_until is not None and at >= valid_until)
    ):
        raise FailedError(f"leaf {seq}: its signer's key was not valid at the record's time")
    return key


def check_leaf(item: dict, size: int, root: bytes, event_id: str, signers: dict) -> dict:
    """Verify one leaf's inclusion, its signer, and that its record names ``event_id``."""
    data = base64.b64decode(item["leaf"], validate=True)
    leaf = hashlib.sha256(b"\x00" + data).digest()
    path = [bytes.fromhex(h) for h in item["proof"]]
    if root_from_path(item["seq"], size, leaf, path) != root:
        raise FailedError(f"leaf {item['seq']} is not in the checkpointed log")
    seq, _, value = data.partition(b"\n")
    if seq != str(item["seq"]).encode():
        raise FailedError(f"leaf {item['seq']}: its data holds another sequence number")
    try:
        payload_type, payload, keyid, _ = dsse(value)
    except (ValueError, KeyError, TypeError):
        raise FailedError(f"leaf {item['seq']} is not a signed audit record") from None
    if payload_type != RECORD_TYPE:
        raise FailedError(f"leaf {item['seq']} is not a signed audit record")
    record = json.loads(payload)
    if not isinstance(record, dict) or not isinstance(record.get("actor"), str):
        raise FailedError(f"leaf {item['seq']} does not hold an audit record")
    key = check_signer(item["seq"], value, record, signers)
    if event_id not in [str(uuid.UUID(e)) for e in record.get("event_ids", [])]:
        raise FailedError(f"leaf {item['seq']}'s record does not concern event {event_id}")
    print(  # noqa: T201
        f"leaf {item['seq']}: {record['action']} by {record['actor']} at {record['at']}"
        f" (signed by key {keyid}, owner {key['owner']}: signature OK): included"
    )
    record["_keyid"] = keyid
    return record


def check_envelope(path: str, event_id: str, public_key: str | None, records: list) -> None:
    """The exported envelope is the proven event; with a key, its signature verifies."""
    with open(path, "rb") as file:  # noqa: PTH123 - a short script
        payload_type, payload, keyid, sig = dsse(file.read())
    if str(uuid.UUID(json.loads(payload)["id"])) != event_id:
        raise FailedError("the envelope is not the event the proof is about")
    published = [r for r in records if r["action"] == "event.published"]
    if published and keyid not in [r["keyid"] for r in published]:
        raise FailedError("the envelope's key is not the one its event.published record names")
    if public_key is not None:
        raw = base64.b64decode(public_key, validate=True)
        if hashlib.sha256(raw).hexdigest() != keyid:
            raise FailedError("the public key given is not the envelope's signing key")
        Ed25519PublicKey.from_public_bytes(raw).verify(sig, pae(payload_type, payload))
        print(f"envelope {path}: signature by key {keyid} OK")  # noqa: T201
    else:
        print(f"envelope {path}: event {event_id}, signed by key {keyid} (not checked)")  # noqa: T201


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("proof", metavar="PROOF")
    parser.add_argument("verifier_key", metavar="VERIFIER_KEY")
    parser.add_argument(
        "--signers", required=True, metavar="KEYS.json",
        help="the signers' public keys, obtained out of band (`liaison keys export`)",
    )  # fmt: skip
    parser.add_argument("--envelope", help="an exported event envelope to match")
    parser.add_argument("--public-key", help="the publisher's Ed25519 public key (base64)")
    args = parser.parse_args()
    try:
        count, size = check(args)
    except (FailedError, InvalidSignature, OSError, ValueError, LookupError, TypeError,
            AttributeError) as exc:  # fmt: skip
        print(f"FAILED: {exc or type(exc).__name__}", file=sys.stderr)  # noqa: T201
        return 1
    print(f"OK: {count} record(s) about the event in the log of size {size}")  # noqa: T201
    print(  # noqa: T201
        "limit: keys were checked at each record's own time (a proof holds no append"
        " time): a record back-dated by a key's holder to before the key's revocation"
        " passes here; `liaison audit verify` (which sees append times) reports it"
    )
    return 0


def check(args: argparse.Namespace) -> tuple[int, int]:
    """Every check; the number of records proven and the checkpoint's size."""
    with open(args.proof, "rb") as file:  # noqa: PTH123 - a short script
        document = json.load(file)
    if document.get("type") != "liaison.audit.inclusion_proof.v1":
        raise FailedError("not an inclusion proof")
    event_id = str(uuid.UUID(document["event_id"]))
    signers = load_signers(args.signers)
    size, root = check_note(document["checkpoint"], args.verifier_key)
    if not document["proofs"]:
        raise FailedError("the proof holds no record: it proves nothing")
    records = [check_leaf(item, size, root, event_id, signers) for item in document["proofs"]]
    if args.envelope:
        check_envelope(args.envelope, event_id, args.public_key, records)
    return len(records), size


if __name__ == "__main__":
    sys.exit(main())
