"""`liaison validate` as a user runs it (no broker needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from schemas.events import ConcernRaised, ExceptionalPracticeIdentified, encode_event
from tests.factories import concern, good_practice

LIAISON = [sys.executable, "-m", "services"]


def validate(path: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LIAISON, "validate", path],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_valid_jsonl_exits_zero(tmp_path: Path) -> None:
    events: list[ConcernRaised | ExceptionalPracticeIdentified] = [concern(), good_practice()]
    file = tmp_path / "events.jsonl"
    file.write_bytes(b"\n".join(encode_event(e) for e in events) + b"\n")
    done = validate(str(file))
    assert done.returncode == 0, done.stdout + done.stderr
    for event in events:
        assert str(event.id) in done.stdout
    assert "2 checked: 2 valid, 0 invalid" in done.stderr


def test_every_problem_is_listed_by_line_and_field(tmp_path: Path) -> None:
    good = encode_event(concern())
    bad = json.loads(encode_event(concern()))
    bad.update(severity=7, area="E10000023")  # North Yorkshire's old code
    bad["summary"] = "Her NHS number 943 476 5919 was on the referral."
    file = tmp_path / "events.jsonl"
    file.write_bytes(good + b"\n" + json.dumps(bad).encode() + b"\n{not json\n")
    done = validate(str(file))
    assert done.returncode == 2
    out = done.stdout
    assert "line 1: ok" in out
    assert "line 2: severity:" in out
    assert "line 2: area:" in out
    assert "E06000065" in out  # the successor code
    assert "line 2: summary:" in out
    assert "nhs_number" in out
    assert "943 476 5919" not in out + done.stderr
    assert "line 3: not valid JSON" in out
    assert "3 checked: 1 valid, 2 invalid" in done.stderr
    assert "Traceback" not in done.stderr


def test_single_pretty_printed_object_from_stdin() -> None:
    event = good_practice()
    pretty = json.dumps(json.loads(encode_event(event)), indent=2).encode()
    done = validate("-", stdin=pretty)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"input: ok ({event.type}, id {event.id})" in done.stdout


def test_duplicate_ids_in_one_file_are_reported(tmp_path: Path) -> None:
    line = encode_event(concern())
    file = tmp_path / "twice.jsonl"
    file.write_bytes(line + b"\n" + line + b"\n")
    done = validate(str(file))
    assert done.returncode == 2
    assert "line 2: id:" in done.stdout
    assert "repeats the event at line 1" in done.stdout


def test_oversized_event_is_refused_unparsed(tmp_path: Path) -> None:
    file = tmp_path / "big.jsonl"
    file.write_bytes(b'{"summary": "' + b"x" * 70_000 + b'"}\n')
    done = validate(str(file))
    assert done.returncode == 2
    assert "line 1: event is over the 65536-byte limit (not parsed)" in done.stdout


def test_missing_file_and_empty_input_are_clear_errors(tmp_path: Path) -> None:
    missing = validate(str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr
    empty = validate("-", stdin=b"\n")
    assert empty.returncode == 2
    assert "no events found" in empty.stderr
