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


def private_files(settings: Settings, owner: str) -> list[Path]:
    return sorted(settings.home.rglob(f"private/{owner}/*.pem"))


def test_without_a_pinned_root_every_key_verb_says_how_to_make_one(kafka: Settings) -> None:
    for args in (["list"], ["generate", "--bus"], ["revoke", "deadbeefdeadbeef", "--reason", "x"]):
        done = liaison(kafka, "keys", *args)
        assert done.returncode == 1, done.stderr
        assert "no trust root is pinned" in done.stderr
        assert "liaison keys root init" in done.stderr
        assert "Traceback" not in done.stderr


async def test_generate_rotate_revoke_list_export(kafka: Settings) -> None:
    rooted = liaison(kafka, "keys", "root", "init")
    assert rooted.returncode == 0, rooted.stderr
    shown = liaison(kafka, "keys", "root", "show")
    assert "threshold 1 of 1" in shown.stdout
    assert "private key on this machine" in shown.stdout
    unaudited = liaison(kafka, "keys", "generate", "--inspectorate", "ofsted")
    assert unaudited.returncode == 1
    assert "liaison keys generate --component operator" in unaudited.stderr
    assert private_files(kafka, "ofsted") == []  # a key never trusted leaves nothing behind
    operator = liaison(kafka, "keys", "generate", "--component", "operator")
    assert operator.returncode == 0, operator.stderr
    made = liaison(kafka, "keys", "generate", "--inspectorate", "ofsted")
    assert made.returncode == 0, made.stderr
    (pem,) = private_files(kafka, "ofsted")
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
    ofsted = {k["keyid"] for k in exported["keys"] if k["owner"] == "ofsted"}
    assert ofsted == {first.keyid, second.keyid}
    assert "PRIVATE" not in json.dumps(exported)
    local = json.loads(liaison(kafka, "keys", "export", "--local").stdout)
    assert local == exported


def test_revoke_needs_a_known_key_and_a_reason(kafka: Settings) -> None:
    assert liaison(kafka, "keys", "root", "init").returncode == 0
    unknown = liaison(kafka, "keys", "revoke", "deadbeefdeadbeef", "--reason", "x")
    assert unknown.returncode == 1
    assert "no trusted key has an id starting deadbeefdeadbeef" in unknown.stderr
    short = liaison(kafka, "keys", "revoke", "dead", "--reason", "x")
    assert "at least 8 characters" in short.stderr
    bad = liaison(kafka, "keys", "generate", "--inspectorate", "ofqual")
    assert bad.returncode == 2
    assert "ofqual" in bad.stderr
