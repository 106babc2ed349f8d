"""``liaison serve deliver`` against a real local HTTP server that fails on purpose, and
the real broker.

The routed records are produced here as the router writes them (the publisher's
envelope, unchanged, on ``liaison.programme.<p>`` with the contract and CloudEvents
headers and the router's route attestation, signed by the bus key, naming the rules and
reason), so these tests do not depend on the router. Their plain ``liaison_rules`` /
``liaison_reason`` headers say something else: only the signed route is ever posted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from structlog.testing import capture_logs

import services.deliver
from consumers.delivery import RetryPolicy, delivery_id, location_id
from consumers.jtai import consideration_id
from schemas.audit import DeliveryRefused, EnvelopeDelivered, SealedRecord, judge_sealed
from schemas.envelope import seal, seal_consideration, verify
from schemas.events import ConcernRaised, Theme, decode_event
from schemas.inspectorates import JTAI, Inspectorate, Programme
from schemas.jtai import JtaiConsiderationRequested, JtaiTrigger
from schemas.keys import BUS, SigningKey, TrustStore
from schemas.outcomes import DeliveryRecorded, DeliveryStatus
from schemas.records import (
    InboundRecord,
    OutboundRecord,
    header_map,
    signed_headers,
    signed_record,
)
from schemas.signed import DELIVERY_TOPIC_TYPES
from services.deliver import deliver, deliver_group_id, deliver_transactional_id
from services.kafka import committed_offsets, group_members, read_from
from services.reading import read_signed
from services.settings import Settings
from services.trust import load_trust
from tests.conftest import env_for, one_error_line, run_liaison
from tests.factories import concern, utc_now
from tests.integration.test_inbox import attested
from tests.integration.test_publish_transaction import everything

pytestmark = pytest.mark.kafka

RULES = b"police.ncpi"
REASON = b"concern about police practice (front door)"
WAIT_S = 60.0


# -- the programme's system: a real HTTP server on 127.0.0.1 --------------------------------


@dataclass(frozen=True, slots=True)
class Post:
    """One request the endpoint received, and what it answered."""

    key: str
    body: bytes
    headers: dict[str, str]
    status: int
    at: float


Script = Callable[[str, int], tuple[int, dict[str, str], float]]
"""(idempotency key, how many posts of it came before) -> (status, headers, delay s)."""


def always_ok(key: str, seen: int) -> tuple[int, dict[str, str], float]:
    del key, seen
    return 200, {}, 0.0


@dataclass
class Endpoint:
    """A programme's system that answers by ``script`` and keeps every post."""

    script: Script = always_ok
    posts: list[Post] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> Counter[str]:
        """Posts answered 2xx, per idempotency key."""
        with self.lock:
            return Counter(p.key for p in self.posts if 200 <= p.status < 300)

    def tried(self) -> Counter[str]:
        """Every post received, per idempotency key."""
        with self.lock:
            return Counter(p.key for p in self.posts)

    def of(self, key: str) -> list[Post]:
        with self.lock:
            return [p for p in self.posts if p.key == key]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                key = self.headers.get("Idempotency-Key", "")
                with endpoint.lock:
                    seen = sum(1 for p in endpoint.posts if p.key == key)
                    status, extra, delay = endpoint.script(key, seen)
                    endpoint.posts.append(
                        Post(key, body, dict(self.headers.items()), status, time.monotonic())
                    )
                time.sleep(delay)
                with contextlib.suppress(OSError):  # the client may have given up
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        return Handler


@contextlib.contextmanager
def serving(endpoint: Endpoint, port: int = 0) -> Iterator[str]:
    """``endpoint`` served on 127.0.0.1 (``port`` 0: any free one); its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), endpoint.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/inbox"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    """A port nothing listens on now (connections to it are refused until served)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- routed records, as the router writes them ------------------------------------------------


def copied(
    settings: Settings, programme: Programme, event: ConcernRaised, key: SigningKey
) -> OutboundRecord:
    """``event`` sealed by its publisher and put on ``programme``'s queue by someone with
    write access, not the router: made-up rules and reason, no route."""
    envelope = seal(event, key, utc_now()).envelope
    headers = (*signed_headers(event), ("liaison_rules", RULES), ("liaison_reason", b"act now"))
    return OutboundRecord(
        settings.topics.programme(programme), event.area.encode(), envelope, headers
    )


