from __future__ import annotations

import pytest

from schemas.errors import ConfigurationError
from schemas.inspectorates import Inspectorate, Programme
from schemas.topics import DAY_MS, Topics
from services.settings import Settings

# The public contract, spelled out by hand: a rename must break this test.
CONTRACT = {
    "liaison.events.ofsted",
    "liaison.events.cqc",
    "liaison.events.hmicfrs",
    "liaison.events.hmi_probation",
    "liaison.events.hmi_prisons",
    "liaison.programme.ilacs",
    "liaison.programme.focused_visit",
    "liaison.programme.monitoring_visit",
    "liaison.programme.clas",
    "liaison.programme.saas",
    "liaison.programme.core_service",
    "liaison.programme.peel",
    "liaison.programme.ncpi",
    "liaison.programme.youth_justice",
    "liaison.programme.probation_service",
    "liaison.programme.custody",
    "liaison.jtai",
    "liaison.feed.areas",
    "liaison.outcomes",
    "liaison.delivery",
    "liaison.quarantine",
    "liaison.unrouted",
    "liaison.audit",
    "liaison.audit.checkpoints",
    "liaison.keys",
    "liaison.router.state",
}


def test_specs_name_exactly_the_contract() -> None:
    names = [spec.name for spec in Topics().specs()]
    assert sorted(names) == sorted(CONTRACT)
    assert len(names) == len(set(names))


def test_prefix_applies_to_every_topic() -> None:
    names = {spec.name for spec in Topics("test.x.").specs()}
    assert names == {f"test.x.{name}" for name in CONTRACT}


def test_jtai_programme_is_the_jtai_queue() -> None:
    assert Topics().programme(Programme.JTAI) == "liaison.jtai"
    assert Topics("p.").programme(Programme.NCPI) == "p.liaison.programme.ncpi"


def test_events_topics_use_broker_append_time_and_keep_forever() -> None:
    specs = {spec.name: spec for spec in Topics().specs()}
    for inspectorate in Inspectorate:
        spec = specs[Topics().events(inspectorate)]
        assert spec.config["message.timestamp.type"] == "LogAppendTime"
        assert spec.config["retention.ms"] == "-1"
        assert spec.partitions >= 3


def test_audit_log_is_one_partition_never_deleted() -> None:
    specs = {spec.name: spec for spec in Topics().specs()}
    for name in ("liaison.audit", "liaison.audit.checkpoints"):
        assert specs[name].partitions == 1
        assert specs[name].config["cleanup.policy"] == "delete"
        assert specs[name].config["retention.ms"] == "-1"


def test_the_keys_topic_keeps_every_signed_change_stamped_by_the_broker() -> None:
    # Compacted, a record with the same key (a revocation's, say) could be erased by
    # anyone able to write to the topic; every change must stay for readers to replay.
    config = {spec.name: spec for spec in Topics().specs()}["liaison.keys"].config
    assert config == {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "message.timestamp.type": "LogAppendTime",
    }


def test_only_the_routers_own_state_is_compacted() -> None:
    # Compaction lets anyone able to write a topic erase a record by reusing its key: only
    # the router's state (MAC'd, written by the router's principal alone) may have it.
    compacted = [
        s.name for s in Topics().specs() if "compact" in s.config.get("cleanup.policy", "")
    ]
    assert compacted == ["liaison.router.state"]


def test_every_area_keyed_topic_has_the_same_partitions() -> None:
    topics = Topics()
    keyed = [*topics.all_events(), topics.outcomes, topics.feed, topics.jtai, topics.router_state]
    specs = {spec.name: spec for spec in topics.specs()}
    assert len({specs[name].partitions for name in keyed}) == 1


def test_the_audit_log_is_stamped_by_the_broker_its_checkpoints_need_not_be() -> None:
    specs = {spec.name: spec for spec in Topics().specs()}
    assert specs["liaison.audit"].config["message.timestamp.type"] == "LogAppendTime"
    assert "message.timestamp.type" not in specs["liaison.audit.checkpoints"].config


def test_every_topic_carrying_envelopes_uses_append_time() -> None:
    topics = Topics()
    carrying = [
        *topics.all_events(),
        *(topics.programme(p) for p in Programme),
        topics.feed,
        topics.unrouted,
    ]
    specs = {spec.name: spec for spec in topics.specs()}
    for name in carrying:
        assert specs[name].config["message.timestamp.type"] == "LogAppendTime", name


def test_quarantine_keeps_refused_records_thirty_days_by_default_then_deletes() -> None:
    spec = {spec.name: spec for spec in Topics().specs()}["liaison.quarantine"]
    assert spec.config == {
        "retention.ms": str(30 * 24 * 60 * 60 * 1000),
        "retention.bytes": "-1",
        "cleanup.policy": "delete",
    }


def test_quarantine_retention_is_configurable_and_only_for_the_quarantine() -> None:
    topics = Topics("p.", quarantine_retention_ms=7 * DAY_MS)
    specs = {spec.name: spec for spec in topics.specs()}
    assert specs["p.liaison.quarantine"].config["retention.ms"] == str(7 * DAY_MS)
    others = [spec for name, spec in specs.items() if name != "p.liaison.quarantine"]
    assert all(s.config.get("retention.ms") in (None, "-1") for s in others)


@pytest.mark.parametrize("retention_ms", [0, -1])
def test_quarantine_retention_is_never_forever_nor_nothing(retention_ms: int) -> None:
    with pytest.raises(ConfigurationError, match="quarantine retention"):
        Topics(quarantine_retention_ms=retention_ms)


def test_settings_give_the_topics_their_quarantine_retention(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LIAISON_QUARANTINE_RETENTION_DAYS", raising=False)
    assert Settings().topics.quarantine_retention_ms == 30 * DAY_MS
    monkeypatch.setenv("LIAISON_QUARANTINE_RETENTION_DAYS", "7")
    assert Settings().topics.quarantine_retention_ms == 7 * DAY_MS


@pytest.mark.parametrize("days", ["0", "-3", "36501", "thirty"])
def test_settings_refuse_a_retention_out_of_bounds(
    monkeypatch: pytest.MonkeyPatch, days: str
) -> None:
    monkeypatch.setenv("LIAISON_QUARANTINE_RETENTION_DAYS", days)
    with pytest.raises(ValueError, match="quarantine_retention_days"):
        Settings()
