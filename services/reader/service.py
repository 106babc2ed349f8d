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
from collections.abc import Callable, Iterator

import uvicorn

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

__all__ = ["KafkaAudit", "KafkaFeed", "listening_socket", "serve_reader"]


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


async def serve_reader(settings: Settings, stop: asyncio.Event) -> int:
    """Serve the reader API until ``stop`` is set; the exit code (0, or 1 on failure)."""

    def clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    with listening_socket(settings.reader_host, settings.reader_port) as sock:

        async def start() -> tuple[TrustFollower, FeedHub]:
            follower = TrustFollower(settings)
            hub = FeedHub(settings, lambda: follower.store, clock)
            try:
                await follower.start()
                # Fail at start, not on the first read, when this machine has no reader key.
                signing_key_for(READER, settings, KeyStore(settings), follower.store)
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
                audit = KafkaAudit(settings, sink, lambda: follower.store)
                app = create_app(
                    feed=KafkaFeed(settings, lambda: follower.store),
                    audit=audit,
                    registry=RegistryFile(settings).load,
                    clock=clock,
                    hub=hub,
                    shown=ShownLog(audit, clock),
                    stopping=stop,  # live feeds end, so the server can
                )
                config = uvicorn.Config(
                    app, log_config=None, access_log=False, lifespan="off", server_header=False
                )
                server = _Server(config)
                serving = asyncio.create_task(server.serve(sockets=[sock]))
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                server.should_exit = True
                await serving
        finally:
            await hub.stop()
            await follower.stop()
    return 0
