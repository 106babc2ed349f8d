"""Fixtures every integration test can ask for by name, without importing them."""

from __future__ import annotations

from tests.integration._cluster import secured_cluster  # noqa: F401 - a fixture, by name
