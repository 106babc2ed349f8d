"""The reader service's HTTP API on a fake feed and audit log, and its client."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from schemas.audit import AnalystScope, FeedRead, FeedRefused
from schemas.errors import BrokerError
from schemas.events import Theme
from schemas.inspectorates import Inspectorate
from schemas.reference import local_authorities
from schemas.signed import FEED_TYPES, open_signed
from services.reader.analysts import Analyst, Registry, new_token, token_sha256
from services.reader.app import MAX_BODY_BYTES, MAX_LIMIT, create_app
from services.reader.client import ReaderError, check_token, read_feed
from services.replay import Filters, Replay
from tests.factories import NOW, concern, key_for, sealed_inbound, trust_of

LEEDS, KENT, BRADFORD = "E08000035", "E10000016", "E08000032"
YORKSHIRE = "Yorkshire and The Humber"
OFSTED = key_for(Inspectorate.OFSTED.value)
TRUST = trust_of(OFSTED)


@dataclass
class FakeFeed:
    """The feed seam: every event given, filtered as Kafka's replay filters them."""

    events: list[tuple[str, str]] = field(default_factory=list)
    reads: list[Filters] = field(default_factory=list)
    fail: bool = False

    def replay(self) -> Replay:
        found = Replay()
        for i, (area, theme) in enumerate(self.events):
            record = sealed_inbound(
                concern(area=area, theme=theme), OFSTED, appended_at=NOW + dt.timedelta(seconds=i)
            )
            found.verified.append((record, open_signed(record, TRUST, NOW, FEED_TYPES)))
        return found

    async def read(self, filters: Filters, now: dt.datetime) -> Replay:
        del now
        self.reads.append(filters)
        if self.fail:
            raise BrokerError("the broker is away")
        found = self.replay()
        found.verified = [(r, o) for r, o in found.verified if filters.admits(o)]
        return found


@dataclass
class FakeAudit:
    records: list[FeedRead | FeedRefused] = field(default_factory=list)
    fail: bool = False

    async def write(self, record: FeedRead | FeedRefused) -> None:
        if self.fail:
            raise BrokerError("the broker is away")
        self.records.append(record)


KHAN = new_token()
REVOKED = new_token()


def analyst(name: str, token: str, scope: AnalystScope) -> Analyst:
    return Analyst(
        name=name, scope=scope, credential_sha256=token_sha256(token), added_at=NOW,
        added_by="operator:test",
    )  # fmt: skip


REGISTRY = (
    Registry()
    .with_added(analyst("a.khan", KHAN, AnalystScope(regions=(YORKSHIRE,), themes=tuple(Theme))))
    .with_added(analyst("c.old", REVOKED, AnalystScope(areas=(KENT,), themes=tuple(Theme))))
    .with_revoked("c.old", "left", NOW, "operator:test")
)


@dataclass
class Service:
    client: TestClient
    feed: FakeFeed
    audit: FakeAudit

    def read(self, body: dict[str, Any], token: str | None = KHAN) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.client.post("/v1/feed/read", json=body, headers=headers)


@pytest.fixture
def service() -> Iterator[Service]:
    feed = FakeFeed([(LEEDS, "neglect"), (KENT, "neglect"), (BRADFORD, "domestic_abuse")])
    audit = FakeAudit()
    app = create_app(feed=feed, audit=audit, registry=lambda: REGISTRY, clock=lambda: NOW)
    with TestClient(app) as client:
        yield Service(client, feed, audit)


def ids(response: httpx2.Response) -> list[str]:
    return [event["area"] for event in response.json()["events"]]


