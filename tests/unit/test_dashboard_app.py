"""The analysts' dashboard on a real ``FeedHub`` fed signed records, a list for an audit
log and a registry in memory: sign-in, sessions, CSRF, scope, audit before showing, the
pages and streams of the DOM contract, and the security headers."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from consumers.jtai import consideration_id
from schemas.audit import AnalystScope, FeedRead, FeedRefused
from schemas.events import Theme
from schemas.jtai import JtaiConsiderationRequested, JtaiDecisionRecorded
from schemas.keys import BUS
from schemas.reference import local_authorities
from schemas.signed import SignedEvent
from services.dashboard.app import SECURITY_HEADERS, create_dashboard
from services.dashboard.service import allowed_hosts, warn_if_exposed
from services.dashboard.session import (
    COOKIE,
    Session,
    SessionSigner,
    new_secret,
    safe_next,
    same_origin,
    start_session,
)
from services.reader.analysts import Analyst, Registry, new_token, token_sha256
from services.reader.hub import FeedHub
from services.reader.query import scoped_areas
from services.settings import Settings
from tests.factories import NOW, concern, key_for, trust_of
from tests.loop_factories import outcome_recorded, recommendation, review, signed_inbound
from tests.unit.test_reader_app import FakeAudit as ReaderAudit

LEEDS, BRADFORD, KENT = "E08000035", "E08000032", "E10000016"
YORKSHIRE = "Yorkshire and The Humber"
SETTINGS = Settings(bootstrap_servers="127.0.0.1:1", topic_prefix="")
OFSTED, HMICFRS, CQC, LIAISON = key_for("ofsted"), key_for("hmicfrs"), key_for("cqc"), key_for(BUS)
TRUST = trust_of(OFSTED, HMICFRS, CQC, LIAISON)
KHAN, LEE = new_token(), new_token()
PURPOSE = "JTAI shortlist for Yorkshire"
SCOPE = AnalystScope(regions=(YORKSHIRE,), themes=tuple(Theme))
ORIGIN = "http://testserver"


def analyst(name: str, token: str, scope: AnalystScope) -> Analyst:
    return Analyst(
        name=name, scope=scope, credential_sha256=token_sha256(token), added_at=NOW,
        added_by="operator:test",
    )  # fmt: skip


@dataclass
class FakeAudit(ReaderAudit):
    """The audit log seam (the reader app's fake): a list, or a log that takes nothing."""

    def reads(self, view: str) -> list[FeedRead]:
        return [r for r in self.records if isinstance(r, FeedRead) and r.view == view]

    def refusals(self) -> list[FeedRefused]:
        return [r for r in self.records if isinstance(r, FeedRefused)]


@dataclass
class Clock:
    now: dt.datetime = NOW

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Dashboard:
    client: TestClient
    hub: FeedHub
    audit: FakeAudit
    registry: list[Registry]
    clock: Clock

    def add(self, *events: tuple[SignedEvent, Any]) -> None:
        topic = SETTINGS.topics
        self.hub.add(
            [
                signed_inbound(
                    event, key,
                    topic=topic.jtai
                    if key is LIAISON or isinstance(event, JtaiDecisionRecorded)
                    else topic.feed,
                    appended_at=NOW - dt.timedelta(minutes=5),
                )
                for event, key in events
            ]
        )  # fmt: skip

    def sign_in(self, token: str = KHAN, purpose: str = PURPOSE, **extra: str) -> httpx2.Response:
        return self.client.post(
            "/sign-in",
            data={"csrf": csrf_of(self.client.get("/sign-in")), "credential": token,
                  "purpose": purpose, **extra},
            follow_redirects=False,
        )  # fmt: skip


def csrf_of(page: httpx2.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def cursor_of(client: TestClient, query: str = "") -> str:
    """The feed page's place in the feed (``after=`` of its stream), as the page gives it."""
    page = client.get(f"/feed?{query}")
    assert page.status_code == 200, page.text
    found = re.search(r'data-stream="/events/feed\?(?:[^"]*&amp;)?after=([^"&]+)"', page.text)
    assert found is not None, page.text
    assert f'data-after="{found.group(1)}"' in page.text
    return found.group(1)


def registry_of(*entries: Analyst) -> Registry:
    registry = Registry()
    for entry in entries:
        registry = registry.with_added(entry)
    return registry


LEEDS_SEVERE = concern(area=LEEDS, severity=4, finding="cause_of_concern", source="ofsted")
LEEDS_MILD = concern(
    area=LEEDS, severity=2, theme="domestic_abuse", occurred_at=NOW - dt.timedelta(hours=2)
)
BRADFORD_ONE = concern(
    area=BRADFORD, severity=3, source="hmicfrs", programme="ncpi", theme="domestic_abuse"
)
KENT_ONE = concern(area=KENT, severity=4, summary="Kent's summary is never shown here.")
FORGED = concern(area=LEEDS, severity=1)
OLD = concern(area=LEEDS, occurred_at=NOW - dt.timedelta(days=200))


@pytest.fixture
def dash() -> Iterator[Dashboard]:
    hub = FeedHub(SETTINGS, lambda: TRUST, lambda: NOW)
    audit = FakeAudit()
    clock = Clock()
    registry = [registry_of(analyst("a.khan", KHAN, SCOPE))]
    app = create_dashboard(
        hub=hub, audit=audit, registry=lambda: registry[0], clock=clock,
        secret=b"k" * 32, poll_s=0.05, stream_limit_s=3.0, refusal_delay_s=0,
    )  # fmt: skip
    dashboard = Dashboard(TestClient(app, base_url=ORIGIN), hub, audit, registry, clock)
    dashboard.add(
        (LEEDS_SEVERE, OFSTED), (LEEDS_MILD, OFSTED), (BRADFORD_ONE, HMICFRS), (KENT_ONE, OFSTED),
        (OLD, OFSTED),
    )  # fmt: skip
    dashboard.hub.add(  # signed by a key nobody trusts: never shown, never counted
        [signed_inbound(FORGED, key_for("ofsted"), topic=SETTINGS.topics.feed)]
    )
    with dashboard.client:
        yield dashboard


@pytest.fixture
def signed_in(dash: Dashboard) -> Dashboard:
    answer = dash.sign_in()
    assert answer.status_code == 303, answer.text
    return dash


def tiles(page: str) -> dict[str, tuple[str, str, str]]:
    """Each tile's code -> (severity class, data-total, data-jtai)."""
    found = re.findall(
        r'<g class="tile (sev-\d)" data-area="(E\d{8})" data-total="(\d+)" data-jtai="(\w*)"',
        page,
    )
    return {code: (sev, total, jtai) for sev, code, total, jtai in found}


def sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


# -- sign-in and sessions ------------------------------------------------------------------


def test_nothing_is_shown_before_sign_in(dash: Dashboard) -> None:
    home = dash.client.get("/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/sign-in")
    for path in ("/feed?area=Leeds", f"/area/{LEEDS}", f"/event/{LEEDS_SEVERE.id}"):
        page = dash.client.get(path, follow_redirects=False)
        assert page.status_code == 303, path
        assert page.headers["location"].startswith("/sign-in?next=%2F")
    for path in ("/events/feed", "/events/overview", "/export.jsonl"):
        assert dash.client.get(path).status_code == 401, path
    form = dash.client.get("/sign-in")
    assert form.status_code == 200
    assert '<form id="sign-in" method="post" action="/sign-in"' in form.text
    assert '<label for="credential">Credential</label>' in form.text
    assert 'id="credential" name="credential" type="password"' in form.text
    assert '<label for="purpose">Purpose</label>' in form.text
    assert '<button type="submit">Sign in</button>' in form.text
    assert "Leeds" not in form.text
    assert str(LEEDS_SEVERE.id) not in form.text
    assert dash.audit.records == []


def test_sign_in_sets_a_signed_http_only_strict_session_cookie_without_the_token(
    dash: Dashboard,
) -> None:
    answer = dash.sign_in(next=f"/area/{LEEDS}")
    assert (answer.status_code, answer.headers["location"]) == (303, f"/area/{LEEDS}")
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE))
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert "max-age=28800" in attributes
    assert "secure" not in attributes  # plain http here; https requests get Secure
    value = cookie.split(";")[0].split("=", 1)[1].strip('"')
    assert KHAN not in value
    payload = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))
    assert payload["a"] == "a.khan"
    assert payload["c"] == token_sha256(KHAN)
    assert payload["p"] == PURPOSE
    page = dash.client.get("/")
    assert page.status_code == 200
    assert "a.khan" in page.text
    assert PURPOSE in page.text
    assert '<button type="submit">Sign out</button>' in page.text


