"""Delivery decisions (consumers/delivery.py): classification, backoff, headers, records."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.delivery import (
    DELIVERY_NAMESPACE,
    MAX_TRIES,
    Answer,
    Failure,
    Finished,
    Retry,
    RetryPolicy,
    Verdict,
    classify,
    delivery_id,
    delivery_result,
    location_id,
    next_step,
    post_headers,
    retry_after_seconds,
    unverified_refusal,
)
from schemas.audit import DeliveryRefused, EnvelopeDelivered, decode_record, encode_record
from schemas.errors import ConfigurationError
from schemas.inspectorates import JTAI, Inspectorate, Programme
from schemas.keys import entitled
from schemas.outcomes import DeliveryStatus
from schemas.records import signed_record
from schemas.route import Route
from schemas.signed import DELIVERY_TOPIC_TYPES, open_signed, seal_signed
from tests.factories import NOW, concern, inbound, key_for, trust_of


def seeded(seed: int) -> random.Random:
    """A seeded generator: the jitter is not a secret, and tests want repeatable waits."""
    return random.Random(seed)  # noqa: S311 - jitter, not secrecy


# Classification --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert classify(Answer(status=status)) is Verdict.DELIVERED


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_408_425_429_and_5xx_are_retried(status: int) -> None:
    assert classify(Answer(status=status)) is Verdict.RETRY


@pytest.mark.parametrize("status", [100, 301, 302, 304, 400, 401, 403, 404, 409, 413, 422, 600])
def test_other_statuses_are_refused_at_once(status: int) -> None:
    assert classify(Answer(status=status)) is Verdict.REFUSE


@pytest.mark.parametrize("failure", list(Failure))
def test_transport_failures_are_retried(failure: Failure) -> None:
    assert classify(Answer(failure=failure)) is Verdict.RETRY


def test_codes_name_the_status_or_the_failure() -> None:
    assert Answer(status=503).code == "http_503"
    assert Answer(status=400).code == "http_400"
    assert Answer(failure=Failure.TIMEOUT).code == "timeout"
    assert Answer(failure=Failure.CONNECT_ERROR).code == "connect_error"


def test_an_answer_is_a_status_or_a_failure() -> None:
    with pytest.raises(ValueError, match="not both"):
        Answer()
    with pytest.raises(ValueError, match="not both"):
        Answer(status=200, failure=Failure.TIMEOUT)


# Backoff: known answers ---------------------------------------------------------------------


def test_base_wait_doubles_from_base_to_the_cap() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=10.0)
    assert [policy.base_wait(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.base_wait(10_000) == 10.0  # no overflow, however many tries


def test_wait_is_the_base_less_at_most_the_jitter() -> None:
    class Fixed(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__(0)
            self.value = value

        def random(self) -> float:
            return self.value

    policy = RetryPolicy(base_s=2.0, cap_s=60.0, jitter=0.5)
    assert policy.wait(1, Fixed(0.0)) == 2.0
    assert policy.wait(1, Fixed(0.5)) == 1.5
    assert policy.wait(3, Fixed(0.999)) == pytest.approx(4.004)
    assert RetryPolicy(jitter=0.0).wait(2, Fixed(0.7)) == 2.0


def test_retry_after_is_a_floor_capped() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=60.0, retry_after_cap_s=30.0, jitter=0.0)
    rng = seeded(1)
    assert policy.wait(1, rng, retry_after_s=5.0) == 5.0
    assert policy.wait(1, rng, retry_after_s=3600.0) == 30.0  # capped
    assert policy.wait(5, rng, retry_after_s=2.0) == 16.0  # the backoff is longer
    assert policy.wait(1, rng, retry_after_s=-4.0) == 1.0
    assert policy.wait(1, rng, retry_after_s=float("nan")) == 1.0


def test_waits_are_deterministic_with_a_seeded_rng() -> None:
    policy = RetryPolicy()
    first = [policy.wait(n, seeded(7)) for n in range(1, 9)]
    again = [policy.wait(n, seeded(7)) for n in range(1, 9)]
    assert first == again
    rng_a, rng_b = seeded(42), seeded(42)
    assert [policy.wait(n, rng_a) for n in range(1, 9)] == [
        policy.wait(n, rng_b) for n in range(1, 9)
    ]


@pytest.mark.parametrize(
    "bad",
    [
        {"tries": 0},
        {"tries": MAX_TRIES + 1},
        {"base_s": -1.0},
        {"cap_s": float("inf")},
        {"base_s": 5.0, "cap_s": 1.0},
        {"jitter": 1.5},
        {"retry_after_cap_s": float("nan")},
    ],
)
def test_a_policy_out_of_range_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_a_wait_follows_a_try() -> None:
    with pytest.raises(ValueError, match="tries_done"):
        RetryPolicy().base_wait(0)


# Backoff: properties -------------------------------------------------------------------------

policies = st.builds(
    lambda base, extra, ra_cap, jitter, tries: RetryPolicy(
        tries=tries, base_s=base, cap_s=base + extra, retry_after_cap_s=ra_cap, jitter=jitter
    ),
    st.floats(0, 100, allow_nan=False),
    st.floats(0, 1000, allow_nan=False),
    st.floats(0, 1000, allow_nan=False),
    st.floats(0, 1, allow_nan=False),
    st.integers(1, MAX_TRIES),
)
retry_afters = st.none() | st.floats(allow_nan=True, allow_infinity=True)


@given(policies, st.integers(1, 2000), st.integers(0, 2**32), retry_afters)
def test_every_wait_is_non_negative_and_capped(
    policy: RetryPolicy, tries_done: int, seed: int, retry_after: float | None
) -> None:
    wait = policy.wait(tries_done, seeded(seed), retry_after)
    assert 0.0 <= wait <= policy.longest_wait_s
    if retry_after is None:
        assert wait <= policy.cap_s
        assert wait >= policy.base_wait(tries_done) * (1 - policy.jitter)


@given(policies, st.integers(1, 2000))
def test_the_base_wait_never_decreases(policy: RetryPolicy, tries_done: int) -> None:
    assert policy.base_wait(tries_done) <= policy.base_wait(tries_done + 1) <= policy.cap_s


@given(policies, st.integers(0, 2**32), st.lists(retry_afters, min_size=1, max_size=20))
def test_the_same_seed_gives_the_same_waits(
    policy: RetryPolicy, seed: int, retry_after: list[float | None]
) -> None:
    def waits() -> list[float]:
        rng = seeded(seed)
        return [policy.wait(n, rng, r) for n, r in enumerate(retry_after, start=1)]

    assert waits() == waits()


answers = st.one_of(
    st.builds(Answer, status=st.integers(100, 599)),
    st.builds(Answer, failure=st.sampled_from(Failure)),
)


@given(policies, st.lists(answers, min_size=1, max_size=50), st.integers(0, 2**32))
def test_a_delivery_finishes_within_its_tries(
    policy: RetryPolicy, got: list[Answer], seed: int
) -> None:
    """Feeding answers (then 503s) until finished: 1 to ``tries`` tries, a code exactly when
    refused, and every retry's wait within the policy's bounds."""
    rng = seeded(seed)
    tries = 0
    while True:
        answer = got[tries] if tries < len(got) else Answer(status=503)
        tries += 1
        step = next_step(policy, tries, answer, rng)
        if isinstance(step, Finished):
            break
        assert step.tries_done == tries < policy.tries
        assert 0 <= step.wait_s <= policy.longest_wait_s
    assert 1 <= step.attempts == tries <= policy.tries
    assert (step.status is DeliveryStatus.REFUSED) == (step.last_error is not None)
    if step.status is DeliveryStatus.REFUSED:
        assert step.last_error == answer.code


# next_step: known sequences ----------------------------------------------------------------


def test_next_step_delivered_refused_and_spent() -> None:
    policy = RetryPolicy(tries=3, base_s=0.5, cap_s=1.0, jitter=0.0)
    rng = seeded(0)
    assert next_step(policy, 1, Answer(status=200), rng) == Finished(
        DeliveryStatus.DELIVERED, 1, None, 200
    )
    assert next_step(policy, 1, Answer(status=400), rng) == Finished(
        DeliveryStatus.REFUSED, 1, "http_400", 400
    )
    assert next_step(policy, 1, Answer(status=503), rng) == Retry(0.5, 1, "http_503")
    assert next_step(policy, 2, Answer(failure=Failure.TIMEOUT), rng) == Retry(1.0, 2, "timeout")
    assert next_step(policy, 3, Answer(status=503), rng) == Finished(
        DeliveryStatus.REFUSED, 3, "http_503", 503
    )
    assert next_step(policy, 2, Answer(status=429, retry_after_s=7.0), rng) == Retry(
        7.0, 2, "http_429"
    )


def test_one_try_only_refuses_after_the_first_failure() -> None:
    step = next_step(RetryPolicy(tries=1), 1, Answer(failure=Failure.CONNECT_ERROR), seeded(0))
    assert step == Finished(DeliveryStatus.REFUSED, 1, "connect_error", None)


# Retry-After ------------------------------------------------------------------------------


def test_retry_after_seconds_and_dates() -> None:
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    assert retry_after_seconds(None, now) is None
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(" 0 ", now) == 0.0
    assert retry_after_seconds("Sun, 22 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Sun, 22 Nov 2026 11:00:00 GMT", now) == 0.0  # past
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("-5", now) is None
    assert retry_after_seconds("1.5", now) is None
    assert retry_after_seconds("٣", now) is None  # a digit, but not ASCII
    assert retry_after_seconds("9" * 40, now) == 1e9


# Headers ---------------------------------------------------------------------------------


def route_of(event: Any, rules: tuple[str, ...], reason: str) -> Route:
    """A route (its signature is checked by ``schemas.route``, not here)."""
    return Route(
        event_id=event.id, event_type=event.type, signer=str(event.source),
        value_sha256="0" * 64, topic="t.liaison.programme.ncpi", rules=rules, reason=reason,
    )  # fmt: skip


def test_post_headers_carry_the_key_the_type_and_cloudevents_attributes() -> None:
    event = concern(subject_agencies=["police"])
    route = route_of(event, ("police.ncpi",), "concern about police practice")
    headers = dict(post_headers(event, route))
    assert headers == {
        "Content-Type": "application/vnd.dsse.envelope.v1+json",
        "Idempotency-Key": str(event.id),
        "ce-specversion": "1.0",
        "ce-id": str(event.id),
        "ce-source": "urn:liaison:ofsted",
        "ce-type": "uk.inspectorate.concern.raised.v1",
        "ce-time": event.occurred_at.isoformat(),
        "Liaison-Rules": "police.ncpi",
        "Liaison-Reason": "concern about police practice",
    }


def test_post_headers_are_safe_http_values() -> None:
    event = concern()
    headers = dict(post_headers(event, route_of(event, (), "caf\u00e9 %\r\nx" + "\xff" * 1990)))
    assert "Liaison-Rules" not in headers  # empty: left out
    reason = headers["Liaison-Reason"]
    assert reason.startswith("caf%C3%A9 %25%0D%0Ax")
    assert reason.isascii()
    assert all(" " <= c <= "~" for c in reason)
    assert len(reason) <= 1000
    assert "Liaison-Reason" not in dict(post_headers(event))


def test_post_headers_name_the_routes_rules_and_several_rules_are_joined() -> None:
    event = concern()
    route = route_of(event, ("police.ncpi", "severe.police"), "about the police; severe")
    headers = dict(post_headers(event, route))
    assert headers["Liaison-Rules"] == "police.ncpi,severe.police"
    assert headers["Liaison-Reason"] == "about the police; severe"
    # Nothing else can give them: a post without a route (a decision) carries neither.
    assert {"Liaison-Rules", "Liaison-Reason"}.isdisjoint(dict(post_headers(event)))


# Records ---------------------------------------------------------------------------------


def test_a_delivery_result_is_signed_by_the_receiver_and_audited() -> None:
    hmicfrs = key_for("hmicfrs")
    event = concern(subject_agencies=["police"])
    finished = Finished(DeliveryStatus.DELIVERED, 3, None, 200)
    result = delivery_result(event, Programme.NCPI, Inspectorate.HMICFRS, finished, NOW)
    assert result.event.id == delivery_id(event.id, Programme.NCPI, Inspectorate.HMICFRS)
    assert result.event.event_id == event.id
    assert result.event.area == event.area
    assert (result.event.status, result.event.attempts, result.event.last_error) == (
        DeliveryStatus.DELIVERED,
        3,
        None,
    )
    assert isinstance(result.audit, EnvelopeDelivered)
    assert result.audit.actor == "inspectorate:hmicfrs"
    assert entitled("hmicfrs", result.audit.actor)
    assert result.audit.event_ids == (event.id, result.event.id)
    assert decode_record(encode_record(result.audit)) == result.audit

    sealed = seal_signed(result.event, hmicfrs, NOW)
    record = signed_record("t.liaison.delivery", result.event, sealed.envelope)
    opened = open_signed(
        inbound(record.value, record.headers, topic=record.topic),
        trust_of(hmicfrs),
        NOW,
        DELIVERY_TOPIC_TYPES,
    )
    assert opened.event == result.event


def test_a_refused_result_names_its_last_error() -> None:
    event = concern(subject_agencies=["police"])
    finished = Finished(DeliveryStatus.REFUSED, 8, "http_503", 503)
    result = delivery_result(event, JTAI, Inspectorate.CQC, finished, NOW)
    assert result.event.source is Inspectorate.CQC
    assert result.event.last_error == "http_503"
    assert isinstance(result.audit, DeliveryRefused)
    assert (result.audit.attempts, result.audit.reason) == (8, "http_503")
    assert result.audit.actor == "inspectorate:cqc"


def test_delivery_ids_are_stable_per_event_and_programme() -> None:
    event_id = uuid.UUID("00000000-0000-4000-8000-000000000001")
    hmicfrs = Inspectorate.HMICFRS
    assert delivery_id(event_id, Programme.NCPI, hmicfrs) == uuid.uuid5(
        DELIVERY_NAMESPACE, f"{event_id}|ncpi"
    )
    assert delivery_id(event_id, Programme.NCPI, hmicfrs) != delivery_id(
        event_id, Programme.PEEL, hmicfrs
    )


def test_each_inspectorate_delivering_jtai_has_its_own_result_id() -> None:
    event_id = uuid.UUID("00000000-0000-4000-8000-000000000001")
    cqc = delivery_id(event_id, JTAI, Inspectorate.CQC)
    ofsted = delivery_id(event_id, JTAI, Inspectorate.OFSTED)
    assert cqc != ofsted
    assert cqc == uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}|jtai|cqc")
    finished = Finished(DeliveryStatus.DELIVERED, 1, None, 200)
    event = concern()
    results = {
        delivery_result(event, JTAI, i, finished, NOW).event.id
        for i in (Inspectorate.CQC, Inspectorate.OFSTED)
    }
    assert len(results) == 2


@pytest.mark.parametrize(
    "header",
    [
        (),
        (("event_id", str(uuid.UUID(int=7)).encode()),),  # a claim: never believed
        (("event_id", b"not-an-id"),),
        (("event_id", b"\xff"),),
    ],
)
def test_a_record_not_posted_is_named_by_its_place_never_by_its_claimed_id(
    header: tuple[tuple[str, bytes], ...],
) -> None:
    record = inbound(b"junk", header)
    expected = uuid.uuid5(DELIVERY_NAMESPACE, f"{record.topic}|1|42")
    assert location_id(record) == expected
    assert location_id(record) == location_id(record)
    audit = unverified_refusal(record, Programme.NCPI, Inspectorate.HMICFRS, "bad_signature", NOW)
    assert audit.event_ids == (expected,)
    assert uuid.UUID(int=7) not in audit.event_ids
    assert (audit.attempts, audit.reason, audit.programme) == (0, "bad_signature", Programme.NCPI)
    moved = inbound(b"junk", header, topic="t.liaison.programme.peel")
    assert location_id(moved) != expected
