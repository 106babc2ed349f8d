from __future__ import annotations

import io

from schemas.events import MAX_EVENT_BYTES
from services.inputs import read_documents


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
