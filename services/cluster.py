"""The secured development cluster: three Apache Kafka KRaft nodes on loopback, from the
same Maven jars as the local broker (``deploy/local/pom.xml``), for development, tests
and the fault harness.

Everything lives under ``$LIAISON_HOME/cluster`` (one cluster per LIAISON_HOME)::

    cluster/
      cluster.id              the KRaft cluster id, so a lost node is formatted into it
      tls/        (0700)      ca.pem (clients' LIAISON_KAFKA_CA_FILE), ca.key,
                              node-<n>.pem (the node's key, certificate and the CA)
      secrets/    (0700)      <principal>.password (0600), one per SCRAM user
      node-<n>/               config/server.properties, data/, logs/, node.pid

Security, as in production (``deploy/cluster/``):

- clients: ``SASL_SSL`` with SCRAM-SHA-512 on ``base+n-1``; one SCRAM user per
  ``[principal.<name>]`` of ``deploy/acls.toml``, created when the storage is formatted,
  with a random password kept only in ``secrets/``;
- nodes among themselves (``INTERNAL``, ``base+3+n-1``) and to the controllers
  (``CONTROLLER``, ``base+6+n-1``): TLS with client certificates required. KRaft's
  controller listener cannot use SCRAM (the credentials live in the metadata it serves),
  so both use mutual TLS. ``ssl.principal.mapping.rules`` maps a node certificate
  (``CN=liaison-node-<n>``, issued only by the development CA) to ``User:admin``; any
  other certificate maps to its full distinguished name, which is no super user;
- ``StandardAuthorizer``, nothing allowed where no ACL is found, ``super.users`` is
  ``User:admin`` alone (the operator over SCRAM and the nodes over mutual TLS are the
  same principal); there is no listener on which ``User:ANONYMOUS`` can arrive.

Durability: replication factor 3 with ``min.insync.replicas=2`` for every topic,
including the offsets and transaction state topics; no unclean leader election; no
automatic topic creation. A lost node is noticed within seconds (a 6 s broker session),
not production's 9 s and 30 s, so fault tests stay short.

Only processes whose command line is Kafka's with one of our nodes' config files are
ever signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import secrets
import signal
import subprocess
import time
import tomllib
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from aiokafka.client import AIOKafkaClient
from cryptography import x509

from schemas.errors import ConfigurationError, LocalBrokerError
from services._kafka_process import (
    MAIN_CLASS,
    KafkaJars,
    alive,
    is_kafka_process,
    jvm_args,
    kafka_cluster_id,
    port_free,
    read_pid,
    spawn,
    tail,
    terminate,
)
from services.devca import DevCA, load_ca, new_ca, valid_at
from services.kafka import client_options
from services.settings import Settings

__all__ = [
    "ADMIN",
    "NODES",
    "DevCluster",
    "NodePorts",
    "NodeStatus",
    "node_ports",
    "principals_in",
    "render_node_properties",
]

NODES: Final = (1, 2, 3)
"""The nodes' ids (KRaft ``node.id``), each a broker and a controller."""
ADMIN: Final = "admin"
"""The super user: the operator (SCRAM) and the nodes themselves (mutual TLS)."""
NodeState = Literal["running", "unresponsive", "stopped"]
T = TypeVar("T")

_START_TIMEOUT_S: Final = 150.0
_STOP_TIMEOUT_S: Final = 20.0
_PROBE_TIMEOUT_S: Final = 3.0
_FORMAT_HEAP_MB: Final = 128
_RENEW_BEFORE: Final = dt.timedelta(days=7)
_MECHANISM: Final = "SCRAM-SHA-512"
_NODE_CN = "liaison-node-{node}"
_PRINCIPAL_NAME = r"^[A-Za-z0-9_.-]{1,64}$"


@dataclass(frozen=True, slots=True)
class NodePorts:
    """One node's ports on 127.0.0.1."""

    client: int
    internal: int
    controller: int


