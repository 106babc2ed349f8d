"""The AsyncAPI document of Liaison's faststream application (``liaison asyncapi``)."""

from __future__ import annotations

import json

from faststream.specification import AsyncAPI

from schemas.events import ConcernRaised, ExceptionalPracticeIdentified
from schemas.inspectorates import JTAI, Inspectorate, Programme
from services.router_service import build_router
from services.settings import Settings

__all__ = ["asyncapi_document"]

_VERSION = "0.1.0"


def asyncapi_document(settings: Settings) -> str:
    """AsyncAPI 3.0 JSON: the inspectorates' event topics, the router, every queue it writes.

    Topic names are the contract's (no prefix). The message is an event of the contract;
    the router forwards its bytes unchanged.
    """
    contract = settings.model_copy(update={"topic_prefix": ""})
    broker = build_router(contract)
    topics = contract.topics
    event = ConcernRaised | ExceptionalPracticeIdentified
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
    }
    for name, description in outputs.items():
        broker.publisher(name, title=name, description=description, schema=event)
    spec = AsyncAPI(
        broker,
        title="Liaison",
        version=_VERSION,
        description=(
            "Information-sharing event bus of England's child-protection inspectorates."
            " Events are keyed by area GSS code; headers repeat type, source, area and"
            " event_id; routed copies add liaison_rules and liaison_reason."
        ),
    )
    document = json.loads(spec.to_specification().to_json())
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
