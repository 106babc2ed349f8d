"""aiokafka wiring: the idempotent and transactional producer sinks, topic administration,
and waiting.

A broker that has just started answers before it is ready: its group coordinator and
the leaders of new partitions come a moment later, and aiokafka reports that as a
*retriable* error. Every administrative call here retries those (``with_retries``)
until a deadline, so "not ready yet" is never taken for "failed". A broker that does not
answer at all is an error at once for a one-shot command, and something to wait for, with
backoff, for a service (``start_when_reachable``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    ProducerFenced,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from producers.publisher import Delivery, Transaction
from schemas.errors import BrokerError, ConfigurationError, LiaisonError
from schemas.records import InboundRecord, OutboundRecord
from schemas.topics import TopicSpec
from services.settings import Settings

__all__ = [
    "KafkaSink",
    "KafkaTransactionalSink",
    "Outage",
    "Position",
    "TopicReport",
    "UnparseableRecord",
    "admin_client",
    "apply_topics",
    "assigned",
    "backoff",
    "broker_answers",
    "catch_up",
    "client_options",
    "committed_offsets",
    "delete_topics",
    "describe_topics",
    "end_offsets",
    "faststream_security",
    "group_members",
    "inbound",
    "kafka_refusal",
    "kafka_sink",
    "partition_counts",
    "prompt_sink",
    "publisher_transactional_id",
    "read_from",
    "start_when_reachable",
    "stop_client",
    "stop_quietly",
    "tolerate_unparseable",
    "transactional_sink",
    "with_retries",
]

T = TypeVar("T")

_VISIBLE_TIMEOUT_S = 10.0
_RETRY_DEADLINE_S: Final = 60.0
"""How long a retriable error (a broker still starting) is retried before it is reported."""
_WAIT_FIRST_S: Final = 1.0
_WAIT_CAP_S: Final = 30.0
_PROBE_TIMEOUT_S: Final = 3.0

_log = structlog.get_logger("liaison.kafka")


def _retriable(exc: BaseException | None) -> bool:
    """A Kafka or broker error worth trying again. aiokafka wraps some retriable errors
    in a plain ``KafkaError`` (a transactional producer starting while the broker goes
    away: ``KafkaError(KafkaConnectionError(...))``), so such a wrapper is judged by
    what it wraps."""
    while isinstance(exc, KafkaError | BrokerError):
        if exc.retriable:
            return True
        if type(exc) is not KafkaError:
            return False
        exc = exc.__cause__
    return False


def backoff(first: float = _WAIT_FIRST_S, cap: float = _WAIT_CAP_S) -> Iterator[float]:
    """Delays for retrying: ``first``, doubling each time, never more than ``cap``."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, cap)


# -- Kafka refusing a principal: one plain sentence ------------------------------------------

_AUTHORIZATION: Final = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
_AUTHENTICATION: Final = (SaslAuthenticationFailed, AuthenticationFailedError)


_UNNAMED: Final = "this client's principal"


def _principal(settings: Settings | None) -> str:
    """Who Kafka sees: the SASL user, the client certificate's subject, or ANONYMOUS."""
    if settings is None:
        return _UNNAMED
    if settings.kafka_security_protocol.startswith("SASL_") and settings.kafka_sasl_username:
        return f"principal {settings.kafka_sasl_username}"
    if settings.kafka_security_protocol == "SSL" and settings.kafka_cert_file is not None:
        return f"the principal of certificate {settings.kafka_cert_file.name}"
    return "principal ANONYMOUS"


def _named(exc: KafkaError, fallback: str) -> str:
    """The resource(s) an aiokafka refusal names (a topic, a set of them, an id), else
    ``fallback``."""
    named = exc.args[0] if exc.args else None
    if isinstance(named, str) and named:
        return named
    if isinstance(named, set | frozenset | list | tuple) and named:
        return ", ".join(sorted(str(item) for item in named))
    return fallback


