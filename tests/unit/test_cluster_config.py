"""The development cluster's port layout, node configuration and principals (pure)."""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import ConfigurationError
from services.cluster import ADMIN, NODES, node_ports, principals_in, render_node_properties


def properties(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key] = value
    return found


def test_port_layout() -> None:
    assert NODES == (1, 2, 3)
    one = node_ports(39300, 1)
    assert (one.client, one.internal, one.controller) == (39300, 39303, 39306)
    three = node_ports(39300, 3)
    assert (three.client, three.internal, three.controller) == (39302, 39305, 39308)


@given(st.integers(min_value=1024, max_value=65526))
def test_nine_distinct_ports_from_the_base(base: int) -> None:
    ports = [p for n in NODES for p in astuple(node_ports(base, n))]
    assert sorted(ports) == list(range(base, base + 9))


def test_unknown_node() -> None:
    with pytest.raises(ConfigurationError, match="no node 4"):
        node_ports(39300, 4)


def test_node_properties_secure_every_listener() -> None:
    config = properties(
        render_node_properties(
            node=2, base_port=39300, node_dir=Path("/h/cluster/node-2"), tls_dir=Path("/h/tls")
        )
    )
    assert config["node.id"] == "2"
    assert config["controller.quorum.voters"] == (
        "1@127.0.0.1:39306,2@127.0.0.1:39307,3@127.0.0.1:39308"
    )
    assert config["listeners"] == (
        "CLIENT://127.0.0.1:39301,INTERNAL://127.0.0.1:39304,CONTROLLER://127.0.0.1:39307"
    )
    assert config["listener.security.protocol.map"] == (
        "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL"
    )
    assert "PLAINTEXT" not in config["listeners"]
    assert config["ssl.client.auth"] == "required"
    assert config["listener.name.client.ssl.client.auth"] == "none"
    assert config["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert config["ssl.keystore.type"] == "PEM"
    assert config["ssl.keystore.location"] == "/h/tls/node-2.pem"
    assert config["ssl.truststore.location"] == "/h/tls/ca.pem"
    assert config["ssl.principal.mapping.rules"] == (
        f"RULE:^CN=liaison-node-[0-9]+$/{ADMIN}/,DEFAULT"
    )
    assert config["log.dirs"] == "/h/cluster/node-2/data"


def test_node_properties_authorise_and_replicate() -> None:
    config = properties(
        render_node_properties(node=1, base_port=40000, node_dir=Path("/n"), tls_dir=Path("/t"))
    )
    assert config["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["super.users"] == "User:admin"
    assert "ANONYMOUS" not in config["super.users"]
    for key, value in {
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
    }.items():
        assert config[key] == value, key


ACLS = """
[principal.admin]
description = "operator"

[principal.router]
description = "router"

[[principal.router.allow]]
operation = "Read"
"""


def test_principals_are_the_principal_tables() -> None:
    assert principals_in(ACLS) == ("admin", "router")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[principal", "not valid TOML"),
        ("[other]\n", "no \\[principal"),
        ('[principal.router]\ndescription = "x"\n', "must name \\[principal.admin\\]"),
        ('[principal.admin]\n[principal."a b"]\n', "principal names must be"),
    ],
)
def test_bad_acl_files(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        principals_in(text)
