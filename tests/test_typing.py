"""The typed surface agrees with the code: the native module's stubs (``_core.pyi``) with the
module as built (mypy's stubtest), and a user's script written from the docs passes
``mypy --strict`` (numpy numbers in an emotion blend were refused, though accepted at run time;
the stubs named a ``Weights`` the module lacks; helper-77)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is in the test extra")
pytest.importorskip("emolive._core", reason="the engine is not built")
HERE = Path(__file__).resolve().parent


def _mypy(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args, "--cache-dir", str(cache)], capture_output=True, text=True,
                          check=False, cwd=HERE.parent)


def test_the_native_stubs_agree_with_the_built_module(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mypy.stubtest", "emolive._core", "--allowlist",
                             str(HERE / "stubtest_allowlist.txt")], capture_output=True, text=True, check=False,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_script_written_from_the_docs_passes_mypy_strict(tmp_path: Path) -> None:
    """As a user runs it: no configuration of ours."""
    (tmp_path / "none.ini").write_text("[mypy]\n")
    result = _mypy("mypy", "--strict", "--config-file", str(tmp_path / "none.ini"),
                   str(HERE / "typed_scripts" / "users_script.py"), cache=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_passes_mypy_strict(tmp_path: Path) -> None:
    """pyproject.toml's [tool.mypy]: strict, over python/emolive."""
    result = _mypy("mypy", cache=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
