"""`liaison analysts`: operators issue and withdraw analysts' credentials and scopes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from schemas.audit import AnalystAdded, AnalystRevoked
from schemas.errors import LiaisonError, SchemaError
from schemas.keys import OPERATOR
from schemas.reference import local_authorities
from services.audit_log import append_audit, operator
from services.cli._common import INVALID, _fail, _now, _run, _say, _settings, _wide
from services.inputs import check_analyst, check_reason
from services.keystore import KeyStore, signing_key_for
from services.reader.analysts import Analyst, RegistryFile, new_token, token_sha256
from services.reader.scope import describe, make_scope, split_values
from services.trust import load_trust

analysts_app = typer.Typer(
    help="Analysts' credentials and scopes for the reader service.", no_args_is_help=True
)


def _write_token(path: Path, token: str) -> None:
    """Write the credential to a new file readable by this user only."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror} (it must not exist yet)")
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")


@analysts_app.command("add")
def analysts_add(
    name: Annotated[str, typer.Argument(help="The analyst's id, e.g. a.khan.")],
    areas: Annotated[
        list[str] | None,
        typer.Option("--areas", help="GSS codes or names of local authorities, comma-separated."),
    ] = None,
    regions: Annotated[
        list[str] | None,
        typer.Option("--regions", help="English regions, e.g. 'Yorkshire and The Humber'."),
    ] = None,
    themes: Annotated[
        list[str] | None,
        typer.Option("--themes", help="Themes, comma-separated (default: every theme)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--out", help="Write the credential to this new file (0600), not stdout."),
    ] = None,
) -> None:
    """Issue an analyst a credential for the reader service, with their scope.

    The credential is shown once (or written to --out); the registry keeps its SHA-256.
    """
    settings = _settings()
    try:
        name = check_analyst(name)
    except SchemaError as exc:
        _fail(f"NAME: {exc}", INVALID)
    known = [la.name for la in local_authorities().values()]
    try:
        scope = make_scope(
            split_values(areas or [], known),
            split_values(regions or []),
            split_values(themes or []),
        )
    except SchemaError as exc:
        _fail(str(exc), INVALID)
    registry_file = RegistryFile(settings)
    token = new_token()

    async def run() -> None:
        with registry_file.locked():
            now = _now()
            actor = operator()
            entry = Analyst(
                name=name, scope=scope, credential_sha256=token_sha256(token), added_at=now,
                added_by=actor,
            )  # fmt: skip
            updated = registry_file.load().with_added(entry)
            trust = await load_trust(settings)
            key = signing_key_for(OPERATOR, settings, KeyStore(settings), trust)
            # Audited before the credential exists: no credential without its record.
            await append_audit(settings, [AnalystAdded(
                at=now, actor=actor, analyst=name, scope=scope,
                credential_sha256=entry.credential_sha256,
            )], key)  # fmt: skip
            registry_file.save(updated)

    _run(run)
    _say(f"added analyst {name} ({describe(scope)})")
    if output is not None:
        _write_token(output, token)
        _say(f"wrote the credential to {output}; give it to {name} (it is not kept anywhere)")
    else:
        _say(f"the credential, shown once; give it to {name} (LIAISON_ANALYST_TOKEN):")
        sys.stdout.write(token + "\n")


@analysts_app.command("revoke")
def analysts_revoke(
    name: Annotated[str, typer.Argument(help="The analyst's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (audited).")],
) -> None:
    """Withdraw an analyst's credential; the reader service refuses it from now on."""
    settings = _settings()
    try:
        reason = check_reason(reason)
    except SchemaError as exc:
        _fail(f"--reason: {exc}", INVALID)
    registry_file = RegistryFile(settings)

    async def run() -> None:
        with registry_file.locked():
            now = _now()
            actor = operator()
            updated = registry_file.load().with_revoked(name, reason, now, actor)
            trust = await load_trust(settings)
            key = signing_key_for(OPERATOR, settings, KeyStore(settings), trust)
            await append_audit(settings, [AnalystRevoked(
                at=now, actor=actor, analyst=name, reason=reason,
            )], key)  # fmt: skip
            registry_file.save(updated)

    _run(run)
    _say(f"revoked analyst {name}'s credential")


@analysts_app.command("list")
def analysts_list() -> None:
    """Every analyst in the registry: status and scope (never a credential)."""
    settings = _settings()
    try:
        registry = RegistryFile(settings).load()
    except LiaisonError as exc:
        _fail(str(exc))
    table = Table(title="Analysts")
    for column in ("analyst", "status", "scope", "added", "revoked"):
        table.add_column(column, overflow="fold")
    for entry in registry.analysts:
        revoked = f"{entry.revoked_at:%Y-%m-%d %H:%M} ({entry.reason})" if entry.revoked_at else ""
        table.add_row(
            Text(entry.name), entry.status, Text(describe(entry.scope)),
            f"{entry.added_at:%Y-%m-%d %H:%M}", Text(revoked),
        )  # fmt: skip
    _wide().print(table)
