"""``liaison serve dashboard``: the analysts' dashboard on Kafka, served by uvicorn.

At start the trust store is loaded and followed (``TrustFollower``), the reader's signing
key is looked up (the dashboard writes its audit records as the reader service does, so a
machine without a reader key fails here, not on the first page), and the ``FeedHub`` reads
the area feed and the JTAI log to their end, verified, then follows them. One producer,
kept open, appends the audit records (``KafkaAudit``). Signals are Liaison's own (SIGINT
and SIGTERM stop it cleanly, exit 0): every open stream ends, then uvicorn stops.

Sessions are signed with a secret drawn when the process starts and never stored, so a
restart signs every analyst out.

It answers only requests naming it by the address it listens on (``allowed_hosts``: with
the loopback names when that is loopback), so a page whose name is rebound to this machine
reads nothing. It serves plain HTTP: listening beyond this machine, it says once at start
that TLS must be terminated in front of it (session cookies are ``Secure`` only over HTTPS).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Final

import structlog

from services.dashboard.app import create_dashboard
from services.reader.analysts import RegistryFile
from services.reader.service import listening_socket, reading, serve_until, utc_now
from services.settings import Settings

__all__ = ["allowed_hosts", "serve_dashboard", "warn_if_exposed"]

_LOOPBACK_NAMES: Final = ("localhost", "127.0.0.1", "[::1]")

_log = structlog.get_logger("liaison.dashboard")


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return None


def _loopback(host: str) -> bool:
    address = _address(host)
    return host.strip().lower() == "localhost" or (address is not None and address.is_loopback)


def allowed_hosts(host: str) -> list[str]:
    """The ``Host`` names the dashboard answers when it listens on ``host``: that address
    (an IPv6 one in brackets, as browsers send it), with the loopback names when it is a
    loopback address, or the machine's own names when it is every address."""
    name = host.strip().lower()
    address = _address(name)
    if address is not None and address.version == 6:  # noqa: PLR2004 - IP version 6
        name = f"[{address}]"
    if _loopback(name):
        return list(dict.fromkeys([name, *_LOOPBACK_NAMES]))
    if address is not None and address.is_unspecified:
        mine = [socket.gethostname().lower(), socket.getfqdn().lower()]
        return list(dict.fromkeys([*mine, *_LOOPBACK_NAMES]))
    return [name]


def warn_if_exposed(host: str) -> None:
    """Say once (a warning) when the dashboard listens beyond this machine: it speaks
    plain HTTP, so TLS must be terminated in front of it."""
    if _loopback(host):
        return
    _log.warning(
        "dashboard_plain_http",
        host=host,
        detail=(
            "the dashboard serves plain HTTP beyond this machine: terminate TLS in front of"
            " it (session cookies are Secure only over HTTPS), and reach it by the address"
            " it listens on (other Host names are refused)"
        ),
    )


async def serve_dashboard(settings: Settings, stop: asyncio.Event) -> int:
    """Serve the dashboard until ``stop`` is set; the exit code (0)."""
    with listening_socket(
        settings.dashboard_host,
        settings.dashboard_port,
        "LIAISON_DASHBOARD_HOST, LIAISON_DASHBOARD_PORT",
    ) as sock:
        warn_if_exposed(settings.dashboard_host)
        async with reading(settings, stop) as ready:
            if ready is None:
                return 0  # stopped while waiting for the broker
            app = create_dashboard(
                hub=ready.hub,
                audit=ready.audit,
                registry=RegistryFile(settings).load,
                clock=utc_now,
                session_minutes=settings.dashboard_session_minutes,
                stop=stop,
                allowed_hosts=[
                    *allowed_hosts(settings.dashboard_host),
                    *settings.dashboard_allowed_hosts,
                ],
            )
            await serve_until(app, sock, stop)
    return 0