def kafka_refusal(
    exc: BaseException | None,
    settings: Settings | None = None,
    *,
    verb: str = "use",
    resource: str = "",
    doing: str = "",
) -> BrokerError | None:
    """The one ``BrokerError`` saying plainly that Kafka refused this client (not
    authorised, or SASL authentication failed), or ``None`` when ``exc`` is no refusal.

    ``verb`` and ``resource`` say what was refused when aiokafka's error does not name it
    (``write`` ``liaison.events.cqc``); ``doing`` names a cluster-wide operation::

        Kafka refused principal ofsted: not authorised to write liaison.events.cqc
        (TOPIC_AUTHORIZATION_FAILED)
    """
    if isinstance(exc, BrokerError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if not isinstance(exc, (*_AUTHORIZATION, *_AUTHENTICATION)):
        return None
    code = getattr(exc, "message", type(exc).__name__)
    who = _principal(settings)
    if isinstance(exc, _AUTHENTICATION):
        reason = "SASL authentication failed"
        hint = "; check LIAISON_KAFKA_SASL_USERNAME and its password"
        error = BrokerError(f"Kafka refused {who}: {reason} ({code}){hint}")
    else:
        if isinstance(exc, TopicAuthorizationFailedError):
            what = f"{verb} {_named(exc, resource or 'a topic')}"
        elif isinstance(exc, TransactionalIdAuthorizationFailed):
            what = f"use transactional id {_named(exc, resource or '(this one)')}"
        elif isinstance(exc, GroupAuthorizationFailedError):
            what = f"use consumer group {_named(exc, resource or '(this one)')}"
        else:
            what = f"{doing or verb} (a right on the cluster itself)"
        error = BrokerError(f"Kafka refused {who}: not authorised to {what} ({code})")
    error.retriable = False  # the ACLs decide: trying again cannot help
    return error


async def with_retries(
    operation: Callable[[], Awaitable[T]],
    what: str,
    *,
    deadline_s: float = _RETRY_DEADLINE_S,
    delays: Iterable[float] | None = None,
) -> T:
    """``operation()``, retried while it fails with a retriable Kafka error.

    A non-retriable error, or a retriable one still there after ``deadline_s``, is raised
    as one ``BrokerError`` saying ``what`` failed.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    pauses = iter(delays if delays is not None else backoff(0.1, 2.0))
    while True:
        try:
            return await operation()
        except KafkaError as exc:
            if not exc.retriable:
                refused = kafka_refusal(exc, doing=what)
                error = BrokerError(f"{what}: {refused or exc}")
                error.retriable = False  # refused (not authorised, say): trying again won't help
                raise error from exc
            pause = next(pauses)
            if loop.time() + pause > deadline:
                raise BrokerError(f"{what}: {exc} (still so after {deadline_s:.0f} s)") from exc
            _log.debug("kafka_retrying", operation=what, error=type(exc).__name__)
            await asyncio.sleep(pause)


class KafkaSink:
    """An idempotent aiokafka producer with ``acks=all``, for records that are not events
    (keys, quarantine, redrive, audit records of components): events go through a
    ``Publisher`` on a ``transactional_sink``, with their audit records."""

    def __init__(self, producer: AIOKafkaProducer, settings: Settings | None = None) -> None:
        self._producer = producer
        self._settings = settings

    async def send(self, record: OutboundRecord) -> Delivery:
        """Produce one record and wait for the broker's acknowledgement."""
        try:
            metadata: Delivery = await self._producer.send_and_wait(
                record.topic, record.value, key=record.key, headers=list(record.headers)
            )
        except KafkaError as exc:
            refused = kafka_refusal(exc, self._settings, verb="write", resource=record.topic)
            raise refused or BrokerError(f"could not publish to {record.topic}: {exc}") from exc
        return metadata


# -- connecting: the one place a Kafka client's connection options are made -------------


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    """TLS: brokers checked against ``kafka_ca_file`` (or the system's CAs) and their host
    names; this client's certificate presented when one is set (mutual TLS)."""
    files = (settings.kafka_ca_file, settings.kafka_cert_file, settings.kafka_key_file)
    key = tuple(str(f) if f else "" for f in files)
    cached = _SSL_CONTEXTS.get(key)
    if cached is not None:
        return cached
    ca, cert, private = files
    for name, path in (("CA", ca), ("CERT", cert), ("KEY", private)):
        if path is not None and not path.is_file():
            msg = f"LIAISON_KAFKA_{name}_FILE: {path} is not a readable file"
            raise ConfigurationError(msg)
    try:
        context: ssl.SSLContext = create_ssl_context(cafile=ca, certfile=cert, keyfile=private)
    except (ssl.SSLError, OSError, ValueError) as exc:
        msg = f"the Kafka TLS files could not be loaded: {type(exc).__name__}: {exc}"
        raise ConfigurationError(msg) from None
    _SSL_CONTEXTS[key] = context
    return context


_SSL_CONTEXTS: dict[tuple[str, ...], ssl.SSLContext] = {}


def _sasl_password(settings: Settings) -> str:
    if settings.kafka_sasl_password is not None:
        return settings.kafka_sasl_password.get_secret_value()
    path = settings.kafka_sasl_password_file
    assert path is not None  # noqa: S101 - Settings requires one of the two
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        msg = f"LIAISON_KAFKA_SASL_PASSWORD_FILE: {path} could not be read"
        raise ConfigurationError(msg) from None


def client_options(settings: Settings) -> dict[str, Any]:
    """How every Kafka client Liaison makes (producer, consumer, admin) connects: the
    bootstrap servers, and TLS and SASL/SCRAM as the settings say."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": protocol,
    }
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = _sasl_password(settings)
    return options


def faststream_security(settings: Settings) -> BaseSecurity | None:
    """The same connection, as faststream's ``KafkaBroker(security=...)`` takes it."""
    options = client_options(settings)
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = options.get("ssl_context")
    if not protocol.startswith("SASL_"):
        return BaseSecurity(ssl_context=context, use_ssl=True)
    scram = SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
    return scram(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        ssl_context=context,
        use_ssl=protocol == "SASL_SSL",
    )


def producer_options(settings: Settings) -> dict[str, Any]:
    """Options every Liaison producer shares: idempotent, all in-sync replicas ack."""
    return {
        **client_options(settings),
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
    }


@asynccontextmanager
async def kafka_sink(settings: Settings) -> AsyncIterator[KafkaSink]:
    """An idempotent producer for the lifetime of the block."""
    producer = await _started(AIOKafkaProducer(**producer_options(settings)), settings)
    try:
        yield KafkaSink(producer, settings)
    finally:
        await stop_client(producer)


# -- the transactional sink (publishers) ---------------------------------------------------

_PUBLISH_TRANSACTION_TIMEOUT_MS: Final = 30_000
"""How long the broker lets a publisher's transaction stay open before aborting it. A
batch commits in well under a second; a publisher killed mid-batch holds back
``read_committed`` readers of the partitions it wrote (``liaison.audit`` has one) for at
most this long."""


def publisher_transactional_id(settings: Settings, owner: str) -> str:
    """A fresh transactional id for one publishing process of ``owner`` (an inspectorate,
    or ``demo``): ``<prefix>liaison.publisher.<owner>.<random>``.

    Random per process, not stable per host, because a publisher consumes nothing: there
    is no input that a zombie and its successor could both process, so fencing protects
    nothing. Each transaction is whole on its own (a batch and its audit records commit
    together or not at all); a batch re-sent after a failure is the same events, which the
    router routes once by id, each with its own ``event.published`` naming where that
    copy is. A stable id would fence: two publishers of one inspectorate on one host (two
    ``liaison publish`` runs, a service with workers) would abort each other's
    transactions. What a stable id would buy, ending a killed publisher's open transaction
    at once, is bounded here by ``transaction_timeout_ms`` instead. The owner in the id is
    for operators and for Kafka ACLs: a prefixed TransactionalId ACL on
    ``<prefix>liaison.publisher.<owner>.`` lets each inspectorate's principal use only its
    own ids. Each id leaves producer state on the broker until
    ``transactional.id.expiration.ms`` (7 days by default): one per run, a small amount.
    """
    return f"{settings.topic_prefix}liaison.publisher.{owner}.{uuid.uuid4().hex[:16]}"


class _KafkaTransaction:
    """Sends on a transactional producer inside its open transaction."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self.topics: set[str] = set()
        """Every topic sent to (named if Kafka refuses the transaction)."""

    async def send(self, record: OutboundRecord) -> Awaitable[Delivery]:
        """Queue ``record``; the future gives its partition and offset once the broker has it."""
        self.topics.add(record.topic)
        future: asyncio.Future[Delivery] = await self._producer.send(
            record.topic, record.value, key=record.key, headers=list(record.headers)
        )
        return future


class KafkaTransactionalSink:
    """A ``TransactionalSink`` on one transactional aiokafka producer."""

    def __init__(self, producer: AIOKafkaProducer, settings: Settings | None = None) -> None:
        self._producer = producer
        self._settings = settings

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A transaction: committed when the block ends, aborted when it raises. A Kafka
        error (in a send, or in the commit) is raised as one ``BrokerError``; a refusal
        (not authorised) says so plainly (``kafka_refusal``)."""
        sent = _KafkaTransaction(self._producer)
        try:
            async with self._producer.transaction():
                yield sent
        except KafkaError as exc:
            topics = ", ".join(sorted(sent.topics))
            refused = kafka_refusal(exc, self._settings, verb="write", resource=topics)
            raise refused or BrokerError(
                f"could not publish (the transaction did not complete): {exc}"
            ) from exc


@asynccontextmanager
async def transactional_sink(
    settings: Settings, owner: str
) -> AsyncIterator[KafkaTransactionalSink]:
    """A transactional producer for ``owner``'s publishing (``publisher_transactional_id``)
    for the lifetime of the block."""
    producer = AIOKafkaProducer(
        **producer_options(settings),
        transactional_id=publisher_transactional_id(settings, owner),
        transaction_timeout_ms=_PUBLISH_TRANSACTION_TIMEOUT_MS,
    )
    await _started(producer, settings)
    try:
        yield KafkaTransactionalSink(producer, settings)
    finally:
        await stop_client(producer)


async def group_members(settings: Settings, group_id: str) -> int:
    """How many members consumer group ``group_id`` has now (0 when it has none or none
    exists). A member that was killed may still count until its session times out."""
    async with admin_client(settings) as admin:
        responses = await with_retries(
            lambda: admin.describe_consumer_groups([group_id]), "describing a consumer group"
        )
    return sum(
        len(group["members"])
        for response in responses
        for group in response.to_object()["groups"]
        if group["error_code"] == 0
    )


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client for the block; one ``BrokerError`` (a refusal said as one)
    if Kafka cannot be reached."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()
    except KafkaError as exc:
        await admin.close()
        raise _unreachable(settings, exc) from exc
    try:
        yield admin
    except BrokerError as exc:
        if _UNNAMED not in str(exc) or kafka_refusal(exc) is None:
            raise
        # ``with_retries`` cannot name the principal; here it is known.
        refused = BrokerError(str(exc).replace(_UNNAMED, _principal(settings)))
        refused.retriable = False
        raise refused from exc.__cause__
    finally:
        await admin.close()


@dataclass(frozen=True, slots=True)
class TopicReport:
    """One contract topic as found on the cluster."""

    spec: TopicSpec
    exists: bool
    partitions: int | None
    created: bool = False
    reconfigured: tuple[str, ...] = ()
    """Config names that differed from the contract and were set to it."""


async def _partition_counts(admin: AIOKafkaAdminClient, names: Sequence[str]) -> dict[str, int]:
    existing = set(await with_retries(admin.list_topics, "could not list topics"))
    wanted = [name for name in names if name in existing]
    if not wanted:
        return {}
    described = await with_retries(
        lambda: admin.describe_topics(wanted), "could not describe topics"
    )
    return {
        item["topic"]: len(item["partitions"])
        for item in described
        if item.get("error_code", 0) == 0
    }


async def describe_topics(settings: Settings, specs: Iterable[TopicSpec]) -> list[TopicReport]:
    """Each contract topic and whether (and with how many partitions) it exists."""
    specs = list(specs)
    async with admin_client(settings) as admin:
        counts = await _partition_counts(admin, [s.name for s in specs])
    return [TopicReport(s, s.name in counts, counts.get(s.name)) for s in specs]


_TOPIC_LEVEL = 1  # DescribeConfigs config_source: set on this topic (not a default)


async def _topic_configs(
    admin: AIOKafkaAdminClient, names: Sequence[str]
) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """For each topic: (every config value, the configs set on the topic itself)."""
    if not names:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    responses = await with_retries(
        lambda: admin.describe_configs(resources), "could not read topic configs"
    )
    found: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for response in responses:
        for error_code, _, _, name, entries in response.resources:
            if error_code == 0:
                values = {entry[0]: entry[1] for entry in entries}
                own = {entry[0]: entry[1] for entry in entries if entry[3] == _TOPIC_LEVEL}
                found[name] = (values, own)
    return found


async def _reconcile_configs(
    admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]
) -> dict[str, tuple[str, ...]]:
    """Set contract configs that drifted; return, per topic, the names that were set.

    AlterConfigs replaces a topic's whole config, so the topic's other own settings (an
    operator's, say) are sent along unchanged rather than reset to defaults.
    """
    current = await _topic_configs(admin, [spec.name for spec in specs])
    drift: dict[str, tuple[str, ...]] = {}
    changes = []
    for spec in specs:
        values, own = current.get(spec.name, ({}, {}))
        names = tuple(k for k, v in spec.config.items() if values.get(k) != v)
        if names:
            drift[spec.name] = names
            configs = {**own, **spec.config}
            changes.append(ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=configs))
    if changes:
        await with_retries(lambda: admin.alter_configs(changes), "could not set topic configs")
    return drift


