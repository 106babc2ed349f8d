"""Run Liaison under a schedule of faults and judge the result (the I/O of the harness).

``run(config, brokers)``:

1. applies every topic under the run's prefix and makes a signing key for every
   inspectorate and component (``ensure_keys``: private halves under ``LIAISON_HOME``,
   which every process of the run shares);
2. starts ``liaison serve audit`` and ``schedule.routers`` ``liaison serve router``
   processes (``LIAISON_ROUTER_INSTANCE`` 0, 1, ...), waits until every router has
   joined the group, and publishes the JTAI pair (an Ofsted and an HMICFRS neglect
   concern for one area that no other event names) as the first batch;
3. publishes the other events at an even pace through ``producers.publisher.Publisher``
   (the path ``liaison publish`` takes: each event with its ``event.published`` audit
   record in one transaction), re-sending a batch whose transaction failed, while the
   schedule's faults are applied with ``os.kill``: SIGKILL (restart after the pause),
   SIGSTOP (SIGCONT after the pause), or one more router started and stopped;
4. at the end makes sure every process is running again, waits until every published
   event is on the feed and the audit service has stored every committed audit record
   (or ``drain_timeout_s`` passes), stops the processes, reads every destination
   (``checker.observe``) and judges it (``checker.judge``).

A process that exits when no fault asked it to (a crash, a router fenced) is recorded
and started again a second later, as a supervisor would; such exits are part of the
report (``crashes``), not of the checker's counts.

Brokers are anything with ``kill``, ``stop``, ``cont`` and ``restart`` (``BrokerNode``):
``ClusterNode`` over the secured cluster's ``DevCluster``, one node at a time (the
schedule never has two faults at once). With none (a single local broker) the schedule
must hold no broker fault.

Principals (``RunConfig.principal``: on the secured cluster every process connects as
its own SASL user, and the ACLs of ``deploy/acls.toml`` for the run's prefix are applied
first, as ``admin``, after ``topics apply``):

==========================  ===================================================
``admin``                   topics and ACLs; the checker's reads (see below)
``keyadmin``                the run's signing keys on ``liaison.keys``
``router``                  every ``liaison serve router``
``audit``                   ``liaison serve audit`` (with its key warden)
``ofsted``, ``cqc``, ...    each inspectorate's publisher, its own events topic
==========================  ===================================================

The checker reads as ``admin``: it must read every destination (each programme's queue,
the JTAI queue, the feed, unrouted) and the audit log, and no principal of the file may
read all of those, by design (each programme reads only its own queue; ``auditor`` only
the audit topics and the events). Granting a test oracle that reach would widen a real
principal, so it uses the operator's super user instead; it only reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from aiokafka.errors import KafkaError

from producers.publisher import Publisher
from schemas.envelope import Sealed, seal
from schemas.errors import LiaisonError
from schemas.events import ConcernRaised
from schemas.inspectorates import PROGRAMMES, Agency, Inspectorate
from schemas.keys import COMPONENTS, SigningKey
from schemas.records import HEADER_EVENT_ID
from services.acls import load_acls
from services.audit_store import SqliteAuditStore
from services.cluster import ADMIN, NODES, DevCluster
from services.kafka import (
    KafkaTransactionalSink,
    apply_topics,
    delete_topics,
    group_members,
    partition_counts,
    transactional_sink,
)
from services.kafka_acls import apply_acls
from services.keys_admin import ensure_keys
from services.router_service import router_group_id
from services.rules_file import load_rules
from services.settings import Settings
from tests.chaos.checker import Report, expect, judge, observe, read_committed, store_path
from tests.chaos.schedule import Fault, Kind, Role, Schedule, Target

__all__ = [
    "DEFENCES",
    "BrokerNode",
    "ClusterNode",
    "Outcome",
    "RunConfig",
    "cluster_nodes",
    "defences",
    "make_events",
    "remove_run",
    "run",
    "service_env",
]

AREAS: Final = ("E08000025", "E10000016", "E06000023", "E09000012", "E08000035")
THEMES: Final = ("neglect", "domestic_abuse", "front_door", "missing_children", "early_help")
PAIR_AREA: Final = "E08000026"
"""The JTAI pair's area (Coventry): no other event of the run names it."""
_BATCH: Final = 25
_RESTART_AFTER_S: Final = 1.0
_STOP_TIMEOUT_S: Final = 30.0
_VISIBLE_TIMEOUT_S: Final = 60.0
_VISIBLE_STREAK: Final = 6
ROUTER: Final = "router"
AUDIT: Final = "audit"
KEYADMIN: Final = "keyadmin"
DEFENCES: Final = (
    "router_partition_fenced",
    "router_partition_recovering",
    "router_partition_recovered",
    "router_partition_reclaimed",
    "router_partition_not_loaded",
    "router_assigned",
    "router_state_loaded",
    "event_duplicate_ignored",
    "broker_unreachable",
    "broker_reachable",
    "key_warden_fenced",
    "audit_store_busy",
    "checkpoint_published",
)
"""The log events tallied per process kind in the report: what each defence caught."""


