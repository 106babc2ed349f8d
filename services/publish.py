"""``liaison publish``: validate a file of events, then sign and publish the valid ones,
each in the same Kafka transaction as its ``event.published`` audit record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from producers.publisher import BATCH, Publisher
from schemas.envelope import Sealed
from schemas.errors import EnvelopeError, SchemaError
from schemas.events import InspectorateEvent
from schemas.inspectorates import Inspectorate
from schemas.keys import SigningKey, TrustStore
from services.inputs import Document, check_documents
from services.kafka import transactional_sink
from services.keystore import check_signing_key
from services.settings import Settings

__all__ = ["EXIT_INVALID", "publish_documents"]

EXIT_INVALID = 2
"""Exit code when some events were invalid (and were not sent)."""


def _problems(
    documents: Iterable[Document],
    publisher: Publisher,
    inspectorate: Inspectorate,
) -> tuple[list[Sealed], list[str]]:
    """Seal every valid document; describe every invalid one (by line, never its content)."""

    def own(event: InspectorateEvent) -> str | None:
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
            # check_documents validated the event against the publisher's clock: it is
            # signed without being validated a second time.
            sealed.append(publisher.seal_validated(checked.event))
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

    Nothing invalid is sent. The valid events go in transactions of ``BATCH``, each event
    with its ``event.published`` audit record (``producers.publisher``); ids are printed
    to ``out`` as their transaction commits (one write per transaction, plain text),
    problems and progress go to ``err``. A
    failed transaction is one ``BrokerError``: the ids printed before it are published,
    the others are not (publishing the file again publishes them, once).
    """
    check_signing_key(key, inspectorate.value, trust, clock())
    async with transactional_sink(settings, inspectorate.value) as sink:
        publisher = Publisher(sink, settings.topics, key, clock)
        sealed, problems = _problems(documents, publisher, inspectorate)
        for problem in problems:
            err.print(problem, highlight=False, markup=False)
        published = 0
        progress = Progress(
            TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True, disable=len(sealed) < 2,  # noqa: PLR2004
            # Off a terminal the bar is never shown: no thread redrawing it 10 times a second.
            auto_refresh=err.is_terminal,
        )  # fmt: skip
        with progress:
            task = progress.add_task("publish", total=len(sealed))
            async for batch in publisher.publish_all(sealed, BATCH):
                # Ids are plain text: written as they are, a batch at once, not rendered
                # line by line (``out.file`` is where ``out.print`` would write them).
                out.file.write("".join(f"{item.sealed.event.id}\n" for item in batch))
                out.file.flush()
                published += len(batch)
                progress.advance(task, len(batch))
    summary = (
        f"{published} published as {inspectorate.value}; {len(problems)} problem(s),"
        " nothing invalid was sent."
    )
    if problems:  # the run failed in part: its one `error:` line, after the problems
        err.print("[bold red]error:[/bold red] ", end="")
    err.print(summary, highlight=False, markup=False)
    return EXIT_INVALID if problems else 0
