"""The router's operations against the real broker: JTAI candidates, quarantine, rules."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from producers.publisher import Publisher
from schemas.envelope import open_consideration, seal
from schemas.events import ConcernRaised, encode_event
from schemas.inspectorates import Inspectorate, Programme
from schemas.jtai import JTAI_CONSIDERATION_REQUESTED
from schemas.keys import SigningKey
from schemas.quarantine import encode_quarantined, quarantined
from schemas.records import (
    HEADER_EVENT_ID,
    HEADER_TYPE,
    InboundRecord,
    OutboundRecord,
    event_headers,
    header_map,
)
from schemas.trust_root import KeyState
from services.kafka import end_offsets, kafka_sink, read_from, transactional_sink
from services.keys_admin import register
from services.settings import Settings
from services.trust import load_trust
from tests.conftest import env_for, router_for, run_liaison
from tests.factories import concern, utc_now

pytestmark = pytest.mark.kafka

LIAISON = [sys.executable, "-m", "services"]


def considerations(records: Sequence[InboundRecord]) -> list[InboundRecord]:
    return [
        r
        for r in records
        if header_map(r.headers).get(HEADER_TYPE) == JTAI_CONSIDERATION_REQUESTED.encode()
    ]


def neglect_in_leeds(source: str, programme: str, days_ago: int) -> ConcernRaised:
    return concern(
        source=source,
        programme=programme,
        area="E08000035",
        theme="neglect",
        subject_agencies=["education"],  # routed nowhere: only the JTAI watch matters here
        occurred_at=utc_now() - dt.timedelta(days=days_ago),
    )


async def test_two_inspectorates_make_one_consideration_a_third_and_a_restart_none(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.jtai, topics.feed])
    first = neglect_in_leeds("ofsted", "ilacs", 30)
    second = neglect_in_leeds("cqc", "clas", 10)
    third = neglect_in_leeds("hmicfrs", "ncpi", 5)
    fourth = neglect_in_leeds("hmi_probation", "youth_justice", 1)

    async def publish(*events: ConcernRaised) -> None:
        async with transactional_sink(kafka, "tests") as sink:
            for event in events:
                key = signing[event.source.value]
                await Publisher(sink, topics, key, utc_now).publish(event)

    def fed(n: int) -> Callable[[Sequence[InboundRecord]], bool]:
        return lambda records: sum(r.topic == topics.feed for r in records) >= n

    router = router_for(kafka, signing)
    await router.start()
    try:
        await publish(first, second, third)
        await read_from(kafka, start, until=fed(3), timeout_s=30)
    finally:
        await router.stop()

    restarted = router_for(kafka, signing)  # state rebuilt from the log
    await restarted.start()
    try:
        await publish(fourth)
        await read_from(kafka, start, until=fed(4), timeout_s=30)
        await asyncio.sleep(1)
    finally:
        await restarted.stop()

    records = await read_from(kafka, start, until=lambda _: False, timeout_s=2)
    (emitted,) = considerations(records)
    opened = open_consideration(emitted, await load_trust(kafka), utc_now())
    assert opened.key.owner == "liaison"
    event = opened.event
    assert (event.area, event.theme.value, event.trigger.value) == (
        "E08000035",
        "neglect",
        "several_inspectorates",
    )
    # The first two to arrive make it (which two depends on the order the router reads
    # three topics in: consumers/jtai.py, "What arrival order can change"); the third is
    # covered by its window and the fourth, after the restart, too.
    contributors = set(event.contributing_event_ids)
    assert len(contributors) == 2
    assert contributors <= {first.id, second.id, third.id}
    assert len(event.contributing_inspectorates) == 2
    assert "neglect" in event.rationale
    assert header_map(emitted.headers)[HEADER_EVENT_ID] == str(event.id).encode()


async def test_quarantine_list_and_redrive_once_the_key_is_registered(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.programme(Programme.CLAS), topics.quarantine])
    newcomer = SigningKey.generate("ofsted")  # its public half is not on the bus yet
    event = concern(subject_agencies=["health"])
    router = router_for(kafka, signing)
    await router.start()
    try:
        async with transactional_sink(kafka, "ofsted") as sink:
            await Publisher(sink, topics, newcomer, utc_now).publish(event)
        await read_from(kafka, start, until=lambda r: len(r) >= 1, timeout_s=30)

        listed = await run_liaison(kafka, "quarantine", "list")
        assert listed.returncode == 0, listed.stderr
        assert "unknown_key" in listed.stdout
        assert "1 record(s)" in listed.stdout

        early = await run_liaison(kafka, "quarantine", "redrive", "0")
        assert early.returncode == 1
        assert "still fails" in early.stderr
        assert "unknown_key" in early.stderr

        await register(kafka, [KeyState.new(newcomer)], utc_now())  # root-signed
        done = await run_liaison(kafka, "quarantine", "redrive", "0")
        assert done.returncode == 0, done.stderr

        def routed(records: Sequence[InboundRecord]) -> bool:
            return any(r.topic == topics.programme(Programme.CLAS) for r in records)

        records = await read_from(kafka, start, until=routed, timeout_s=30)
        clas = [r for r in records if r.topic == topics.programme(Programme.CLAS)]
        assert [header_map(r.headers)[HEADER_EVENT_ID] for r in clas] == [str(event.id).encode()]

        again = await run_liaison(kafka, "quarantine", "redrive", "0")
        assert again.returncode == 1
        assert "already redriven" in again.stderr
        relisted = await run_liaison(kafka, "quarantine", "list")
        assert "1 record(s)" in relisted.stdout  # the redrive marker is not a refused record
    finally:
        await router.stop()


def refused_as_if_from(topic: str, key: SigningKey) -> bytes:
    """A quarantine record of a validly signed Ofsted event that says it came from ``topic``."""
    event = concern(subject_agencies=["police"], finding="cause_of_concern")
    sealed = seal(event, key, utc_now())
    record = InboundRecord(
        topic=topic,
        partition=0,
        offset=0,
        timestamp_ms=int(utc_now().timestamp() * 1000),
        key=event.area.encode(),
        value=sealed.envelope,
        headers=event_headers(event),
        timestamp_type=1,
    )
    return encode_quarantined(quarantined(record, "unknown_key", "forged", utc_now()))


async def put_on_quarantine(settings: Settings, *values: bytes) -> list[int]:
    """Write ``values`` to the quarantine topic as anyone able to write there could."""
    async with kafka_sink(settings) as sink:
        return [
            (await sink.send(OutboundRecord(settings.topics.quarantine, b"k", value))).offset
            for value in values
        ]


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


async def test_a_forged_quarantine_record_naming_a_programme_queue_is_not_redriven(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    custody = topics.programme(Programme.CUSTODY)
    watched = [custody, topics.programme(Programme.NCPI), *topics.all_events()]
    before = await end_offsets(kafka, watched)
    (forged,) = await put_on_quarantine(kafka, refused_as_if_from(custody, signing["ofsted"]))

    refused = await run_liaison(kafka, "quarantine", "redrive", str(forged))
    assert refused.returncode == 1
    message = one_error_line(refused.stderr)
    assert "only redriven there" in message
    assert topics.events(Inspectorate.OFSTED) in message
    assert custody not in message
    assert await end_offsets(kafka, watched) == before  # nothing produced anywhere

    listed = await run_liaison(kafka, "quarantine", "list")
    assert listed.returncode == 0, listed.stderr
    assert "1 record(s)" in listed.stdout  # and no redrive marker was written


async def test_unreadable_quarantine_records_are_listed_as_such_and_the_rest_as_usual(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    readable = refused_as_if_from(kafka.topics.events(Inspectorate.OFSTED), signing["ofsted"])
    junk, _, _ = await put_on_quarantine(kafka, b"not json", b"[" * 80000, readable)

    listed = await run_liaison(kafka, "quarantine", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    assert "3 record(s)" in listed.stdout
    assert listed.stdout.count("unreadable quarantine record") == 2
    assert "unknown_key" in listed.stdout
    assert "not json" not in listed.stdout  # an unreadable record's content is never shown

    unreadable = await run_liaison(kafka, "quarantine", "redrive", str(junk))
    assert unreadable.returncode == 1
    assert "unreadable quarantine record" in one_error_line(unreadable.stderr)


async def test_rules_explain_prints_every_destination_and_publishes_nothing(
    kafka: Settings, tmp_path: Path
) -> None:
    routed = concern(subject_agencies=["police"], finding="cause_of_concern")
    nowhere = concern(subject_agencies=["education"])
    file = tmp_path / "two.jsonl"
    file.write_bytes(encode_event(routed) + b"\n" + encode_event(nowhere) + b"\n")
    before = await end_offsets(kafka, list(kafka.topics.all_events()))
    shown = await run_liaison(kafka, "rules", "explain", str(file))
    assert shown.returncode == 0, shown.stderr
    assert "liaison.programme.ncpi" in shown.stdout
    assert "liaison.programme.peel" in shown.stdout
    assert "police.peel" in shown.stdout
    assert "no rule matched" in shown.stdout
    assert await end_offsets(kafka, list(kafka.topics.all_events())) == before


async def test_a_bad_rules_file_stops_the_router_naming_file_rule_and_field(
    kafka: Settings, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nid = "police.ncpi"\nreason = "r"\nagencies = ["polise"]\nto = ["ncpi"]\n'
    )
    process = await asyncio.create_subprocess_exec(
        *LIAISON, "serve", "router",
        env={**env_for(kafka), "LIAISON_RULES_FILE": str(rules)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    message = err.decode()
    assert str(rules) in message
    assert "rule 'police.ncpi'" in message
    assert "agencies.0" in message
    assert "polise" in message
    assert "Traceback" not in message
