"""`liaison broker start | stop | status` as a user runs them, on a broker of the test's own."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka

LIAISON = [sys.executable, "-m", "services"]


def _ephemeral_ports() -> range:
    """The ports the kernel hands to outgoing connections (never ours to listen on)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return range(32768, 61000)
    return range(int(low), int(high) + 1)


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    """A port p with p and p + 1 free on 127.0.0.1, outside the ephemeral range: a port
    the kernel may give any outgoing connection (the suite's own Kafka clients make many)
    could be taken between this choice and the broker's start."""
    ephemeral = _ephemeral_ports()
    candidates = [p for p in range(20000, 32000) if p not in ephemeral and p + 1 not in ephemeral]
    for port in random.sample(candidates, 50):
        if _free(port) and _free(port + 1):
            return port
    raise AssertionError("no free port pair")


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for init to reap it."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def liaison(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LIAISON, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a second local broker under a temporary LIAISON_HOME."""
    env = {
        **os.environ,
        "LIAISON_HOME": str(tmp_path / "home"),
        "LIAISON_LOCAL_BROKER_PORT": str(free_port_pair()),
        "LIAISON_LOCAL_BROKER_HEAP_MB": "256",
    }
    env.pop("LIAISON_BOOTSTRAP_SERVERS", None)
    yield env
    liaison(env, "broker", "stop")


def test_start_status_idempotent_start_and_stop(own_broker: dict[str, str]) -> None:
    port = own_broker["LIAISON_LOCAL_BROKER_PORT"]
    stopped = json.loads(liaison(own_broker, "broker", "status", "--json").stdout)
    assert stopped["state"] == "stopped"
    assert stopped["bootstrap_servers"] == f"127.0.0.1:{port}"

    first = liaison(own_broker, "broker", "start")
    assert first.returncode == 0, first.stderr
    running = json.loads(liaison(own_broker, "broker", "status", "--json").stdout)
    assert running["state"] == "running"
    pid = running["pid"]
    assert isinstance(pid, int)
    home = Path(own_broker["LIAISON_HOME"])
    assert (home / "kafka" / "data" / "meta.properties").exists()  # formatted on first start

    again = liaison(own_broker, "broker", "start")
    assert again.returncode == 0
    assert "already running" in again.stderr
    assert json.loads(liaison(own_broker, "broker", "status", "--json").stdout)["pid"] == pid

    stop = liaison(own_broker, "broker", "stop")
    assert stop.returncode == 0
    assert "Broker stopped" in stop.stderr
    assert gone(pid)
    assert json.loads(liaison(own_broker, "broker", "status", "--json").stdout)["state"] == (
        "stopped"
    )


def test_start_failure_shows_the_brokers_log(own_broker: dict[str, str]) -> None:
    assert liaison(own_broker, "broker", "start").returncode == 0
    assert liaison(own_broker, "broker", "stop").returncode == 0
    meta = Path(own_broker["LIAISON_HOME"], "kafka", "data", "meta.properties")
    meta.write_text(meta.read_text().replace("node.id=1", "node.id=7"))

    failed = liaison(own_broker, "broker", "start")
    assert failed.returncode == 1
    assert "error:" in failed.stderr
    assert "exited during start-up" in failed.stderr
    assert "last lines of" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert json.loads(liaison(own_broker, "broker", "status", "--json").stdout)["state"] == (
        "stopped"
    )


def test_port_in_use_is_named(own_broker: dict[str, str]) -> None:
    port = int(own_broker["LIAISON_LOCAL_BROKER_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        failed = liaison(own_broker, "broker", "start")
    assert failed.returncode == 1
    assert f"port 127.0.0.1:{port} is in use" in failed.stderr
    assert "LIAISON_LOCAL_BROKER_PORT" in failed.stderr


def test_stop_never_signals_a_process_it_did_not_start(own_broker: dict[str, str]) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        pid_file = Path(own_broker["LIAISON_HOME"], "kafka", "broker.pid")
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text(f"{bystander.pid}\n")
        stop = liaison(own_broker, "broker", "stop")
        assert stop.returncode == 0
        assert "stale PID file" in stop.stderr
        assert bystander.poll() is None  # still alive
        assert not pid_file.exists()
    finally:
        bystander.send_signal(signal.SIGTERM)
        bystander.wait()