class BrokerNode(Protocol):
    """One broker of a cluster that the harness may fault (one at a time)."""

    @property
    def name(self) -> str:
        """For the report, e.g. ``broker-1``."""
        ...

    def kill(self) -> None:
        """SIGKILL the node's process."""
        ...

    def stop(self) -> None:
        """SIGSTOP the node's process."""
        ...

    def cont(self) -> None:
        """SIGCONT the node's process."""
        ...

    async def restart(self) -> None:
        """Start the (killed) node again; return once it answers."""
        ...


class ClusterNode:
    """A ``BrokerNode`` over one node of a ``DevCluster`` (the secured cluster)."""

    def __init__(self, cluster: DevCluster, node: int, say: Callable[[str], None]) -> None:
        self._cluster = cluster
        self._node = node
        self._say = say

    @property
    def name(self) -> str:
        """``broker-<node>``."""
        return f"broker-{self._node}"

    def kill(self) -> None:
        """SIGKILL the node (returns once it is gone)."""
        self._cluster.signal_node(self._node, signal.SIGKILL)

    def stop(self) -> None:
        """SIGSTOP the node."""
        self._cluster.signal_node(self._node, signal.SIGSTOP)

    def cont(self) -> None:
        """SIGCONT the node."""
        self._cluster.signal_node(self._node, signal.SIGCONT)

    async def restart(self) -> None:
        """Start the node again; returns once all three nodes answer with three brokers
        (``DevCluster.start_node``, blocking, on a thread)."""
        await asyncio.to_thread(self._cluster.start_node, self._node, self._say)


def cluster_nodes(cluster: DevCluster, say: Callable[[str], None]) -> tuple[ClusterNode, ...]:
    """The cluster's nodes as ``BrokerNode``: ``broker:0`` of a schedule is node 1."""
    return tuple(ClusterNode(cluster, node, say) for node in NODES)


@dataclass(frozen=True, slots=True)
class RunConfig:
    """One run: where, which schedule, how many events."""

    settings: Settings
    """Kafka, the topic prefix and ``LIAISON_HOME`` of the run (its own, fresh)."""
    schedule: Schedule
    events: int
    run_dir: Path
    """Where each process's log goes."""
    drain_timeout_s: float = 180.0
    publish_share: float = 0.8
    """The share of the schedule's duration over which the events are published."""
    replay: str = ""
    """The command that replays this run, printed with the report."""
    principal: Callable[[str], Settings] | None = None
    """On a secured cluster: ``settings`` acting as a principal (its prefix and home, its
    SASL user); ACLs are then applied first and every process is its own principal.
    ``None``: everything as ``settings`` (a broker without ACLs)."""

    def as_principal(self, name: str) -> Settings:
        """The settings of principal ``name`` (``settings`` when there are no principals)."""
        return self.settings if self.principal is None else self.principal(name)


