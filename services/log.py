"""structlog, configured once by the process that starts (never at import time).

aiokafka logs, at WARNING and ERROR, conditions it then retries by itself: a group
coordinator not elected yet, too few in-sync replicas for a moment after a broker
starts, a rebalance, a refused connection. To a user those read as failures on a run
that succeeds, so ``TransientKafkaFilter`` demotes them to DEBUG and shows a condition
only once it has lasted (``lasting_s``). Everything else aiokafka says, and everything
Liaison says, is shown as it is.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import structlog
from aiokafka.errors import KafkaError

__all__ = ["TransientKafkaFilter", "configure_logging"]

_LASTING_S: Final = 30.0

# Messages aiokafka logs about conditions it retries, that name no error object to judge.
_TRANSIENT_MESSAGES: Final = frozenset(
    {
        "Heartbeat failed for group %s: coordinator (node %s) is either not started or not valid",
        "Heartbeat failed for group %s because it is rebalancing",
        "Heartbeat failed for group %s: generation id is not  current.",
        "Heartbeat failed: local member_id was not recognized; resetting and re-joining group",
        "Heartbeat session expired - marking coordinator dead",
        "Marking the coordinator dead (node %s)for group %s.",
        "Unable to update metadata from %s",
        "Topic %s is not available during auto-create initialization",
        "Topic %s not found in cluster metadata",
        "OffsetCommit failed before join, ignoring: %s",
    }
)


def _transient(record: logging.LogRecord) -> bool:
    """Whether aiokafka is reporting something it retries (judged by the error it names)."""
    args = record.args if isinstance(record.args, tuple) else ()
    for arg in args:
        error = type(arg) if isinstance(arg, KafkaError) else arg
        if isinstance(error, type) and issubclass(error, KafkaError):
            return bool(getattr(error, "retriable", False))
        if isinstance(arg, OSError | TimeoutError):
            return True  # a connection refused or reset: aiokafka reconnects
    return str(record.msg) in _TRANSIENT_MESSAGES


@dataclass(slots=True)
class _Episode:
    first: float
    last: float
    shown: bool = False


class TransientKafkaFilter(logging.Filter):
    """Demote aiokafka's retried conditions to DEBUG; show one once it lasts ``lasting_s``.

    A condition (one message of one aiokafka logger) seen again within ``lasting_s`` of
    its last report continues its episode; an episode that has lasted ``lasting_s`` is
    shown once, at its own level, saying so. Records with a traceback are never demoted:
    aiokafka logs its own unexpected failures that way.
    """

    def __init__(
        self,
        *,
        show_debug: bool,
        lasting_s: float = _LASTING_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._show_debug = show_debug
        self._lasting_s = lasting_s
        self._clock = clock
        self._episodes: dict[tuple[str, str], _Episode] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a demoted record unless DEBUG is shown; the record is changed in place."""
        if (
            not record.name.startswith("aiokafka")
            or not logging.WARNING <= record.levelno < logging.CRITICAL
            or record.exc_info
            or not _transient(record)
        ):
            return True
        now = self._clock()
        key = (record.name, str(record.msg))
        episode = self._episodes.get(key)
        if episode is None or now - episode.last > self._lasting_s:
            episode = self._episodes[key] = _Episode(now, now)
        episode.last = now
        if not episode.shown and now - episode.first >= self._lasting_s:
            episode.shown = True
            record.msg = f"{record.msg} (still so after {now - episode.first:.0f} s; retrying)"
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self._show_debug


def configure_logging(
    level: str = "INFO", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    """Route structlog (and the stdlib loggers of aiokafka and faststream) to stderr.

    JSON lines when stderr is not a terminal, readable console output when it is.
    Per-message context (event id, inspectorate, area) is bound with contextvars.
    aiokafka's reports of conditions it retries are DEBUG (``TransientKafkaFilter``).
    """
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processor=renderer)
    )
    handler.addFilter(TransientKafkaFilter(show_debug=level == "DEBUG"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # aiokafka and faststream are chatty at INFO about routine group membership.
    root.setLevel(max(logging.getLevelName(level), logging.WARNING))
