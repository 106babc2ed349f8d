"""Issue 10's attacks on the audit log, each against the real broker and store: forged,
unsigned and back-dated records, an edited index, proofs that claim too much."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import getpass
import hashlib
import json
import sqlite3
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.audit import (
    AUDIT_RECORD_TYPE,
    EventRouted,
    FeedRead,
    RouteTaken,
    encode_record,
    leaf_data,
    seal_record,
    unsealed,
)
from schemas.checkpoint import Checkpoint, note_verifier_key, sign_checkpoint
from schemas.envelope import pae, sign_envelope
from schemas.inspectorates import Inspectorate
from schemas.keys import AUDIT, BUS, READER, SigningKey
from schemas.merkle import inclusion_proof
from services.audit_log import append_audit
from services.audit_service import audit_origin, open_store
from services.kafka import partition_counts, read_from
from services.keys_admin import revoke
from services.settings import Settings
from tests.conftest import one_error_line, run_liaison
from tests.factories import concern, utc_now
from tests.integration.test_audit import (
    CHECK_PROOF_SCRIPT,
    audit_records,
    produce_audit_values,
    route_some,
    stored_everything,
    tamper,
)

pytestmark = pytest.mark.kafka

MONTH: dt.timedelta = dt.timedelta(days=30)


def forged_read(at: dt.datetime, event_id: uuid.UUID) -> FeedRead:
    return FeedRead(
        at=at, actor="analyst:a.khan", analyst="a.khan", purpose="forged", returned=1,
        event_ids=(event_id,),
    )  # fmt: skip


async def script(*args: str | Path) -> tuple[int, str]:
    """docs/check_proof.py as a regulator runs it: its exit code and all it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(CHECK_PROOF_SCRIPT), *map(str, args),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, (out + err).decode()


async def signers_file(kafka: Settings, tmp_path: Path) -> Path:
    """The signers' public keys as the auditor obtains them: `liaison keys export`."""
    exported = await run_liaison(kafka, "keys", "export")
    assert exported.returncode == 0, exported.stderr
    path = tmp_path / f"keys-{uuid.uuid4().hex[:8]}.json"
    path.write_text(exported.stdout)
    return path


