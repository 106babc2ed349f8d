"""The CLI as a user runs it: services as processes, clear errors, no tracebacks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence

import pytest

from consumers.router import HEADER_RULES
from producers.publisher import Publisher
from schemas.inspectorates import Programme
from schemas.keys import SigningKey
from schemas.records import HEADER_EVENT_ID, InboundRecord, header_map
from services.kafka import end_offsets, read_from, transactional_sink
from services.settings import Settings
from tests.conftest import env_for, one_error_line, run_liaison
from tests.factories import concern, utc_now

pytestmark = pytest.mark.kafka

LIAISON = [sys.executable, "-m", "services"]


def test_unreachable_kafka_is_one_clear_error() -> None:
    env = {**os.environ, "LIAISON_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    for command in (["topics", "list"], ["topics", "apply"]):
        done = subprocess.run(
            [*LIAISON, *command], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 1
        line = one_error_line(done)
        assert line.startswith("error: cannot reach Kafka at 127.0.0.1:1")
        assert "liaison broker start" in line
        # aiokafka's own reports of the refused connection are not shown besides.
        assert done.stderr.splitlines() == [line]


def test_topics_list_shows_the_contract(kafka: Settings) -> None:
    env = {**os.environ, "LIAISON_TOPIC_PREFIX": kafka.topic_prefix}
    done = subprocess.run(
        [*LIAISON, "topics", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("exists") == len(kafka.topics.specs())
    assert "missing" not in done.stderr


async def test_serve_router_routes_until_sigterm(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.programme(Programme.CUSTODY)])
    env = {**env_for(kafka), "LIAISON_LOG_FORMAT": "json"}
    router = await asyncio.create_subprocess_exec(
        *LIAISON,
        "serve",
        "router",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        event = concern(source="cqc", programme="clas", subject_agencies=["custody"])
        async with transactional_sink(kafka, "cqc") as sink:
            await Publisher(sink, topics, signing["cqc"], clock=utc_now).publish(event)

        def arrived(records: Sequence[InboundRecord]) -> bool:
            return len(records) >= 1

        records = await read_from(kafka, start, until=arrived, timeout_s=60)
    finally:
        router.send_signal(signal.SIGTERM)
        _, raw_stderr = await asyncio.wait_for(router.communicate(), 60)
    stderr = raw_stderr.decode()
    assert len(records) == 1
    assert header_map(records[0].headers)[HEADER_RULES] == b"custody.prisons"
    assert router.returncode == 0, stderr
    assert '"event": "router_started"' in stderr
    assert '"event": "event_routed"' in stderr
    assert '"event": "router_stopped"' in stderr


class Service:
    """A `liaison serve ...` process, its JSON log lines read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, object]] = []
        self.other: list[str] = []  # anything on stderr that is not a JSON log line
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            text = raw.decode(errors="replace").rstrip("\n")
            try:
                self.lines.append(json.loads(text))
            except ValueError:
                self.other.append(text)
            async with self._changed:
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    def events(self) -> list[object]:
        return [line.get("event") for line in self.lines]

    async def logged(self, event: str) -> None:
        """Return once ``event`` is logged; fail if the process ends first."""

        def seen() -> bool:
            return event in self.events() or self._reader.done()

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(seen), 120)
        assert event in self.events(), (self.events(), self.other)

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 60)
        await self._reader
        return code


