"""`liaison serve dashboard` against the real broker: an analyst signs in with an issued
credential, a finding published after sign-in reaches the overview stream, the live feed
and the area page without a reload, an area outside the scope is refused, and every view
is on the audit log, signed by the reader's key, under the analyst's name."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from schemas.audit import FeedRead, FeedRefused
from schemas.events import ConcernRaised
from schemas.keys import READER, SigningKey
from services.settings import Settings
from tests.conftest import env_for, one_error_line, run_liaison
from tests.factories import concern
from tests.integration.test_reader import (
    LIAISON,
    audited,
    free_port,
    http_service,
    issue_credential,
    of_action,
    put_on_feed,
)

pytestmark = pytest.mark.kafka

LEEDS, BRADFORD, KENT = "E08000035", "E08000032", "E10000016"
PURPOSE = "JTAI shortlist for Yorkshire"


def dashboard_service(settings: Settings, port: int) -> contextlib.AbstractAsyncContextManager[str]:
    """`liaison serve dashboard` on ``port`` until the block ends (then SIGTERM, exit 0)."""
    return http_service(settings, "dashboard", {"LIAISON_DASHBOARD_PORT": str(port)}, port)


async def sign_in(client: httpx2.AsyncClient, token: str) -> None:
    form = await client.get("/sign-in")
    assert form.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert found is not None
    signed = await client.post(
        "/sign-in", data={"csrf": found.group(1), "credential": token, "purpose": PURPOSE}
    )
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] == "/"


async def next_event(lines: AsyncIterator[str], name: str) -> Any:
    """The data of the next ``name`` event on a stream."""
    current = ""
    async for line in lines:
        if line.startswith("event: "):
            current = line.removeprefix("event: ")
        elif line.startswith("data: ") and current == name:
            return json.loads(line.removeprefix("data: "))
    pytest.fail(f"the stream ended before a {name} event")


async def views_are_audited_under_the_analysts_name(
    kafka: Settings, found: ConcernRaised, before: ConcernRaised, kent: ConcernRaised
) -> None:
    """Every view and the refusal are on the log, signed by the reader's key, naming a.khan
    and the purpose; the live overview update records only the finding newly counted."""
    judged = await audited(kafka)
    sealed = of_action(judged, "feed.read", "feed.refused")
    assert {r.key.owner for r in sealed} == {READER}
    records = [r.record for r in sealed if isinstance(r.record, FeedRead | FeedRefused)]
    assert len(records) == len(sealed)
    assert all(r.actor == "analyst:a.khan" and r.analyst == "a.khan" for r in records)
    assert all(r.purpose == PURPOSE for r in records)
    reads = [r for r in records if isinstance(r, FeedRead)]
    views = [r.view for r in reads]
    assert views[0] == "dashboard.overview"
    assert {"dashboard.overview", "dashboard.feed", "dashboard.area", "dashboard.event"} <= set(
        views
    )
    assert "dashboard.export" not in views  # the other site's request read nothing
    shown = {i for r in reads for i in r.event_ids}
    assert found.id in shown
    assert before.id in shown
    assert kent.id not in shown
    assert any(
        r.view == "dashboard.overview" and r.event_ids == (found.id,) for r in reads
    )  # the live update records only what it newly counted
    (refusal,) = [r for r in records if isinstance(r, FeedRefused)]
    assert (refusal.view, refusal.reason, refusal.filters["area"]) == (
        "dashboard.area", "out_of_scope", KENT,
    )  # fmt: skip


async def test_an_analyst_sees_a_new_finding_live_and_every_view_is_audited(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    before = concern(area=BRADFORD, theme="domestic_abuse", severity=2)
    kent = concern(area=KENT)
    await put_on_feed(kafka, signing, [(before, "ofsted"), (kent, "ofsted")])
    token = (await issue_credential(kafka, tmp_path)).read_text().strip()

    port = free_port()
    async with (
        dashboard_service(kafka, port) as url,
        httpx2.AsyncClient(base_url=url, timeout=20.0) as client,
    ):
        assert (await client.get("/")).status_code == 303  # nothing before sign-in
        assert (await client.get("/events/overview")).status_code == 401
        # A name rebound to this machine is not the dashboard's (DNS rebinding).
        rebound = await client.get("/sign-in", headers={"Host": f"rebound.example:{port}"})
        assert rebound.status_code == 400
        assert (await client.get("/sign-in", headers={"Host": f"localhost:{port}"})).is_success
        await sign_in(client, token)
        # Another local site's page carries the cookie, and is refused before any read.
        other_site = await client.get("/export.jsonl", headers={"Sec-Fetch-Site": "same-site"})
        assert other_site.status_code == 403

        page = await client.get("/")
        assert page.status_code == 200
        assert f'data-area="{BRADFORD}" data-total="1"' in page.text
        assert f'data-area="{LEEDS}" data-total="0"' in page.text
        assert f'data-area="{KENT}"' not in page.text

        async with (
            client.stream("GET", "/events/overview?window=30d") as overview,
            client.stream("GET", "/events/feed?area=Leeds") as feed,
        ):
            assert overview.headers["content-type"].startswith("text/event-stream")
            totals = overview.aiter_lines()
            rows = feed.aiter_lines()
            first = {t["code"]: t for t in await next_event(totals, "totals")}
            assert first[LEEDS]["total"] == 0

            found = concern(area=LEEDS, severity=4, finding="cause_of_concern")
            await put_on_feed(kafka, signing, [(found, "ofsted")])

            async with asyncio.timeout(30):
                live = {t["code"]: t for t in await next_event(totals, "totals")}
                (row,) = await next_event(rows, "items")
            assert (live[LEEDS]["total"], live[LEEDS]["max_severity"]) == (1, 4)
            assert row["id"] == str(found.id)
            assert row["area_name"] == "Leeds"

        feed_page = await client.get("/feed?area=Leeds")
        cursor = re.search(r'data-after="([^"]*)"', feed_page.text)
        assert cursor is not None
        assert not cursor.group(1).isdigit()  # the hub's numbers are never shown
        area = await client.get(f"/area/{LEEDS}")
        assert area.status_code == 200
        assert f'<li data-event-id="{found.id}">' in area.text
        event = await client.get(f"/event/{found.id}")
        assert re.search(r'<p id="verified"[^>]*><strong>Verified</strong>', event.text)
        assert signing["ofsted"].keyid in event.text
        refused = await client.get(f"/area/{KENT}")
        assert refused.status_code == 403
        assert "outside your scope" in refused.text

    await views_are_audited_under_the_analysts_name(kafka, found, before, kent)


async def test_a_dashboard_whose_port_is_taken_is_one_error_line(kafka: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = await run_liaison(
            kafka, "serve", "dashboard", env={"LIAISON_DASHBOARD_PORT": str(port)}
        )
    line = one_error_line(done)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "LIAISON_DASHBOARD_PORT" in line


async def test_stopping_the_dashboard_ends_open_streams_and_exits_cleanly(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    del signing  # the reader's key must be there; the dashboard fails at start without it
    token = (await issue_credential(kafka, tmp_path)).read_text().strip()
    port = free_port()
    service = await asyncio.create_subprocess_exec(
        *LIAISON, "serve", "dashboard",
        env={**env_for(kafka), "LIAISON_DASHBOARD_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            for _ in range(300):
                with contextlib.suppress(httpx2.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
            await sign_in(client, token)
            async with client.stream("GET", "/events/feed") as feed:
                service.send_signal(signal.SIGTERM)
                async with asyncio.timeout(15):
                    async for _ in feed.aiter_lines():
                        pass  # the stream ends when the service stops
    finally:
        if service.returncode is None:
            service.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(service.communicate(), 30)
    assert service.returncode == 0, err.decode()
