"""``audit verify`` derives the leaves in worker processes on a long log (issue 14): on the
real broker, the report is the same as when this process derives every leaf, on a log
with valid, invalid (each reason), unparseable and invalidated-since leaves, and on
stores tampered with in each way ``verify`` must catch."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from schemas.audit import AUDIT_RECORD_TYPE, FeedRead, RouteTaken, encode_record, seal_record
from schemas.audit import EventRouted as Routed
from schemas.envelope import sign_envelope
from schemas.inspectorates import Inspectorate
from schemas.keys import AUDIT, BUS, READER, SigningKey, TrustStore
from schemas.records import OutboundRecord
from services.audit_log import audit_outbound
from services.audit_service import AuditService, open_store, publish_checkpoint
from services.audit_store import SqliteAuditStore
from services.auditor import VerifyReport, verify_log
from services.kafka import read_from
from services.settings import Settings
from services.trust import load_trust
from tests.factories import utc_now
from tests.integration.test_audit import tamper
from tests.integration.test_end_to_end import produce_raw
from tests.integration.test_hostile_records import write_unparseable

pytestmark = pytest.mark.kafka


def feed_read(at: dt.datetime, n: int) -> FeedRead:
    return FeedRead(
        at=at, actor="analyst:a.khan", analyst="a.khan", purpose="verify test", returned=n,
        event_ids=(uuid.uuid4(),),
    )  # fmt: skip


def forged(value: bytes) -> bytes:
    """A signed value whose signature no longer matches: one character of it changed."""
    at = value.index(b'"sig":"') + len(b'"sig":"') + 3
    swapped = b"B" if value[at : at + 1] != b"B" else b"C"
    return value[:at] + swapped + value[at + 1 :]


def values(signing: dict[str, SigningKey], now: dt.datetime) -> list[bytes]:
    """Valid records among one of every kind of invalid value."""
    reader = signing[READER]
    outsider = SigningKey.generate(READER)  # not on liaison.keys: an unknown key
    routed = Routed(
        at=now, actor="router:0", event_ids=(uuid.uuid4(),), inspectorate=Inspectorate.OFSTED,
        area="E08000025", destinations=(RouteTaken(topic="liaison.feed.areas"),),
    )  # fmt: skip
    valid = [seal_record(feed_read(now, n), reader) for n in range(40)]
    invalid = [
        b"",  # empty
        b"\xff not json",
        b"[1, 2]",  # JSON, not an object
        encode_record(feed_read(now, 99)),  # a bare record: unsigned
        forged(seal_record(feed_read(now, 98), reader)),  # bad signature
        seal_record(feed_read(now, 97), outsider),  # unknown key
        sign_envelope(AUDIT_RECORD_TYPE, encode_record(routed), reader),  # not entitled
        seal_record(feed_read(now - dt.timedelta(hours=2), 96), reader),  # back-dated
        sign_envelope(AUDIT_RECORD_TYPE, b'{"action":"no.such"}', reader),  # unknown action
    ]
    mixed = valid[:]
    for i, value in enumerate(invalid):
        mixed.insert(3 + 4 * i, value)
    mixed.extend(seal_record(routed.model_copy(update={"at": now}), signing[BUS]) for _ in "ab")
    return mixed


async def stored(settings: Settings, signing: dict[str, SigningKey]) -> Path:
    """Run the audit service until it has stored every parseable record; one checkpoint
    is signed in the middle of the log and one at its end. The store's path."""
    on_log = await read_from(
        settings, {(settings.topics.audit, 0): 0}, until=lambda _: False, timeout_s=4
    )
    parsed = sum(r.parsed for r in on_log)
    with open_store(settings) as store:
        service = AuditService(settings, store, signing[AUDIT])
        await service.start()
        try:
            for _ in range(300):
                if store.size() >= parsed:
                    break
                await asyncio.sleep(0.2)
        finally:
            await service.stop()
        assert store.size() == parsed
        await publish_checkpoint(settings, store, signing[AUDIT], utc_now())
    return next((settings.home / "audit").glob("*.sqlite3"))


