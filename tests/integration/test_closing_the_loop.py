"""The whole loop on the real broker, as the teams would use it (issue 11's walk-through).

Ofsted publishes a cause of concern about the police; HMICFRS's NCPI and PEEL inboxes
show it; HMICFRS decides "informs scheduling" with a note; Ofsted sees the outcome; the
JTAI consideration raised by two inspectorates' concerns is listed, decided and shown in
both inboxes; a recommendation and a "not progressing" review flow through; and
`audit who-saw` shows publication, routing, receipt, outcome and decision, each with its
actor. The README's Python API examples run against the same bus.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from schemas.inspectorates import Programme
from schemas.keys import AUDIT, SigningKey
from services.audit_service import AuditService, open_store
from services.kafka import read_from
from services.router_service import RouterService
from services.settings import Settings
from tests.conftest import env_for, router_for, run_liaison
from tests.factories import utc_now

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
AREA = "E08000025"  # Birmingham, policed by West Midlands (E23000014)
THEME = "child_criminal_exploitation"


def finding(**fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred_at": (utc_now() - dt.timedelta(hours=2)).isoformat(),
        "area": AREA,
        "theme": THEME,
        **fields,
    }


def ofsted_concern() -> dict[str, Any]:
    return finding(
        type="uk.inspectorate.concern.raised.v1",
        source="ofsted",
        programme="ilacs",
        subject_agencies=["police"],
        summary="Police do not share information about children at risk of exploitation.",
        finding="cause_of_concern",
        severity=3,
        immediate_risk=False,
    )


def hmicfrs_concern() -> dict[str, Any]:
    return finding(
        type="uk.inspectorate.concern.raised.v1",
        source="hmicfrs",
        programme="ncpi",
        subject_agencies=["local_authority"],
        summary="Strategy discussions about exploited children rarely include the police.",
        finding="area_for_priority_action",
        severity=3,
        immediate_risk=False,
    )


def recommendation() -> dict[str, Any]:
    return finding(
        type="uk.inspectorate.recommendation.made.v1",
        source="hmicfrs",
        programme="ncpi",
        subject_agencies=["police"],
        summary="The force should agree a safety plan with partners for every child at risk.",
        recipient="police",
        force="E23000014",
    )


def review(recommendation_id: str) -> dict[str, Any]:
    return finding(
        type="uk.inspectorate.recommendation.reviewed.v1",
        source="hmicfrs",
        programme="ncpi",
        subject_agencies=["police"],
        summary="Not improving as quickly as we would like: plans are still not agreed.",
        recipient="police",
        force="E23000014",
        recommendation_id=recommendation_id,
        progress="not_progressing",
        occurred_at=(utc_now() - dt.timedelta(hours=1)).isoformat(),
    )


async def publish(
    settings: Settings, tmp_path: Path, inspectorate: str, *docs: dict[str, Any]
) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    done = await run_liaison(settings, "publish", "--as", inspectorate, str(path))
    assert done.returncode == 0, done.stderr


async def ok(settings: Settings, *args: str) -> str:
    done = await run_liaison(settings, *args)
    assert done.returncode == 0, f"liaison {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def until(check: Callable[[], Any], timeout_s: float = 60) -> None:
    """Wait until ``await check()`` is truthy (the router works in the background)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.5)


async def on_topic(settings: Settings, topic: str, event_id: str) -> bool:
    records = await read_from(
        settings, {(topic, p): 0 for p in range(3)}, until=lambda _: False, timeout_s=1
    )
    return any(dict(r.headers).get("event_id") == event_id.encode() for r in records)


@pytest.fixture
async def router(kafka: Settings, signing: dict[str, SigningKey]) -> AsyncIterator[RouterService]:
    service = router_for(kafka, signing)
    await service.start()
    yield service
    await service.stop()


