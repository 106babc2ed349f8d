"""`liaison cluster start | stop | status | env`: the secured three-node development cluster."""

from __future__ import annotations

import json
import shlex
from typing import Annotated

import typer
from rich.table import Table

from schemas.errors import LiaisonError
from services.cli._common import _fail, _say, _settings, _wide, out
from services.cluster import DevCluster, NodeStatus

__all__ = ["cluster_app"]

cluster_app = typer.Typer(
    help="The secured three-node Apache Kafka cluster for development and tests"
    " (SASL_SSL, SCRAM users, ACLs enforced).",
    no_args_is_help=True,
)


def _line(status: NodeStatus) -> str:
    pid = f"pid {status.pid}" if status.pid else "no process"
    return f"node {status.node}: {status.state} ({pid}), clients on 127.0.0.1:{status.ports.client}"


@cluster_app.command("start")
def cluster_start() -> None:
    """Make the CA and SCRAM users (first time) and start all three nodes; idempotent.

    Returns once every node answers an authenticated metadata request and sees three
    brokers.
    """
    settings = _settings()
    try:
        statuses = DevCluster(settings).start(_say)
    except LiaisonError as exc:
        _fail(str(exc))
    for status in statuses:
        out.print(_line(status), highlight=False)


@cluster_app.command("stop")
def cluster_stop() -> None:
    """Stop every node (SIGTERM, then SIGKILL after a timeout)."""
    settings = _settings()
    try:
        stopped = DevCluster(settings).stop(_say)
    except LiaisonError as exc:
        _fail(str(exc))
    _say("Cluster stopped." if stopped else "No node of the cluster was running.")


@cluster_app.command("status")
def cluster_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Each node: its PID, whether it answers, and its ports."""
    settings = _settings()
    try:
        statuses = DevCluster(settings).status()
    except LiaisonError as exc:
        _fail(str(exc))
    if as_json:
        out.print_json(json.dumps([status.as_dict() for status in statuses]))
        return
    table = Table(title=f"cluster in {settings.home.resolve() / 'cluster'}")
    for column in ("node", "pid", "state", "clients", "nodes", "controller"):
        table.add_column(column)
    for status in statuses:
        table.add_row(
            str(status.node),
            str(status.pid or "-"),
            status.state,
            str(status.ports.client),
            str(status.ports.internal),
            str(status.ports.controller),
        )
    _wide().print(table)


@cluster_app.command("env")
def cluster_env(
    principal: Annotated[str, typer.Argument(help="A principal of deploy/acls.toml.")],
) -> None:
    """Print `export LIAISON_...` lines that connect as PRINCIPAL; the password stays in its file.

    Use: eval "$(liaison cluster env router)".
    """
    settings = _settings()
    try:
        variables = DevCluster(settings).env(principal)
    except LiaisonError as exc:
        _fail(str(exc))
    for name, value in variables:
        out.print(f"export {name}={shlex.quote(value)}", highlight=False, markup=False)