async def test_forged_unsigned_and_backdated_records_are_invalid_leaves_no_one_sees(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    event = concern(subject_agencies=["police"], area="E08000025")
    await route_some(kafka, signing, [event])  # the real, signed event.published and routed
    now = utc_now()
    month_ago = now - MONTH
    routed = EventRouted(
        at=now, actor="router:0", event_ids=(event.id,), inspectorate=Inspectorate.OFSTED,
        area="E08000025", destinations=(RouteTaken(topic=kafka.topics.feed),),
    )  # fmt: skip
    stranger = SigningKey.generate(READER)  # never registered under the trust root
    forgeries = [
        (encode_record(forged_read(month_ago, event.id)), "unsigned"),
        (encode_record(routed), "unsigned"),
        # An inspectorate's valid key, signing for an analyst.
        (
            sign_envelope(
                AUDIT_RECORD_TYPE,
                encode_record(forged_read(now, event.id)),
                signing[Inspectorate.OFSTED.value],
            ),
            "not_entitled",
        ),
        (seal_record(forged_read(month_ago, event.id), signing[READER]), "backdated"),
        (seal_record(forged_read(now, event.id), stranger), "unknown_key"),
    ]
    await produce_audit_values(kafka, [value for value, _ in forgeries])
    # The producer's own timestamp says a month ago too: the broker's append time wins.
    month_ago_ms = int(month_ago.timestamp() * 1000)
    sneaky = seal_record(forged_read(month_ago, event.id), signing[READER])
    await produce_audit_values(kafka, [sneaky], timestamp_ms=month_ago_ms)
    forgeries.append((sneaky, "backdated"))

    await stored_everything(kafka, signing)
    with open_store(kafka) as store:
        leaves = list(store.leaves())
    by_value = {leaf.record: leaf for leaf in leaves[-len(forgeries) :]}
    for value, reason in forgeries:
        leaf = by_value[value]
        assert (leaf.invalid, leaf.actor, leaf.event_ids) == (reason, "", ()), reason
    assert by_value[forgeries[3][0]].signer == signing[READER].keyid  # verified, then refused

    saw = await run_liaison(kafka, "audit", "who-saw", str(event.id))
    assert saw.returncode == 0, saw.stderr
    assert "event.routed" in saw.stdout  # the router's real record
    assert "analyst:a.khan" not in saw.stdout
    assert "forged" not in saw.stdout
    reads = await run_liaison(kafka, "audit", "activity", "--actor", "analyst:a.khan")
    assert reads.returncode == 0, reads.stderr
    assert "feed.read" not in reads.stdout
    router = await run_liaison(kafka, "audit", "activity", "--actor", "router:0")
    assert router.stdout.count("event.routed") == 1  # not the unsigned copy

    verified = await run_liaison(kafka, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr  # findings, no divergence
    for reason, count in (("unsigned", 2), ("backdated", 2), ("not_entitled", 1),
                          ("unknown_key", 1)):  # fmt: skip
        assert f"invalid leaves, {reason}: {count}" in verified.stdout, verified.stdout
    assert "(6 invalid)" in verified.stdout


async def test_verify_derives_the_index_again_and_names_the_first_leaf_edited(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    event = concern(subject_agencies=["police"], area="E08000025")
    await route_some(kafka, signing, [event])
    now = utc_now()
    await produce_audit_values(kafka, [
        seal_record(forged_read(now, event.id).model_copy(update={"purpose": "real"}),
                    signing[READER]),
        encode_record(forged_read(now, event.id)),  # unsigned
    ])  # fmt: skip
    await stored_everything(kafka, signing)
    store = next((kafka.home / "audit").glob("*.sqlite3"))
    # Closed, not only committed: an open connection would keep the store's last writes in
    # its WAL file, which the copies below do not take.
    with contextlib.closing(sqlite3.connect(store)) as db:
        ((read,),) = db.execute("SELECT seq FROM leaves WHERE actor = 'analyst:a.khan'")
        ((forged,),) = db.execute("SELECT seq FROM leaves WHERE invalid = 'unsigned'")
        first_with_events = db.execute("SELECT MIN(seq) FROM leaf_events").fetchone()[0]

    # The attack: hide the analyst's read from who-saw and activity by editing the index.
    hidden = tamper(store, tmp_path / "hidden.sqlite3", [
        f"DELETE FROM leaf_events WHERE seq = {read}",  # noqa: S608 - test SQL
        f"UPDATE leaves SET actor = 'analyst:someone.else' WHERE seq = {read}",  # noqa: S608
    ])  # fmt: skip
    env = {"LIAISON_AUDIT_STORE": str(hidden)}
    saw = await run_liaison(kafka, "audit", "who-saw", str(event.id), env=env)
    assert "analyst:a.khan" not in saw.stdout  # hidden indeed...
    failed = await run_liaison(kafka, "audit", "verify", env=env)
    assert failed.returncode == 1, failed.stdout  # ...and found
    assert f"FAILED at leaf {read}: leaf {read}: the stored actor" in failed.stderr

    # That failure is on the log now (audit.verification_failed): store it, so that the
    # store again ends where the log does (a stray index row is looked for at the end).
    await stored_everything(kafka, signing)
    cases = {
        "a row for no leaf": (
            [f"INSERT INTO leaf_events VALUES (100000, 0, '{event.id}')"], 100000,  # noqa: S608
            "names leaf 100000, which the log does not have",
        ),
        "leaf_events rows deleted": (
            [f"DELETE FROM leaf_events WHERE seq = {first_with_events}"],  # noqa: S608
            first_with_events, "event ids",
        ),
        "actor changed": (
            [f"UPDATE leaves SET actor = 'analyst:x' WHERE seq = {read}"], read, "actor",  # noqa: S608
        ),
        "an event id added": (
            [f"INSERT INTO leaf_events VALUES ({read}, 9, '{uuid.uuid4()}')"], read, "event ids",  # noqa: S608
        ),
        "a forgery indexed as a read": (
            [f"UPDATE leaves SET invalid = NULL, actor = 'analyst:a.khan' WHERE seq = {forged}",  # noqa: S608
             f"INSERT INTO leaf_events VALUES ({forged}, 0, '{event.id}')"],  # noqa: S608
            forged, "indexes a value the log holds invalid (unsigned)",
        ),
        "signer changed": (
            [f"UPDATE leaves SET signer = '{'0' * 64}' WHERE seq = {read}"], read, "signer",  # noqa: S608
        ),
        "time changed": (
            [f"UPDATE leaves SET at = '2020-01-01T00:00:00.000000Z' WHERE seq = {read}"],  # noqa: S608
            read, "time",
        ),
    }  # fmt: skip
    for name, (statements, seq, detail) in cases.items():
        copy = tamper(store, tmp_path / f"{name}.sqlite3", statements)
        done = await run_liaison(kafka, "audit", "verify", env={"LIAISON_AUDIT_STORE": str(copy)})
        assert done.returncode == 1, f"{name}: {done.stdout}"
        assert f"FAILED at leaf {seq}:" in done.stderr, f"{name}: {done.stderr}"
        assert detail in done.stderr, f"{name}: {done.stderr}"
        assert "Traceback" not in done.stderr
    await stored_everything(kafka, signing)  # each failure above is a record too
    ok = await run_liaison(kafka, "audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    failures = await audit_records(kafka, "audit.verification_failed")
    assert len(failures) == len(cases) + 1
    assert {f["actor"] for f in failures} == {f"auditor:{getpass.getuser()}"}


async def test_check_proof_needs_the_auditors_key_and_refuses_proofs_that_claim_too_much(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    event, other = (concern(subject_agencies=["police"]) for _ in range(2))
    await route_some(kafka, signing, [event, other])
    await stored_everything(kafka, signing)

    listed = await run_liaison(kafka, "audit", "verifier-key")
    origin = audit_origin(kafka)
    # The audit service's key only: never the router's, which signs JTAI considerations.
    assert listed.stdout.split() == [note_verifier_key(origin, signing[AUDIT].public_raw)]
    assert note_verifier_key(origin, signing[BUS].public_raw) not in listed.stdout
    vkey = listed.stdout.split()[0]
    keys = await signers_file(kafka, tmp_path)
    signers = ("--signers", str(keys))

    proof = tmp_path / "proof.json"
    made = await run_liaison(kafka, "audit", "prove", str(event.id), "--out", str(proof))
    assert made.returncode == 0, made.stderr
    assert "--key is required" in one_error_line(
        await run_liaison(kafka, "audit", "check-proof", str(proof))
    )
    good = await run_liaison(kafka, "audit", "check-proof", str(proof), "--key", vkey, *signers)
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"signed by key {signing[BUS].keyid}" in good.stdout  # the router's record
    assert (await script(proof, vkey, *signers))[0] == 0

    document = json.loads(proof.read_text())
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({**document, "event_id": str(other.id)}))
    refused = await run_liaison(kafka, "audit", "check-proof", str(edited), "--key", vkey, *signers)
    assert refused.returncode == 1
    assert f"does not concern event {other.id}" in refused.stdout
    code, said = await script(edited, vkey, *signers)
    assert code == 1, said
    assert "does not concern event" in said

    # An attacker's checkpoint of the same tree, with the attacker's key inside the proof.
    attacker = SigningKey.generate(AUDIT)
    with open_store(kafka) as store:
        latest = store.latest_checkpoint()
    assert latest is not None
    note = sign_checkpoint(Checkpoint(origin, latest.size, latest.root), attacker, origin)
    theirs = tmp_path / "attacker.json"
    theirs.write_text(json.dumps({
        **document, "checkpoint": note,
        "verifier_keys": [note_verifier_key(origin, attacker.public_raw)],
    }))  # fmt: skip
    refused = await run_liaison(kafka, "audit", "check-proof", str(theirs), "--key", vkey, *signers)
    assert refused.returncode == 1
    assert "FAILED" in refused.stdout
    assert "--key is required" in one_error_line(
        await run_liaison(kafka, "audit", "check-proof", str(theirs))
    )
    assert (await script(theirs, vkey, *signers))[0] == 1


async def test_replay_export_is_checked_by_the_script_and_a_dsse_library_alone(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    since = utc_now().isoformat()
    events = [
        concern(subject_agencies=["police"]),
        concern(subject_agencies=["police"], source="cqc", programme="jtai"),
    ]
    await route_some(kafka, signing, events)
    await stored_everything(kafka, signing)
    vkey = (await run_liaison(kafka, "audit", "verifier-key")).stdout.split()[0]
    keys = await signers_file(kafka, tmp_path)

    export = tmp_path / "export"
    done = await run_liaison(kafka, "replay", "--since", since, "--export", str(export))
    assert done.returncode == 0, done.stderr
    assert "exported 2 signed event(s)" in done.stderr
    manifest = json.loads((export / "manifest.json").read_text())
    assert {e["event_id"] for e in manifest["events"]} == {str(e.id) for e in events}

    topics = list(kafka.topics.all_events())
    counts = await partition_counts(kafka, topics)
    start = {(t, p): 0 for t in topics for p in range(counts[t])}
    on_kafka = await read_from(kafka, start, until=lambda _: False, timeout_s=3)
    values = {record.value for record in on_kafka}
    for entry in manifest["events"]:
        envelope = (export / entry["envelope"]).read_bytes()
        assert envelope in values  # byte for byte as on Kafka
        assert hashlib.sha256(envelope).hexdigest() == entry["envelope_sha256"]
        # Any DSSE library: PAE over the payload, Ed25519, the publisher's public key.
        source = next(e.source for e in events if str(e.id) == entry["event_id"])
        dsse = json.loads(envelope)
        public = Ed25519PublicKey.from_public_bytes(signing[source.value].public_raw)
        public.verify(
            base64.b64decode(dsse["signatures"][0]["sig"]),
            pae(dsse["payloadType"], base64.b64decode(dsse["payload"])),
        )
        assert entry["audit_records"] >= 2
        public_b64 = base64.b64encode(signing[source.value].public_raw).decode()
        code, said = await script(
            export / entry["proof"], vkey, "--signers", keys,
            "--envelope", export / entry["envelope"], "--public-key", public_b64,
        )  # fmt: skip
        assert code == 0, said
        assert "event.published by inspectorate:" in said
        assert "signature by key" in said
        # The wrong publisher's key is refused.
        wrong = base64.b64encode(signing[BUS].public_raw).decode()
        code, _ = await script(
            export / entry["proof"], vkey, "--signers", keys,
            "--envelope", export / entry["envelope"], "--public-key", wrong,
        )  # fmt: skip
        assert code == 1

    again = await run_liaison(kafka, "replay", "--since", since, "--export", str(export))
    assert "not an empty directory" in one_error_line(again)
    both = await run_liaison(
        kafka, "replay", "--since", since, "--export", str(tmp_path / "x"), "--out",
        str(tmp_path / "y"),
    )  # fmt: skip
    assert "--out and --export" in one_error_line(both)


async def test_a_proof_of_a_forged_leaf_built_from_the_public_log_is_refused_by_both_checkers(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    event = concern(subject_agencies=["police"], area="E08000025")
    await route_some(kafka, signing, [event])
    # The attack: anyone can append to liaison.audit. An analyst's read of the event,
    # signed by the attacker's own key (owner "reader", never registered).
    attacker = SigningKey.generate(READER)
    forged = seal_record(forged_read(utc_now(), event.id), attacker)
    await produce_audit_values(kafka, [forged])
    await stored_everything(kafka, signing)
    with open_store(kafka) as store:
        (leaf,) = [x for x in store.leaves() if x.record == forged]
        assert leaf.invalid == "unknown_key"
        latest = store.latest_checkpoint()
        assert latest is not None
        hashes = store.leaf_hashes(latest.size)

    # `audit prove` never includes it...
    proof = tmp_path / "proof.json"
    made = await run_liaison(kafka, "audit", "prove", str(event.id), "--out", str(proof))
    assert made.returncode == 0, made.stderr
    document = json.loads(proof.read_text())
    assert leaf.seq not in [item["seq"] for item in document["proofs"]]

    # ...so the attacker builds the proof by hand from the public log and the genuine,
    # audit-key-signed checkpoint: the leaf truly is in the tree.
    theirs = tmp_path / "theirs.json"
    theirs.write_text(json.dumps({
        **document,
        "proofs": [{
            "seq": leaf.seq,
            "leaf": base64.b64encode(leaf_data(leaf.seq, forged)).decode(),
            "proof": [h.hex() for h in inclusion_proof(hashes, leaf.seq)],
        }],
    }))  # fmt: skip
    vkey = (await run_liaison(kafka, "audit", "verifier-key")).stdout.split()[0]
    keys = await signers_file(kafka, tmp_path)
    refused = await run_liaison(
        kafka, "audit", "check-proof", str(theirs), "--key", vkey, "--signers", str(keys)
    )
    assert refused.returncode == 1, refused.stdout
    assert f"FAILED: leaf {leaf.seq} is not a record the signers' keys vouch for" in refused.stdout
    assert "unknown_key" in refused.stdout
    assert "included" not in refused.stdout
    code, said = await script(theirs, vkey, "--signers", keys)
    assert code == 1, said
    assert f"FAILED: leaf {leaf.seq}: its signer's key is not in the signers' file" in said
    assert "OK: " not in said
    # Without the signers' keys, neither checker runs at all.
    assert "--signers is required" in one_error_line(
        await run_liaison(kafka, "audit", "check-proof", str(theirs), "--key", vkey)
    )
    assert (await script(theirs, vkey))[0] == 2
    # The genuine proof still passes both.
    good = await run_liaison(
        kafka, "audit", "check-proof", str(proof), "--key", vkey, "--signers", str(keys)
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "event.routed by router:0" in good.stdout
    assert "back-dated" in good.stdout  # the residual limit, stated with the OK
    assert (await script(proof, vkey, "--signers", keys))[0] == 0


async def test_a_retroactive_revocation_invalidates_leaves_without_a_divergence(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    event = concern(subject_agencies=["police"], area="E08000025")
    await route_some(kafka, signing, [event])
    await append_audit(kafka, [FeedRead(
        at=utc_now(), actor="analyst:a.khan", analyst="a.khan", purpose="stolen-key read",
        returned=1, event_ids=(event.id,),
    )], signing[READER])  # fmt: skip
    await stored_everything(kafka, signing)
    with open_store(kafka) as store:
        (read,) = [leaf for leaf in store.leaves() if leaf.actor == "analyst:a.khan"]
    assert read.invalid is None
    assert read.signer == signing[READER].keyid
    claimed = json.loads(unsealed(read.record) or b"{}")["at"]
    # The reader key was stolen before that read: revoke it from then on (the recovery).
    since = dt.datetime.fromisoformat(claimed) - dt.timedelta(minutes=1)
    await revoke(kafka, signing[READER].keyid, "test: stolen", utc_now(), since=since)
    # Records after it go on the log and into the store as usual; one more read signed by
    # the revoked key is an invalid leaf.
    await append_audit(
        kafka,
        [
            FeedRead(
                at=utc_now(),
                actor="analyst:b.jones",
                analyst="b.jones",
                purpose="after",
                returned=0,
                event_ids=(),
            )
        ],
        signing[READER],
    )  # fmt: skip  (signed by the revoked key: an invalid leaf)
    await stored_everything(kafka, signing)

    verified = await run_liaison(kafka, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert (
        f"invalidated since by a key change: 1 leaf/leaves (first: leaf {read.seq})"
        in verified.stdout
    ), verified.stdout
    # It checked on past it: the read signed after the revocation is an invalid leaf.
    assert "invalid leaves, key_not_valid: 1" in verified.stdout, verified.stdout
    assert "FAILED" not in verified.stdout + verified.stderr

    saw = await run_liaison(kafka, "audit", "who-saw", str(event.id))
    assert saw.returncode == 0, saw.stderr
    (row,) = [line for line in saw.stdout.splitlines() if "analyst:a.khan" in line]
    assert "signer revoked" in row
    routed = [line for line in saw.stdout.splitlines() if "event.routed" in line]
    assert routed
    assert all("signer revoked" not in line for line in routed)
    assert "1 record(s) marked signer revoked" in saw.stdout
    activity = await run_liaison(kafka, "audit", "activity", "--actor", "analyst:a.khan")
    assert activity.returncode == 0, activity.stderr
    assert "signer revoked" in activity.stdout
    assert "stolen-key read" in activity.stdout

    # `audit prove` leaves the invalidated read out; what it proves passes check-proof.
    proof = tmp_path / "proof.json"
    made = await run_liaison(kafka, "audit", "prove", str(event.id), "--out", str(proof))
    assert made.returncode == 0, made.stderr
    assert read.seq not in [item["seq"] for item in json.loads(proof.read_text())["proofs"]]
    vkey = (await run_liaison(kafka, "audit", "verifier-key")).stdout.split()[0]
    keys = await signers_file(kafka, tmp_path)
    good = await run_liaison(
        kafka, "audit", "check-proof", str(proof), "--key", vkey, "--signers", str(keys)
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert (await script(proof, vkey, "--signers", keys))[0] == 0