async def audit_everything(settings: Settings, signing: dict[str, SigningKey]) -> None:
    """Run the audit service until its store holds every record on the log now."""
    ends = await read_from(
        settings, {(settings.topics.audit, 0): 0}, until=lambda _: False, timeout_s=2
    )
    with open_store(settings) as store:
        service = AuditService(settings, store, signing[AUDIT])
        await service.start()
        try:
            for _ in range(300):
                if store.size() >= len(ends):
                    break
                await asyncio.sleep(0.2)
        finally:
            await service.stop()


async def test_the_loop_from_concern_to_outcome_decision_and_review(
    kafka: Settings, signing: dict[str, SigningKey], router: RouterService, tmp_path: Path
) -> None:
    del router  # routing in the background
    concern = await concern_reaches_both_hmicfrs_inboxes(kafka, tmp_path)
    await outcome_reaches_ofsted(kafka, concern)
    await consideration_listed_decided_and_shown(kafka, tmp_path, concern)
    await recommendation_and_review_flow(kafka, tmp_path)

    # who-saw: publication, routing, receipt, outcome and decision, each with its actor.
    await audit_everything(kafka, signing)
    saw = await ok(kafka, "audit", "who-saw", concern["id"])
    for action, actor in (
        ("event.published", "inspectorate:ofsted"),
        ("event.routed", "router:0"),
        ("inbox.read", "inspectorate:hmicfrs"),
        ("outcome.recorded", "inspectorate:hmicfrs"),
        ("jtai.decision_recorded", "inspectorate:ofsted"),
        ("jtai.consideration_emitted", "router:0"),
    ):
        rows = [line for line in saw.splitlines() if action in line and actor in line]
        assert rows, (action, actor, saw)


async def concern_reaches_both_hmicfrs_inboxes(kafka: Settings, tmp_path: Path) -> dict[str, Any]:
    """Ofsted publishes a cause of concern about the police; NCPI and PEEL show it."""
    concern = ofsted_concern()
    await publish(kafka, tmp_path, "ofsted", concern)
    for programme in (Programme.NCPI, Programme.PEEL):
        await until(partial(on_topic, kafka, kafka.topics.programme(programme), concern["id"]))
    for name in ("ncpi", "peel"):
        rows = lines(await ok(kafka, "inbox", "--programme", name, "--json"))
        (row,) = [r for r in rows if r["id"] == concern["id"]]
        assert row["area_name"] == "Birmingham"
        assert row["police_force"] == "West Midlands"
        assert row["publisher"] == "ofsted"
        assert row["reason"]
        assert row["outcome"] is None
    assert "Birmingham" in await ok(kafka, "inbox", "--programme", "ncpi")
    return concern


async def outcome_reaches_ofsted(kafka: Settings, concern: dict[str, Any]) -> None:
    """HMICFRS decides "informs scheduling" with a note; Ofsted sees the outcome."""
    decided = await ok(
        kafka, "inbox", "decide", concern["id"], "--programme", "ncpi",
        "--outcome", "informs_scheduling", "--note", "Brings the force's NCPI forward.",
    )  # fmt: skip
    outcome_id = decided.strip().splitlines()[-1]
    assert uuid.UUID(outcome_id)
    open_rows = lines(await ok(kafka, "inbox", "--programme", "ncpi", "--json"))
    assert concern["id"] not in {r.get("id") for r in open_rows if r["kind"] == "finding"}

    ilacs = kafka.topics.programme(Programme.ILACS)
    await until(lambda: on_topic(kafka, ilacs, outcome_id))
    ofsted_view = lines(await ok(kafka, "inbox", "--programme", "ilacs", "--json"))
    (returned,) = [r for r in ofsted_view if r["kind"] == "outcome"]
    assert returned["finding_id"] == concern["id"]
    assert returned["outcome"] == "informs_scheduling"
    assert returned["source"] == "hmicfrs"


