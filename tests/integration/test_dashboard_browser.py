"""The analysts' dashboard end to end in a real headless browser, against the real broker.

Debian's `chromium` (or $LIAISON_CHROMIUM) is driven by Playwright with its executable
path set: Playwright never downloads a browser. `make test` installs chromium where it is
missing (deploy/local/ensure-chromium.sh); without it this test fails saying what to
install, it never skips. A real `liaison serve router` routes what `liaison publish`
sends; a real `liaison serve dashboard` follows the area feed and the JTAI log. An analyst
scoped to Leeds, Bradford and the North East signs in with the credential an operator
issued, watches findings arrive in the overview and the live feed without a reload,
filters the feed, is refused an area outside their scope, and every page view, live
update and refusal is on the audit log with their name and purpose.

Screenshots of the overview and an area page are kept in tests/artifacts/ and written to
docs/images/ for the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.async_api import Page, ViewportSize, async_playwright, expect

from schemas.events import ConcernRaised, encode_event
from schemas.keys import READER, SigningKey
from services.settings import Settings
from tests.conftest import env_for, run_liaison
from tests.factories import concern, utc_now
from tests.integration.test_reader import audited, free_port, of_action

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
IMAGES = ROOT / "docs" / "images"
LIAISON = [sys.executable, "-m", "services"]
UPDATE_IMAGES = os.environ.get("UPDATE_README_IMAGES") == "1"

# Read when the module is imported: the suite's fixtures hide the shell's LIAISON_*
# variables from tests (tests/conftest.py), and this one says where the browser is.
CHROMIUM_SET = os.environ.get("LIAISON_CHROMIUM", "")
CHROMIUM = CHROMIUM_SET or shutil.which("chromium") or ""


def chromium() -> str:
    """The browser to drive; without one the test fails saying what to install."""
    if CHROMIUM and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    found = (
        f"LIAISON_CHROMIUM={CHROMIUM_SET!r} is not an executable"
        if CHROMIUM_SET
        else "there is no `chromium` on PATH"
    )
    pytest.fail(
        f"the dashboard's browser test needs Chromium, and {found}: run `make browser`"
        " (installs Debian's chromium package) or `sudo apt-get install chromium`, or set"
        " LIAISON_CHROMIUM to a Chromium executable"
    )


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
WAIT_MS = 30_000  # publish -> router -> area feed -> dashboard's hub -> the page

ANALYST = "r.patel"
PURPOSE = "Weekly review of neglect and domestic abuse in West Yorkshire and the North East"
LEEDS, BRADFORD, KENT = "E08000035", "E08000032", "E10000016"
NEWCASTLE, SUNDERLAND, DURHAM, MIDDLESBROUGH = "E08000021", "E08000024", "E06000047", "E06000002"
NORTH_EAST = {NEWCASTLE, SUNDERLAND, DURHAM, MIDDLESBROUGH}


def finding(area: str, theme: str, severity: int, days_ago: float, **fields: Any) -> ConcernRaised:
    """A concern (Ofsted's unless ``fields`` say otherwise) that occurred ``days_ago``."""
    findings = {1: "area_for_improvement", 2: "area_for_improvement", 3: "area_for_priority_action"}
    return concern(
        area=area,
        theme=theme,
        severity=severity,
        finding=findings.get(severity, "cause_of_concern"),
        occurred_at=utc_now() - dt.timedelta(days=days_ago),
        summary=f"Concern about {theme.replace('_', ' ')} practice found at inspection.",
        **fields,
    )


def cqc(area: str, theme: str, severity: int, days_ago: float) -> ConcernRaised:
    return finding(
        area, theme, severity, days_ago, source="cqc", programme="clas", subject_agencies=["health"]
    )


async def publish(settings: Settings, tmp_path: Path, *events: ConcernRaised) -> None:
    """`liaison publish --as SOURCE FILE` for each publisher's events, as its team would."""
    sources = dict.fromkeys(e.source.value for e in events)
    for source in sources:
        file = tmp_path / f"{source}-{uuid.uuid4().hex}.jsonl"
        file.write_bytes(b"".join(encode_event(e) + b"\n" for e in events if e.source == source))
        done = await run_liaison(settings, "publish", "--as", source, str(file))
        assert done.returncode == 0, done.stderr


def tail(log: Path) -> str:
    """The end of a service's log, for a failure's message."""
    return log.read_text(errors="replace")[-4000:]


@contextlib.asynccontextmanager
async def running(
    settings: Settings, name: str, log: Path, env: dict[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`liaison serve NAME` until the block ends (then SIGTERM: it must exit 0)."""
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            *LIAISON, "serve", name,
            env={**env_for(settings), **(env or {})},
            stdout=asyncio.subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        try:
            yield process
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 60)
    assert code == 0, f"liaison serve {name} exited {code}:\n{tail(log)}"


async def answers(process: asyncio.subprocess.Process, url: str, log: Path) -> None:
    """Wait until the dashboard answers its sign-in page."""
    async with httpx2.AsyncClient(base_url=url, timeout=2.0) as client:
        for _ in range(300):
            assert process.returncode is None, f"the dashboard stopped:\n{tail(log)}"
            with contextlib.suppress(httpx2.TransportError):
                if (await client.get("/sign-in")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    pytest.fail(f"the dashboard never answered at {url}:\n{tail(log)}")


async def issue_credential(settings: Settings, tmp_path: Path) -> str:
    """An operator issues r.patel a credential for Leeds, Bradford and the North East."""
    token_file = tmp_path / f"{ANALYST}.token"
    added = await run_liaison(
        settings, "analysts", "add", ANALYST, "--areas", "Leeds,Bradford",
        "--regions", "North East", "--out", str(token_file),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    return token_file.read_text().strip()


async def shown_ids(page: Page, table: str = "#feed-table") -> set[str]:
    """The event ids of the rows a table shows."""
    rows = page.locator(f"{table} tbody tr[data-event-id]")
    return set(await rows.evaluate_all("rs => rs.map(r => r.dataset.eventId)"))


def ids(events: Iterable[ConcernRaised]) -> set[str]:
    return {str(e.id) for e in events}


async def not_reloaded(page: Page) -> None:
    """Mark the document; ``still_same_document`` then proves no reload happened."""
    await page.evaluate("() => { window.liaisonNoReload = 'same document'; }")


async def still_same_document(page: Page) -> None:
    assert await page.evaluate("() => window.liaisonNoReload") == "same document"


async def apply_feed_filters(page: Page, url: str, **values: str) -> None:
    """Open the live feed, set its filter form's fields (ids f-NAME) and press Apply."""
    await page.goto(f"{url}/feed")
    form = page.locator("#feed-filters")
    for name, value in values.items():
        field = form.locator(f"#f-{name}")
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    async with page.expect_navigation():
        await form.get_by_role("button", name="Apply").click()


async def test_an_analyst_watches_findings_arrive_filters_is_refused_and_is_audited(  # noqa: PLR0915 - one walk-through
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    browser_path = chromium()  # never skipped: fails saying what to install

    # What the inspectorates found before the analyst signs in.
    leeds_neglect = finding(LEEDS, "neglect", 2, days_ago=20)
    leeds_mental = cqc(LEEDS, "mental_health", 3, days_ago=45)
    leeds_old = finding(LEEDS, "neglect", 2, days_ago=200)  # outside the overview's 90 days
    bradford_abuse = finding(BRADFORD, "domestic_abuse", 3, days_ago=10)
    newcastle = finding(NEWCASTLE, "front_door", 1, days_ago=5)
    sunderland = finding(SUNDERLAND, "neglect", 4, days_ago=3)  # raises a JTAI consideration
    durham = cqc(DURHAM, "mental_health", 2, days_ago=30)
    middlesbrough = finding(MIDDLESBROUGH, "child_criminal_exploitation", 3, days_ago=15)
    kent = finding(KENT, "neglect", 3, days_ago=2)  # outside r.patel's scope
    backlog = [leeds_neglect, leeds_mental, leeds_old, bradford_abuse, newcastle, sunderland]
    backlog += [durham, middlesbrough, kent]
    await publish(kafka, tmp_path, *backlog)
    token = await issue_credential(kafka, tmp_path)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    dashboard_log, router_log = tmp_path / "dashboard.log", tmp_path / "router.log"
    console: list[str] = []
    async with (
        running(kafka, "router", router_log),
        running(kafka, "dashboard", dashboard_log, {"LIAISON_DASHBOARD_PORT": str(port)}) as app,
        async_playwright() as playwright,
    ):
        await answers(app, url, dashboard_log)
        browser = await playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=browser_path,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            locale="en-GB",
        )
        try:
            page = browser.pages[0] if browser.pages else await browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.on("pageerror", lambda exc: console.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
            )

            # Nothing before sign-in: every page leads to the sign-in form.
            await page.goto(f"{url}/area/{LEEDS}")
            assert page.url.startswith(f"{url}/sign-in")
            assert "Leeds" not in await page.locator("main").inner_text()
            assert (await page.request.get(f"{url}/events/feed")).status == 401

            # A wrong credential is refused, saying so.
            await page.locator("#credential").fill("lsn_" + "A" * 43)
            await page.locator("#purpose").fill(PURPOSE)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("alert")).to_be_visible()
            assert page.url.startswith(f"{url}/sign-in")

            # Signed in with the operator's credential and a purpose: on to the page asked.
            await page.locator("#credential").fill(token)
            await page.locator("#purpose").fill(PURPOSE)
            async with page.expect_navigation(url=f"{url}/area/{LEEDS}"):
                await page.get_by_role("button", name="Sign in").click()
            async with page.expect_navigation(url=f"{url}/"):
                await page.get_by_role("link", name="Overview").click()
            sign_out = page.locator("form[action='/sign-out']")
            await expect(sign_out).to_contain_text(ANALYST)
            await expect(sign_out).to_contain_text(PURPOSE)
            await expect(page.get_by_role("button", name="Sign out")).to_be_visible()

            # The overview: every authority in scope, Leeds's two concerns in 90 days.
            tiles = page.locator("#tile-map g.tile")
            await expect(tiles).to_have_count(14)  # Leeds, Bradford, 12 in the North East
            assert await page.locator(f"#tile-map g.tile[data-area='{KENT}']").count() == 0
            leeds_tile = page.locator(f"#tile-map g.tile[data-area='{LEEDS}']")
            leeds_row = page.locator(f"#area-table tr[data-area='{LEEDS}']")
            await expect(leeds_tile).to_have_attribute("data-total", "2", timeout=WAIT_MS)
            await expect(leeds_row.locator("td.total")).to_have_text("2")
            await expect(page.locator(f"#area-table tr[data-area='{KENT}']")).to_have_count(0)
            await expect(
                page.locator(f"#tile-map g.tile[data-area='{SUNDERLAND}']")
            ).to_have_attribute("data-jtai", "considered", timeout=WAIT_MS)

            # A new Leeds concern reaches the tile and the table without a reload.
            await not_reloaded(page)
            leeds_live = finding(LEEDS, "neglect", 2, days_ago=0.01)
            await publish(kafka, tmp_path, leeds_live)
            await expect(leeds_tile).to_have_attribute("data-total", "3", timeout=WAIT_MS)
            await expect(leeds_row.locator("td.total")).to_have_text("3", timeout=WAIT_MS)
            await still_same_document(page)

            # The table sorts by a column's header button, from the keyboard too.
            sorted_by = page.locator("#area-table thead th").filter(has_text="Concerns")
            await sorted_by.get_by_role("button").press("Enter")
            await expect(sorted_by).to_have_attribute("aria-sort", "descending")
            first_area = page.locator("#area-table tbody tr[data-area]").first
            await expect(first_area).to_have_attribute("data-area", LEEDS)

            # The live feed: what is in scope, newest first; a new finding appears.
            async with page.expect_navigation():
                await page.get_by_role("link", name="Live feed").click()
            in_scope = [leeds_neglect, leeds_mental, bradford_abuse, newcastle, sunderland]
            in_scope += [durham, middlesbrough, leeds_live]
            first_row = page.locator(f"#feed-table tbody tr[data-event-id='{leeds_live.id}']")
            await expect(first_row).to_have_count(1)
            assert ids(in_scope) <= await shown_ids(page)
            assert str(kent.id) not in await shown_ids(page)
            await not_reloaded(page)
            bradford_live = finding(BRADFORD, "domestic_abuse", 3, days_ago=0.005)
            kent_live = finding(KENT, "domestic_abuse", 3, days_ago=0.005)
            await publish(kafka, tmp_path, kent_live, bradford_live)
            new_row = page.locator(f"#feed-table tbody tr[data-event-id='{bradford_live.id}']")
            await expect(new_row).to_have_count(1, timeout=WAIT_MS)
            newest = page.locator("#feed-table tbody tr[data-event-id]").first
            await expect(newest).to_have_attribute("data-event-id", str(bradford_live.id))
            await expect(new_row.locator(f"a[href='/event/{bradford_live.id}']")).to_have_count(1)
            await still_same_document(page)
            in_scope.append(bradford_live)
            assert not {str(kent.id), str(kent_live.id)} & await shown_ids(page)

            # Filters: theme, least severity, source, region, and an area by its name.
            await apply_feed_filters(page, url, theme="domestic_abuse")
            assert await shown_ids(page) == ids([bradford_abuse, bradford_live])
            await apply_feed_filters(page, url, severity="3")
            assert await shown_ids(page) == ids(e for e in in_scope if e.severity >= 3)
            await apply_feed_filters(page, url, source="cqc")
            assert await shown_ids(page) == ids([leeds_mental, durham])
            await apply_feed_filters(page, url, region="North East")
            north_east = ids(e for e in in_scope if e.area in NORTH_EAST)
            shown = await shown_ids(page)
            assert north_east <= shown
            # And the JTAI consideration Sunderland's severity 4 concern raised.
            (consideration,) = shown - north_east
            row = page.locator(f"#feed-table tbody tr[data-event-id='{consideration}']")
            await expect(row.locator("td.area a")).to_have_attribute("href", f"/area/{SUNDERLAND}")
            await apply_feed_filters(page, url, area="Leeds")
            leeds_all = [leeds_neglect, leeds_mental, leeds_old, leeds_live]
            assert ids([leeds_neglect, leeds_mental, leeds_live]) <= await shown_ids(page)
            assert await shown_ids(page) <= ids(leeds_all)

            # Filtered live: a new Leeds finding appears, a new Bradford one does not.
            await not_reloaded(page)
            bradford_later = finding(BRADFORD, "neglect", 2, days_ago=0.002)
            leeds_later = finding(LEEDS, "neglect", 3, days_ago=0.002)
            await publish(kafka, tmp_path, bradford_later, leeds_later)
            later_row = page.locator(f"#feed-table tbody tr[data-event-id='{leeds_later.id}']")
            await expect(later_row).to_have_count(1, timeout=WAIT_MS)
            await asyncio.sleep(2)  # room for a wrongly shown Bradford row to arrive
            assert str(bradford_later.id) not in await shown_ids(page)
            await still_same_document(page)

            # A misspelt area: one line naming the nearest valid ones; nothing shown.
            await apply_feed_filters(page, url, area="Leedz")
            error = page.locator("#feed-error")
            await expect(error).to_be_visible()
            await expect(error).to_have_attribute("role", "alert")
            await expect(error).to_contain_text("Leedz")
            await expect(error).to_contain_text("Leeds")
            assert await shown_ids(page) == set()

            # Outside the scope: refused (403), never an empty page.
            refused = await page.goto(f"{url}/area/Kent")
            assert refused is not None
            assert refused.status == 403
            await expect(page.get_by_role("alert")).to_contain_text("outside your scope")
            await expect(page.locator("#timeline")).to_have_count(0)
            refused_feed = await page.goto(f"{url}/feed?area={KENT}")
            assert refused_feed is not None
            assert refused_feed.status == 403
            await expect(page.get_by_role("alert")).to_contain_text("outside your scope")

            # An area page, by name: timeline, chart, sections.
            area = await page.goto(f"{url}/area/Leeds")
            assert area is not None
            assert area.status == 200
            await expect(page.locator("h1")).to_contain_text("Leeds")
            await expect(page.locator("h1")).to_contain_text(LEEDS)
            await expect(page.locator("main")).to_contain_text("Yorkshire and The Humber")
            await expect(page.locator("svg#theme-chart")).to_have_count(1)
            await expect(page.locator("svg#theme-chart title")).not_to_have_count(0)
            for section in ("timeline", "outcomes", "jtai", "recommendations"):
                await expect(page.locator(f"section#{section}")).to_have_count(1)
            timeline = page.locator("#timeline li[data-event-id]")
            listed = set(await timeline.evaluate_all("ls => ls.map(l => l.dataset.eventId)"))
            assert ids([*leeds_all, leeds_later]) == listed
            await screenshot(page, "dashboard-area.png")

            # An event's detail: verified by the server, the publisher's key named.
            detail = await page.goto(f"{url}/event/{leeds_live.id}")
            assert detail is not None
            assert detail.status == 200
            verified = page.locator("#verified")
            await expect(verified).to_contain_text("Verified")
            await expect(verified).to_contain_text(signing["ofsted"].keyid)
            await expect(page.locator("#envelope")).to_contain_text("signatures")

            # The overview again, for the README: everything above, shaded and marked.
            overview = await page.goto(f"{url}/")
            assert overview is not None
            headers = await overview.all_headers()
            assert "script-src 'self';" in headers["content-security-policy"]
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert headers["cache-control"] == "no-store"
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "no-referrer"
            await expect(leeds_tile).to_have_attribute("data-total", "4")
            await screenshot(page, "dashboard-overview.png")

            # Signed out: back to the sign-in form, nothing shown.
            async with page.expect_navigation():
                await page.get_by_role("button", name="Sign out").click()
            await page.goto(f"{url}/feed")
            assert page.url.startswith(f"{url}/sign-in")
        except BaseException:
            await keep_failure(browser.pages)
            raise
        finally:
            await browser.close()

    assert console == [], console  # no script error, nothing blocked by the CSP
    await reads_are_audited(kafka, leeds_live, bradford_live, leeds_later, kent_live)


async def screenshot(page: Page, name: str) -> None:
    """The page as the analyst sees it (1366x768), kept as a test artifact; the README's
    image is replaced only when it is missing or UPDATE_README_IMAGES=1 (it shows the
    day's times, so a run would otherwise always change the work tree)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / name)
    if UPDATE_IMAGES or not (IMAGES / name).exists():
        IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / name, IMAGES / name)


async def keep_failure(pages: list[Page]) -> None:
    """What the browser showed when the test failed, kept in tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for n, page in enumerate(pages):
        with contextlib.suppress(Exception):
            await page.screenshot(path=ARTIFACTS / f"failure-{n}.png", full_page=True)
            html = await page.content()
            (ARTIFACTS / f"failure-{n}.html").write_text(f"<!-- {page.url} -->\n{html}")


async def reads_are_audited(
    settings: Settings,
    leeds_live: ConcernRaised,
    bradford_live: ConcernRaised,
    leeds_later: ConcernRaised,
    kent_live: ConcernRaised,
) -> None:
    """Every page view and live update is a feed.read naming r.patel, the purpose, the
    view and the events shown; both out-of-scope requests are feed.refused."""
    judged = await audited(settings)
    reads = of_action(judged, "feed.read")
    refusals = of_action(judged, "feed.refused")
    for sealed in (*reads, *refusals):
        assert sealed.key.owner == READER
        record = sealed.record.model_dump()
        assert record["actor"] == f"analyst:{ANALYST}"
        assert record["analyst"] == ANALYST
        assert record["purpose"] == PURPOSE
    views: dict[str, set[str]] = {}
    for sealed in reads:
        record = sealed.record.model_dump()
        views.setdefault(record["view"], set()).update(str(i) for i in record["event_ids"])
    assert set(views) >= {
        "dashboard.overview",
        "dashboard.feed",
        "dashboard.area",
        "dashboard.event",
    }, views
    assert str(leeds_live.id) in views["dashboard.overview"]  # the live totals too
    assert {str(bradford_live.id), str(leeds_later.id)} <= views["dashboard.feed"]
    assert str(leeds_later.id) in views["dashboard.area"]
    assert views["dashboard.event"] == {str(leeds_live.id)}
    assert str(kent_live.id) not in set().union(*views.values())
    out_of_scope = [
        r.record.model_dump() for r in refusals if r.record.model_dump()["reason"] == "out_of_scope"
    ]
    assert {(r["view"], r["filters"].get("area")) for r in out_of_scope} == {
        ("dashboard.area", KENT),
        ("dashboard.feed", KENT),
    }, out_of_scope
    assert all(r["event_ids"] == () for r in out_of_scope)
