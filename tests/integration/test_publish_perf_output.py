"""What `liaison publish` prints, now that ids are written as plain text a transaction at
a time (issue 14): exactly one id and a newline per event, in file order, nothing else
on stdout; and its per-event log lines are still written when logging is on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.publisher import BATCH
from schemas.events import encode_event
from schemas.keys import SigningKey
from services.settings import Settings
from tests.conftest import run_liaison
from tests.integration.test_publish_transaction import spread

pytestmark = pytest.mark.kafka


async def test_publish_prints_exactly_the_ids_and_logs_when_asked(
    kafka: Settings, signing: dict[str, SigningKey], tmp_path: Path
) -> None:
    events = spread(BATCH + 3)  # two transactions
    file = tmp_path / "many.jsonl"
    file.write_bytes(b"\n".join(encode_event(e) for e in events) + b"\n")
    env = {"LIAISON_SIGNING_KEY": signing["ofsted"].to_pem().decode()}

    done = await run_liaison(kafka, "publish", "--as", "ofsted", str(file), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "".join(f"{e.id}\n" for e in events)
    assert "event_published" not in done.stderr  # a one-shot command logs at WARNING

    # Again (published twice, as a user may), now with logging on: one line per event.
    logged = await run_liaison(
        kafka, "publish", "--as", "ofsted", str(file),
        env={**env, "LIAISON_LOG_LEVEL": "DEBUG", "LIAISON_LOG_FORMAT": "json"},
    )  # fmt: skip
    assert logged.returncode == 0, logged.stderr
    assert logged.stdout == done.stdout
    lines = [json.loads(line) for line in logged.stderr.splitlines() if "event_published" in line]
    assert [line["event_id"] for line in lines] == [str(e.id) for e in events]
    assert {line["inspectorate"] for line in lines} == {"ofsted"}
