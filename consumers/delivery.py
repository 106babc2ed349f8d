"""Delivering routed envelopes to a programme's own system: the decisions, without I/O.

``liaison serve deliver`` (``services.deliver``) posts each verified envelope of a
programme's queue to the programme's HTTP endpoint. Everything it decides is here, pure
(no clock, no randomness of its own, no logging), so it is tested with known answers and
hypothesis:

- what one try got (``Answer``: an HTTP status or a transport failure) means
  (``classify``): 2xx delivered; 408, 425, 429 and 5xx, timeouts, connection and other
  transport failures worth another try; any other status refused at once (the endpoint
  said no; asking again will not change its mind);
- how long to wait before the next try (``RetryPolicy.wait``): exponential backoff,
  ``base_s * 2**(n-1)`` after the n-th try, capped at ``cap_s``, with "equal jitter" (a
  wait drawn from ``[b * (1 - jitter), b]`` for that base ``b``, so processes that failed
  together do not retry together, and the cap still bounds every wait); a
  ``Retry-After`` from the endpoint is honoured as a floor, itself capped at
  ``retry_after_cap_s`` so an endpoint cannot park the queue;
- after each try, whether to try again or finish (``next_step``): finished when
  delivered, refused, or ``tries`` are spent;
- the HTTP headers of a post (``post_headers``): the envelope's media type, the event id
  as ``Idempotency-Key``, the CloudEvents HTTP binary-mode attributes from the *verified*
  event, and the rules and reason of the router's *verified* route (``schemas.route``),
  never the record's plain ``liaison_rules`` / ``liaison_reason`` headers;
- the signed result and its audit record (``delivery_result``), and the audit record of
  a record that is not posted because it did not verify or has no route
  (``unverified_refusal``): it names the record by where it is (``location_id``), never
  by the event id its unverified headers claim.

Ids: a result's id is ``delivery_id(event, programme, receiver)``, one per event and
programme, and for the joint JTAI queue one per receiving inspectorate too (each may
deliver it to its own system).

Invariants (pinned in ``tests/unit/test_delivery.py``): every wait is non-negative and at
most ``max(cap_s, retry_after_cap_s)``; the base wait never decreases from one try to the
next; the same seed gives the same waits; a finished delivery took between 1 and
``tries`` tries; a refusal names its last error and a delivery has none.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import quote

from schemas.audit import DeliveryRefused, EnvelopeDelivered
from schemas.errors import ConfigurationError
from schemas.inspectorates import JTAI, Inspectorate, Programme
from schemas.outcomes import DeliveryRecorded, DeliveryStatus
from schemas.records import CE_CONTENT_TYPE, Headed, InboundRecord, cloudevents_headers
from schemas.route import Route

__all__ = [
    "DELIVERY_NAMESPACE",
    "MAX_TRIES",
    "RETRIABLE_STATUSES",
    "Answer",
    "DeliveryResult",
    "Failure",
    "Finished",
    "Retry",
    "RetryPolicy",
    "Verdict",
    "actor_of",
    "classify",
    "delivery_id",
    "delivery_result",
    "location_id",
    "next_step",
    "post_headers",
    "retry_after_seconds",
    "unverified_refusal",
]

MAX_TRIES: Final = 1000
"""Most tries a policy may allow (``DeliveryRecorded.attempts`` is at most this)."""

RETRIABLE_STATUSES: Final = frozenset({408, 425, 429})
"""4xx statuses worth another try (request timeout, too early, too many requests); every
5xx is too."""

DELIVERY_NAMESPACE: Final = uuid.UUID("6f1d8e2a-3c47-4b59-a0d2-7e9b4c1f5a83")
"""Namespace of delivery results' ids (fixed forever: changing it changes every id)."""

_HEADER_CHARS: Final = 1000
"""Longest header value sent (the router's reasons are short; an endpoint may refuse long
headers)."""
_PRINTABLE: Final = frozenset(chr(c) for c in range(0x20, 0x7F)) - {"%"}


class Verdict(StrEnum):
    """What one try means."""

    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSE = "refuse"


