"""The secured three-node development cluster (`liaison cluster`), against itself: three
brokers, SASL_SSL only, topics replicated three times, and one node lost and back."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.conn import create_conn
from aiokafka.errors import SaslAuthenticationFailed
from pydantic import SecretStr

from schemas.errors import BrokerError
from schemas.records import OutboundRecord
from services.cluster import ADMIN, NODES
from services.kafka import (
    apply_topics,
    broker_answers,
    client_options,
    delete_topics,
    end_offsets,
    kafka_sink,
)
from services.settings import Settings, load_settings
from tests.integration._cluster import SecuredCluster

pytestmark = pytest.mark.kafka

LIAISON = [sys.executable, "-m", "services"]


def liaison(cluster: SecuredCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `liaison ARGS` with this cluster's LIAISON_HOME and ports, nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env["LIAISON_HOME"] = str(cluster.home)
    env["LIAISON_CLUSTER_BASE_PORT"] = str(cluster.base.cluster_base_port)
    return subprocess.run(
        [*LIAISON, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def admin(secured_cluster: SecuredCluster) -> Settings:
    """Admin settings with a topic prefix of this test's own."""
    return secured_cluster.settings_for(ADMIN, topic_prefix=f"test.{uuid.uuid4().hex[:10]}.")


async def _describe(settings: Settings, names: list[str]) -> dict[str, list[dict[str, object]]]:
    """Each topic's partitions as the cluster describes them (leader, replicas, isr)."""
    client = AIOKafkaAdminClient(**client_options(settings))
    await client.start()
    try:
        found = await client.describe_topics(names)
    finally:
        await client.close()
    return {topic["topic"]: topic["partitions"] for topic in found}


async def test_the_cluster_has_three_brokers(secured_cluster: SecuredCluster) -> None:
    client = AIOKafkaClient(**client_options(secured_cluster.admin_settings))
    await client.bootstrap()
    try:
        brokers = {broker.nodeId for broker in client.cluster.brokers()}
    finally:
        await client.close()
    assert brokers == set(NODES)
    assert [status.state for status in secured_cluster.status()] == ["running"] * 3


async def test_apply_topics_as_admin_replicates_every_partition_three_times(
    admin: Settings,
) -> None:
    specs = admin.topics.specs()
    names = [spec.name for spec in specs]
    try:
        reports = await apply_topics(admin, specs)
        assert all(report.exists for report in reports)
        partitions = await _describe(admin, names)
        assert sorted(partitions) == sorted(names)
        for topic, parts in partitions.items():
            for part in parts:
                assert len(part["replicas"]) == 3, topic  # type: ignore[arg-type]
                assert len(part["isr"]) >= 2, topic  # type: ignore[arg-type]
        client = AIOKafkaAdminClient(**client_options(admin))
        await client.start()
        try:
            (response,) = await client.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, admin.topics.unrouted)]
            )
        finally:
            await client.close()
        configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
        assert configs["min.insync.replicas"] == "2"
        assert configs["unclean.leader.election.enable"] == "false"
    finally:
        await delete_topics(admin, names)


async def test_kafka_refuses_a_wrong_password(secured_cluster: SecuredCluster) -> None:
    wrong = secured_cluster.settings_for(
        "router", kafka_sasl_password=SecretStr("not-the-password"), kafka_sasl_password_file=None
    )
    options = client_options(wrong)
    options.pop("bootstrap_servers")
    host, _, port = secured_cluster.bootstrap_servers.split(",")[0].rpartition(":")
    with pytest.raises(SaslAuthenticationFailed, match="invalid credentials"):
        await create_conn(host, int(port), **options)
    with pytest.raises(BrokerError):
        await end_offsets(wrong, [wrong.topics.unrouted])


async def test_a_plaintext_or_unauthenticated_client_gets_nowhere(
    secured_cluster: SecuredCluster,
) -> None:
    plaintext = Settings(bootstrap_servers=secured_cluster.bootstrap_servers)
    assert not await broker_answers(plaintext, timeout_s=3.0)
    tls_only = Settings(
        bootstrap_servers=secured_cluster.bootstrap_servers,
        kafka_security_protocol="SSL",
        kafka_ca_file=secured_cluster.ca_file,
    )
    assert not await broker_answers(tls_only, timeout_s=3.0)


