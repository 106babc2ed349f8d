"""JTAI triage against the real broker: `liaison jtai list / show / decide` and the API.

The records a router would produce are made here, each signed as the contract says: the
consideration by the bus's key on ``liaison.jtai``, the findings by their publishers on
``liaison.feed.areas``, an outcome by the receiving inspectorate on ``liaison.outcomes``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from consumers.jtai import consideration_id
from schemas.audit import AuditRecord, InboxRead, JtaiDecided, SealedRecord, judge_sealed
from schemas.envelope import seal_consideration, sign_envelope
from schemas.errors import ConfigurationError
from schemas.events import ConcernRaised, Theme
from schemas.inspectorates import Inspectorate, Programme
from schemas.jtai import JtaiConsiderationRequested, JtaiDecision, JtaiDecisionRecorded, JtaiTrigger
from schemas.keys import BUS, SigningKey
from schemas.outcomes import Outcome, OutcomeRecorded
from schemas.records import OutboundRecord, signed_record
from schemas.signed import JTAI_TOPIC_TYPES, encode_signed, seal_signed
from services.jtai_desk import (
    ConsiderationNotFoundError,
    read_triage,
    record_decision,
    selected_areas,
)
from services.reading import read_signed
from services.settings import Settings
from services.trust import load_trust
from tests.conftest import one_error_line, run_liaison
from tests.factories import concern, key_for, utc_now
from tests.integration.test_end_to_end import produce_raw
from tests.integration.test_publish_transaction import appended_at, everything

pytestmark = pytest.mark.kafka

BIRMINGHAM = "E08000025"


@dataclass(frozen=True, slots=True)
class Seeded:
    """What the router would have produced for two inspectorates' concerns."""

    ofsted: ConcernRaised
    cqc: ConcernRaised
    consideration: JtaiConsiderationRequested
    outcome: OutcomeRecorded


async def seed(settings: Settings, keys: dict[str, SigningKey]) -> Seeded:
    now = utc_now()
    ofsted = concern(
        occurred_at=now - dt.timedelta(days=3),
        subject_agencies=["police"],
        finding="cause_of_concern",
        severity=3,
        summary="Strategy discussions about neglect are held late.",
    )
    cqc = concern(
        source="cqc",
        programme="clas",
        occurred_at=now - dt.timedelta(days=2),
        subject_agencies=["health"],
        summary="Health visitors are not invited to strategy discussions.",
    )
    consideration = JtaiConsiderationRequested(
        id=consideration_id(BIRMINGHAM, Theme.NEGLECT, ofsted.occurred_at),
        occurred_at=cqc.occurred_at,
        area=BIRMINGHAM,
        theme=Theme.NEGLECT,
        window_start=ofsted.occurred_at,
        window_end=ofsted.occurred_at + dt.timedelta(days=180),
        trigger=JtaiTrigger.SEVERAL_INSPECTORATES,
        contributing_event_ids=(ofsted.id, cqc.id),
        contributing_inspectorates=(Inspectorate.CQC, Inspectorate.OFSTED),
        rationale="Concerns about neglect in Birmingham from cqc and ofsted within 180 days.",
    )
    outcome = OutcomeRecorded(
        id=uuid.uuid4(),
        source=Inspectorate.HMICFRS,
        occurred_at=now - dt.timedelta(days=1),
        area=BIRMINGHAM,
        theme=Theme.NEGLECT,
        programme=Programme.NCPI,
        finding_id=ofsted.id,
        finding_type=ofsted.type,
        finding_source=Inspectorate.OFSTED,
        finding_programme=Programme.ILACS,
        outcome=Outcome.INFORMS_SCHEDULING,
        note="Informs when we next inspect the force.",
    )
    topics = settings.topics
    sealed = seal_consideration(consideration, keys[BUS], now)
    records = [
        signed_record(topics.feed, e, seal_signed(e, keys[e.source.value], now).envelope)
        for e in (ofsted, cqc)
    ]
    records.append(signed_record(topics.jtai, consideration, sealed.envelope))
    records.append(
        signed_record(topics.outcomes, outcome, seal_signed(outcome, keys["hmicfrs"], now).envelope)
    )
    await produce_raw(settings, records)
    return Seeded(ofsted, cqc, consideration, outcome)


async def audit_records(settings: Settings) -> list[tuple[AuditRecord, str]]:
    """Every audit record on the log, verified (a value that does not verify fails the
    test), with the key id that signed it."""
    trust = await load_trust(settings)
    found = []
    for raw in await everything(settings, settings.topics.audit):
        judged = judge_sealed(raw.value, appended_at(raw), trust)
        assert isinstance(judged, SealedRecord), judged.reason
        found.append((judged.record, judged.key.keyid))
    return found


