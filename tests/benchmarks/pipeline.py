"""``make bench`` (second part): Liaison's pipeline measured against its floors (issue 14).

Through the public contract only: real ``liaison publish`` and ``liaison serve router``
processes against the local broker, on a fresh topic prefix and a temporary
``LIAISON_HOME``. Every figure is CPU seconds per event from each process's own
accounting (``/proc/<pid>/stat``, ``os.wait4``, ``time.process_time``), marginal where
start-up would distort it, beside a floor measured in the same run:

- floors: one Ed25519 verify, one seal, aiokafka's own cost per record (produce,
  idempotent and transactional; consume, read committed), each process on its own;
- the spread and hot-spot loads: ``liaison publish`` CPU per event, then the router's
  CPU per routed event against verify + consumed x consume + produced x produce;
- the peer (``tests.benchmarks.peer``) on the spread load;
- latency (broker append time on the events topic to that on the feed) at two paced
  rates, exactly once;
- two routers against one on a backlog.

A table on stdout, JSON and a PNG chart under ``bench/results/``. Timing lives here,
never in the test suite. ``python -m tests.benchmarks.pipeline --events 300`` for a
quick run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import json
import math
import os
import signal
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consumers.routing import route
from schemas.envelope import pae, parse_dsse, seal
from schemas.errors import LiaisonError
from schemas.events import ConcernRaised
from schemas.inspectorates import JTAI, Programme
from schemas.keys import BUS, SigningKey
from schemas.records import OutboundRecord, event_record
from schemas.topics import EVENT_PARTITIONS, TopicSpec
from services.kafka import apply_topics, delete_topics, end_offsets
from services.keys_admin import ensure_keys
from services.local_broker import LocalBroker
from services.log import configure_logging
from services.rules_file import load_rules
from services.settings import Settings
from tests.benchmarks._loads import SOURCES, balanced_areas, hot_spot, spread, write_jsonl
from tests.benchmarks._procs import (
    BenchError,
    Child,
    LogLine,
    cpu_seconds,
    feed_to_exit,
    python,
    system_busy_seconds,
)
from tests.benchmarks._reading import Appended, count_range, follow, read_range
from tests.benchmarks._records import write_records
from tests.benchmarks._report import report

__all__ = ["main"]

_ROOT: Final = Path(__file__).resolve().parents[2]
_SMALL: Final = 10
"""Events in the small ``liaison publish`` run whose CPU is taken off the big one's."""
_FLOOR_RECORDS: Final = 20_000
_CRYPTO_SAMPLE: Final = 2_000
_START_S: Final = 120.0
_ROUTER_EVENTS: Final = frozenset({"router_assigned", "router_state_loaded"})


@dataclass(frozen=True, slots=True)
class Bench:
    """One run: settings (fresh prefix, temporary home), children's environment, keys."""

    settings: Settings
    env: Mapping[str, str]
    keys: Mapping[str, SigningKey]
    work: Path
    broker_pid: int | None
    areas: Sequence[str]
    hot_area: str
    now: dt.datetime
    events: int
    seconds: float
    py_spy: Path | None = None
    """py-spy, to profile the router while it routes each load (a profiling run)."""
    out: Path | None = None

    @property
    def scratch(self) -> tuple[str, str]:
        """The floors' own topics: idempotent and transactional producing."""
        prefix = self.settings.topic_prefix
        return f"{prefix}bench.floor.idempotent", f"{prefix}bench.floor.transactional"

    def sealed_records(self, events: Iterable[ConcernRaised]) -> list[OutboundRecord]:
        """Each event sealed by its inspectorate's key, as the record it publishes."""
        topics = self.settings.topics
        return [
            event_record(e, seal(e, self.keys[e.source.value], self.now).envelope, topics)
            for e in events
        ]

    def outputs(self) -> list[str]:
        """Every topic the router writes."""
        topics = self.settings.topics
        return [
            *(topics.programme(p) for p in Programme if p is not JTAI),
            topics.jtai,
            topics.feed,
            topics.unrouted,
            topics.quarantine,
            topics.audit,
            topics.router_state,
        ]