class Failure(StrEnum):
    """A try that got no HTTP answer."""

    TIMEOUT = "timeout"
    """No complete answer within the timeout."""
    CONNECT_ERROR = "connect_error"
    """The endpoint could not be reached (refused, unknown host, TLS failed)."""
    TRANSPORT_ERROR = "transport_error"
    """The connection broke while the request or answer was under way."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What one try got: an HTTP ``status``, or a transport ``failure``; and the
    endpoint's ``Retry-After``, in seconds, when it gave one."""

    status: int | None = None
    failure: Failure | None = None
    retry_after_s: float | None = None

    def __post_init__(self) -> None:
        if (self.status is None) == (self.failure is None):
            raise ValueError("an answer is an HTTP status or a transport failure, not both")

    @property
    def code(self) -> str:
        """A stable code for logs and records: ``http_503``, ``timeout``, ``connect_error``."""
        return f"http_{self.status}" if self.failure is None else self.failure.value


def classify(answer: Answer) -> Verdict:
    """2xx: delivered; 408/425/429/5xx and transport failures: retry; other statuses:
    refused (no retry)."""
    if answer.failure is not None:
        return Verdict.RETRY
    status = answer.status
    assert status is not None  # noqa: S101 - __post_init__: a status when no failure
    if 200 <= status < 300:  # noqa: PLR2004 - the 2xx class
        return Verdict.DELIVERED
    if status in RETRIABLE_STATUSES or 500 <= status < 600:  # noqa: PLR2004 - the 5xx class
        return Verdict.RETRY
    return Verdict.REFUSE


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and how patiently, a post is tried (see the module docstring)."""

    tries: int = 8
    base_s: float = 1.0
    cap_s: float = 60.0
    retry_after_cap_s: float = 120.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.tries <= MAX_TRIES:
            raise ConfigurationError(f"tries must be from 1 to {MAX_TRIES}")
        for name in ("base_s", "cap_s", "retry_after_cap_s", "jitter"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigurationError(f"{name} must be a finite number, 0 or more")
        if self.base_s > self.cap_s:
            raise ConfigurationError("base_s must not exceed cap_s")
        if self.jitter > 1:
            raise ConfigurationError("jitter must be from 0 to 1")

    @property
    def longest_wait_s(self) -> float:
        """No wait between tries is longer than this."""
        return max(self.cap_s, self.retry_after_cap_s)

    def base_wait(self, tries_done: int) -> float:
        """The wait before try ``tries_done + 1`` before jitter: ``base_s`` doubling, capped."""
        if tries_done < 1:
            raise ValueError("a wait follows a try: tries_done must be 1 or more")
        # 2**64 times any base worth having is past any cap: no float overflow beyond it.
        return min(self.cap_s, self.base_s * 2.0 ** min(tries_done - 1, 64))

    def wait(
        self, tries_done: int, rng: random.Random, retry_after_s: float | None = None
    ) -> float:
        """Seconds to wait after ``tries_done`` tries: the base wait less up to ``jitter`` of
        it, at least the endpoint's ``Retry-After`` (capped at ``retry_after_cap_s``)."""
        base = self.base_wait(tries_done)
        wait = base * (1.0 - self.jitter * rng.random())
        if retry_after_s is not None and math.isfinite(retry_after_s):
            wait = max(wait, min(max(retry_after_s, 0.0), self.retry_after_cap_s))
        return wait


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again after ``wait_s``; ``tries_done`` so far, the last one failing with ``code``."""

    wait_s: float
    tries_done: int
    code: str


@dataclass(frozen=True, slots=True)
class Finished:
    """Delivered, or refused (with its last error code), after ``attempts`` tries."""

    status: DeliveryStatus
    attempts: int
    last_error: str | None = None
    http_status: int | None = None


def next_step(
    policy: RetryPolicy, tries_done: int, answer: Answer, rng: random.Random
) -> Retry | Finished:
    """After try number ``tries_done`` got ``answer``: finish, or wait and try again."""
    verdict = classify(answer)
    if verdict is Verdict.DELIVERED:
        return Finished(DeliveryStatus.DELIVERED, tries_done, None, answer.status)
    if verdict is Verdict.REFUSE or tries_done >= policy.tries:
        return Finished(DeliveryStatus.REFUSED, tries_done, answer.code, answer.status)
    return Retry(policy.wait(tries_done, rng, answer.retry_after_s), tries_done, answer.code)


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """An HTTP ``Retry-After`` (delay-seconds or an HTTP-date) as seconds from ``now``;
    ``None`` when absent or not understood (then the policy's own wait stands)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text), 10**9))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # RFC 9110: an HTTP-date is always GMT
    return max(0.0, (when - now).total_seconds())


def _header_text(text: str) -> str:
    """Text as a safe HTTP header value: printable ASCII kept, anything else
    percent-encoded (UTF-8), cut to ``_HEADER_CHARS``."""
    safe = "".join(c if c in _PRINTABLE else quote(c, safe="") for c in text)
    return safe[:_HEADER_CHARS].strip()


def post_headers(event: Headed, route: Route | None = None) -> tuple[tuple[str, str], ...]:
    """The HTTP headers of one post: media type, ``Idempotency-Key`` (the event id),
    CloudEvents binary-mode ``ce-*`` attributes of the verified event, and the rules and
    reason of its verified ``route`` as ``Liaison-Rules`` / ``Liaison-Reason`` (none for
    what is not routed: a consideration or decision on ``liaison.jtai``)."""
    headers: list[tuple[str, str]] = [
        ("Content-Type", CE_CONTENT_TYPE),
        ("Idempotency-Key", str(event.id)),
    ]
    for name, value in cloudevents_headers(event):
        if name.startswith("ce_"):
            headers.append((f"ce-{name.removeprefix('ce_')}", value.decode()))
    if route is not None:
        for header, given in (
            ("Liaison-Rules", ",".join(route.rules)),
            ("Liaison-Reason", route.reason),
        ):
            text = _header_text(given)
            if text:
                headers.append((header, text))
    return tuple(headers)


def actor_of(receiver: Inspectorate) -> str:
    """The audit actor of a delivery: the receiving inspectorate."""
    return f"inspectorate:{receiver.value}"


def delivery_id(event_id: uuid.UUID, programme: Programme, receiver: Inspectorate) -> uuid.UUID:
    """The id of the one delivery result of ``event_id`` to ``programme``'s system (an
    operator's redelivery writes a result with the same id: the later one stands). For
    the joint JTAI queue each receiving inspectorate delivers to its own system: its
    results have their own ids."""
    if programme is JTAI:
        return uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}|{programme.value}|{receiver.value}")
    return uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}|{programme.value}")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The signed ``DeliveryRecorded`` to publish and its audit record."""

    event: DeliveryRecorded
    audit: EnvelopeDelivered | DeliveryRefused


