"""`liaison keys`: the trust root, signed key changes, signing keys and the trust store.

Offline signing is a file in, a file out: ``keys propose ... --out FILE`` writes an
unsigned change, each root key holder runs ``keys sign FILE --root-key PEM`` (no Kafka),
and ``keys apply FILE`` publishes it once enough have signed. ``keys generate``,
``rotate`` and ``revoke`` do all three at once when this machine holds enough root keys.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from schemas.errors import LiaisonError
from schemas.inspectorates import Inspectorate
from schemas.keys import AUDIT, AUDITOR, BUS, OPERATOR, READER, ROOT, TrustStore
from schemas.trust_root import KeyChange, SignedKeyChange
from services.cli._common import _fail, _now, _run, _say, _settings, _when, _wide
from services.keys_admin import (
    Applied,
    Pending,
    Proposal,
    apply_change,
    generate,
    init_root,
    propose_new_keys,
    propose_revocation,
    read_change,
    revoke,
    rotate,
    sign_change,
    write_change,
)
from services.keystore import KeyStore, load_key_file, trust_root_path
from services.trust import load_root, load_trust

T = TypeVar("T")

keys_app = typer.Typer(
    help="The trust root, signed key changes, signing keys and the trust store.",
    no_args_is_help=True,
)
root_app = typer.Typer(help="The pinned trust root that signs every key change.")
propose_app = typer.Typer(help="Write a key change to a file, for root key holders to sign.")
keys_app.add_typer(root_app, name="root", no_args_is_help=True)
keys_app.add_typer(propose_app, name="propose", no_args_is_help=True)

_COMPONENT_OWNERS = (BUS, AUDIT, READER, AUDITOR, OPERATOR)

InspectorateOption = Annotated[
    Inspectorate | None,
    typer.Option("--inspectorate", help="Whose key.", case_sensitive=False),
]
BusOption = Annotated[
    bool, typer.Option("--bus", help="The router's key (signs JTAI considerations).")
]
ComponentOption = Annotated[
    str | None,
    typer.Option(
        "--component",
        help=f"A Liaison component's key: one of {', '.join(_COMPONENT_OWNERS)}.",
    ),
]
OutOption = Annotated[Path, typer.Option("--out", help="The change file to write.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why, for the record.")]
SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Revoke from this time (ISO 8601), e.g. when the key was compromised; default"
        " when the change is appended.",
    ),
]
KeyIdArgument = Annotated[str, typer.Argument(help="The key id (or 8+ characters of it).")]


def _owner(inspectorate: Inspectorate | None, bus: bool, component: str | None) -> str:
    given = [x for x in (inspectorate, bus or None, component) if x is not None]
    if len(given) != 1:
        _fail("give exactly one of --inspectorate NAME, --bus or --component NAME")
    if component is not None and component not in _COMPONENT_OWNERS:
        _fail(f"--component must be one of {', '.join(_COMPONENT_OWNERS)}", 2)
    if bus:
        return BUS
    return component if component is not None else str(inspectorate)


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


def _describe(change: KeyChange) -> None:
    """What a change says, for the person about to sign or apply it."""
    _say(f"key change v{change.version}, proposed {change.proposed_at.isoformat()}")
    if change.note:
        _say(f"  note: {change.note}")
    for state in change.keys:
        when = ""
        if state.revoked_at is not None:
            when = f" from {state.revoked_at.isoformat()}"
        _say(f"  {state.owner} key {state.keyid}: {state.status.value}{when}")


def _report(outcome: Applied | Pending, settings_store: KeyStore) -> None:
    if isinstance(outcome, Pending):
        _say(
            f"Proposed key change v{outcome.change.version}: signed here by {outcome.signed}"
            f" of the {outcome.threshold} root keys needed; written to {outcome.path}"
        )
        _say(f"Next: each root key holder runs `liaison keys sign {outcome.path} --root-key PEM`")
        _say(f"then: `liaison keys apply {outcome.path}`")
        for made in outcome.new_keys:
            _say(f"private key: {settings_store.private_path(made.owner, made.keyid)} (mode 0600)")
        return
    _say(f"Applied key change v{outcome.change.version}")
    retired = {k.keyid for k in outcome.changed if k.status.value == "retired"}
    for key in outcome.new:
        verb = "New" if any(k.owner == key.owner for k in outcome.changed) else "Generated"
        _say(f"{verb} {key.owner} key {key.keyid}")
        path = settings_store.private_path(key.owner, key.keyid)
        if path.exists():
            _say(f"private key: {path} (mode 0600)")
    for old in outcome.changed:
        if old.keyid in retired:
            _say(f"Retired {old.keyid}: verifies events appended before {old.valid_until}")
        elif old.revoked_at is not None:
            _say(f"Revoked {old.keyid} ({old.owner}) at {old.revoked_at}")


# -- the root ---------------------------------------------------------------------------------


@root_app.command("init")
def root_init(
    threshold: Annotated[
        int, typer.Option("--threshold", help="Root signatures needed per change.")
    ] = 1,
    count: Annotated[int, typer.Option("--keys", help="How many root keys to make.")] = 1,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir",
            help="Write the private root keys here (one file each, for their holders);"
            " default: this machine's key store (local development).",
        ),
    ] = None,
    holders: Annotated[
        list[str] | None,
        typer.Option("--holder", help="Who holds each root key, in order (repeat)."),
    ] = None,
) -> None:
    """Make root keys and pin their public halves (root.json); never overwrites a root."""
    settings = _settings()
    created = _run_sync(lambda: init_root(settings, threshold, count, out_dir, holders or ()))
    _say(f"Pinned a {threshold}-of-{count} trust root in {created.path}")
    for pinned, path in zip(created.root.keys, created.private_files, strict=True):
        _say(f"root key {pinned.keyid}: private key {path} (mode 0600)")
    if out_dir is not None:
        _say("Hand each file to its holder, keep it offline, and delete it here.")


@root_app.command("show")
def root_show() -> None:
    """The pinned trust root: threshold, root key ids and holders (public only)."""
    settings = _settings()
    root = _run_sync(lambda: load_root(settings))
    store = KeyStore(settings)
    sys.stdout.write(f"trust root {trust_root_path(settings)}\n")
    sys.stdout.write(f"threshold {root.threshold} of {len(root.keys)}\n")
    for pinned in root.keys:
        here = " (private key on this machine)" if store.private_path(
            ROOT, pinned.keyid
        ).exists() else ""  # fmt: skip
        holder = f" held by {pinned.holder}" if pinned.holder else ""
        sys.stdout.write(f"{pinned.keyid}{holder}{here}\n")


def _run_sync(call: Callable[[], T]) -> T:
    """``call()``, with a Liaison error (or a file that cannot be written) as one line."""
    try:
        return call()
    except LiaisonError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))


# -- proposing, signing, applying ---------------------------------------------------------------


def _write_proposal(out: Path, proposal: Proposal) -> None:
    write_change(out, proposal.change)
    _describe(proposal.change)
    for key in proposal.new_keys:
        _say(f"private key: {KeyStore(_settings()).private_path(key.owner, key.keyid)} (0600)")
    _say(f"wrote {out}; next: `liaison keys sign {out} --root-key PEM` by each root key holder")


@propose_app.command("generate")
def propose_generate(
    out: OutOption,
    inspectorate: InspectorateOption = None,
    bus: BusOption = False,
    component: ComponentOption = None,
) -> None:
    """Propose a first key for an owner (its private key is written here now)."""
    owner = _owner(inspectorate, bus, component)
    settings = _settings()
    proposal = _run(lambda: propose_new_keys(settings, [owner], _now(), retire=False))
    _write_proposal(out, proposal)


@propose_app.command("rotate")
def propose_rotate(
    out: OutOption,
    inspectorate: InspectorateOption = None,
    bus: BusOption = False,
    component: ComponentOption = None,
) -> None:
    """Propose a new key for an owner; its active keys retire (they verify the past)."""
    owner = _owner(inspectorate, bus, component)
    settings = _settings()
    proposal = _run(lambda: propose_new_keys(settings, [owner], _now(), retire=True))
    _write_proposal(out, proposal)


@propose_app.command("revoke")
def propose_revoke(
    keyid: KeyIdArgument, reason: ReasonOption, out: OutOption, since: SinceOption = None
) -> None:
    """Propose revoking a key (back-date it to the compromise with --since)."""
    settings = _settings()
    when = _when(since, "--since")
    proposal = _run(lambda: propose_revocation(settings, keyid, reason, _now(), since=when))
    _write_proposal(out, proposal)


@keys_app.command("sign")
def keys_sign(
    file: Annotated[Path, typer.Argument(help="The key change file.")],
    root_key: Annotated[Path, typer.Option("--root-key", help="One root key's private PEM file.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (default: FILE, replaced).")
    ] = None,
) -> None:
    """Add one root key's signature to a key change file (offline: no Kafka)."""
    settings = _settings()

    def sign() -> SignedKeyChange:
        signed = read_change(file)
        return sign_change(settings, signed, load_key_file(root_key, ROOT))

    signed = _run_sync(sign)
    root = _run_sync(lambda: load_root(settings))
    _describe(signed.change)
    _run_sync(lambda: write_change(out or file, signed, replace=out is None))
    count = len(signed.signers(root))
    _say(f"signed: {count} of the {root.threshold} root signatures needed; wrote {out or file}")


