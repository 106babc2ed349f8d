"""``liaison publish``: validate a file of events, then sign and publish the valid ones."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from collections.abc import Callable, Iterable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from producers.publisher import Delivery, Publisher
from schemas.audit import EventPublished
from schemas.envelope import Sealed
from schemas.errors import ConfigurationError, EnvelopeError, SchemaError
from schemas.events import ConcernRaised, ExceptionalPracticeIdentified
from schemas.inspectorates import Inspectorate
from schemas.keys import SigningKey, TrustStore
from services.audit_log import audit_outbound
from services.inputs import Document, check_documents
from services.kafka import kafka_sink
from services.settings import Settings

__all__ = ["EXIT_INVALID", "publish_documents"]

EXIT_INVALID = 2
"""Exit code when some events were invalid (and were not sent)."""

_IN_FLIGHT = 256  # records awaiting acknowledgement at once: throughput without unbounded memory


def _check_key(
    key: SigningKey, inspectorate: Inspectorate, trust: TrustStore, now: dt.datetime
) -> None:
    entry = trust.get(key.keyid)
    if entry is None:
        raise ConfigurationError(
            f"signing key {key.keyid} is not in the bus's trust store; register it with"
            f" `liaison keys generate --inspectorate {inspectorate.value}` (or rotate)"
        )
    if entry.owner != inspectorate.value:
        raise ConfigurationError(
            f"signing key {key.keyid} belongs to {entry.owner}, not {inspectorate.value}"
        )
    refused = entry.refuses_at(now)
    if refused is not None:
        raise ConfigurationError(f"signing key {key.keyid} cannot sign now: {refused}")


def _problems(
    documents: Iterable[Document],
    publisher: Publisher,
    inspectorate: Inspectorate,
) -> tuple[list[Sealed], list[str]]:
    """Seal every valid document; describe every invalid one (by line, never its content)."""

    def own(event: ConcernRaised | ExceptionalPracticeIdentified) -> str | None:
        if event.source is inspectorate:
            return None
        return f"source: is {event.source.value}, but this is publishing as {inspectorate.value}"

    sealed: list[Sealed] = []
    problems: list[str] = []
    for checked in check_documents(documents, publisher.clock, own):
        problems.extend(checked.problems)
        if checked.event is None:
            continue
        try:
            sealed.append(publisher.seal(checked.event))
        except (SchemaError, EnvelopeError) as exc:
            problems.append(f"{checked.document.where}: {exc}")
    return sealed, problems


async def publish_documents(
    settings: Settings,
    inspectorate: Inspectorate,
    documents: Iterable[Document],
    *,
    key: SigningKey,
    trust: TrustStore,
    out: Console,
    err: Console,
    clock: Callable[[], dt.datetime],
) -> int:
    """Publish every valid event of ``documents``; return the exit code.

    Nothing invalid is sent. Ids are printed to ``out`` as Kafka acknowledges them,
    problems and progress go to ``err``.
    """
    _check_key(key, inspectorate, trust, clock())
    async with kafka_sink(settings) as sink:
        publisher = Publisher(sink, settings.topics, key, clock)
        sealed, problems = _problems(documents, publisher, inspectorate)
        for problem in problems:
            err.print(problem, highlight=False, markup=False)
        published = 0
        progress = Progress(
            TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True, disable=len(sealed) < 2,  # noqa: PLR2004
        )  # fmt: skip
        with progress:
            task = progress.add_task("publish", total=len(sealed))
            window: deque[tuple[Sealed, asyncio.Task[Delivery]]] = deque()

            audit: list[asyncio.Task[Delivery]] = []

            async def acknowledge() -> None:
                nonlocal published
                done, pending = window.popleft()
                delivery = await pending
                published += 1
                out.print(str(done.event.id), highlight=False)
                progress.advance(task)
                record = EventPublished(
                    at=clock(), actor=f"inspectorate:{inspectorate.value}",
                    event_ids=(done.event.id,), topic=settings.topics.events(inspectorate),
                    partition=delivery.partition, offset=delivery.offset, keyid=done.keyid,
                    inspectorate=inspectorate,
                )  # fmt: skip
                audit.append(asyncio.create_task(sink.send(audit_outbound(settings, record, key))))

            for item in sealed:
                window.append((item, asyncio.create_task(publisher.send(item))))
                if len(window) >= _IN_FLIGHT:
                    await acknowledge()
            while window:
                await acknowledge()
            await asyncio.gather(*audit)
    summary = (
        f"{published} published as {inspectorate.value}; {len(problems)} problem(s),"
        " nothing invalid was sent."
    )
    if problems:  # the run failed in part: its one `error:` line, after the problems
        err.print("[bold red]error:[/bold red] ", end="")
    err.print(summary, highlight=False, markup=False)
    return EXIT_INVALID if problems else 0