def delivery_result(
    delivered: Headed,
    programme: Programme,
    receiver: Inspectorate,
    finished: Finished,
    now: dt.datetime,
) -> DeliveryResult:
    """What ``finished`` is recorded as: the ``DeliveryRecorded`` event (signed by the
    receiver) and its ``EnvelopeDelivered`` / ``DeliveryRefused`` audit record."""
    event = DeliveryRecorded(
        id=delivery_id(delivered.id, programme, receiver),
        source=receiver,
        occurred_at=now,
        area=delivered.area,
        programme=programme,
        event_id=delivered.id,
        status=finished.status,
        attempts=finished.attempts,
        last_error=finished.last_error,
    )
    ids = (delivered.id, event.id)
    audit: EnvelopeDelivered | DeliveryRefused
    if finished.status is DeliveryStatus.DELIVERED:
        audit = EnvelopeDelivered(
            at=now,
            actor=actor_of(receiver),
            event_ids=ids,
            programme=programme,
            attempts=finished.attempts,
        )
    else:
        assert finished.last_error is not None  # noqa: S101 - next_step names it
        audit = DeliveryRefused(
            at=now,
            actor=actor_of(receiver),
            event_ids=ids,
            programme=programme,
            attempts=finished.attempts,
            reason=finished.last_error,
        )
    return DeliveryResult(event, audit)


def location_id(record: InboundRecord) -> uuid.UUID:
    """An id derived from where ``record`` is (topic, partition, offset): how the audit
    record of a record that is not posted names it, the same way every time. Never the
    event id its headers claim: a signed audit record must not vouch for an id that
    nothing verified (a forger could name any event)."""
    where = f"{record.topic}|{record.partition}|{record.offset}"
    return uuid.uuid5(DELIVERY_NAMESPACE, where)


def unverified_refusal(
    record: InboundRecord,
    programme: Programme,
    receiver: Inspectorate,
    reason: str,
    now: dt.datetime,
) -> DeliveryRefused:
    """The audit record of a record that is not posted (it did not verify, or has no
    route): 0 tries, the ``Reason`` code, named by ``location_id``."""
    return DeliveryRefused(
        at=now,
        actor=actor_of(receiver),
        event_ids=(location_id(record),),
        programme=programme,
        attempts=0,
        reason=reason,
    )
