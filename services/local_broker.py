"""The local single-node Apache Kafka broker (KRaft) for development, tests and the demo.

Jars come from Maven Central through ``deploy/local/pom.xml``; the broker runs with the
machine's Java under ``$LIAISON_HOME/kafka`` (jars, config, data, logs, PID file). Only
the process recorded in the PID file is ever signalled.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template
from typing import Literal

from aiokafka.client import AIOKafkaClient

from schemas.errors import LocalBrokerError
from services._kafka_process import (
    MAIN_CLASS,
    KafkaJars,
    exited,
    is_kafka_process,
    jvm_args,
    kafka_cluster_id,
    port_free,
    read_pid,
    spawn,
    tail,
    tcp_open,
    terminate,
)
from services.settings import Settings

__all__ = ["BrokerStatus", "LocalBroker", "answers_metadata", "render_server_properties"]

State = Literal["running", "stopped", "unresponsive"]
_START_TIMEOUT_S = 90.0
_kafka_cluster_id = kafka_cluster_id  # the name the unit tests know


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """What ``liaison broker status --json`` prints."""

    state: State
    bootstrap_servers: str
    pid: int | None
    kafka_version: str
    home: str

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return asdict(self)


def render_server_properties(template: str, *, port: int, data_dir: Path) -> str:
    """Fill the ``deploy/local/server.properties`` template for one local broker."""
    return Template(template).substitute(
        port=port, controller_port=port + 1, data_dir=data_dir.as_posix()
    )


async def _answers_metadata(bootstrap: str, timeout_s: float) -> bool:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
    except Exception:  # noqa: BLE001 - any failure to bootstrap means "not answering"
        return False
    else:
        return bool(client.cluster.brokers())
    finally:
        await client.close()


def answers_metadata(bootstrap: str, timeout_s: float = 3.0) -> bool:
    """Whether a Kafka broker at ``bootstrap`` answers a metadata request in time."""
    if not tcp_open(bootstrap):
        return False
    # aiokafka logs every refused connection at ERROR; while probing, that is expected.
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        return asyncio.run(_answers_metadata(bootstrap, timeout_s))
    finally:
        logging.disable(previous)


class LocalBroker:
    """Fetch, format, start, stop and report on the local broker."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.root = settings.home.resolve() / "kafka"
        self.libs = self.root / "libs"
        self.config_file = self.root / "config" / "server.properties"
        self.data = self.root / "data"
        self.logs = self.root / "logs"
        self.pid_file = self.root / "broker.pid"
        self._jars = KafkaJars(settings.deploy_dir, self.libs)
        self._local = self._jars.local
        self.bootstrap = f"127.0.0.1:{settings.local_broker_port}"

    # -- facts -------------------------------------------------------------------------

    @property
    def kafka_version(self) -> str:
        """The Kafka version the pom pins."""
        return self._jars.kafka_version

    def recorded_pid(self) -> int | None:
        """The PID in the PID file if that process is alive and is our broker."""
        pid = read_pid(self.pid_file)
        return pid if pid is not None and is_kafka_process(pid, self.config_file) else None

    def status(self) -> BrokerStatus:
        """Running (answers metadata), unresponsive (process up, not answering), or stopped."""
        pid = self.recorded_pid()
        if pid is None:
            state: State = "stopped"
        elif answers_metadata(self.bootstrap):
            state = "running"
        else:
            state = "unresponsive"
        return BrokerStatus(
            state=state,
            bootstrap_servers=self.bootstrap,
            pid=pid,
            kafka_version=self.kafka_version,
            home=str(self.root),
        )

    # -- fetch and format ------------------------------------------------------------------

    def fetch(self, say: Callable[[str], None]) -> None:
        """Resolve the broker's jars from Maven Central unless the pom's jars are there."""
        self._jars.fetch(say)

    def _write_config(self) -> None:
        template = (self._local / "server.properties").read_text()
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            render_server_properties(
                template, port=self._settings.local_broker_port, data_dir=self.data
            )
        )

    def _format(self, say: Callable[[str], None]) -> None:
        if (self.data / "meta.properties").exists():
            return
        say(f"Formatting new broker storage in {self.data} ...")
        self.logs.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                *self._jvm(heap_mb=128),
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                kafka_cluster_id(),
                "--config",
                str(self.config_file),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LocalBrokerError(
                "formatting the broker's storage failed:\n" + (result.stdout + result.stderr)
            )

    def _jvm(self, heap_mb: int) -> list[str]:
        return jvm_args(self._jars, heap_mb=heap_mb, logs=self.logs)

    # -- start and stop --------------------------------------------------------------------

    def start(self, say: Callable[[str], None]) -> BrokerStatus:
        """Start the broker unless it runs; return once it answers a metadata request."""
        if self.recorded_pid() is not None:
            current = self.status()
            if current.state == "running":
                say(f"Broker already running at {self.bootstrap} (pid {current.pid}).")
                return current
            pid = current.pid
            say(f"Broker process {pid} is up but not answering yet; waiting ...")
            return self._wait_until_answering(pid, spawned=False)
        self.pid_file.unlink(missing_ok=True)
        port = self._settings.local_broker_port
        for needed in (port, port + 1):
            if not port_free(needed):
                raise LocalBrokerError(
                    f"port 127.0.0.1:{needed} is in use by another process; stop it or set"
                    " LIAISON_LOCAL_BROKER_PORT to a free port (the controller uses port + 1)"
                )
        self.fetch(say)
        self._write_config()
        self._format(say)
        self.logs.mkdir(parents=True, exist_ok=True)
        say(f"Starting Apache Kafka {self.kafka_version} on {self.bootstrap} ...")
        pid = self._spawn()
        self.pid_file.write_text(f"{pid}\n")
        return self._wait_until_answering(pid, spawned=True)

    def _spawn(self) -> int:
        args = [
            *self._jvm(heap_mb=self._settings.local_broker_heap_mb),
            MAIN_CLASS,
            str(self.config_file),
        ]
        return spawn(args, self.logs / "stdout.log")

    def _failure(self, what: str) -> LocalBrokerError:
        return LocalBrokerError(
            f"{what}\n--- last lines of {self.logs / 'server.log'} ---\n"
            f"{tail(self.logs / 'server.log')}\n"
            f"--- last lines of {self.logs / 'stdout.log'} ---\n"
            f"{tail(self.logs / 'stdout.log')}"
        )

    def _wait_until_answering(self, pid: int | None, *, spawned: bool) -> BrokerStatus:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if spawned and pid is not None and exited(pid):
                self.pid_file.unlink(missing_ok=True)
                raise self._failure(f"the broker exited during start-up (pid {pid})")
            if answers_metadata(self.bootstrap, timeout_s=2.0):
                return self.status()
            time.sleep(0.25)
        if spawned and pid is not None:
            terminate(pid)
        raise self._failure(
            f"the broker did not answer a metadata request on {self.bootstrap}"
            f" within {_START_TIMEOUT_S:.0f} s"
        )

    def stop(self, say: Callable[[str], None]) -> bool:
        """Stop the broker this tool started; return whether there was one to stop."""
        pid = self.recorded_pid()
        if pid is None:
            if self.pid_file.exists():
                say(f"Removing stale PID file {self.pid_file} (its process is not our broker).")
                self.pid_file.unlink()
            return False
        say(f"Stopping the broker (pid {pid}) ...")
        terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        return True
