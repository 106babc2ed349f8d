"""Liaison's contract: events, records, topic names, reference data, the error tree."""

from schemas.errors import (
    BrokerError,
    ConfigurationError,
    LiaisonError,
    LocalBrokerError,
    Problem,
    SchemaError,
)
from schemas.events import (
    CONCERN_RAISED,
    EXCEPTIONAL_PRACTICE_IDENTIFIED,
    MAX_EVENT_BYTES,
    Classification,
    ConcernRaised,
    Event,
    ExceptionalPracticeIdentified,
    Finding,
    JtaiRequest,
    Theme,
    decode_event,
    encode_event,
    validate_event,
)
from schemas.inspectorates import JTAI, PROGRAMMES, Agency, Inspectorate, Programme, owner_of
from schemas.jtai import JTAI_CONSIDERATION_REQUESTED, JtaiConsiderationRequested, JtaiTrigger
from schemas.records import InboundRecord, OutboundRecord, event_record
from schemas.topics import Topics, TopicSpec

__all__ = [
    "CONCERN_RAISED",
    "EXCEPTIONAL_PRACTICE_IDENTIFIED",
    "JTAI",
    "JTAI_CONSIDERATION_REQUESTED",
    "MAX_EVENT_BYTES",
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
    "JtaiConsiderationRequested",
    "JtaiRequest",
    "JtaiTrigger",
    "LiaisonError",
    "LocalBrokerError",
    "OutboundRecord",
    "Problem",
    "Programme",
    "SchemaError",
    "Theme",
    "TopicSpec",
    "Topics",
    "decode_event",
    "encode_event",
    "event_record",
    "owner_of",
    "validate_event",
]
