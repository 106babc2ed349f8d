"""strict_loads looks for lone surrogates only where one can be (a \\u escape, or a str
input holding one): its verdict is the same as walking every document."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import SchemaError
from schemas.wire import _unpaired_surrogates, strict_loads

texts = st.text(st.characters(codec=None), max_size=12)  # surrogates included
documents = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def _refused(data: bytes | str) -> bool:
    try:
        strict_loads(data)
    except SchemaError:
        return True
    return False


@given(documents, st.booleans())
def test_the_verdict_is_the_full_walks(document: object, ascii_only: bool) -> None:
    text = json.dumps(document, ensure_ascii=ascii_only)
    lone = _unpaired_surrogates(json.loads(text))
    assert _refused(text) == lone  # a str, perhaps holding raw surrogates
    try:
        raw = text.encode()
    except UnicodeEncodeError:
        return  # raw surrogates cannot be UTF-8 bytes
    assert _refused(raw) == lone


@pytest.mark.parametrize(
    "data",
    ['"\\ud800"', '{"a": ["x", "\\udfff"]}', '"\ud800"', '{"\ud800": 1}', '["\\\\u", "\ud83d"]'],
)
def test_a_lone_surrogate_is_refused_however_it_arrives(data: str) -> None:
    assert _refused(data)


def test_a_pair_and_an_escaped_backslash_are_text() -> None:
    assert strict_loads('"\\ud83d\\ude00 \\\\ud800"') == "\U0001f600 \\ud800"