async def apply_topics(settings: Settings, specs: Iterable[TopicSpec]) -> list[TopicReport]:
    """Create every contract topic that is missing and set drifted configs to the contract.

    Partition counts are never changed (Kafka cannot shrink them and growing one moves
    keys between partitions); a difference is reported by ``topics list``.
    """
    specs = list(specs)
    async with admin_client(settings) as admin:
        counts = await _partition_counts(admin, [s.name for s in specs])
        missing = [s for s in specs if s.name not in counts]
        if missing:
            new = [
                NewTopic(
                    s.name,
                    s.partitions,
                    settings.replication_factor,
                    topic_configs=dict(s.config),
                )
                for s in missing
            ]

            async def create() -> Any:  # noqa: ANN401 - aiokafka is untyped
                try:
                    return await admin.create_topics(new)
                except TopicAlreadyExistsError:
                    return None  # another process created them meanwhile: fine

            response = await with_retries(create, "could not create topics")
            if response is not None:
                for name, code, message in _errors(response):
                    if code not in (0, TopicAlreadyExistsError.errno):
                        raise BrokerError(f"could not create topic {name}: {message}")
        created = {s.name for s in missing}
        drift = await _reconcile_configs(admin, [s for s in specs if s.name in counts])
        counts = await _partition_counts(admin, [s.name for s in specs])
        # The controller has committed the new topics; brokers learn of them a moment later.
        deadline = asyncio.get_running_loop().time() + _VISIBLE_TIMEOUT_S
        while len(counts) < len(specs) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
            counts = await _partition_counts(admin, [s.name for s in specs])
    return [
        TopicReport(
            s,
            s.name in counts,
            counts.get(s.name),
            created=s.name in created,
            reconfigured=drift.get(s.name, ()),
        )
        for s in specs
    ]