class Samples:
    """CPU seconds of several processes, the harness and the machine, at two moments."""

    def __init__(self, pids: Mapping[str, int | None]) -> None:
        self._pids = {name: pid for name, pid in pids.items() if pid is not None}
        self._first = self._take()
        self._began = time.perf_counter()
        self.used: dict[str, float] = {}
        self.wall = 0.0

    def _take(self) -> dict[str, float]:
        taken = {name: _cpu_or_nan(pid) for name, pid in self._pids.items()}
        taken["harness"] = time.process_time()
        taken["machine"] = system_busy_seconds()
        return taken

    def stop(self) -> dict[str, float]:
        """CPU seconds each used since the first sample (and ``others``: the machine's
        busy time not used by any of them)."""
        last = self._take()
        self.wall = time.perf_counter() - self._began
        self.used = {name: last[name] - self._first[name] for name in last}
        ours = sum(v for k, v in self.used.items() if k != "machine" and not math.isnan(v))
        self.used["others"] = max(self.used["machine"] - ours, 0.0)
        self.used["others_cores"] = self.used["others"] / self.wall if self.wall else 0.0
        return self.used


def _cpu_or_nan(pid: int) -> float:
    """A process's CPU seconds, or NaN once it has gone (its share is then unknown)."""
    try:
        return cpu_seconds(pid)
    except OSError:
        return float("nan")


def _per_event_us(seconds: float, events: int) -> float:
    return seconds / events * 1e6 if events else float("nan")


_NOT_PASSED: Final = frozenset(
    {
        # The run's own keys, trust root and the default rules, not a user's.
        "LIAISON_TRUST_ROOT",
        "LIAISON_SIGNING_KEY",
        "LIAISON_SIGNING_KEY_FILE",
        "LIAISON_RULES_FILE",
        "LIAISON_ROUTER_INSTANCE",
    }
)


def _env(settings: Settings, home: Path) -> dict[str, str]:
    """The children's environment: this run's prefix, home and broker; JSON logs at the
    services' default level (INFO), whatever the user's shell says."""
    env = {name: value for name, value in os.environ.items() if name not in _NOT_PASSED}
    env.update(
        {
            "LIAISON_TOPIC_PREFIX": settings.topic_prefix,
            "LIAISON_HOME": str(home),
            "LIAISON_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "LIAISON_LOG_FORMAT": "json",
            "LIAISON_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(_ROOT),
        }
    )
    return env


# -- floors -------------------------------------------------------------------------------


def _cpu_per_item(work: Callable[[], object], items: int, repeats: int = 5) -> float:
    """Median CPU seconds per item of ``work`` (which does ``items`` items)."""
    samples = []
    for _ in range(repeats):
        began = time.process_time()
        work()
        samples.append((time.process_time() - began) / items)
    return statistics.median(samples)


def crypto_floors(bench: Bench) -> dict[str, float]:
    """CPU per Ed25519 verify (cryptography alone) and per seal, in the harness."""
    events = spread(_CRYPTO_SAMPLE, bench.areas, bench.now)
    keys = bench.keys
    sealed = [seal(e, keys[e.source.value], bench.now) for e in events]
    publics = {
        owner: Ed25519PublicKey.from_public_bytes(key.public_raw) for owner, key in keys.items()
    }
    checks = []
    for s in sealed:
        payload_type, payload, _, sig = parse_dsse(s.envelope)
        checks.append((publics[s.event.source.value], sig, pae(payload_type, payload)))

    def verify_all() -> None:
        for public, sig, message in checks:
            public.verify(sig, message)

    def seal_all() -> None:
        for e in events:
            seal(e, keys[e.source.value], bench.now)

    bus = keys[BUS].private

    def sign_all() -> None:
        for _, _, message in checks:
            bus.sign(message)

    return {
        "verify_us": _cpu_per_item(verify_all, len(checks)) * 1e6,
        "seal_us": _cpu_per_item(seal_all, len(events)) * 1e6,
        "sign_us": _cpu_per_item(sign_all, len(checks)) * 1e6,
        "envelope_bytes": statistics.mean(len(s.envelope) for s in sealed),
    }


async def _client_run(bench: Bench, name: str, args: Sequence[str], timeout_s: float) -> float:
    """CPU seconds a ``tests.benchmarks._client`` child spent on its work alone."""
    child = await Child.start(name, [python(), "-m", "tests.benchmarks._client", *args], bench.env)
    try:
        await child.expect("ready", _START_S)
        before = child.cpu()
        await child.send("go")
        await child.expect("done", timeout_s)
        return child.cpu() - before
    finally:
        await child.stop()