def test_a_read_returns_only_events_in_scope_and_is_audited_by_the_service(
    service: Service,
) -> None:
    response = service.read({"purpose": "JTAI shortlist"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["analyst"] == "a.khan"
    assert ids(response) == [LEEDS, BRADFORD]
    assert body["returned"] == 2
    assert body["truncated"] is False
    assert "envelopes" not in body
    (record,) = service.audit.records
    assert isinstance(record, FeedRead)
    assert record.actor == "analyst:a.khan"
    assert record.analyst == "a.khan"
    assert record.purpose == "JTAI shortlist"
    assert [str(i) for i in record.event_ids] == [e["id"] for e in body["events"]]
    assert record.returned == 2
    assert record.filters == {}


def test_a_read_of_an_area_in_scope_with_envelopes(service: Service) -> None:
    response = service.read(
        {"purpose": "JTAI shortlist", "area": LEEDS, "envelopes": True, "since": "2026-11-01"}
    )
    assert response.status_code == 200, response.text
    assert ids(response) == [LEEDS]
    (envelope,) = response.json()["envelopes"]
    assert set(json.loads(envelope)) == {"payload", "payloadType", "signatures"}
    assert service.feed.reads[-1].area == LEEDS
    assert service.feed.reads[-1].since == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    (record,) = service.audit.records
    assert record.filters == {"area": LEEDS, "since": "2026-11-01T00:00:00+00:00"}


def test_an_area_outside_scope_is_refused_and_audited_and_the_feed_is_not_read(
    service: Service,
) -> None:
    response = service.read({"purpose": "JTAI shortlist", "area": KENT})
    assert response.status_code == 403
    assert response.json()["reason"] == "out_of_scope"
    assert response.json()["error"].startswith("area E10000016 (Kent, South East) is outside")
    assert "events" not in response.json()
    assert service.feed.reads == []
    (record,) = service.audit.records
    assert isinstance(record, FeedRefused)
    assert (record.actor, record.reason, record.filters) == (
        "analyst:a.khan",
        "out_of_scope",
        {"area": KENT},
    )
    assert record.event_ids == ()


def test_a_theme_outside_scope_is_refused() -> None:
    narrow = Registry().with_added(
        analyst("a.khan", KHAN, AnalystScope(regions=(YORKSHIRE,), themes=(Theme.NEGLECT,)))
    )
    audit = FakeAudit()
    app = create_app(feed=FakeFeed(), audit=audit, registry=lambda: narrow, clock=lambda: NOW)
    with TestClient(app) as client:
        response = client.post(
            "/v1/feed/read",
            json={"purpose": "JTAI shortlist", "theme": "domestic_abuse"},
            headers={"Authorization": f"Bearer {KHAN}"},
        )
    assert response.status_code == 403
    assert response.json()["error"].startswith("theme domestic_abuse is outside your scope")
    assert [r.action for r in audit.records] == ["feed.refused"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Bearer {new_token()}"},
        {"Authorization": f"Bearer {REVOKED}"},
        {"Authorization": f"Basic {KHAN}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {token_sha256(KHAN)}"},
    ],
)
def test_missing_unknown_or_revoked_credentials_get_401_and_nothing_happens(
    service: Service, headers: dict[str, str]
) -> None:
    response = service.client.post(
        "/v1/feed/read", json={"purpose": "JTAI shortlist"}, headers=headers
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "events" not in response.json()
    assert service.feed.reads == []
    assert service.audit.records == []
    assert service.client.get("/v1/me", headers=headers).status_code == 401


def test_me_says_who_the_credential_is_and_its_scope(service: Service) -> None:
    response = service.client.get("/v1/me", headers={"Authorization": f"Bearer {KHAN}"})
    assert response.json() == {
        "analyst": "a.khan",
        "scope": {"areas": [], "regions": [YORKSHIRE], "themes": [t.value for t in Theme]},
    }
    assert service.client.get("/healthz").json() == {"status": "ok"}


def test_a_self_declared_name_is_not_an_identity(service: Service) -> None:
    response = service.read({"purpose": "JTAI shortlist", "analyst": "test"})
    assert response.status_code == 403
    assert response.json()["reason"] == "not_the_credential"
    (record,) = service.audit.records
    assert (record.actor, record.action) == ("analyst:a.khan", "feed.refused")
    # Naming oneself is allowed (older scripts pass --analyst).
    assert service.read({"purpose": "JTAI shortlist", "analyst": "a.khan"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 400, "fields: purpose"),
        ({"purpose": "x", "limit": MAX_LIMIT + 1}, 400, "fields: limit"),
        ({"purpose": "x", "limit": "5"}, 400, "fields: limit"),
        ({"purpose": "x", "extra": 1}, 400, "fields: extra"),
        ({"purpose": "  "}, 422, "purpose must say why"),
        ({"purpose": "Check NHS number 943 476 5919"}, 422, "rule nhs_number"),
        ({"purpose": "x", "area": "Leeds"}, 422, "area must be a local authority's GSS code"),
        ({"purpose": "x", "theme": "NEGLECT"}, 422, "theme must be one of"),
        ({"purpose": "x", "since": "yesterday"}, 422, "since must be an ISO 8601"),
        ({"purpose": "x", "analyst": "a khan"}, 422, "analyst id must be"),
    ],
)
def test_bad_requests_are_refused_without_reading_or_echoing(
    service: Service, body: dict[str, Any], status: int, words: str
) -> None:
    response = service.read(body)
    assert response.status_code == status
    assert words in response.json()["error"]
    assert "943" not in response.text
    assert "Leeds" not in response.text
    assert service.feed.reads == []
    assert service.audit.records == []


def test_a_body_that_is_not_json_or_too_large_is_refused(service: Service) -> None:
    headers = {"Authorization": f"Bearer {KHAN}"}
    response = service.client.post("/v1/feed/read", content=b"{nope", headers=headers)
    assert response.status_code == 400
    big = json.dumps({"purpose": "x" * MAX_BODY_BYTES}).encode()
    response = service.client.post("/v1/feed/read", content=big, headers=headers)
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"purpose": "'
        for _ in range(MAX_BODY_BYTES // 1000 + 1):
            yield b"x" * 1000
        yield b'"}'

    response = service.client.post("/v1/feed/read", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert service.audit.records == []


def test_a_read_that_cannot_be_audited_returns_nothing(service: Service) -> None:
    service.audit.fail = True
    response = service.read({"purpose": "JTAI shortlist"})
    assert response.status_code == 503
    assert "could not be audited" in response.json()["error"]
    assert "events" not in response.json()


def test_a_feed_that_cannot_be_read_is_503_and_unaudited(service: Service) -> None:
    service.feed.fail = True
    response = service.read({"purpose": "JTAI shortlist"})
    assert response.status_code == 503
    assert service.audit.records == []


def test_a_read_over_the_limit_is_truncated_and_says_where_to_go_on(service: Service) -> None:
    service.feed.events = [(LEEDS, "neglect")] * 5
    response = service.read({"purpose": "JTAI shortlist", "limit": 2})
    body = response.json()
    assert (body["returned"], body["truncated"]) == (2, True)
    assert body["next_since"] == (NOW + dt.timedelta(seconds=1)).isoformat()
    (record,) = service.audit.records
    assert isinstance(record, FeedRead)
    assert record.returned == 2
    assert len(record.event_ids) == 2


LIVE_AREAS = sorted(code for code, la in local_authorities().items() if la.terminated_on is None)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=st.lists(
        st.tuples(st.sampled_from(LIVE_AREAS), st.sampled_from([t.value for t in Theme])),
        max_size=8,
    ),
    area=st.none() | st.sampled_from([LEEDS, KENT, BRADFORD, "E08000025"]),
)
def test_the_service_never_returns_an_event_outside_scope(
    service: Service, events: list[tuple[str, str]], area: str | None
) -> None:
    service.feed.events = events
    response = service.read({"purpose": "JTAI shortlist", **({"area": area} if area else {})})
    returned = response.json().get("events", [])
    assert response.status_code in (200, 403)
    for event in returned:
        assert local_authorities()[event["area"]].region.name == YORKSHIRE
    if response.status_code == 403:
        assert local_authorities()[area or ""].region.name != YORKSHIRE
        assert returned == []


# -- the client -----------------------------------------------------------------------------


def client_for(handler: httpx2.MockTransport | TestClient) -> httpx2.Client:
    if isinstance(handler, TestClient):
        return handler
    return httpx2.Client(base_url="http://reader.test", transport=handler)


def test_the_client_reads_through_the_service(service: Service) -> None:
    answer = read_feed("http://testserver", KHAN, {"purpose": "p"}, client=service.client)
    assert [event["area"] for event in answer.events] == [LEEDS, BRADFORD]


def test_the_client_turns_refusals_into_one_message_each(service: Service) -> None:
    with pytest.raises(ReaderError) as refused:
        read_feed("http://testserver", KHAN, {"purpose": "p", "area": KENT}, client=service.client)
    assert refused.value.status == 403
    assert str(refused.value).startswith("refused: area E10000016 (Kent, South East)")
    with pytest.raises(ReaderError) as unknown:
        read_feed("http://testserver", new_token(), {"purpose": "p"}, client=service.client)
    assert unknown.value.status == 401
    assert "missing, unknown or revoked" in str(unknown.value)


def test_the_client_refuses_a_credential_it_did_not_issue_without_showing_it() -> None:
    for token in ("", "hunter2", "lsn_has space", "lsn_" + "x" * 300):
        with pytest.raises(ReaderError) as refused:
            check_token(token)
        assert "hunter2" not in str(refused.value)
    assert check_token(f"  {KHAN}\n") == KHAN


def test_the_client_says_when_the_service_cannot_be_reached_or_answers_oddly() -> None:
    def unreachable(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    with pytest.raises(ReaderError, match=r"cannot be reached .*serve reader") as refused:
        read_feed(
            "http://127.0.0.1:9", KHAN, {}, client=client_for(httpx2.MockTransport(unreachable))
        )
    assert refused.value.retriable

    def odd(request: httpx2.Request) -> httpx2.Response:
        del request
        return httpx2.Response(200, json={"not": "a feed"})

    with pytest.raises(ReaderError, match="answer is not a feed"):
        read_feed("http://x", KHAN, {}, client=client_for(httpx2.MockTransport(odd)))

    def teapot(request: httpx2.Request) -> httpx2.Response:
        del request
        return httpx2.Response(500, json={"error": "bad\x1b[31m day\n" + "y" * 2000})

    with pytest.raises(ReaderError) as failed:
        read_feed("http://x", KHAN, {}, client=client_for(httpx2.MockTransport(teapot)))
    message = str(failed.value)
    assert message.startswith("the reader service answered HTTP 500: bad [31m day")
    assert "\x1b" not in message
    assert "\n" not in message
    assert len(message) < 700