def node_ports(base: int, node: int) -> NodePorts:
    """Node ``node`` (1 to 3): clients on ``base+n-1``, other nodes on ``base+3+n-1``,
    controllers on ``base+6+n-1``."""
    if node not in NODES:
        msg = f"there is no node {node}: the cluster's nodes are {', '.join(map(str, NODES))}"
        raise ConfigurationError(msg)
    offset = node - 1
    count = len(NODES)
    return NodePorts(base + offset, base + count + offset, base + 2 * count + offset)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One row of ``liaison cluster status``."""

    node: int
    pid: int | None
    state: NodeState
    ports: NodePorts

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return asdict(self)


def render_node_properties(*, node: int, base_port: int, node_dir: Path, tls_dir: Path) -> str:
    """The ``server.properties`` of one node (pure)."""
    ports = node_ports(base_port, node)
    voters = ",".join(f"{n}@127.0.0.1:{node_ports(base_port, n).controller}" for n in NODES)
    lines = [
        "# Written by `liaison cluster start` (services/cluster.py); rewritten at each start.",
        "process.roles=broker,controller",
        f"node.id={node}",
        f"controller.quorum.voters={voters}",
        (
            f"listeners=CLIENT://127.0.0.1:{ports.client},"
            f"INTERNAL://127.0.0.1:{ports.internal},"
            f"CONTROLLER://127.0.0.1:{ports.controller}"
        ),
        (
            f"advertised.listeners=CLIENT://127.0.0.1:{ports.client},"
            f"INTERNAL://127.0.0.1:{ports.internal}"
        ),
        "listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL",
        "inter.broker.listener.name=INTERNAL",
        "controller.listener.names=CONTROLLER",
        "",
        "# Clients: TLS, then SCRAM. No client certificate is asked for on this listener.",
        f"sasl.enabled.mechanisms={_MECHANISM}",
        f"listener.name.client.sasl.enabled.mechanisms={_MECHANISM}",
        f"listener.name.client.{_MECHANISM.lower()}.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "listener.name.client.ssl.client.auth=none",
        "",
        "# Nodes: mutual TLS on INTERNAL and CONTROLLER; a node certificate is User:admin.",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={(tls_dir / f'node-{node}.pem').as_posix()}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={(tls_dir / 'ca.pem').as_posix()}",
        "ssl.client.auth=required",
        "ssl.endpoint.identification.algorithm=https",
        f"ssl.principal.mapping.rules=RULE:^CN=liaison-node-[0-9]+$/{ADMIN}/,DEFAULT",
        "",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{ADMIN}",
        "",
        f"log.dirs={(node_dir / 'data').as_posix()}",
        "",
        "# Never lose an acknowledged record; topics are code (`liaison topics apply`).",
        "auto.create.topics.enable=false",
        "num.partitions=1",
        "default.replication.factor=3",
        "min.insync.replicas=2",
        "unclean.leader.election.enable=false",
        "offsets.topic.replication.factor=3",
        "offsets.topic.num.partitions=4",
        "transaction.state.log.replication.factor=3",
        "transaction.state.log.min.isr=2",
        "transaction.state.log.num.partitions=4",
        "share.coordinator.state.topic.replication.factor=3",
        "share.coordinator.state.topic.min.isr=2",
        "group.initial.rebalance.delay.ms=0",
        "",
        "# A lost node is noticed in seconds (development and fault tests).",
        "broker.heartbeat.interval.ms=1000",
        "broker.session.timeout.ms=6000",
        "replica.lag.time.max.ms=10000",
        "",
        "# Three nodes on a small machine: few threads each.",
        "num.network.threads=2",
        "num.io.threads=2",
        "num.replica.fetchers=1",
        "num.recovery.threads.per.data.dir=1",
        "background.threads=2",
        "",
    ]
    return "\n".join(lines)


def principals_in(text: str) -> tuple[str, ...]:
    """The principal names of an ACL file: the keys of its ``[principal.<name>]`` tables."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"deploy/acls.toml is not valid TOML: {exc}"
        raise ConfigurationError(msg) from None
    tables = document.get("principal", {})
    if not isinstance(tables, dict) or not tables:
        msg = "deploy/acls.toml names no [principal.<name>] tables"
        raise ConfigurationError(msg)
    bad = [name for name in tables if not re.fullmatch(_PRINCIPAL_NAME, name)]
    if bad:
        msg = (
            f"deploy/acls.toml: principal names must be letters, digits, '.', '_' or '-'"
            f" (at most 64): {', '.join(sorted(bad))}"
        )
        raise ConfigurationError(msg)
    if ADMIN not in tables:
        msg = f"deploy/acls.toml must name [principal.{ADMIN}] (the cluster's super user)"
        raise ConfigurationError(msg)
    return tuple(tables)


