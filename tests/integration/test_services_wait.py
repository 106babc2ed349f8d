"""Services wait, not die (issue 13): `liaison serve audit` rides out its broker being
killed (SIGKILL, a refusal) or stopped (SIGSTOP, a hang) during a checkpoint.

The broker here is the test's own (a local broker under a temporary LIAISON_HOME, on
its own port): the shared test broker is never killed. Each test asserts that the
service is still running, logged one ``broker_unreachable`` line while the broker was
away (not one per retry) and one ``broker_reachable`` when it was back, and resumed:
records written afterwards are stored as leaves and checkpointed, no leaf lost or
repeated, ``audit verify`` passes, and the key warden beside it still reports a refused
key record, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from schemas.audit import FeedRead, decode_record, unsealed
from schemas.keys import AUDIT, READER, SigningKey
from services.audit_log import audit_outbound
from services.audit_service import open_store
from services.kafka import apply_topics, read_from
from services.keys_admin import ensure_keys
from services.local_broker import LocalBroker
from services.settings import Settings
from tests.conftest import env_for, run_liaison
from tests.factories import utc_now
from tests.integration.test_audit import audit_size
from tests.integration.test_local_broker import free_port_pair

pytestmark = pytest.mark.kafka

LIAISON = [sys.executable, "-m", "services"]
CHECKPOINT_EVERY_S = "2"


@dataclass
class OwnBroker:
    """A local broker of this module's own, and how to fault it."""

    broker: LocalBroker
    bootstrap: str

    def pid(self) -> int:
        pid = self.broker.recorded_pid()
        assert pid is not None, "the test's broker is not running"
        return pid

    def kill(self) -> None:
        """SIGKILL, and wait until the process is gone (the broker is our child)."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    def start(self) -> None:
        self.broker.start(lambda _: None)


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnBroker]:
    """A single-node broker under its own LIAISON_HOME and port; stopped at the end."""
    home = tmp_path_factory.mktemp("broker") / "home"
    port = free_port_pair()
    settings = Settings(home=home, local_broker_port=port, local_broker_heap_mb=256)
    broker = LocalBroker(settings)
    shared = LocalBroker(Settings()).libs
    if (shared / ".pom-sha256").exists():  # the same jars: no second Maven run
        broker.root.mkdir(parents=True, exist_ok=True)
        broker.libs.symlink_to(shared.resolve(), target_is_directory=True)
    own = OwnBroker(broker, broker.bootstrap)
    own.start()
    try:
        yield own
    finally:
        pid = broker.recorded_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a test that failed while it was stopped
        broker.stop(lambda _: None)


@pytest.fixture
async def settings(own_broker: OwnBroker, tmp_path: Path) -> Settings:
    """Settings for one test on the test's broker: its own topic prefix and keys."""
    settings = Settings(
        bootstrap_servers=own_broker.bootstrap,
        topic_prefix=f"test.{uuid.uuid4().hex[:10]}.",
        home=tmp_path / "home",
    )
    await apply_topics(settings, settings.topics.specs())
    return settings


@dataclass
class Service:
    """`liaison serve audit` as a subprocess, its stderr log lines collected."""

    process: asyncio.subprocess.Process
    lines: list[dict[str, object]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    """Lines that are not JSON log lines (an ``error:`` line, a traceback)."""

    def events(self, name: str) -> list[dict[str, object]]:
        return [line for line in self.lines if line.get("event") == name]

    async def logged(self, name: str, timeout_s: float) -> None:
        """Wait until event ``name`` is logged (the service must keep running)."""
        for _ in range(int(timeout_s * 10)):
            assert self.process.returncode is None, (self.lines[-20:], self.other)
            if self.events(name):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name} not logged in {timeout_s} s: {self.lines[-20:]}")


@contextlib.asynccontextmanager
async def serve_audit(settings: Settings) -> AsyncIterator[Service]:
    process = await asyncio.create_subprocess_exec(
        *LIAISON, "serve", "audit", "--checkpoint-every", CHECKPOINT_EVERY_S,
        # DEBUG: an unexpected failure prints its traceback (kept in ``other``).
        env={**env_for(settings), "LIAISON_LOG_FORMAT": "json", "LIAISON_LOG_LEVEL": "DEBUG"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    service = Service(process)

    async def collect() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                service.other.append(raw.decode(errors="replace"))
                continue
            if isinstance(line, dict):
                service.lines.append(line)

    collecting = asyncio.create_task(collect())
    try:
        yield service
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 60)
        await collecting


class Feeder:
    """Reads signed by the reader service's key, numbered 0, 1, 2 ... on the audit topic."""

    def __init__(self, settings: Settings, key: SigningKey) -> None:
        self._settings = settings
        self._key = key
        self.sent = 0

    async def feed(self, n: int) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.bootstrap_servers, enable_idempotence=True
        )
        await producer.start()
        try:
            for _ in range(n):
                record = FeedRead(
                    at=utc_now(), actor="analyst:test", analyst="test", purpose="load",
                    returned=self.sent,
                )  # fmt: skip
                out = audit_outbound(self._settings, record, self._key)
                await producer.send_and_wait(out.topic, out.value, key=out.key)
                self.sent += 1
        finally:
            await producer.stop()


