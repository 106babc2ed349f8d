"""`liaison keys`: signing keys and the trust store."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from schemas.inspectorates import Inspectorate
from schemas.keys import BUS, TrustStore
from services.cli._common import (
    _fail,
    _now,
    _run,
    _say,
    _settings,
    _wide,
)
from services.keys_admin import generate, revoke, rotate
from services.keystore import KeyStore
from services.trust import load_trust

keys_app = typer.Typer(
    help="Inspectorates' signing keys and the trust store.", no_args_is_help=True
)

# -- keys -------------------------------------------------------------------------------

InspectorateOption = Annotated[
    Inspectorate | None,
    typer.Option("--inspectorate", help="Whose key.", case_sensitive=False),
]
BusOption = Annotated[
    bool, typer.Option("--bus", help="The bus's own key (signs JTAI considerations).")
]


def _owner(inspectorate: Inspectorate | None, bus: bool) -> str:
    if (inspectorate is None) == (not bus):
        _fail("give exactly one of --inspectorate NAME or --bus")
    return BUS if bus else str(inspectorate)


def _keys_table(store: TrustStore, title: str) -> Table:
    table = Table(title=title)
    for column in ("key id", "owner", "status", "valid from", "valid until", "revoked at"):
        table.add_column(column, overflow="fold")
    for key in sorted(store.keys, key=lambda k: (k.owner, k.valid_from)):
        table.add_row(
            key.keyid,
            key.owner,
            key.status.value,
            key.valid_from.isoformat(timespec="seconds"),
            key.valid_until.isoformat(timespec="seconds") if key.valid_until else "",
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    return table


@keys_app.command("generate")
def keys_generate(inspectorate: InspectorateOption = None, bus: BusOption = False) -> None:
    """Create an inspectorate's (or the bus's) first signing key; publish its public half."""
    owner = _owner(inspectorate, bus)
    settings = _settings()
    change = _run(lambda: generate(settings, owner, _now()))
    assert change.new is not None  # noqa: S101 - generate always makes a key
    store = KeyStore(settings)
    _say(f"Generated {owner} key {change.new.keyid}")
    _say(f"private key: {store.private_path(owner, change.new.keyid)} (mode 0600)")


@keys_app.command("rotate")
def keys_rotate(inspectorate: InspectorateOption = None, bus: BusOption = False) -> None:
    """Give an inspectorate (or the bus) a new key; old keys retire but verify the past."""
    owner = _owner(inspectorate, bus)
    settings = _settings()
    change = _run(lambda: rotate(settings, owner, _now()))
    assert change.new is not None  # noqa: S101 - rotate always makes a key
    _say(f"New {owner} key {change.new.keyid}")
    for old in change.changed:
        _say(f"Retired {old.keyid}: verifies events appended before {old.valid_until}")


@keys_app.command("revoke")
def keys_revoke(
    keyid: Annotated[str, typer.Argument(help="The key id (or 8+ characters of it).")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the record.")],
) -> None:
    """Revoke a key: events appended from now on with it are refused."""
    settings = _settings()
    change = _run(lambda: revoke(settings, keyid, reason, _now()))
    for key in change.changed:
        _say(f"Revoked {key.keyid} ({key.owner}) at {key.revoked_at}")


@keys_app.command("list")
def keys_list() -> None:
    """Every key the bus trusts, with owner, status and validity."""
    settings = _settings()
    store = _run(lambda: load_trust(settings))
    _wide().print(_keys_table(store, f"Keys on {settings.topics.keys}"))


@keys_app.command("export")
def keys_export(
    local: Annotated[bool, typer.Option("--local", help="This machine's copy; no Kafka.")] = False,
) -> None:
    """Print the trust store (public keys only) as JSON."""
    settings = _settings()
    store = KeyStore(settings).trust() if local else _run(lambda: load_trust(settings))
    sys.stdout.write(store.model_dump_json(indent=2) + "\n")