@dataclass(slots=True)
class Outcome:
    """What a run found."""

    schedule: Schedule
    report: Report
    published: int
    applied: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    drained: bool = True
    replay: str = ""
    tallies: dict[str, Counter[str]] = field(default_factory=dict)
    """Per process kind (``router``, ``audit``), how often each of ``DEFENCES`` was logged."""
    seconds: dict[str, float] = field(default_factory=dict)
    """How long each phase took (``setup``, ``faults``, ``drain``, ``check``)."""

    @property
    def ok(self) -> bool:
        """Whether every checker count is zero."""
        return self.report.ok

    def render(self) -> str:
        """The report: seed and schedule, what was applied, crashes, the checker."""
        lines = [
            f"seed {self.schedule.seed}: {self.published} events published",
            self.schedule.format().rstrip(),
            "applied:",
            *(f"  {line}" for line in self.applied or ["(nothing)"]),
            "unplanned exits (restarted):",
            *(f"  {line}" for line in self.crashes or ["(none)"]),
        ]
        if not self.drained:
            lines.append("warning: the system had not drained when the checker read it")
        if self.seconds:
            phases = ", ".join(f"{name} {value:.1f} s" for name, value in self.seconds.items())
            lines.append(f"durations: {phases}")
        if self.tallies:
            lines.append("defences (log events per process kind):")
            for kind, tally in sorted(self.tallies.items()):
                found = [f"{name} {tally[name]}" for name in DEFENCES if tally[name]]
                lines.append(f"  {kind}: {', '.join(found) or '(none)'}")
                # Anything else logged as a warning or error, and tracebacks: surprises
                # (a refusal by the authorizer shows here), the message's start only.
                others: Counter[str] = Counter()
                for name, count in tally.items():
                    level, _, event = name.partition(":")
                    if name == "traceback" or (
                        level in {"warning", "error"} and event not in DEFENCES
                    ):
                        others[" ".join(name.split())[:90]] += count
                lines.extend(f"    {count:5d}x {name}" for name, count in sorted(others.items()))
        lines.append(self.report.render())
        lines.append("result: " + ("PASS (every count is zero)" if self.ok else "FAIL"))
        if self.replay:
            lines.append(f"replay: {self.replay}")
        return "\n".join(lines)


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a ``liaison`` process acting as ``settings`` (no other
    ``LIAISON_*`` variable of this process's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env |= {
        "LIAISON_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "LIAISON_TOPIC_PREFIX": settings.topic_prefix,
        "LIAISON_HOME": str(settings.home),
        "LIAISON_KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol,
        "LIAISON_KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
        "LIAISON_LOG_FORMAT": "json",
    }
    optional: dict[str, object] = {
        "LIAISON_KAFKA_CA_FILE": settings.kafka_ca_file,
        "LIAISON_KAFKA_CERT_FILE": settings.kafka_cert_file,
        "LIAISON_KAFKA_KEY_FILE": settings.kafka_key_file,
        "LIAISON_KAFKA_SASL_USERNAME": settings.kafka_sasl_username,
        "LIAISON_KAFKA_SASL_PASSWORD_FILE": settings.kafka_sasl_password_file,
        "LIAISON_RULES_FILE": settings.rules_file,
        "LIAISON_AUDIT_STORE": settings.audit_store,
    }
    env |= {name: str(value) for name, value in optional.items() if value is not None}
    if settings.kafka_sasl_password is not None:
        env["LIAISON_KAFKA_SASL_PASSWORD"] = settings.kafka_sasl_password.get_secret_value()
    return env | extra


# -- events --------------------------------------------------------------------------------


