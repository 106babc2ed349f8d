"""Liaison's contract: events, records, topic names and the error tree. Pure: no I/O."""

from schemas.errors import (
    BrokerError,
    ConfigurationError,
    LiaisonError,
    LocalBrokerError,
    SchemaError,
)
from schemas.events import (
    CONCERN_RAISED,
    EXCEPTIONAL_PRACTICE_IDENTIFIED,
    Classification,
    ConcernRaised,
    Event,
    ExceptionalPracticeIdentified,
    Finding,
    JtaiRequest,
    Theme,
    decode_event,
    encode_event,
)
from schemas.inspectorates import JTAI, PROGRAMMES, Agency, Inspectorate, Programme, owner_of
from schemas.records import InboundRecord, OutboundRecord, event_record
from schemas.topics import Topics, TopicSpec

__all__ = [
    "CONCERN_RAISED",
    "EXCEPTIONAL_PRACTICE_IDENTIFIED",
    "JTAI",
    "PROGRAMMES",
    "Agency",
    "BrokerError",
    "Classification",
    "ConcernRaised",
    "ConfigurationError",
    "Event",
    "ExceptionalPracticeIdentified",
    "Finding",
    "InboundRecord",
    "Inspectorate",
    "JtaiRequest",
    "LiaisonError",
    "LocalBrokerError",
    "OutboundRecord",
    "Programme",
    "SchemaError",
    "Theme",
    "TopicSpec",
    "Topics",
    "decode_event",
    "encode_event",
    "event_record",
    "owner_of",
]
