"""Producers: the shared publishing path (and, per inspectorate, its own findings)."""

from producers.publisher import (
    BATCH,
    Delivery,
    Published,
    Publisher,
    Transaction,
    TransactionalSink,
)

__all__ = ["BATCH", "Delivery", "Published", "Publisher", "Transaction", "TransactionalSink"]