def _id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def make_events(seed: int, count: int, now: dt.datetime) -> list[ConcernRaised]:
    """The JTAI pair, then ``count - 2`` concerns across areas, themes and inspectorates
    (ids and fields drawn from ``seed``; times before ``now``)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not security
    pair = [
        ConcernRaised.model_validate(
            {
                "id": _id(rng),
                "source": source,
                "programme": programme,
                "occurred_at": now - dt.timedelta(days=days),
                "area": PAIR_AREA,
                "theme": "neglect",
                "subject_agencies": ["local_authority"],
                "summary": "Neglect is recognised late and plans drift.",
                "finding": "area_for_improvement",
                "severity": 2,
                "immediate_risk": False,
            }
        )
        for source, programme, days in (("ofsted", "ilacs", 30), ("hmicfrs", "ncpi", 10))
    ]
    others = []
    for _ in range(max(0, count - len(pair))):
        source = rng.choice(list(Inspectorate))
        others.append(
            ConcernRaised.model_validate(
                {
                    "id": _id(rng),
                    "source": source,
                    "programme": PROGRAMMES[source][0],
                    "occurred_at": now - dt.timedelta(minutes=rng.randint(1, 60 * 24 * 400)),
                    "area": rng.choice(AREAS),
                    "theme": rng.choice(THEMES),
                    "subject_agencies": rng.sample([a.value for a in Agency], k=rng.randint(1, 3)),
                    "summary": "Referrals wait too long for a decision.",
                    "finding": rng.choice(["cause_of_concern", "area_for_improvement"]),
                    "severity": rng.randint(1, 3),
                    "immediate_risk": False,
                }
            )
        )
    return pair[: min(count, len(pair))] + others


# -- processes -----------------------------------------------------------------------------


class _Service:
    """One ``liaison serve ...`` process, restarted when it exits unasked."""

    def __init__(
        self, name: str, command: str, env: dict[str, str], log: Path, crashes: list[str]
    ) -> None:
        self.name = name
        self._command = command
        self._env = env
        self._log = log
        self._crashes = crashes
        self._process: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._down = False  # True while an exit is asked for (a kill, a stop)
        self.stopped = False

    @property
    def pid(self) -> int | None:
        """The running process's id."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the process (its output appended to its log file)."""
        self._down = False
        with self._log.open("ab") as out:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services", "serve", self._command,
                env=self._env, stdout=out, stderr=out,
            )  # fmt: skip
        self._watch = asyncio.create_task(self._supervise(self._process))

    async def _supervise(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if self._down or process is not self._process:
            return
        self._crashes.append(f"{self.name} (pid {process.pid}) exited {code}")
        await asyncio.sleep(_RESTART_AFTER_S)
        if not self._down and process is self._process:
            await self.start()

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the running process."""
        if self._process is not None and self._process.returncode is None:
            os.kill(self._process.pid, sig)

    async def kill9(self) -> None:
        """SIGKILL, and wait for the exit."""
        self._down = True
        self.signal(signal.SIGCONT)  # a stopped process is killed all the same; be sure
        self.signal(signal.SIGKILL)
        if self._process is not None:
            await self._process.wait()

    def freeze(self) -> None:
        """SIGSTOP."""
        self.stopped = True
        self.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT."""
        self.stopped = False
        self.signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        """Whether the process is alive (stopped or not)."""
        return self._process is not None and self._process.returncode is None

    async def terminate(self) -> int | None:
        """SIGTERM (SIGKILL after a timeout); the exit code."""
        self._down = True
        if self._process is None:
            return None
        self.thaw()
        self.signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self._process.wait(), _STOP_TIMEOUT_S)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            return await self._process.wait()


# -- the run -------------------------------------------------------------------------------


async def _publisher(
    as_principal: Callable[[str], Settings],
    *,
    keys: dict[str, SigningKey],
    batches: Sequence[Sequence[ConcernRaised]],
    start: float,
    every_s: float,
    log: list[str],
) -> list[ConcernRaised]:
    """Publish each batch at its time (``start + i * every_s``), each inspectorate's part
    in one transaction, re-sending a part whose transaction failed."""
    loop = asyncio.get_running_loop()
    published: list[ConcernRaised] = []
    async with _Sinks(as_principal) as sinks:
        for i, batch in enumerate(batches):
            await asyncio.sleep(max(0.0, start + i * every_s - loop.time()))
            for source in Inspectorate:
                own = [e for e in batch if e.source is source]
                if own:
                    key = keys[source.value]
                    sealed = [_seal(e, key) for e in own]
                    await sinks.publish(source.value, key, sealed, log)
                    published += own
    return published


