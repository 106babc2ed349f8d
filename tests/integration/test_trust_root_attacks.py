"""Issue 10's attacks on ``liaison.keys``, against the real broker: each one refused,
quarantined and audited once; and the offline root signing round trip."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.audit import EventQuarantined, SealedRecord, judge_sealed
from schemas.envelope import open_envelope, seal
from schemas.events import ConcernRaised
from schemas.inspectorates import Inspectorate, Programme
from schemas.keys import AUDIT, BUS, OPERATOR, ROOT, KeyStatus, SigningKey
from schemas.records import HEADER_EVENT_ID, InboundRecord, OutboundRecord, event_record, header_map
from schemas.topics import TopicSpec
from schemas.trust_root import (
    KeyChange,
    KeyChangeError,
    KeyRefusal,
    KeyState,
    SignedKeyChange,
    add_signature,
)
from services.kafka import apply_topics, end_offsets, read_from
from services.key_warden import KeyWarden
from services.keys_admin import apply_change, ensure_keys, init_root, propose_new_keys, sign_change
from services.keystore import KeyStore, load_key_file
from services.settings import Settings
from services.trust import TrustFollower, load_root, load_trust, load_trust_state
from tests.conftest import router_for, run_liaison
from tests.factories import concern, utc_now

pytestmark = pytest.mark.kafka

MONTH = dt.timedelta(days=30)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


async def produce_raw(settings: Settings, records: Sequence[OutboundRecord]) -> list[int]:
    """Produce records as they are, with a plain Kafka client (as an attacker with write
    access could); their offsets."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        offsets = []
        for r in records:
            sent = await producer.send_and_wait(
                r.topic, r.value, key=r.key, headers=list(r.headers)
            )
            offsets.append(sent.offset)
    finally:
        await producer.stop()
    return offsets


async def key_records(settings: Settings) -> list[InboundRecord]:
    ends = await end_offsets(settings, [settings.topics.keys])
    want = ends[(settings.topics.keys, 0)]
    return await read_from(
        settings,
        {(settings.topics.keys, 0): 0},
        until=lambda records: len(records) >= want,
        timeout_s=30,
    )


async def refusals(settings: Settings) -> dict[int, KeyRefusal]:
    """What a fresh reader of liaison.keys refuses, by offset."""
    follower = TrustFollower(settings)
    await follower.start()
    await follower.stop()
    return {offset: refused.reason for offset, refused in follower.refusals.items()}


def on_topic(record: OutboundRecord, topic: str) -> OutboundRecord:
    return dataclasses.replace(record, topic=topic)


def sealed(event: ConcernRaised, key: SigningKey, settings: Settings) -> OutboundRecord:
    return event_record(event, seal(event, key, utc_now()).envelope, settings.topics)


def signed_by(change: KeyChange, *keys: SigningKey) -> SignedKeyChange:
    out = SignedKeyChange(change, change.payload(), ())
    for key in keys:
        out = add_signature(out, key)
    return out


# ---- (a) a bare key record -----------------------------------------------------------------


