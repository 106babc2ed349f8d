"""`liaison validate`, and the CLI's other checks of what a user types, as a user runs
them (no broker needed): every bad input is one `error:` line, never a traceback."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.errors import BrokerError
from schemas.events import ConcernRaised, ExceptionalPracticeIdentified, encode_event
from services import cli
from services.inputs import MAX_INPUT_BYTES
from tests.conftest import one_error_line
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


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LIAISON, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


UNREACHABLE = {"LIAISON_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
"""A broker that never answers: arguments are judged before Kafka is asked anything."""


def test_thirty_thousand_lines_of_brackets_is_one_error(tmp_path: Path) -> None:
    file = tmp_path / "brackets.json"
    file.write_bytes(b"[\n" * 30_000)
    done = validate(str(file))
    assert one_error_line(done) == "error: 1 checked: 0 valid, 1 invalid."
    assert done.returncode == 2
    assert done.stdout.splitlines() == ["input: nested too deeply"]


def test_a_stream_that_never_ends_is_refused_at_the_input_limit() -> None:
    done = validate("/dev/zero")
    line = one_error_line(done)
    assert done.returncode == 2
    assert f"input is over the {MAX_INPUT_BYTES}-byte limit" in line
    assert done.stdout.splitlines() == ["line 1: event is over the 65536-byte limit (not parsed)"]


def test_a_pretty_printed_event_over_the_limit_is_one_problem(tmp_path: Path) -> None:
    event = json.loads(encode_event(concern()))
    event["evidence_refs"] = [f"inspection-report-section-{i:05d}" for i in range(2000)]
    file = tmp_path / "big.json"
    file.write_text(json.dumps(event, indent=2))
    done = validate(str(file))
    one_error_line(done)
    assert done.returncode == 2
    assert done.stdout.splitlines() == ["input: event is over the 65536-byte limit (not parsed)"]


def test_an_occurred_at_out_of_range_is_one_problem(tmp_path: Path) -> None:
    event = json.loads(encode_event(concern()))
    event["occurred_at"] = "0001-01-01T00:00:00+23:59"
    file = tmp_path / "early.json"
    file.write_text(json.dumps(event))
    done = validate(str(file))
    one_error_line(done)
    assert done.returncode == 2
    assert done.stdout.startswith("line 1: occurred_at:")


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--analyst", "a khan", "--analyst: analyst id must be 1 to 100 letters"),
        ("--analyst", "", "--analyst: analyst id must be"),
        ("--purpose", "x" * 501, "--purpose: purpose must say why you are reading, in 1 to 500"),
        ("--purpose", "  ", "--purpose: purpose must say why"),
        ("--purpose", "Check on NHS number 943 476 5919", "(rule nhs_number)"),
    ],
)
def test_feed_read_refuses_bad_analyst_ids_and_purposes_in_one_line(
    option: str, value: str, expected: str
) -> None:
    given = {"--analyst": "a.khan", "--purpose": "JTAI planning", option: value}
    done = run(
        "feed", "read", *itertools.chain(*given.items()),
        env=UNREACHABLE,
    )  # fmt: skip
    assert expected in one_error_line(done)
    assert done.returncode == 2
    assert "943" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "since", ["0001-01-01T00:00:00+23:59", "yesterday", "9999-12-31T23:59:59-23:59"]
)
def test_feed_read_refuses_times_it_cannot_use_in_one_line(since: str) -> None:
    done = run(
        "feed", "read", "--analyst", "a.khan", "--purpose", "JTAI planning", "--since", since,
        env=UNREACHABLE,
    )  # fmt: skip
    assert "--since" in one_error_line(done)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LIAISON_LOG_LEVEL", "verbose"),
        ("LIAISON_LOCAL_BROKER_PORT", "not-a-port"),
        ("LIAISON_TOPIC_PREFIX", "no spaces"),
    ],
)
def test_a_bad_setting_is_one_error_naming_the_variable(name: str, value: str) -> None:
    done = run("topics", "list", env={name: value})
    line = one_error_line(done)
    assert done.returncode == 1
    assert name in line
    assert value not in line


def failing_app(exc: BaseException) -> Callable[[], None]:
    def app() -> None:
        raise exc

    return app


@pytest.mark.parametrize(
    ("raised", "says"),
    [
        (
            OverflowError("date value out of range: 0001-01-01T00:00:00+23:59"),
            "error: internal error: OverflowError; run with LIAISON_LOG_LEVEL=DEBUG for details",
        ),
        (BrokerError("cannot reach Kafka at k:9092"), "error: cannot reach Kafka at k:9092"),
    ],
)
def test_an_error_no_command_caught_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: Exception,
    says: str,
) -> None:
    monkeypatch.setattr(cli, "app", failing_app(raised))
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [says]
    assert "0001-01-01" not in captured.out + captured.err


def test_debug_adds_the_traceback_of_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "app", failing_app(OverflowError("out of range")))
    monkeypatch.setenv("LIAISON_LOG_LEVEL", "DEBUG")
    with pytest.raises(SystemExit):
        cli.main()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1].startswith("error: internal error: OverflowError")
