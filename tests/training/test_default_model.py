"""The shipped default model: in the contract, small enough, licence stated, card in the ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from emolive.training.card import io_shapes
from emolive.training.model import ModelConfig

pytestmark = pytest.mark.training

DEFAULT = Path(__file__).resolve().parents[2] / "python" / "emolive" / "models" / "default"


@pytest.fixture(scope="module")
def card() -> dict:
    if not (DEFAULT / "model_card.json").is_file():
        pytest.fail(f"no default model in {DEFAULT}")
    return json.loads((DEFAULT / "model_card.json").read_text())


def test_default_model_size_licence_and_figures(card: dict) -> None:
    total = sum(p.stat().st_size for p in DEFAULT.iterdir())
    assert total <= 20 * 1024 * 1024
    assert "CC BY-NC-SA 4.0" in card["licence"]
    assert card["data"][0]["name"] == "EMOPIA 1.0" and card["data"][0]["licence"] == "CC BY-NC-SA 4.0"
    assert card["training"]["config"]["datasets"] == ["emopia"]
    assert all(entry["licence"] for entry in card["data"])
    if card["training"]["config"].get("init_from"):  # pre-trained: the card names that data too
        assert any(entry["name"] == "POP909" and entry["licence"] == "MIT" for entry in card["data"])
    assert 0.0 < card["evaluation"]["onset_f1_teacher_forced"] < 1.0
    assert set(card["sampling"]) >= {"onset_threshold", "hold_threshold", "temperature"}


def test_default_model_files_follow_the_card(card: dict) -> None:
    cfg = ModelConfig(**card["model"])
    assert card["io"] == io_shapes(cfg, batch_step="decoder_step_batch" in card["files"])
    feeds = {"z": np.zeros((2, cfg.z_dim), np.float32),
             "emotion": np.tile(np.eye(4, dtype=np.float32)[[0]], (2, 1))}
    for key, name in card["files"].items():
        proto = onnx.load(str(DEFAULT / name))
        onnx.checker.check_model(proto, full_check=True)
        props = {p.key: p.value for p in proto.metadata_props}
        assert json.loads(props["model_card"]) == card, name
    state = ort.InferenceSession(str(DEFAULT / "decoder_init.onnx")).run(None, feeds)[0]
    assert state.shape == (cfg.layers, 2, cfg.state_width) and np.isfinite(state).all()
