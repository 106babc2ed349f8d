"""`liaison demo` and `liaison serve`: the long-running services."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from typing import Annotated

import typer

from consumers.delivery import MAX_TRIES
from schemas.errors import LiaisonError
from schemas.inspectorates import Inspectorate, Programme
from schemas.keys import BUS, SigningKey
from services.audit_service import CHECKPOINT_EVERY, AuditService, open_store
from services.cli._common import (
    _audit_key,
    _fail,
    _run,
    _settings,
    _stop_on_signals,
    _wide,
    app,
    err,
)
from services.deliver import (
    DEFAULT_TIMEOUT_S,
    DEFAULT_TRIES,
    MAX_TIMEOUT_S,
    check_endpoint,
    deliver,
    receiver_of,
)
from services.demo import run_demo
from services.kafka import start_when_reachable, stop_quietly
from services.key_warden import KeyWarden
from services.keystore import KeyStore, signing_key_for
from services.router_service import RouterService
from services.rules_file import load_rules
from services.trust import load_trust

_MAX_CHECKPOINT_EVERY_S = 86_400

serve_app = typer.Typer(help="Long-running Liaison services.", no_args_is_help=True)

# -- demo and services -------------------------------------------------------------------


@app.command("demo")
def demo() -> None:
    """Every inspectorate publishes a few events; the router delivers them; a table shows it."""
    settings = _settings()

    async def run() -> int:
        return await run_demo(settings, load_rules(settings.rules_path), _wide())

    code = _run(run)
    raise typer.Exit(code)


@serve_app.command("router")
def serve_router() -> None:
    """Route every inspectorate's events to the other inspectorates' queues until stopped.

    Started while the broker is down, it waits for it (one log line when it is found
    unreachable, one when it is back).
    """
    settings = _settings(service=True)
    try:
        rules = load_rules(settings.rules_path)
    except LiaisonError as exc:
        _fail(str(exc))

    async def start() -> RouterService:
        trust = await load_trust(settings)
        bus_key = signing_key_for(BUS, settings, KeyStore(settings), trust)
        router = RouterService(settings, rules, bus_key)
        try:
            await router.start()
        except BaseException:
            await stop_quietly(router.stop)
            raise
        return router

    async def serve() -> int:
        stop = _stop_on_signals()
        router = await start_when_reachable(settings, start, stop)
        if router is None:
            return 0  # stopped while waiting for the broker
        try:
            stopping = asyncio.create_task(stop.wait())
            failing = asyncio.create_task(router.failed.wait())
            await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            failing.cancel()
        finally:
            await router.stop()
        return 1 if router.failed.is_set() else 0

    raise typer.Exit(_run(serve))


@serve_app.command("audit")
def serve_audit(
    checkpoint_every: Annotated[
        float,
        typer.Option(
            "--checkpoint-every", help="Seconds between checkpoints (when the tree has grown)."
        ),
    ] = CHECKPOINT_EVERY.total_seconds(),
) -> None:
    """Append every audit record to the Merkle tree store and publish signed checkpoints.

    Started while the broker is down, it waits for it; a broker lost while it runs is
    waited for too (one log line when it is found unreachable, one when it is back).
    """
    settings = _settings(service=True)
    if not (math.isfinite(checkpoint_every) and 0 < checkpoint_every <= _MAX_CHECKPOINT_EVERY_S):
        _fail(f"--checkpoint-every must be more than 0 and at most {_MAX_CHECKPOINT_EVERY_S} s")
    every = dt.timedelta(seconds=checkpoint_every)

    async def serve() -> int:
        stop = _stop_on_signals()
        with open_store(settings) as store:

            async def start() -> tuple[AuditService, KeyWarden]:
                key = _audit_key(settings, await load_trust(settings))
                service = AuditService(settings, store, key, checkpoint_every=every)
                # Beside it, the key warden quarantines and audits refused key records, once.
                warden = KeyWarden(settings, key)
                try:
                    await service.start()
                    await warden.start()
                except BaseException:
                    await stop_quietly(warden.stop)
                    await stop_quietly(service.stop)
                    raise
                return service, warden

            # Started while the broker is down, it waits for it (one log line each way).
            started = await start_when_reachable(settings, start, stop)
            if started is None:
                return 0  # stopped while waiting for the broker
            service, warden = started
            service.log_started()
            assert service.task is not None  # noqa: S101 - started just now
            assert warden.task is not None  # noqa: S101 - started just now
            stopping = asyncio.create_task(stop.wait())
            tasks = {"the audit service": service.task, "the key warden": warden.task}
            await asyncio.wait({stopping, *tasks.values()}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            failed = False
            for name, task in tasks.items():
                if task.done() and not task.cancelled() and task.exception() is not None:
                    err.print(f"error: {name} stopped: {task.exception()}")
                    failed = True
            await warden.stop()
            await service.stop()
        return 1 if failed else 0

    raise typer.Exit(_run(serve))


@serve_app.command("deliver")
def serve_deliver(
    programme: Annotated[
        Programme,
        typer.Option(
            "--programme", help="The programme whose queue to deliver.", case_sensitive=False
        ),
    ],
    to: Annotated[str, typer.Option("--to", help="The programme's HTTP(S) endpoint.")],
    tries: Annotated[
        int, typer.Option("--tries", help="Tries per envelope before it is refused.")
    ] = DEFAULT_TRIES,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds one try may take.")
    ] = DEFAULT_TIMEOUT_S,
    as_: Annotated[
        Inspectorate | None,
        typer.Option(
            "--as",
            help="The inspectorate acting (required for jtai; else the programme's owner).",
            case_sensitive=False,
        ),
    ] = None,
) -> None:
    """Post each envelope routed to a programme to its own system until stopped.

    Envelopes are posted unchanged (the receiver verifies the signature), with the event
    id as Idempotency-Key; failures are tried again with backoff; each result (delivered,
    or refused after the last try) is signed and recorded on liaison.delivery and in the
    audit log. Started while the broker is down, it waits for it.
    """
    settings = _settings(service=True)
    try:
        receiver = receiver_of(programme, as_)
        check_endpoint(to)
    except LiaisonError as exc:
        _fail(str(exc))
    if not 1 <= tries <= MAX_TRIES:
        _fail(f"--tries must be from 1 to {MAX_TRIES}")
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT_S):
        _fail(f"--timeout must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds")

    async def receiver_key() -> SigningKey:
        trust = await load_trust(settings)
        return signing_key_for(receiver.value, settings, KeyStore(settings), trust)

    async def serve() -> int:
        stop = _stop_on_signals()
        key = await start_when_reachable(settings, receiver_key, stop)
        if key is None:
            return 0  # stopped while waiting for the broker
        await deliver(settings, programme, to, key=key, tries=tries, stop=stop, timeout_s=timeout)
        return 0

    raise typer.Exit(_run(serve))
