"""Shared fixtures: settings, and the real local broker for the integration tier.

Tests never depend on the ``LIAISON_*`` variables of the shell that runs them: unit tests
see none, integration tests only those that say where the broker is (a user may run the
local broker on another port, or point at another cluster).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from schemas.inspectorates import Inspectorate
from schemas.keys import BUS, COMPONENTS, SigningKey
from services.kafka import apply_topics, delete_topics
from services.keys_admin import ensure_keys
from services.local_broker import LocalBroker, answers_metadata
from services.router_service import RouterService
from services.rules_file import load_rules
from services.settings import Settings
from tests.factories import utc_now

# Hypothesis' per-example deadline is a timing assertion: on a machine busy with brokers
# and browsers (CI runs them all) it fails tests that are correct. Speed is measured in
# `make bench`, never in tests.
hypothesis_settings.register_profile("liaison", deadline=None)
hypothesis_settings.load_profile("liaison")

BROKER_VARIABLES = frozenset(
    {
        "LIAISON_BOOTSTRAP_SERVERS",
        "LIAISON_LOCAL_BROKER_PORT",
        "LIAISON_LOCAL_BROKER_HEAP_MB",
        "LIAISON_REPLICATION_FACTOR",
        "LIAISON_HOME",  # where the local broker lives, if a test has to start it
    }
)
"""The user's ``LIAISON_*`` variables integration tests honour: where the broker is."""


def _liaison_variables(keep: frozenset[str] = frozenset()) -> list[str]:
    return [name for name in os.environ if name.startswith("LIAISON_") and name not in keep]


@pytest.fixture(autouse=True)
def _no_user_settings(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the shell's LIAISON_* variables (integration tests keep the broker's)."""
    keep = BROKER_VARIABLES if request.node.get_closest_marker("kafka") else frozenset()
    for name in _liaison_variables(keep):
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings of the broker from the environment (as `make test` runs them), nothing else."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _liaison_variables(BROKER_VARIABLES):
            patch.delenv(name)
        return Settings()


@pytest.fixture(scope="session")
def live_bootstrap(base_settings: Settings) -> str:
    """The real broker's address; starts the local broker when none answers (never skips)."""
    bootstrap = base_settings.bootstrap_servers
    if not answers_metadata(bootstrap, timeout_s=5.0):
        if os.environ.get("LIAISON_BOOTSTRAP_SERVERS"):
            pytest.fail(f"no Kafka broker answers at {bootstrap} (LIAISON_BOOTSTRAP_SERVERS)")
        LocalBroker(base_settings).start(print)
    return bootstrap


@pytest.fixture
async def kafka(
    base_settings: Settings, live_bootstrap: str, tmp_path: Path
) -> AsyncIterator[Settings]:
    """Settings for one test: its own topic prefix (every contract topic applied, then
    deleted) and its own LIAISON_HOME for keys."""
    settings = base_settings.model_copy(
        update={
            "topic_prefix": f"test.{uuid.uuid4().hex[:10]}.",
            "bootstrap_servers": live_bootstrap,
            "home": tmp_path / "home",
        }
    )
    await apply_topics(settings, settings.topics.specs())
    yield settings
    await delete_topics(settings, [spec.name for spec in settings.topics.specs()])


@pytest.fixture
async def signing(kafka: Settings) -> dict[str, SigningKey]:
    """An active signing key for every inspectorate and every component (router, audit,
    reader, auditor, operator): public halves on the
    test's liaison.keys, private halves in the test's LIAISON_HOME (as `keys generate`)."""
    return await ensure_keys(kafka, (*(i.value for i in Inspectorate), *COMPONENTS), utc_now())


def router_for(settings: Settings, keys: dict[str, SigningKey]) -> RouterService:
    """An in-process router with the shipped rules and the bus key from ``keys``."""
    return RouterService(settings, load_rules(settings.rules_path), keys[BUS])


def env_for(settings: Settings) -> dict[str, str]:
    """The environment a `liaison` subprocess needs to act as ``settings`` (and no other
    LIAISON_* variable of the shell's)."""
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("LIAISON_")},
        "LIAISON_TOPIC_PREFIX": settings.topic_prefix,
        "LIAISON_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "LIAISON_HOME": str(settings.home),
    }


async def run_liaison(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `liaison ARGS...` as a user would, as ``settings``, without blocking the loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", *args,
        env={**env_for(settings), **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return subprocess.CompletedProcess(list(args), process.returncode, out.decode(), err.decode())


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one `error:` line a failed command printed (exit 1 or 2, no traceback)."""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert done.returncode in (1, 2), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return errors[0]
