"""``python -m tests.chaos --seed 7 --duration 600 --events 5000``: the long fault run.

Starts a secured three-node development cluster of its own (``services.cluster``: its
own LIAISON_HOME under ``--home``, ports from ``--base-port``, 39600 by default, so it
never meets the test suite's cluster or broker), applies the run's topics and the ACLs
of deploy/acls.toml for the run's prefix as ``admin``, runs the schedule with every
process as its own principal and broker faults on the cluster's nodes, and stops the
cluster at the end (``--keep-cluster`` leaves it running). ``--schedule FILE`` replays a
printed schedule exactly; ``--seed N`` with the same bounds regenerates it. Exit 0 when
every checker count is zero, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shlex
import sys
import uuid
from pathlib import Path

from schemas.errors import LiaisonError
from services._kafka_process import KafkaJars
from services.cluster import ADMIN, DevCluster
from services.settings import Settings
from tests.chaos.harness import RunConfig, cluster_nodes, remove_run, run
from tests.chaos.schedule import Bounds, Schedule, ScheduleError, parse_schedule, plan


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _error(text: str) -> None:
    sys.stderr.write(f"error: {text}\n")


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of faults")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--routers", type=int, default=2)
    parser.add_argument("--max-faults", type=int, default=12)
    parser.add_argument("--schedule", type=Path, help="replay this printed schedule")
    parser.add_argument(
        "--base-port", type=int, default=39600, help="the private cluster's first of nine ports"
    )
    parser.add_argument("--home", type=Path, default=Path(".liaison/chaos"))
    parser.add_argument("--keep-cluster", action="store_true", help="leave the cluster running")
    return parser.parse_args(argv)


def _schedule(args: argparse.Namespace) -> Schedule:
    if args.schedule is not None:
        return parse_schedule(args.schedule.read_text())
    # Every kind of fault on every kind of process at least once; the rest drawn.
    everything = Bounds(routers=args.routers, brokers=3).combos
    bounds = Bounds(
        routers=args.routers, brokers=3, max_faults=args.max_faults, required=everything
    )
    return plan(args.seed, args.duration, bounds)


def _cluster(home: Path, base_port: int) -> DevCluster:
    """The private cluster under ``home/cluster``, its jars shared with the default home's
    (fetched there once, as ``liaison broker start`` does, and linked)."""
    default = Settings()
    shared = default.home.resolve() / "kafka" / "libs"
    KafkaJars(default.deploy_dir, shared).fetch(_say)
    cluster_home = home / "cluster"
    libs = cluster_home / "kafka" / "libs"
    libs.parent.mkdir(parents=True, exist_ok=True)
    if not libs.exists():
        libs.symlink_to(shared, target_is_directory=True)
    return DevCluster(Settings(home=cluster_home, cluster_base_port=base_port))


async def _main(args: argparse.Namespace, schedule: Schedule, cluster: DevCluster) -> int:
    home = args.home.resolve()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    run_dir = home / "runs" / f"{stamp}-seed{schedule.seed}"
    base = Settings(
        home=run_dir / "home",
        topic_prefix=f"chaos.{schedule.seed}.{uuid.uuid4().hex[:8]}.",
    )

    def as_principal(principal: str) -> Settings:
        return cluster.settings_for(principal, base)

    replay = "python -m tests.chaos " + shlex.join(sys.argv[1:])
    _say(schedule.format().rstrip())
    _say(f"run directory: {run_dir}")
    config = RunConfig(
        as_principal(ADMIN),
        schedule,
        args.events,
        run_dir,
        replay=replay,
        principal=as_principal,
    )
    try:
        outcome = await run(config, cluster_nodes(cluster, _say))
    finally:
        await remove_run(config)
    (run_dir / "schedule.txt").write_text(schedule.format())
    (run_dir / "report.txt").write_text(outcome.render() + "\n")
    _say(outcome.render())
    return 0 if outcome.ok else 1


def main(argv: list[str]) -> int:
    """Parse the arguments, start the cluster, run, report, stop the cluster."""
    args = _arguments(argv)
    try:
        schedule = _schedule(args)
    except (ScheduleError, OSError) as exc:
        _error(str(exc))
        return 2
    if schedule.brokers > 3:
        _error(f"the schedule faults {schedule.brokers} brokers; the cluster has 3")
        return 2
    try:
        cluster = _cluster(args.home.resolve(), args.base_port)
        cluster.start(_say)
        try:
            return asyncio.run(_main(args, schedule, cluster))
        finally:
            if not args.keep_cluster:
                cluster.stop(_say)
    except LiaisonError as exc:
        _error(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