async def kafka_floors(bench: Bench) -> dict[str, float]:
    """aiokafka's own CPU per record, each in a process of its own: produce (idempotent,
    and transactional in transactions of 500) and consume (read committed)."""
    count = min(_FLOOR_RECORDS, max(2_000, 4 * bench.events))
    sealed = bench.sealed_records(spread(_CRYPTO_SAMPLE, bench.areas, bench.now))
    path = bench.work / "floor.records"
    write_records(path, (sealed[i % len(sealed)] for i in range(count)))
    idempotent, transactional = bench.scratch
    produce_idem = await _client_run(
        bench, "producer (idempotent)", ["produce", str(path), "--topic", idempotent], 300
    )
    produce_txn = await _client_run(
        bench,
        "producer (transactional)",
        ["produce", str(path), "--topic", transactional, "--transactional"],
        300,
    )
    consume = await _client_run(bench, "consumer", ["consume", transactional, str(count)], 300)
    floors = {
        "records": count,
        "produce_idempotent_us": produce_idem / count * 1e6,
        "produce_transactional_us": produce_txn / count * 1e6,
        "consume_us": consume / count * 1e6,
    }
    if importlib.util.find_spec("confluent_kafka") is not None:  # the bench extra
        # The same records through a client with a C core (librdkafka), for comparison.
        library = ["--library", "confluent"]
        c_produce = await _client_run(
            bench,
            "confluent-kafka producer (transactional)",
            ["produce", str(path), "--topic", transactional, *library],
            300,
        )
        c_consume = await _client_run(
            bench,
            "confluent-kafka consumer",
            ["consume", transactional, str(2 * count), *library],
            300,
        )
        floors["confluent_produce_transactional_us"] = c_produce / count * 1e6
        floors["confluent_consume_us"] = c_consume / (2 * count) * 1e6
    return floors


# -- loads: publish, then route ---------------------------------------------------------


async def publish_load(bench: Bench, events: Sequence[ConcernRaised], label: str) -> dict[str, Any]:
    """``liaison publish`` of ``events``: per inspectorate a small run and a big one, each
    fed its JSON Lines on stdin once it waits for them (its start-up done: Kafka reached,
    trust loaded, transactional producer started). CPU per event is what the big runs
    spent after that less what the small runs did, over the events between; so neither
    start-up nor shutdown counts."""
    runs: list[dict[str, Any]] = []
    for source in SOURCES:
        own = [e for e in events if e.source is source]
        for part, chunk in (("small", own[:_SMALL]), ("big", own[_SMALL:])):
            path = write_jsonl(bench.work / f"{label}.{source.value}.{part}.jsonl", chunk)
            argv = [python(), "-m", "services", "publish", "--as", source.value, "-"]
            profiler: list[str] = []
            if bench.py_spy is not None and bench.out is not None and part == "big":
                profile = bench.out / f"py-spy.publish.{label}.{source.value}.txt"
                profiler = [str(bench.py_spy), "record", "--format", "raw", "--rate", "250",
                            "--nonblocking", "--output", str(profile)]  # fmt: skip
            done = feed_to_exit(
                argv, bench.env, path.read_bytes(), 120 + len(chunk) * 0.05, bench.work,
                profiler=profiler,
            )  # fmt: skip
            ids = done.stdout.split()
            if done.code != 0 or len(ids) != len(chunk):
                tail = done.stderr.strip().splitlines()[-3:]
                msg = (
                    f"liaison publish --as {source.value} ({part}, {len(chunk)} events) exited"
                    f" {done.code} with {len(ids)} ids: {' | '.join(tail)}"
                )
                raise BenchError(msg)
            runs.append({"source": source.value, "part": part, "events": len(chunk),
                         "startup_cpu_s": done.ready_cpu, "cpu_s": done.cpu})  # fmt: skip
    big = [r for r in runs if r["part"] == "big"]
    small = [r for r in runs if r["part"] == "small"]
    extra_events = sum(r["events"] for r in big) - sum(r["events"] for r in small)
    extra_cpu = sum(r["cpu_s"] - r["startup_cpu_s"] for r in big) - sum(
        r["cpu_s"] - r["startup_cpu_s"] for r in small
    )
    return {
        "events": len(events),
        "cpu_per_event_us": _per_event_us(extra_cpu, extra_events),
        "startup_cpu_s": statistics.mean(r["startup_cpu_s"] for r in runs),
        "runs": runs,
    }


