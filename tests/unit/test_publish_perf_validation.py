"""`liaison publish` validates each event once (issue 14), and that refuses what the
double check refused.

It used to check each document (``check_documents``) and then ``seal`` the event, which
validated the event's canonical bytes a second time. Now ``Publisher.seal_validated``
signs the canonical bytes of a checked event directly. The reference below is the old
path, kept here: on any input, both give the same problem lines and the same envelopes
(Ed25519 is deterministic, so equal envelopes mean equal signed bytes).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import hypothesis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.publisher import Publisher
from schemas.envelope import Sealed, seal
from schemas.errors import EnvelopeError, SchemaError, SignatureError
from schemas.events import MAX_EVENT_BYTES, InspectorateEvent, encode_event
from schemas.inspectorates import Inspectorate
from schemas.keys import SigningKey
from schemas.topics import Topics
from services.inputs import Document, check_documents, read_documents
from services.publish import _problems
from tests.factories import NOW, concern, good_practice

KEY = SigningKey.generate("ofsted")


class _NoSink:
    """A sink for a publisher that only seals here: opening a transaction is a bug."""

    def transaction(self) -> NoReturn:
        msg = "sealing must not open a transaction"
        raise AssertionError(msg)


def _clock() -> dt.datetime:
    return NOW


def _publisher() -> Publisher:
    return Publisher(_NoSink(), Topics(""), KEY, _clock)


def _double_checked(documents: Sequence[Document]) -> tuple[list[Sealed], list[str]]:
    """What ``services.publish._problems`` did before: check, then ``seal`` (validating
    the canonical bytes again), each refusal one line."""

    def own(event: InspectorateEvent) -> str | None:
        if event.source is Inspectorate.OFSTED:
            return None
        return f"source: is {event.source.value}, but this is publishing as ofsted"

    sealed: list[Sealed] = []
    problems: list[str] = []
    for checked in check_documents(documents, _clock, own):
        problems.extend(checked.problems)
        if checked.event is None:
            continue
        try:
            sealed.append(seal(checked.event, KEY, _clock()))
        except (SchemaError, EnvelopeError) as exc:
            problems.append(f"{checked.document.where}: {exc}")
    return sealed, problems


def _both(data: bytes) -> int:
    """Compare the two paths on ``data``; how many events both sealed."""
    documents = list(read_documents(io.BytesIO(data)))
    old_sealed, old_problems = _double_checked(documents)
    new_sealed, new_problems = _problems(documents, _publisher(), Inspectorate.OFSTED)
    assert new_problems == old_problems
    assert [s.envelope for s in new_sealed] == [s.envelope for s in old_sealed]
    assert [s.payload for s in new_sealed] == [s.payload for s in old_sealed]
    assert [s.event for s in new_sealed] == [s.event for s in old_sealed]
    return len(new_sealed)


# -- documents: valid events, and near misses of every field -----------------------------

_DATETIMES = st.builds(
    "{}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}{}".format,
    st.sampled_from([1899, 1900, 2025, 2026, 8999, 9000]),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
    st.sampled_from(["", ".5", ".000001", ".1234567"]),
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+01:00", "-23:59", "+23:59", "+05:30", ""]),
)
_NEAR: dict[str, st.SearchStrategy[Any]] = {
    "type": st.sampled_from(
        [
            "uk.inspectorate.concern.raised.v1",
            "uk.inspectorate.exceptional_practice.identified.v1",
            "uk.inspectorate.recommendation.made.v1",
            "uk.inspectorate.concern.raised.v2",
        ]
    ),
    "id": st.one_of(
        st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), st.uuids().map(str)
    ),
    "source": st.sampled_from(["ofsted", "cqc", "Ofsted", "nobody"]),
    "occurred_at": st.one_of(
        _DATETIMES,
        st.sampled_from(
            [
                (NOW - dt.timedelta(hours=1)).isoformat(),
                (NOW + dt.timedelta(minutes=4)).isoformat(),
                (NOW + dt.timedelta(minutes=6)).isoformat(),
                "2026-11-22T11:00:00.123456+00:00",
                "2026-11-22T13:00:00+01:30",
            ]
        ),
    ),
    "area": st.sampled_from(
        ["E08000025", "E10000016", "E06000001", "E09000001", "E07000001", "E08000000", "e08000025"]
    ),
    "programme": st.sampled_from(["ilacs", "focused_visit", "jtai", "peel", "clas", "ILACS"]),
    "subject_agencies": st.lists(
        st.sampled_from(["local_authority", "health", "police", "probation", "school"]),
        max_size=3,
    ),
    "theme": st.sampled_from(["neglect", "front_door", "other", "Neglect", ""]),
    "summary": st.one_of(
        st.sampled_from(
            [
                "Referrals wait too long for a decision.",
                "Call the duty worker on 07700 900123.",
                "Write to jo.bloggs@example.com about it.",
                "The family lives at SW1A 1AA.",
                "Caf\u00e9 staff raised it\u2028twice.",
                "x" * 4000,
                "x" * 4001,
                "",
                " ",
            ]
        ),
        st.text(max_size=40),
    ),
    "evidence_refs": st.lists(
        st.sampled_from(
            [
                "ILACS report, section 3",
                "https://www.gov.uk/government/publications/x",
                "https://www.gov.uk/x?email=jo@example.com",
                "",
                "r" * 501,
            ]
        ),
        max_size=3,
    ),
    "classification": st.sampled_from(["OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET", None]),
    "finding": st.sampled_from(["area_for_improvement", "cause_of_concern", "good"]),
    "severity": st.one_of(st.integers(-1, 5), st.sampled_from([2.0, "2", True])),
    "immediate_risk": st.sampled_from([True, False, "false", 0, None]),
    "children_affected": st.one_of(st.none(), st.integers(-1, 10**30)),
    "jtai": st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {"requested": st.sampled_from([True, False, "true"])},
            optional={
                "rationale": st.sampled_from(
                    [None, "", "Three concerns in a quarter.", "Ring 07700 900123."]
                )
            },
        ),
    ),
    "shareable_learning": st.sampled_from([None, "Share the triage rota.", ""]),
}
_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def _base(which: int) -> dict[str, Any]:
    event: InspectorateEvent
    if which == 0:
        event = concern(jtai={"requested": True, "rationale": "Repeated concerns."})
    elif which == 1:
        event = concern(
            children_affected=3, evidence_refs=["ILACS report, section 3"], theme="front_door"
        )
    elif which == 2:
        event = good_practice(source="ofsted", programme="ilacs", area="E08000025")
    else:
        event = good_practice()  # CQC's: refused as another inspectorate's
    document: dict[str, Any] = json.loads(encode_event(event))
    return document


@st.composite
def documents(draw: Callable[..., Any]) -> bytes:
    """One JSON document: a valid event, with some fields changed, dropped or added."""
    document = _base(draw(st.sampled_from([0, 1, 2, 0, 1, 3])))
    changes = draw(st.sampled_from([0, 0, 1, 1, 2]))
    for name in draw(st.lists(st.sampled_from(sorted(_NEAR)), min_size=changes, max_size=changes)):
        anything = draw(st.integers(0, 3)) == 0
        document[name] = draw(_ANY_JSON if anything else _NEAR[name])
    if draw(st.integers(0, 3)) == 0:
        document.pop(draw(st.sampled_from(sorted(document))))
    if draw(st.integers(0, 9)) == 0:
        document["unknown"] = draw(_ANY_JSON)
    if draw(st.booleans()):  # nulls written out, as `model_dump(mode="json")` writes them
        document.setdefault("children_affected", None)
    separators = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    text = json.dumps(document, ensure_ascii=draw(st.booleans()), separators=separators)
    return text.encode()


@settings(max_examples=400)
@given(st.lists(documents(), min_size=1, max_size=3), st.booleans())
def test_one_validation_refuses_and_signs_what_two_did(
    lines: list[bytes], repeat_first: bool
) -> None:
    if repeat_first:  # the same event twice: the second is refused as a repeat
        lines = [*lines, lines[0]]
    sealed = _both(b"\n".join(lines) + b"\n")
    hypothesis.event("some sealed" if sealed else "all refused")  # --hypothesis-show-statistics


def test_the_unchanged_documents_are_published() -> None:
    """The documents the property mutates are valid (but for CQC's): the comparison
    covers what is sealed, not only what is refused."""
    data = b"".join(json.dumps(_base(which)).encode() + b"\n" for which in range(4))
    sealed, problems = _problems(
        list(read_documents(io.BytesIO(data))), _publisher(), Inspectorate.OFSTED
    )
    assert len(sealed) == 3
    assert problems == ["line 4: source: is cqc, but this is publishing as ofsted"]
    _both(data)


# -- what the first validation cannot vouch for goes through `seal` ---------------------


def test_an_event_whose_canonical_bytes_are_over_the_limit_is_refused_as_before() -> None:
    # The input leaves out `classification`, which the canonical bytes write out: just
    # under the limit as read, just over it as it would be signed.
    document = json.loads(encode_event(concern()))
    del document["classification"]
    document["evidence_refs"] = []
    reference = "ILACS report, section 3, paragraph 1"
    while len(json.dumps(document, separators=(",", ":"))) < MAX_EVENT_BYTES - 60:
        document["evidence_refs"].append(reference)
    data = json.dumps(document, separators=(",", ":")).encode()
    assert len(data) <= MAX_EVENT_BYTES
    event = next(check_documents(read_documents(io.BytesIO(data)), _clock)).event
    assert event is not None
    assert len(encode_event(event)) > MAX_EVENT_BYTES
    _both(data + b"\n")
    sealed, problems = _problems(
        list(read_documents(io.BytesIO(data))), _publisher(), Inspectorate.OFSTED
    )
    assert sealed == []
    assert len(problems) == 1
    assert problems[0].startswith("line 1: ")
    assert str(MAX_EVENT_BYTES) in problems[0]


def test_another_inspectorates_event_is_refused_as_seal_refuses_it() -> None:
    event = good_practice()  # CQC's, and the key is Ofsted's
    with pytest.raises(SignatureError) as old:
        seal(event, KEY, NOW)
    with pytest.raises(SignatureError) as new:
        _publisher().seal_validated(event)
    assert str(new.value) == str(old.value)
    assert new.value.reason == old.value.reason


def test_seal_validated_signs_the_bytes_seal_signs() -> None:
    for event in (concern(), concern(id=uuid.uuid4(), children_affected=0)):
        assert _publisher().seal_validated(event) == seal(event, KEY, NOW)
