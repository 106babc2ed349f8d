from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from services.local_broker import _kafka_cluster_id, render_server_properties

ROOT = Path(__file__).resolve().parents[2]


def test_template_renders_ports_and_data_dir() -> None:
    template = (ROOT / "deploy/local/server.properties").read_text()
    rendered = render_server_properties(template, port=41000, data_dir=Path("/x/data"))
    lines = set(rendered.splitlines())
    assert "listeners=PLAINTEXT://127.0.0.1:41000,CONTROLLER://127.0.0.1:41001" in lines
    assert "controller.quorum.voters=1@127.0.0.1:41001" in lines
    assert "log.dirs=/x/data" in lines
    assert "auto.create.topics.enable=false" in lines
    assert "$" not in rendered


def test_template_with_an_unknown_placeholder_fails() -> None:
    with pytest.raises(KeyError):
        render_server_properties("a=${nope}", port=1, data_dir=Path("/d"))


def test_cluster_id_is_kafkas_22_char_base64_uuid() -> None:
    cluster_id = _kafka_cluster_id()
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    assert _kafka_cluster_id() != cluster_id


def test_no_cluster_id_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # kafka-storage would read "--cluster-id -..." as an option without its value.
    assert not any(_kafka_cluster_id().startswith("-") for _ in range(2000))
    dashed = uuid.UUID(bytes=base64.urlsafe_b64decode("-" + "A" * 21 + "=="))
    draws = iter([dashed, uuid.UUID(int=1)])
    monkeypatch.setattr("services._kafka_process.uuid.uuid4", lambda: next(draws))
    assert _kafka_cluster_id() == base64.urlsafe_b64encode(uuid.UUID(int=1).bytes).decode()[:22]
