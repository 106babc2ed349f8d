"""The short seeded fault run (issue 13) on the secured three-node cluster: two routers,
the JTAI pair, every kind of fault once, and the checker's counts all zero.

Every process is its own principal (routers ``router``, the audit service ``audit``, each
inspectorate's publisher its own), with deploy/acls.toml's ACLs applied for the run's
prefix first; the checker reads as ``admin`` (see ``tests.chaos.harness``). A few hundred
events are published while one broker node is SIGKILLed and started again, a router is
SIGKILLed, a router is frozen (SIGSTOP, then SIGCONT), the audit service is SIGKILLed and
a third router is added and removed. The checker then reads every destination
read_committed and the audit store. On failure the report (seed, schedule, what was
applied, the first cases of each category) is the assertion message;
``python -m tests.chaos --schedule FILE`` replays the schedule.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from services.settings import Settings
from tests.chaos.harness import RunConfig, cluster_nodes, remove_run, run
from tests.chaos.schedule import Bounds, Kind, Role, plan
from tests.integration._cluster import SecuredCluster

pytestmark = pytest.mark.kafka

SEED = 13
SHORT = Bounds(
    routers=2,
    brokers=3,
    min_faults=5,
    max_faults=5,
    required=(
        (Kind.KILL9, Role.BROKER),
        (Kind.KILL9, Role.ROUTER),
        (Kind.STOP_CONT, Role.ROUTER),
        (Kind.KILL9, Role.AUDIT),
        (Kind.ADD_REMOVE, Role.ROUTER),
    ),
    lead_in_ms=5_000,
    quiet_tail_ms=10_000,
    min_pause_ms=2_000,
    max_pause_ms=6_000,
    gap_ms=3_000,
    min_lifetime_ms=12_000,
    max_lifetime_ms=15_000,
)


async def test_a_short_seeded_fault_run_on_the_secured_cluster_passes_the_checker(
    secured_cluster: SecuredCluster, tmp_path: Path
) -> None:
    schedule = plan(SEED, 110.0, SHORT)
    prefix = f"chaos.{SEED}.{uuid.uuid4().hex[:8]}."
    home = tmp_path / "home"

    def as_principal(principal: str) -> Settings:
        return secured_cluster.settings_for(principal, topic_prefix=prefix, home=home)

    config = RunConfig(
        as_principal("admin"),
        schedule,
        events=300,
        run_dir=tmp_path / "run",
        drain_timeout_s=90.0,
        principal=as_principal,
    )
    try:
        outcome = await run(config, cluster_nodes(secured_cluster.cluster, print))
    finally:
        await remove_run(config)
    # The report in the run directory, and on the terminal with -s: the figures of
    # RELIABILITY.md's short-run table.
    (tmp_path / "run" / "report.txt").write_text(outcome.render() + "\n")
    sys.stdout.write(outcome.render() + "\n")
    assert outcome.drained, outcome.render()
    assert outcome.ok, outcome.render()
