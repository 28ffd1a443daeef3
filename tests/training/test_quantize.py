"""The int8 decoder step: the same computation as the float one, batch-independent, and
loadable by the engine (training/quantize.py, docs/model-contract.md 'Precision')."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from emolive.training.card import FILES  # noqa: E402
from emolive.training.export import example_inputs, export_random_model  # noqa: E402
from emolive.training.model import CVAE, ModelConfig  # noqa: E402
from emolive.training.quantize import DecoderStepMatMuls  # noqa: E402

pytestmark = pytest.mark.training


def run_graph(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """All outputs of the ONNX file at `path` for `feeds`, through onnxruntime's CPU provider."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize("layers,plan", [(1, ""), (2, ""), (2, "gru"), (1, "head")])
def test_matmul_form_of_the_step_equals_the_fused_gru(layers: int, plan: str) -> None:
    torch.manual_seed(4)
    cfg = ModelConfig(z_dim=16, hidden=32, layers=layers, enc_hidden=16, emb_dim=8, frame_proj=16,
                      plan_steps=8 if plan else 0, plan_dim=6, plan_head_only=plan == "head")
    model = CVAE(cfg).eval()
    model.set_velocity_calibration([1.5, 0.5, 1.0, 2.0], [-0.1, 0.2, 0.0, -0.3])
    inputs = example_inputs(cfg, batch=3, seed=5)["decoder_step"]
    with torch.no_grad():
        fused = model.decoder_step(*inputs.values())
        unfused = DecoderStepMatMuls(model)(*inputs.values())
    for a, b in zip(fused, unfused):
        assert a.shape == b.shape
        assert torch.max(torch.abs(a - b)) <= 1e-5


