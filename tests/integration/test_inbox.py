"""`liaison inbox` and `liaison unrouted list` against the real broker.

The routed records are produced here as the router writes them (the publisher's envelope,
unchanged, on ``liaison.programme.<p>`` with the contract and CloudEvents headers and the
router's route attestation, signed by the bus key, naming the rules and reason), so these
tests do not depend on the router. Their plain ``liaison_rules`` / ``liaison_reason``
headers say something else: only the signed route is ever shown.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from consumers.jtai import consideration_id
from consumers.router import HEADER_REASON, HEADER_RULES
from schemas.audit import (
    AuditRecord,
    InboxRead,
    OutcomeGiven,
    ReminderRaised,
    SealedRecord,
    judge_sealed,
)
from schemas.events import ConcernRaised, Theme
from schemas.inspectorates import JTAI, Inspectorate, Programme
from schemas.jtai import JtaiConsiderationRequested, JtaiDecisionRecorded, JtaiTrigger
from schemas.keys import BUS, OPERATOR, SigningKey, TrustStore
from schemas.outcomes import (
    DeliveryRecorded,
    Outcome,
    OutcomeOverdue,
    OutcomeRecorded,
    overdue_id,
)
from schemas.records import OutboundRecord, header_map, signed_record
from schemas.route import HEADER_ROUTE, Route, attest_route
from schemas.signed import ALL_TYPES, SignedEvent, open_signed, seal_signed
from services.inbox import InboxError, raise_reminders, read_inbox, record_outcome
from services.kafka import delete_topics, kafka_sink
from services.settings import Settings
from services.trust import load_trust
from tests.conftest import one_error_line, run_liaison
from tests.factories import concern, utc_now
from tests.integration.test_publish_transaction import appended_at, everything

pytestmark = pytest.mark.kafka

RULES = b"police.peel,severe.police"
REASON = b"concern about police practice"
PEEL = Programme.PEEL


def police_concern(**overrides: Any) -> ConcernRaised:
    """Ofsted's cause of concern about the police's front door in Birmingham."""
    fields: dict[str, Any] = {
        "occurred_at": utc_now() - dt.timedelta(hours=2),
        "subject_agencies": ["police", "local_authority"],
        "theme": "front_door",
        "finding": "cause_of_concern",
        "severity": 3,
        "summary": "Strategy discussions about children at risk are held late.",
    }
    return concern(**{**fields, **overrides})


def signed(settings: Settings, topic: str, event: SignedEvent, key: SigningKey) -> OutboundRecord:
    """``event`` sealed with ``key`` as a record to ``topic`` with the contract's headers."""
    return signed_record(topic, event, seal_signed(event, key, utc_now()).envelope)


def attested(
    record: OutboundRecord,
    event: SignedEvent,
    bus: SigningKey,
    *,
    rules: tuple[str, ...] = tuple(RULES.decode().split(",")),
    reason: str = REASON.decode(),
    topic: str | None = None,
) -> OutboundRecord:
    """``record`` with the router's route attestation (signed by ``bus``) for ``topic``
    (the record's own unless a test copies a route elsewhere)."""
    route = Route(
        event_id=event.id, event_type=event.type, signer=str(event.source),
        value_sha256=hashlib.sha256(record.value).hexdigest(), topic=topic or record.topic,
        rules=rules, reason=reason,
    )  # fmt: skip
    return replace(record, headers=(*record.headers, (HEADER_ROUTE, attest_route(route, bus))))


def routed(
    settings: Settings,
    event: SignedEvent,
    signing: dict[str, SigningKey],
    programme: Programme = PEEL,
) -> OutboundRecord:
    """``event`` (signed by its source's key) as the router puts it on ``programme``'s
    queue: with its route, and plain headers that are not the route's."""
    record = signed(
        settings, settings.topics.programme(programme), event, signing[str(event.source)]
    )
    plain = ((HEADER_RULES, b"plain.rule"), (HEADER_REASON, b"plain headers are never shown"))
    record = replace(record, headers=(*record.headers, *plain))
    return attested(record, event, signing[BUS])