def _seal(event: ConcernRaised, key: SigningKey) -> Sealed:
    return seal(event, key, dt.datetime.now(dt.UTC))


class _Sinks:
    """One transactional sink per inspectorate (as its own principal), opened again after
    a failure."""

    def __init__(self, as_principal: Callable[[str], Settings]) -> None:
        self._as = as_principal
        self._sinks: dict[str, tuple[AsyncExitStack, KafkaTransactionalSink]] = {}

    async def __aenter__(self) -> _Sinks:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for stack, _ in self._sinks.values():
            with contextlib.suppress(LiaisonError, KafkaError):
                await stack.aclose()

    async def _sink(self, owner: str) -> KafkaTransactionalSink:
        if owner not in self._sinks:
            stack = AsyncExitStack()
            sink = await stack.enter_async_context(transactional_sink(self._as(owner), owner))
            self._sinks[owner] = (stack, sink)
        return self._sinks[owner][1]

    async def publish(
        self, owner: str, key: SigningKey, sealed: Sequence[Sealed], log: list[str]
    ) -> None:
        while True:
            try:
                sink = await self._sink(owner)
                publisher = Publisher(
                    sink, self._as(owner).topics, key, lambda: dt.datetime.now(dt.UTC)
                )
                await publisher.publish_batch(sealed)
            except (LiaisonError, KafkaError) as exc:
                log.append(f"publish retried ({owner}): {type(exc).__name__}: {exc}"[:300])
                stack, _ = self._sinks.pop(owner, (None, None))
                if stack is not None:
                    with contextlib.suppress(LiaisonError, KafkaError):
                        await stack.aclose()
                await asyncio.sleep(1.0)
            else:
                return


class _Processes:
    """The routers and the audit service of one run."""

    def __init__(self, config: RunConfig, crashes: list[str]) -> None:
        self._router_settings = config.as_principal(ROUTER)
        self._run_dir = config.run_dir
        self.crashes = crashes
        self.routers: dict[int, _Service] = {}
        audit_env = service_env(config.as_principal(AUDIT))
        self.audit = _Service("audit:0", "audit", audit_env, self._run_dir / "audit-0.log", crashes)

    def router(self, index: int) -> _Service:
        if index not in self.routers:
            env = service_env(self._router_settings, LIAISON_ROUTER_INSTANCE=f"chaos-{index}")
            log = self._run_dir / f"router-{index}.log"
            self.routers[index] = _Service(f"router:{index}", "router", env, log, self.crashes)
        return self.routers[index]

    def target(self, target: Target) -> _Service:
        return self.audit if target.role is Role.AUDIT else self.router(target.index)

    async def stop_all(self) -> None:
        for service in [*self.routers.values(), self.audit]:
            await service.terminate()


async def _apply(
    fault: Fault,
    processes: _Processes,
    brokers: Sequence[BrokerNode],
    start: float,
    applied: list[str],
) -> None:
    """Apply ``fault`` at its time and undo it after its pause."""
    loop = asyncio.get_running_loop()

    def note(what: str) -> None:
        applied.append(f"t={loop.time() - start:7.2f} {what}")

    await asyncio.sleep(max(0.0, start + fault.at_ms / 1000 - loop.time()))
    target = fault.target
    if target.role is Role.BROKER:
        node = brokers[target.index]
        if fault.kind is Kind.KILL9:
            node.kill()
            note(f"SIGKILL {node.name}")
        else:
            node.stop()
            note(f"SIGSTOP {node.name}")
        await asyncio.sleep(max(0.0, start + fault.end_ms / 1000 - loop.time()))
        if fault.kind is Kind.KILL9:
            await node.restart()
            note(f"restarted {node.name}")
        else:
            node.cont()
            note(f"SIGCONT {node.name}")
        return
    service = processes.target(target)
    if fault.kind is Kind.ADD_REMOVE:
        await service.start()
        note(f"added {service.name} (pid {service.pid})")
    elif fault.kind is Kind.KILL9:
        pid = service.pid
        await service.kill9()
        note(f"SIGKILL {service.name} (pid {pid})")
    else:
        service.freeze()
        note(f"SIGSTOP {service.name} (pid {service.pid})")
    await asyncio.sleep(max(0.0, start + fault.end_ms / 1000 - loop.time()))
    if fault.kind is Kind.ADD_REMOVE:
        code = await service.terminate()
        note(f"removed {service.name} (SIGTERM, exit {code})")
    elif fault.kind is Kind.KILL9:
        await service.start()
        note(f"restarted {service.name} (pid {service.pid})")
    else:
        service.thaw()
        note(f"SIGCONT {service.name}")


