"""Malformed model directories (tests/reliability/bad_models.py, 40 kinds): each is refused
with a ModelError whose message names what is wrong; each runs in its own subprocess so a crash
of the native loader is a failure, not a lost test session."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bad_models import BadModel, corpus, with_batch_step

PROBE = Path(__file__).resolve().parent / "model_probe.py"


@pytest.fixture(scope="module")
def other_size_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from emolive.training.export import export_random_model

    return export_random_model(tmp_path_factory.mktemp("other"), z_dim=8, hidden=24, seed=1)


def probe(model: Path) -> dict:
    proc = subprocess.run([sys.executable, str(PROBE), str(model)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, (
        f"the process loading {model.name} died with status {proc.returncode} "
        f"(a crash, not an exception)\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _kinds() -> list[str]:
    return [bad.name for bad in corpus(Path("unused"))]


def test_corpus_has_at_least_20_kinds() -> None:
    assert len(set(_kinds())) >= 20


def test_the_unbroken_copy_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Control: the copy every case starts from is valid and plays notes."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    result = probe(model)
    assert result["error"] is None, result
    assert result["note_ons"] > 0


def test_a_copy_with_a_batch_step_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Control for the batch-step kinds: the same edit with an intact file loads and plays."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    with_batch_step()(model)
    result = probe(model)
    assert result["error"] is None, result
    assert result["note_ons"] > 0


@pytest.mark.parametrize("kind", _kinds())
def test_broken_model_is_refused_clearly(kind: str, tiny_model_dir: Path, other_size_model: Path,
                                         tmp_path: Path) -> None:
    bad: BadModel = next(b for b in corpus(other_size_model) if b.name == kind)
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    bad.breaks(model)
    result = probe(model)
    assert result["error"] is not None, f"{kind}: loaded and played {result}"
    assert "ModelError" in result["bases"], f"{kind}: {result['error']}: {result['message']}"
    message = result["message"].lower()
    for word in bad.mentions:
        assert word.lower() in message, f"{kind}: message lacks {word!r}: {result['message']}"
