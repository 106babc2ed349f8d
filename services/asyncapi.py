"""The AsyncAPI document of Liaison's faststream application (``liaison asyncapi``)."""

from __future__ import annotations

import json

from faststream.specification import AsyncAPI

from schemas.envelope import DsseEnvelope
from schemas.inspectorates import JTAI, Inspectorate, Programme
from schemas.keys import BUS, SigningKey
from services.router_service import RouterService
from services.rules_file import load_rules
from services.settings import Settings

__all__ = ["asyncapi_document"]

_VERSION = "0.1.0"


def asyncapi_document(settings: Settings) -> str:
    """AsyncAPI 3.0 JSON: the inspectorates' event topics, the router, every queue it writes.

    Topic names are the contract's (no prefix). Every message is a DSSE envelope whose
    payload is an event of the contract; the router forwards it byte for byte.
    """
    contract = settings.model_copy(update={"topic_prefix": ""})
    # The document describes topics, not keys: any bus key will do to build the service.
    broker = RouterService(
        contract, load_rules(contract.rules_path), SigningKey.generate(BUS)
    ).broker
    topics = contract.topics
    outputs = {
        **{
            topics.events(i): f"{i.value}'s outbound events, published by its producer."
            for i in Inspectorate
        },
        **{
            topics.programme(p): f"Inbound queue of the {p.value} programme."
            for p in Programme
            if p is not JTAI
        },
        topics.jtai: "The JTAI queue: requests, urgent notifications, deep-dive themes.",
        topics.feed: "Every verified event, keyed by area, for analysts.",
        topics.unrouted: "Verified events that no routing rule matched.",
        topics.outcomes: (
            "Outcomes receiving programmes recorded for findings (signed by the receiving"
            " inspectorate; routed back to the publisher's programme queue and the feed),"
            " and the bus's overdue reminders."
        ),
        topics.delivery: (
            "Results of posting routed envelopes to programmes' own systems (liaison serve"
            " deliver), signed by the receiving inspectorate."
        ),
    }
    for name, description in outputs.items():
        broker.publisher(name, title=name, description=description, schema=DsseEnvelope)
    spec = AsyncAPI(
        broker,
        title="Liaison",
        version=_VERSION,
        description=(
            "Information-sharing event bus of England's child-protection inspectorates."
            " Each record is a DSSE envelope (Ed25519) around an event, keyed by area GSS"
            " code; headers repeat type, source, area and event_id, and carry the"
            " CloudEvents Kafka binary-mode attributes (ce_id, ce_source, ce_type,"
            " ce_specversion, ce_time, content-type); routed copies add"
            " liaison_rules and liaison_reason. Quarantine, audit and key topics are"
            " described in the README."
        ),
    )
    document = json.loads(spec.to_specification().to_json())
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
