"""`liaison publish --as NAME FILE` against the real broker, with the router running."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from producers.publisher import BATCH
from schemas.events import encode_event
from schemas.inspectorates import Inspectorate, Programme
from schemas.keys import SigningKey
from schemas.records import HEADER_EVENT_ID, InboundRecord, header_map
from services.inputs import MAX_INPUT_BYTES
from services.kafka import end_offsets, read_from
from services.settings import Settings
from tests.conftest import one_error_line, router_for, run_liaison
from tests.factories import concern
from tests.integration.test_publish_transaction import (
    assert_each_event_audited_once,
    everything,
    publications,
    spread,
)

pytestmark = pytest.mark.kafka


def event_ids(records: Sequence[InboundRecord], topic: str) -> list[str]:
    return [header_map(r.headers)[HEADER_EVENT_ID].decode() for r in records if r.topic == topic]


async def test_publish_reports_invalid_lines_sends_the_rest_and_dedups_republish(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    # A key of HMICFRS's own on this machine (the fixture's is only on the bus).
    generated = await run_liaison(kafka, "keys", "rotate", "--inspectorate", "hmicfrs")
    assert generated.returncode == 0, generated.stderr
    good = [
        concern(source="hmicfrs", programme="ncpi", subject_agencies=["health"]) for _ in range(40)
    ]
    invalid = json.loads(encode_event(concern(source="hmicfrs", programme="peel")))
    invalid["summary"] = "Call the duty worker on 07700 900123."
    other = concern()  # Ofsted's, not HMICFRS's
    lines = [encode_event(e).decode() for e in good[:20]]
    lines += [json.dumps(invalid), encode_event(other).decode()]
    lines += [encode_event(e).decode() for e in good[20:]]
    file = tmp_path / "findings.jsonl"
    file.write_text("\n".join(lines) + "\n")

    topics = kafka.topics
    clas = topics.programme(Programme.CLAS)
    hmicfrs = topics.events(Inspectorate.HMICFRS)
    start = await end_offsets(kafka, [hmicfrs, clas, topics.feed])
    await_start = await end_offsets(kafka, [topics.quarantine])
    router = router_for(kafka, signing)
    await router.start()
    try:
        first = await run_liaison(kafka, "publish", "--as", "hmicfrs", str(file))
        assert first.returncode == 2, first.stderr
        assert first.stdout.split() == [str(e.id) for e in good]
        assert "line 21: summary:" in first.stderr
        assert "phone_number" in first.stderr
        assert "07700 900123" not in first.stderr + first.stdout
        assert "line 22: source: is ofsted, but this is publishing as hmicfrs" in first.stderr
        assert "40 published as hmicfrs; 2 problem(s)" in first.stderr

        # The same file again: Kafka gets the events twice, the programmes once.
        second = await run_liaison(kafka, "publish", "--as", "hmicfrs", str(file))
        assert second.returncode == 2
        assert second.stdout.split() == [str(e.id) for e in good]

        def done(records: Sequence[InboundRecord]) -> bool:
            return len(event_ids(records, hmicfrs)) >= 80 and len(event_ids(records, clas)) >= 40

        await read_from(kafka, start, until=done, timeout_s=60)
        # Then everything, including any (wrong) second routing, after a pause for it.
        await asyncio.sleep(2)
        records = await read_from(kafka, start, until=lambda _: False, timeout_s=3)
    finally:
        await router.stop()

    assert len(event_ids(records, hmicfrs)) == 80  # both runs were sent
    # Each copy with its own event.published, naming where that copy is.
    assert len(await publications(kafka)) == 80
    assert sorted(event_ids(records, clas)) == sorted(str(e.id) for e in good)  # routed once
    assert sorted(event_ids(records, topics.feed)) == sorted(str(e.id) for e in good)
    quarantined = await read_from(kafka, await_start, until=lambda _: False, timeout_s=1)
    assert quarantined == []  # invalid lines never reached Kafka


async def pin_a_root(settings: Settings) -> None:
    """A local trust root, as a deployment has, and no keys under it yet."""
    done = await run_liaison(settings, "keys", "root", "init")
    assert done.returncode == 0, done.stderr


async def test_publish_without_a_key_says_how_to_make_one(kafka: Settings, tmp_path: Path) -> None:
    await pin_a_root(kafka)
    file = tmp_path / "one.json"
    file.write_bytes(encode_event(concern()))
    done = await run_liaison(kafka, "publish", "--as", "ofsted", str(file))
    assert done.returncode == 1
    assert "liaison keys generate --inspectorate ofsted" in one_error_line(done)


def other_kind_of_key() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


async def test_a_malformed_signing_key_is_one_error_that_never_shows_it(
    kafka: Settings, tmp_path: Path
) -> None:
    await pin_a_root(kafka)
    file = tmp_path / "one.json"
    file.write_bytes(encode_event(concern()))
    good = SigningKey.generate("ofsted").to_pem().decode()
    for pem, why in [
        ("not a key", "not PEM"),
        (good[: len(good) // 2], "not PEM"),
        (other_kind_of_key(), "another type"),
    ]:
        done = await run_liaison(
            kafka, "publish", "--as", "ofsted", str(file), env={"LIAISON_SIGNING_KEY": pem}
        )
        line = one_error_line(done)
        assert done.returncode == 1
        assert line.startswith("error: LIAISON_SIGNING_KEY is not an unencrypted PKCS#8 PEM")
        assert why in line
        body = pem.splitlines()[1] if "\n" in pem else pem
        assert body not in done.stdout + done.stderr


async def test_an_occurred_at_out_of_range_is_one_problem_and_nothing_is_sent(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    event = json.loads(encode_event(concern()))
    event["occurred_at"] = "0001-01-01T00:00:00+23:59"
    file = tmp_path / "early.json"
    file.write_text(json.dumps(event))
    start = await end_offsets(kafka, [kafka.topics.events(Inspectorate.OFSTED)])
    pem = signing["ofsted"].to_pem().decode()
    done = await run_liaison(
        kafka, "publish", "--as", "ofsted", str(file), env={"LIAISON_SIGNING_KEY": pem}
    )
    assert "0 published as ofsted; 1 problem(s)" in one_error_line(done)
    assert done.returncode == 2
    assert "line 1: occurred_at:" in done.stderr
    assert await read_from(kafka, start, until=lambda _: False, timeout_s=1) == []


async def test_an_input_that_never_ends_is_refused_and_nothing_is_sent(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    start = await end_offsets(kafka, [kafka.topics.events(Inspectorate.OFSTED)])
    pem = signing["ofsted"].to_pem().decode()
    done = await run_liaison(
        kafka, "publish", "--as", "ofsted", "/dev/zero", env={"LIAISON_SIGNING_KEY": pem}
    )
    assert f"input is over the {MAX_INPUT_BYTES}-byte limit" in one_error_line(done)
    assert await read_from(kafka, start, until=lambda _: False, timeout_s=1) == []


async def test_publish_writes_one_signed_event_published_per_event_in_its_transaction(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    count = 2 * BATCH + 100  # three transactions
    events = spread(count)
    file = tmp_path / "many.jsonl"
    file.write_bytes(b"\n".join(encode_event(e) for e in events) + b"\n")
    pem = signing["ofsted"].to_pem().decode()
    done = await run_liaison(
        kafka, "publish", "--as", "ofsted", str(file), env={"LIAISON_SIGNING_KEY": pem}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(e.id) for e in events]  # each once, in file order
    assert f"{count} published as ofsted; 0 problem(s)" in done.stderr

    committed = await everything(kafka, kafka.topics.events(Inspectorate.OFSTED))
    assert len(committed) == count
    audited = await publications(kafka)
    assert_each_event_audited_once(committed, audited, signing)
    # One transaction per batch: on the one audit partition each transaction's records
    # are consecutive, and the next transaction starts after its commit marker.
    offsets = sorted(a.raw.offset for a in audited)
    runs = [1]
    for before, after in pairwise(offsets):
        if after == before + 1:
            runs[-1] += 1
        else:
            runs.append(1)
    assert runs == [BATCH, BATCH, 100]
