"""`liaison keys ...` as a user runs them, against the real broker."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from services.settings import Settings
from services.trust import load_trust
from tests.conftest import env_for

pytestmark = pytest.mark.kafka

LIAISON = [sys.executable, "-m", "services"]


def liaison(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LIAISON, *args],
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def private_files(settings: Settings) -> list[Path]:
    return sorted(settings.home.rglob("*.pem"))


async def test_generate_rotate_revoke_list_export(kafka: Settings) -> None:
    made = liaison(kafka, "keys", "generate", "--inspectorate", "ofsted")
    assert made.returncode == 0, made.stderr
    (pem,) = private_files(kafka)
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert stat.S_IMODE(pem.parent.stat().st_mode) == 0o700
    first = (await load_trust(kafka)).active("ofsted")[0]
    assert first.keyid in made.stderr
    assert pem.read_text() not in made.stdout + made.stderr  # never printed

    again = liaison(kafka, "keys", "generate", "--inspectorate", "ofsted")
    assert again.returncode == 1
    assert "already has active key" in again.stderr
    assert "keys rotate" in again.stderr

    rotated = liaison(kafka, "keys", "rotate", "--inspectorate", "ofsted")
    assert rotated.returncode == 0, rotated.stderr
    trust = await load_trust(kafka)
    (second,) = trust.active("ofsted")
    assert second.keyid != first.keyid
    old = trust.get(first.keyid)
    assert old is not None
    assert old.status.value == "retired"
    assert old.valid_until is not None

    revoked = liaison(kafka, "keys", "revoke", second.keyid[:12], "--reason", "laptop stolen")
    assert revoked.returncode == 0, revoked.stderr
    entry = (await load_trust(kafka)).get(second.keyid)
    assert entry is not None
    assert entry.status.value == "revoked"
    assert entry.revocation_reason == "laptop stolen"

    listed = liaison(kafka, "keys", "list")
    assert listed.returncode == 0
    for keyid in (first.keyid, second.keyid):
        assert keyid in listed.stdout
    exported = json.loads(liaison(kafka, "keys", "export").stdout)
    assert {k["keyid"] for k in exported["keys"]} == {first.keyid, second.keyid}
    assert "PRIVATE" not in json.dumps(exported)
    local = json.loads(liaison(kafka, "keys", "export", "--local").stdout)
    assert local == exported


def test_revoke_needs_a_known_key_and_a_reason(kafka: Settings) -> None:
    unknown = liaison(kafka, "keys", "revoke", "deadbeefdeadbeef", "--reason", "x")
    assert unknown.returncode == 1
    assert "no trusted key has an id starting deadbeefdeadbeef" in unknown.stderr
    short = liaison(kafka, "keys", "revoke", "dead", "--reason", "x")
    assert "at least 8 characters" in short.stderr
    bad = liaison(kafka, "keys", "generate", "--inspectorate", "ofqual")
    assert bad.returncode == 2
    assert "ofqual" in bad.stderr
