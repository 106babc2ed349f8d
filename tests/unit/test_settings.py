"""Settings from LIAISON_* variables, whatever the shell running the tests holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from schemas.errors import ConfigurationError
from services.settings import DEFAULT_LOCAL_PORT, DEMO_ROUTER_INSTANCE, Settings, load_settings


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


def test_unit_tests_see_none_of_the_shells_liaison_variables() -> None:
    # tests/conftest.py removes them, so a user's LIAISON_LOCAL_BROKER_PORT (documented in
    # the README) or LIAISON_LOG_LEVEL cannot change what a unit test sees.
    assert [name for name in os.environ if name.startswith("LIAISON_")] == []


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("LIAISON_LOG_LEVEL", "verbose", "LIAISON_LOG_LEVEL: Input should be 'DEBUG'"),
        ("LIAISON_LOCAL_BROKER_PORT", "80", "LIAISON_LOCAL_BROKER_PORT: Input should be greater"),
        ("LIAISON_REPLICATION_FACTOR", "three", "LIAISON_REPLICATION_FACTOR: Input should be a"),
        ("LIAISON_ROUTER_INSTANCE", "a b", "LIAISON_ROUTER_INSTANCE: String should match"),
    ],
)
def test_a_bad_variable_is_one_configuration_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value).startswith(says)
    assert value not in str(raised.value)


def test_settings_load_when_the_environment_is_good(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIAISON_LOG_LEVEL", "DEBUG")
    assert load_settings().log_level == "DEBUG"


def test_no_serving_router_may_take_the_demos_transactional_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIAISON_ROUTER_INSTANCE", DEMO_ROUTER_INSTANCE)
    with pytest.raises(ConfigurationError, match=r"LIAISON_ROUTER_INSTANCE: .*`liaison demo`"):
        load_settings()
