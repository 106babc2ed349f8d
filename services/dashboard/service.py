"""``liaison serve dashboard``: the analysts' dashboard on Kafka, served by uvicorn.

At start the trust store is loaded and followed (``TrustFollower``), the reader's signing
key is looked up (the dashboard writes its audit records as the reader service does, so a
machine without a reader key fails here, not on the first page), and the ``FeedHub`` reads
the area feed and the JTAI log to their end, verified, then follows them. One producer,
kept open, appends the audit records (``KafkaAudit``). Signals are Liaison's own (SIGINT
and SIGTERM stop it cleanly, exit 0): every open stream ends, then uvicorn stops.

Sessions are signed with a secret drawn when the process starts and never stored, so a
restart signs every analyst out.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator

import uvicorn

from schemas.keys import READER
from services.dashboard.app import create_dashboard
from services.kafka import kafka_sink, start_when_reachable, stop_quietly
from services.keystore import KeyStore, signing_key_for
from services.reader.analysts import RegistryFile
from services.reader.hub import FeedHub
from services.reader.service import KafkaAudit, listening_socket
from services.settings import Settings
from services.trust import TrustFollower

__all__ = ["GRACE_S", "serve_dashboard"]

GRACE_S = 5
"""Seconds uvicorn waits for open connections once streams have been told to end."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service's stop event decides."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def serve_dashboard(settings: Settings, stop: asyncio.Event) -> int:
    """Serve the dashboard until ``stop`` is set; the exit code (0)."""
    with listening_socket(
        settings.dashboard_host,
        settings.dashboard_port,
        "LIAISON_DASHBOARD_HOST, LIAISON_DASHBOARD_PORT",
    ) as sock:

        async def start() -> tuple[TrustFollower, FeedHub]:
            follower = TrustFollower(settings)
            try:
                await follower.start()
                # Fail at start, not on the first page, when this machine has no reader key.
                signing_key_for(READER, settings, KeyStore(settings), follower.store)
            except BaseException:
                await stop_quietly(follower.stop)
                raise
            hub = FeedHub(settings, lambda: follower.store, _now)
            try:
                await hub.start()
            except BaseException:
                await stop_quietly(hub.stop)
                await stop_quietly(follower.stop)
                raise
            return follower, hub

        started = await start_when_reachable(settings, start, stop)
        if started is None:
            return 0  # stopped while waiting for the broker
        follower, hub = started
        try:
            async with kafka_sink(settings) as sink:
                app = create_dashboard(
                    hub=hub,
                    audit=KafkaAudit(settings, sink, lambda: follower.store),
                    registry=RegistryFile(settings).load,
                    clock=_now,
                    session_minutes=settings.dashboard_session_minutes,
                    stop=stop,
                )
                config = uvicorn.Config(
                    app,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                    server_header=False,
                    timeout_graceful_shutdown=GRACE_S,
                )
                server = _Server(config)
                serving = asyncio.create_task(server.serve(sockets=[sock]))
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                stop.set()  # streams end on their own within a poll
                server.should_exit = True
                await serving
        finally:
            await hub.stop()
            await follower.stop()
    return 0