def test_sign_in_goes_only_to_a_page_of_this_site() -> None:
    assert safe_next("/feed?area=Leeds") == "/feed?area=Leeds"
    for target in ("//evil.example/", "https://evil.example/", "/\\evil", None, "", "feed"):
        assert safe_next(target) == "/"


def test_a_bad_credential_is_refused_with_a_generic_message_and_never_logged(
    dash: Dashboard,
) -> None:
    wrong = new_token()
    with structlog.testing.capture_logs() as logs:
        answer = dash.sign_in(token=wrong)
    assert answer.status_code == 401
    assert 'role="alert"' in answer.text
    assert "Sign-in failed: the credential was not accepted" in answer.text
    assert COOKIE not in answer.headers.get("set-cookie", "")
    assert wrong not in answer.text
    assert PURPOSE in answer.text  # kept in the form for another try
    assert logs == [{"event": "sign_in_refused", "reason": "credential", "log_level": "warning"}]
    assert dash.client.get("/", follow_redirects=False).status_code == 303


def test_a_purpose_that_is_refused_is_a_form_error(dash: Dashboard) -> None:
    for purpose in ("", "   ", "\x07bell"):
        answer = dash.sign_in(purpose=purpose)
        assert answer.status_code == 422
        assert re.search(r'role="alert">Purpose: ', answer.text), answer.text
    assert dash.client.get("/", follow_redirects=False).status_code == 303


def test_revoking_or_reissuing_the_credential_ends_the_session_at_the_next_request(
    signed_in: Dashboard,
) -> None:
    dash = signed_in
    assert dash.client.get("/").status_code == 200
    dash.registry[0] = dash.registry[0].with_revoked("a.khan", "left", NOW, "operator:test")
    gone = dash.client.get("/", follow_redirects=False)
    assert (gone.status_code, gone.headers["location"]) == (303, "/sign-in")
    assert dash.client.get("/export.jsonl").status_code == 401
    # A new credential for the same name does not revive the old session.
    dash.registry[0] = dash.registry[0].with_added(analyst("a.khan", LEE, SCOPE))
    assert dash.client.get("/", follow_redirects=False).status_code == 303


def test_a_session_ends_when_its_time_is_up(signed_in: Dashboard) -> None:
    dash = signed_in
    dash.clock.now = NOW + dt.timedelta(minutes=479)
    assert dash.client.get("/").status_code == 200
    dash.clock.now = NOW + dt.timedelta(minutes=480)
    assert dash.client.get("/", follow_redirects=False).status_code == 303


def test_a_tampered_cookie_or_another_processs_cookie_is_refused(signed_in: Dashboard) -> None:
    dash = signed_in
    value = dash.client.cookies[COOKIE].strip('"')
    payload, mac = value.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["a"] = "someone.else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    other = SessionSigner(new_secret()).seal(
        start_session(dash.registry[0].analysts[0], PURPOSE, NOW, 60, "s" * 22)
    )
    for bad in (f"{forged}.{mac}", f"{payload}.{mac[:-2]}", f"{payload}x.{mac}", other, "junk"):
        dash.client.cookies.clear()
        dash.client.cookies.set(COOKIE, bad)
        assert dash.client.get("/", follow_redirects=False).status_code == 303, bad
        assert dash.client.get("/events/feed").status_code == 401


