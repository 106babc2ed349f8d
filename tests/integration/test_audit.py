"""The audit log against the real broker and the real SQLite store."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import shutil
import signal
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from producers.publisher import Publisher
from schemas.audit import FeedRead, decode_record, encode_record, seal_record, unsealed
from schemas.envelope import seal
from schemas.events import ConcernRaised
from schemas.inspectorates import Inspectorate
from schemas.keys import AUDIT, READER, SigningKey
from schemas.records import event_record
from services.audit_log import append_audit, audit_outbound
from services.audit_service import AuditService, open_store, publish_checkpoint
from services.kafka import assigned, catch_up, end_offsets, read_from, transactional_sink
from services.settings import Settings
from tests.conftest import env_for, one_error_line, router_for, run_liaison
from tests.factories import concern, utc_now

pytestmark = pytest.mark.kafka

LIAISON = [sys.executable, "-m", "services"]
CHECK_PROOF_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "check_proof.py"


async def audit_size(settings: Settings) -> int:
    """Committed records on the audit topic, read to its end however long that takes.

    Not what a 2 s read returns: on a busy machine (a fresh-clone test run) it returned
    16,144 of 16,710, and the store looked complete before it was.
    """
    async with assigned(settings, settings.topics.audit) as consumer:
        return sum([len(batch) async for batch in catch_up(consumer)])


async def stored_everything(settings: Settings, signing: dict[str, SigningKey]) -> int:
    """Run the audit service until the store holds every record on the log."""
    with open_store(settings) as store:
        service = AuditService(settings, store, signing[AUDIT])
        await service.start()
        try:
            for _ in range(300):
                if store.size() >= await audit_size(settings):
                    break
                await asyncio.sleep(0.2)
        finally:
            await service.stop()
        await publish_checkpoint(settings, store, signing[AUDIT], utc_now())
        return store.size()


async def route_some(
    settings: Settings, signing: dict[str, SigningKey], events: Sequence[ConcernRaised]
) -> None:
    start = await end_offsets(settings, [settings.topics.feed])
    router = router_for(settings, signing)
    await router.start()
    try:
        for source in dict.fromkeys(event.source for event in events):
            async with transactional_sink(settings, source.value) as sink:
                publisher = Publisher(sink, settings.topics, signing[source.value], utc_now)
                for event in events:
                    if event.source is source:
                        await publisher.publish(event)
        await read_from(settings, start, until=lambda r: len(r) >= len(events), timeout_s=30)
    finally:
        await router.stop()


def record_in(value: bytes) -> dict[str, object]:
    """The audit record inside a signed value on the audit topic, as JSON."""
    payload = unsealed(value)
    assert payload is not None, "not a signed audit value"
    loaded: dict[str, object] = json.loads(payload)
    return loaded


async def audit_records(settings: Settings, action: str) -> list[dict[str, object]]:
    """Every signed record of ``action`` on the audit topic, in order."""
    records = await read_from(
        settings, {(settings.topics.audit, 0): 0}, until=lambda _: False, timeout_s=2
    )
    return [record_in(r.value) for r in records if dict(r.headers).get("action") == action.encode()]


def tamper(store: Path, copy: Path, statements: Sequence[str]) -> Path:
    shutil.copy(store, copy)
    with sqlite3.connect(copy) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        for statement in statements:
            db.execute(statement)
    return copy


async def test_verify_passes_then_catches_each_kind_of_tampering(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    events = [concern(subject_agencies=["police"]) for _ in range(6)]
    await route_some(kafka, signing, events)
    assert await stored_everything(kafka, signing) >= 6

    ok = await run_liaison(kafka, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "OK:" in ok.stdout
    assert "1 signed checkpoint(s) verified" in ok.stdout

    store = next((kafka.home / "audit").glob("*.sqlite3"))
    cases = {
        "changed": (["UPDATE leaves SET record = CAST('{}' AS BLOB) WHERE seq = 3"], "leaf 3"),
        "dropped": (["DELETE FROM leaves WHERE seq = 2"], "no leaf 2"),
        "reordered": (
            [
                "UPDATE leaves SET seq = -1 WHERE seq = 1",
                "UPDATE leaves SET seq = 1, kafka_offset = -10 WHERE seq = 4",
                "UPDATE leaves SET seq = 4 WHERE seq = -1",
            ],
            "leaf 1",
        ),
        "truncated": (["DELETE FROM leaves WHERE seq >= 5"], "before leaf 5"),
    }
    for name, (statements, position) in cases.items():
        copy = tamper(store, tmp_path / f"{name}.sqlite3", statements)
        failed = await run_liaison(kafka, "audit", "verify", env={"LIAISON_AUDIT_STORE": str(copy)})
        assert failed.returncode == 1, f"{name}: {failed.stdout}{failed.stderr}"
        assert position in failed.stderr, f"{name}: {failed.stderr}"
        assert "Traceback" not in failed.stderr

    # Each failed verification is itself on the audit log.
    records = await read_from(
        kafka, {(kafka.topics.audit, 0): 0}, until=lambda _: False, timeout_s=2
    )
    failures = [r for r in records if dict(r.headers).get("action") == b"audit.verification_failed"]
    assert len(failures) == len(cases)


async def test_audit_service_killed_mid_stream_loses_and_duplicates_no_leaf(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    rng = random.Random(7)  # noqa: S311 - test timing, not security
    before = await audit_size(kafka)  # the fixture's key.generated records
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, enable_idempotence=True)
    await producer.start()
    sent = 0
    behind: list[int] = []

    async def produce_until(stop: asyncio.Event) -> None:
        """Audit records arriving while the service works, as they would in production."""
        nonlocal sent
        while not stop.is_set():
            futures = []
            for _ in range(100):
                record = FeedRead(
                    at=utc_now(), actor="analyst:test", analyst="test", purpose="load",
                    returned=sent,
                )  # fmt: skip
                out = audit_outbound(kafka, record, signing[READER])
                futures.append(await producer.send(out.topic, out.value, key=out.key))
                sent += 1
            await asyncio.gather(*futures)
            await asyncio.sleep(0.02)

    try:
        for _ in range(4):
            service = await asyncio.create_subprocess_exec(
                *LIAISON, "serve", "audit", env=env_for(kafka),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            stop = asyncio.Event()
            producing = asyncio.create_task(produce_until(stop))
            await asyncio.sleep(rng.uniform(1.5, 3.0))
            service.send_signal(signal.SIGKILL)  # while records keep arriving
            await service.wait()
            stop.set()
            await producing
            with open_store(kafka) as store:
                behind.append(before + sent - store.size())
    finally:
        await producer.stop()
    # At least one kill must have cut the service short, or this would prove nothing.
    assert any(n > 0 for n in behind), behind
    total = before + sent
    assert await stored_everything(kafka, signing) == total
    with open_store(kafka) as store:
        leaves = list(store.leaves())
    assert [leaf.seq for leaf in leaves] == list(range(total))
    assert len({leaf.kafka_offset for leaf in leaves}) == total
    reads = [decode_record(unsealed(leaf.record) or b"") for leaf in leaves]
    returned = [r.returned for r in reads if isinstance(r, FeedRead)]
    assert returned == list(range(sent))  # every record once, in log order
    verified = await run_liaison(kafka, "audit", "verify")
    assert verified.returncode == 0, verified.stderr


async def test_prove_check_proof_consistency_who_saw_and_activity(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    event = concern(subject_agencies=["police"], area="E08000025")
    await route_some(kafka, signing, [event])
    await append_audit(kafka, [FeedRead(
        at=utc_now(), actor="analyst:a.khan", analyst="a.khan", purpose="JTAI planning",
        returned=1, event_ids=(event.id,),
    )], signing[READER])  # fmt: skip
    first = await stored_everything(kafka, signing)
    await route_some(kafka, signing, [concern(subject_agencies=["health"])])
    second = await stored_everything(kafka, signing)
    assert second > first

    vkey = (await run_liaison(kafka, "audit", "verifier-key")).stdout.split()[0]
    proof = tmp_path / "proof.json"
    made = await run_liaison(kafka, "audit", "prove", str(event.id), "--out", str(proof))
    assert made.returncode == 0, made.stderr
    keys = tmp_path / "keys.json"
    keys.write_text((await run_liaison(kafka, "keys", "export")).stdout)
    checked = await run_liaison(
        kafka, "audit", "check-proof", str(proof), "--key", vkey, "--signers", str(keys)
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "event.routed by router:0" in checked.stdout
    assert "feed.read by analyst:a.khan" in checked.stdout

    # The short documented script, independent of Liaison's code, agrees.
    independent = await asyncio.create_subprocess_exec(
        sys.executable, str(CHECK_PROOF_SCRIPT), str(proof), vkey, "--signers", str(keys),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    script_out, script_err = await independent.communicate()
    assert independent.returncode == 0, script_err.decode()
    assert b"OK: " in script_out

    document = json.loads(proof.read_text())
    document["proofs"][0]["proof"][0] = "00" * 32
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    refused = await run_liaison(
        kafka, "audit", "check-proof", str(forged), "--key", vkey, "--signers", str(keys)
    )
    assert refused.returncode == 1
    assert "FAILED" in refused.stdout

    grown = tmp_path / "consistency.json"
    made = await run_liaison(
        kafka, "audit", "consistency", str(first), str(second), "--out", str(grown)
    )
    assert made.returncode == 0, made.stderr
    checked = await run_liaison(kafka, "audit", "check-proof", str(grown), "--key", vkey)
    assert checked.returncode == 0, checked.stdout
    assert "consistent" in checked.stdout

    saw = await run_liaison(kafka, "audit", "who-saw", str(event.id))
    assert saw.returncode == 0, saw.stderr
    for who in ("router:0", "analyst:a.khan", "event.routed", "feed.read"):
        assert who in saw.stdout
    activity = await run_liaison(kafka, "audit", "activity", "--actor", "analyst:a.khan")
    assert "JTAI planning" in activity.stdout
    assert "event.routed" not in activity.stdout


async def test_replay_by_time_window_and_area_returns_exactly_the_matching_events(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    rng = random.Random(11)  # noqa: S311 - test data
    areas = ["E08000025", "E10000016", "E09000012"]
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, enable_idempotence=True)
    await producer.start()
    bursts: list[list[ConcernRaised]] = []
    marks = [utc_now()]
    try:
        for n in range(3):
            burst = [
                concern(
                    source=s, programme="jtai", area=rng.choice(areas), subject_agencies=["health"]
                )
                for s in rng.choices(list(Inspectorate), k=700)
            ]
            futures = []
            for event in burst:
                record = event_record(
                    event,
                    seal(event, signing[event.source.value], utc_now()).envelope,
                    kafka.topics,
                )
                futures.append(
                    await producer.send(
                        record.topic, record.value, key=record.key, headers=list(record.headers)
                    )
                )
            if n == 1:  # a record in the middle window that does not verify: listed, not exported
                bad = event_record(
                    concern(area="E10000016"), b'{"not": "an envelope"}', kafka.topics
                )
                futures.append(
                    await producer.send(
                        bad.topic, bad.value, key=bad.key, headers=list(bad.headers)
                    )
                )
            await asyncio.gather(*futures)
            bursts.append(burst)
            await asyncio.sleep(1.5)
            marks.append(utc_now())
            await asyncio.sleep(0.5)
    finally:
        await producer.stop()

    out = tmp_path / "replay.jsonl"
    since, until = marks[1].isoformat(), marks[2].isoformat()
    done = await run_liaison(
        kafka,
        "replay",
        "--since",
        since,
        "--until",
        until,
        "--area",
        "E10000016",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    got = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    expected = [str(e.id) for e in bursts[1] if e.area == "E10000016"]
    assert sorted(got) == sorted(expected)
    assert len(got) == len(set(got))
    assert f"{len(expected)} verified, 1 not verifiable" in done.stderr
    assert "not_dsse" in done.stderr
    runs = await audit_records(kafka, "replay.run")
    assert runs[-1]["verified"] == len(expected)
    assert runs[-1]["filters"] == {"since": since, "until": until, "area": "E10000016"}
    assert runs[-1]["unverifiable"] == 1


# ---- hostile values on the audit topic ----------------------------------------------

GOOD_READ = encode_record(
    FeedRead(
        at=dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC), actor="analyst:a.khan",
        analyst="a.khan", purpose="JTAI planning", returned=1,
    )
)  # fmt: skip
# Each a value anyone able to write to liaison.audit could put there, and the reason the
# audit service must give it (InvalidReason). Any one of them used to stop the service;
# a bare record, however well formed, is unsigned.
HOSTILE_VALUES: list[tuple[bytes, str]] = [
    (GOOD_READ, "unsigned"),
    (GOOD_READ.replace(b"2026-11-22T12:00:00Z", b"9999-12-31T23:59:59-23:59"), "unsigned"),
    (b"not json", "not_json"),
    (b"[" * 80000, "too_large"),
    (b"[" * 60000, "not_json"),
    (GOOD_READ.replace(b'"analyst":"a.khan"', b'"analyst":"\\ud800"'), "not_json"),
    (GOOD_READ.replace(b'"feed.read"', b'"feed.deleted"'), "unsigned"),
    (b"[]", "not_an_object"),
    (b"", "empty"),
]


async def produce_audit_values(
    settings: Settings, values: Sequence[bytes], *, timestamp_ms: int | None = None
) -> None:
    """Put raw values on the audit topic, in order, as a careless or hostile writer would."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, enable_idempotence=True
    )
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.topics.audit, value, timestamp_ms=timestamp_ms)
    finally:
        await producer.stop()


