"""The secured three-node cluster for integration tests: ``secured_cluster``.

Started once per test session (``liaison cluster start``'s own code) under a LIAISON_HOME
of its own in a temporary directory, and stopped at the end. Import it where needed::

    from tests.integration._cluster import secured_cluster  # noqa: F401

Its ports start at ``LIAISON_CLUSTER_BASE_PORT`` (default 39300; nine ports). When that
variable is unset and the default ports are taken (another session's cluster), a free
block outside the kernel's ephemeral range is used instead.
"""

from __future__ import annotations

import os
import random
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services._kafka_process import KafkaJars
from services.cluster import ADMIN, DevCluster, NodeStatus
from services.settings import Settings

__all__ = ["SecuredCluster", "secured_cluster"]

_DEFAULT_BASE_PORT = 39300
_PORTS = 9


class SecuredCluster:
    """The running cluster, settings to connect to it as any principal, and its nodes'
    controls (for fault tests)."""

    def __init__(self, cluster: DevCluster, base: Settings) -> None:
        self.cluster = cluster
        self.base = base
        self.bootstrap_servers = cluster.bootstrap_servers
        self.ca_file = cluster.ca_file
        self.home = base.home

    def settings_for(self, principal: str, **overrides: Any) -> Settings:
        """Settings connecting as ``principal``: SASL_SSL with SCRAM-SHA-512, the
        development CA, all three bootstrap servers, replication factor 3; ``overrides``
        (a ``topic_prefix``, a ``home``, ...) on top. An unknown principal is a
        ``ConfigurationError``."""
        return self.cluster.settings_for(principal, self.base).model_copy(update=overrides)

    @property
    def admin_settings(self) -> Settings:
        """Settings connecting as the super user ``admin`` (no topic prefix)."""
        return self.settings_for(ADMIN)

    @property
    def principals(self) -> tuple[str, ...]:
        """Every principal with a SCRAM user (deploy/acls.toml's)."""
        return self.cluster.principals()

    def password_file(self, principal: str) -> Path:
        """The file holding ``principal``'s password."""
        return self.cluster.password_file(principal)

    def env(self, principal: str) -> dict[str, str]:
        """The LIAISON_* variables a `liaison` subprocess needs to connect as ``principal``
        (with LIAISON_HOME and LIAISON_CLUSTER_BASE_PORT of this cluster)."""
        return {
            **dict(self.cluster.env(principal)),
            "LIAISON_HOME": str(self.home),
            "LIAISON_CLUSTER_BASE_PORT": str(self.base.cluster_base_port),
        }

    # -- nodes ---------------------------------------------------------------------------

    def pids(self) -> dict[int, int | None]:
        """Node id (1 to 3) to its PID, or None when it is not running."""
        return self.cluster.pids()

    def signal(self, node: int, sig: signal.Signals) -> int:
        """Send ``sig`` to one node (SIGKILL waits until it is gone); its PID."""
        return self.cluster.signal_node(node, sig)

    def kill(self, node: int) -> int:
        """SIGKILL one node; its PID."""
        return self.signal(node, signal.SIGKILL)

    def pause(self, node: int) -> int:
        """SIGSTOP one node; its PID."""
        return self.signal(node, signal.SIGSTOP)

    def resume(self, node: int) -> int:
        """SIGCONT one node; its PID."""
        return self.signal(node, signal.SIGCONT)

    def start_node(self, node: int) -> NodeStatus:
        """Start one node again; returns once all three nodes answer with three brokers."""
        return self.cluster.start_node(node, print)

    def status(self) -> list[NodeStatus]:
        """Each node's PID, state and ports."""
        return self.cluster.status()


def _free(port: int) -> bool:
    with socket.socket() as probe:
        # As Kafka listens: a port whose last connection is in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_ports() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return range(32768, 61000)
    return range(int(low), int(high) + 1)


def _base_port() -> int:
    chosen = os.environ.get("LIAISON_CLUSTER_BASE_PORT")
    if chosen:
        return int(chosen)
    if all(_free(p) for p in range(_DEFAULT_BASE_PORT, _DEFAULT_BASE_PORT + _PORTS)):
        return _DEFAULT_BASE_PORT
    ephemeral = _ephemeral_ports()
    candidates = [
        p
        for p in range(20000, 32000 - _PORTS, _PORTS)
        if p not in ephemeral and p + _PORTS - 1 not in ephemeral
    ]
    for base in random.sample(candidates, min(50, len(candidates))):
        if all(_free(p) for p in range(base, base + _PORTS)):
            return base
    raise AssertionError("no block of nine free ports for the secured cluster")


@pytest.fixture(scope="session")
def secured_cluster(
    tmp_path_factory: pytest.TempPathFactory, base_settings: Settings
) -> Iterator[SecuredCluster]:
    """The secured cluster, started for this session and stopped after it."""
    home = tmp_path_factory.mktemp("cluster-home")
    # The same jars as the local broker: fetched once into the session's LIAISON_HOME and
    # shared, not fetched again into every temporary home.
    shared = base_settings.home.resolve() / "kafka" / "libs"
    KafkaJars(base_settings.deploy_dir, shared).fetch(print)
    (home / "kafka").mkdir()
    (home / "kafka" / "libs").symlink_to(shared, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("LIAISON_")]:
            patch.delenv(name)
        base = Settings(
            home=home,
            cluster_base_port=_base_port(),
            deploy_dir=base_settings.deploy_dir,
            cluster_heap_mb=base_settings.cluster_heap_mb,
        )
    cluster = DevCluster(base)
    try:
        cluster.start(print)
        yield SecuredCluster(cluster, base)
    finally:
        cluster.stop(print)
