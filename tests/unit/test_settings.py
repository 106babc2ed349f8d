from __future__ import annotations

from pathlib import Path

import pytest

from services.settings import DEFAULT_LOCAL_PORT, Settings


def test_defaults_point_at_the_local_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LIAISON_BOOTSTRAP_SERVERS", "LIAISON_HOME", "LIAISON_TOPIC_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.bootstrap_servers == f"127.0.0.1:{DEFAULT_LOCAL_PORT}"
    assert settings.home == Path(".liaison")
    assert settings.topic_prefix == ""
    assert settings.topics.jtai == "liaison.jtai"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIAISON_BOOTSTRAP_SERVERS", "kafka-1:9093,kafka-2:9093")
    monkeypatch.setenv("LIAISON_HOME", "/var/lib/liaison")
    monkeypatch.setenv("LIAISON_TOPIC_PREFIX", "staging.")
    settings = Settings()
    assert settings.bootstrap_servers == "kafka-1:9093,kafka-2:9093"
    assert settings.home == Path("/var/lib/liaison")
    assert settings.topics.jtai == "staging.liaison.jtai"


def test_local_port_moves_the_default_bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIAISON_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("LIAISON_LOCAL_BROKER_PORT", "40000")
    assert Settings().bootstrap_servers == "127.0.0.1:40000"


def test_bad_prefix_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIAISON_TOPIC_PREFIX", "no spaces")
    with pytest.raises(ValueError, match="topic_prefix"):
        Settings()
