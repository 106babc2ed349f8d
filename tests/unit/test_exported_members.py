"""Every package exports exactly what it lists, and only public names."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

PACKAGES = ["schemas", "producers", "consumers", "services"]


def modules() -> list[str]:
    found = []
    for package in PACKAGES:
        found.append(package)
        module = importlib.import_module(package)
        found.extend(
            f"{package}.{info.name}"
            for info in pkgutil.iter_modules(module.__path__)
            if not info.name.startswith("_")
        )
    return found


@pytest.mark.parametrize("name", modules())
def test_all_lists_existing_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    for member in exported:
        assert not member.startswith("_"), member
        assert hasattr(module, member), f"{name}.__all__ names missing {member}"


# Which packages each layer may import (ARCHITECTURE.md): imports point inwards.
FORBIDDEN = {
    "schemas": {"producers", "consumers", "services"},
    "producers": {"consumers", "services"},
    "consumers": {"producers", "services"},
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_inwards(package: str) -> None:
    root = Path(importlib.import_module(package).__path__[0])
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = [node.module]
            elif isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            else:
                continue
            for name in imported:
                assert name.split(".")[0] not in FORBIDDEN[package], f"{path} imports {name}"