def _errors(response: Any) -> list[tuple[str, int, str]]:  # noqa: ANN401 - aiokafka is untyped
    """(topic, error code, message) from a CreateTopics response of any version."""
    out = []
    for item in response.topic_errors:
        name, code = item[0], item[1]
        message = item[2] if len(item) > 2 and item[2] else f"error code {code}"  # noqa: PLR2004
        out.append((name, code, message))
    return out


async def partition_counts(settings: Settings, topics: Sequence[str]) -> dict[str, int]:
    """How many partitions each of ``topics`` has; a missing topic is an error."""
    async with admin_client(settings) as admin:
        counts = await _partition_counts(admin, topics)
    missing = [topic for topic in topics if topic not in counts]
    if missing:
        if settings.kafka_security_protocol == "PLAINTEXT":
            raise BrokerError(
                f"topic(s) {', '.join(missing)} do not exist (run `liaison topics apply`)"
            )
        # Kafka shows a principal only the topics it may describe: a refusal looks alike.
        error = BrokerError(
            f"topic(s) {', '.join(missing)} do not exist, or Kafka refused"
            f" {_principal(settings)}: not authorised to read them (see `liaison acls list`;"
            " `liaison topics apply` creates missing topics)"
        )
        error.retriable = False
        raise error
    return counts