def copied(
    settings: Settings, event: SignedEvent, key: SigningKey, programme: Programme = PEEL
) -> OutboundRecord:
    """A genuine signed ``event`` put on ``programme``'s queue by someone with write
    access, not the router: made-up rules and reason headers, no route."""
    record = signed(settings, settings.topics.programme(programme), event, key)
    made_up = ((HEADER_RULES, RULES), (HEADER_REASON, b"urgent: act on this now"))
    return replace(record, headers=(*record.headers, *made_up))


def tampered(record: OutboundRecord) -> OutboundRecord:
    """``record`` with its signed payload changed (the signature no longer verifies)."""
    envelope = json.loads(record.value)
    payload = base64.b64decode(envelope["payload"]).replace(b'"severity":3', b'"severity":1')
    envelope["payload"] = base64.b64encode(payload).decode()
    return replace(record, value=json.dumps(envelope).encode())


async def put(settings: Settings, *records: OutboundRecord) -> None:
    async with kafka_sink(settings) as sink:
        for record in records:
            await sink.send(record)


async def opened(settings: Settings, topic: str, trust: TrustStore) -> list[SignedEvent]:
    """Every record of ``topic``, each verified (one that does not fails the test)."""
    records = await everything(settings, topic)
    return [open_signed(raw, trust, utc_now(), ALL_TYPES).event for raw in records]


async def audited(settings: Settings, action: str) -> list[tuple[AuditRecord, SealedRecord]]:
    """Every committed audit record of ``action``, each judged valid (signature, signer
    entitled to the actor, time)."""
    trust = await load_trust(settings)
    found = []
    for raw in await everything(settings, settings.topics.audit):
        if header_map(raw.headers).get("action") != action.encode():
            continue
        judged = judge_sealed(raw.value, appended_at(raw), trust)
        assert isinstance(judged, SealedRecord), judged.reason
        found.append((judged.record, judged))
    return found


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


