"""`liaison acls apply|list` against the secured three-node cluster, and Kafka itself
refusing principals what deploy/acls.toml does not grant them (with the error Liaison
shows saying so)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from schemas.errors import BrokerError
from schemas.events import encode_event
from schemas.inspectorates import Inspectorate, Programme
from schemas.records import OutboundRecord
from services.acls import (
    AclBinding,
    Operation,
    PatternType,
    ResourceType,
    load_acls,
)
from services.kafka import apply_topics, delete_topics, end_offsets, kafka_sink, transactional_sink
from services.kafka_acls import acl_drift, apply_acls
from services.keys_admin import ensure_keys
from services.settings import Settings
from tests.conftest import one_error_line, run_liaison
from tests.factories import concern, utc_now
from tests.integration._cluster import SecuredCluster, secured_cluster  # noqa: F401

# One event loop for the module: its topics, keys and ACLs are made once.
pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="module")]

PREFIX = f"acls.{uuid.uuid4().hex[:8]}."


class Secured:
    """The cluster with this module's topics, keys and ACLs: settings as any principal."""

    def __init__(self, cluster: SecuredCluster, home: Path) -> None:
        self.cluster = cluster
        self.home = home

    def settings(self, principal: str) -> Settings:
        return self.cluster.settings_for(principal, topic_prefix=PREFIX, home=self.home)

    async def liaison(self, principal: str, *args: str) -> subprocess.CompletedProcess[str]:
        settings = self.settings(principal)
        env = {
            **self.cluster.env(principal),
            "LIAISON_TOPIC_PREFIX": PREFIX,
            "LIAISON_HOME": str(self.home),
        }
        return await run_liaison(settings, *args, env=env)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secured(
    secured_cluster: SecuredCluster,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Secured]:
    """Topics applied, keys made and ACLs applied as admin, under this module's prefix."""
    found = Secured(secured_cluster, tmp_path_factory.mktemp("acls-home"))
    admin = found.settings("admin")
    await apply_topics(admin, admin.topics.specs())
    await ensure_keys(admin, tuple(i.value for i in Inspectorate), utc_now())
    acls = load_acls(admin.deploy_dir / "acls.toml")
    await apply_acls(admin, acls.bindings(PREFIX))
    yield found
    await apply_acls(admin, ())  # this prefix's ACLs removed again
    await delete_topics(admin, [spec.name for spec in admin.topics.specs()])


async def test_apply_then_list_shows_no_drift_and_apply_again_changes_nothing(
    secured: Secured,
) -> None:
    listed = await secured.liaison("admin", "acls", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert document["drift"] is False
    assert {row["state"] for row in document["acls"]} == {"ok"}
    assert "no drift" in listed.stderr

    again = await secured.liaison("admin", "acls", "apply")
    assert again.returncode == 0, again.stderr
    assert "0 added, 0 removed" in again.stderr
    assert again.stdout == ""

    # A grant the file does not make, on Liaison's resources: listed as drift, then removed.
    admin = secured.settings("admin")
    stray = AclBinding(
        "User:router", ResourceType.TOPIC, f"{PREFIX}liaison.keys", PatternType.LITERAL,
        Operation.WRITE,
    )  # fmt: skip
    desired = load_acls(admin.deploy_dir / "acls.toml").bindings(PREFIX)
    await apply_acls(admin, desired | {stray})
    drift = await acl_drift(admin, desired)
    assert drift.extra == (stray,)
    table = await secured.liaison("admin", "acls", "list")
    assert "not in the file" in table.stdout
    assert "drift: 0 missing, 1 not in the file" in table.stderr
    fixed = await secured.liaison("admin", "acls", "apply")
    assert fixed.returncode == 0, fixed.stderr
    assert "0 added, 1 removed" in fixed.stderr
    assert "- User:router WRITE TOPIC" in fixed.stdout
    assert not (await acl_drift(admin, desired)).drift


async def test_an_inspectorate_publishes_to_its_own_topic_and_kafka_refuses_another(
    secured: Secured, tmp_path: Path
) -> None:
    admin = secured.settings("admin")
    topics = admin.topics
    ofsted, cqc = topics.events(Inspectorate.OFSTED), topics.events(Inspectorate.CQC)
    before = await end_offsets(admin, [ofsted, cqc])

    own = tmp_path / "ofsted.jsonl"
    own.write_bytes(encode_event(concern()) + b"\n")
    published = await secured.liaison("ofsted", "publish", "--as", "ofsted", str(own))
    assert published.returncode == 0, published.stderr
    assert "1 published as ofsted" in published.stderr

    other = tmp_path / "cqc.jsonl"
    other.write_bytes(encode_event(concern(source="cqc", programme="clas")) + b"\n")
    refused = await secured.liaison("ofsted", "publish", "--as", "cqc", str(other))
    line = one_error_line(refused)
    assert line.startswith("error: Kafka refused principal ofsted: not authorised to ")
    assert "AUTHORIZATION_FAILED" in line
    assert refused.stdout == ""

    # Past the transactional id, the topic itself: Kafka refuses the write.
    sealed_elsewhere = OutboundRecord(cqc, b"E08000025", b"{}", ())

    async def write_elsewhere() -> None:
        async with (
            transactional_sink(secured.settings("ofsted"), "ofsted") as sink,
            sink.transaction() as transaction,
        ):
            await (await transaction.send(sealed_elsewhere))

    with pytest.raises(BrokerError, match="Kafka refused") as raised:
        await write_elsewhere()
    assert str(raised.value) == (
        f"Kafka refused principal ofsted: not authorised to write {cqc}"
        " (TOPIC_AUTHORIZATION_FAILED)"
    )

    after = await end_offsets(admin, [ofsted, cqc])
    assert sum(after[(cqc, p)] - before[(cqc, p)] for p in range(3)) == 0  # nothing written
    assert sum(after[(ofsted, p)] - before[(ofsted, p)] for p in range(3)) >= 1


async def test_a_programme_team_cannot_read_another_programmes_queue(secured: Secured) -> None:
    ilacs = secured.settings("programme_ilacs")
    topics = ilacs.topics
    own = topics.programme(Programme.ILACS)
    assert set(await end_offsets(ilacs, [own])) == {(own, p) for p in range(3)}
    clas = topics.programme(Programme.CLAS)
    with pytest.raises(BrokerError, match="Kafka refused principal programme_ilacs") as raised:
        await end_offsets(ilacs, [clas])
    assert clas in str(raised.value)


async def test_the_reader_cannot_write_liaison_keys(secured: Secured) -> None:
    admin = secured.settings("admin")
    keys = admin.topics.keys
    before = await end_offsets(admin, [keys])

    async def forge() -> None:
        async with kafka_sink(secured.settings("reader")) as sink:
            await sink.send(OutboundRecord(keys, b"forged", b"{}", ()))

    with pytest.raises(BrokerError, match="Kafka refused") as raised:
        await forge()
    assert str(raised.value) == (
        f"Kafka refused principal reader: not authorised to write {keys}"
        " (TOPIC_AUTHORIZATION_FAILED)"
    )
    assert await end_offsets(admin, [keys]) == before


async def test_acls_on_a_cluster_without_an_authorizer_is_one_clear_error(
    base_settings: Settings, live_bootstrap: str
) -> None:
    plain = base_settings.model_copy(update={"bootstrap_servers": live_bootstrap})
    done = await run_liaison(plain, "acls", "list")
    line = one_error_line(done)
    assert "the cluster has no authorizer (SECURITY_DISABLED)" in line
