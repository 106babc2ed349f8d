"""Check a Liaison audit inclusion proof offline, without Liaison: Python and `cryptography`.

Usage: python docs/check_proof.py PROOF.json VERIFIER_KEY

VERIFIER_KEY is the signed-note verifier key you obtained independently of the proof
(`liaison audit verifier-key`): "<name>+<8 hex key hash>+<base64(0x01 || public key)>".
Exit code 0 when the checkpoint signature and every inclusion proof verify.
"""

import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


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
    raise SystemExit("no signature by that key")


def root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise SystemExit("proof too long")
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise SystemExit("proof too short")
    return r


def main() -> None:
    document = json.load(open(sys.argv[1]))  # noqa: PTH123, SIM115 - a short script
    size, root = check_note(document["checkpoint"], sys.argv[2])
    for item in document["proofs"]:
        data = base64.b64decode(item["leaf"])
        leaf = hashlib.sha256(b"\x00" + data).digest()
        path = [bytes.fromhex(h) for h in item["proof"]]
        if root_from_path(item["seq"], size, leaf, path) != root:
            raise SystemExit(f"leaf {item['seq']} is not in the checkpointed log")
        seq, record = data.split(b"\n", 1)
        print(f"leaf {seq.decode()} included: {record.decode()}")  # noqa: T201
    print(f"OK: {len(document['proofs'])} record(s) in the log of size {size}")  # noqa: T201


if __name__ == "__main__":
    main()
