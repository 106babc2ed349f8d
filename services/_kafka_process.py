"""What the local broker and the development cluster share: Apache Kafka's jars from
Maven Central, the machine's Java, and handling the JVM processes they start.

Only a process whose command line is Kafka's main class with our own config file is ever
signalled (``is_kafka_process``), so a stale PID file can never make us kill a stranger.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from schemas.errors import LocalBrokerError

__all__ = [
    "MAIN_CLASS",
    "KafkaJars",
    "alive",
    "exited",
    "is_kafka_process",
    "java",
    "jvm_args",
    "kafka_cluster_id",
    "port_free",
    "read_pid",
    "spawn",
    "tail",
    "tcp_open",
    "terminate",
]

MAIN_CLASS = "kafka.Kafka"
LOG_TAIL_LINES = 30
STOP_TIMEOUT_S = 30.0


def kafka_cluster_id() -> str:
    """A random cluster id in Kafka's format (URL-safe base64 of 16 bytes, no padding).

    Never one starting with ``-`` (one in 64 would): ``kafka-storage format`` would take
    it for an option and fail ("--cluster-id: expected one argument"). Kafka's own
    ``Uuid.randomUuid`` draws again for the same reason.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def tcp_open(bootstrap: str) -> bool:
    """Whether something accepts a TCP connection at ``host:port``."""
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def port_free(port: int) -> bool:
    """Whether ``127.0.0.1:port`` can be listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, or why there are none."""
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:]) or f"({path} is empty)"


class KafkaJars:
    """Apache Kafka's jars as ``deploy/local/pom.xml`` pins them, copied into ``libs``."""

    def __init__(self, deploy_dir: Path, libs: Path) -> None:
        self.local = deploy_dir.resolve() / "local"
        self.libs = libs

    @property
    def pom(self) -> Path:
        """The pom that pins Kafka's version."""
        pom = self.local / "pom.xml"
        if not pom.is_file():
            raise LocalBrokerError(
                f"{pom} not found: the local broker is defined in the Liaison repository's"
                " deploy/local/ (set LIAISON_DEPLOY_DIR if it lives elsewhere)"
            )
        return pom

    @property
    def log4j_config(self) -> Path:
        """The brokers' logging configuration."""
        return self.local / "log4j2.yaml"

    @property
    def kafka_version(self) -> str:
        """The Kafka version the pom pins."""
        found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", self.pom.read_text())
        if found is None:
            raise LocalBrokerError(f"{self.pom} does not set <kafka.version>")
        return found.group(1)

    def fetch(self, say: Callable[[str], None]) -> None:
        """Resolve the jars from Maven Central unless the pom's jars are there."""
        pom = self.pom
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
        result = subprocess.run(  # noqa: S603 - mvn with our pom, never input
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
            output = "\n".join((result.stdout + result.stderr).splitlines()[-LOG_TAIL_LINES:])
            raise LocalBrokerError(f"Maven could not fetch Apache Kafka:\n{output}")
        if not any(staging.glob("kafka_2.13-*.jar")):
            raise LocalBrokerError(f"Maven ran but no kafka_2.13 jar landed in {staging}")
        shutil.rmtree(self.libs, ignore_errors=True)
        staging.rename(self.libs)
        stamp.write_text(digest + "\n")


def java() -> str:
    """``$JAVA_HOME/bin/java``, else ``java`` on the PATH."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    if candidate is not None and candidate.is_file():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise LocalBrokerError("Java 17 or newer is needed to run the local broker")
    return found


def jvm_args(jars: KafkaJars, *, heap_mb: int, logs: Path) -> list[str]:
    """The JVM command line up to the main class: heap, GC, logging, class path."""
    return [
        java(),
        f"-Xms{heap_mb}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={logs}",
        f"-Dlog4j2.configurationFile={jars.log4j_config}",
        "-cp",
        f"{jars.libs}/*",
    ]


def spawn(args: list[str], stdout: Path) -> int:
    """Start ``args`` in its own session, output to ``stdout``; its PID."""
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


def read_pid(pid_file: Path) -> int | None:
    """The number in a PID file, if there is one."""
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def is_kafka_process(pid: int, config_file: Path) -> bool:
    """Whether ``pid`` is a Kafka server running with ``config_file``."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        if cmdline.exists():
            args = cmdline.read_bytes().split(b"\0")
        else:  # not Linux: ask ps
            out = subprocess.run(  # noqa: S603 - ps with a number
                ["ps", "-o", "command=", "-p", str(pid)],  # noqa: S607 - on PATH on purpose
                capture_output=True,
                check=False,
                text=True,
            )
            args = [a.encode() for a in out.stdout.split()]
    except OSError:
        return False
    return MAIN_CLASS.encode() in args and str(config_file).encode() in args


def terminate(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL if ``pid`` is still there after ``timeout_s``; wait until gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)  # a stopped process (SIGSTOP) must wake to see SIGTERM
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.05)


def exited(pid: int) -> bool:
    """For a child of this process: reap it if it has exited."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not alive(pid)
    return done == pid


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, once reaped or seen in /proc, does not)."""
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