async def test_inbox_lists_a_routed_finding_with_its_area_and_reason_never_a_forgery(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    finding = police_concern()
    other = police_concern(area="E10000016", theme="neglect", subject_agencies=["health"])
    forged = tampered(routed(kafka, police_concern(), signing))
    await put(kafka, routed(kafka, finding, signing), forged, routed(kafka, other, signing))

    listed = await run_liaison(kafka, "inbox", "--programme", "peel", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = lines(listed.stdout)
    assert {r["id"] for r in rows} == {str(finding.id), str(other.id)}
    row = next(r for r in rows if r["id"] == str(finding.id))
    assert (row["area"], row["area_name"]) == ("E08000025", "Birmingham")
    assert row["police_force"] == "West Midlands"
    assert (row["reason"], row["rules"]) == (REASON.decode(), ["police.peel", "severe.police"])
    assert (row["finding"], row["severity"]) == ("cause_of_concern", 3)
    assert row["summary"] == finding.summary
    assert (row["outcome"], row["overdue"]) == (None, False)
    warnings = [line for line in listed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "1 record(s) did not verify" in warnings[0]
    assert "bad_signature: 1" in warnings[0]

    table = await run_liaison(kafka, "inbox", "--programme", "peel", "--area", "E08000025")
    assert table.returncode == 0, table.stderr
    assert "Birmingham (E08000025)" in table.stdout
    assert all(word in table.stdout for word in REASON.decode().split())  # folded in its cell
    assert str(finding.id) in table.stdout
    assert str(other.id) not in table.stdout

    reads = await audited(kafka, "inbox.read")
    assert len(reads) == 2
    for record, sealed in reads:
        assert isinstance(record, InboxRead)
        assert record.actor == "inspectorate:hmicfrs"
        assert record.queue == kafka.topics.programme(PEEL)
        assert sealed.key.owner == "hmicfrs"
    first, by_area = (r for r, _ in reads)
    assert isinstance(first, InboxRead)
    assert isinstance(by_area, InboxRead)
    assert (set(first.event_ids), first.returned) == ({finding.id, other.id}, 2)
    assert first.filters == {"programme": "peel"}
    assert by_area.event_ids == (finding.id,)
    assert by_area.filters == {"programme": "peel", "area": "E08000025"}


async def route_back_and_read_as_the_publisher(
    settings: Settings, outcome: OutcomeRecorded, bus: SigningKey
) -> None:
    """Route ``outcome`` back to the finding's programme as the router does (the envelope
    unchanged, with its route); the publisher's inbox then shows it among the outcomes of
    its findings."""
    topics = settings.topics
    (raw,) = await everything(settings, topics.outcomes)
    back = signed_record(topics.programme(outcome.finding_programme), outcome, raw.value)
    await put(settings, attested(back, outcome, bus, rules=(), reason="outcome"))
    programme = outcome.finding_programme.value
    ours = await run_liaison(settings, "inbox", "--programme", programme, "--json")
    assert ours.returncode == 0, ours.stderr
    (returned,) = lines(ours.stdout)
    assert (returned["kind"], returned["id"]) == ("outcome", str(outcome.id))
    assert returned["finding_id"] == str(outcome.finding_id)
    assert (returned["source"], returned["outcome"]) == ("hmicfrs", outcome.outcome.value)
    assert returned["note"] == outcome.note
    table = await run_liaison(settings, "inbox", "--programme", programme)
    assert "Outcomes of our findings" in table.stdout


async def test_decide_publishes_a_verifiable_outcome_and_the_finding_moves_under_all(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    finding = police_concern()
    await put(kafka, routed(kafka, finding, signing))

    note = "Brought the force's NCPI forward; front door in scope."
    decided = await run_liaison(
        kafka, "inbox", "decide", str(finding.id), "--programme", "peel",
        "--outcome", "informs_scheduling", "--note", note,
    )  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    outcome_id = uuid.UUID(decided.stdout.strip())

    trust = await load_trust(kafka)
    (outcome,) = await opened(kafka, topics.outcomes, trust)
    assert isinstance(outcome, OutcomeRecorded)
    assert (outcome.id, outcome.source, outcome.programme) == (
        outcome_id, Inspectorate.HMICFRS, PEEL,
    )  # fmt: skip
    assert (outcome.outcome, outcome.note) == (Outcome.INFORMS_SCHEDULING, note)
    assert (outcome.finding_id, outcome.finding_source) == (finding.id, Inspectorate.OFSTED)
    assert (outcome.finding_programme, outcome.area, outcome.theme) == (
        finding.programme, finding.area, finding.theme,
    )  # fmt: skip
    ((given, sealed),) = await audited(kafka, "outcome.recorded")
    assert isinstance(given, OutcomeGiven)
    assert given.event_ids == (finding.id, outcome_id)
    assert (given.actor, given.outcome, given.programme) == (
        "inspectorate:hmicfrs", Outcome.INFORMS_SCHEDULING, PEEL,
    )  # fmt: skip
    assert sealed.key.owner == "hmicfrs"
    assert note not in sealed.payload.decode()  # the note stays out of the audit log

    after = await run_liaison(kafka, "inbox", "--programme", "peel", "--json")
    assert lines(after.stdout) == []
    every = await run_liaison(kafka, "inbox", "--programme", "peel", "--all", "--json")
    (row,) = lines(every.stdout)
    assert (row["id"], row["outcome"]["id"]) == (str(finding.id), str(outcome_id))
    assert row["outcome"]["note"] == note
    shown = await run_liaison(kafka, "inbox", "show", str(finding.id), "--programme", "peel")
    assert shown.returncode == 0, shown.stderr
    assert "informs_scheduling" in shown.stdout
    assert "Birmingham" in shown.stdout

    await route_back_and_read_as_the_publisher(kafka, outcome, signing[BUS])

    reads = [r for r, _ in await audited(kafka, "inbox.read")]
    assert [r.actor for r in reads] == ["inspectorate:hmicfrs"] * 3 + ["inspectorate:ofsted"] * 2
    after_read, all_read, show_read, ofsted_read, _ = reads
    assert isinstance(ofsted_read, InboxRead)
    assert ofsted_read.event_ids == (outcome_id,)
    assert ofsted_read.queue == topics.programme(Programme.ILACS)
    assert isinstance(after_read, InboxRead)
    assert isinstance(all_read, InboxRead)
    assert isinstance(show_read, InboxRead)
    assert (after_read.event_ids, after_read.returned) == ((), 0)
    assert all_read.filters == {"programme": "peel", "all": "true"}
    assert all_read.event_ids == (finding.id, outcome_id)  # the outcome was shown too
    assert show_read.event_ids == (finding.id, outcome_id)
    assert show_read.filters == {"programme": "peel", "id": str(finding.id)}


async def test_cli_errors_are_one_line_and_nothing_is_published(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    finding = police_concern()
    await put(kafka, routed(kafka, finding, signing))
    decide = ("inbox", "decide", str(finding.id), "--outcome", "added_to_scope")
    cases = [
        (("inbox", "--programme", "nowhere"), "--programme must be one of"),
        (("inbox", "--programme", "jtai"), "say which inspectorate you act for"),
        (("inbox", "--programme", "peel", "--as", "cqc"), "peel is run by hmicfrs, not cqc"),
        (("inbox", "--programme", "peel", "--theme", "weather"), "--theme must be one of"),
        (("inbox", "show", str(uuid.uuid4()), "--programme", "peel"), "was not routed to peel"),
        (("inbox", "show", "not-an-id", "--programme", "peel"), "ID must be an event id"),
        (
            (
                "inbox",
                "decide",
                str(uuid.uuid4()),
                "--programme",
                "peel",
                "--outcome",
                "noted_no_action",
                "--note",
                "Seen.",
            ),
            "was not routed to peel",
        ),
        (
            (
                "inbox",
                "decide",
                str(finding.id),
                "--programme",
                "peel",
                "--outcome",
                "maybe",
                "--note",
                "Seen.",
            ),
            "--outcome must be one of informs_scheduling",
        ),
        (
            (*decide, "--programme", "ncpi", "--note", "Seen."),
            "was not routed to ncpi",
        ),
        (
            (*decide, "--programme", "peel", "--note", "Call 07700 900123 about it."),
            "note",
        ),
        (("inbox", "remind", "--working-days", "0"), "--working-days"),
        (("unrouted", "list", "--since", "yesterday"), "--since must be an ISO 8601"),
    ]
    for args, expected in cases:
        done = await run_liaison(kafka, *args)
        line = one_error_line(done)
        assert expected in line, (args, line)
        assert done.stdout == "", args
    refused_note = await run_liaison(
        kafka, *decide, "--programme", "peel", "--note", "Call 07700 900123 about it."
    )
    assert "phone" in one_error_line(refused_note)
    assert "07700 900123" not in refused_note.stderr
    assert await everything(kafka, kafka.topics.outcomes) == []
    assert await audited(kafka, "outcome.recorded") == []


async def test_overdue_reminders_are_raised_once_signed_by_the_bus_and_shown(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    """Times are the broker's (a record stamped otherwise is refused), so a finding cannot
    be back-dated here: the reminders are raised as of a ``now`` a month on instead."""
    topics = kafka.topics
    late = police_concern()
    await put(kafka, routed(kafka, late, signing, Programme.NCPI))
    (queued,) = await everything(kafka, topics.programme(Programme.NCPI))
    later = utc_now() + dt.timedelta(days=30)
    bus = signing[BUS]

    first = await raise_reminders(kafka, [Programme.NCPI], key=bus, now=later)
    assert [r.id for r in first.raised] == [overdue_id(late.id, Programme.NCPI)]
    assert first.skipped == ()
    again = await raise_reminders(kafka, key=bus, now=later)  # every programme
    assert again.raised == ()
    shorter = await raise_reminders(kafka, key=bus, now=later, working_days=3)
    assert shorter.raised == ()  # one reminder per finding and programme, whatever the days
    today = await run_liaison(kafka, "inbox", "remind")  # not overdue yet today
    assert today.returncode == 0, today.stderr
    assert (today.stdout, "raised 0 reminder(s)" in today.stderr) == ("", True)

    trust = await load_trust(kafka)
    (reminder,) = await opened(kafka, topics.outcomes, trust)
    assert isinstance(reminder, OutcomeOverdue)
    assert reminder.source == BUS
    assert (reminder.finding_id, reminder.programme) == (late.id, Programme.NCPI)
    assert reminder.routed_at == appended_at(queued)  # the broker's time, not a claim
    assert reminder.working_days == 10
    raised = [
        raw
        for raw in await everything(kafka, topics.audit)
        if header_map(raw.headers).get("action") == b"outcome.reminder_raised"
    ]
    (judged,) = (judge_sealed(raw.value, later, trust) for raw in raised)  # at its own time
    assert isinstance(judged, SealedRecord), judged.reason
    record = judged.record
    assert isinstance(record, ReminderRaised)
    assert (record.actor, record.event_ids) == ("router:overdue", (late.id,))
    assert record.reminder_id == reminder.id
    assert judged.key.owner == BUS

    listed = await run_liaison(kafka, "inbox", "--programme", "ncpi", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = lines(listed.stdout)
    assert (row["id"], row["overdue"]) == (str(late.id), False)
    assert row["reminder_id"] == str(reminder.id)
    # Ofsted, which published it, sees the reminder among the outcomes of its findings.
    ours = await run_liaison(kafka, "inbox", "--programme", "ilacs", "--json")
    assert ours.returncode == 0, ours.stderr
    assert [(d["kind"], d["finding_id"]) for d in lines(ours.stdout)] == [
        ("reminder", str(late.id))
    ]
    *_, ncpi_read, ofsted_read = (r for r, _ in await audited(kafka, "inbox.read"))
    assert isinstance(ncpi_read, InboxRead)
    assert ncpi_read.event_ids == (late.id, reminder.id)  # the reminder was shown too
    assert isinstance(ofsted_read, InboxRead)
    assert ofsted_read.actor == "inspectorate:ofsted"
    assert ofsted_read.event_ids == (reminder.id,)


async def test_a_genuine_finding_copied_onto_a_queue_is_not_shown_remindable_or_decidable(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    """Ofsted's finding about health, which no rule sends to HMICFRS, copied from the feed
    onto PEEL's queue with made-up rules and reason (or with NCPI's route)."""
    topics = kafka.topics
    kept_away = police_concern(subject_agencies=["health"])
    on_ncpi = police_concern()
    ncpi_route = routed(kafka, on_ncpi, signing, Programme.NCPI)
    moved = replace(ncpi_route, topic=topics.programme(PEEL))  # route and all
    await put(kafka, copied(kafka, kept_away, signing["ofsted"]), moved)

    listed = await run_liaison(kafka, "inbox", "--programme", "peel", "--json")
    assert listed.returncode == 0, listed.stderr
    assert lines(listed.stdout) == []
    (warning,) = (line for line in listed.stderr.splitlines() if line.startswith("warning:"))
    assert "2 record(s) did not verify" in warning
    assert "route_unproven: 2" in warning
    for finding in (kept_away, on_ncpi):
        shown = await run_liaison(kafka, "inbox", "show", str(finding.id), "-p", "peel")
        assert "was not routed to peel" in one_error_line(shown)
        decided = await run_liaison(
            kafka, "inbox", "decide", str(finding.id), "-p", "peel",
            "--outcome", "added_to_scope", "--note", "In scope.",
        )  # fmt: skip
        assert "was not routed to peel" in one_error_line(decided)
    later = utc_now() + dt.timedelta(days=60)
    owed = await raise_reminders(kafka, [PEEL], key=signing[BUS], now=later)
    assert owed.raised == ()
    assert await everything(kafka, topics.outcomes) == []
    assert await audited(kafka, "outcome.recorded") == []


async def test_hostile_text_is_shown_as_text(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    hostile = "\x1b]0;owned\x07\x1b[2J [bold]urgent[/bold] :warning:"
    finding = police_concern(summary=f"Held late. {hostile}")
    await put(kafka, routed(kafka, finding, signing))
    table = await run_liaison(kafka, "inbox", "--programme", "peel")
    shown = await run_liaison(kafka, "inbox", "show", str(finding.id), "--programme", "peel")
    for done in (table, shown):
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout
        assert "\x07" not in done.stdout
        assert "\ufffd" in done.stdout
    assert "[bold]urgent[/bold] :warning:" in shown.stdout  # never markup, never an emoji
    as_json = await run_liaison(kafka, "inbox", "--programme", "peel", "--json")
    (row,) = lines(as_json.stdout)
    assert row["summary"] == finding.summary  # JSON keeps the data as it is


async def test_delivery_refusal_jtai_selection_and_the_jtai_inbox_as_an_inspectorate(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    finding = police_concern()
    now = utc_now()
    refusal = DeliveryRecorded.model_validate(
        {
            "id": str(uuid.uuid4()), "source": "hmicfrs", "occurred_at": now, "area": finding.area,
            "programme": "peel", "event_id": str(finding.id), "status": "refused", "attempts": 6,
            "last_error": "http_503",
        }
    )  # fmt: skip
    start = now - dt.timedelta(days=3)
    consideration = JtaiConsiderationRequested(
        id=consideration_id(finding.area, Theme.NEGLECT, start), occurred_at=start,
        area=finding.area, theme=Theme.NEGLECT, window_start=start,
        window_end=start + dt.timedelta(days=180), trigger=JtaiTrigger.SEVERAL_INSPECTORATES,
        contributing_event_ids=(uuid.uuid4(), uuid.uuid4()),
        contributing_inspectorates=(Inspectorate.CQC, Inspectorate.OFSTED),
        rationale="Concerns about neglect from two inspectorates within 180 days.",
    )  # fmt: skip
    selection = JtaiDecisionRecorded.model_validate(
        {
            "id": str(uuid.uuid4()), "source": "cqc", "occurred_at": now,
            "consideration_id": str(consideration.id), "area": finding.area,
            "theme": "neglect", "decision": "select",
            "reason": "Concerns from three inspectorates.",
        }
    )  # fmt: skip
    unfounded = selection.model_copy(
        update={"id": uuid.uuid4(), "consideration_id": uuid.uuid4(), "theme": Theme.FRONT_DOOR}
    )  # a decision naming the area, tied to no consideration: marks nothing
    await put(
        kafka,
        routed(kafka, finding, signing),
        routed(kafka, finding, signing, JTAI),
        signed(kafka, topics.delivery, refusal, signing["hmicfrs"]),
        signed(kafka, topics.jtai, consideration, signing[BUS]),
        signed(kafka, topics.jtai, selection, signing["cqc"]),
        signed(kafka, topics.jtai, unfounded, signing["cqc"]),
    )

    peel = await run_liaison(kafka, "inbox", "--programme", "peel", "--json")
    (row,) = lines(peel.stdout)
    assert row["delivery"]["status"] == "refused"
    assert row["delivery"]["attempts"] == 6
    assert row["jtai_selected"] is True
    assert row["jtai_selected_themes"] == ["neglect"]
    table = await run_liaison(kafka, "inbox", "--programme", "peel")
    assert "delivery REFUSED (6 tries)" in table.stdout
    assert "JTAI selected: neglect" in table.stdout
    shown = await run_liaison(kafka, "inbox", "show", str(finding.id), "-p", "peel", "--json")
    (detail,) = lines(shown.stdout)
    assert [d["status"] for d in detail["deliveries"]] == ["refused"]

    jtai = await run_liaison(kafka, "inbox", "--programme", "jtai", "--as", "cqc", "--json")
    assert jtai.returncode == 0, jtai.stderr
    assert [r["id"] for r in lines(jtai.stdout)] == [str(finding.id)]
    decided = await run_liaison(
        kafka, "inbox", "decide", str(finding.id), "-p", "jtai", "--as", "cqc",
        "--outcome", "noted_no_action", "--note", "Already within the selected JTAI.",
    )  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    reads = [r for r, _ in await audited(kafka, "inbox.read")]
    assert [r.actor for r in reads] == [
        "inspectorate:hmicfrs", "inspectorate:hmicfrs", "inspectorate:hmicfrs",
        "inspectorate:cqc",
    ]  # fmt: skip
    assert reads[0].event_ids == (finding.id, refusal.id, selection.id)  # all that was shown
    assert isinstance(reads[-1], InboxRead)
    assert reads[-1].queue == topics.jtai
    ((given, sealed),) = await audited(kafka, "outcome.recorded")
    assert given.actor == "inspectorate:cqc"
    assert sealed.key.owner == "cqc"


async def test_unrouted_list_shows_what_no_rule_took_audited_as_the_operator(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    lost = police_concern(subject_agencies=["health"], theme="neglect")
    planted = police_concern(subject_agencies=["health"], theme="neglect")
    record = signed(kafka, topics.unrouted, lost, signing["ofsted"])
    reason = "no routing rule matched"
    await put(
        kafka,
        attested(record, lost, signing[BUS], rules=(), reason=reason),
        signed(kafka, topics.unrouted, planted, signing["ofsted"]),  # not put there by the router
    )

    listed = await run_liaison(kafka, "unrouted", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = lines(listed.stdout)
    assert (row["kind"], row["id"], row["area_name"]) == ("unrouted", str(lost.id), "Birmingham")
    table = await run_liaison(kafka, "unrouted", "list")
    assert "Birmingham (E08000025)" in table.stdout
    assert str(lost.id) in table.stdout
    later = await run_liaison(
        kafka,
        "unrouted",
        "list",
        "--json",
        "--since",
        (utc_now() + dt.timedelta(hours=1)).isoformat(),
    )
    assert lines(later.stdout) == []

    reads = await audited(kafka, "inbox.read")
    assert len(reads) == 3
    for record_, sealed in reads:
        assert isinstance(record_, InboxRead)
        assert record_.queue == topics.unrouted
        assert record_.actor.startswith("operator:")
        assert sealed.key.owner == OPERATOR
    assert [r.event_ids for r, _ in reads] == [(lost.id,), (lost.id,), ()]


async def test_the_python_api_reads_and_records_with_the_same_audit_records(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    finding = police_concern()
    await put(kafka, routed(kafka, finding, signing))
    key = signing["hmicfrs"]
    inbox = await read_inbox(kafka, PEEL, acting_for=Inspectorate.HMICFRS, key=key)
    assert [row.id for row in inbox.rows] == [finding.id]
    assert inbox.rows[0].area_name == "Birmingham"
    recorded = await record_outcome(
        kafka, PEEL, finding.id, Outcome.ADDED_TO_SCOPE, "In scope of the spring visit.",
        key=key, now=utc_now(),
    )  # fmt: skip
    assert recorded.finding_id == finding.id
    assert (await read_inbox(kafka, PEEL, acting_for=None, key=key)).rows == ()
    with pytest.raises(InboxError, match="not routed to peel"):
        await record_outcome(
            kafka, PEEL, uuid.uuid4(), Outcome.NOT_RELEVANT, "Not ours.", key=key, now=utc_now()
        )
    with pytest.raises(InboxError, match="run by hmicfrs, not ofsted"):
        await read_inbox(kafka, PEEL, acting_for=Inspectorate.OFSTED, key=signing["ofsted"])
    kinds: Sequence[str] = [r.action for r, _ in await audited(kafka, "inbox.read")]
    assert kinds == ["inbox.read", "inbox.read"]
    ((given, _),) = await audited(kafka, "outcome.recorded")
    assert given.event_ids == (finding.id, recorded.id)


async def test_nothing_is_shown_when_the_read_cannot_be_audited(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    finding = police_concern()
    await put(kafka, routed(kafka, finding, signing))
    await delete_topics(kafka, [kafka.topics.audit])  # the receipt has nowhere to go
    done = await run_liaison(kafka, "inbox", "--programme", "peel", "--json")
    assert "could not publish" in one_error_line(done)
    assert done.stdout == ""
    assert str(finding.id) not in done.stderr