async def _router(bench: Bench, instance: int) -> Child:
    env = {**bench.env, "LIAISON_ROUTER_INSTANCE": str(instance)}
    return await Child.start(
        f"router {instance}", [python(), "-m", "services", "serve", "router"], env,
        watch=_ROUTER_EVENTS,
    )  # fmt: skip


async def _profile(bench: Bench, router: Child, label: str) -> Child | None:
    """py-spy sampling ``router`` (collapsed stacks, one line per stack and its count)."""
    if bench.py_spy is None or bench.out is None:
        return None
    bench.out.mkdir(parents=True, exist_ok=True)
    path = bench.out / f"py-spy.router.{label}.{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.txt"
    argv = [str(bench.py_spy), "record", "--pid", str(router.pid), "--format", "raw",
            "--rate", "250", "--nonblocking", "--output", str(path)]  # fmt: skip
    profiler = await Child.start(f"py-spy ({label})", argv, bench.env)
    say(f"  profiling the router into {path}")
    return profiler


def _assigned(line: LogLine) -> bool:
    return line.event == "router_assigned" and bool(line.fields.get("partitions"))


def _timeout(events: int) -> float:
    return 120.0 + events * 0.05


async def route_load(bench: Bench, ids: set[str], label: str) -> dict[str, Any]:
    """One router started on a backlog: its CPU from its state loaded (``router_assigned``)
    to every event on the feed, and the records it consumed and produced per event."""
    settings = bench.settings
    outputs = bench.outputs()
    before = await end_offsets(settings, outputs)
    feed_start = {k: v for k, v in before.items() if k[0] == settings.topics.feed}
    router = await _router(bench, 0)
    profiler: Child | None = None
    try:
        ready = await router.log(_assigned, _START_S, f"{label}: router_assigned")
        profiler = await _profile(bench, router, label)
        samples = Samples({"router": router.pid, "broker": bench.broker_pid})
        found, done_at = await follow(
            settings, feed_start, ids, _timeout(len(ids)), f"{label}: routing",
            alive=router.check_running,
        )  # fmt: skip
        cpu = router.cpu() - ready.cpu
        used = samples.stop()
        after = await end_offsets(settings, outputs)
    finally:
        if profiler is not None:
            await profiler.stop(signal.SIGINT)  # py-spy writes its profile on SIGINT
        await router.stop()
    produced = await count_range(settings, before, after)
    topics = settings.topics
    signed_topics = {topics.audit, topics.jtai, topics.unrouted,
                     *(topics.programme(p) for p in Programme if p is not JTAI)}  # fmt: skip
    firsts = sorted(found.first().values())
    return {
        "events": len(ids),
        "cpu_s": cpu,
        "cpu_per_event_us": _per_event_us(cpu, len(ids)),
        "wall_s": done_at - ready.at,
        "events_per_s": len(ids) / (done_at - ready.at),
        "feed_span_events_per_s": (len(ids) - 1) / max((firsts[-1] - firsts[0]) / 1000, 1e-3),
        "consumed_per_event": 1.0,
        "produced": produced,
        "produced_per_event": sum(produced.values()) / len(ids),
        # Each audit record and each queue record (its route attestation) is signed.
        "signed_per_event": sum(
            count for topic, count in produced.items() if topic in signed_topics
        )
        / len(ids),
        "feed_duplicates": found.duplicates(),
        "others_cpu_s": used,
        "state_loaded": [dict(line.fields) for line in router.logs if not _assigned(line)],
    }


async def peer_load(bench: Bench, events: Sequence[ConcernRaised]) -> dict[str, Any]:
    """The peer on the events topics as they are (the spread load): its CPU from its
    partitions assigned to its last batch forwarded and committed."""
    rules = load_rules(bench.settings.rules_path).rules
    forwards = sum(len(route(e, rules)) for e in events)
    peer = await Child.start("peer", [python(), "-m", "tests.benchmarks.peer"], bench.env)
    try:
        await peer.expect("assigned", _START_S)
        began, before = time.perf_counter(), peer.cpu()
        samples = Samples({"peer": peer.pid, "broker": bench.broker_pid})
        done = 0
        deadline = time.monotonic() + _timeout(len(events))
        while done < len(events):
            line = await peer.line(max(deadline - time.monotonic(), 0.1), "progress")
            if line.startswith("forwarded "):
                done += int(line.split()[1])
        cpu = peer.cpu() - before
        wall = time.perf_counter() - began
        used = samples.stop()
    finally:
        await peer.stop()
    return {
        "events": done,
        "cpu_s": cpu,
        "cpu_per_event_us": _per_event_us(cpu, done),
        "events_per_s": done / wall,
        "consumed_per_event": 1.0,
        "produced_per_event": forwards / len(events),
        "others_cpu_s": used,
    }