async def _wait_for_members(settings: Settings, count: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await group_members(settings, router_group_id(settings)) >= count:
            return True
        await asyncio.sleep(1.0)
    return False


async def _audit_offsets(settings: Settings) -> list[int]:
    return [raw.offset for raw in await read_committed(settings, [settings.topics.audit])]


async def _fed(settings: Settings) -> set[str]:
    """The ids of the findings on the feed now (read_committed)."""
    ids = set()
    for raw in await read_committed(settings, [settings.topics.feed]):
        for name, value in raw.headers or ():
            if name == HEADER_EVENT_ID:
                ids.add(bytes(value).decode(errors="replace"))
    return ids


async def _stored_up_to(store: Path) -> int:
    """The next audit offset the store would read (-1 when it has none yet)."""
    if not await asyncio.to_thread(store.exists):
        return -1
    with SqliteAuditStore(store) as audit:
        return audit.next_offset()


async def _drain(
    settings: Settings, published: Sequence[ConcernRaised], store: Path, timeout_s: float
) -> bool:
    """Wait until every published event is on the feed (the routers commit a finding's
    feed record, destinations and audit records in one transaction) and the audit
    service has stored every committed audit record; False if ``timeout_s`` passed first
    (a lost event keeps the feed from completing: the checker then reports it).

    Not "the router group has no lag": a group's committed offset stops before the last
    transaction marker of a partition, so that lag never reaches zero.
    """
    deadline = time.monotonic() + timeout_s
    wanted = {str(e.id) for e in published}
    while not wanted <= await _fed(settings):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(3.0)
    last = max(await _audit_offsets(settings), default=-1)
    while True:
        with contextlib.suppress(LiaisonError):
            if await _stored_up_to(store) > last:
                return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(2.0)


async def _prepare(config: RunConfig) -> None:
    """Topics, then (on a secured cluster) the ACLs of deploy/acls.toml for the run's
    prefix, as ``admin``."""
    admin = config.as_principal(ADMIN)
    await apply_topics(admin, admin.topics.specs())
    if config.principal is not None:
        acls = load_acls(admin.deploy_dir / "acls.toml")
        await apply_acls(admin, acls.bindings(admin.topic_prefix))
        topics = admin.topics
        reads = {
            KEYADMIN: [topics.keys],
            ROUTER: [topics.events(i) for i in Inspectorate],
            AUDIT: [topics.audit, topics.keys],
        }
        for principal, wanted in reads.items():
            await _until_visible(config.as_principal(principal), wanted)


async def _until_visible(settings: Settings, topics: Sequence[str]) -> None:
    """Wait until ``settings``' principal sees ``topics`` several times running (each
    request may go to another node).

    A finding of the first runs: just after ``topics apply`` and ``acls apply`` return
    (``apply_acls`` waits until one node describes the new ACLs), a request to another
    node could still be answered "do not exist, or not authorised" for a second or so;
    the first process to start then stopped the run. Production applies topics and ACLs
    once, long before any process starts; a run starts them at once."""
    deadline = time.monotonic() + _VISIBLE_TIMEOUT_S
    streak = 0
    while streak < _VISIBLE_STREAK:
        try:
            await partition_counts(settings, topics)
        except LiaisonError:
            if time.monotonic() > deadline:
                raise
            streak = 0
        else:
            streak += 1
        await asyncio.sleep(0.2)


async def remove_run(config: RunConfig) -> None:
    """Remove what the run made on Kafka: its ACLs (on a secured cluster) and its topics."""
    admin = config.as_principal(ADMIN)
    if config.principal is not None:
        await apply_acls(admin, ())  # this prefix's bindings only
    await delete_topics(admin, [spec.name for spec in admin.topics.specs()])


def defences(run_dir: Path) -> dict[str, Counter[str]]:
    """Per process kind (the log file's name up to its last ``-``), how often each log
    event was written, and ``traceback`` for each traceback (a line that is no JSON)."""
    tallies: dict[str, Counter[str]] = {}
    for log in sorted(run_dir.glob("*.log")):
        kind = log.stem.rpartition("-")[0] or log.stem
        tally = tallies.setdefault(kind, Counter())
        with log.open("rb") as lines:
            for line in lines:
                if line.startswith(b"Traceback (most recent call last)"):
                    tally["traceback"] += 1
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("event"), str):
                    tally[record["event"]] += 1
                    if record.get("level") in {"warning", "error", "critical"}:
                        tally[f"{record.get('level')}:{record['event']}"] += 1
    return tallies