@contextlib.asynccontextmanager
async def serving(settings: Settings, *args: str, **env: str) -> AsyncIterator[Service]:
    process = await asyncio.create_subprocess_exec(
        *LIAISON, "serve", *args,
        env={**env_for(settings), "LIAISON_LOG_FORMAT": "json", **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    service = Service(process)
    try:
        yield service
    finally:
        await service.stop()


class Gate:
    """A TCP front for the broker's bootstrap address: shut (each connection is hung up
    at once, as by a broker that is down) until opened, then forwarding."""

    def __init__(self, bootstrap: str) -> None:
        host, _, port = bootstrap.rpartition(":")
        self.target = (host, int(port))
        self.open = False
        self.address = ""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Gate]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with server:
            yield self


async def test_a_router_started_while_the_broker_is_down_waits_for_it(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.programme(Programme.CUSTODY)])
    async with Gate(kafka.bootstrap_servers).serving() as gate:
        behind_gate = kafka.model_copy(update={"bootstrap_servers": gate.address})
        async with serving(behind_gate, "router") as router:
            await router.logged("broker_unreachable")
            gate.open = True
            await router.logged("router_started")
            event = concern(source="cqc", programme="clas", subject_agencies=["custody"])
            async with transactional_sink(kafka, "cqc") as sink:
                await Publisher(sink, topics, signing["cqc"], clock=utc_now).publish(event)
            records = await read_from(kafka, start, until=lambda r: len(r) >= 1, timeout_s=60)
            assert router.process.returncode is None
        assert await router.stop() == 0
    assert len(records) == 1
    events = router.events()
    # One line when the broker was found away and one when it was back, not one per try.
    assert events.count("broker_unreachable") == 1
    assert events.count("broker_reachable") == 1
    assert events.index("broker_unreachable") < events.index("broker_reachable")
    assert [line for line in router.lines if line.get("level") == "error"] == []
    assert router.other == []


async def test_an_audit_service_started_while_the_broker_is_down_waits_for_it(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    del signing  # the bus key it signs checkpoints with
    async with Gate(kafka.bootstrap_servers).serving() as gate:
        behind_gate = kafka.model_copy(update={"bootstrap_servers": gate.address})
        async with serving(behind_gate, "audit") as audit:
            await audit.logged("broker_unreachable")
            gate.open = True
            await audit.logged("broker_reachable")
            assert audit.process.returncode is None
        assert await audit.stop() == 0
    assert audit.events().count("broker_unreachable") == 1
    assert [line for line in audit.lines if line.get("level") == "error"] == []
    assert audit.other == []


async def test_a_router_without_a_bus_key_says_how_to_make_one(kafka: Settings) -> None:
    done = await run_liaison(kafka, "serve", "router")
    assert "liaison keys root init" in one_error_line(done)
    assert (await run_liaison(kafka, "keys", "root", "init")).returncode == 0
    done = await run_liaison(kafka, "serve", "router")
    assert "run `liaison keys generate --bus`" in one_error_line(done)
    generate = await run_liaison(kafka, "keys", "generate", "--bus")
    assert "liaison keys generate --component operator" in one_error_line(generate)
    assert (await run_liaison(kafka, "keys", "generate", "--component", "operator")).returncode == 0
    assert (await run_liaison(kafka, "keys", "generate", "--bus")).returncode == 0
    again = await run_liaison(kafka, "keys", "generate", "--bus")
    assert "run `liaison keys rotate --bus`" in one_error_line(again)


async def test_demo_beside_a_serving_router_leaves_it_routing(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    async with serving(kafka, "router") as router:
        await router.logged("router_started")
        demo = await run_liaison(kafka, "demo")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "OK" in demo.stdout
        assert "A router is serving" in demo.stdout  # it used the serving router
        # A run that succeeds shows no retried condition as a warning or an error.
        assert demo.stderr == "", demo.stderr
        # The serving router was neither fenced nor stopped: it routes what comes next.
        start = await end_offsets(kafka, [topics.programme(Programme.CUSTODY)])
        event = concern(source="cqc", programme="clas", subject_agencies=["custody"])
        async with transactional_sink(kafka, "cqc") as sink:
            await Publisher(sink, topics, signing["cqc"], clock=utc_now).publish(event)
        records = await read_from(kafka, start, until=lambda r: len(r) >= 1, timeout_s=90)
        assert router.process.returncode is None, router.events()
    assert await router.stop() == 0
    assert [header_map(r.headers)[HEADER_EVENT_ID] for r in records] == [str(event.id).encode()]
    assert "router_fenced" not in router.events()
    assert not any("Invalid state transition" in str(line) for line in router.lines)
