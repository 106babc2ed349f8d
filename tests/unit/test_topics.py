from __future__ import annotations

from schemas.inspectorates import Inspectorate, Programme
from schemas.topics import Topics

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
    "liaison.quarantine",
    "liaison.unrouted",
    "liaison.audit",
    "liaison.audit.checkpoints",
    "liaison.keys",
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


def test_keys_topic_is_compacted() -> None:
    specs = {spec.name: spec for spec in Topics().specs()}
    assert specs["liaison.keys"].config["cleanup.policy"] == "compact"


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