# -- latency and scale-out ------------------------------------------------------------------


async def _generator(bench: Bench, records: Sequence[OutboundRecord], rate: float) -> Child:
    path = bench.work / f"generator.{uuid.uuid4().hex[:6]}.records"
    write_records(path, records)
    argv = [python(), "-m", "tests.benchmarks._client", "produce", str(path), "--rate", str(rate)]
    child = await Child.start(f"load generator ({rate:g}/s)", argv, bench.env)
    await child.expect("ready", _START_S)
    return child


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(max(round(q * (len(ordered) - 1)), 0), len(ordered) - 1)
    return ordered[index]


async def latency(bench: Bench, rate: int, router: Child) -> dict[str, Any]:
    """Events paced at ``rate`` a second for ``bench.seconds`` into a running router:
    per event, the feed record's append time less the events record's."""
    settings = bench.settings
    topics = settings.topics
    count = int(rate * bench.seconds)
    events = spread(count, bench.areas, bench.now)
    records = bench.sealed_records(events)
    ids = {str(e.id) for e in events}
    generator = await _generator(bench, records, rate)
    following: asyncio.Task[tuple[Appended, float]] | None = None
    try:
        events_start = await end_offsets(settings, topics.all_events())
        feed_start = await end_offsets(settings, [topics.feed])
        samples = Samples(
            {"router": router.pid, "generator": generator.pid, "broker": bench.broker_pid}
        )
        following = asyncio.create_task(
            follow(settings, feed_start, ids, bench.seconds + _timeout(count), f"{rate}/s")
        )
        await generator.send("go")
        sent = await generator.expect("done", bench.seconds * 3 + 120)
        found, _ = await following
        used = samples.stop()
    finally:
        if following is not None and not following.done():
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        await generator.stop()
    events_end = await end_offsets(settings, topics.all_events())
    appended = (await read_range(settings, events_start, events_end)).first()
    on_feed = found.first()
    latencies = sorted(float(on_feed[i] - appended[i]) for i in ids if i in appended)
    return {
        "rate": rate,
        "seconds": bench.seconds,
        "published": count,
        "on_feed": len(on_feed.keys() & ids),
        "duplicates": found.duplicates(),
        "exactly_once": len(on_feed.keys() & ids) == count and found.duplicates() == 0,
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "max_ms": latencies[-1],
        "generator": json.loads(sent),
        "router_cpu_per_event_us": _per_event_us(used["router"], count),
        "router_busy": used["router"] / samples.wall,
        "others_cpu_s": used,
        "latencies_ms": latencies,
    }


async def latencies(bench: Bench, rates: Sequence[int]) -> dict[str, Any]:
    """``latency`` at each rate, one router running throughout."""
    router = await _router(bench, 0)
    results: dict[str, Any] = {}
    try:
        await router.log(_assigned, _START_S, "latency: router_assigned")
        for rate in rates:
            profiler = await _profile(bench, router, f"latency-{rate}")
            try:
                results[str(rate)] = await latency(bench, rate, router)
            except BenchError as exc:
                results[str(rate)] = {"rate": rate, "error": str(exc)}
            finally:
                if profiler is not None:
                    await profiler.stop(signal.SIGINT)
            router.check_running()
    finally:
        await router.stop()
    return results


