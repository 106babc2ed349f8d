"""``liaison serve reader``: the reader service's app on Kafka, served by uvicorn.

The trust store is loaded once and followed (``TrustFollower``), so a key revoked while
the service runs stops verifying at once. The verified feed and JTAI log are kept in
memory and followed (``FeedHub``, started after the trust store), for the live feed. The
reader's signing key is looked up again for every audit record, so a rotation needs no
restart either; one producer, kept open, appends the records. Signals are Liaison's own
(SIGINT and SIGTERM stop it cleanly, exit 0), not uvicorn's.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Final

import uvicorn
from starlette.types import ASGIApp

from schemas.audit import FeedRead, FeedRefused
from schemas.errors import ConfigurationError
from schemas.keys import READER, TrustStore
from services.audit_log import audit_outbound
from services.kafka import KafkaSink, kafka_sink, start_when_reachable, stop_quietly
from services.keystore import KeyStore, signing_key_for
from services.reader.analysts import RegistryFile
from services.reader.app import create_app
from services.reader.hub import FeedHub
from services.reader.shown import ShownLog
from services.replay import Filters, Replay, replay_topics
from services.settings import Settings
from services.trust import TrustFollower

__all__ = [
    "GRACE_S",
    "KafkaAudit",
    "KafkaFeed",
    "Reading",
    "listening_socket",
    "reading",
    "serve_reader",
    "serve_until",
    "utc_now",
]


class KafkaFeed:
    """The area feed (``liaison.feed.areas``), every envelope verified with ``trust()``."""

    def __init__(self, settings: Settings, trust: Callable[[], TrustStore]) -> None:
        self._settings = settings
        self._trust = trust

    async def read(self, filters: Filters, now: dt.datetime) -> Replay:
        """Every feed record matching ``filters``, verified again."""
        return await replay_topics(
            self._settings, [self._settings.topics.feed], filters, self._trust(), now
        )


class KafkaAudit:
    """Audit records signed with the reader's key, appended through one open producer."""

    def __init__(
        self, settings: Settings, sink: KafkaSink, trust: Callable[[], TrustStore]
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._trust = trust

    async def write(self, record: FeedRead | FeedRefused) -> None:
        """Sign ``record`` with the reader's current key; return once the broker has it."""
        key = signing_key_for(READER, self._settings, KeyStore(self._settings), self._trust())
        await self._sink.send(audit_outbound(self._settings, record, key))


@contextlib.contextmanager
def listening_socket(
    host: str, port: int, names: str = "LIAISON_READER_HOST, LIAISON_READER_PORT"
) -> Iterator[socket.socket]:
    """A socket bound to ``host:port`` (uvicorn listens on it); ``ConfigurationError`` if
    the address cannot be had (naming the settings ``names`` that choose it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        msg = f"cannot listen on {host}:{port}: {exc.strerror or type(exc).__name__}"
        raise ConfigurationError(msg) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        msg = f"cannot listen on {host}:{port}: {exc.strerror or type(exc).__name__} ({names})"
        raise ConfigurationError(msg) from None
    with sock:
        yield sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service's stop event decides."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


GRACE_S: Final = 5
"""Seconds uvicorn waits for open connections once live feeds have been told to end."""


def utc_now() -> dt.datetime:
    """The services' clock."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Reading:
    """What a service that shows analysts the log runs on: the trust store it follows,
    the verified log (``FeedHub``) and the audit log it writes what it shows to."""

    follower: TrustFollower
    hub: FeedHub
    audit: KafkaAudit


@contextlib.asynccontextmanager
async def reading(settings: Settings, stop: asyncio.Event) -> AsyncIterator[Reading | None]:
    """Follow the trust store and the log, once the broker answers (``None`` when ``stop``
    is set first), with a producer for the audit records; all stopped when the block ends.

    Fails at start, not on the first read, when this machine has no reader key.
    """

    async def start() -> tuple[TrustFollower, FeedHub]:
        follower = TrustFollower(settings)
        hub = FeedHub(settings, lambda: follower.store, utc_now)
        try:
            await follower.start()
            signing_key_for(READER, settings, KeyStore(settings), follower.store)
            await hub.start()
        except BaseException:
            await stop_quietly(hub.stop)
            await stop_quietly(follower.stop)
            raise
        return follower, hub

    started = await start_when_reachable(settings, start, stop)
    if started is None:
        yield None  # stopped while waiting for the broker
        return
    follower, hub = started
    try:
        async with kafka_sink(settings) as sink:
            yield Reading(follower, hub, KafkaAudit(settings, sink, lambda: follower.store))
    finally:
        await hub.stop()
        await follower.stop()


async def serve_until(app: ASGIApp, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve ``app`` on ``sock`` with uvicorn until ``stop`` is set (live feeds watch the
    same event and end; open connections get ``GRACE_S`` more)."""
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
    stop.set()
    server.should_exit = True
    await serving


async def serve_reader(settings: Settings, stop: asyncio.Event) -> int:
    """Serve the reader API until ``stop`` is set; the exit code (0, or 1 on failure)."""
    with listening_socket(settings.reader_host, settings.reader_port) as sock:
        async with reading(settings, stop) as ready:
            if ready is None:
                return 0  # stopped while waiting for the broker
            app = create_app(
                feed=KafkaFeed(settings, lambda: ready.follower.store),
                audit=ready.audit,
                registry=RegistryFile(settings).load,
                clock=utc_now,
                hub=ready.hub,
                shown=ShownLog(ready.audit, utc_now),
                stopping=stop,  # live feeds end, so the server can
            )
            await serve_until(app, sock, stop)
    return 0
