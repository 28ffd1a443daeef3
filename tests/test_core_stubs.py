"""The type stubs of the native module (python/emolive/_core.pyi) name what it has: every
function, class and method, and nothing it lacks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

core = pytest.importorskip("emolive._core", reason="the engine is not built")
STUBS = Path(__file__).resolve().parents[1] / "python" / "emolive" / "_core.pyi"


def _stubbed() -> dict[str, set[str]]:
    """Top-level names of the stubs -> the method names of each class (empty for a function or
    a constant)."""
    names: dict[str, set[str]] = {}
    for node in ast.parse(STUBS.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            names[node.name] = set()
        elif isinstance(node, ast.ClassDef):
            names[node.name] = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and not node.target.id.startswith("_"):  # a public constant
            names[node.target.id] = set()
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


def test_native_signatures_name_python_types_not_cpp_ones() -> None:
    """Engine's constructor showed `output: emolive::bindings::OutputHandle` in help() (helper-63):
    a class registered after the function that takes it is named by its C++ type."""
    from emolive import _core

    callables = [getattr(_core, name) for name in dir(_core) if not name.startswith("_")]
    callables += [getattr(item, attr) for item in callables if isinstance(item, type)
                  for attr in dir(item) if attr == "__init__" or not attr.startswith("_")]
    signatures = [(item.__doc__ or "").split("\n", 1)[0] for item in callables if callable(item)]
    assert [line for line in signatures if "::" in line] == []


def test_the_package_re_exports_its_engine_names_for_type_checkers() -> None:
    """mypy --strict (no implicit re-export) reads `from m import X as X` and a literal __all__."""
    import emolive

    tree = ast.parse(Path(emolive.__file__).read_text())
    aliased = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module == "emolive.engine" for alias in node.names if alias.asname == alias.name}
    assert aliased == set(emolive._ENGINE_NAMES)
    literal = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", None) == "__all__")
    assert isinstance(literal, ast.List) and all(isinstance(e, ast.Constant) for e in literal.elts)
    assert set(emolive._ENGINE_NAMES) <= set(emolive.__all__)


def test_one_version_everywhere() -> None:
    """The version is written once (python/emolive/__init__.py): the package metadata and the
    native module read it from there, where four files each had their own copy."""
    import importlib.metadata

    import emolive

    assert core.__version__ == emolive.__version__ == importlib.metadata.version("emolive")