async def scale_out(bench: Bench, routers: int) -> dict[str, Any]:
    """A backlog of ``2 x events`` published first (routers stopped), then ``routers``
    routers started: events per second from the first record routed to the last."""
    settings = bench.settings
    count = 2 * bench.events
    events = spread(count, bench.areas, bench.now)
    ids = {str(e.id) for e in events}
    generator = await _generator(bench, bench.sealed_records(events), 0)
    try:
        await generator.send("go")
        await generator.expect("done", _timeout(count))
    finally:
        await generator.stop()
    feed_start = await end_offsets(settings, [settings.topics.feed])
    started = time.time()
    children: list[Child] = []
    try:
        for instance in range(routers):
            children.append(await _router(bench, instance))  # noqa: PERF401 - stop what started
        pids: dict[str, int | None] = {c.name: c.pid for c in children}
        samples = Samples({**pids, "broker": bench.broker_pid})

        def alive() -> None:
            for child in children:
                child.check_running()

        found, _ = await follow(
            settings, feed_start, ids, _timeout(count), f"{routers} router(s)", alive=alive
        )
        used = samples.stop()
    finally:
        for child in children:
            await child.stop()
    times = sorted(found.first().values())
    span = max((times[-1] - times[0]) / 1000, 1e-3)
    owned = {c.name: [line.fields.get("partitions") for line in c.logs if _assigned(line)]
             for c in children}  # fmt: skip
    last_assigned = max(
        (line.at for c in children for line in c.logs if _assigned(line)), default=started
    )
    steady = [t for t in times if t >= last_assigned * 1000]
    steady_rate = (
        (len(steady) - 1) / max((steady[-1] - steady[0]) / 1000, 1e-3) if len(steady) > 1 else None
    )
    return {
        "routers": routers,
        "events": count,
        "events_per_s": (count - 1) / span,
        "span_s": span,
        "steady_events_per_s": steady_rate,
        "steady_events": len(steady),
        "assignments": owned,
        "duplicates": found.duplicates(),
        "cpu_s": used,
        "wall_s": samples.wall,
    }


WIDE_PARTITIONS: Final = 6
"""The partitions of the scale-out run on wider topics (the contract's are 3)."""


async def wide(bench: Bench, partitions: int) -> tuple[Bench, list[str]]:
    """``bench`` on topics of ``partitions`` partitions where the contract has 3 (every
    area-keyed topic, and the router's state: a deployment may choose more), under a
    prefix and home of their own, with areas spread evenly over them. The topics made are
    returned, to delete."""
    home = bench.work / f"p{partitions}"
    home.mkdir()
    settings = bench.settings.model_copy(
        update={"topic_prefix": f"{bench.settings.topic_prefix}p{partitions}.", "home": home}
    )
    specs = [
        replace(spec, partitions=partitions) if spec.partitions == EVENT_PARTITIONS else spec
        for spec in settings.topics.specs()
    ]
    await apply_topics(settings, specs)
    keys = await ensure_keys(settings, (*(s.value for s in SOURCES), BUS), bench.now)
    areas = balanced_areas(bench.now.date(), 4 * partitions, partitions)
    widened = replace(bench, settings=settings, env=_env(settings, home), keys=keys, areas=areas)
    return widened, [spec.name for spec in specs]


# -- the run --------------------------------------------------------------------------------

PHASES: Final = frozenset({"publish", "route", "peer", "latency", "scale-out"})
"""What ``--phases`` may name ("route" publishes its loads first)."""


async def _phase(
    results: dict[str, Any], name: str, work: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any] | None:
    """Run one phase; its error is recorded (and the run goes on) rather than raised."""
    say(f"{name} ...")
    try:
        measured = await work()
    except Exception as exc:  # noqa: BLE001 - one phase's failure is reported, the rest still run
        error = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
        results[name] = {"error": error}
        say(f"  failed: {error}")
        return None
    results[name] = measured
    return measured


def say(text: str) -> None:
    """Progress, on stdout with the table."""
    print(text, flush=True)  # noqa: T201


