"""The local single-node Apache Kafka broker (KRaft) for development, tests and the demo.

Jars come from Maven Central through ``deploy/local/pom.xml``; the broker runs with the
machine's Java under ``$LIAISON_HOME/kafka`` (jars, config, data, logs, PID file). Only
the process recorded in the PID file is ever signalled.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template
from typing import Literal

from aiokafka.client import AIOKafkaClient

from schemas.errors import LocalBrokerError
from services.settings import Settings

__all__ = ["BrokerStatus", "LocalBroker", "render_server_properties"]

State = Literal["running", "stopped", "unresponsive"]
_MAIN_CLASS = "kafka.Kafka"
_START_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 30.0
_LOG_TAIL_LINES = 30


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


def _kafka_cluster_id() -> str:
    """A random cluster id in Kafka's format (URL-safe base64 of 16 bytes, no padding)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _tcp_open(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


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
    if not _tcp_open(bootstrap):
        return False
    # aiokafka logs every refused connection at ERROR; while probing, that is expected.
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        return asyncio.run(_answers_metadata(bootstrap, timeout_s))
    finally:
        logging.disable(previous)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:]) or f"({path} is empty)"


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
        self._local = settings.deploy_dir.resolve() / "local"
        self.bootstrap = f"127.0.0.1:{settings.local_broker_port}"

    # -- facts -------------------------------------------------------------------------

    @property
    def kafka_version(self) -> str:
        """The Kafka version the pom pins."""
        pom = self._pom.read_text()
        found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
        if found is None:
            raise LocalBrokerError(f"{self._pom} does not set <kafka.version>")
        return found.group(1)

    @property
    def _pom(self) -> Path:
        pom = self._local / "pom.xml"
        if not pom.is_file():
            raise LocalBrokerError(
                f"{pom} not found: the local broker is defined in the Liaison repository's"
                " deploy/local/ (set LIAISON_DEPLOY_DIR if it lives elsewhere)"
            )
        return pom

    def recorded_pid(self) -> int | None:
        """The PID in the PID file if that process is alive and is our broker."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if self._is_our_broker(pid) else None

    def _is_our_broker(self, pid: int) -> bool:
        cmdline = Path(f"/proc/{pid}/cmdline")
        try:
            if cmdline.exists():
                args = cmdline.read_bytes().split(b"\0")
            else:  # not Linux: ask ps
                out = subprocess.run(
                    ["ps", "-o", "command=", "-p", str(pid)],
                    capture_output=True,
                    check=False,
                    text=True,
                )
                args = [a.encode() for a in out.stdout.split()]
        except OSError:
            return False
        return _MAIN_CLASS.encode() in args and str(self.config_file).encode() in args

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
        pom = self._pom
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()
        stamp = self.libs / ".pom-sha256"
        if stamp.exists() and stamp.read_text().strip() == digest:
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalBrokerError(
                "Maven (mvn) is needed to fetch Apache Kafka from Maven Central; install it,"
                " or point LIAISON_BOOTSTRAP_SERVERS at an existing Kafka cluster"
            )
        say(f"Fetching Apache Kafka {self.kafka_version} from Maven Central ...")
        staging = self.libs.with_name("libs.partial")
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-_LOG_TAIL_LINES:])
            raise LocalBrokerError(f"Maven could not fetch Apache Kafka:\n{tail}")
        if not any(staging.glob("kafka_2.13-*.jar")):
            raise LocalBrokerError(f"Maven ran but no kafka_2.13 jar landed in {staging}")
        shutil.rmtree(self.libs, ignore_errors=True)
        staging.rename(self.libs)
        stamp.write_text(digest + "\n")

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        candidate = Path(java_home, "bin", "java") if java_home else None
        if candidate is not None and candidate.is_file():
            return str(candidate)
        found = shutil.which("java")
        if found is None:
            raise LocalBrokerError("Java 17 or newer is needed to run the local broker")
        return found

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
                _kafka_cluster_id(),
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
        return [
            self._java(),
            f"-Xms{heap_mb}m",
            f"-Xmx{heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.logs}",
            f"-Dlog4j2.configurationFile={self._local / 'log4j2.yaml'}",
            "-cp",
            f"{self.libs}/*",
        ]

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
            if not _port_free(needed):
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
        stdout = self.logs / "stdout.log"
        args = [
            *self._jvm(heap_mb=self._settings.local_broker_heap_mb),
            _MAIN_CLASS,
            str(self.config_file),
        ]
        # posix_spawn, not Popen: the broker outlives this command, in its own session.
        fd = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            return os.posix_spawn(
                args[0],
                args,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, fd, 1),
                    (os.POSIX_SPAWN_DUP2, fd, 2),
                ],
                setsid=True,
            )
        finally:
            os.close(fd)

    def _failure(self, what: str) -> LocalBrokerError:
        return LocalBrokerError(
            f"{what}\n--- last lines of {self.logs / 'server.log'} ---\n"
            f"{_tail(self.logs / 'server.log')}\n"
            f"--- last lines of {self.logs / 'stdout.log'} ---\n"
            f"{_tail(self.logs / 'stdout.log')}"
        )

    def _wait_until_answering(self, pid: int | None, *, spawned: bool) -> BrokerStatus:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if spawned and pid is not None and _exited(pid):
                self.pid_file.unlink(missing_ok=True)
                raise self._failure(f"the broker exited during start-up (pid {pid})")
            if answers_metadata(self.bootstrap, timeout_s=2.0):
                return self.status()
            time.sleep(0.25)
        if spawned and pid is not None:
            self._terminate(pid)
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
        self._terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _terminate(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)


def _exited(pid: int) -> bool:
    """For a child of this process: reap it if it has exited."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not _alive(pid)
    return done == pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone once reaped.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError, IndexError):
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True