def routed(
    settings: Settings,
    programme: Programme,
    event: ConcernRaised,
    signing: dict[str, SigningKey],
) -> OutboundRecord:
    """``event`` sealed by its publisher and forwarded to ``programme``'s queue by the
    router: with its route (rules ``RULES``, reason ``REASON``); the plain headers differ."""
    envelope = seal(event, signing[str(event.source)], utc_now()).envelope
    plain = (("liaison_rules", b"plain.rule"), ("liaison_reason", b"plain: never posted"))
    record = OutboundRecord(
        settings.topics.programme(programme),
        event.area.encode(),
        envelope,
        (*signed_headers(event), *plain),
    )
    return attested(record, event, signing[BUS], rules=(RULES.decode(),), reason=REASON.decode())


async def produce(settings: Settings, records: Sequence[OutboundRecord]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(r.topic, r.value, key=r.key, headers=list(r.headers))
    finally:
        await producer.stop()


def police_concern(**overrides: Any) -> ConcernRaised:
    """An Ofsted concern about the police (routed to HMICFRS's NCPI)."""
    return concern(subject_agencies=["police"], theme="front_door", **overrides)


# -- reading the results ------------------------------------------------------------------------


def appended_at(record: InboundRecord) -> dt.datetime:
    return dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)


async def results(settings: Settings, n: int) -> list[DeliveryRecorded]:
    """The ``DeliveryRecorded`` events on liaison.delivery once there are ``n`` (or the
    wait ends), each verified (a record that does not verify fails the test)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        found = await read_signed(
            settings,
            {settings.topics.delivery: DELIVERY_TOPIC_TYPES},
            await load_trust(settings),
            utc_now(),
        )
        assert not found.refused, [str(e.reason) for _, e in found.refused]
        events = [opened.event for _, opened in found.verified]
        if len(events) >= n or time.monotonic() > deadline:
            return [e for e in events if isinstance(e, DeliveryRecorded)]
        await asyncio.sleep(0.3)


async def delivery_audits(settings: Settings) -> list[tuple[SealedRecord, InboundRecord]]:
    """Every ``delivery.*`` audit record, judged against the trust store."""
    trust = await load_trust(settings)
    records = await read_from(
        settings, {(settings.topics.audit, 0): 0}, until=lambda _: False, timeout_s=2
    )
    found = []
    for raw in records:
        if not header_map(raw.headers).get("action", b"").startswith(b"delivery."):
            continue
        judged = judge_sealed(raw.value, appended_at(raw), trust)
        assert isinstance(judged, SealedRecord), judged.reason
        found.append((judged, raw))
    return found


@contextlib.asynccontextmanager
async def delivering(
    settings: Settings, programme: Programme, url: str, key: SigningKey, **options: Any
) -> AsyncIterator[None]:
    """``deliver`` running in this loop for the block; stopped (and checked) after it."""
    stop = asyncio.Event()
    task = asyncio.create_task(deliver(settings, programme, url, key=key, stop=stop, **options))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


FAST = RetryPolicy(base_s=0.01, cap_s=0.05, retry_after_cap_s=0.3)
"""Tiny waits for tests (a Retry-After is honoured up to 0.3 s)."""


def tampered_record(record: OutboundRecord) -> OutboundRecord:
    """``record`` with its signed payload changed (the signature no longer verifies)."""
    envelope = json.loads(record.value)
    payload = base64.b64decode(envelope["payload"]).replace(b'"severity":2', b'"severity":1')
    envelope["payload"] = base64.b64encode(payload).decode()
    return OutboundRecord(record.topic, record.key, json.dumps(envelope).encode(), record.headers)


def assert_posted_as_routed(
    endpoint: Endpoint, sent: dict[str, bytes], trust: TrustStore, publisher: SigningKey
) -> None:
    """Every body is the routed envelope, byte for byte, verifying with the publisher's
    key; the headers carry the idempotency key, the CloudEvents attributes and the rules."""
    for post in endpoint.posts:
        assert post.body == sent[post.key]
        verified = verify(InboundRecord("x", 0, 0, 0, None, post.body), trust, utc_now())
        assert verified.key.keyid == publisher.keyid
        event = decode_event(verified.payload)
        assert str(event.id) == post.key
        assert post.headers["Content-Type"] == "application/vnd.dsse.envelope.v1+json"
        assert post.headers["ce-id"] == post.key
        assert post.headers["ce-source"] == f"urn:liaison:{publisher.owner}"
        assert post.headers["ce-type"] == "uk.inspectorate.concern.raised.v1"
        assert post.headers["ce-specversion"] == "1.0"
        assert dt.datetime.fromisoformat(post.headers["ce-time"]) == event.occurred_at
        assert post.headers["Liaison-Rules"] == RULES.decode()
        assert post.headers["Liaison-Reason"] == REASON.decode()


async def place_of(settings: Settings, record: OutboundRecord) -> str:
    """How a record not posted is named in its audit record: by where it is."""
    (found,) = [r for r in await everything(settings, record.topic) if r.value == record.value]
    return str(location_id(found))


async def assert_audited(
    settings: Settings, expected: dict[str, tuple[int, str | None]], receiver: SigningKey
) -> None:
    """One ``delivery.*`` audit record per event id (or place, for a record not posted),
    signed by ``receiver`` for ``inspectorate:<it>``: (attempts, refusal reason or
    ``None`` when delivered)."""
    audits = await delivery_audits(settings)
    found: dict[str, tuple[int, str | None]] = {}
    for judged, _ in audits:
        record = judged.record
        assert judged.key.keyid == receiver.keyid
        assert isinstance(record, EnvelopeDelivered | DeliveryRefused)
        assert record.actor == f"inspectorate:{receiver.owner}"
        assert record.programme is Programme.NCPI
        reason = record.reason if isinstance(record, DeliveryRefused) else None
        found[str(record.event_ids[0])] = (record.attempts, reason)
    assert len(audits) == len(found) == len(expected)
    assert found == expected


# -- the tests ----------------------------------------------------------------------------------


async def test_each_event_is_received_once_retried_or_refused_and_recorded(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    ok_at_once, flaky, slow, limited, bad, failing, tampered = (police_concern() for _ in range(7))
    tries = 4

    def script(key: str, seen: int) -> tuple[int, dict[str, str], float]:
        if key == str(flaky.id) and seen < 2:
            return 503, {}, 0.0
        if key == str(slow.id) and seen == 0:
            return 503, {}, 1.5  # longer than the client's timeout: a timeout there
        if key == str(limited.id) and seen == 0:
            return 429, {"Retry-After": "30"}, 0.0
        if key == str(bad.id):
            return 400, {}, 0.0
        if key == str(failing.id):
            return 503, {}, 0.0
        return 200, {}, 0.0

    ofsted, hmicfrs = signing["ofsted"], signing["hmicfrs"]
    in_order = (ok_at_once, flaky, slow, tampered, limited, bad, failing)
    records = [routed(kafka, Programme.NCPI, e, signing) for e in in_order]
    records[3] = tampered_record(records[3])
    await produce(kafka, records)

    endpoint = Endpoint(script)
    with serving(endpoint) as url, capture_logs() as logs:
        async with delivering(
            kafka, Programme.NCPI, url, hmicfrs, tries=tries, timeout_s=0.5, policy=FAST
        ):
            recorded = await results(kafka, 6)

    # The endpoint accepted each deliverable event exactly once; nothing else was accepted.
    delivered = {str(e.id) for e in (ok_at_once, flaky, slow, limited)}
    assert endpoint.accepted() == dict.fromkeys(delivered, 1)
    assert endpoint.tried() == {
        str(ok_at_once.id): 1,
        str(flaky.id): 3,
        str(slow.id): 2,
        str(limited.id): 2,
        str(bad.id): 1,
        str(failing.id): tries,
    }  # and the tampered record never posted
    sent = {header_map(r.headers)["event_id"].decode(): r.value for r in records}
    assert_posted_as_routed(endpoint, sent, await load_trust(kafka), ofsted)

    # Retry-After was honoured, up to its cap (0.3 s), not the 30 s asked for.
    first, second = endpoint.of(str(limited.id))
    assert 0.3 <= second.at - first.at < 5

    # Each result recorded once on liaison.delivery, signed by HMICFRS, in queue order.
    assert [r.event_id for r in recorded] == [e.id for e in in_order if e is not tampered]
    assert {str(r.event_id): (r.status, r.attempts, r.last_error) for r in recorded} == {
        str(ok_at_once.id): (DeliveryStatus.DELIVERED, 1, None),
        str(flaky.id): (DeliveryStatus.DELIVERED, 3, None),
        str(slow.id): (DeliveryStatus.DELIVERED, 2, None),
        str(limited.id): (DeliveryStatus.DELIVERED, 2, None),
        str(bad.id): (DeliveryStatus.REFUSED, 1, "http_400"),
        str(failing.id): (DeliveryStatus.REFUSED, tries, "http_503"),
    }
    for r in recorded:
        assert (r.source.value, r.programme) == ("hmicfrs", Programme.NCPI)
        assert r.id == delivery_id(r.event_id, Programme.NCPI, Inspectorate.HMICFRS)
        assert r.area == "E08000025"

    # Their audit records, and the tampered record's refusal (never posted: 0 tries), named
    # by where it is: never by the event id its unverified headers claim.
    tampered_at = await place_of(kafka, records[3])
    await assert_audited(
        kafka,
        {
            str(ok_at_once.id): (1, None),
            str(flaky.id): (3, None),
            str(slow.id): (2, None),
            str(limited.id): (2, None),
            str(bad.id): (1, "http_400"),
            str(failing.id): (tries, "http_503"),
            tampered_at: (0, "bad_signature"),
        },
        hmicfrs,
    )

    # One log line per change of state, with ids and codes, never the envelope's content.
    states = [
        (e["event"], e.get("event_id", e.get("record_id")))
        for e in logs
        if e["event"].startswith("delivery_")
    ]
    assert states.count(("delivery_retrying", str(flaky.id))) == 2
    assert states.count(("delivery_delivered", str(flaky.id))) == 1
    assert states.count(("delivery_refused", str(failing.id))) == 1
    assert states.count(("delivery_retrying", str(failing.id))) == tries - 1
    assert states.count(("delivery_refused", tampered_at)) == 1
    assert str(tampered.id) not in {event_id for _, event_id in states}
    waits = [e for e in logs if e["event"] == "delivery_retrying" and e["event_id"] == str(slow.id)]
    assert [w["error"] for w in waits] == ["timeout"]
    assert ok_at_once.summary not in repr(logs)


async def test_a_refusal_period_then_a_restart_posts_each_event_once(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    """The endpoint refuses connections at first, then recovers; a restarted deliverer
    carries on after what its predecessor recorded and re-posts nothing."""
    first, second, third = (police_concern() for _ in range(3))
    hmicfrs = signing["hmicfrs"]
    await produce(kafka, [routed(kafka, Programme.NCPI, e, signing) for e in (first, second)])
    port = free_port()
    endpoint = Endpoint()
    slow_enough = RetryPolicy(base_s=0.05, cap_s=0.2)
    options = {"tries": 200, "timeout_s": 1.0, "policy": slow_enough}

    with capture_logs() as logs:
        async with delivering(
            kafka, Programme.NCPI, f"http://127.0.0.1:{port}/inbox", hmicfrs, **options
        ):
            deadline = time.monotonic() + WAIT_S
            while not any(e.get("error") == "connect_error" for e in logs):
                assert time.monotonic() < deadline, "no connection was refused"
                await asyncio.sleep(0.05)
            with serving(endpoint, port):
                assert len(await results(kafka, 2)) == 2

    assert endpoint.tried() == {str(first.id): 1, str(second.id): 1}
    refused = [e for e in logs if e["event"] == "delivery_retrying"]
    assert {e["error"] for e in refused} == {"connect_error"}
    assert {e["event_id"] for e in refused} == {str(first.id)}  # in order: the first waits

    # Restarted: the third event is delivered, the first two are not posted again.
    await produce(kafka, [routed(kafka, Programme.NCPI, third, signing)])
    with serving(endpoint, port):
        async with delivering(
            kafka, Programme.NCPI, f"http://127.0.0.1:{port}/inbox", hmicfrs, **options
        ):
            assert len(await results(kafka, 3)) == 3
            await asyncio.sleep(1.0)  # room for a wrong repeat to show
    assert endpoint.tried() == {str(first.id): 1, str(second.id): 1, str(third.id): 1}

    recorded = await results(kafka, 3)
    assert sorted(str(r.event_id) for r in recorded) == sorted(
        str(e.id) for e in (first, second, third)
    )
    by_event = {r.event_id: r for r in recorded}
    assert by_event[first.id].status is DeliveryStatus.DELIVERED
    assert by_event[first.id].attempts > 1
    assert by_event[second.id].attempts == 1
    audits = await delivery_audits(kafka)
    assert len(audits) == 3
    # The group's offsets are past every record it handled (committed in the transactions).
    offsets = await committed_offsets(
        kafka, deliver_group_id(kafka, Programme.NCPI, Inspectorate.HMICFRS)
    )
    assert set(offsets.values()) == {3}  # one area: one partition, offsets 0 to 2


async def test_a_long_retry_keeps_the_group_and_the_order(
    kafka: Settings, signing: dict[str, SigningKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retrying one envelope for longer than ``max_poll_interval_ms`` does not cost the
    member its place in the group (it polls, paused, while it waits), and the envelope
    behind it waits its turn."""
    monkeypatch.setattr(services.deliver, "MAX_POLL_INTERVAL_MS", 2000)
    stuck, behind = police_concern(), police_concern()
    await produce(kafka, [routed(kafka, Programme.NCPI, e, signing) for e in (stuck, behind)])
    recovers_at: list[float] = []

    def script(key: str, seen: int) -> tuple[int, dict[str, str], float]:
        if key == str(stuck.id) and seen == 0:
            recovers_at.append(time.monotonic() + 5.0)
        if key == str(stuck.id) and time.monotonic() < recovers_at[0]:
            return 503, {}, 0.0
        return 200, {}, 0.0

    endpoint = Endpoint(script)
    group = deliver_group_id(kafka, Programme.NCPI, Inspectorate.HMICFRS)
    members: list[int] = []
    with serving(endpoint) as url:
        async with delivering(
            kafka, Programme.NCPI, url, signing["hmicfrs"], tries=1000, timeout_s=1.0,
            policy=RetryPolicy(base_s=0.2, cap_s=0.5),
        ):  # fmt: skip
            deadline = time.monotonic() + WAIT_S
            while not endpoint.tried():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            while not endpoint.accepted():
                assert time.monotonic() < deadline
                members.append(await group_members(kafka, group))
                await asyncio.sleep(0.2)
            recorded = await results(kafka, 2)

    assert len(members) > 10
    assert set(members) == {1}  # never left (nor rejoined) while it retried
    assert endpoint.accepted() == {str(stuck.id): 1, str(behind.id): 1}
    assert endpoint.tried()[str(stuck.id)] > 5
    assert endpoint.of(str(behind.id))[0].at > endpoint.of(str(stuck.id))[-1].at
    assert [r.event_id for r in recorded] == [stuck.id, behind.id]