def good_reads(key: SigningKey, n: int, start: int = 0) -> list[bytes]:
    """``n`` reads signed by the reader service's ``key``, as the service writes them."""
    return [
        seal_record(
            FeedRead(
                at=utc_now(),
                actor="analyst:a.khan",
                analyst="a.khan",
                purpose="planning",
                returned=start + i,
            ),
            key,
        )
        for i in range(n)
    ]


async def serve_audit_until_stored(settings: Settings) -> tuple[int | None, int]:
    """Run `liaison serve audit` until its store holds every value on the topic; return
    whether it was still running then (None) and its exit code after SIGTERM."""
    service = await asyncio.create_subprocess_exec(
        *LIAISON, "serve", "audit", env=env_for(settings),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        total = await audit_size(settings)
        for _ in range(300):
            with open_store(settings) as store:
                if store.size() >= total or service.returncode is not None:
                    break
            await asyncio.sleep(0.2)
        running = service.returncode
    finally:
        if service.returncode is None:
            service.send_signal(signal.SIGTERM)
        code = await service.wait()
    return running, code


async def test_hostile_values_become_invalid_leaves_and_the_service_keeps_running(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    before = await audit_size(kafka)  # the fixture's key.generated records
    reader = signing[READER]
    first = [
        *good_reads(reader, 1),
        *(value for value, _ in HOSTILE_VALUES),
        *good_reads(reader, 3),
    ]
    await produce_audit_values(kafka, first)
    # A bad value whose Kafka timestamp is absurd too (1970: before the bus existed).
    await produce_audit_values(kafka, [b"\xff\xfe not utf-8"], timestamp_ms=1)

    running, code = await serve_audit_until_stored(kafka)
    assert running is None, "the audit service stopped on a hostile value"
    assert code == 0
    total = before + len(first) + 1
    with open_store(kafka) as store:
        leaves = list(store.leaves())
        assert len(leaves) == total
        assert store.invalid_count() == len(HOSTILE_VALUES) + 1
    assert [leaf.invalid for leaf in leaves[:before]] == [None] * before  # signed, entitled
    expected = dict(HOSTILE_VALUES)
    for leaf in leaves[before : before + len(first)]:
        assert leaf.invalid == expected.get(leaf.record), leaf.seq
    assert leaves[-1].invalid == "not_json"
    assert [leaf.seq for leaf in leaves] == list(range(total))

    # Nothing invalid is anyone's activity or about any event.
    activity = await run_liaison(kafka, "audit", "activity", "--actor", "analyst:a.khan")
    assert activity.returncode == 0, activity.stderr
    assert activity.stdout.count("feed.read") == 4

    checkpoint = await run_liaison(kafka, "audit", "checkpoint")
    assert checkpoint.returncode == 0, checkpoint.stderr
    verified = await run_liaison(kafka, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"OK: {total} leaves ({len(HOSTILE_VALUES) + 1} invalid)" in verified.stdout

    # Restarted, it resumes where it stopped: the new values and nothing twice.
    more = [*good_reads(reader, 2, start=10), HOSTILE_VALUES[0][0],
            *good_reads(reader, 1, start=20)]  # fmt: skip
    await produce_audit_values(kafka, more)
    running, code = await serve_audit_until_stored(kafka)
    assert (running, code) == (None, 0)
    with open_store(kafka) as store:
        assert store.size() == total + len(more)
        assert store.invalid_count() == len(HOSTILE_VALUES) + 2
        assert [leaf.invalid for leaf in store.leaves(total)] == [
            None, None, "unsigned", None,
        ]  # fmt: skip
    verified = await run_liaison(kafka, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"OK: {total + len(more)} leaves ({len(HOSTILE_VALUES) + 2} invalid)" in verified.stdout
    assert "1 signed checkpoint(s) verified" in verified.stdout
    for reason, count in (("unsigned", 4), ("not_json", 4), ("too_large", 1), ("empty", 1)):
        assert f"invalid leaves, {reason}: {count}" in verified.stdout


def damage_store(path: Path, how: str) -> None:
    """Spoil the audit store at ``path`` as a disk fault or careless hand would."""
    if how == "random bytes":
        path.write_bytes(random.Random(5).randbytes(8192))  # noqa: S311 - test data
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        with sqlite3.connect(path) as db:
            db.execute("DROP TABLE leaf_events")
            db.execute("DROP TABLE leaves")


async def test_prove_and_verify_on_a_damaged_store_print_one_error_line(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    event = concern(subject_agencies=["police"])
    await route_some(kafka, signing, [event])
    await stored_everything(kafka, signing)
    store = next((kafka.home / "audit").glob("*.sqlite3"))
    for how, problem in (
        ("random bytes", "not a database"),
        ("truncated", "malformed"),
        ("tables dropped", "missing"),
    ):
        copy = tmp_path / f"{how}.sqlite3"
        shutil.copy(store, copy)
        damage_store(copy, how)
        env = {"LIAISON_AUDIT_STORE": str(copy)}
        for args in (
            ("audit", "verify"),
            ("audit", "prove", str(event.id)),
            ("audit", "who-saw", str(event.id)),
            ("audit", "activity", "--actor", "router:0"),
        ):
            done = await run_liaison(kafka, *args, env=env)
            line = one_error_line(done)
            assert problem in line, f"{how} {args}: {line}"