def test_sign_out_needs_the_sessions_csrf_token_and_clears_the_cookie(
    signed_in: Dashboard,
) -> None:
    dash = signed_in
    page = dash.client.get("/")
    refused = dash.client.post("/sign-out", data={"csrf": "wrong"}, follow_redirects=False)
    assert refused.status_code == 403
    assert dash.client.get("/").status_code == 200
    out = dash.client.post("/sign-out", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/sign-in")
    assert 'liaison_session=""' in out.headers["set-cookie"]
    assert "max-age=0" in out.headers["set-cookie"].lower()
    assert dash.client.get("/", follow_redirects=False).status_code == 303


def test_a_sign_in_without_the_forms_csrf_token_is_refused(dash: Dashboard) -> None:
    dash.client.get("/sign-in")
    for csrf in ({}, {"csrf": ""}, {"csrf": "not-the-token"}):
        answer = dash.client.post(
            "/sign-in", data={"credential": KHAN, "purpose": PURPOSE, **csrf},
            follow_redirects=False,
        )  # fmt: skip
        assert answer.status_code == 403
        assert "This form has expired" in answer.text
    # The token of another browser's form (another nonce) is no good either.
    other = TestClient(dash.client.app, base_url=ORIGIN)
    stolen = csrf_of(other.get("/sign-in"))
    answer = dash.client.post(
        "/sign-in", data={"csrf": stolen, "credential": KHAN, "purpose": PURPOSE},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 403
    assert dash.client.get("/", follow_redirects=False).status_code == 303


def test_a_cross_origin_post_is_refused(signed_in: Dashboard) -> None:
    dash = signed_in
    page = dash.client.get("/")
    for origin in ("http://evil.example", "null", "https://testserver"):
        out = dash.client.post(
            "/sign-out", data={"csrf": csrf_of(page)}, headers={"Origin": origin},
            follow_redirects=False,
        )  # fmt: skip
        assert out.status_code == 403, origin
    forged_site = dash.client.post(
        "/sign-out", data={"csrf": csrf_of(page)},
        headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"}, follow_redirects=False,
    )  # fmt: skip
    assert forged_site.status_code == 403
    assert dash.client.get("/").status_code == 200
    fresh = TestClient(dash.client.app, base_url=ORIGIN)
    form = fresh.get("/sign-in")
    answer = fresh.post(
        "/sign-in",
        data={"csrf": csrf_of(form), "credential": KHAN, "purpose": PURPOSE},
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    same = fresh.post(
        "/sign-in",
        data={"csrf": csrf_of(form), "credential": KHAN, "purpose": PURPOSE},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert same.status_code == 303


# -- the overview --------------------------------------------------------------------------


def test_the_overview_shows_only_the_areas_in_scope_with_their_counts(
    signed_in: Dashboard,
) -> None:
    dash = signed_in
    page = dash.client.get("/")
    assert page.status_code == 200
    shown = tiles(page.text)
    assert list(shown) == list(scoped_areas(SCOPE, NOW.date()))
    assert all(local_authorities()[c].region.name == YORKSHIRE for c in shown)
    assert KENT not in page.text
    assert shown[LEEDS] == ("sev-4", "2", "")  # the 200-day-old one is outside 90 days
    assert shown[BRADFORD] == ("sev-3", "1", "")
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="tile-map" role="img"' in page.text
    assert f'<a href="/area/{LEEDS}">' in page.text
    row = re.search(rf'<tr data-area="{LEEDS}">(.*?)</tr>', page.text, re.S)
    assert row is not None
    assert '<td class="total num" data-value="2">2</td>' in row.group(1)
    assert '<td class="severe num" data-value="1">1</td>' in row.group(1)
    assert re.search(
        r'aria-sort="none"[^>]*><button type="button" data-sort="number">Concerns', page.text
    )
    assert 'aria-live="polite"' in page.text
    assert 'data-stream="/events/overview?window=90d"' in page.text
    (record,) = dash.audit.reads("dashboard.overview")
    assert record.analyst == "a.khan"
    assert record.actor == "analyst:a.khan"
    assert record.purpose == PURPOSE
    assert set(record.event_ids) == {LEEDS_SEVERE.id, LEEDS_MILD.id, BRADFORD_ONE.id}
    assert record.filters == {"window": "90d"}

    year = dash.client.get("/?window=365d&theme=domestic_abuse")
    assert tiles(year.text)[LEEDS] == ("sev-2", "1", "")
    assert tiles(year.text)[BRADFORD] == ("sev-3", "1", "")
    last = dash.audit.reads("dashboard.overview")[-1]
    assert set(last.event_ids) == {LEEDS_MILD.id, BRADFORD_ONE.id}
    assert last.filters == {"window": "365d", "theme": "domestic_abuse"}


def test_the_overview_marks_jtai_considerations_and_refuses_a_theme_outside_scope(
    dash: Dashboard,
) -> None:
    narrow = AnalystScope(areas=(LEEDS,), themes=(Theme.NEGLECT,))
    dash.registry[0] = registry_of(analyst("a.khan", KHAN, narrow))
    considered = consideration(LEEDS)
    dash.add((considered, LIAISON))
    dash.sign_in()
    page = dash.client.get("/")
    assert tiles(page.text) == {LEEDS: ("sev-4", "1", "considered")}  # neglect only
    assert 'class="jtai-considered"' in page.text
    refused = dash.client.get("/?theme=domestic_abuse")
    assert refused.status_code == 403
    assert "outside your scope" in refused.text
    (record,) = dash.audit.refusals()
    assert (record.view, record.reason, record.filters) == (
        "dashboard.overview", "out_of_scope", {"window": "90d", "theme": "domestic_abuse"},
    )  # fmt: skip
    bad = dash.client.get("/?window=2y")
    assert bad.status_code == 400
    assert "the window must be one of 7d, 30d, 90d, 365d" in bad.text


def consideration(
    area: str, theme: Theme = Theme.NEGLECT, days_back: int = 10
) -> JtaiConsiderationRequested:
    start = NOW - dt.timedelta(days=days_back)
    return JtaiConsiderationRequested.model_validate(
        {
            "id": consideration_id(area, theme, start),
            "occurred_at": NOW - dt.timedelta(days=2),
            "area": area,
            "theme": theme.value,
            "window_start": start,
            "window_end": start + dt.timedelta(days=180),
            "trigger": "several_inspectorates",
            "contributing_event_ids": (uuid.uuid4(), uuid.uuid4()),
            "contributing_inspectorates": ("hmicfrs", "ofsted"),
            "rationale": "Concerns from two inspectorates within 180 days.",
        }
    )


def decision(about: JtaiConsiderationRequested, choice: str = "select") -> JtaiDecisionRecorded:
    return JtaiDecisionRecorded.model_validate(
        {
            "id": uuid.uuid4(),
            "source": "cqc",
            "occurred_at": NOW - dt.timedelta(hours=1),
            "consideration_id": about.id,
            "area": about.area,
            "theme": about.theme,
            "decision": choice,
            "reason": "Evidence from two inspectorates in one window.",
        }
    )


def test_the_overview_stream_sends_totals_and_audits_only_what_is_newly_counted(
    signed_in: Dashboard,
) -> None:
    dash = signed_in
    with dash.client.stream("GET", "/events/overview?window=90d") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        first = read_event(lines)
        assert first[0] == "totals"
        totals = {t["code"]: t for t in first[1]}
        assert set(totals) == set(scoped_areas(SCOPE, NOW.date()))
        assert totals[LEEDS]["total"] == 2
        assert totals[LEEDS]["max_severity"] == 4
        connected = dash.audit.reads("dashboard.overview")[-1]
        assert set(connected.event_ids) == {LEEDS_SEVERE.id, LEEDS_MILD.id, BRADFORD_ONE.id}
        assert connected.filters == {"window": "90d", "live": "totals"}
        arrived = concern(area=LEEDS, severity=1)
        dash.add((arrived, OFSTED), (concern(area=KENT), OFSTED))
        second = read_event(lines)
        assert second[0] == "totals"
        assert {t["code"]: t["total"] for t in second[1]}[LEEDS] == 3
        assert dash.audit.reads("dashboard.overview")[-1].event_ids == (arrived.id,)


def test_a_quiet_stream_sends_keepalive_comments(dash: Dashboard) -> None:
    app = create_dashboard(
        hub=dash.hub, audit=dash.audit, registry=lambda: dash.registry[0], clock=dash.clock,
        secret=b"q" * 32, keepalive_s=0.1, poll_s=0.02, stream_limit_s=0.5,
    )  # fmt: skip
    with TestClient(app, base_url=ORIGIN) as client:
        dashboard = Dashboard(client, dash.hub, dash.audit, dash.registry, dash.clock)
        assert dashboard.sign_in().status_code == 303
        last = cursor_of(client)
        body = client.get(f"/events/feed?after={last}").text
    assert body.startswith("retry: 5000\n\n")
    assert body.count(": keepalive\n\n") >= 2
    assert sse_events(body) == []


def read_event(lines: Iterator[str]) -> tuple[str, Any]:
    """The next event of a stream (keep-alives and retry lines skipped)."""
    name, data = "", None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = json.loads(line.removeprefix("data: "))
        elif not line and name:
            return name, data
    pytest.fail("the stream ended")


# -- the live feed -------------------------------------------------------------------------


def feed_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-event-id="([0-9a-f-]{36})">', page)


def test_the_feed_filters_and_shows_rows_in_scope_newest_first(signed_in: Dashboard) -> None:
    dash = signed_in
    page = dash.client.get("/feed")
    assert page.status_code == 200
    assert feed_ids(page.text) == [
        str(e.id) for e in (OLD, BRADFORD_ONE, LEEDS_MILD, LEEDS_SEVERE)
    ]  # arrival order, newest first; never Kent, never the forged one
    assert "Kent" not in page.text
    assert f'<a href="/event/{LEEDS_SEVERE.id}">Cause of concern</a>' in page.text
    assert '<a id="export" href="/export.jsonl?"' in page.text
    leeds = dash.client.get("/feed?area=leeds&severity=3")
    assert feed_ids(leeds.text) == [str(LEEDS_SEVERE.id)]
    assert 'data-stream="/events/feed?area=leeds&amp;severity=3&amp;after=' in leeds.text
    assert '<a id="export" href="/export.jsonl?area=leeds&amp;severity=3"' in leeds.text
    record = dash.audit.reads("dashboard.feed")[-1]
    assert record.event_ids == (LEEDS_SEVERE.id,)
    assert record.filters == {"area": LEEDS, "severity": ">=3"}
    themed = dash.client.get("/feed?theme=domestic_abuse&source=hmicfrs&region=" + YORKSHIRE)
    assert feed_ids(themed.text) == [str(BRADFORD_ONE.id)]


def test_a_bad_feed_filter_is_one_line_with_suggestions_and_nothing_else(
    signed_in: Dashboard,
) -> None:
    dash = signed_in
    before = len(dash.audit.records)
    page = dash.client.get("/feed?area=Leedz")
    assert page.status_code == 400
    error = re.search(r'<p id="feed-error" class="alert" role="alert">(.*?)</p>', page.text)
    assert error is not None
    assert "is not an upper-tier local authority" in error.group(1)
    assert "nearest: Leeds" in error.group(1)
    assert feed_ids(page.text) == []
    retired = dash.client.get("/feed?area=E10000023")  # North Yorkshire's county code
    assert retired.status_code == 400
    assert "E06000065" in retired.text
    theme = dash.client.get("/feed?theme=neglct")
    assert "nearest: neglect" in theme.text
    assert len(dash.audit.records) == before  # nothing shown, nothing to record


def test_a_feed_outside_scope_is_refused_and_audited(signed_in: Dashboard) -> None:
    dash = signed_in
    for asked, filters in (
        ("area=Kent", {"area": KENT}),
        ("region=London", {"region": "London"}),
    ):
        page = dash.client.get(f"/feed?{asked}")
        assert page.status_code == 403
        assert re.search(r'role="alert">[^<]*outside your scope', page.text)
        assert feed_ids(page.text) == []
        record = dash.audit.refusals()[-1]
        assert (record.view, record.analyst, record.purpose, record.reason, record.filters) == (
            "dashboard.feed", "a.khan", PURPOSE, "out_of_scope", filters,
        )  # fmt: skip
    stream = dash.client.get("/events/feed?area=Kent")
    assert stream.status_code == 403
    assert dash.audit.refusals()[-1].view == "dashboard.feed"


def test_the_feed_stream_sends_new_rows_after_auditing_them(signed_in: Dashboard) -> None:
    dash = signed_in
    last = cursor_of(dash.client, "area=Leeds")
    with dash.client.stream("GET", f"/events/feed?area=Leeds&after={last}") as stream:
        lines = stream.iter_lines()
        arrived = concern(area=LEEDS, severity=3, summary="A new finding.\nOn two lines.")
        dash.add((concern(area=BRADFORD), OFSTED), (arrived, OFSTED))
        name, rows = read_event(lines)
    assert name == "items"
    assert [r["id"] for r in rows] == [str(arrived.id)]
    assert rows[0]["area_name"] == "Leeds"
    assert rows[0]["summary"] == "A new finding. On two lines."
    assert rows[0]["severity"] == "3"
    connected, batch = dash.audit.reads("dashboard.feed")[-2:]
    assert connected.event_ids == ()  # the connection itself, before anything new
    assert batch.event_ids == (arrived.id,)
    assert batch.filters == {"area": LEEDS, "live": "items"}


def test_a_reconnecting_stream_resumes_after_the_last_event_id(signed_in: Dashboard) -> None:
    dash = signed_in
    seen = cursor_of(dash.client)
    arrived = concern(area=LEEDS)
    dash.add((arrived, OFSTED))
    with dash.client.stream("GET", "/events/feed", headers={"Last-Event-ID": seen}) as stream:
        name, rows = read_event(stream.iter_lines())
    assert (name, [r["id"] for r in rows]) == ("items", [str(arrived.id)])


def test_a_stream_ends_when_the_credential_is_revoked(signed_in: Dashboard) -> None:
    dash = signed_in
    with dash.client.stream("GET", f"/events/feed?after={cursor_of(dash.client)}") as stream:
        lines = stream.iter_lines()
        dash.registry[0] = dash.registry[0].with_revoked("a.khan", "left", NOW, "operator:test")
        dash.add((concern(area=LEEDS), OFSTED))
        name, _ = read_event(lines)
    assert name == "signed-out"
    streamed = [r for r in dash.audit.reads("dashboard.feed") if "live" in r.filters]
    assert [r.event_ids for r in streamed] == [()]


def test_a_stream_whose_audit_fails_shows_nothing(signed_in: Dashboard) -> None:
    dash = signed_in
    with dash.client.stream("GET", f"/events/feed?after={cursor_of(dash.client)}") as stream:
        dash.audit.fail = True
        arrived = concern(area=LEEDS)
        dash.add((arrived, OFSTED))
        body = "".join(stream.iter_text())
    assert [name for name, _ in sse_events(body)] == ["stopped"]
    assert str(arrived.id) not in body
    # A connection whose record cannot be written is refused before anything is sent.
    for path in ("/events/feed", "/events/overview"):
        refused = dash.client.get(path)
        assert refused.status_code == 503
        assert str(LEEDS_SEVERE.id) not in refused.text
        assert "text/event-stream" not in refused.headers["content-type"]


def test_the_export_is_json_lines_of_the_rows_shown_and_audited(signed_in: Dashboard) -> None:
    dash = signed_in
    answer = dash.client.get("/export.jsonl?area=Leeds")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith('attachment; filename="liaison-feed-')
    rows = [json.loads(line) for line in answer.text.splitlines()]
    assert [r["id"] for r in rows] == [str(OLD.id), str(LEEDS_MILD.id), str(LEEDS_SEVERE.id)]
    assert rows[-1]["summary"] == LEEDS_SEVERE.summary
    (record,) = dash.audit.reads("dashboard.export")
    assert record.event_ids == (OLD.id, LEEDS_MILD.id, LEEDS_SEVERE.id)
    assert record.filters == {"area": LEEDS}
    assert dash.client.get("/export.jsonl?area=Kent").status_code == 403
    assert dash.client.get("/export.jsonl?area=Leedz").status_code == 400


# -- an area and an event ------------------------------------------------------------------


def test_an_area_page_shows_its_timeline_outcomes_recommendations_and_chart(
    signed_in: Dashboard,
) -> None:
    dash = signed_in
    made = recommendation(area=LEEDS)
    reviewed = review(area=LEEDS, recommendation_id=made.id)
    answered = outcome_recorded(area=LEEDS, finding_id=LEEDS_SEVERE.id)
    dash.add((made, HMICFRS), (reviewed, HMICFRS), (answered, HMICFRS))
    page = dash.client.get("/area/Leeds", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, f"/area/{LEEDS}")
    page = dash.client.get(f"/area/{LEEDS}")
    assert page.status_code == 200
    assert re.search(r"<h1>Leeds <span class=\"code\">E08000035</span></h1>", page.text)
    assert YORKSHIRE in page.text
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="theme-chart"' in page.text
    assert '<table class="chart-data">' in page.text
    for section in ("timeline", "outcomes", "jtai", "recommendations"):
        assert f'<section id="{section}"' in page.text
    timeline = page.text.split('<section id="timeline"')[1].split("</section>")[0]
    assert re.findall(r'<li data-event-id="([0-9a-f-]{36})">', timeline) == [
        str(LEEDS_SEVERE.id), str(LEEDS_MILD.id), str(OLD.id),
    ]  # fmt: skip
    assert f'data-event-id="{answered.id}"' in page.text
    recs = page.text.split('<section id="recommendations"')[1]
    assert f'data-event-id="{made.id}"' in recs
    assert f'data-event-id="{reviewed.id}"' in recs
    (record,) = dash.audit.reads("dashboard.area")
    assert set(record.event_ids) == {
        LEEDS_SEVERE.id, LEEDS_MILD.id, OLD.id, made.id, reviewed.id, answered.id,
    }  # fmt: skip
    assert record.filters == {"area": LEEDS, "chart": "week"}
    assert dash.client.get(f"/area/{LEEDS}?by=month").status_code == 200


def test_an_area_outside_scope_is_refused_and_audited(signed_in: Dashboard) -> None:
    dash = signed_in
    page = dash.client.get(f"/area/{KENT}")
    assert page.status_code == 403
    assert re.search(r'role="alert">[^<]*outside your scope', page.text)
    assert KENT_ONE.summary not in page.text
    (record,) = dash.audit.refusals()
    assert (record.view, record.analyst, record.purpose, record.filters["area"]) == (
        "dashboard.area", "a.khan", PURPOSE, KENT,
    )  # fmt: skip
    assert dash.audit.reads("dashboard.area") == []
    unknown = dash.client.get("/area/Leedz")
    assert unknown.status_code == 400
    assert "nearest: Leeds" in unknown.text


def test_an_event_shows_the_servers_verification_and_the_envelope(signed_in: Dashboard) -> None:
    dash = signed_in
    page = dash.client.get(f"/event/{LEEDS_SEVERE.id}")
    assert page.status_code == 200
    verified = re.search(r'<p id="verified" class="verified">(.*?)</p>', page.text, re.S)
    assert verified is not None
    assert "Verified" in verified.group(1)
    assert OFSTED.keyid in verified.group(1)
    assert "2026-11-22 11:55 UTC" in verified.group(1)  # judged at the broker's append time
    envelope = re.search(r'<pre id="envelope"[^>]*>(.*?)</pre>', page.text, re.S)
    assert envelope is not None
    assert "payloadType" in envelope.group(1)
    assert LEEDS_SEVERE.summary in page.text
    (record,) = dash.audit.reads("dashboard.event")
    assert record.event_ids == (LEEDS_SEVERE.id,)
    assert dash.client.get(f"/event/{uuid.uuid4()}").status_code == 404
    assert dash.client.get("/event/not-a-uuid").status_code == 404
    assert dash.client.get(f"/event/{FORGED.id}").status_code == 404  # never verified
    kent = dash.client.get(f"/event/{KENT_ONE.id}")
    assert kent.status_code == 403
    assert KENT_ONE.summary not in kent.text
    assert dash.audit.refusals()[-1].view == "dashboard.event"


# -- the audit log first -------------------------------------------------------------------


def test_when_the_audit_log_takes_nothing_nothing_is_shown(signed_in: Dashboard) -> None:
    dash = signed_in
    dash.audit.fail = True
    for path in (
        "/", "/feed", f"/area/{LEEDS}", f"/event/{LEEDS_SEVERE.id}", "/export.jsonl",
        f"/area/{KENT}",
    ):  # fmt: skip
        page = dash.client.get(path)
        assert page.status_code == 503, path
        assert "could not be recorded in the audit log" in page.text
        assert "Leeds" not in page.text
        assert str(LEEDS_SEVERE.id) not in page.text
        assert LEEDS_SEVERE.summary not in page.text


# -- headers -------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(signed_in: Dashboard) -> None:
    dash = signed_in
    for path in ("/sign-in", "/", "/feed", "/static/dashboard.js", "/static/dashboard.css",
                 "/nothing-here", "/export.jsonl"):  # fmt: skip
        answer = dash.client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (path, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert csp == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    page = dash.client.get("/").text
    assert '<html lang="en">' in page
    assert '<a class="skip-link" href="#main">' in page
    assert '<main id="main"' in page
    assert "<script>" not in page
    assert " style=" not in page
    assert '<script src="/static/dashboard.js" defer></script>' in page


# -- the security review's findings ---------------------------------------------------------


def jtai_of(totals: list[dict[str, Any]]) -> dict[str, str]:
    return {t["code"]: t["jtai"] for t in totals}


def test_jtai_marks_never_tell_of_considerations_outside_the_scope(dash: Dashboard) -> None:
    narrow = AnalystScope(areas=(LEEDS,), themes=(Theme.NEGLECT,))
    dash.registry[0] = registry_of(analyst("a.khan", KHAN, narrow))
    declined = consideration(LEEDS, days_back=40)  # in scope, but no longer open
    abuse_open = consideration(LEEDS, Theme.DOMESTIC_ABUSE, days_back=20)
    abuse_chosen = consideration(LEEDS, Theme.DOMESTIC_ABUSE, days_back=30)
    no, chosen = decision(declined, "decline"), decision(abuse_chosen)
    dash.add(
        (declined, LIAISON), (no, CQC), (abuse_open, LIAISON), (abuse_chosen, LIAISON),
        (chosen, CQC),
    )  # fmt: skip
    hidden = {abuse_open.id, abuse_chosen.id, chosen.id}
    dash.sign_in()
    page = dash.client.get("/")
    assert tiles(page.text) == {LEEDS: ("sev-4", "1", "")}
    assert not hidden & set(dash.audit.reads("dashboard.overview")[-1].event_ids)
    with dash.client.stream("GET", "/events/overview") as stream:
        lines = stream.iter_lines()
        assert jtai_of(read_event(lines)[1]) == {LEEDS: ""}
        assert not hidden & set(dash.audit.reads("dashboard.overview")[-1].event_ids)
        considered = consideration(LEEDS, days_back=5)
        dash.add((considered, LIAISON))
        assert jtai_of(read_event(lines)[1]) == {LEEDS: "considered"}
        assert dash.audit.reads("dashboard.overview")[-1].event_ids == (considered.id,)
        selected = decision(considered)
        dash.add((selected, CQC))
        assert jtai_of(read_event(lines)[1]) == {LEEDS: "selected"}
        assert dash.audit.reads("dashboard.overview")[-1].event_ids == (selected.id,)
    page = dash.client.get("/")
    assert tiles(page.text) == {LEEDS: ("sev-4", "1", "selected")}
    record = dash.audit.reads("dashboard.overview")[-1]
    assert {considered.id, selected.id} <= set(record.event_ids)
    assert not hidden & set(record.event_ids)


def test_an_overview_of_one_theme_marks_only_that_themes_considerations(
    signed_in: Dashboard,
) -> None:
    dash = signed_in
    abuse = consideration(BRADFORD, Theme.DOMESTIC_ABUSE)
    dash.add((abuse, LIAISON))
    assert tiles(dash.client.get("/").text)[BRADFORD][2] == "considered"
    assert abuse.id in dash.audit.reads("dashboard.overview")[-1].event_ids
    assert tiles(dash.client.get("/?theme=neglect").text)[BRADFORD][2] == ""
    assert abuse.id not in dash.audit.reads("dashboard.overview")[-1].event_ids
    themed = dash.client.get("/?theme=domestic_abuse")
    assert tiles(themed.text)[BRADFORD][2] == "considered"


def test_crafted_cursors_are_refused_not_crashed(signed_in: Dashboard) -> None:
    dash = signed_in
    seq = str(dash.hub.view().last_seq)
    for bad in ("²", "٣", "9" * 5000, "-1", "1e3", "0", seq, "x" * 40, "a.b", "%00"):
        answer = dash.client.get("/events/feed", params={"after": bad})
        assert answer.status_code == 400, bad
        assert "text/event-stream" not in answer.headers["content-type"]
        answer = dash.client.get("/events/feed", headers={b"last-event-id": bad.encode()})
        assert answer.status_code == 400, bad
    assert dash.audit.reads("dashboard.feed") == []


def test_a_crafted_content_length_is_refused(dash: Dashboard) -> None:
    form = dash.client.get("/sign-in")
    for length in ("²".encode(), b"9" * 5000, b"-1"):
        answer = dash.client.post(
            "/sign-in", content=f"csrf={csrf_of(form)}".encode(),
            headers={b"content-type": b"application/x-www-form-urlencoded",
                     b"content-length": length},
        )  # fmt: skip
        assert answer.status_code in {400, 413}, length


def test_a_form_with_too_many_fields_is_a_plain_refusal(dash: Dashboard) -> None:
    form = dash.client.get("/sign-in")
    fields = {"csrf": csrf_of(form), "credential": KHAN, "purpose": PURPOSE}
    fields.update({f"extra{n}": "x" for n in range(25)})
    answer = dash.client.post("/sign-in", data=fields, follow_redirects=False)
    assert answer.status_code == 400
    assert answer.text == "the form has too many fields"
    assert dash.client.get("/", follow_redirects=False).status_code == 303


def test_oversized_query_strings_and_paths_are_refused_before_they_are_read(
    signed_in: Dashboard,
) -> None:
    dash = signed_in
    many = "&".join(f"p{n}=1" for n in range(51))
    long_value = "a" * 1001
    for path in (
        f"/feed?{many}", f"/sign-in?{many}", f"/events/feed?{many}", f"/?{many}",
        f"/feed?area={long_value}", f"/?theme={long_value}", f"/export.jsonl?area={long_value}",
        "/feed?area=" + ",".join(["Leeds"] * 200), f"/sign-in?next=/{long_value}",
        "/feed?region=" + "%C3%A9" * 1001, "/feed?" + "&" * 20_000,
    ):  # fmt: skip
        answer = dash.client.get(path, follow_redirects=False)
        assert answer.status_code == 400, path[:60]
        assert answer.headers["content-type"].startswith("text/plain"), path[:60]
        assert "Leeds" not in answer.text
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value
    assert dash.client.get(f"/area/{long_value}").status_code == 400
    assert dash.audit.records == []
    # The caps leave every real filter alone.
    fifty = "&".join(f"p{n}=1" for n in range(45))
    assert dash.client.get(f"/feed?area=Leeds&{fifty}").status_code == 200
    assert dash.client.get("/feed?area=" + "Leeds," * 100).status_code == 200


def test_the_feed_cursor_is_opaque_and_bound_to_its_session(signed_in: Dashboard) -> None:
    dash = signed_in
    page = dash.client.get("/feed?area=Leeds")
    assert f'data-after="{dash.hub.view().last_seq}"' not in page.text
    after = cursor_of(dash.client, "area=Leeds")
    assert not after.isdigit()
    assert cursor_of(dash.client, "area=Leeds") != after  # nothing to compare across pages
    with dash.client.stream("GET", f"/events/feed?area=Leeds&after={after}") as stream:
        arrived = concern(area=LEEDS)
        dash.add((concern(area=KENT), OFSTED), (arrived, OFSTED))
        lines: list[str] = []
        for line in stream.iter_lines():
            lines.append(line)
            if line.startswith("data: "):
                break
    (given,) = [line.removeprefix("id: ") for line in lines if line.startswith("id: ")]
    assert not given.isdigit()
    (shown,) = json.loads(lines[-1].removeprefix("data: "))
    assert shown["id"] == str(arrived.id)
    assert "seq" not in shown
    # The id resumes this session's stream after what it sent.
    later = concern(area=LEEDS)
    dash.add((later, OFSTED))
    with dash.client.stream(
        "GET", "/events/feed?area=Leeds", headers={"Last-Event-ID": given}
    ) as stream:
        name, rows = read_event(stream.iter_lines())
    assert (name, [r["id"] for r in rows]) == ("items", [str(later.id)])
    # Another session (the same analyst's, even) cannot use it, nor a changed one.
    other = Dashboard(
        TestClient(dash.client.app, base_url=ORIGIN), dash.hub, dash.audit, dash.registry,
        dash.clock,
    )  # fmt: skip
    assert other.sign_in().status_code == 303
    tampered = given[:-1] + ("A" if given[-1] != "A" else "B")
    for bad in (given, after):
        assert other.client.get(f"/events/feed?after={bad}").status_code == 400
        assert other.client.get("/events/feed", headers={"Last-Event-ID": bad}).status_code == 400
    assert dash.client.get(f"/events/feed?after={tampered}").status_code == 400


SIGNED_IN_PATHS = (
    "/", "/feed", "/export.jsonl", "/events/feed", "/events/overview", f"/area/{LEEDS}",
    f"/event/{LEEDS_SEVERE.id}",
)  # fmt: skip


def test_requests_from_another_site_are_refused_and_nothing_is_read(
    signed_in: Dashboard,
) -> None:
    dash = signed_in
    for site in ("same-site", "cross-site", "Same-Site"):
        for path in SIGNED_IN_PATHS:
            with structlog.testing.capture_logs() as logs:
                answer = dash.client.get(path, headers={"Sec-Fetch-Site": site})
            assert answer.status_code == 403, (site, path)
            assert "Leeds" not in answer.text
            assert str(LEEDS_SEVERE.id) not in answer.text
            assert "text/event-stream" not in answer.headers["content-type"]
            assert logs == [
                {"event": "request_refused", "reason": "another_site", "site": site.lower(),
                 "path": path, "log_level": "warning"},
            ]  # fmt: skip
    assert dash.audit.records == []
    for site in ("same-origin", "none"):
        answer = dash.client.get("/export.jsonl", headers={"Sec-Fetch-Site": site})
        assert answer.status_code == 200, site
    assert len(dash.audit.reads("dashboard.export")) == 2


def test_only_the_configured_host_names_are_answered(dash: Dashboard) -> None:
    app = create_dashboard(
        hub=dash.hub, audit=dash.audit, registry=lambda: dash.registry[0], clock=dash.clock,
        secret=b"h" * 32, allowed_hosts=allowed_hosts("127.0.0.1"),
    )  # fmt: skip
    with TestClient(app, base_url="http://127.0.0.1:39081") as client:
        assert client.get("/sign-in").status_code == 200
        for host in ("localhost:39081", "127.0.0.1", "[::1]:39081"):
            assert client.get("/sign-in", headers={"Host": host}).status_code == 200, host
        for host in ("rebound.example:39081", "127.0.0.1.nip.io", "", "127.0.0.2"):
            answer = client.get("/healthz", headers={"Host": host})
            assert answer.status_code == 400, host
            assert answer.headers["cache-control"] == "no-store"


def test_the_dashboards_host_names_follow_where_it_listens() -> None:
    assert allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts("localhost") == ["localhost", "127.0.0.1", "[::1]"]
    assert allowed_hosts("::1") == ["[::1]", "localhost", "127.0.0.1"]
    assert allowed_hosts("10.1.2.3") == ["10.1.2.3"]
    assert allowed_hosts("Dash.Example.org") == ["dash.example.org"]
    assert allowed_hosts("fd00::5") == ["[fd00::5]"]
    wildcard = allowed_hosts("0.0.0.0")  # noqa: S104 - the address asked, not bound here
    assert wildcard[-3:] == ["localhost", "127.0.0.1", "[::1]"]
    assert len(wildcard) > 3  # the machine's own names too


def test_a_dashboard_listening_beyond_this_machine_warns_once_that_it_is_plain_http() -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        with structlog.testing.capture_logs() as logs:
            warn_if_exposed(host)
        assert logs == [], host
    with structlog.testing.capture_logs() as logs:
        warn_if_exposed("0.0.0.0")  # noqa: S104 - the address asked, not bound here
    (warning,) = logs
    assert (warning["event"], warning["log_level"], warning["host"]) == (
        "dashboard_plain_http", "warning", "0.0.0.0",  # noqa: S104
    )  # fmt: skip
    assert "TLS" in warning["detail"]


def test_sign_out_ends_the_session_for_every_copy_of_its_cookie(signed_in: Dashboard) -> None:
    dash = signed_in
    copied = dash.client.cookies[COOKIE]
    thief = TestClient(dash.client.app, base_url=ORIGIN)
    thief.cookies.set(COOKIE, copied)
    assert thief.get("/").status_code == 200
    page = dash.client.get("/")
    after = cursor_of(thief)
    with thief.stream("GET", f"/events/feed?after={after}") as stream:
        lines = stream.iter_lines()
        out = dash.client.post("/sign-out", data={"csrf": csrf_of(page)}, follow_redirects=False)
        assert out.status_code == 303
        arrived = concern(area=LEEDS)
        dash.add((arrived, OFSTED))
        name, _ = read_event(lines)
    assert name == "signed-out"
    assert arrived.id not in {i for r in dash.audit.reads("dashboard.feed") for i in r.event_ids}
    for path in SIGNED_IN_PATHS:
        answer = thief.get(path, follow_redirects=False)
        assert answer.status_code in {303, 401}, path
    dash.clock.now = NOW + dt.timedelta(minutes=481)  # long gone: forgotten, still refused
    assert thief.get("/", follow_redirects=False).status_code == 303
    assert dash.sign_in().status_code == 303  # signing in again starts a new session
    assert dash.client.get("/").status_code == 200


# -- sessions, pure ------------------------------------------------------------------------

SIGNER = SessionSigner(b"s" * 32)
SESSION = Session(
    analyst="a.khan",
    credential_sha256=token_sha256(KHAN),
    purpose=PURPOSE,
    issued_at=NOW,
    expires_at=NOW + dt.timedelta(minutes=30),
    session_id="0123456789abcdefghijkl",
)


def test_a_sealed_session_opens_while_it_is_live_and_not_after() -> None:
    sealed = SIGNER.seal(SESSION)
    assert SIGNER.open(sealed, NOW) == SESSION
    assert SIGNER.open(sealed, NOW + dt.timedelta(minutes=30)) is None
    assert SIGNER.open(sealed, NOW - dt.timedelta(seconds=1)) is None
    assert SessionSigner(b"t" * 32).open(sealed, NOW) is None
    with pytest.raises(ValueError, match="32 bytes"):
        SessionSigner(b"short")


@given(st.integers(min_value=0), st.characters(codec="ascii"))
def test_any_change_to_a_sealed_session_is_refused(where: int, char: str) -> None:
    sealed = SIGNER.seal(SESSION)
    index = where % len(sealed)
    changed = sealed[:index] + char + sealed[index + 1 :]
    if changed != sealed:
        assert SIGNER.open(changed, NOW) is None


def test_csrf_tokens_are_bound_to_their_session_or_nonce() -> None:
    token = SIGNER.csrf_token("session-one")
    assert SIGNER.csrf_ok("session-one", token)
    assert not SIGNER.csrf_ok("session-two", token)
    assert not SIGNER.csrf_ok(None, token)
    assert not SIGNER.csrf_ok("session-one", None)
    assert not SessionSigner(b"t" * 32).csrf_ok("session-one", token)


def test_origins_must_be_the_dashboards_own() -> None:
    assert same_origin(None, ORIGIN)
    assert same_origin("http://testserver", ORIGIN)
    assert same_origin("http://testserver", ORIGIN, "same-origin")
    assert not same_origin("null", ORIGIN)
    assert not same_origin("http://testserver.evil.example", ORIGIN)
    # Under Referrer-Policy: no-referrer, Chromium's own form posts say Origin: null.
    assert same_origin("null", ORIGIN, "same-origin")
    for site in ("cross-site", "same-site", "none"):
        assert not same_origin("null", ORIGIN, site)
        assert not same_origin("http://testserver", ORIGIN, site)
        assert not same_origin(None, ORIGIN, site)


def test_a_feed_cursor_opens_only_under_its_session_and_secret() -> None:
    token = SIGNER.cursor("session-one", 42)
    assert SIGNER.cursor_seq("session-one", token) == 42
    assert SIGNER.cursor("session-one", 42) != token  # sealed afresh each time
    assert SIGNER.cursor_seq("session-two", token) is None
    assert SessionSigner(b"t" * 32).cursor_seq("session-one", token) is None
    assert not token.isdigit()
    for bad in ("", "42", "²", "x" * 5000, token + "A", token[:-1], "+" + token[1:]):
        assert SIGNER.cursor_seq("session-one", bad) is None, bad
    assert SIGNER.cursor_seq("session-one", SIGNER.cursor("session-one", 0)) == 0
    with pytest.raises(ValueError, match="cursor"):
        SIGNER.cursor("session-one", -1)


@given(st.integers(min_value=0, max_value=2**63 - 1), st.text(max_size=80))
def test_any_feed_cursor_opens_to_its_number_and_nothing_else_opens(seq: int, junk: str) -> None:
    assert SIGNER.cursor_seq("session-one", SIGNER.cursor("session-one", seq)) == seq
    assert SIGNER.cursor_seq("session-one", junk) is None