@pytest.fixture(scope="module")
def int8_and_float(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("precision")
    sizes = {"z_dim": 16, "hidden": 64, "layers": 2, "seed": 2}
    return (export_random_model(root / "int8", decoder_precision="int8", **sizes),
            export_random_model(root / "float", **sizes))


def _feeds(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    cfg = ModelConfig(z_dim=16, hidden=64, layers=2)
    x = example_inputs(cfg, batch=batch, seed=seed)["decoder_step"]
    x["prev"] = (x["prev"] > 0.9).float()  # a played frame is 0/1 onsets and holds
    return {name: t.numpy() for name, t in x.items()}


def test_int8_step_stays_close_to_float_and_says_so_in_the_card(int8_and_float) -> None:
    int8_dir, float_dir = int8_and_float
    card = json.loads((int8_dir / "model_card.json").read_text())
    assert card["precision"]["decoder_step"].startswith("int8")
    assert card["precision"]["encoder"] == card["precision"]["decoder_init"] == "float32"
    float_card = json.loads((float_dir / "model_card.json").read_text())
    assert set(float_card["precision"].values()) == {"float32"}
    # int8 weights are a quarter of float32 ones
    size = (int8_dir / FILES["decoder_step"]).stat().st_size
    assert size < 0.5 * (float_dir / FILES["decoder_step"]).stat().st_size
    feeds = _feeds(batch=16)
    got = run_graph(int8_dir / FILES["decoder_step"], feeds)
    want = run_graph(float_dir / FILES["decoder_step"], feeds)
    for name, g, w in zip(["onset_logits", "hold_logits", "velocity", "state_out"], got, want):
        diff = float(np.max(np.abs(g - w)))
        assert 0 < diff <= 0.05, name  # quantised (not the float file), and close to it
        assert diff <= 2 * card["precision"]["decoder_step_max_abs_diff"][name] + 1e-3, name


def test_int8_rows_depend_on_the_rest_of_the_batch_only_by_float_rounding(int8_and_float) -> None:
    """Inputs are quantised per row (block by block), so a loud neighbour does not change a
    stream's quantisation; ONNX Runtime sums the blocks of one row in another order than those of
    many (with blocks of 128), so the outputs agree to float rounding, not bit for bit. Offline
    generation, which needs bit equality, decodes through the batch step
    (tests/training/test_batch_step.py)."""
    path = int8_and_float[0] / FILES["decoder_step"]
    batch = _feeds(batch=8, seed=3)
    batch["z"][4] *= 50
    together = run_graph(path, batch)
    for row in (0, 5):
        alone = run_graph(path, {k: (v[:, row:row + 1] if k == "state" else v[row:row + 1])
                            for k, v in batch.items()})
        for a, t in zip(alone, together):
            b = t[:, row:row + 1] if t.ndim == 3 else t[row:row + 1]
            assert np.max(np.abs(a - b)) <= 1e-5


def test_engine_plays_an_int8_model(int8_and_float) -> None:
    from emolive import Engine

    with Engine(model=int8_and_float[0], seed=7) as engine:
        first = engine.generate(2, "happy", seed=3)
        again = engine.generate(2, "happy", seed=3)
    notes = [m for t in first.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert notes
    assert [str(m) for t in first.tracks for m in t] == [str(m) for t in again.tracks for m in t]


def test_an_int8_plan_model_counts_its_steps_exactly_and_plays(tmp_path: Path) -> None:
    """With a plan the step slot of the state passes through the int8 step exactly (a float
    step count modulo plan_steps, not a quantised value), a step multiplies only its slot's rows
    of the plan, and the engine plays such a model."""
    from emolive import Engine

    sizes = {"z_dim": 16, "hidden": 64, "layers": 2, "seed": 2, "plan_steps": 32}
    int8_dir = export_random_model(tmp_path / "int8", decoder_precision="int8", **sizes)
    float_dir = export_random_model(tmp_path / "float", **sizes)
    x = example_inputs(ModelConfig(z_dim=16, hidden=64, layers=2, plan_steps=32), batch=6,
                       seed=1)["decoder_step"]
    feeds = {name: t.numpy() for name, t in x.items()}
    got = run_graph(int8_dir / FILES["decoder_step"], feeds)
    want = run_graph(float_dir / FILES["decoder_step"], feeds)
    assert np.array_equal(got[3][..., -1], (feeds["state"][..., -1] + 1) % 32)
    step = onnx.load(str(int8_dir / FILES["decoder_step"]))
    widths = [a.i for n in step.graph.node if n.op_type == "MatMulNBits"
              for a in n.attribute if a.name == "N"]
    assert widths and 32 * 8 not in widths  # plan_dim 8: a step multiplies its slot's rows only
    assert any(i.data_type == onnx.TensorProto.INT8 and list(i.dims[:2]) == [32, 8]
               for i in step.graph.initializer)  # and holds them as int8
    for g, w in zip(got, want):
        assert float(np.max(np.abs(g - w))) <= 0.05
    with Engine(model=int8_dir, seed=7) as engine:
        song = engine.generate(4, "sad", seed=3)
    assert any(m.type == "note_on" and m.velocity > 0 for t in song.tracks for m in t)


def test_the_int8_step_graph_has_no_shape_arithmetic(tmp_path: Path) -> None:
    """Every node of the step costs about a microsecond at batch 1 whatever it computes, so the
    GRU's gates are cut with constant sizes (one Split each) and the plan slot is one Mod:
    no Shape/Floor nodes, which `chunk` and `remainder` export (72 nodes -> 47 after ONNX
    Runtime's optimisation for the shipped sizes; docs/benchmarks.md)."""
    sizes = {"z_dim": 16, "hidden": 64, "layers": 1, "seed": 2, "plan_steps": 32}
    int8_dir = export_random_model(tmp_path / "int8", decoder_precision="int8", **sizes)
    ops = [n.op_type for n in onnx.load(str(int8_dir / FILES["decoder_step"])).graph.node]
    assert "Shape" not in ops and "Floor" not in ops
    assert ops.count("Split") == 3  # the two gate splits and onset/hold/velocity

