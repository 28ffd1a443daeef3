"""The batch step (`decoder_step_batch.onnx`, docs/model-contract.md "The batch step"): what an
int8 export writes beside `decoder_step`, how close it stays to the float step, rows exact alone
or together, and which path of the engine decodes through it (offline) or not (live)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from emolive.training.card import BATCH_STEP, BATCH_STEP_FILE, FILES  # noqa: E402
from emolive.training.export import example_inputs, export_random_model  # noqa: E402
from emolive.training.model import ModelConfig  # noqa: E402
from emolive.training.quantize import ROW_INT8_MIN_ROWS, ROW_WEIGHT_ZERO, quantize_rows  # noqa: E402
from tests.midi_events import note_events  # noqa: E402
from tests.test_engine_live import wait_for_steps  # noqa: E402
from tests.training.test_quantize import run_graph  # noqa: E402

pytestmark = pytest.mark.training

SIZES = {"z_dim": 16, "hidden": 64, "layers": 2, "plan_steps": 32}
SHIPPED = Path(__file__).resolve().parents[2] / "python" / "emolive" / "models" / "default"


@pytest.fixture(scope="module")
def int8_and_float(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("batch_step")
    return (export_random_model(root / "int8", decoder_precision="int8", seed=2, **SIZES),
            export_random_model(root / "float", seed=2, **SIZES))


def _feeds(batch: int, seed: int) -> dict[str, np.ndarray]:
    cfg = ModelConfig(z_dim=16, hidden=64, layers=2, plan_steps=32)
    x = example_inputs(cfg, batch=batch, seed=seed)["decoder_step"]
    x["prev"] = (x["prev"] > 0.9).float()  # a played frame is 0/1 onsets and holds
    x["state"][..., :-1] = torch.tanh(x["state"][..., :-1])  # a GRU state lies in (-1, 1)
    return {name: t.numpy() for name, t in x.items()}


def test_an_int8_export_names_its_batch_step_in_the_card(int8_and_float) -> None:
    int8_dir, float_dir = int8_and_float
    card = json.loads((int8_dir / "model_card.json").read_text())
    assert card["files"][BATCH_STEP] == BATCH_STEP_FILE and (int8_dir / BATCH_STEP_FILE).is_file()
    assert card["io"][BATCH_STEP] == card["io"]["decoder_step"]
    assert card["precision"][BATCH_STEP].startswith("int8")
    assert json.loads(onnx.load(str(int8_dir / BATCH_STEP_FILE)).metadata_props[0].value) == card
    float_card = json.loads((float_dir / "model_card.json").read_text())
    assert BATCH_STEP not in float_card["files"] and not (float_dir / BATCH_STEP_FILE).exists()


def test_the_batch_step_multiplies_in_integers_with_standard_operators(int8_and_float) -> None:
    graph = onnx.load(str(int8_and_float[0] / BATCH_STEP_FILE)).graph
    assert {n.domain for n in graph.node} <= {"", "ai.onnx"}  # no ONNX Runtime contrib ops
    # two per GRU layer and the head; the plan's projection reads z and the emotion embedding,
    # 16 + 8 rows here, too few to quantise (the shipped model's 144 are)
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == 2 * 2 + 1
    weights = {t.name: t for t in graph.initializer}
    for node in graph.node:  # no float product with a weight matrix of ROW_INT8_MIN_ROWS rows
        if node.op_type == "MatMul" and node.input[1] in weights:
            assert weights[node.input[1]].dims[0] < ROW_INT8_MIN_ROWS, node.name


@pytest.mark.parametrize("model", ["fresh", "shipped"])
def test_batch_step_weights_are_stored_so_that_every_cpu_sums_them_exactly(int8_and_float,
                                                                          model: str) -> None:
    """x86 CPUs without VNNI add pairs of uint8 x int8 products in a saturating int16; uint8
    weights (zero point 128) are multiplied in wider integers (quantize.py, ROW_WEIGHT_ZERO)."""
    path = (int8_and_float[0] if model == "fresh" else SHIPPED) / BATCH_STEP_FILE
    graph = onnx.load(str(path)).graph
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    products = [n for n in graph.node if n.op_type == "MatMulInteger"]
    assert products
    for node in products:
        assert weights[node.input[1]].dtype == np.uint8 and weights[node.input[1]].min() >= 1
        assert weights[node.input[3]] == ROW_WEIGHT_ZERO == 128  # codes 1..255 for -127..127


@pytest.mark.parametrize("signs", ["same", "alternating"])
def test_the_batch_steps_integer_products_are_exact_on_this_cpu(signs: str) -> None:
    """Every input at its row's extreme (uint8 255 or 1) against every weight at its column's:
    the products that overflowed AVX2's int16 pair sums with int8 weights (a sum of 64 came out
    as 0.5 on an AMD EPYC)."""
    k, n = 64, 8
    x = np.ones((4, k), np.float32)
    w = np.ones((k, n), np.float32)
    if signs == "alternating":
        x[:, 1::2] = -1.0
        w[1::2, :] = -1.0
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])], "product",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, k])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, n])],
        [onnx.numpy_helper.from_array(w, "w")])
    model = quantize_rows(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x @ w, rtol=1e-5)
    np.testing.assert_allclose(session.run(None, {"x": -x})[0], -x @ w, rtol=1e-5)


def test_the_batch_step_stays_close_to_the_float_step(int8_and_float) -> None:
    int8_dir, float_dir = int8_and_float
    card = json.loads((int8_dir / "model_card.json").read_text())
    feeds = _feeds(batch=16, seed=0)
    got = run_graph(int8_dir / BATCH_STEP_FILE, feeds)
    want = run_graph(float_dir / FILES["decoder_step"], feeds)
    for name, g, w in zip(["onset_logits", "hold_logits", "velocity", "state_out"], got, want):
        diff = float(np.max(np.abs(g - w)))
        assert 0 < diff <= 0.05, name  # quantised (not the float file), and close to it
        assert diff <= 2 * card["precision"][f"{BATCH_STEP}_max_abs_diff"][name] + 1e-3, name
    assert np.array_equal(got[3][..., -1], (feeds["state"][..., -1] + 1) % 32)  # step slot


def test_batch_step_rows_are_the_same_alone_or_together(int8_and_float) -> None:
    """Inputs are quantised per row and integer products are exact: bit-identical rows."""
    path = int8_and_float[0] / BATCH_STEP_FILE
    batch = _feeds(batch=9, seed=3)
    batch["z"][4] *= 50  # a loud neighbour changes nothing for the others
    together = run_graph(path, batch)
    for row in (0, 4, 8):
        alone = run_graph(path, {k: (v[:, row:row + 1] if k == "state" else v[row:row + 1])
                            for k, v in batch.items()})
        for a, t in zip(alone, together):
            assert np.array_equal(a, t[:, row:row + 1] if t.ndim == 3 else t[row:row + 1])


def test_a_float_export_over_an_int8_one_leaves_no_batch_step(tmp_path: Path) -> None:
    out = export_random_model(tmp_path / "m", decoder_precision="int8", **SIZES)
    assert (out / BATCH_STEP_FILE).is_file()
    export_random_model(tmp_path / "m", **SIZES)
    assert not (out / BATCH_STEP_FILE).exists()
    assert BATCH_STEP not in json.loads((out / "model_card.json").read_text())["files"]


def test_generate_many_equals_generate_bit_for_bit_through_the_batch_step(int8_and_float) -> None:
    from emolive import Engine

    seeds = [0, 1, 2, 3, 4, 5, 6]
    with Engine(model=int8_and_float[0], seed=0) as engine:
        pieces = engine.generate_many(len(seeds), 8, "tense", seeds=seeds)
        singles = [engine.generate(8, "tense", seed=s) for s in seeds]
    assert [note_events(p) for p in pieces] == [note_events(s) for s in singles]
    assert sum(len(note_events(p)) for p in pieces) > 100


def _recorded_note_ons(model: Path, steps: int) -> list[bytes]:
    from emolive import Engine

    with Engine(model=model, bpm=400, seed=9, record=True) as engine:
        engine.play("calm")
        wait_for_steps(engine, steps)
        engine.stop()
        return [m for _t, m in engine.recorded() if m[0] & 0xF0 == 0x90]


def test_offline_decodes_through_the_batch_step_and_live_play_does_not(int8_and_float,
                                                                       tmp_path: Path) -> None:
    """A copy whose batch step comes from a model with other weights: its offline music
    changes, its live music does not."""
    original = int8_and_float[0]
    other = export_random_model(tmp_path / "other", decoder_precision="int8", seed=8, **SIZES)
    swapped = tmp_path / "swapped"
    shutil.copytree(original, swapped)
    shutil.copy(other / BATCH_STEP_FILE, swapped / BATCH_STEP_FILE)
    from emolive import Engine

    offline = {}
    for name, model in (("original", original), ("swapped", swapped)):
        with Engine(model=model, seed=9) as engine:
            offline[name] = note_events(engine.generate(2, "calm"))
    assert offline["original"] != offline["swapped"]
    live = _recorded_note_ons(original, 20)
    assert live and live[:20] == _recorded_note_ons(swapped, 20)[:20]


def test_the_reports_batch_step_table_carries_its_note() -> None:
    from emolive.training.report_text import _batch_step

    row = {"onset_f1_teacher_forced": 0.85, "onset_f1_free_running": 0.72, "onset_density": [1.0] * 4}
    lines = _batch_step({"decoder_step": row, "decoder_step_batch": row, "note": "Measured apart."})
    assert sum(line.startswith("| `decoder_step") for line in lines) == 2
    assert "Measured apart." in lines and not any("note" in line for line in lines)
    assert "Measured apart." not in _batch_step({"decoder_step": row})
