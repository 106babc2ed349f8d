from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest

from schemas.errors import SchemaError
from schemas.events import MAX_EVENT_BYTES, encode_event
from services.inputs import (
    MAX_INPUT_BYTES,
    check_analyst,
    check_filters,
    check_purpose,
    read_documents,
)
from tests.factories import concern


def docs(data: bytes) -> list[tuple[str, bytes, bool]]:
    return [(d.where, d.data, d.oversized) for d in read_documents(io.BytesIO(data))]


def test_a_pretty_printed_object_is_one_document() -> None:
    assert docs(b'{\n  "a": 1\n}\n') == [("input", b'{\n  "a": 1\n}', False)]


def test_json_lines_are_numbered_and_blank_lines_skipped() -> None:
    assert docs(b'{"a": 1}\n\n{"b": 2}\n{"c": 3}') == [
        ("line 1", b'{"a": 1}', False),
        ("line 3", b'{"b": 2}', False),
        ("line 4", b'{"c": 3}', False),
    ]


def test_one_line_object_is_line_one() -> None:
    assert docs(b'{"a": 1}\n') == [("line 1", b'{"a": 1}', False)]


def test_oversized_lines_are_flagged_without_being_kept() -> None:
    big = b'{"x": "' + b"a" * (MAX_EVENT_BYTES * 3) + b'"}'
    found = docs(b'{"a": 1}\n' + big + b'\n{"b": 2}\n')
    assert [(w, o) for w, _, o in found] == [("line 1", False), ("line 2", True), ("line 3", False)]
    assert len(found[1][1]) <= 64
    assert found[2][1] == b'{"b": 2}'


def test_oversized_last_line_without_newline() -> None:
    big = b"x" * (MAX_EVENT_BYTES + 10)
    assert [(w, o) for w, _, o in docs(b'{"a": 1}\n' + big)] == [
        ("line 1", False),
        ("line 2", True),
    ]


def test_empty_input_has_no_documents() -> None:
    assert docs(b"") == []
    assert docs(b"\n\n  \n") == []


def pretty_event_over_the_limit() -> bytes:
    """A pretty-printed (multi-line) event of some 2,000 lines, over the event size limit."""
    event = json.loads(encode_event(concern()))
    event["evidence_refs"] = [f"inspection-report-section-{i:05d}" for i in range(2000)]
    data = json.dumps(event, indent=2).encode()
    assert len(data) > MAX_EVENT_BYTES
    assert data.count(b"\n") > 1800
    return data


def test_a_pretty_printed_event_over_the_limit_is_one_oversized_document() -> None:
    found = docs(pretty_event_over_the_limit())
    assert [(w, o) for w, _, o in found] == [("input", True)]
    assert len(found[0][1]) <= 64


def test_a_pretty_printed_event_within_the_limit_is_one_document() -> None:
    data = json.dumps(json.loads(encode_event(concern())), indent=4).encode()
    assert docs(data) == [("input", data.strip(), False)]


def test_an_object_opened_over_many_lines_is_one_document_whatever_it_holds() -> None:
    brackets = b"[\n" * 30_000
    assert docs(brackets) == [("input", brackets.strip(), False)]
    assert [w for w, _, _ in docs(b'{\n  "a": 1\n}\n{\n  "b": 2\n}\n')] == ["input"]


def test_a_broken_first_line_of_json_lines_is_still_line_one() -> None:
    found = docs(b'{"a": \n{"b": 2}\n{"c": 3}\n')
    assert [(w, d) for w, d, _ in found] == [
        ("line 1", b'{"a":'),
        ("line 2", b'{"b": 2}'),
        ("line 3", b'{"c": 3}'),
    ]
    assert [w for w, _, _ in docs(b"not json\nnor this\n")] == ["line 1", "line 2"]