@keys_app.command("apply")
def keys_apply(file: Annotated[Path, typer.Argument(help="The signed key change file.")]) -> None:
    """Publish a key change signed by enough root keys; wait until the bus applied it."""
    settings = _settings()
    signed = _run_sync(lambda: read_change(file))
    outcome = _run(lambda: apply_change(settings, signed, _now()))
    _report(outcome, KeyStore(settings))


# -- the everyday verbs -------------------------------------------------------------------------


@keys_app.command("generate")
def keys_generate(
    inspectorate: InspectorateOption = None,
    bus: BusOption = False,
    component: ComponentOption = None,
) -> None:
    """Create an owner's first signing key and have it trusted (root-signed)."""
    owner = _owner(inspectorate, bus, component)
    settings = _settings()
    _report(_run(lambda: generate(settings, owner, _now())), KeyStore(settings))


@keys_app.command("rotate")
def keys_rotate(
    inspectorate: InspectorateOption = None,
    bus: BusOption = False,
    component: ComponentOption = None,
) -> None:
    """Give an owner a new key; old keys retire but verify the past."""
    owner = _owner(inspectorate, bus, component)
    settings = _settings()
    _report(_run(lambda: rotate(settings, owner, _now())), KeyStore(settings))


@keys_app.command("revoke")
def keys_revoke(keyid: KeyIdArgument, reason: ReasonOption, since: SinceOption = None) -> None:
    """Revoke a key: events appended from then on with it are refused."""
    settings = _settings()
    when = _when(since, "--since")
    outcome = _run(lambda: revoke(settings, keyid, reason, _now(), since=when))
    _report(outcome, KeyStore(settings))


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