async def delete_topics(settings: Settings, names: Sequence[str]) -> None:
    """Delete ``names`` (those that exist)."""
    async with admin_client(settings) as admin:
        existing = set(await with_retries(admin.list_topics, "could not list topics"))
        wanted = [name for name in names if name in existing]
        if wanted:
            await with_retries(lambda: admin.delete_topics(wanted), "could not delete topics")


Position = dict[tuple[str, int], int]
"""An offset per (topic, partition)."""


async def committed_offsets(settings: Settings, group_id: str) -> Position:
    """The offsets consumer group ``group_id`` has committed (none: an empty position).

    Right after a broker starts, its group coordinator is not ready yet; that is retried.
    """
    async with admin_client(settings) as admin:
        committed = await with_retries(
            lambda: admin.list_consumer_group_offsets(group_id),
            f"could not read the offsets of consumer group {group_id}",
        )
    return {(tp.topic, tp.partition): meta.offset for tp, meta in committed.items()}


def _unreachable(settings: Settings, exc: KafkaError) -> BrokerError:
    refused = kafka_refusal(exc, settings, verb="connect", doing="connect")
    if refused is not None:
        return refused
    return BrokerError(
        f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}"
        " (is the broker running? `liaison broker start`)"
    )


_Client = TypeVar("_Client", AIOKafkaConsumer, AIOKafkaProducer)


