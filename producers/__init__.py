"""Producers: the shared publishing path (and, per inspectorate, its own findings)."""

from producers.publisher import Delivery, Publisher, RecordSink

__all__ = ["Delivery", "Publisher", "RecordSink"]