def json_lines(stdout: str) -> list[Any]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


async def test_list_shows_area_name_contributing_findings_and_their_outcomes_audited(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    seeded = await seed(kafka, signing)
    c = seeded.consideration

    listed = await run_liaison(kafka, "jtai", "list", "--as", "cqc", "--json")
    assert listed.returncode == 0, listed.stderr
    (item,) = json_lines(listed.stdout)
    assert item["id"] == str(c.id)
    assert (item["area"], item["area_name"], item["region"]) == (
        BIRMINGHAM,
        "Birmingham",
        "West Midlands",
    )
    assert (item["theme"], item["trigger"], item["open"]) == (
        "neglect",
        "several_inspectorates",
        True,
    )
    assert item["contributing_inspectorates"] == ["cqc", "ofsted"]
    ofsted, cqc = item["contributors"]
    assert ofsted["id"] == str(seeded.ofsted.id)
    assert (ofsted["publisher"], ofsted["finding"], ofsted["severity"]) == (
        "ofsted",
        "cause_of_concern",
        3,
    )
    assert ofsted["summary"] == seeded.ofsted.summary
    (given,) = ofsted["outcomes"]
    assert (given["programme"], given["outcome"]) == ("ncpi", "informs_scheduling")
    assert cqc["publisher"] == "cqc"
    assert cqc["outcomes"] == []

    table = await run_liaison(kafka, "jtai", "list", "--as", "ofsted", "--theme", "neglect")
    assert table.returncode == 0, table.stderr
    assert "Birmingham (E08000025)" in table.stdout
    assert "ncpi: informs_scheduling" in table.stdout
    assert str(seeded.cqc.id) in table.stdout

    shown = await run_liaison(kafka, "jtai", "show", str(c.id), "--as", "hmi_prisons")
    assert shown.returncode == 0, shown.stderr
    assert seeded.cqc.summary in shown.stdout
    assert c.rationale in shown.stdout

    elsewhere = await run_liaison(kafka, "jtai", "list", "--as", "cqc", "--area", "E10000016")
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "0 open JTAI considerations" in elsewhere.stdout

    reads = [(r, k) for r, k in await audit_records(kafka) if isinstance(r, InboxRead)]
    by_actor = {r.actor: (r, k) for r, k in reads}
    assert set(by_actor) == {
        "inspectorate:cqc",
        "inspectorate:ofsted",
        "inspectorate:hmi_prisons",
    }
    cqc_reads = [r for r, _k in reads if r.actor == "inspectorate:cqc"]
    first, empty = sorted(cqc_reads, key=lambda r: r.returned, reverse=True)
    assert first.queue == kafka.topics.jtai
    assert first.returned == 1
    # Everything shown: the consideration, its findings and the outcome one received.
    assert set(first.event_ids) == {c.id, seeded.ofsted.id, seeded.cqc.id, seeded.outcome.id}
    assert (empty.returned, empty.event_ids, empty.filters) == (0, (), {"area": "E10000016"})
    assert by_actor["inspectorate:cqc"][1] == signing["cqc"].keyid
    assert by_actor["inspectorate:ofsted"][1] == signing["ofsted"].keyid
    assert by_actor["inspectorate:ofsted"][0].filters == {"theme": "neglect"}
    assert by_actor["inspectorate:hmi_prisons"][0].filters == {"id": str(c.id)}
    for record, _key in reads:  # nothing personal in the receipt
        assert seeded.ofsted.summary.encode() not in record.model_dump_json().encode()


async def decisions_on_log(settings: Settings) -> list[tuple[JtaiDecisionRecorded, str]]:
    trust = await load_trust(settings)
    read = await read_signed(settings, {settings.topics.jtai: JTAI_TOPIC_TYPES}, trust, utc_now())
    return [
        (opened.event, opened.key.keyid)
        for _record, opened in read.verified
        if isinstance(opened.event, JtaiDecisionRecorded)
    ]


async def test_select_closes_a_consideration_shortlist_keeps_it_open(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    seeded = await seed(kafka, signing)
    c = seeded.consideration
    reason = "Evidence from two inspectorates about neglect in one window."

    shortlisted = await run_liaison(
        kafka, "jtai", "decide", str(c.id), "--decision", "shortlist", "--reason", reason,
        "--as", "hmicfrs",
    )  # fmt: skip
    assert shortlisted.returncode == 0, shortlisted.stderr
    shortlist_id = uuid.UUID(shortlisted.stdout.strip())
    still = await run_liaison(kafka, "jtai", "list", "--as", "hmicfrs", "--json")
    (item,) = json_lines(still.stdout)
    assert item["open"] is True
    assert item["decision"]["decision"] == "shortlist"

    selected = await run_liaison(
        kafka, "jtai", "decide", str(c.id), "--decision", "select", "--reason", reason,
        "--as", "ofsted",
    )  # fmt: skip
    assert selected.returncode == 0, selected.stderr
    select_id = uuid.UUID(selected.stdout.strip())
    assert "the consideration is closed" in selected.stderr

    gone = await run_liaison(kafka, "jtai", "list", "--as", "hmicfrs", "--json")
    assert gone.returncode == 0, gone.stderr
    assert json_lines(gone.stdout) == []
    every = await run_liaison(kafka, "jtai", "list", "--all", "--as", "hmicfrs", "--json")
    (item,) = json_lines(every.stdout)
    assert item["open"] is False
    assert item["decision"]["id"] == str(select_id)
    assert [d["decision"] for d in item["decisions"]] == ["shortlist", "select"]
    table = await run_liaison(kafka, "jtai", "list", "--all", "--as", "cqc")
    assert "select by ofsted" in table.stdout

    # The decisions verify, each signed by its inspectorate's key.
    on_log = {event.id: (event, keyid) for event, keyid in await decisions_on_log(kafka)}
    assert set(on_log) == {shortlist_id, select_id}
    event, keyid = on_log[select_id]
    assert (event.source, event.decision, event.reason) == (
        Inspectorate.OFSTED,
        JtaiDecision.SELECT,
        reason,
    )
    assert (event.consideration_id, event.area, event.theme) == (c.id, c.area, c.theme)
    assert keyid == signing["ofsted"].keyid
    assert on_log[shortlist_id][1] == signing["hmicfrs"].keyid

    # Each with its audit record, signed by the same key for the same inspectorate.
    decided = {
        r.decision_id: (r, k) for r, k in await audit_records(kafka) if isinstance(r, JtaiDecided)
    }
    assert set(decided) == {shortlist_id, select_id}
    record, signer = decided[select_id]
    assert record.actor == "inspectorate:ofsted"
    assert signer == signing["ofsted"].keyid
    assert record.event_ids == (select_id, c.id, seeded.ofsted.id, seeded.cqc.id)
    assert (record.consideration_id, record.area, record.theme, record.decision) == (
        c.id,
        BIRMINGHAM,
        Theme.NEGLECT,
        JtaiDecision.SELECT,
    )
    assert decided[shortlist_id][0].actor == "inspectorate:hmicfrs"

    # What an inbox marks: the area selected, on its theme, when it was decided.
    trust = await load_trust(kafka)
    assert await selected_areas(kafka, trust, utc_now()) == {
        BIRMINGHAM: (Theme.NEGLECT, event.occurred_at)
    }


def forged(
    consideration: JtaiConsiderationRequested, key: SigningKey, settings: Settings, **kw: object
) -> OutboundRecord:
    """A select decision on ``consideration`` signed by hand with ``key``."""
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "source": Inspectorate.CQC,
        "occurred_at": utc_now(),
        "consideration_id": consideration.id,
        "area": consideration.area,
        "theme": consideration.theme,
        "decision": JtaiDecision.SELECT,
        "reason": "Selected.",
        **kw,
    }
    event = JtaiDecisionRecorded.model_validate(fields)
    envelope = sign_envelope(event.type, encode_signed(event), key)
    return signed_record(settings.topics.jtai, event, envelope)


async def test_forged_and_mismatched_decisions_are_ignored(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    seeded = await seed(kafka, signing)
    c = seeded.consideration
    untrusted = key_for("cqc")  # never on the bus
    await produce_raw(
        kafka,
        [
            forged(c, untrusted, kafka),
            forged(c, signing[BUS], kafka),  # the bus may not speak for an inspectorate
            forged(c, signing["cqc"], kafka, area="E10000016"),  # not the consideration's area
            forged(c, signing["cqc"], kafka, consideration_id=uuid.uuid4()),
        ],
    )

    listed = await run_liaison(kafka, "jtai", "list", "--as", "ofsted", "--json")
    assert listed.returncode == 0, listed.stderr
    (item,) = json_lines(listed.stdout)
    assert item["open"] is True
    assert item["decisions"] == []
    assert "2 record(s) on the topics read did not verify" in listed.stderr
    assert "2 decision(s) ignored" in listed.stderr

    trust = await load_trust(kafka)
    read = await read_triage(
        kafka, acting_for=Inspectorate.OFSTED, key=signing["ofsted"], now=utc_now(), trust=trust
    )
    assert read.refused == 2
    assert sorted(i.reason.value for i in read.view.ignored) == [
        "area_disagrees",
        "unknown_consideration",
    ]
    assert [i.consideration for i in read.shown] == [c]
    assert await selected_areas(kafka, trust, utc_now()) == {}


async def test_unknown_or_malformed_id_is_one_error_line(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    await seed(kafka, signing)
    unknown = str(uuid.uuid4())
    decided = await run_liaison(
        kafka, "jtai", "decide", unknown, "--decision", "select", "--reason", "Selected.",
        "--as", "cqc",
    )  # fmt: skip
    assert f"no JTAI consideration {unknown} on {kafka.topics.jtai}" in one_error_line(decided)
    shown = await run_liaison(kafka, "jtai", "show", unknown, "--as", "cqc")
    assert "no JTAI consideration" in one_error_line(shown)
    choice = await run_liaison(
        kafka, "jtai", "decide", unknown, "--decision", "maybe", "--reason", "x", "--as", "cqc"
    )
    assert "--decision must be one of shortlist, select, decline, defer" in one_error_line(choice)
    malformed = await run_liaison(kafka, "jtai", "show", "not-an-id", "--as", "cqc")
    assert "a UUID" in one_error_line(malformed)
    area = await run_liaison(kafka, "jtai", "list", "--as", "cqc", "--area", "E99999999")
    assert "--area" in one_error_line(area)
    assert await decisions_on_log(kafka) == []


@pytest.mark.parametrize(
    ("reason", "rule", "leak"),
    [
        ("The case of Amelia Jones, aged 9, shows the front door fails.", "child_name", "Amelia"),
        ("A child (DOB 12/03/2011) waited three weeks for a decision.", "date_of_birth", "2011"),
    ],
)
async def test_a_reason_with_personal_data_is_refused_and_nothing_is_sent(
    kafka: Settings, signing: dict[str, SigningKey], reason: str, rule: str, leak: str
) -> None:
    seeded = await seed(kafka, signing)
    done = await run_liaison(
        kafka, "jtai", "decide", str(seeded.consideration.id), "--decision", "decline",
        "--reason", reason, "--as", "cqc",
    )  # fmt: skip
    line = one_error_line(done)
    assert line.startswith("error: reason contains")
    assert f"(rule {rule})" in line
    assert leak not in done.stderr + done.stdout
    assert await decisions_on_log(kafka) == []
    assert not [r for r, _k in await audit_records(kafka) if isinstance(r, JtaiDecided)]


async def test_the_api_records_and_reads_with_the_same_audit_records(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    seeded = await seed(kafka, signing)
    c = seeded.consideration
    key = signing["hmi_probation"]
    decided = await record_decision(
        kafka, c.id, JtaiDecision.DEFER, "Look again after the next round.", key=key, now=utc_now()
    )
    assert decided.audit.actor == "inspectorate:hmi_probation"
    read = await read_triage(
        kafka, acting_for=Inspectorate.HMI_PROBATION, key=key, now=utc_now(), include_decided=True
    )
    (item,) = read.shown
    assert item.is_open
    assert item.current is not None
    assert item.current.id == decided.event.id
    (receipt,) = read.audit
    assert receipt.filters == {"all": "true"}
    assert decided.event.id in receipt.event_ids  # the decision shown is named too

    records = await audit_records(kafka)
    assert any(
        isinstance(r, JtaiDecided) and r.decision_id == decided.event.id for r, _k in records
    )
    assert any(isinstance(r, InboxRead) and r == receipt for r, _k in records)

    with pytest.raises(ConfigurationError, match="belongs to hmi_probation, not cqc"):
        await read_triage(kafka, acting_for=Inspectorate.CQC, key=key, now=utc_now())
    with pytest.raises(ConsiderationNotFoundError):
        await record_decision(kafka, uuid.uuid4(), JtaiDecision.SELECT, "x", key=key, now=utc_now())
    with pytest.raises(ConsiderationNotFoundError):
        await read_triage(
            kafka,
            acting_for=Inspectorate.HMI_PROBATION,
            key=key,
            now=utc_now(),
            consideration_id=uuid.uuid4(),
        )