async def run(config: RunConfig, brokers: Sequence[BrokerNode] = ()) -> Outcome:
    """Run the schedule against ``config.settings`` (see the module docstring)."""
    schedule = config.schedule
    if any(f.target.role is Role.BROKER for f in schedule.faults) and len(brokers) < max(
        f.target.index + 1 for f in schedule.faults if f.target.role is Role.BROKER
    ):
        msg = "the schedule faults brokers this run does not have"
        raise ValueError(msg)
    clock = time.monotonic()
    seconds: dict[str, float] = {}

    def lap(phase: str) -> None:
        nonlocal clock
        seconds[phase] = time.monotonic() - clock
        clock = time.monotonic()

    config.run_dir.mkdir(parents=True, exist_ok=True)
    await _prepare(config)
    checker = config.as_principal(ADMIN)
    now = dt.datetime.now(dt.UTC)
    owners = (*(i.value for i in Inspectorate), *COMPONENTS)
    keys = await ensure_keys(config.as_principal(KEYADMIN), owners, now)
    rules = load_rules(checker.rules_path)
    events = make_events(schedule.seed, config.events, now)
    applied: list[str] = []
    crashes: list[str] = []
    processes = _Processes(config, crashes)
    async with _running(processes, schedule.routers):
        if not await _wait_for_members(checker, schedule.routers, 120.0):
            applied.append("warning: not every router joined the group within 120 s")
        lap("setup")
        loop = asyncio.get_running_loop()
        start = loop.time()
        pair, rest = events[:2], events[2:]
        batches = [pair, *(rest[i : i + _BATCH] for i in range(0, len(rest), _BATCH))]
        span = schedule.duration_ms / 1000 * config.publish_share
        every = span / max(1, len(batches) - 1)
        publishing = asyncio.create_task(
            _publisher(
                config.as_principal,
                keys=keys,
                batches=batches,
                start=start,
                every_s=every,
                log=applied,
            )
        )
        for fault in schedule.faults:
            await _apply(fault, processes, brokers, start, applied)
        published = await publishing
        await asyncio.sleep(max(0.0, start + schedule.duration_ms / 1000 - loop.time()))
        for service in [*(processes.router(j) for j in range(schedule.routers)), processes.audit]:
            if service.stopped:
                service.thaw()
            if not service.running:
                await service.start()
        lap("faults")
        drained = await _drain(checker, published, store_path(checker), config.drain_timeout_s)
        lap("drain")
    observed = await observe(checker)
    report = judge(expect(published, rules, checker.topics), observed)
    lap("check")
    return Outcome(
        schedule,
        report,
        len(published),
        applied,
        crashes,
        drained,
        config.replay,
        defences(config.run_dir),
        seconds,
    )


@asynccontextmanager
async def _running(processes: _Processes, routers: int) -> AsyncIterator[None]:
    try:
        await processes.audit.start()
        for j in range(routers):
            await processes.router(j).start()
        yield
    finally:
        await processes.stop_all()
