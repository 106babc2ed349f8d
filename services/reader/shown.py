"""Audit what an analyst was shown, before it is shown.

Every page of the dashboard, every batch of a live feed (terminal or browser) and every
export is recorded by the service (``feed.read``: the analyst, their stated purpose,
where it was shown, the filters and the id of every event shown); a request outside the
analyst's scope is recorded as ``feed.refused``. Records are written before anything is
sent: when the audit log cannot take them, nothing is shown (``AuditUnavailableError``).

An audit record is at most 64 KiB, so a view showing more than ``MAX_IDS_PER_RECORD``
events is recorded by as many records as it needs (their ``filters`` say ``part``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol

import structlog

from schemas.audit import FeedRead, FeedRefused
from schemas.errors import LiaisonError
from services.reader.scope import Refusal

__all__ = ["MAX_IDS_PER_RECORD", "AuditUnavailableError", "AuditWriter", "ShownLog"]

MAX_IDS_PER_RECORD: Final = 500

_log = structlog.get_logger("liaison.reader")


class AuditWriter(Protocol):
    """Where the service's audit records go, signed with the reader's key."""

    async def write(self, record: FeedRead | FeedRefused) -> None:
        """Append ``record``; return once it is on the log, or raise ``LiaisonError``."""
        ...


class AuditUnavailableError(LiaisonError):
    """The audit log did not take the record, so nothing may be shown."""

    retriable = True


class ShownLog:
    """Writes ``feed.read`` and ``feed.refused`` records for one service."""

    def __init__(self, audit: AuditWriter, clock: Callable[[], dt.datetime]) -> None:
        self._audit = audit
        self._clock = clock

    async def shown(
        self,
        analyst: str,
        purpose: str,
        view: str,
        filters: Mapping[str, str],
        event_ids: Iterable[uuid.UUID],
    ) -> int:
        """Record that ``analyst`` was shown ``event_ids`` in ``view``; the records written."""
        ids = tuple(dict.fromkeys(event_ids))
        parts = [ids[i : i + MAX_IDS_PER_RECORD] for i in range(0, len(ids), MAX_IDS_PER_RECORD)]
        parts = parts or [()]
        at = self._clock()
        for number, part in enumerate(parts, 1):
            asked = dict(filters)
            if len(parts) > 1:
                asked["part"] = f"{number}/{len(parts)}"
            await self._write(
                FeedRead(
                    at=at,
                    actor=f"analyst:{analyst}",
                    analyst=analyst,
                    purpose=purpose,
                    filters=asked,
                    returned=len(part),
                    event_ids=part,
                    view=view,
                )
            )
        return len(parts)

    async def refused(
        self, analyst: str, purpose: str, view: str, filters: Mapping[str, str], refusal: Refusal
    ) -> None:
        """Record that ``analyst``'s request in ``view`` was refused, and why."""
        await self._write(
            FeedRefused(
                at=self._clock(),
                actor=f"analyst:{analyst}",
                analyst=analyst,
                purpose=purpose,
                filters=dict(filters),
                reason=refusal.reason,
                detail=refusal.detail[:500],
                view=view,
            )
        )
        _log.warning("feed_refused", analyst=analyst, view=view, reason=refusal.reason)

    async def _write(self, record: FeedRead | FeedRefused) -> None:
        try:
            await self._audit.write(record)
        except LiaisonError as exc:
            _log.error("audit_unwritable", action=record.action, error=str(exc))
            msg = "the read could not be audited, so nothing was shown"
            raise AuditUnavailableError(msg) from None
