"""The live feed (``GET /v1/feed/stream``) on a real ``FeedHub`` fed with signed records,
a fake audit log and registry; its client (``stream_feed``); and the terminal table."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest
from rich.console import Console
from starlette.applications import Starlette
from starlette.testclient import TestClient

from schemas.audit import AnalystScope, FeedRead, FeedRefused
from schemas.errors import BrokerError
from schemas.events import ConcernRaised, Theme
from schemas.keys import SigningKey
from schemas.records import InboundRecord
from services.cli.feed import _Board
from services.reader.analysts import Analyst, Registry, new_token, token_sha256
from services.reader.app import STREAM_PATH, TERMINAL_VIEW, create_app
from services.reader.client import ReaderError, stream_feed
from services.reader.hub import FeedHub
from services.reader.shown import ShownLog
from services.settings import Settings
from tests.factories import NOW, concern, key_for, trust_of
from tests.loop_factories import outcome_recorded, signed_inbound

LEEDS, KENT, BRADFORD = "E08000035", "E10000016", "E08000032"
YORKSHIRE = "Yorkshire and The Humber"
SETTINGS = Settings(bootstrap_servers="127.0.0.1:1", topic_prefix="")
OFSTED, HMICFRS = key_for("ofsted"), key_for("hmicfrs")
KHAN = new_token()


def analyst(scope: AnalystScope) -> Analyst:
    return Analyst(
        name="a.khan", scope=scope, credential_sha256=token_sha256(KHAN), added_at=NOW,
        added_by="operator:test",
    )  # fmt: skip


YORKSHIRE_SCOPE = AnalystScope(regions=(YORKSHIRE,), themes=tuple(Theme))


@dataclass
class Log:
    """What happened, in order: audit records written and events sent."""

    steps: list[str] = field(default_factory=list)


@dataclass
class FakeAudit:
    log: Log
    records: list[FeedRead | FeedRefused] = field(default_factory=list)
    fail: bool = False

    async def write(self, record: FeedRead | FeedRefused) -> None:
        if self.fail:
            raise BrokerError("the broker is away")
        self.records.append(record)
        self.log.steps.append(f"audit:{record.action}")

    def reads(self) -> list[FeedRead]:
        return [r for r in self.records if isinstance(r, FeedRead)]


class NoFeed:
    async def read(self, filters: object, now: dt.datetime) -> Any:  # never used
        raise AssertionError


def on_feed(
    event: Any, key: SigningKey = OFSTED, *, appended_at: dt.datetime = NOW
) -> InboundRecord:
    return signed_inbound(event, key, topic=SETTINGS.topics.feed, appended_at=appended_at)


@dataclass
class Service:
    hub: FeedHub
    audit: FakeAudit
    log: Log
    registry: list[Registry]
    stopping: asyncio.Event
    app: Starlette


def service_with(scope: AnalystScope = YORKSHIRE_SCOPE, keepalive_s: float = 0.05) -> Service:
    log = Log()
    audit = FakeAudit(log)
    hub = FeedHub(SETTINGS, lambda: trust_of(OFSTED, HMICFRS), lambda: NOW)
    registry = [Registry().with_added(analyst(scope))]
    stopping = asyncio.Event()
    app = create_app(
        feed=NoFeed(), audit=audit, registry=lambda: registry[0], clock=lambda: NOW,
        hub=hub, shown=ShownLog(audit, lambda: NOW), stopping=stopping,
        keepalive_s=keepalive_s,
    )  # fmt: skip
    return Service(hub, audit, log, registry, stopping, app)


def found(hours_ago: float, **fields: Any) -> ConcernRaised:
    return concern(occurred_at=NOW - dt.timedelta(hours=hours_ago), **fields)


LEEDS_OLD = found(30, area=LEEDS, summary="Leeds: strategy meetings start late.")
LEEDS_NEW = found(2, area=LEEDS, theme="domestic_abuse", severity=3)
BRADFORD_MID = found(10, area=BRADFORD, severity=1, source="hmicfrs", programme="ncpi")
KENT_ANY = found(5, area=KENT)


@pytest.fixture
def service() -> Service:
    made = service_with()
    made.hub.add(
        [on_feed(LEEDS_NEW), on_feed(KENT_ANY), on_feed(LEEDS_OLD),
         on_feed(BRADFORD_MID, HMICFRS)]
    )  # fmt: skip
    return made


def events_of(body: str) -> list[tuple[str, dict[str, Any]]]:
    found_events = []
    for block in body.split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(":")]
        if not lines:
            continue
        event = next(line[7:] for line in lines if line.startswith("event: "))
        data = json.loads(next(line[6:] for line in lines if line.startswith("data: ")))
        found_events.append((event, data))
    return found_events


Params = list[tuple[str, str | int | float | bool | None]]


def get(
    service: Service, params: Sequence[tuple[str, str]], token: str | None = KHAN
) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    query: Params = [*params]
    with TestClient(service.app) as client:
        return client.get(STREAM_PATH, params=query, headers=headers)


def backfill(service: Service, *params: tuple[str, str]) -> list[tuple[str, dict[str, Any]]]:
    response = get(service, [("purpose", "JTAI shortlist"), ("follow", "0"), *params])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return events_of(response.text)


def ids_of(events: list[tuple[str, dict[str, Any]]]) -> list[uuid.UUID]:
    return [uuid.UUID(data["id"]) for kind, data in events if kind == "item"]


# -- backfill -----------------------------------------------------------------------------


def test_the_backfill_is_the_scope_only_oldest_first_and_audited_with_exactly_its_ids(
    service: Service,
) -> None:
    events = backfill(service)
    assert ids_of(events) == [LEEDS_OLD.id, BRADFORD_MID.id, LEEDS_NEW.id]  # never Kent
    assert events[-1] == ("caught_up", {"returned": 3, "refused": 0, "analyst": "a.khan"})
    first = events[0][1]
    assert (first["area_name"], first["region"], first["kind"]) == ("Leeds", YORKSHIRE, "concern")
    assert first["summary"] == "Leeds: strategy meetings start late."
    (record,) = service.audit.records
    assert isinstance(record, FeedRead)
    assert (record.analyst, record.actor, record.view) == (
        "a.khan",
        "analyst:a.khan",
        TERMINAL_VIEW,
    )
    assert record.purpose == "JTAI shortlist"
    assert list(record.event_ids) == ids_of(events)
    assert record.filters == {}
    assert "Leeds: strategy" not in record.model_dump_json()  # never a summary


def test_filters_by_area_name_occurrence_broker_time_severity_type_and_source(
    service: Service,
) -> None:
    assert ids_of(backfill(service, ("area", "Leeds"))) == [LEEDS_OLD.id, LEEDS_NEW.id]
    assert ids_of(backfill(service, ("area", "leeds , E08000032"))) == [
        LEEDS_OLD.id, BRADFORD_MID.id, LEEDS_NEW.id,
    ]  # fmt: skip
    since = (NOW - dt.timedelta(hours=12)).isoformat()
    until = (NOW - dt.timedelta(hours=5)).isoformat()
    assert ids_of(backfill(service, ("since", since))) == [BRADFORD_MID.id, LEEDS_NEW.id]
    assert ids_of(backfill(service, ("since", since), ("until", until))) == [BRADFORD_MID.id]
    assert ids_of(backfill(service, ("severity", "2"))) == [LEEDS_OLD.id, LEEDS_NEW.id]
    assert ids_of(backfill(service, ("theme", "domestic-abuse"))) == [LEEDS_NEW.id]
    assert ids_of(backfill(service, ("source", "hmicfrs"))) == [BRADFORD_MID.id]
    assert ids_of(backfill(service, ("type", "outcome"))) == []
    assert ids_of(backfill(service, ("limit", "2"))) == [BRADFORD_MID.id, LEEDS_NEW.id]
    # Broker time: everything above was appended at NOW.
    later = (NOW + dt.timedelta(minutes=1)).isoformat()
    assert ids_of(backfill(service, ("received_since", later))) == []
    reads = service.audit.reads()
    assert reads[0].filters == {"area": LEEDS}
    assert reads[2].filters == {"since": "2026-11-22T00:00:00Z"}
    assert reads[4].filters == {"severity": ">=2"}
    assert all(r.view == TERMINAL_VIEW for r in reads)


def test_an_outcome_and_an_unverifiable_record_count_as_they_should() -> None:
    made = service_with()
    outcome = outcome_recorded(area=LEEDS, occurred_at=NOW - dt.timedelta(hours=1))
    forged = found(1, area=LEEDS)
    made.hub.add([on_feed(outcome, HMICFRS), on_feed(forged, key_for("ofsted"))])
    events = backfill(made)
    assert ids_of(events) == [outcome.id]
    assert events[0][1]["kind"] == "outcome"
    assert events[-1][1]["refused"] == 1


# -- refusals and bad requests ------------------------------------------------------------


def test_an_area_outside_scope_is_403_and_audited_as_refused_in_the_terminal_view(
    service: Service,
) -> None:
    response = get(service, [("purpose", "JTAI shortlist"), ("area", "Kent")])
    assert response.status_code == 403
    assert response.json()["reason"] == "out_of_scope"
    assert "area E10000016 (Kent, South East) is outside your scope" in response.json()["error"]
    (record,) = service.audit.records
    assert isinstance(record, FeedRefused)
    assert (record.analyst, record.view, record.filters) == (
        "a.khan", TERMINAL_VIEW, {"area": KENT},
    )  # fmt: skip


def test_a_theme_or_region_outside_scope_is_refused_too() -> None:
    made = service_with(AnalystScope(areas=(LEEDS,), themes=(Theme.NEGLECT,)))
    for param in (("theme", "domestic_abuse"), ("region", YORKSHIRE)):
        response = get(made, [("purpose", "p"), param])
        assert response.status_code == 403, param
    assert [r.action for r in made.audit.records] == ["feed.refused", "feed.refused"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ([("area", "Leedz")], "area: 'Leedz' is not an upper-tier local authority"),
        ([("area", "Leedz")], "nearest: Leeds"),
        ([("theme", "neglct")], "theme: 'neglct' is not a theme; nearest: neglect"),
        ([("area", "E07000032")], "lower-tier (district) code"),
        ([("region", "Yorkshire")], "nearest: Yorkshire and The Humber"),
        ([("severity", "5")], "give 1, 2, 3 or 4"),
        ([("type", "concerns")], "nearest: concern"),
        ([("since", "yesterday")], "since must be an ISO 8601"),
        ([("since", "2026-11-02"), ("until", "2026-11-01")], "end of the window"),
        ([("follow", "maybe")], "follow must be 1 or 0"),
        ([("limit", "0")], "limit must be a whole number"),
        ([("areas", "Leeds")], "'areas' is not a live feed parameter"),
        ([("limit", "1"), ("limit", "2")], "limit is given more than once"),
        ([("limit", "\u00b2")], "limit must be a whole number"),
        ([("limit", "9" * 5000)], "at most 50 parameters of at most 1000 characters"),
        ([("area", "Leeds")] * 60, "at most 50 parameters"),
        ([("area", ",x" * 600)], "at most 50 parameters of at most 1000 characters"),
    ],
)
def test_a_bad_value_is_422_with_one_line_naming_what_to_type_and_nothing_is_audited(
    service: Service, params: list[tuple[str, str]], words: str
) -> None:
    response = get(service, [("purpose", "JTAI shortlist"), *params])
    assert response.status_code == 422
    assert response.json()["reason"] == "invalid"
    assert words in response.json()["error"]
    assert "\n" not in response.json()["error"]
    assert service.audit.records == []


def test_a_purpose_is_required_and_never_echoed(service: Service) -> None:
    for purpose in ([], [("purpose", "Check NHS number 943 476 5919")]):
        response = get(service, purpose)
        assert response.status_code == 422
        assert "943" not in response.text
    assert service.audit.records == []


def test_no_credential_is_401_and_nothing_is_audited(service: Service) -> None:
    for token in (None, new_token()):
        response = get(service, [("purpose", "p")], token=token)
        assert response.status_code == 401
    assert service.audit.records == []


def test_a_feed_that_cannot_be_audited_sends_nothing(service: Service) -> None:
    service.audit.fail = True
    response = get(service, [("purpose", "JTAI shortlist"), ("follow", "0")])
    assert response.status_code == 503
    assert "could not be audited" in response.json()["error"]
    assert "event:" not in response.text
    refused = get(service, [("purpose", "JTAI shortlist"), ("area", KENT)])
    assert refused.status_code == 503  # a refusal that cannot be recorded is not answered


def test_a_service_without_a_hub_does_not_serve_the_live_feed() -> None:
    app = create_app(feed=NoFeed(), audit=FakeAudit(Log()), registry=Registry, clock=lambda: NOW)
    with TestClient(app) as client:
        response = client.get(STREAM_PATH, params={"purpose": "p"})
    assert response.status_code == 503


# -- following, on the ASGI app itself (test clients buffer whole responses) ---------------


class Stream:
    """One connection to the app: its status, and its events as they are sent."""

    def __init__(self, service: Service, params: list[tuple[str, str]]) -> None:
        self.service = service
        self.query = urlencode(params).encode()
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.gone = asyncio.Event()
        self.status = 0
        self.buffer = b""
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Stream:
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": STREAM_PATH, "raw_path": STREAM_PATH.encode(), "root_path": "",
            "query_string": self.query, "server": ("testserver", 80),
            "client": ("127.0.0.1", 50000),
            "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {KHAN}".encode())],
        }  # fmt: skip
        asked = False

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self.gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message.get("body"):
                self.service.log.steps.append("sent")
                await self.chunks.put(message["body"])

        async def run() -> None:
            try:
                await self.service.app(scope, receive, send)
            finally:
                await self.chunks.put(None)

        self.task = asyncio.create_task(run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.gone.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)  # the app notices the client left

    async def next(self, *, within: float = 5) -> tuple[str, dict[str, Any]] | None:
        """The next event (comments skipped), or None when the stream ended."""
        async with asyncio.timeout(within):
            while True:
                block, sep, rest = self.buffer.partition(b"\n\n")
                if sep:
                    self.buffer = rest
                    if block.startswith(b":"):
                        continue
                    (found_event,) = events_of(block.decode())
                    return found_event
                chunk = await self.chunks.get()
                if chunk is None:
                    return None
                self.buffer += chunk

    async def comment(self, *, within: float = 5) -> bytes:
        async with asyncio.timeout(within):
            while not self.buffer.startswith(b":"):
                chunk = await self.chunks.get()
                assert chunk is not None
                self.buffer += chunk
            line, _, self.buffer = self.buffer.partition(b"\n\n")
            return line


@pytest.fixture
async def following(service: Service) -> AsyncIterator[Stream]:
    async with Stream(service, [("purpose", "Following Leeds"), ("area", "Leeds")]) as stream:
        for expected in (LEEDS_OLD, LEEDS_NEW):
            assert (await stream.next()) is not None, expected
        assert (await stream.next()) == (
            "caught_up", {"returned": 2, "refused": 0, "analyst": "a.khan"},
        )  # fmt: skip
        yield stream


async def test_a_finding_added_after_connecting_arrives_audited_before_it_is_sent(
    service: Service, following: Stream
) -> None:
    assert service.log.steps[0] == "audit:feed.read"  # the backfill's record came first
    service.log.steps.clear()
    later = found(0.5, area=LEEDS, summary="A new concern.")
    service.hub.add([on_feed(found(0.5, area=KENT)), on_feed(later)])
    event = await following.next()
    assert event is not None
    assert (event[0], event[1]["id"], event[1]["summary"]) == (
        "item",
        str(later.id),
        "A new concern.",
    )
    assert service.log.steps.index("audit:feed.read") < service.log.steps.index("sent")
    live = service.audit.reads()[-1]
    assert (live.view, live.purpose, list(live.event_ids)) == (
        TERMINAL_VIEW, "Following Leeds", [later.id],
    )  # fmt: skip
    assert live.filters == {"area": LEEDS}
    assert len(service.audit.reads()) == 2  # the Kent one was neither sent nor recorded


async def test_a_quiet_feed_sends_a_keepalive_comment(following: Stream) -> None:
    assert await following.comment() == b": keepalive"


async def test_a_live_batch_that_cannot_be_audited_ends_the_stream_unsent(
    service: Service, following: Stream
) -> None:
    service.audit.fail = True
    service.hub.add([on_feed(found(0.5, area=LEEDS))])
    assert await following.next() == (
        "error",
        {
            "error": "the read could not be audited, so nothing more was shown",
            "reason": "unavailable",
        },
    )
    assert await following.next() is None


async def test_a_credential_revoked_while_following_ends_the_stream(
    service: Service, following: Stream
) -> None:
    service.registry[0] = service.registry[0].with_revoked("a.khan", "left", NOW, "operator:t")
    service.hub.add([on_feed(found(0.5, area=LEEDS))])
    event = await following.next()
    assert event is not None
    assert (event[0], event[1]["reason"]) == ("error", "unauthenticated")
    assert await following.next() is None
    assert len(service.audit.reads()) == 1


async def test_a_scope_narrowed_while_following_ends_the_stream(
    service: Service, following: Stream
) -> None:
    narrowed = AnalystScope(areas=(BRADFORD,), themes=tuple(Theme))
    service.registry[0] = Registry().with_added(analyst(narrowed))
    service.hub.add([on_feed(found(0.5, area=LEEDS))])
    event = await following.next()
    assert event is not None
    assert (event[0], event[1]["reason"]) == ("error", "out_of_scope")
    assert len(service.audit.reads()) == 1
    refused = service.audit.records[-1]
    assert isinstance(refused, FeedRefused)
    assert (refused.view, refused.filters) == (TERMINAL_VIEW, {"area": LEEDS})


async def test_the_service_stopping_ends_every_stream(service: Service, following: Stream) -> None:
    service.stopping.set()
    event = await following.next()
    assert event is not None
    assert (event[0], event[1]["reason"]) == ("error", "stopping")
    assert await following.next() is None


async def test_a_client_that_leaves_ends_its_stream(service: Service) -> None:
    async with Stream(service, [("purpose", "p")]) as stream:
        assert (await stream.next()) is not None
    assert stream.task is not None
    assert stream.task.done()


async def test_without_follow_the_stream_ends_after_catching_up(service: Service) -> None:
    async with Stream(service, [("purpose", "p"), ("follow", "0"), ("area", BRADFORD)]) as stream:
        assert [await stream.next() for _ in range(2)][1] == (
            "caught_up", {"returned": 1, "refused": 0, "analyst": "a.khan"},
        )  # fmt: skip
        assert await stream.next() is None
    assert stream.status == 200


# -- the client ---------------------------------------------------------------------------


def sse_client(*chunks: bytes, status: int = 200, body: Any = None) -> httpx2.Client:
    def answer(request: httpx2.Request) -> httpx2.Response:
        assert request.headers["authorization"] == f"Bearer {KHAN}"
        assert request.url.params.get_list("area") == [LEEDS, BRADFORD]
        if body is not None:
            return httpx2.Response(status, json=body)
        return httpx2.Response(status, content=iter(chunks))

    return httpx2.Client(base_url="http://reader.test", transport=httpx2.MockTransport(answer))


def test_the_client_parses_events_split_anywhere_and_keeps_unicode_line_separators() -> None:
    row = {"id": "1", "summary": "one\u2028two\x85three"}
    text = (
        b": keepalive\r\n\r\nevent: item\r\ndata: "
        + json.dumps(row, ensure_ascii=False).encode()
        + b'\r\n\r\nevent: caught_up\ndata: {"returned": 1}\n\n'
    )
    chunks = [text[i : i + 7] for i in range(0, len(text), 7)]
    params = {"purpose": "p", "area": [LEEDS, BRADFORD]}
    got = list(stream_feed("http://reader.test", KHAN, params, client=sse_client(*chunks)))
    assert got == [("item", row), ("caught_up", {"returned": 1})]


@pytest.mark.parametrize(
    ("client", "words", "status"),
    [
        (
            sse_client(b'event: error\ndata: {"error": "the read could not be audited",'
                       b' "reason": "unavailable"}\n\n'),
            "the read could not be audited", 503,
        ),
        (
            sse_client(status=403, body={"error": "area E10000016 (Kent) is outside your scope"}),
            "refused: area E10000016 (Kent) is outside your scope", 403,
        ),
        (
            sse_client(status=422, body={"error": "area: 'Leedz' is not ...; nearest: Leeds"}),
            "area: 'Leedz' is not ...; nearest: Leeds", 422,
        ),
        (sse_client(b"event: item\ndata: [1]\n\n"), "not an object", None),
        (sse_client(b"event: item\ndata: {\n\n"), "not JSON", None),
    ],
)  # fmt: skip
def test_the_client_turns_every_failure_into_one_reader_error(
    client: httpx2.Client, words: str, status: int | None
) -> None:
    params = {"purpose": "p", "area": [LEEDS, BRADFORD]}
    with pytest.raises(ReaderError) as failed:
        list(stream_feed("http://reader.test", KHAN, params, client=client))
    assert words in str(failed.value)
    assert failed.value.status == status


def test_the_client_says_when_the_service_cannot_be_reached() -> None:
    def unreachable(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    client = httpx2.Client(base_url="http://x", transport=httpx2.MockTransport(unreachable))
    with pytest.raises(ReaderError, match="cannot be reached"):
        list(stream_feed("http://x", KHAN, {"purpose": "p"}, client=client))


def test_the_client_against_the_app_reads_what_the_app_sends(service: Service) -> None:
    with TestClient(service.app) as client:
        got = list(
            stream_feed("http://testserver", KHAN, {"purpose": "p", "follow": "0"}, client=client)
        )
    assert [kind for kind, _ in got] == ["item", "item", "item", "caught_up"]


# -- the terminal table -------------------------------------------------------------------


def rendered(board: _Board, height: int = 12, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, height=height, color_system=None)
    console.print(board.screen(height, width))
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


def rows(count: int) -> Iterator[tuple[str, dict[str, Any]]]:
    for i in range(count):
        item = found(count - i, area=LEEDS, summary=f"Finding number {i}.")
        yield "item", {
            "id": str(item.id), "occurred_at": "2026-11-22T11:00:00Z", "area_name": "Leeds",
            "region": YORKSHIRE, "source": "ofsted", "finding": "area_for_improvement",
            "theme": "neglect", "severity": 3, "immediate_risk": i == 0,
            "subject_agencies": ["local_authority", "police"], "summary": item.summary,
        }  # fmt: skip


def test_the_table_keeps_the_last_screenful_newest_at_the_bottom_with_a_status_line() -> None:
    board = _Board(follow=True)
    for event, data in rows(30):
        board.take(event, data)
    board.take("caught_up", {"returned": 30, "refused": 2, "analyst": "a.khan"})
    shown = rendered(board, height=12, width=200)
    assert "Finding number 29." in shown
    assert "Finding number 23." not in shown  # only what fits
    assert shown.index("Finding number 28.") < shown.index("Finding number 29.")
    assert "2026-11-22 11:00" in shown  # Europe/London in November is UTC
    assert "Leeds" in shown
    assert "local_authority, police" in shown
    assert "as a.khan · 30 shown (30 earlier, 0 live) · 2 unverifiable" in shown
    assert "following live (Ctrl-C to stop)" in shown
    board.take(*next(rows(1)))
    assert "(30 earlier, 1 live)" in rendered(board)


def test_the_table_shows_no_control_sequence_from_any_field() -> None:
    board = _Board(follow=False)
    ((event, data),) = rows(1)
    hostile = {**data, "summary": "fine\x1b[2J\x1b]0;owned\x07 [red]markup[/red]", "source": "x\r"}
    board.take(event, hostile)
    shown = rendered(board)
    assert "\x1b" not in shown
    assert "\r" not in shown
    assert "[red]markup[/red]" in shown  # as text, never as markup
    assert "catching up" in shown


def test_summer_times_are_shown_in_british_summer_time() -> None:
    board = _Board(follow=False)
    ((event, data),) = rows(1)
    board.take(event, {**data, "occurred_at": "2026-07-01T11:00:00Z"})
    assert "2026-07-01 12:00" in rendered(board)


def test_every_item_field_the_table_reads_is_in_the_item_json() -> None:
    made = service_with()
    made.hub.add([on_feed(LEEDS_NEW)])
    (item,) = made.hub.view().items
    row = item.as_json()
    for name in ("occurred_at", "area_name", "region", "source", "finding", "kind", "theme",
                 "severity", "immediate_risk", "subject_agencies", "summary"):  # fmt: skip
        assert name in row
    assert dataclasses.asdict(item)["area"] == LEEDS


def test_json_lines_carry_no_raw_control_or_bidirectional_character(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from services.cli.feed import _as_json  # noqa: PLC0415 - the CLI's writer itself

    hostile = "ok\u009b31m \u202eevil\u2028next\x1b[2J"
    row = {"id": str(uuid.uuid4()), "summary": hostile, "area_name": "Leeds"}
    _as_json(iter([("item", row)]), follow=False)
    out = capsys.readouterr().out
    assert out.isascii()
    assert json.loads(out)["summary"] == hostile  # the data kept as it is
