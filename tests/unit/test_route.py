"""Route attestations: the router's signed proof that it sent a record to a queue."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.envelope import Reason, seal
from schemas.errors import EnvelopeError, SignatureError
from schemas.records import InboundRecord, signed_headers
from schemas.route import HEADER_ROUTE, Route, attest_route, check_route
from tests.factories import NOW, concern, inbound, key_for, trust_of

BUS = key_for("liaison")
OFSTED = key_for("ofsted")
TRUST = trust_of(BUS, OFSTED)
QUEUE = "t.liaison.programme.ncpi"
EVENT = concern(subject_agencies=["police"])
VALUE = seal(EVENT, OFSTED, NOW).envelope


def route(**changes: object) -> Route:
    fields: dict[str, object] = {
        "event_id": EVENT.id,
        "event_type": EVENT.type,
        "signer": "ofsted",
        "value_sha256": hashlib.sha256(VALUE).hexdigest(),
        "topic": QUEUE,
        "rules": ("police.ncpi",),
        "reason": "concern about police practice",
    }
    return Route.model_validate(fields | changes)


def routed(attestation: bytes | None, *, value: bytes = VALUE, topic: str = QUEUE) -> InboundRecord:
    headers = signed_headers(EVENT)
    if attestation is not None:
        headers = (*headers, (HEADER_ROUTE, attestation))
    return dataclasses.replace(inbound(value, headers, topic=topic))


def test_a_route_signed_by_the_bus_for_this_value_and_queue_verifies() -> None:
    found = check_route(routed(attest_route(route(), BUS)), TRUST, NOW, event_id=EVENT.id)
    assert found == route()
    assert found.rules == ("police.ncpi",)


def test_only_the_bus_key_signs_routes() -> None:
    with pytest.raises(SignatureError):
        attest_route(route(), OFSTED)


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (routed(None), "no single route"),
        (routed(attest_route(route(), BUS), topic="t.liaison.programme.custody"), "another"),
        (routed(attest_route(route(topic="t.liaison.programme.custody"), BUS)), "another"),
        (routed(attest_route(route(), BUS), value=VALUE + b" "), "another value"),
        (routed(attest_route(route(event_id=concern().id), BUS)), "another event"),
        (routed(attest_route(route(), key_for("liaison"))), "not signed by a bus key"),
        (routed(b"not an envelope"), "not a signed envelope"),
    ],
)
def test_a_copied_or_forged_route_is_refused(record: InboundRecord, why: str) -> None:
    with pytest.raises(EnvelopeError, match=why) as refused:
        check_route(record, TRUST, NOW, event_id=EVENT.id)
    assert refused.value.reason is Reason.ROUTE_UNPROVEN


def test_a_route_signed_by_an_inspectorate_key_is_refused() -> None:
    from schemas.envelope import sign_envelope  # noqa: PLC0415

    forged = sign_envelope("uk.liaison.route.v1", route().model_dump_json().encode(), OFSTED)
    with pytest.raises(EnvelopeError, match="not signed by a bus key"):
        check_route(routed(forged), TRUST, NOW, event_id=EVENT.id)


def test_two_route_headers_are_refused() -> None:
    record = routed(attest_route(route(), BUS))
    doubled = dataclasses.replace(
        record, headers=(*record.headers, (HEADER_ROUTE, attest_route(route(), BUS)))
    )
    with pytest.raises(EnvelopeError, match="no single route"):
        check_route(doubled, TRUST, NOW, event_id=EVENT.id)


def test_a_revoked_bus_key_proves_no_route_appended_after_it() -> None:
    revoked = TRUST.model_copy(
        update={"keys": (BUS.trusted(valid_from=NOW - dt.timedelta(days=30)).model_copy(
            update={"revoked_at": NOW - dt.timedelta(hours=1)}
        ), OFSTED.trusted(valid_from=NOW - dt.timedelta(days=30)))}
    )  # fmt: skip
    with pytest.raises(EnvelopeError, match="not valid"):
        check_route(routed(attest_route(route(), BUS)), revoked, NOW, event_id=EVENT.id)


@given(st.binary(max_size=600))
def test_any_header_bytes_are_refused_with_the_reason(value: bytes) -> None:
    with pytest.raises(EnvelopeError) as refused:
        check_route(routed(value), TRUST, NOW, event_id=EVENT.id)
    assert refused.value.reason is Reason.ROUTE_UNPROVEN
