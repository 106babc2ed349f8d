"""deploy/acls.toml and services.acls: least privilege, checked; the file read strictly;
bindings expanded under a prefix; the diff that ``acls apply`` acts on."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import ConfigurationError
from schemas.inspectorates import JTAI, Inspectorate, Programme, owner_of
from schemas.keys import BUS
from schemas.topics import Topics
from services.acls import (
    KNOWN_GROUPS,
    KNOWN_TRANSACTIONAL_IDS,
    AclBinding,
    AclFile,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    diff,
    liaison_scoped,
    load_acls,
    parse_acls,
)
from services.deliver import deliver_group_id, deliver_transactional_id
from services.kafka import publisher_transactional_id
from services.key_warden import key_warden_group_id
from services.router_service import router_group_id, router_transactional_id
from services.settings import Settings

ACLS = Path(__file__).resolve().parents[2] / "deploy" / "acls.toml"
TOPICS = Topics()


@pytest.fixture(scope="module")
def acls() -> AclFile:
    return load_acls(ACLS)


def covers(binding: AclBinding, name: str) -> bool:
    """Whether ``binding``'s resource pattern matches resource ``name``."""
    if binding.pattern is PatternType.PREFIXED:
        return name.startswith(binding.resource_name)
    return binding.resource_name in {name, "*"}


def allowed(acls: AclFile, principal: str, operation: Operation, topic: str) -> bool:
    return any(
        b.operation in {operation, Operation.ALL}
        and b.resource_type is ResourceType.TOPIC
        and covers(b, topic)
        for b in acls.principals[principal].bindings()
    )


def writers(acls: AclFile, topic: str) -> set[str]:
    return {name for name in acls.principals if allowed(acls, name, Operation.WRITE, topic)}


def readers(acls: AclFile, topic: str) -> set[str]:
    return {name for name in acls.principals if allowed(acls, name, Operation.READ, topic)}


# -- the file itself: least privilege ---------------------------------------------------------


def test_the_file_names_the_expected_principals(acls: AclFile) -> None:
    names = set(acls.principals)
    assert {"admin", "router", "audit", "warden", "keyadmin", "reader", "auditor"} <= names
    assert {i.value for i in Inspectorate} <= names
    assert {f"programme_{p.value}" for p in Programme if p is not JTAI} <= names
    assert {f"programme_jtai_{i.value}" for i in Inspectorate} <= names
    assert not any("analyst" in name for name in names)  # analysts go through the reader


def test_the_router_cannot_write_any_events_topic(acls: AclFile) -> None:
    for topic in TOPICS.all_events():
        assert "router" not in writers(acls, topic), topic
        assert "router" in readers(acls, topic), topic


def test_the_router_writes_what_it_routes_to(acls: AclFile) -> None:
    for topic in (
        *(TOPICS.programme(p) for p in Programme),
        TOPICS.jtai, TOPICS.feed, TOPICS.unrouted, TOPICS.quarantine, TOPICS.audit,
        TOPICS.router_state,
    ):  # fmt: skip
        assert "router" in writers(acls, topic), topic
    assert not allowed(acls, "router", Operation.WRITE, TOPICS.keys)
    assert not allowed(acls, "router", Operation.WRITE, TOPICS.outcomes)


def test_an_inspectorate_writes_only_its_own_events_topic(acls: AclFile) -> None:
    for inspectorate in Inspectorate:
        written = {t for t in TOPICS.all_events() if inspectorate.value in writers(acls, t)}
        assert written == {TOPICS.events(inspectorate)}
        others = {t.name for t in TOPICS.specs()} - {TOPICS.events(inspectorate), TOPICS.audit}
        assert not any(allowed(acls, inspectorate.value, Operation.WRITE, t) for t in others)


def test_only_inspectorates_and_the_redriving_operator_write_events(acls: AclFile) -> None:
    for inspectorate in Inspectorate:
        assert writers(acls, TOPICS.events(inspectorate)) == {inspectorate.value, "operator"}


def test_only_the_key_administrator_writes_liaison_keys(acls: AclFile) -> None:
    assert writers(acls, TOPICS.keys) == {"keyadmin"}


def test_the_reader_writes_nothing_but_the_audit_log(acls: AclFile) -> None:
    written = {t.name for t in TOPICS.specs() if allowed(acls, "reader", Operation.WRITE, t.name)}
    assert written == {TOPICS.audit}
    assert not acls.principals["reader"].groups
    assert not acls.principals["reader"].transactional_ids


def test_each_programme_team_reads_only_its_own_queue(acls: AclFile) -> None:
    queues = {TOPICS.programme(p) for p in Programme}
    for programme in Programme:
        if programme is JTAI:
            teams = [f"programme_jtai_{i.value}" for i in Inspectorate]
        else:
            teams = [f"programme_{programme.value}"]
        for team in teams:
            read = {q for q in queues if allowed(acls, team, Operation.READ, q)}
            # Beside its own queue, an inbox reads liaison.jtai for the JTAI status of its
            # findings (considerations and decisions: services.inbox.accepted).
            assert read - {TOPICS.jtai} == {TOPICS.programme(programme)} - {TOPICS.jtai}, team
            assert TOPICS.programme(programme) in read, team