async def run(
    events: int,
    seconds: float,
    rates: Sequence[int],
    *,
    py_spy: Path | None = None,
    out: Path | None = None,
    phases: frozenset[str] = PHASES,
) -> dict[str, Any]:
    """Every phase in ``phases`` on a fresh prefix; the topics are deleted at the end."""
    base = Settings()
    broker_pid = LocalBroker(base).recorded_pid() if base.bootstrap_servers.startswith(
        ("127.0.0.1:", "localhost:")) else None  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    areas = balanced_areas(now.date(), 21, EVENT_PARTITIONS)
    results: dict[str, Any] = {}
    with TemporaryDirectory(prefix="liaison-bench-") as tmp:
        home = Path(tmp)
        settings = base.model_copy(
            update={
                "topic_prefix": f"bench.{uuid.uuid4().hex[:8]}.",
                "home": home,
                "trust_root": None,
                "rules_file": None,
                "signing_key": None,
                "signing_key_file": None,
            }
        )
        bench_topics = [*settings.topics.specs()]
        work = home / "work"
        work.mkdir()
        applied = False
        wide_topics: list[str] = []
        try:
            say(f"topics under prefix {settings.topic_prefix} on {settings.bootstrap_servers}")
            scratch = [
                TopicSpec(name, EVENT_PARTITIONS, "benchmark floor",
                          {"message.timestamp.type": "LogAppendTime"})
                for name in (f"{settings.topic_prefix}bench.floor.idempotent",
                             f"{settings.topic_prefix}bench.floor.transactional")
            ]  # fmt: skip
            await apply_topics(settings, [*bench_topics, *scratch])
            applied = True
            keys = await ensure_keys(settings, (*(s.value for s in SOURCES), BUS), now)
            bench = Bench(
                settings, _env(settings, home), keys, work, broker_pid, areas[:20], areas[20],
                now, events, seconds, py_spy, out,
            )  # fmt: skip
            results["floors"] = crypto_floors(bench)
            await _phase(results, "aiokafka", lambda: kafka_floors(bench))
            loads = {
                "spread": spread(events, bench.areas, now),
                "hot_spot": hot_spot(events, bench.hot_area, now),
            }
            for label, load in loads.items():
                ids = {str(e.id) for e in load}
                if phases & {"publish", "route"}:  # routing needs the load published
                    await _phase(
                        results, f"publish {label}", partial(publish_load, bench, load, label)
                    )
                if "route" in phases:
                    await _phase(results, f"route {label}", partial(route_load, bench, ids, label))
                if label == "spread" and "peer" in phases:
                    await _phase(results, "peer spread", partial(peer_load, bench, load))
            if "latency" in phases:
                await _phase(results, "latency", partial(latencies, bench, rates))
            for routers in (1, 2) if "scale-out" in phases else ():
                await _phase(results, f"scale-out {routers}", partial(scale_out, bench, routers))
            if "scale-out" in phases:
                widened, made = await wide(bench, WIDE_PARTITIONS)
                wide_topics += made
                for routers in (1, 2):
                    await _phase(
                        results,
                        f"scale-out {routers} ({WIDE_PARTITIONS} partitions)",
                        partial(scale_out, widened, routers),
                    )
        finally:
            names = [spec.name for spec in bench_topics] + [
                f"{settings.topic_prefix}bench.floor.idempotent",
                f"{settings.topic_prefix}bench.floor.transactional",
                *wide_topics,
            ]
            try:
                if applied:
                    await delete_topics(settings, names)
            except Exception as exc:  # noqa: BLE001 - the results stand; say what is left
                say(f"could not delete the benchmark's topics ({type(exc).__name__}: {exc})")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; write the table, the JSON and the chart."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.pipeline")
    parser.add_argument("--events", type=int, default=5000, help="concerns per load")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per paced rate")
    parser.add_argument("--rates", default="200,1000", help="paced rates, events a second")
    parser.add_argument("--out", type=Path, default=_ROOT / "bench" / "results")
    parser.add_argument(
        "--py-spy", type=Path, help="profile the router with this py-spy while it routes"
    )
    parser.add_argument(
        "--phases",
        default=",".join(sorted(PHASES)),
        help=f"comma-separated, of {', '.join(sorted(PHASES))} (the floors always run)",
    )
    args = parser.parse_args(argv)
    phases = frozenset(p.strip() for p in args.phases.split(",") if p.strip())
    if not phases <= PHASES:
        say(f"error: unknown phase(s) {', '.join(sorted(phases - PHASES))}")
        return 2
    configure_logging("WARNING")
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    began = dt.datetime.now(dt.UTC)
    try:
        results = asyncio.run(
            run(args.events, args.seconds, rates, py_spy=args.py_spy, out=args.out, phases=phases)
        )
    except (LiaisonError, BenchError, OSError) as exc:
        say(f"error: {exc}")
        return 1
    if args.py_spy is not None:
        results["profiled"] = (
            "py-spy sampled the router (nonblocking) in the route phases, sharing the cores"
        )
    return report(results, began, args.out, args.events)


if __name__ == "__main__":
    raise SystemExit(main())
