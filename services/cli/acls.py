"""`liaison acls apply | list`: the cluster's Kafka ACLs as ``deploy/acls.toml`` says."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from schemas.errors import ConfigurationError
from services.acls import AclBinding, AclDiff, AclFile, load_acls
from services.cli._common import _fail, _run, _say, _settings, _wide
from services.cli._display import cell
from services.kafka_acls import acl_drift, apply_acls
from services.settings import Settings

__all__ = ["acls_app"]

acls_app = typer.Typer(
    help="Kafka ACLs as code: each principal's rights, from deploy/acls.toml.",
    no_args_is_help=True,
)

FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file", help="The ACL file (default: deploy/acls.toml under LIAISON_DEPLOY_DIR)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON, for scripts.")]

_PRESENT = "ok"
_MISSING = "missing"
_EXTRA = "not in the file"


def _load(settings: Settings, file: Path | None) -> AclFile:
    try:
        return load_acls(file or settings.deploy_dir / "acls.toml")
    except ConfigurationError as exc:
        _fail(str(exc))


def _document(binding: AclBinding, state: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "principal": binding.principal,
        "resource_type": binding.resource_type.value,
        "resource": binding.resource_name,
        "pattern": binding.pattern.value,
        "operation": binding.operation.value,
        "permission": binding.permission.value,
        "host": binding.host,
    }
    if state is not None:
        document["state"] = state
    return document


def _print_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@acls_app.command("apply")
def acls_apply(file: FileOption = None, json_: JsonOption = False) -> None:
    """Add the ACLs the file grants and remove Liaison's ACLs it does not (others' stay)."""
    settings = _settings()
    acls = _load(settings, file)
    changes = _run(lambda: apply_acls(settings, acls.bindings(settings.topic_prefix)))
    if json_:
        _print_json(
            {
                "added": [_document(b) for b in changes.added],
                "removed": [_document(b) for b in changes.removed],
            }
        )
    else:
        for sign, bindings in (("+", changes.added), ("-", changes.removed)):
            for b in bindings:
                line = f"{sign} {b.principal} {b.operation.value} {b.resource_type.value}"
                line += f" {b.resource_name} ({b.pattern.value})"
                sys.stdout.write(cell(line).plain + "\n")
    _say(
        f"{len(changes.added)} added, {len(changes.removed)} removed"
        f" ({len(acls.principals)} principals in {acls.source})."
    )


def _rows(drift: AclDiff) -> list[tuple[AclBinding, str]]:
    rows = [
        *((b, _PRESENT) for b in drift.present),
        *((b, _MISSING) for b in drift.missing),
        *((b, _EXTRA) for b in drift.extra),
    ]
    return sorted(rows, key=lambda row: (row[0].principal, row[0].resource_name, row[0]))


@acls_app.command("list")
def acls_list(file: FileOption = None, json_: JsonOption = False) -> None:
    """Every ACL the file grants, whether the cluster has it, and Liaison's ACLs it does not."""
    settings = _settings()
    acls = _load(settings, file)
    drift = _run(lambda: acl_drift(settings, acls.bindings(settings.topic_prefix)))
    rows = _rows(drift)
    if json_:
        _print_json({"drift": drift.drift, "acls": [_document(b, state) for b, state in rows]})
    else:
        table = Table(title=f"Kafka ACLs at {settings.bootstrap_servers} ({acls.source})")
        for column in ("principal", "resource", "pattern", "operation", "state"):
            table.add_column(column, overflow="fold")
        for binding, state in rows:
            style = {_MISSING: "yellow", _EXTRA: "red"}.get(state, "")
            permission = "" if binding.permission.value == "ALLOW" else f" ({binding.permission})"
            table.add_row(
                cell(binding.user),
                cell(f"{binding.resource_type.value.lower()} {binding.resource_name}"),
                binding.pattern.value,
                binding.operation.value + permission,
                f"[{style}]{state}[/{style}]" if style else state,
            )
        _wide().print(table)
    if drift.drift:
        _say(
            f"drift: {len(drift.missing)} missing, {len(drift.extra)} not in the file;"
            " run `liaison acls apply`."
        )
    else:
        _say(f"no drift: {len(drift.present)} ACLs, as the file says.")