def sizes(settings: Settings) -> tuple[int, int]:
    """The store's size and the size of its latest checkpoint (0: none)."""
    with open_store(settings) as store:
        latest = store.latest_checkpoint()
        return store.size(), latest.size if latest is not None else 0


async def until_stored(settings: Settings, total: int, *, checkpointed: bool) -> None:
    for _ in range(600):
        size, checkpoint = sizes(settings)
        if size >= total and (not checkpointed or checkpoint >= total):
            assert size == total
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"store at {sizes(settings)}, expected {total}")


async def checkpoint_pending(settings: Settings, feeder: Feeder, before: int) -> None:
    """Feed until the store holds leaves its latest checkpoint does not cover yet (the
    service is about to publish a checkpoint)."""
    for _ in range(10):
        await feeder.feed(20)
        for _ in range(200):
            size, checkpoint = sizes(settings)
            if size == before + feeder.sent:
                break
            await asyncio.sleep(0.02)
        if size > checkpoint:
            return
    raise AssertionError("the checkpoint was never pending")


async def refused_key_record_reported_once(settings: Settings) -> None:
    """A record on liaison.keys that no root signed: the warden quarantines it, once."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topics.keys, b"not a key change", key=b"v99")
    finally:
        await producer.stop()
    quarantined = await read_from(
        settings,
        {(settings.topics.quarantine, 0): 0},
        until=lambda records: len(records) >= 1,
        timeout_s=30,
    )
    assert len(quarantined) == 1, quarantined
    again = await read_from(
        settings, {(settings.topics.quarantine, 0): 0}, until=lambda _: False, timeout_s=2
    )
    assert len(again) == 1


async def ride_out(settings: Settings, own_broker: OwnBroker, fault: str, restore: str) -> None:
    keys = await ensure_keys(settings, (AUDIT, READER), utc_now())
    feeder = Feeder(settings, keys[READER])
    before = await audit_size(settings)  # the key.generated records
    async with serve_audit(settings) as service:
        # Started whole (the key warden too): the outage is the running service's.
        await service.logged("audit_started", timeout_s=60)
        await checkpoint_pending(settings, feeder, before)
        if fault == "kill":
            own_broker.kill()
        else:
            os.kill(own_broker.pid(), signal.SIGSTOP)
        try:
            # A checkpoint falls due within 2 s; a hung broker is given up on in 10 s.
            await service.logged("broker_unreachable", timeout_s=30)
            await asyncio.sleep(4)  # several retries meanwhile: still one line
        finally:
            if restore == "start":
                await asyncio.to_thread(own_broker.start)
            else:
                os.kill(own_broker.pid(), signal.SIGCONT)
        await service.logged("broker_reachable", timeout_s=45)

        # Resumed: new records become leaves and are checkpointed.
        await feeder.feed(30)
        await until_stored(settings, before + feeder.sent, checkpointed=True)
        await refused_key_record_reported_once(settings)
        total = await audit_size(settings)  # and the warden's record of the refusal
        assert total == before + feeder.sent + 1
        await until_stored(settings, total, checkpointed=True)
        assert service.process.returncode is None

    assert service.process.returncode == 0, service.lines[-20:]
    unreachable = service.events("broker_unreachable")
    reachable = service.events("broker_reachable")
    assert [line.get("service") for line in unreachable] == ["audit"], unreachable
    assert [line.get("service") for line in reachable] == ["audit"], reachable
    assert not [line for line in service.lines if line.get("level") == "error"]

    with open_store(settings) as store:
        leaves = list(store.leaves())
    assert [leaf.seq for leaf in leaves] == list(range(total))
    assert len({leaf.kafka_offset for leaf in leaves}) == total
    reads = [decode_record(unsealed(leaf.record) or b"") for leaf in leaves]
    returned = [r.returned for r in reads if isinstance(r, FeedRead)]
    assert returned == list(range(feeder.sent))  # every record once, in log order
    verified = await run_liaison(settings, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_audit_service_rides_out_its_broker_killed_during_a_checkpoint(
    settings: Settings, own_broker: OwnBroker
) -> None:
    await ride_out(settings, own_broker, "kill", "start")


async def test_audit_service_rides_out_its_broker_hanging_during_a_checkpoint(
    settings: Settings, own_broker: OwnBroker
) -> None:
    await ride_out(settings, own_broker, "stop", "continue")
