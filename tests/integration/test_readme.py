"""The README's quick start is executed, so it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from schemas.events import decode_event
from services.settings import Settings

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def quickstart() -> list[str]:
    block = re.search(r"<!-- quickstart -->\n```sh\n(.*?)```\n<!-- /quickstart -->", README, re.S)
    assert block is not None, "README.md lost its quick-start block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_quickstart_is_the_two_commands() -> None:
    assert quickstart() == ["make demo", "make test"]


@pytest.fixture
async def demo_env(base_settings: Settings, live_bootstrap: str) -> AsyncIterator[dict[str, str]]:
    prefix = f"test.{uuid.uuid4().hex[:10]}."
    yield {**os.environ, "LIAISON_TOPIC_PREFIX": prefix}
    settings = base_settings.model_copy(update={"topic_prefix": prefix})
    admin = AIOKafkaAdminClient(bootstrap_servers=live_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([spec.name for spec in settings.topics.specs()])
    finally:
        await admin.close()


def test_make_demo_runs_twice_and_prints_its_table(demo_env: dict[str, str]) -> None:
    # `make test` is the command running this test; the demo is run for real, twice.
    assert "make demo" in quickstart()
    for run in (1, 2):
        done = subprocess.run(
            ["make", "demo"],
            cwd=ROOT,
            env=demo_env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, f"run {run}:\n{done.stdout}\n{done.stderr}"
        assert "what went where" in done.stdout
        assert re.search(r"OK: 15 events from 5 inspectorates, \d+ deliveries", done.stdout)
        assert "Traceback" not in done.stderr


def test_every_command_in_the_readme_exists() -> None:
    commands = set(re.findall(r"`liaison ([a-z][a-z-]*(?: [a-z][a-z-]*)?)", README))
    assert commands >= {"broker start", "broker stop", "topics apply", "serve router", "demo"}
    for command in sorted(commands):
        shown = subprocess.run(
            [sys.executable, "-m", "services", *command.split(), "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert shown.returncode == 0, f"liaison {command}: {shown.stderr}"


@pytest.mark.parametrize(
    ("name", "wire_type"),
    [
        ("concern", "uk.inspectorate.concern.raised.v1"),
        ("exceptional_practice", "uk.inspectorate.exceptional_practice.identified.v1"),
        ("recommendation", "uk.inspectorate.recommendation.made.v1"),
        ("review", "uk.inspectorate.recommendation.reviewed.v1"),
    ],
)
def test_readme_event_examples_are_valid(name: str, wire_type: str) -> None:
    found = re.search(rf"<!-- example: {name} -->\n```json\n(.*?)```", README, re.S)
    assert found is not None, f"README.md lost its {name} example"
    assert decode_event(found.group(1)).type == wire_type