class DevCluster:
    """Start, stop, report on and connect to the development cluster."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        home = settings.home.resolve()
        self.root = home / "cluster"
        self.tls = self.root / "tls"
        self.secrets = self.root / "secrets"
        self.ca_file = self.tls / "ca.pem"
        self._jars = KafkaJars(settings.deploy_dir, home / "kafka" / "libs")
        self.base_port = settings.cluster_base_port
        self.bootstrap_servers = ",".join(
            f"127.0.0.1:{node_ports(self.base_port, n).client}" for n in NODES
        )

    # -- facts -------------------------------------------------------------------------

    @property
    def kafka_version(self) -> str:
        """The Kafka version the pom pins."""
        return self._jars.kafka_version

    def node_dir(self, node: int) -> Path:
        """Where node ``node`` keeps its config, data and logs."""
        node_ports(self.base_port, node)  # an unknown node is an error
        return self.root / f"node-{node}"

    def _config_file(self, node: int) -> Path:
        return self.node_dir(node) / "config" / "server.properties"

    def _pid_file(self, node: int) -> Path:
        return self.node_dir(node) / "node.pid"

    def _logs(self, node: int) -> Path:
        return self.node_dir(node) / "logs"

    def principals(self) -> tuple[str, ...]:
        """The principals ``deploy/acls.toml`` names (read now: it may have grown)."""
        path = self._settings.deploy_dir / "acls.toml"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"{path} cannot be read: {exc.strerror}"
            raise ConfigurationError(msg) from None
        return principals_in(text)

    def password_file(self, principal: str) -> Path:
        """The file holding ``principal``'s SCRAM password; an unknown principal, or one
        the cluster has no user for yet, is a ``ConfigurationError``."""
        known = self.principals()
        if principal not in known:
            msg = f"unknown principal {principal!r}; the principals are: {', '.join(known)}"
            raise ConfigurationError(msg)
        path = self.secrets / f"{principal}.password"
        if not path.is_file():
            msg = (
                f"the cluster has no SCRAM user {principal!r} yet: run `liaison cluster start`"
                if not self._formatted_any()
                else f"the cluster has no SCRAM user {principal!r}: it was formatted before"
                " deploy/acls.toml named it; `liaison cluster stop`, remove"
                f" {self.root}, and start it again"
            )
            raise ConfigurationError(msg)
        return path

    def pids(self) -> dict[int, int | None]:
        """Each node's PID, if that node's process is running (or stopped by SIGSTOP)."""
        return {node: self._recorded_pid(node) for node in NODES}

    def _recorded_pid(self, node: int) -> int | None:
        pid = read_pid(self._pid_file(node))
        if pid is None or not is_kafka_process(pid, self._config_file(node)):
            return None
        return pid

    def settings_for(self, principal: str, base: Settings | None = None) -> Settings:
        """``base`` (default: this cluster's settings) connecting as ``principal``:
        SASL_SSL to all three nodes, the development CA, replication factor 3."""
        return (base or self._settings).model_copy(
            update={
                "bootstrap_servers": self.bootstrap_servers,
                "kafka_security_protocol": "SASL_SSL",
                "kafka_ca_file": self.ca_file,
                "kafka_cert_file": None,
                "kafka_key_file": None,
                "kafka_sasl_mechanism": _MECHANISM,
                "kafka_sasl_username": principal,
                "kafka_sasl_password": None,
                "kafka_sasl_password_file": self.password_file(principal),
                "replication_factor": len(NODES),
            }
        )

    def env(self, principal: str) -> list[tuple[str, str]]:
        """The ``LIAISON_*`` variables that connect as ``principal`` (never the password:
        the file that holds it)."""
        password_file = self.password_file(principal)
        return [
            ("LIAISON_BOOTSTRAP_SERVERS", self.bootstrap_servers),
            ("LIAISON_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("LIAISON_KAFKA_CA_FILE", str(self.ca_file)),
            ("LIAISON_KAFKA_SASL_MECHANISM", _MECHANISM),
            ("LIAISON_KAFKA_SASL_USERNAME", principal),
            ("LIAISON_KAFKA_SASL_PASSWORD_FILE", str(password_file)),
            ("LIAISON_REPLICATION_FACTOR", str(len(NODES))),
        ]

    def status(self) -> list[NodeStatus]:
        """Each node: running (answers an authenticated metadata request), unresponsive
        (its process is up but does not answer: starting, or stopped by SIGSTOP) or
        stopped."""
        pids = self.pids()
        answering = self._answering([n for n, pid in pids.items() if pid is not None])
        return [
            NodeStatus(
                node,
                pid,
                "stopped" if pid is None else "running" if node in answering else "unresponsive",
                node_ports(self.base_port, node),
            )
            for node, pid in pids.items()
        ]

    # -- probing -----------------------------------------------------------------------

    def _answering(self, nodes: Iterable[int], *, brokers: int = 1) -> set[int]:
        """The nodes among ``nodes`` that answer an authenticated metadata request and
        see at least ``brokers`` brokers."""
        nodes = list(nodes)
        if not nodes or not (self.secrets / f"{ADMIN}.password").is_file():
            return set()
        admin = self.settings_for(ADMIN)
        # aiokafka logs every refused connection at ERROR; while probing, that is expected.
        previous = logging.root.manager.disable
        logging.disable(logging.ERROR)
        try:
            counts = _run_blocking(lambda: _probe_all(admin, self.base_port, nodes))
        finally:
            logging.disable(previous)
        return {node for node, count in counts.items() if count >= brokers}

    # -- TLS, passwords, storage -------------------------------------------------------------

    def _ensure_tls(self, now: dt.datetime, say: Callable[[str], None]) -> None:
        _private_dir(self.tls)
        ca_key = self.tls / "ca.key"
        ca: DevCA | None = None
        if self.ca_file.is_file() and ca_key.is_file():
            ca = load_ca(self.ca_file.read_bytes(), ca_key.read_bytes())
            if not valid_at(ca.certificate, now + _RENEW_BEFORE):
                ca = None
        renewed = ca is None
        if ca is None:
            say(f"Making a development CA in {self.tls} ...")
            ca = new_ca(now)
            _write_private(ca_key, ca.key_pem())
            _write_private(self.ca_file, ca.certificate_pem(), mode=0o644)
        for node in NODES:
            path = self.tls / f"node-{node}.pem"
            if not renewed and path.is_file() and _node_cert_fresh(path, ca, now):
                continue
            issued = ca.issue(_NODE_CN.format(node=node), now)
            _write_private(path, issued.key_pem() + issued.certificate_pem() + ca.certificate_pem())

    def _passwords(self, principals: Iterable[str]) -> dict[str, str]:
        _private_dir(self.secrets)
        passwords = {}
        for name in principals:
            path = self.secrets / f"{name}.password"
            if not path.is_file():
                _write_private(path, (secrets.token_urlsafe(32) + "\n").encode())
            passwords[name] = path.read_text(encoding="utf-8").strip()
        return passwords

    def _formatted(self, node: int) -> bool:
        return (self.node_dir(node) / "data" / "meta.properties").is_file()

    def _formatted_any(self) -> bool:
        return any(self._formatted(n) for n in NODES)

    def _format(self, nodes: list[int], say: Callable[[str], None]) -> None:
        """Format the storage of ``nodes`` (all in one go), with a SCRAM user for every
        principal of deploy/acls.toml."""
        id_file = self.root / "cluster.id"
        if not self._formatted_any() or not id_file.is_file():
            id_file.write_text(kafka_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        passwords = self._passwords(self.principals())
        scram = [
            arg
            for name, password in passwords.items()
            for arg in ("--add-scram", f"{_MECHANISM}=[name={name},password={password}]")
        ]
        say(f"Formatting storage of node {', '.join(map(str, nodes))} ...")
        running = {}
        for node in nodes:
            self._logs(node).mkdir(parents=True, exist_ok=True)
            args = [
                *jvm_args(self._jars, heap_mb=_FORMAT_HEAP_MB, logs=self._logs(node)),
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                cluster_id,
                "--config",
                str(self._config_file(node)),
                *scram,
            ]
            # The passwords are on this short-lived command line, as kafka-storage takes
            # them; they are never printed (a failure shows the tool's output only).
            running[node] = subprocess.Popen(  # noqa: S603 - java, our own arguments
                args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        for node, process in running.items():
            output, _ = process.communicate()
            if process.returncode != 0:
                msg = f"formatting node {node}'s storage failed:\n{_redact(output, passwords)}"
                raise LocalBrokerError(msg)

    # -- start and stop --------------------------------------------------------------------

    def start(
        self, say: Callable[[str], None], *, nodes: Iterable[int] = NODES
    ) -> list[NodeStatus]:
        """Start ``nodes`` (default: all) that are not running; return once every node
        answers an authenticated metadata request and sees all three brokers."""
        wanted = sorted(set(nodes))
        for node in wanted:
            node_ports(self.base_port, node)
        principals = self.principals()
        pids = self.pids()
        missing = [n for n in wanted if pids[n] is None]
        if not missing:
            say("The cluster's nodes are already running; checking they answer ...")
            return self._wait_ready(spawned={})
        for node in missing:
            self._pid_file(node).unlink(missing_ok=True)
            for port in (p for p in asdict(node_ports(self.base_port, node)).values()):
                if not port_free(port):
                    msg = (
                        f"port 127.0.0.1:{port} (node {node}) is in use by another process;"
                        " stop it or set LIAISON_CLUSTER_BASE_PORT (the cluster uses nine"
                        f" ports from {self.base_port})"
                    )
                    raise LocalBrokerError(msg)
        self._jars.fetch(say)
        now = dt.datetime.now(dt.UTC)
        self.root.mkdir(parents=True, exist_ok=True)
        if all(pid is None for pid in pids.values()):
            self._ensure_tls(now, say)  # only when no node runs with the old files
        elif not self.ca_file.is_file():
            msg = f"{self.ca_file} is missing while nodes run: `liaison cluster stop` first"
            raise LocalBrokerError(msg)
        for node in NODES:
            config = self._config_file(node)
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(
                render_node_properties(
                    node=node,
                    base_port=self.base_port,
                    node_dir=self.node_dir(node),
                    tls_dir=self.tls,
                )
            )
        unformatted = [n for n in missing if not self._formatted(n)]
        if unformatted:
            self._format(unformatted, say)
        absent = [p for p in principals if not (self.secrets / f"{p}.password").is_file()]
        if absent:
            say(
                f"warning: no SCRAM user for {', '.join(absent)} (named in deploy/acls.toml"
                " after the cluster was formatted); remove the cluster to re-create it"
            )
        say(
            f"Starting Apache Kafka {self.kafka_version} node {', '.join(map(str, missing))}"
            f" (clients on {self.bootstrap_servers}) ..."
        )
        spawned = {}
        for node in missing:
            logs = self._logs(node)
            logs.mkdir(parents=True, exist_ok=True)
            args = [
                *jvm_args(self._jars, heap_mb=self._settings.cluster_heap_mb, logs=logs),
                MAIN_CLASS,
                str(self._config_file(node)),
            ]
            pid = spawn(args, logs / "stdout.log")
            self._pid_file(node).write_text(f"{pid}\n")
            spawned[node] = pid
        return self._wait_ready(spawned=spawned)

    def _wait_ready(self, *, spawned: dict[int, int]) -> list[NodeStatus]:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            # A node just spawned is watched as our child, not by its command line: for a
            # moment after exec, /proc/<pid>/cmdline is still empty.
            for node, pid in spawned.items():
                how = _ended(pid)
                if how is not None:
                    self._pid_file(node).unlink(missing_ok=True)
                    self._stop_pids(spawned)
                    raise self._failure(
                        node, f"node {node} ended during start-up (pid {pid}, {how})"
                    )
            for node, recorded in self.pids().items():
                if recorded is None and node not in spawned:
                    self._stop_pids(spawned)
                    msg = f"node {node} is not running: `liaison cluster start` starts it"
                    raise LocalBrokerError(msg)
            if self._answering(NODES, brokers=len(NODES)) == set(NODES):
                return self.status()
            time.sleep(0.5)
        self._stop_pids(spawned)
        silent = sorted(set(NODES) - self._answering(NODES, brokers=len(NODES)))
        raise self._failure(
            silent[0] if silent else NODES[0],
            f"the cluster did not answer with {len(NODES)} brokers within {_START_TIMEOUT_S:.0f} s",
        )

    def _failure(self, node: int, what: str) -> LocalBrokerError:
        logs = self._logs(node)
        return LocalBrokerError(
            f"{what}\n--- last lines of {logs / 'server.log'} ---\n"
            f"{tail(logs / 'server.log')}\n"
            f"--- last lines of {logs / 'stdout.log'} ---\n"
            f"{tail(logs / 'stdout.log')}"
        )

    def _stop_pids(self, pids: dict[int, int]) -> None:
        for node, pid in pids.items():
            terminate(pid, _STOP_TIMEOUT_S)
            self._pid_file(node).unlink(missing_ok=True)

    def stop(self, say: Callable[[str], None]) -> bool:
        """Stop every node (SIGTERM, then SIGKILL after a timeout); whether any ran."""
        pids = self.pids()
        for node in NODES:
            if pids[node] is None and self._pid_file(node).exists():
                self._pid_file(node).unlink()
        running = {node: pid for node, pid in pids.items() if pid is not None}
        if not running:
            return False
        say(
            "Stopping node "
            + ", ".join(f"{node} (pid {pid})" for node, pid in running.items())
            + " ..."
        )
        for pid in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a stopped node must wake to see SIGTERM
                os.kill(pid, signal.SIGTERM)
        # Together, not one by one: the last node's controlled shutdown would wait for a
        # controller quorum that has already gone.
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while any(alive(pid) for pid in running.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for node, pid in running.items():
            if alive(pid):
                say(f"node {node} (pid {pid}) did not stop in {_STOP_TIMEOUT_S:.0f} s: SIGKILL")
                terminate(pid, 0)
            self._pid_file(node).unlink(missing_ok=True)
        return True

    # -- faults (tests and the fault harness) --------------------------------------------------

    def signal_node(self, node: int, sig: signal.Signals) -> int:
        """Send ``sig`` (SIGKILL, SIGSTOP, SIGCONT, ...) to node ``node``; its PID."""
        pid = self._recorded_pid(node)
        if pid is None:
            msg = f"node {node} is not running"
            raise LocalBrokerError(msg)
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            while alive(pid):
                time.sleep(0.02)
        return pid

    def start_node(self, node: int, say: Callable[[str], None]) -> NodeStatus:
        """Start node ``node`` again (after a kill); return once the whole cluster answers."""
        statuses = self.start(say, nodes=[node])
        return next(s for s in statuses if s.node == node)


def _run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end from synchronous code, even when called inside an event
    loop (an async test): then on a thread of its own, blocking the caller meanwhile."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


_PROBE_SETTLE_S: Final = 0.5


async def _probe(admin: Settings, bootstrap: str) -> int:
    """How many brokers node ``bootstrap`` reports to an authenticated metadata request
    (0: no answer)."""
    options: dict[str, Any] = {
        **client_options(admin),
        "bootstrap_servers": bootstrap,
        "request_timeout_ms": int(_PROBE_TIMEOUT_S * 1000),
    }
    client = AIOKafkaClient(**options)
    try:
        # Bounded by request_timeout_ms; never cancelled from outside, which could leave
        # a half-made TLS connection behind.
        await client.bootstrap()
    except Exception:  # noqa: BLE001 - any failure to bootstrap means "not answering"
        return 0
    else:
        return len(client.cluster.brokers())
    finally:
        await client.close()


async def _probe_all(admin: Settings, base_port: int, nodes: list[int]) -> dict[int, int]:
    counts = await asyncio.gather(
        *(_probe(admin, f"127.0.0.1:{node_ports(base_port, n).client}") for n in nodes)
    )
    # A connection that failed mid-handshake is closed a loop iteration or two later (a
    # TLS one after its shutdown exchange, slower on a busy machine): let that happen
    # before asyncio.run closes the loop, or its socket is left open. 0.05 s was seen too
    # short under load (a fresh-clone test run, a node starting).
    await asyncio.sleep(_PROBE_SETTLE_S)
    return dict(zip(nodes, counts, strict=True))


def _ended(pid: int) -> str | None:
    """How a child process ended, or None while it runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child (or reaped): ask the kernel
        return None if alive(pid) else "gone"
    if done != pid:
        return None
    code = os.waitstatus_to_exitcode(status)
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


def _node_cert_fresh(path: Path, ca: DevCA, now: dt.datetime) -> bool:
    try:
        certificate = x509.load_pem_x509_certificates(path.read_bytes())[0]
    except (ValueError, IndexError):
        return False
    return certificate.issuer == ca.certificate.subject and valid_at(
        certificate, now + _RENEW_BEFORE
    )


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def _write_private(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to a new file created with ``mode`` (never briefly world-readable)."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    partial.replace(path)


def _redact(text: str, passwords: dict[str, str]) -> str:
    for password in passwords.values():
        text = text.replace(password, "***")
    return text