def test_auditors_read_the_audit_topics(acls: AclFile) -> None:
    assert allowed(acls, "auditor", Operation.READ, TOPICS.audit)
    assert allowed(acls, "auditor", Operation.READ, TOPICS.audit_checkpoints)
    assert readers(acls, TOPICS.audit_checkpoints) == {"auditor"}
    assert writers(acls, TOPICS.audit_checkpoints) == {"audit"}


def test_no_principal_gets_all_cluster_or_wildcard_rights(acls: AclFile) -> None:
    for binding in acls.bindings():
        assert binding.resource_type is not ResourceType.CLUSTER
        assert binding.operation in {Operation.READ, Operation.WRITE, Operation.DESCRIBE}
        assert binding.permission is Permission.ALLOW
        assert binding.host == "*"
        assert binding.resource_name.startswith("liaison")
        assert binding.resource_name != "*"
    assert not acls.principals["admin"].bindings()  # a super user in the brokers' config


def test_groups_and_transactional_ids_are_granted_as_the_code_names_them(acls: AclFile) -> None:
    settings = Settings(topic_prefix="")

    def holders(kind: ResourceType, name: str) -> set[str]:
        return {
            b.user
            for b in acls.bindings()
            if b.resource_type is kind and covers(b, name) and b.operation is not Operation.DESCRIBE
        }

    group, txn = ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID
    assert holders(group, router_group_id(settings)) == {"router"}
    for number in (0, 1, 2):
        assert holders(txn, router_transactional_id(settings, number)) == {"router"}
    assert holders(group, key_warden_group_id(settings)) == {"audit", "warden"}
    assert holders(txn, key_warden_group_id(settings)) == {"audit", "warden"}
    for programme in Programme:
        for receiver in Inspectorate if programme is JTAI else [owner_of(programme)]:
            assert receiver is not None
            team = (
                f"programme_jtai_{receiver.value}"
                if programme is JTAI
                else f"programme_{programme.value}"
            )
            assert holders(group, deliver_group_id(settings, programme, receiver)) == {team}
            assert holders(txn, deliver_transactional_id(settings, programme, receiver)) == {team}
    for inspectorate in Inspectorate:
        publisher = publisher_transactional_id(settings, inspectorate.value)
        assert inspectorate.value in holders(txn, publisher)
        assert not {i.value for i in Inspectorate if i is not inspectorate} & holders(
            txn, publisher
        )
    assert holders(txn, publisher_transactional_id(settings, BUS)) == {"reminders"}


def test_the_known_names_are_the_codes(acls: AclFile) -> None:
    settings = Settings(topic_prefix="")
    assert router_group_id(settings) in KNOWN_GROUPS
    assert key_warden_group_id(settings) in KNOWN_GROUPS
    assert key_warden_group_id(settings) in KNOWN_TRANSACTIONAL_IDS
    assert router_transactional_id(settings, 0).rsplit(".", 1)[0] + ".*" in KNOWN_TRANSACTIONAL_IDS
    for owner in (*(i.value for i in Inspectorate), BUS, "demo"):
        family = publisher_transactional_id(settings, owner).rsplit(".", 1)[0] + ".*"
        assert family in KNOWN_TRANSACTIONAL_IDS


def test_bindings_known_answer_for_one_inspectorate(acls: AclFile) -> None:
    def b(kind: ResourceType, name: str, pattern: PatternType, op: Operation) -> AclBinding:
        return AclBinding("User:ofsted", kind, name, pattern, op)

    topic, literal, prefixed = ResourceType.TOPIC, PatternType.LITERAL, PatternType.PREFIXED
    assert acls.principals["ofsted"].bindings("t1.") == {
        b(topic, "t1.liaison.keys", literal, Operation.READ),
        b(topic, "t1.liaison.events.ofsted", literal, Operation.WRITE),
        b(topic, "t1.liaison.audit", literal, Operation.WRITE),
        b(ResourceType.TRANSACTIONAL_ID, "t1.liaison.publisher.ofsted.", prefixed, Operation.WRITE),
    }


# -- reading the file strictly ----------------------------------------------------------------

_OK = '[principal.x]\ndescription = "x"\n'