async def _started(client: _Client, settings: Settings) -> _Client:
    """``client`` started; stopped again and one ``BrokerError`` if Kafka cannot be reached."""
    try:
        await client.start()
    except KafkaError as exc:
        await stop_client(client)
        raise _unreachable(settings, exc) from exc
    return client


async def stop_client(client: AIOKafkaConsumer | AIOKafkaProducer) -> None:
    """Stop an aiokafka consumer or producer, closing its connections, whatever it was
    doing.

    aiokafka's consumer awaits each fetch task it has just cancelled as it closes: one
    cancelled in its retry backoff (a broker gone, say) raises ``CancelledError`` out of
    ``stop()`` (aio-libs/aiokafka#647, #983), which would end the calling service, and
    before the client's connections are closed. Such an error is not this task's own
    cancellation: the close is finished here instead. This task's own cancellation still
    propagates.
    """
    try:
        await client.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        # What stop() left undone (aiokafka 0.14, pinned in constraints.txt): the other
        # fetch tasks, then the connections.
        fetcher = getattr(client, "_fetcher", None)
        pending = list(getattr(fetcher, "_pending_tasks", ()))
        for fetch in pending:
            fetch.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        inner = getattr(client, "_client", None) or getattr(client, "client", None)
        if inner is not None:
            await inner.close()


def _reader(settings: Settings, *, committed_only: bool = True) -> AIOKafkaConsumer:
    return tolerate_unparseable(
        AIOKafkaConsumer(
            **client_options(settings),
            enable_auto_commit=False,
            isolation_level="read_committed" if committed_only else "read_uncommitted",
            auto_offset_reset="earliest",
        )
    )


@dataclass(frozen=True, slots=True)
class UnparseableRecord:
    """Stands, in a fetch, for a record aiokafka cannot parse (see ``tolerate_unparseable``);
    it has the attributes of an aiokafka ``ConsumerRecord`` that Liaison reads."""

    topic: str
    partition: int
    offset: int
    timestamp: int = -1
    timestamp_type: int = 0
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


_CAREFUL_FETCH_MS: Final = 100


def tolerate_unparseable(consumer: AIOKafkaConsumer) -> AIOKafkaConsumer:
    """Make ``consumer.getmany`` judge a record aiokafka cannot parse instead of failing.

    aiokafka decodes header names as UTF-8 while it parses a fetch; a record whose header
    name is not (anyone with write access and a raw Kafka client can write one) makes
    every ``getmany`` raise ``UnicodeDecodeError`` without moving the position, so a
    reader would stop for good (and faststream's supervisor would restart it in a tight
    loop). After such a failure this reads each partition one record at a time: a record
    that fails is returned as an ``UnparseableRecord`` at its offset (the reader refuses it
    with a reason code, like any bad record) and the position moves past it. The records
    after it in the same producer batch cannot be parsed either and are returned the same
    way, one by one; a producer batch holds one producer's records, so only the writer of
    the bad record loses anything. Once a round reads cleanly, fetching is normal again.
    """
    fetch = consumer.getmany
    careful = False

    async def getmany(
        *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        nonlocal careful
        if not careful:
            try:
                return cast(
                    dict[TopicPartition, list[Any]],
                    await fetch(*partitions, timeout_ms=timeout_ms, max_records=max_records),
                )
            except UnicodeDecodeError:
                careful = True
        got: dict[TopicPartition, list[Any]] = {}
        clean = True
        for tp in partitions or sorted(consumer.assignment()):
            try:
                got.update(await fetch(tp, timeout_ms=_CAREFUL_FETCH_MS, max_records=1))
            except UnicodeDecodeError:
                clean = False
                offset = await consumer.position(tp)
                got[tp] = [UnparseableRecord(tp.topic, tp.partition, offset)]
                consumer.seek(tp, offset + 1)
        careful = not clean
        return got

    # The one place a library object is wrapped: faststream fetches through this method.
    consumer.getmany = getmany
    return consumer


async def end_offsets(settings: Settings, topics: Sequence[str]) -> Position:
    """The current end offset (of committed data) of every partition of ``topics``."""
    counts = await partition_counts(settings, topics)
    consumer = await _started(_reader(settings), settings)
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(counts[t])]
        ends = await with_retries(
            lambda: consumer.end_offsets(partitions), "could not read end offsets"
        )
    finally:
        await stop_client(consumer)
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}