async def a_log(kafka: Settings, signing: dict[str, SigningKey], parts: int = 2) -> Path:
    """The log: ``parts`` times the values above, unparseable records between them, a
    checkpoint after each part; the store's path."""
    path = None
    for _ in range(parts):
        records = [OutboundRecord(kafka.topics.audit, b"k", v) for v in values(signing, utc_now())]
        await produce_raw(kafka, records[:20])
        await write_unparseable(kafka, kafka.topics.audit, 2)
        await produce_raw(kafka, [*records[20:], audit_outbound(kafka, feed_read(utc_now(), 0),
                                                                  signing[READER])])  # fmt: skip
        path = await stored(kafka, signing)
    assert path is not None
    return path


async def both(
    settings: Settings, path: Path, trust: TrustStore, runs: Sequence[tuple[int, int]]
) -> tuple[VerifyReport, list[VerifyReport]]:
    """The report derived here, and with each (workers, chunk) of ``runs``."""
    with SqliteAuditStore(path) as store:
        serial = await verify_log(settings, store, trust, workers=0)
        parallel = [await verify_log(settings, store, trust, workers=w, chunk=c) for w, c in runs]
    return serial, parallel


def fields(report: VerifyReport) -> dict[str, Any]:
    return asdict(report)


async def test_workers_and_this_process_report_the_same_of_a_mixed_log(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    path = await a_log(kafka, signing)
    trust = await load_trust(kafka)
    rng = random.Random(14)  # noqa: S311 - test parameters
    runs = [(2, 1000), (1, 3), (2, 7), (3, rng.randint(1, 30))]
    serial, parallel = await both(kafka, path, trust, runs)
    assert serial.ok, serial.divergence
    assert serial.unparseable == 4
    assert serial.checkpoints == 2
    assert set(serial.invalid) == {
        "empty", "not_json", "not_an_object", "unsigned", "bad_signature", "unknown_key",
        "not_entitled", "backdated", "unknown_action",
    }  # fmt: skip
    assert serial.invalid_records == 18
    for (workers, chunk), report in zip(runs, parallel, strict=True):
        assert fields(report) == fields(serial), (workers, chunk)

    # The router's key revoked back to before every leaf (only valid leaves are signed by
    # it here): its leaves are invalidated since.
    key = trust.get(signing[BUS].keyid)
    assert key is not None
    revoked = trust.with_key(key.revoked(key.valid_from, "test: compromised"))
    serial, parallel = await both(kafka, path, revoked, [(2, 5)])
    assert serial.ok, serial.divergence
    assert serial.invalidated == 4
    assert serial.first_invalidated is not None
    assert fields(parallel[0]) == fields(serial)


TAMPERED = {
    "changed": ["UPDATE leaves SET record = CAST('{}' AS BLOB) WHERE seq = 30"],
    "dropped": ["DELETE FROM leaves WHERE seq = 12"],
    "actor": ["UPDATE leaves SET actor = 'analyst:someone.else' WHERE seq = 41"],
    "valid": ["UPDATE leaves SET invalid = NULL WHERE invalid IS NOT NULL AND seq > 20"],
    "invalid": ["UPDATE leaves SET invalid = 'unsigned' WHERE seq = 44"],
    "event row": ["DELETE FROM leaf_events WHERE seq = (SELECT MAX(seq) FROM leaf_events)"],
    "stray row": [
        "INSERT INTO leaf_events VALUES (100000, 0, '00000000-0000-0000-0000-000000000001')"
    ],
    "truncated": ["DELETE FROM leaves WHERE seq >= 50"],
    "extra": [
        "INSERT INTO leaves (seq, kafka_offset, record, leaf_hash, at, actor, invalid, signer)"
        " SELECT MAX(seq) + 1, MAX(kafka_offset) + 1, record, leaf_hash, at, actor, invalid,"
        " signer FROM leaves"
    ],
}


async def test_workers_and_this_process_find_the_same_divergence(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    path = await a_log(kafka, signing, parts=1)
    trust = await load_trust(kafka)
    for name, statements in TAMPERED.items():
        copy = tamper(path, tmp_path / f"{name}.sqlite3", statements)
        serial, parallel = await both(kafka, copy, trust, [(2, 4)])
        assert serial.divergence is not None, name
        assert fields(parallel[0]) == fields(serial), name