# -- the command ----------------------------------------------------------------------------------


async def test_serve_deliver_for_jtai_delivers_and_stops_cleanly_on_sigterm(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    event = police_concern()
    await produce(kafka, [routed(kafka, JTAI, event, signing)])
    endpoint = Endpoint()
    with serving(endpoint) as url:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services", "serve", "deliver", "--programme", "jtai",
            "--as", "cqc", "--to", url, "--tries", "3", "--timeout", "5",
            env={**env_for(kafka), "LIAISON_LOG_FORMAT": "json"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            (recorded,) = await results(kafka, 1)
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "Traceback" not in out.decode() + err.decode()
    assert endpoint.accepted() == {str(event.id): 1}
    assert (recorded.source.value, recorded.programme, recorded.status) == (
        "cqc",
        JTAI,
        DeliveryStatus.DELIVERED,
    )
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert [line["event_id"] for line in lines if line["event"] == "delivery_delivered"] == [
        str(event.id)
    ]
    assert event.summary not in err.decode()
    assert any(line["event"] == "deliver_stopped" for line in lines)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--programme", "jtai", "--to", "http://127.0.0.1:9/x"], "--as is required"),
        (["--programme", "ncpi", "--as", "ofsted", "--to", "http://h/x"], "run by hmicfrs"),
        (["--programme", "ncpi", "--to", "ftp://h/x"], "--to must be"),
        (["--programme", "ncpi", "--to", "http://h:99999/x"], "--to must be"),
        (["--programme", "ncpi", "--to", "http://h/x", "--tries", "0"], "--tries"),
        (["--programme", "ncpi", "--to", "http://h/x", "--timeout", "0"], "--timeout"),
        (["--programme", "ncpi", "--to", "http://h/x", "--timeout", "nan"], "--timeout"),
    ],
)
async def test_serve_deliver_refuses_bad_arguments_with_one_line(
    base_settings: Settings, args: list[str], says: str
) -> None:
    done = await run_liaison(base_settings, "serve", "deliver", *args)
    assert says in one_error_line(done)