async def read_from(
    settings: Settings,
    start: Position,
    *,
    until: Callable[[Sequence[InboundRecord]], bool],
    timeout_s: float,
) -> list[InboundRecord]:
    """Read committed records from ``start`` on until ``until(records)`` or the timeout."""
    consumer = await _started(_reader(settings), settings)
    records: list[InboundRecord] = []
    try:
        partitions = [TopicPartition(topic, p) for topic, p in start]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, start[(tp.topic, tp.partition)])
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not until(records):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            batch = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for tp_records in batch.values():
                records.extend(inbound(raw) for raw in tp_records)
    finally:
        await stop_client(consumer)
    return records


@asynccontextmanager
async def assigned(
    settings: Settings,
    topic: str | Sequence[str],
    *,
    committed_only: bool = True,
    partition: int | None = None,
) -> AsyncIterator[AIOKafkaConsumer]:
    """A group-less consumer assigned every partition of ``topic`` (or of each topic
    given; only ``partition`` of each when given), read committed unless
    ``committed_only`` is false (see ``services.trust`` for why liaison.keys is not)."""
    topics = [topic] if isinstance(topic, str) else list(topic)
    counts = await partition_counts(settings, topics)
    consumer = await _started(_reader(settings, committed_only=committed_only), settings)
    try:
        consumer.assign(
            [
                TopicPartition(t, p)
                for t in topics
                for p in range(counts[t])
                if partition is None or p == partition
            ]
        )
        yield consumer
    finally:
        await stop_client(consumer)


async def catch_up(consumer: AIOKafkaConsumer) -> AsyncIterator[list[Any]]:
    """Batches of records from the beginning of the assigned partitions to their end now."""
    partitions = list(consumer.assignment())
    await consumer.seek_to_beginning(*partitions)
    ends = await with_retries(
        lambda: consumer.end_offsets(partitions), "could not read end offsets"
    )
    while await _behind(consumer, ends):
        batch = await consumer.getmany(timeout_ms=500)
        yield [record for records in batch.values() for record in records]


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


def inbound(raw: Any) -> InboundRecord:  # noqa: ANN401 - aiokafka is untyped
    """An aiokafka ``ConsumerRecord`` (or ``UnparseableRecord``) as an ``InboundRecord``."""
    return InboundRecord(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        timestamp_ms=raw.timestamp,
        key=raw.key,
        value=raw.value or b"",
        headers=tuple((name, value or b"") for name, value in raw.headers),
        timestamp_type=raw.timestamp_type,
        parsed=not isinstance(raw, UnparseableRecord),
    )


# -- waiting for a broker (services) --------------------------------------------------------