def test_cli_status_and_env(
    secured_cluster: SecuredCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = liaison(secured_cluster, "cluster", "status", "--json")
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert [(row["node"], row["state"]) for row in rows] == [(n, "running") for n in NODES]
    assert [row["pid"] for row in rows] == [secured_cluster.pids()[n] for n in NODES]
    table = liaison(secured_cluster, "cluster", "status")
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("running") == 3

    env = liaison(secured_cluster, "cluster", "env", "router")
    assert env.returncode == 0, env.stderr
    exported = dict(line.removeprefix("export ").split("=", 1) for line in env.stdout.splitlines())
    assert exported == {
        "LIAISON_BOOTSTRAP_SERVERS": secured_cluster.bootstrap_servers,
        "LIAISON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "LIAISON_KAFKA_CA_FILE": str(secured_cluster.ca_file),
        "LIAISON_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "LIAISON_KAFKA_SASL_USERNAME": "router",
        "LIAISON_KAFKA_SASL_PASSWORD_FILE": str(secured_cluster.password_file("router")),
        "LIAISON_REPLICATION_FACTOR": "3",
    }
    password = secured_cluster.password_file("router").read_text().strip()
    assert password not in env.stdout + env.stderr
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    assert asyncio.run(broker_answers(load_settings(), timeout_s=5.0))

    unknown = liaison(secured_cluster, "cluster", "env", "nobody")
    assert unknown.returncode == 1
    errors = [line for line in unknown.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, unknown.stderr
    assert "unknown principal 'nobody'" in errors[0]
    assert "router" in errors[0]
    assert "Traceback" not in unknown.stderr


async def test_one_node_lost_keeps_acks_all_working_and_it_rejoins(
    secured_cluster: SecuredCluster, admin: Settings
) -> None:
    spec = next(s for s in admin.topics.specs() if s.name == admin.topics.unrouted)
    await apply_topics(admin, [spec])
    try:
        (partition,) = (await _describe(admin, [spec.name]))[spec.name]
        leader = int(partition["leader"])  # type: ignore[call-overload]
        secured_cluster.kill(leader)
        assert secured_cluster.pids()[leader] is None
        async with kafka_sink(admin) as sink:
            delivery = await asyncio.wait_for(
                sink.send(OutboundRecord(spec.name, b"E09000033", b"while a node is down")), 45
            )
        assert delivery.offset == 0
        await asyncio.to_thread(secured_cluster.start_node, leader)
        assert secured_cluster.pids()[leader] is not None
        for _ in range(120):
            (partition,) = (await _describe(admin, [spec.name]))[spec.name]
            if len(partition["isr"]) == 3:  # type: ignore[arg-type]
                break
            await asyncio.sleep(0.25)
        assert sorted(partition["isr"]) == list(NODES)  # type: ignore[call-overload]
        assert (await end_offsets(admin, [spec.name]))[(spec.name, 0)] == 1
    finally:
        if any(pid is None for pid in secured_cluster.pids().values()):
            await asyncio.to_thread(secured_cluster.cluster.start, print)
        await delete_topics(admin, [spec.name])


async def test_a_paused_node_is_unresponsive_until_resumed(
    secured_cluster: SecuredCluster,
) -> None:
    secured_cluster.pause(2)
    try:
        states = [s.state for s in await asyncio.to_thread(secured_cluster.status)]
        assert states == ["running", "unresponsive", "running"]
    finally:
        secured_cluster.resume(2)
    for _ in range(40):
        states = [s.state for s in await asyncio.to_thread(secured_cluster.status)]
        if states == ["running"] * 3:
            break
    assert states == ["running"] * 3


def test_the_readme_cluster_example_runs_as_written(secured_cluster: SecuredCluster) -> None:
    """README's "A secured cluster" block, line by line, in one shell (all but the last
    line, `cluster stop`, which the session's fixture does): it starts (already running
    is fine), connects as the operator, applies topics and ACLs, switches to the router."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- test: cluster -->\n```sh\n(.*?)```", readme, re.S)
    assert block is not None
    lines = block.group(1).strip().splitlines()
    assert lines[-1] == "liaison cluster stop"
    script = (
        "set -euo pipefail\n" + "\n".join(lines[:-1]) + '\necho "as=$LIAISON_KAFKA_SASL_USERNAME"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env |= {
        "LIAISON_HOME": str(secured_cluster.home),
        "LIAISON_CLUSTER_BASE_PORT": str(secured_cluster.base.cluster_base_port),
        "LIAISON_TOPIC_PREFIX": f"test.{uuid.uuid4().hex[:10]}.",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    }
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "as=router" in done.stdout
    assert done.stdout.count("running") >= 3
    assert "Traceback" not in done.stderr
