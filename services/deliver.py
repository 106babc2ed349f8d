"""``liaison serve deliver``: post each envelope routed to a programme to its own system.

One process per programme reads ``liaison.programme.<p>`` in consumer group
``<prefix>liaison-deliver-<p>``; the joint JTAI queue (``liaison.jtai``) is delivered by
each inspectorate to its own system, in its own group ``<prefix>liaison-deliver-jtai-<i>``
(``--as <i>``). For each record in order it:

1. verifies it again (``open_signed`` with the bus's trust store, followed live) and,
   for what the router forwards (``consumers.inbox.needs_route``), the router's route
   attestation (``schemas.route.check_route``): reaching the queue proves no routing. A
   record that does not verify, or has no valid route, is never posted: a
   ``DeliveryRefused`` audit record (0 tries, the reason code, the record named by where
   it is, never by the id it claims) is written and the record is passed;
2. posts the envelope bytes unchanged (the receiver verifies the publisher's signature
   itself) with ``Idempotency-Key: <event id>``, CloudEvents binary-mode headers and the
   route's signed rules and reason (``consumers.delivery.post_headers``), trying again
   after 408/425/429/5xx, timeouts
   and connection failures with backoff (``consumers.delivery.RetryPolicy``), refusing at
   once on any other status, and after the last try;
3. records the result: a ``DeliveryRecorded`` signed by the receiving inspectorate's key
   on ``liaison.delivery`` and its ``EnvelopeDelivered`` / ``DeliveryRefused`` audit
   record, in ONE Kafka transaction with the group's offset past the record.

So a result is recorded exactly once and no envelope is skipped: a process stopped (or
killed) before the commit posts the envelope again when it restarts, and the endpoint
drops the repeat by its idempotency key. The transactional id is stable per programme
(and receiving inspectorate, for JTAI), so a second process for the same programme fences
the first, which stops with an error; two inspectorates delivering JTAI do not.

Staying in the group while retrying: the records of a batch are handled one at a time,
and between tries the service waits by *polling* with every assigned partition paused
(``_Deliverer._wait``): paused partitions return nothing, but each poll tells aiokafka
that this member is alive, so however long the retries of one envelope take in total, no
stretch without a poll is longer than one try (``--timeout``, at most
``MAX_TIMEOUT_S``), far below ``max_poll_interval_ms`` (``MAX_POLL_INTERVAL_MS``);
heartbeats run in aiokafka's background task throughout. A partition taken away in a
rebalance meanwhile is left to its new owner (from the last committed offset).

Logs: one line per change of state (``delivery_delivered``, ``delivery_retrying`` with
the try and the wait, ``delivery_refused``), with ids and codes, never envelope content.
A transaction that fails because the broker is away is tried again with backoff, with one
``broker_unreachable`` line for the outage and one ``broker_reachable`` when a commit
succeeds again (``services.kafka.Outage``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
from collections.abc import Sequence
from enum import Enum
from typing import Any, Final
from urllib.parse import urlsplit

import httpx2
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from consumers.delivery import (
    Answer,
    Failure,
    Finished,
    RetryPolicy,
    delivery_result,
    next_step,
    post_headers,
    retry_after_seconds,
    unverified_refusal,
)
from consumers.inbox import needs_route
from schemas.envelope import Reason
from schemas.errors import BrokerError, ConfigurationError, EnvelopeError
from schemas.inspectorates import JTAI, Inspectorate, Programme, owner_of
from schemas.keys import SigningKey
from schemas.outcomes import DeliveryStatus
from schemas.records import InboundRecord, OutboundRecord, signed_record
from schemas.route import Route, check_route
from schemas.signed import (
    JTAI_TOPIC_TYPES,
    PROGRAMME_TOPIC_TYPES,
    OpenedSigned,
    open_signed,
    seal_signed,
)
from services.audit_log import audit_outbound
from services.kafka import (
    Outage,
    client_options,
    inbound,
    producer_options,
    start_when_reachable,
    stop_client,
    stop_quietly,
    tolerate_unparseable,
)
from services.settings import Settings
from services.trust import TrustFollower

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_TRIES",
    "MAX_POLL_INTERVAL_MS",
    "MAX_TIMEOUT_S",
    "check_endpoint",
    "deliver",
    "deliver_group_id",
    "deliver_transactional_id",
    "receiver_of",
]

DEFAULT_TRIES: Final = 8
DEFAULT_TIMEOUT_S: Final = 10.0
MAX_TIMEOUT_S: Final = 60.0
"""Longest timeout of one try: the longest stretch without a poll (see the docstring)."""

MAX_POLL_INTERVAL_MS = 300_000
"""The group's ``max_poll_interval_ms`` (aiokafka's default, stated): five times
``MAX_TIMEOUT_S``; retries of any length stay within it (see the docstring)."""
_POLL_MS: Final = 500
_KEEPALIVE_S: Final = 0.25
"""Longest single poll while waiting between tries (also how soon a stop is noticed)."""
_TRANSACTION_TIMEOUT_MS: Final = 30_000

_log = structlog.get_logger("liaison.deliver")


def _delivering(programme: Programme, receiver: Inspectorate) -> str:
    """Who delivers what: the programme, and for the joint JTAI queue the receiver too
    (each inspectorate delivers it to its own system, in its own group)."""
    if programme is JTAI:
        return f"{programme.value}-{receiver.value}"
    return programme.value


def deliver_group_id(settings: Settings, programme: Programme, receiver: Inspectorate) -> str:
    """The consumer group of ``serve deliver`` for ``programme`` received by ``receiver``."""
    return f"{settings.topic_prefix}liaison-deliver-{_delivering(programme, receiver)}"


def deliver_transactional_id(
    settings: Settings, programme: Programme, receiver: Inspectorate
) -> str:
    """Stable per programme (and receiver, for JTAI), so a restarted deliverer fences a
    predecessor still running, and only that one."""
    return f"{settings.topic_prefix}liaison.deliver.{_delivering(programme, receiver)}"


def receiver_of(programme: Programme, as_: Inspectorate | None) -> Inspectorate:
    """The inspectorate that receives ``programme``'s deliveries and signs their records:
    its owner, or ``as_`` for the joint JTAI programme (where it is required)."""
    owner = owner_of(programme)
    if owner is None:
        if as_ is None:
            raise ConfigurationError(
                "--as is required for --programme jtai: the inspectorate this delivery acts for"
            )
        return as_
    if as_ is not None and as_ is not owner:
        raise ConfigurationError(
            f"--programme {programme.value} is run by {owner.value}, not {as_.value}"
        )
    return owner


def check_endpoint(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; ``ConfigurationError`` if not."""
    if not _is_endpoint(url):
        raise ConfigurationError(
            "--to must be an http:// or https:// URL with a host (e.g. https://ilacs.example/inbox)"
        )
    return url