def refused(text: str) -> str:
    with pytest.raises(ConfigurationError) as raised:
        parse_acls(text, "deploy/acls.toml")
    return str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_OK + 'write = ["liaison.event.*"]', "principal 'x': write.0: 'liaison.event.*' matches"),
        (_OK + 'write = ["liaison.event.*"]', "did you mean 'liaison.events.*'?"),
        (_OK + 'read = ["liaison.feed"]', "read.0: 'liaison.feed' is not a Liaison topic"),
        (_OK + 'read = ["liaison.kyes"]', "did you mean 'liaison.keys'?"),
        (_OK + 'read = ["liaison.*.ofsted"]', "'*' may only end a name"),
        (_OK + 'read = ["other.topic"]', "every Liaison name starts 'liaison.'"),
        (_OK + 'read = ["*"]', "read.0: '*' is not a Liaison topic"),
        (_OK + 'read = "liaison.keys"', "read: must be a list"),
        (_OK + "read = [3]", "read.0: must be a string"),
        (_OK + 'read = ["liaison.keys", "liaison.keys"]', "read.1: 'liaison.keys' is listed twice"),
        (_OK + 'reads = ["liaison.keys"]', "unknown key 'reads' (did you mean 'read'?)"),
        (_OK + 'groups = ["liaison.routr"]', "did you mean 'liaison.router'?"),
        (_OK + 'transactional_ids = ["liaison.publisher.nobody.*"]', "transactional_ids.0"),
        ("[principal.x]\nread = []\n", "principal 'x': description is required"),
        ('[principal.X]\ndescription = "x"\n', "principal 'X': not a valid principal name"),
        ('[principals.x]\ndescription = "x"\n', "unknown top-level key 'principals'"),
        ("", "no principals"),
        ("[principal.x\n", "not valid TOML (line 1, column 13)"),
    ],
)
def test_a_wrong_file_is_one_error_naming_file_principal_and_field(
    text: str, expected: str
) -> None:
    message = refused(text)
    assert expected in message
    assert message.startswith("deploy/acls.toml: ")


def test_every_problem_is_listed_at_once() -> None:
    message = refused(_OK + 'read = ["liaison.kyes"]\nwrite = ["liaison.nope"]\n[principal.y]\n')
    assert len(message.splitlines()) == 3


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"acls\.toml: file not found"):
        load_acls(tmp_path / "acls.toml")


def test_families_are_accepted_within_and_around() -> None:
    parsed = parse_acls(
        _OK
        + 'transactional_ids = ["liaison.router.0", "liaison.publisher.*",'
        + ' "liaison.deliver.ilacs"]\n'
        + 'groups = ["liaison-deliver-*"]\nread = ["liaison.events.*", "liaison.router.state"]\n'
    )
    assert len(parsed.bindings()) == 6


# -- expansion and diff: properties -----------------------------------------------------------

_prefixes = st.text(alphabet="abcxyz0123456789.-_", max_size=12)


@given(_prefixes)
def test_a_prefix_goes_before_every_resource_and_nothing_else_changes(prefix: str) -> None:
    acls = load_acls(ACLS)
    plain = acls.bindings()
    prefixed = acls.bindings(prefix)
    assert len(prefixed) == len(plain)
    assert {(b.principal, prefix + b.resource_name, b.pattern, b.operation) for b in plain} == {
        (b.principal, b.resource_name, b.pattern, b.operation) for b in prefixed
    }
    assert all(liaison_scoped(b, prefix) for b in prefixed)


_foreign = st.builds(
    AclBinding,
    principal=st.sampled_from(["User:grafana", "User:router", "User:other"]),
    resource_type=st.sampled_from(list(ResourceType)),
    resource_name=st.sampled_from(
        ["other.topic", "*", "lia", "kafka-connect", "x.liaison.events.", "liaison.events.ofsted"]
    ),
    pattern=st.sampled_from([PatternType.LITERAL, PatternType.PREFIXED]),
    operation=st.sampled_from(list(Operation)),
    permission=st.sampled_from([Permission.ALLOW, Permission.DENY]),
)


@given(
    wanted=st.sets(st.sampled_from(sorted(load_acls(ACLS).bindings())), max_size=30),
    present=st.sets(st.sampled_from(sorted(load_acls(ACLS).bindings())), max_size=30),
    others=st.sets(_foreign, max_size=10),
)
def test_applying_the_diff_leaves_no_drift_and_never_touches_others(
    wanted: set[AclBinding], present: set[AclBinding], others: set[AclBinding]
) -> None:
    actual = present | others
    found = diff(wanted, actual)
    assert set(found.present) | set(found.missing) == wanted
    assert not set(found.present) & set(found.missing)
    assert all(liaison_scoped(b) for b in found.extra)
    assert not {b for b in others if not liaison_scoped(b)} & set(found.extra)
    after = (actual - set(found.extra)) | set(found.missing)
    again = diff(wanted, after)
    assert not again.drift
    assert {b for b in actual if not liaison_scoped(b)} <= after  # others' bindings stay


def test_diff_of_the_same_bindings_is_no_drift(acls: AclFile) -> None:
    assert not diff(acls.bindings("p."), acls.bindings("p."), "p.").drift
    # Another prefix's bindings are not this prefix's to remove.
    assert not diff(acls.bindings("p."), acls.bindings("p.") | acls.bindings("q."), "p.").drift