class Endless(io.RawIOBase):
    """A stream that never ends (as /dev/zero or `yes`): ``pattern`` repeated forever."""

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        chunk = (self.pattern * (size // len(self.pattern) + 1))[:size]
        buffer[:size] = chunk
        self.served += size
        return size


@pytest.mark.parametrize("pattern", [b"\0", b'{"a": 1}\n', b"\n"])
def test_a_stream_that_never_ends_is_refused_at_the_input_limit(pattern: bytes) -> None:
    stream = Endless(pattern)
    limit = 3 * MAX_EVENT_BYTES
    with pytest.raises(SchemaError, match=f"over the {limit}-byte limit") as raised:
        for _ in read_documents(io.BufferedReader(stream), limit=limit):
            pass
    assert "split" in str(raised.value)
    assert stream.served <= limit + 2 * MAX_EVENT_BYTES


def test_a_document_over_many_lines_that_never_ends_is_refused_at_the_event_limit() -> None:
    stream = Endless(b"[\n")
    found = [(d.where, d.oversized) for d in read_documents(io.BufferedReader(stream))]
    assert found == [("input", True)]
    assert stream.served <= 2 * MAX_EVENT_BYTES


def test_an_input_at_the_limit_is_read_whole() -> None:
    data = b'{"a": 1}\n' * 1000
    found = list(read_documents(io.BytesIO(data), limit=len(data)))
    assert len(found) == 1000
    with pytest.raises(SchemaError, match="limit"):
        list(read_documents(io.BytesIO(data), limit=len(data) - 1))


def test_the_default_input_limit_holds_many_events() -> None:
    assert MAX_INPUT_BYTES >= 1000 * MAX_EVENT_BYTES


@pytest.mark.parametrize("analyst", ["a.khan", "A_Khan-2", "a.khan@ofsted.gov.uk", "x" * 100])
def test_analyst_ids_that_are_accepted(analyst: str) -> None:
    assert check_analyst(analyst) == analyst


@pytest.mark.parametrize(
    "analyst", ["", "a khan", ".khan", "x" * 101, "a\nkhan", "\ud800", "khan:admin", "\uff41khan"]
)
def test_analyst_ids_that_are_refused_say_what_an_id_is(analyst: str) -> None:
    with pytest.raises(SchemaError, match="analyst id must be") as raised:
        check_analyst(analyst)
    assert "e.g. a.khan" in str(raised.value)


def test_a_purpose_is_trimmed_and_kept() -> None:
    assert check_purpose("  JTAI planning for Leeds  ") == "JTAI planning for Leeds"


@pytest.mark.parametrize("purpose", ["", "   ", "x" * 501, "why\x00", "bad \ud800 text"])
def test_purposes_that_are_refused_say_what_a_purpose_is(purpose: str) -> None:
    with pytest.raises(SchemaError, match="purpose must say why") as raised:
        check_purpose(purpose)
    assert "500 characters" in str(raised.value)


def test_a_purpose_holding_personal_data_is_refused_without_repeating_it() -> None:
    with pytest.raises(SchemaError, match="nhs_number") as raised:
        check_purpose("Checking on the child with NHS number 943 476 5919")
    assert "943" not in str(raised.value)


def test_filters_every_event_could_match_are_accepted() -> None:
    check_filters()
    check_filters(area="E08000025", theme="neglect", kind="uk.inspectorate.concern.raised.v1")


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"area": "x" * 600}, "--area must be a local authority's GSS code"),
        ({"area": "Leeds"}, "--area must be"),
        ({"theme": "Amelia Jones (aged 9)"}, "--theme must be one of front_door"),
        ({"kind": "no-such-type"}, "--type must be uk.inspectorate.concern.raised.v1 or"),
    ],
)
def test_filters_no_event_could_match_are_refused_without_repeating_them(
    given: dict[str, str], says: str
) -> None:
    with pytest.raises(SchemaError, match="^" + re.escape(says)) as raised:
        check_filters(**given)
    assert next(iter(given.values())) not in str(raised.value)