async def broker_answers(settings: Settings, timeout_s: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether a broker at ``settings.bootstrap_servers`` answers a metadata request."""
    client = AIOKafkaClient(**client_options(settings), request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
    except (KafkaError, OSError, TimeoutError):
        return False
    else:
        return bool(client.cluster.brokers())
    finally:
        await client.close()


async def start_when_reachable(
    settings: Settings,
    start: Callable[[], Awaitable[T]],
    stop: asyncio.Event,
    *,
    answers: Callable[[Settings], Awaitable[bool]] = broker_answers,
    delays: Iterable[float] | None = None,
) -> T | None:
    """``start()`` once the broker answers; ``None`` if ``stop`` is set before that.

    While the broker does not answer, or ``start()`` fails with a retriable error (a
    broker still starting), wait (``delays``: 1 s doubling to 30 s) and try again. One
    line is logged when the broker is found unreachable and one when it is back, not one
    per attempt. ``start()`` must leave nothing running when it raises. Other errors
    (a missing key, bad rules) are raised at once.
    """
    unreachable = False
    for delay in delays if delays is not None else backoff():
        if stop.is_set():
            return None
        reason = "no answer"
        if await answers(settings):
            try:
                started = await start()
            except (KafkaError, BrokerError) as exc:
                if not _retriable(exc):
                    raise
                reason = type(exc).__name__
            else:
                if unreachable:
                    _log.info("broker_reachable", bootstrap_servers=settings.bootstrap_servers)
                return started
        if not unreachable:
            _log.warning(
                "broker_unreachable",
                bootstrap_servers=settings.bootstrap_servers,
                reason=reason,
                detail=f"retrying, every {_WAIT_FIRST_S:.0f} s doubling to {_WAIT_CAP_S:.0f} s",
            )
            unreachable = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return None


async def stop_quietly(stop: Callable[[], Awaitable[None]]) -> None:
    """Undo a start that failed half-way: the start's own error is the one to report."""
    with contextlib.suppress(KafkaError, LiaisonError):
        await stop()


# -- riding out an outage (services) -------------------------------------------------------

_PROMPT_REQUEST_TIMEOUT_S: Final = 10.0


@asynccontextmanager
async def prompt_sink(
    settings: Settings, request_timeout_s: float = _PROMPT_REQUEST_TIMEOUT_S
) -> AsyncIterator[KafkaSink]:
    """A ``kafka_sink`` whose every request gives up after ``request_timeout_s``.

    aiokafka waits 40 s by default for a broker that accepts connections but does not
    answer (stopped, overloaded), both to connect and to deliver; a service that backs off
    and tries again (``Outage``) learns of such a broker sooner this way.
    """
    producer = AIOKafkaProducer(
        **producer_options(settings), request_timeout_ms=int(request_timeout_s * 1000)
    )
    try:
        await _started(producer, settings)
    except BaseException:
        # Cancelled while starting (the service is stopping): ``_started`` stops the
        # producer only on a Kafka error, and an unstopped one leaks its connection.
        await stop_client(producer)
        raise
    try:
        yield KafkaSink(producer)
    finally:
        await stop_client(producer)


def _refused(exc: BaseException) -> bool:
    """Refused (not authorised, not authenticated) or fenced (another instance took over)."""
    cause = exc.__cause__ if isinstance(exc, BrokerError) else exc
    if isinstance(cause, ProducerFenced) or kafka_refusal(exc) is not None:
        return True
    return isinstance(exc, BrokerError) and str(exc).startswith("Kafka refused")


class Outage:
    """A long-running service's view of the broker while it works: one log line when an
    operation finds the broker unreachable (``broker_unreachable``), one when an operation
    succeeds again (``broker_reachable``), and the backoff between tries meanwhile.

    The service catches Kafka errors at its own loop, calls ``failed`` (or ``pause``)
    and tries the same step again; it calls ``recovered`` after each step that reached the
    broker. A refusal (not authorised, not authenticated) or a fence is raised again:
    waiting cannot help.
    """

    def __init__(
        self,
        settings: Settings,
        service: str,
        *,
        delays: Callable[[], Iterator[float]] = backoff,
    ) -> None:
        self._settings = settings
        self._service = service
        self._new_delays = delays
        self._delays: Iterator[float] | None = None

    @property
    def down(self) -> bool:
        """Whether the last step failed (and none has succeeded since)."""
        return self._delays is not None

    def failed(self, exc: BaseException) -> float:
        """Note a failed step; the seconds to wait before trying it again. ``exc`` is
        raised again unless it is a retriable Kafka or broker error (or a timeout)."""
        # A service waits through anything Kafka says while it is away or coming back
        # (aiokafka marks its own timeout, and some errors of a broker restarting, not
        # retriable): only a refusal (not authorised, not authenticated) ends it, since
        # the ACLs decide and waiting cannot help; a fence (another instance of the service
        # took over); and anything that is no Kafka error.
        if not isinstance(exc, KafkaError | BrokerError) or _refused(exc):
            raise exc
        if self._delays is None:
            self._delays = self._new_delays()
            _log.warning(
                "broker_unreachable",
                service=self._service,
                bootstrap_servers=self._settings.bootstrap_servers,
                reason=type(exc).__name__,
                detail="retrying with backoff",
            )
        return next(self._delays)

    async def pause(self, exc: BaseException, stop: asyncio.Event | None = None) -> None:
        """``failed``, then wait its delay (less if ``stop`` is set meanwhile)."""
        delay = self.failed(exc)
        if stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    def recovered(self) -> None:
        """Note a step that reached the broker (logged only after a failure)."""
        if self._delays is not None:
            self._delays = None
            _log.info(
                "broker_reachable",
                service=self._service,
                bootstrap_servers=self._settings.bootstrap_servers,
            )