def _is_endpoint(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number from 0 to 65535
        httpx2.URL(url)  # what the client will parse
    except (ValueError, httpx2.InvalidURL):
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname) and port != 0


def _endpoint_for_logs(url: str) -> str:
    """Scheme, host and port only: a URL's path, query or user part may hold a secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Done(Enum):
    """How handling one record ended."""

    COMMITTED = "committed"
    AGAIN = "again"  # the transaction failed: read the record again
    STOPPED = "stopped"  # stopped, or the partition was taken away: nothing recorded


class _Deliverer:
    """The consumer, the transactional producer, the trust follower and the HTTP client
    around the pure decisions of ``consumers.delivery``."""

    def __init__(
        self,
        settings: Settings,
        *,
        programme: Programme,
        url: str,
        key: SigningKey,
        policy: RetryPolicy,
        timeout_s: float,
        rng: random.Random,
        stop: asyncio.Event,
    ) -> None:
        self._settings = settings
        self._programme = programme
        self._url = url
        self._key = key
        self._receiver = Inspectorate(key.owner)
        self._policy = policy
        self._timeout_s = timeout_s
        self._rng = rng
        self._stop = stop
        self._topic = settings.topics.programme(programme)
        self._accept = JTAI_TOPIC_TYPES if programme is JTAI else PROGRAMME_TOPIC_TYPES
        self._group = deliver_group_id(settings, programme, self._receiver)
        self._trust = TrustFollower(settings)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._http: httpx2.AsyncClient | None = None
        self._log = _log.bind(programme=programme.value)
        self._outage = Outage(settings, f"deliver:{_delivering(programme, self._receiver)}")
        self._retry_in = 0.0
        """Seconds to wait before reading a record again after its transaction failed."""
        self._next: dict[TopicPartition, int] = {}
        """Per partition, the offset after the last record this process committed."""

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Load trust, fence any predecessor, join the group; nothing runs if it raises."""
        try:
            await self._trust.start()
            self._producer = AIOKafkaProducer(
                **producer_options(self._settings),
                transactional_id=deliver_transactional_id(
                    self._settings, self._programme, self._receiver
                ),
                transaction_timeout_ms=_TRANSACTION_TIMEOUT_MS,
            )
            await self._producer.start()  # init_transactions: fences a predecessor
            self._consumer = tolerate_unparseable(
                AIOKafkaConsumer(
                    self._topic,
                    **client_options(self._settings),
                    group_id=self._group,
                    enable_auto_commit=False,  # offsets are committed inside each transaction
                    auto_offset_reset="earliest",
                    isolation_level="read_committed",
                    max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
                )
            )
            await self._consumer.start()
        except BaseException:
            await stop_quietly(self.stop)
            raise
        # No redirects (a post must reach the endpoint named, or be refused) and no
        # proxies or credentials from the environment.
        self._http = httpx2.AsyncClient(
            timeout=httpx2.Timeout(self._timeout_s),
            follow_redirects=False,
            trust_env=False,
        )
        self._log.info(
            "deliver_started",
            topic=self._topic,
            group=self._group,
            endpoint=_endpoint_for_logs(self._url),
            tries=self._policy.tries,
            receiver=self._receiver.value,
        )

    async def stop(self) -> None:
        """Close the HTTP client, leave the group, stop the producer and the follower."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._consumer is not None:
            await stop_client(self._consumer)
            self._consumer = None
        if self._producer is not None:
            await stop_client(self._producer)
            self._producer = None
        await self._trust.stop()

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Handle records in order until ``stop`` is set."""
        consumer = self._consumer
        assert consumer is not None  # noqa: S101 - started first
        while not self._stop.is_set():
            batch = await consumer.getmany(timeout_ms=_POLL_MS)
            for tp, raws in sorted(batch.items()):
                for raw in raws:
                    if self._stop.is_set():
                        return  # nothing of this record was committed: read again on restart
                    if tp not in consumer.assignment():
                        break  # taken away in a rebalance: its new owner starts from the commit
                    if raw.offset < self._next.get(tp, 0):
                        continue  # committed already (given back in a rebalance, read again)
                    done = await self._handle(tp, raw)
                    if done is _Done.COMMITTED:
                        continue
                    if done is _Done.AGAIN and tp in consumer.assignment():
                        consumer.seek(tp, raw.offset)
                        await self._wait(self._retry_in)
                    break

    async def _handle(self, tp: TopicPartition, raw: Any) -> _Done:  # noqa: ANN401 - aiokafka
        record = inbound(raw)
        opened = await self._open(record)
        if isinstance(opened, EnvelopeError):
            return await self._refuse_unverified(tp, record, opened)
        route = await self._route(record, opened) if needs_route(opened.event) else None
        if isinstance(route, EnvelopeError):
            return await self._refuse_unverified(tp, record, route)
        finished = await self._post_until_finished(record, opened, route)
        if finished is None:
            return _Done.STOPPED
        now = _now()
        result = delivery_result(opened.event, self._programme, self._receiver, finished, now)
        sealed = seal_signed(result.event, self._key, now)
        outbound = [
            signed_record(self._settings.topics.delivery, result.event, sealed.envelope),
            audit_outbound(self._settings, result.audit, self._key),
        ]
        if not await self._commit(outbound, tp, record.offset + 1):
            return _Done.AGAIN
        fields = {"event_id": str(opened.event.id), "attempts": finished.attempts}
        if finished.status is DeliveryStatus.DELIVERED:
            self._log.info("delivery_delivered", **fields, http_status=finished.http_status)
        else:
            self._log.warning("delivery_refused", **fields, error=finished.last_error)
        return _Done.COMMITTED

    async def _open(self, record: InboundRecord) -> OpenedSigned | EnvelopeError:
        """The record verified with today's trust store, or why it does not verify."""
        try:
            return open_signed(record, self._trust.store, _now(), self._accept)
        except EnvelopeError as exc:
            if exc.reason != Reason.UNKNOWN_KEY:
                return exc
        # A key change is appended before the key is used, but the follower may not have
        # read it yet: read liaison.keys to its end before judging.
        await self._trust.catch_up()
        try:
            return open_signed(record, self._trust.store, _now(), self._accept)
        except EnvelopeError as exc:
            return exc

    async def _route(self, record: InboundRecord, opened: OpenedSigned) -> Route | EnvelopeError:
        """The router's verified route of ``record``, or why there is none."""
        try:
            return check_route(record, self._trust.store, _now(), event_id=opened.event.id)
        except EnvelopeError:
            pass
        # The bus key that signed it may be newer than what the follower has read.
        await self._trust.catch_up()
        try:
            return check_route(record, self._trust.store, _now(), event_id=opened.event.id)
        except EnvelopeError as exc:
            return exc

    async def _refuse_unverified(
        self, tp: TopicPartition, record: InboundRecord, error: EnvelopeError
    ) -> _Done:
        audit = unverified_refusal(
            record, self._programme, self._receiver, str(error.reason), _now()
        )
        if not await self._commit(
            [audit_outbound(self._settings, audit, self._key)], tp, record.offset + 1
        ):
            return _Done.AGAIN
        self._log.warning(
            "delivery_refused",
            record_id=str(audit.event_ids[0]),
            attempts=0,
            error=str(error.reason),
            partition=record.partition,
            offset=record.offset,
        )
        return _Done.COMMITTED

    # -- posting ---------------------------------------------------------------------------

    async def _post_until_finished(
        self, record: InboundRecord, opened: OpenedSigned, route: Route | None
    ) -> Finished | None:
        """Try until delivered or refused; ``None`` when stopped (or the partition was
        taken away) first."""
        to_send = post_headers(opened.event, route)
        tries = 0
        while True:
            answer = await self._post_once(record.value, to_send)
            if answer is None:
                return None
            tries += 1
            step = next_step(self._policy, tries, answer, self._rng)
            if isinstance(step, Finished):
                return step
            self._log.info(
                "delivery_retrying",
                event_id=str(opened.event.id),
                attempt=step.tries_done,
                error=step.code,
                wait_s=round(step.wait_s, 3),
            )
            if not await self._wait(step.wait_s) or not self._still_assigned(record):
                return None

    async def _post_once(self, body: bytes, headers: Sequence[tuple[str, str]]) -> Answer | None:
        """One try, or ``None`` when ``stop`` is set before it ends (it is abandoned)."""
        attempt = asyncio.create_task(self._send(body, headers))
        stopping = asyncio.create_task(self._stop.wait())
        await asyncio.wait({attempt, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not attempt.done():
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
            return None
        return attempt.result()

    async def _send(self, body: bytes, headers: Sequence[tuple[str, str]]) -> Answer:
        http = self._http
        assert http is not None  # noqa: S101 - started first
        try:
            # The whole try is bounded, not only each read: a slow drip is a timeout too.
            async with asyncio.timeout(self._timeout_s):
                async with http.stream("POST", self._url, content=body, headers=list(headers)) as r:
                    # The answer's body is never read: only its status and Retry-After count.
                    retry_after = retry_after_seconds(r.headers.get("retry-after"), _now())
                    return Answer(status=r.status_code, retry_after_s=retry_after)
        except (TimeoutError, httpx2.TimeoutException):
            return Answer(failure=Failure.TIMEOUT)
        except httpx2.ConnectError:
            return Answer(failure=Failure.CONNECT_ERROR)
        except httpx2.TransportError:
            return Answer(failure=Failure.TRANSPORT_ERROR)

    def _still_assigned(self, record: InboundRecord) -> bool:
        consumer = self._consumer
        assert consumer is not None  # noqa: S101 - started first
        return TopicPartition(record.topic, record.partition) in consumer.assignment()

    async def _wait(self, seconds: float) -> bool:
        """Wait ``seconds`` while polling with every partition paused (so the group keeps
        this member); ``False`` if ``stop`` was set meanwhile."""
        consumer = self._consumer
        assert consumer is not None  # noqa: S101 - started first
        paused = set(consumer.assignment())
        consumer.pause(*paused)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            while not self._stop.is_set():
                left = deadline - loop.time()
                if left <= 0:
                    return True
                # Paused partitions return nothing; the poll itself keeps the membership.
                await consumer.getmany(timeout_ms=max(1, int(min(left, _KEEPALIVE_S) * 1000)))
            return False
        finally:
            consumer.resume(*(paused & set(consumer.assignment())))

    # -- recording -------------------------------------------------------------------------

    async def _commit(
        self, outbound: Sequence[OutboundRecord], tp: TopicPartition, offset: int
    ) -> bool:
        """The records and the group's offset for ``tp`` in one transaction; ``False`` if
        it failed (nothing of it happened). Fenced: ``BrokerError``, not retriable."""
        producer = self._producer
        assert producer is not None  # noqa: S101 - started first
        try:
            async with producer.transaction():
                for out in outbound:
                    await producer.send(
                        out.topic, out.value, key=out.key, headers=list(out.headers)
                    )
                await producer.send_offsets_to_transaction({tp: offset}, self._group)
        except ProducerFenced as exc:
            self._log.error("deliver_fenced", detail="another deliverer took over")
            acting = f" --as {self._receiver.value}" if self._programme is JTAI else ""
            error = BrokerError(
                f"another `liaison serve deliver --programme {self._programme.value}{acting}`"
                " took over (its transactional id fenced this one)"
            )
            error.retriable = False
            raise error from exc
        except KafkaError as exc:
            # Logged once per outage; the record is read again after the backoff.
            self._retry_in = self._outage.failed(exc)  # raised again unless retriable
            return False
        self._outage.recovered()
        self._next[tp] = offset
        return True


async def deliver(
    settings: Settings,
    programme: Programme,
    url: str,
    *,
    key: SigningKey,
    tries: int = DEFAULT_TRIES,
    stop: asyncio.Event,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
) -> None:
    """Deliver ``programme``'s queue to ``url`` until ``stop`` is set.

    ``key`` is the receiving inspectorate's (the programme's owner, or any inspectorate
    for JTAI): it signs the ``DeliveryRecorded`` events and audit records. ``policy``
    sets the backoff (its ``tries`` is replaced by ``tries``); ``rng`` the jitter (seed it
    for repeatable waits). Waits for the broker when it does not answer; returns when
    stopped; raises ``LiaisonError`` when it cannot go on (bad arguments, fenced).
    """
    check_endpoint(url)
    owner = owner_of(programme)
    if owner is not None and key.owner != owner.value:
        raise ConfigurationError(
            f"a key of {key.owner} cannot record deliveries for {programme.value}"
            f" (run by {owner.value})"
        )
    _inspectorate(key)
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ConfigurationError(f"--timeout must be more than 0 and at most {MAX_TIMEOUT_S:g} s")
    retry = dataclasses.replace(policy or RetryPolicy(), tries=tries)
    service = _Deliverer(
        settings,
        programme=programme,
        url=url,
        key=key,
        policy=retry,
        timeout_s=timeout_s,
        rng=rng or random.Random(),  # noqa: S311 - jitter, not secrecy
        stop=stop,
    )

    async def start() -> _Deliverer:
        await service.start()
        return service

    if await start_when_reachable(settings, start, stop) is None:
        return  # stopped while waiting for the broker
    try:
        await service.run()
    finally:
        await service.stop()
        _log.info("deliver_stopped", programme=programme.value)


def _inspectorate(key: SigningKey) -> Inspectorate:
    try:
        return Inspectorate(key.owner)
    except ValueError:
        raise ConfigurationError(
            f"deliveries are recorded by an inspectorate's key, not one of {key.owner}"
        ) from None
