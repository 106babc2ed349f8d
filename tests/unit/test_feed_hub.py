"""The reader's hub without Kafka: records fed in as read, judged with the trust store as
it is now, refused records counted and never shown, routed copies left to the feed."""

from __future__ import annotations

import dataclasses
import datetime as dt

from consumers.analysis import Item
from schemas.jtai import JTAI_CONSIDERATION_REQUESTED
from schemas.keys import TrustStore
from schemas.records import InboundRecord
from services.reader.hub import FeedHub
from services.settings import Settings
from tests.factories import NOW, concern, inbound, key_for, sealed_inbound, trust_of
from tests.loop_factories import outcome_recorded, signed_inbound

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1", topic_prefix="")
OFSTED, HMICFRS = key_for("ofsted"), key_for("hmicfrs")


class Trust:
    """The trust store the hub follows, changed by the test."""

    def __init__(self, store: TrustStore) -> None:
        self.store = store

    def __call__(self) -> TrustStore:
        return self.store


def on_feed(record: InboundRecord, offset: int) -> InboundRecord:
    return dataclasses.replace(record, topic=SETTINGS.topics.feed, offset=offset)


def test_verified_records_become_items_in_arrival_order() -> None:
    trust = Trust(trust_of(OFSTED, HMICFRS))
    hub = FeedHub(SETTINGS, trust, lambda: NOW)
    first = concern(area="E08000035")
    second = concern(source="hmicfrs", programme="ncpi", area="E08000032")
    hub.add(
        [on_feed(sealed_inbound(first, OFSTED), 1), on_feed(sealed_inbound(second, HMICFRS), 2)]
    )
    view = hub.view()
    assert [e.item.id for e in view.entries] == [first.id, second.id]
    assert [e.seq for e in view.entries] == [1, 2]
    assert isinstance(view.items[0], Item)
    assert view.items[0].area_name == "Leeds"
    assert view.after(1)[0].item.id == second.id
    assert view.find(second.id)[0].opened.key.owner == "hmicfrs"


def test_a_record_signed_by_an_untrusted_key_is_counted_not_shown() -> None:
    hub = FeedHub(SETTINGS, Trust(trust_of(OFSTED)), lambda: NOW)
    forged = concern(source="hmicfrs", programme="ncpi")
    hub.add([on_feed(sealed_inbound(forged, key_for("hmicfrs")), 1)])
    view = hub.view()
    assert view.entries == ()
    assert sum(view.refused.values()) == 1


def test_a_revoked_key_takes_its_events_out_of_every_view_at_once() -> None:
    trust = Trust(trust_of(OFSTED, HMICFRS))
    hub = FeedHub(SETTINGS, trust, lambda: NOW)
    kept, dropped = concern(), concern(source="hmicfrs", programme="ncpi")
    hub.add(
        [on_feed(sealed_inbound(kept, OFSTED), 1), on_feed(sealed_inbound(dropped, HMICFRS), 2)]
    )
    before = hub.view().version
    revoked = HMICFRS.trusted(valid_from=NOW - dt.timedelta(days=30)).revoked(
        NOW - dt.timedelta(days=1), "compromised"
    )
    trust.store = trust.store.with_key(revoked)
    view = hub.view()
    assert [e.item.id for e in view.entries] == [kept.id]
    assert view.version > before
    assert view.entries[0].seq == 1  # numbers kept: a follower never sees one twice


def test_outcomes_on_the_feed_are_items_and_routed_copies_on_the_jtai_queue_are_not() -> None:
    hub = FeedHub(SETTINGS, Trust(trust_of(OFSTED, HMICFRS)), lambda: NOW)
    finding = concern()
    outcome = outcome_recorded(finding_id=finding.id)
    copy = dataclasses.replace(sealed_inbound(finding, OFSTED), topic=SETTINGS.topics.jtai)
    hub.add(
        [
            signed_inbound(outcome, HMICFRS, topic=SETTINGS.topics.feed),
            copy,
        ]
    )
    view = hub.view()
    assert [e.item.kind for e in view.entries] == ["outcome"]
    assert JTAI_CONSIDERATION_REQUESTED not in {e.item.type for e in view.entries}


async def test_wait_returns_when_something_new_arrives_or_times_out() -> None:
    hub = FeedHub(SETTINGS, Trust(trust_of(OFSTED)), lambda: NOW)
    version = hub.view().version
    assert await hub.wait(version, within=0.05) == version
    hub.add([on_feed(sealed_inbound(concern(), OFSTED), 1)])
    assert await hub.wait(version, within=5) > version


def test_a_replayed_record_is_never_shown_as_new() -> None:
    hub = FeedHub(SETTINGS, Trust(trust_of(OFSTED)), lambda: NOW)
    record = on_feed(sealed_inbound(concern(), OFSTED), 1)
    hub.add([record])
    version = hub.view().version
    hub.add([dataclasses.replace(record, offset=7, timestamp_ms=record.timestamp_ms + 60_000)])
    view = hub.view()
    assert len(view.entries) == 1
    assert view.entries[0].record.offset == 1  # the first copy stands
    assert view.version == version  # nothing new: live feeds are not woken


def test_junk_is_counted_and_dropped_and_wakes_nobody() -> None:
    hub = FeedHub(SETTINGS, Trust(trust_of(OFSTED)), lambda: NOW)
    version = hub.view().version
    hub.add([on_feed(inbound(b"\x00" * 1000), n) for n in range(50)])
    view = hub.view()
    assert view.entries == ()
    assert sum(view.refused.values()) == 50
    assert view.version == version
    assert len(hub._pending) == 0  # nothing kept that a change of trust could not mend


def test_a_record_of_a_key_not_yet_trusted_verifies_once_the_key_is() -> None:
    trust = Trust(trust_of(OFSTED))
    hub = FeedHub(SETTINGS, trust, lambda: NOW)
    early = concern(source="hmicfrs", programme="ncpi")
    hub.add([on_feed(sealed_inbound(early, HMICFRS), 1)])
    assert hub.view().entries == ()
    trust.store = trust_of(OFSTED, HMICFRS)
    view = hub.view()
    assert [e.item.id for e in view.entries] == [early.id]
    assert sum(view.refused.values()) == 0