def test_the_deliver_group_is_named_per_programme_and_jtai_receiver(
    base_settings: Settings,
) -> None:
    prefixed = base_settings.model_copy(update={"topic_prefix": "t."})
    hmicfrs, cqc, ofsted = Inspectorate.HMICFRS, Inspectorate.CQC, Inspectorate.OFSTED
    assert deliver_group_id(prefixed, Programme.NCPI, hmicfrs) == "t.liaison-deliver-ncpi"
    assert deliver_group_id(prefixed, JTAI, cqc) == "t.liaison-deliver-jtai-cqc"
    assert deliver_transactional_id(prefixed, JTAI, cqc) == "t.liaison.deliver.jtai-cqc"
    assert deliver_transactional_id(prefixed, JTAI, cqc) != deliver_transactional_id(
        prefixed, JTAI, ofsted
    )
    assert deliver_transactional_id(prefixed, Programme.NCPI, hmicfrs) == ("t.liaison.deliver.ncpi")


async def test_a_record_without_its_route_is_never_posted(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    """A genuine finding copied onto NCPI's queue (made-up rules and reason, or PEEL's
    route with it) is refused like a record that does not verify: never posted, and its
    refusal names where it is, not the id it carries."""
    kept_away, on_peel, fine = police_concern(), police_concern(), police_concern()
    ncpi = kafka.topics.programme(Programme.NCPI)
    copy = copied(kafka, Programme.NCPI, kept_away, signing["ofsted"])
    moved = replace(routed(kafka, Programme.PEEL, on_peel, signing), topic=ncpi)
    good = routed(kafka, Programme.NCPI, fine, signing)
    await produce(kafka, [copy, moved, good])  # one area: one partition, in this order

    endpoint = Endpoint()
    with serving(endpoint) as url:
        async with delivering(
            kafka, Programme.NCPI, url, signing["hmicfrs"], tries=2, timeout_s=2.0, policy=FAST
        ):
            recorded = await results(kafka, 1)

    assert endpoint.tried() == {str(fine.id): 1}
    assert [r.event_id for r in recorded] == [fine.id]
    await assert_audited(
        kafka,
        {
            str(fine.id): (1, None),
            await place_of(kafka, copy): (0, "route_unproven"),
            await place_of(kafka, moved): (0, "route_unproven"),
        },
        signing["hmicfrs"],
    )


async def test_two_inspectorates_deliver_the_jtai_queue_each_to_its_own_system(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    """Neither fences the other nor shares its group: each system receives everything,
    and each result has its own id. A consideration (published to liaison.jtai by the
    bus, not routed) is delivered too, without the router's headers."""
    events = [police_concern() for _ in range(3)]
    start = utc_now() - dt.timedelta(days=3)
    consideration = JtaiConsiderationRequested(
        id=consideration_id("E08000025", Theme.NEGLECT, start), occurred_at=start,
        area="E08000025", theme=Theme.NEGLECT, window_start=start,
        window_end=start + dt.timedelta(days=180), trigger=JtaiTrigger.SEVERAL_INSPECTORATES,
        contributing_event_ids=tuple(e.id for e in events[:2]),
        contributing_inspectorates=(Inspectorate.CQC, Inspectorate.OFSTED),
        rationale="Concerns about neglect from two inspectorates within 180 days.",
    )  # fmt: skip
    raised = seal_consideration(consideration, signing[BUS], utc_now()).envelope
    await produce(
        kafka,
        [
            *(routed(kafka, JTAI, e, signing) for e in events),
            signed_record(kafka.topics.jtai, consideration, raised),
        ],
    )
    ids = {str(consideration.id), *(str(e.id) for e in events)}
    cqc, ofsted = Endpoint(), Endpoint()
    with serving(cqc) as cqc_url, serving(ofsted) as ofsted_url:
        async with (
            delivering(kafka, JTAI, cqc_url, signing["cqc"], tries=2, policy=FAST),
            delivering(kafka, JTAI, ofsted_url, signing["ofsted"], tries=2, policy=FAST),
        ):
            recorded = await results(kafka, 8)

    assert cqc.accepted() == dict.fromkeys(ids, 1) == ofsted.accepted()
    assert sorted((r.source.value, str(r.event_id)) for r in recorded) == sorted(
        (who, i) for who in ("cqc", "ofsted") for i in ids
    )
    assert len({r.id for r in recorded}) == 8
    assert all(r.id == delivery_id(r.event_id, JTAI, Inspectorate(r.source)) for r in recorded)
    (posted,) = cqc.of(str(consideration.id))
    assert "Liaison-Rules" not in posted.headers
    assert posted.headers["ce-type"] == consideration.type
    for group in ("jtai-cqc", "jtai-ofsted"):
        offsets = await committed_offsets(kafka, f"{kafka.topic_prefix}liaison-deliver-{group}")
        assert sum(offsets.values()) == 4