async def consideration_listed_decided_and_shown(
    kafka: Settings, tmp_path: Path, concern: dict[str, Any]
) -> None:
    """A second inspectorate's concern raises a consideration; JTAI selects the area."""
    second = hmicfrs_concern()
    await publish(kafka, tmp_path, "hmicfrs", second)

    async def considered() -> list[dict[str, Any]]:
        listed = lines(await ok(kafka, "jtai", "list", "--as", "ofsted", "--json"))
        return [c for c in listed if {concern["id"], second["id"]} <= _contributors(c)]

    await until(considered)
    (consideration,) = await considered()
    assert consideration["area_name"] == "Birmingham"
    assert consideration["contributing_inspectorates"] == ["hmicfrs", "ofsted"]
    assert any(
        o["outcome"] == "informs_scheduling"
        for c in consideration["contributors"]
        for o in c.get("outcomes", [])
    )
    await ok(
        kafka, "jtai", "decide", consideration["id"], "--decision", "select",
        "--reason", "Two inspectorates' concerns about exploitation in one quarter.",
        "--as", "ofsted",
    )  # fmt: skip
    still_open = lines(await ok(kafka, "jtai", "list", "--as", "cqc", "--json"))
    assert consideration["id"] not in {c["id"] for c in still_open}

    ilacs = kafka.topics.programme(Programme.ILACS)
    await until(lambda: on_topic(kafka, ilacs, second["id"]))
    for name in ("ncpi", "ilacs"):
        rows = lines(await ok(kafka, "inbox", "--programme", name, "--all", "--json"))
        findings = [r for r in rows if r["kind"] == "finding" and r["area"] == AREA]
        assert findings
        assert all(r["jtai_selected"] for r in findings), name


async def recommendation_and_review_flow(kafka: Settings, tmp_path: Path) -> None:
    """A recommendation and a "not progressing" review reach Ofsted and the JTAI queue."""
    made = recommendation()
    reviewed = review(made["id"])
    await publish(kafka, tmp_path, "hmicfrs", made, reviewed)
    ilacs = kafka.topics.programme(Programme.ILACS)
    await until(lambda: on_topic(kafka, ilacs, reviewed["id"]))
    await until(lambda: on_topic(kafka, kafka.topics.jtai, reviewed["id"]))
    rows = lines(await ok(kafka, "inbox", "--programme", "ilacs", "--json"))
    by_id = {r["id"]: r for r in rows if r["kind"] == "finding"}
    assert by_id[made["id"]]["force"] == "E23000014"
    assert by_id[reviewed["id"]]["progress"] == "not_progressing"


def _contributors(consideration: dict[str, Any]) -> set[str]:
    return {c["id"] for c in consideration["contributors"]}


def python_example(name: str) -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", readme, re.S)
    assert found is not None, f"README.md lost its {name} example"
    return found.group(1)


async def run_python(settings: Settings, source: str) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", source, cwd=ROOT, env=env_for(settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return subprocess.CompletedProcess([], process.returncode, out.decode(), err.decode())


async def test_the_readme_python_api_examples_publish_read_and_record(
    kafka: Settings, signing: dict[str, SigningKey], router: RouterService
) -> None:
    del signing, router
    published = await run_python(kafka, python_example("python-publish"))
    assert published.returncode == 0, published.stderr
    event_id = published.stdout.split()[-1]
    await until(lambda: on_topic(kafka, kafka.topics.programme(Programme.NCPI), event_id))

    read = await run_python(kafka, python_example("python-inbox"))
    assert read.returncode == 0, read.stderr
    assert event_id in read.stdout
    assert "Birmingham" in read.stdout
    assert "outcome " in read.stdout

    # The library wrote the same audit records as the CLI: receipt and outcome.
    await until(
        lambda: on_topic(kafka, kafka.topics.programme(Programme.ILACS), read.stdout.split()[-1])
    )
    rows = lines(await ok(kafka, "inbox", "--programme", "ncpi", "--all", "--json"))
    (row,) = [r for r in rows if r.get("id") == event_id]
    assert row["outcome"]["outcome"] == "informs_scheduling"