async def test_a_bare_back_dated_key_record_is_not_trusted_and_its_events_are_quarantined(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    attacker = SigningKey.generate("cqc")
    bare = attacker.trusted(valid_from=utc_now() - MONTH)  # the format before signed changes
    (offset,) = await produce_raw(
        kafka,
        [OutboundRecord(topics.keys, attacker.keyid.encode(), bare.model_dump_json().encode())],
    )
    assert (await load_trust(kafka)).get(attacker.keyid) is None
    assert (await refusals(kafka))[offset] is KeyRefusal.UNSIGNED

    watched = [topics.programme(p) for p in Programme if p is not Programme.JTAI]
    watched += [topics.jtai, topics.unrouted, topics.feed, topics.quarantine]
    start = await end_offsets(kafka, watched)
    event = concern(source="cqc", programme="clas", subject_agencies=["police"])
    forged = on_topic(sealed(event, attacker, kafka), topics.events(Inspectorate.OFSTED))
    router = router_for(kafka, signing)
    await router.start()
    try:
        await produce_raw(kafka, [forged])
        records = await read_from(kafka, start, until=lambda r: len(r) >= 1, timeout_s=30)
    finally:
        await router.stop()
    (quarantined,) = records
    assert quarantined.topic == topics.quarantine
    body = json.loads(quarantined.value)
    assert body["reason"] == "unknown_key"
    assert body["source_topic"] == topics.events(Inspectorate.OFSTED)


# ---- (b) rollback after a revocation ---------------------------------------------------------


async def test_after_keys_revoke_the_old_active_record_replayed_is_a_rollback(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    ofsted = signing["ofsted"]
    (made,) = await key_records(kafka)  # the signed change that made every fixture key
    done = await run_liaison(kafka, "keys", "revoke", ofsted.keyid, "--reason", "laptop stolen")
    assert done.returncode == 0, done.stderr
    revocation = (await key_records(kafka))[-1]
    replayed = await produce_raw(
        kafka,
        [
            OutboundRecord(kafka.topics.keys, made.key or b"", made.value),
            # On a compacted topic this would erase the revocation; here it is refused.
            OutboundRecord(kafka.topics.keys, revocation.key or b"", b""),
        ],
    )
    refused = await refusals(kafka)
    assert [refused[offset] for offset in replayed] == [KeyRefusal.ROLLBACK, KeyRefusal.MALFORMED]
    entry = (await load_trust(kafka)).get(ofsted.keyid)
    assert entry is not None
    assert entry.status is KeyStatus.REVOKED
    assert entry.revocation_reason == "laptop stolen"


# ---- (c) under-signed and back-dated changes ---------------------------------------------------


async def test_under_signed_and_back_dated_changes_are_refused(kafka: Settings) -> None:
    init_root(kafka, 2, 3)  # this machine holds all three (a test): the threshold is 2
    await ensure_keys(kafka, ("ofsted",), utc_now())
    roots = KeyStore(kafka).root_keys(load_root(kafka))
    state = await load_trust_state(kafka)
    intruder = SigningKey.generate("cqc")
    now = utc_now()
    under = signed_by(
        KeyChange(version=state.version + 1, keys=(KeyState.new(intruder),), proposed_at=now),
        roots[0],
    )
    back = KeyState.new(intruder).model_copy(update={"valid_from": now - MONTH})
    backdated = signed_by(
        KeyChange(version=state.version + 1, keys=(back,), proposed_at=now), roots[0], roots[1]
    )

    # `keys apply` refuses both before anything is published...
    before = await end_offsets(kafka, [kafka.topics.keys])
    with pytest.raises(KeyChangeError, match="signed by 1 of the 2 root keys needed"):
        await apply_change(kafka, under, utc_now())
    with pytest.raises(KeyChangeError, match="backdated") as raised:
        await apply_change(kafka, backdated, utc_now())
    assert raised.value.refusal is KeyRefusal.BACKDATED
    assert await end_offsets(kafka, [kafka.topics.keys]) == before

    # ...and every reader refuses them when an attacker produces them anyway.
    offsets = await produce_raw(
        kafka,
        [
            OutboundRecord(kafka.topics.keys, b"v2", under.envelope()),
            OutboundRecord(kafka.topics.keys, b"v2", backdated.envelope()),
        ],
    )
    refused = await refusals(kafka)
    assert [refused[offset] for offset in offsets] == [
        KeyRefusal.UNDER_SIGNED,
        KeyRefusal.BACKDATED,
    ]
    assert (await load_trust(kafka)).get(intruder.keyid) is None


# ---- (d) the warden: each refusal quarantined and audited, once ---------------------------------


async def test_the_warden_quarantines_and_audits_each_refused_key_record_once(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    (made,) = await key_records(kafka)
    bare = SigningKey.generate("cqc").trusted(utc_now() - MONTH).model_dump_json().encode()
    bad = await produce_raw(
        kafka,
        [
            OutboundRecord(topics.keys, b"x", bare),
            OutboundRecord(topics.keys, made.key or b"", made.value),
            OutboundRecord(topics.keys, b"x", b"not json"),
        ],
    )
    start = await end_offsets(kafka, [topics.quarantine, topics.audit])

    def quarantined(n: int) -> Callable[[Sequence[InboundRecord]], bool]:
        return lambda records: sum(r.topic == topics.quarantine for r in records) >= n

    warden = KeyWarden(kafka, signing[AUDIT])
    await warden.start()
    try:
        await read_from(kafka, start, until=quarantined(3), timeout_s=30)
    finally:
        await warden.stop()
    # A second warden (a restart) reports only what is new.
    (late,) = await produce_raw(kafka, [OutboundRecord(topics.keys, b"x", b"[]")])
    again = KeyWarden(kafka, signing[AUDIT])
    await again.start()
    try:
        records = await read_from(kafka, start, until=quarantined(4), timeout_s=30)
        # The audit records were committed in the same transactions as the quarantine ones.
    finally:
        await again.stop()

    kept = [json.loads(r.value) for r in records if r.topic == topics.quarantine]
    assert [(k["offset"], k["reason"]) for k in kept] == [
        (bad[0], "unsigned"),
        (bad[1], "rollback"),
        (bad[2], "malformed"),
        (late, "malformed"),
    ]
    assert all(k["source_topic"] == topics.keys for k in kept)
    trust = await load_trust(kafka)
    audited = []
    for record in records:
        if record.topic != topics.audit:
            continue
        appended = EPOCH + dt.timedelta(milliseconds=record.timestamp_ms)
        judged = judge_sealed(record.value, appended, trust)
        assert isinstance(judged, SealedRecord), judged
        if (
            isinstance(judged.record, EventQuarantined)
            and judged.record.source_topic == topics.keys
        ):
            assert judged.key.owner == AUDIT
            assert judged.record.actor == "audit:key-warden"
            audited.append((judged.record.offset, judged.record.reason))
    assert audited == [(k["offset"], k["reason"]) for k in kept]


# ---- (e) offline signing round trip with a running router ------------------------------


async def first_keys(settings: Settings, *pems: Path) -> tuple[SigningKey, SigningKey]:
    """The operator's, router's and Ofsted's first keys, signed offline by two holders
    (the library path of `keys propose`, `keys sign`, `keys apply`)."""
    proposal = await propose_new_keys(settings, [OPERATOR, BUS, "ofsted"], utc_now(), retire=False)
    signed = signed_by(proposal.change)
    for pem in pems:
        signed = sign_change(settings, signed, load_key_file(pem, ROOT))
    await apply_change(settings, signed, utc_now())
    store = KeyStore(settings)
    trust = await load_trust(settings)
    bus, ofsted = store.active(BUS, trust), store.active("ofsted", trust)
    assert bus is not None
    assert ofsted is not None
    return bus, ofsted


async def test_offline_two_of_three_rotation_reaches_a_running_router(
    kafka: Settings, tmp_path: Path
) -> None:
    topics = kafka.topics
    holders = tmp_path / "holders"
    holders.mkdir()
    made = await run_liaison(
        kafka, "keys", "root", "init", "--threshold", "2", "--keys", "3", "--out-dir", str(holders)
    )
    assert made.returncode == 0, made.stderr
    first, second, _ = sorted(holders.glob("root-*.pem"))

    bus, old = await first_keys(kafka, first, second)
    store = KeyStore(kafka)

    watched = [topics.feed, topics.quarantine]
    start = await end_offsets(kafka, watched)
    router = router_for(kafka, {BUS: bus})
    await router.start()
    try:
        before = concern(subject_agencies=["health"])
        await produce_raw(kafka, [sealed(before, old, kafka)])
        await read_from(kafka, start, until=lambda r: len(r) >= 1, timeout_s=30)

        change = tmp_path / "rotate.json"
        proposed = await run_liaison(
            kafka, "keys", "propose", "rotate", "--inspectorate", "ofsted", "--out", str(change)
        )
        assert proposed.returncode == 0, proposed.stderr
        once = await run_liaison(kafka, "keys", "sign", str(change), "--root-key", str(first))
        assert once.returncode == 0, once.stderr
        early = await run_liaison(kafka, "keys", "apply", str(change))
        assert early.returncode == 1
        assert "signed by 1 of the 2 root keys needed" in early.stderr
        twice = await run_liaison(kafka, "keys", "sign", str(change), "--root-key", str(second))
        assert twice.returncode == 0, twice.stderr
        applied = await run_liaison(kafka, "keys", "apply", str(change))
        assert applied.returncode == 0, applied.stderr

        trust = await load_trust(kafka)
        new = store.active("ofsted", trust)
        assert new is not None
        assert new.keyid != old.keyid
        after = concern(subject_agencies=["health"])
        await produce_raw(kafka, [sealed(after, new, kafka)])  # the router was not restarted
        records = await read_from(kafka, start, until=lambda r: len(r) >= 2, timeout_s=30)
    finally:
        await router.stop()

    assert [r.topic for r in records] == [topics.feed, topics.feed]
    by_id = {header_map(r.headers)[HEADER_EVENT_ID].decode(): r for r in records}
    assert set(by_id) == {str(before.id), str(after.id)}
    # The retired key still verifies what was appended while it was active.
    opened = open_envelope(by_id[str(before.id)], trust, utc_now())
    assert opened.key.keyid == old.keyid
    assert opened.key.status is KeyStatus.RETIRED


# ---- the topic itself --------------------------------------------------------------------


async def cleanup_policy(settings: Settings, topic: str, want: str) -> str:
    """The topic's cleanup.policy once the broker reports ``want`` (a config change takes
    a moment to reach the broker from the controller), or what it reports after 30 s."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            (response,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
            entries = response.resources[0][4]
            found = next(entry[1] for entry in entries if entry[0] == "cleanup.policy")
            if found == want or asyncio.get_running_loop().time() > deadline:
                return str(found)
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def test_topics_apply_turns_an_old_compacted_keys_topic_into_a_kept_log(
    kafka: Settings,
) -> None:
    keys = kafka.topics.keys
    before_issue_10 = TopicSpec(keys, 1, "before issue 10", {"cleanup.policy": "compact"})
    (old,) = await apply_topics(kafka, [before_issue_10])
    assert old.reconfigured == ("cleanup.policy",)
    assert await cleanup_policy(kafka, keys, "compact") == "compact"
    reports = {r.spec.name: r for r in await apply_topics(kafka, kafka.topics.specs())}
    assert reports[keys].reconfigured == ("cleanup.policy",)
    assert await cleanup_policy(kafka, keys, "delete") == "delete"
