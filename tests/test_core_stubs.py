"""The type stubs of the native module (python/emolive/_core.pyi) name what it has: every
function, class and method, and nothing it lacks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

core = pytest.importorskip("emolive._core", reason="the engine is not built")
STUBS = Path(__file__).resolve().parents[1] / "python" / "emolive" / "_core.pyi"


def _stubbed() -> dict[str, set[str]]:
    """Top-level names of the stubs -> the method names of each class (empty for a function)."""
    names: dict[str, set[str]] = {}
    for node in ast.parse(STUBS.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            names[node.name] = set()
        elif isinstance(node, ast.ClassDef):
            names[node.name] = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
    return names


def _public(obj: object) -> set[str]:
    return {name for name in vars(obj) if not name.startswith("_")}


def test_the_stubs_name_every_function_class_and_method_of_the_native_module() -> None:
    stubbed = _stubbed()
    assert set(stubbed) == _public(core)
    for name, methods in stubbed.items():
        obj = getattr(core, name)
        if isinstance(obj, type) and not issubclass(obj, BaseException):
            assert {m for m in methods if not m.startswith("_")} == _public(obj), name
