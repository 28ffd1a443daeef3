"""Loading models: C++ ONNX Runtime against Python onnxruntime, and bad model directories.

Bad directories must raise ModelError, never crash the interpreter: the worst cases (garbage
and truncated ONNX files, a broken ONNX Runtime path) run in a subprocess, so a crash would
show as a failed test rather than take pytest down.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emolive import Engine, ModelError, files
from emolive import engine as engine_module
from emolive._core import Model
from emolive.engine import load_model

ort = pytest.importorskip("onnxruntime")


@pytest.fixture()
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the tiny model, to break."""
    out = tmp_path / "model"
    shutil.copytree(tiny_model_dir, out)
    return out


def python_session(path: Path) -> "ort.InferenceSession":
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def plan_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random int8 model whose decoder has a per-step plan (its state carries a step slot)."""
    pytest.importorskip("torch")
    from emolive.training.export import export_random_model

    return export_random_model(tmp_path_factory.mktemp("plan"), z_dim=16, hidden=32, layers=2,
                               seed=4, decoder_precision="int8", plan_steps=32)


@pytest.mark.parametrize("which", ["tiny", "shipped int8", "plan int8"])
@pytest.mark.parametrize("batch", [1, 3])
def test_cpp_and_python_onnxruntime_agree(tiny_model_dir: Path, plan_model_dir: Path, batch: int,
                                          which: str) -> None:
    # the shipped model's decoder_step has int8 weights (docs/model-contract.md, Precision)
    model_dir = {"tiny": tiny_model_dir, "shipped int8": engine_module.DEFAULT_MODEL_DIR,
                 "plan int8": plan_model_dir}[which]
    model = load_model(model_dir)
    rng = np.random.default_rng(batch)
    z = rng.standard_normal((batch, model.z_dim)).astype(np.float32)
    emotion = rng.dirichlet(np.ones(4), size=batch).astype(np.float32)
    prev = (rng.random((batch, 264)) < 0.1).astype(np.float32)
    roll = (rng.random((batch, 32, 264)) < 0.1).astype(np.float32)

    state = model.decode_init(z, emotion)
    (py_state,) = python_session(model_dir / "decoder_init.onnx").run(
        None, {"z": z, "emotion": emotion})
    assert state.shape == (model.layers, batch, model.hidden)
    assert np.max(np.abs(state - py_state)) <= 1e-5

    cpp_out = model.decode_step(prev, z, emotion, state)
    session = python_session(model_dir / "decoder_step.onnx")
    names = [o.name for o in session.get_outputs()]
    py_out = dict(zip(names, session.run(None, {"prev": prev, "z": z, "emotion": emotion, "state": state})))
    for name, value in zip(["onset_logits", "hold_logits", "velocity", "state_out"], cpp_out):
        assert value.shape == py_out[name].shape, name
        assert np.max(np.abs(value - py_out[name])) <= 1e-5, name

    mu, logvar = model.encode(roll, emotion)
    session = python_session(model_dir / "encoder.onnx")
    names = [o.name for o in session.get_outputs()]
    py_enc = dict(zip(names, session.run(None, {"roll": roll, "emotion": emotion})))
    assert np.max(np.abs(mu - py_enc["mu"])) <= 1e-5
    assert np.max(np.abs(logvar - py_enc["logvar"])) <= 1e-5


def test_the_shipped_models_step_slot_wraps_at_its_plan_length() -> None:
    """The bundled model has a per-step plan: its state's last slot counts the step modulo
    plan_steps (0 after decode_init), so it never grows however long the engine goes without
    re-seeding a phrase."""
    card = json.loads((engine_module.DEFAULT_MODEL_DIR / "model_card.json").read_text())
    plan_steps = card["model"]["plan_steps"]
    assert plan_steps > 0
    model = load_model(engine_module.DEFAULT_MODEL_DIR)
    z = np.zeros((2, model.z_dim), np.float32)
    emotion = np.array([[1, 0, 0, 0], [0, 0, 0.5, 0.5]], np.float32)
    state = model.decode_init(z, emotion)
    slots = [state[0, :, -1].tolist()]
    for _ in range(plan_steps + 3):
        state = model.decode_step(np.zeros((2, 264), np.float32), z, emotion, state)[3]
        slots.append(state[0, :, -1].tolist())
    want = [float(t % plan_steps) for t in range(plan_steps + 4)]
    assert slots == [[w, w] for w in want]


def test_model_arrays_are_checked(tiny_model_dir: Path) -> None:
    model = load_model(tiny_model_dir)
    with pytest.raises(ValueError, match="z must have shape"):
        model.decode_init(np.zeros((1, 5), np.float32), np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="batch"):
        model.decode_init(np.zeros((2, 16), np.float32), np.zeros((1, 4), np.float32))
    timings = model.time_decode_steps(20, warmup=2)
    assert timings.shape == (20,) and (timings > 0).all()


def test_missing_onnx_file(model_copy: Path) -> None:
    (model_copy / "decoder_step.onnx").unlink()
    with pytest.raises(ModelError, match=r"missing decoder_step file .*decoder_step\.onnx"):
        Engine(model=model_copy)


@pytest.mark.parametrize("name", ["../decoder_step.onnx", "/etc/hostname", "sub/decoder_step.onnx",
                                  "..", "", "decoder_step.onnx\u0000junk"])
def test_a_card_may_name_only_files_in_its_folder(model_copy: Path, name: str) -> None:
    """'../x' was followed: a downloaded card made the engine open any file the user can read,
    and `emolive generate -o` could overwrite a model file reached that way; a NUL cut the name."""
    shutil.copy(model_copy / "decoder_step.onnx", model_copy.parent / "decoder_step.onnx")
    edit_card(model_copy, lambda card: card["files"].__setitem__("decoder_step", name))
    with pytest.raises(ModelError, match=r"'files.decoder_step' must be the name of a file in the model folder"):
        load_model(model_copy)


@pytest.mark.parametrize("make,problem", [
    (lambda p: p.chmod(0o000), "cannot be read"),  # was "missing decoder_step file"
    (lambda p: (p.unlink(), p.mkdir()), "is a folder"),
    (lambda p: (p.unlink(), os.mkfifo(p)), "is not a regular file (a pipe or a device)"),  # hung
])
def test_an_onnx_file_that_is_there_but_unreadable_is_named_so(model_copy: Path, make, problem: str) -> None:
    path = model_copy / "decoder_step.onnx"
    make(path)
    if problem == "cannot be read" and os.access(path, os.R_OK):
        pytest.skip("root reads a file whatever its mode")
    with pytest.raises(ModelError, match=re.escape(f"decoder_step file {path} {problem}")):
        load_model(model_copy)


def test_a_card_that_is_a_pipe_is_refused_not_waited_on(model_copy: Path) -> None:
    (model_copy / "model_card.json").unlink()
    os.mkfifo(model_copy / "model_card.json")
    with pytest.raises(ModelError, match=r"no readable model_card.json .*is not a regular file"):
        load_model(model_copy)


def test_a_model_loaded_by_a_relative_path_still_encodes_after_a_change_of_folder(
        model_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder loads again at the first encode(): after os.chdir a relative path named
    another folder's file ("missing encoder file model/encoder.onnx")."""
    monkeypatch.chdir(model_copy.parent)
    model = load_model("model")
    monkeypatch.chdir("/")
    sizes = json.loads(model.card_json)["sizes"]
    mu, _logvar = model.encode(np.zeros((1, 32, 264), np.float32), np.full((1, 4), 0.25, np.float32))
    assert mu.shape == (1, sizes["z"])


def test_missing_card(model_copy: Path) -> None:
    (model_copy / "model_card.json").unlink()
    with pytest.raises(ModelError, match="model_card.json"):
        Engine(model=model_copy)


def edit_card(model_dir: Path, edit) -> None:
    path = model_dir / "model_card.json"
    card = json.loads(path.read_text())
    edit(card)
    path.write_text(json.dumps(card))


def test_card_sizes_that_do_not_match_the_files(model_copy: Path) -> None:
    def double_hidden(card: dict) -> None:
        card["sizes"]["hidden"] = 64
        for role in ("decoder_init", "decoder_step"):
            for side in ("inputs", "outputs"):
                for name, shape in card["io"][role][side].items():
                    if name.startswith("state"):
                        card["io"][role][side][name] = [shape[0], -1, 64]

    edit_card(model_copy, double_hidden)
    with pytest.raises(ModelError) as err:
        Engine(model=model_copy)
    message = str(err.value)
    assert "decoder_init" in message and "'state'" in message
    assert "[1, -1, 64]" in message and "[1, -1, 32]" in message


def test_card_with_wrong_tensor_names(model_copy: Path) -> None:
    def rename(card: dict) -> None:
        inputs = card["io"]["decoder_step"]["inputs"]
        inputs["previous"] = inputs.pop("prev")

    edit_card(model_copy, rename)
    with pytest.raises(ModelError, match="io.decoder_step.inputs.*lacks tensor 'prev'"):
        Engine(model=model_copy)


def test_onnx_file_with_names_other_than_the_card(model_copy: Path) -> None:
    onnx = pytest.importorskip("onnx")
    path = model_copy / "decoder_step.onnx"
    graph_model = onnx.load(str(path))
    for value in graph_model.graph.input:
        if value.name == "prev":
            value.name = "previous"
    for node in graph_model.graph.node:
        node.input[:] = ["previous" if name == "prev" else name for name in node.input]
    onnx.save(graph_model, str(path))
    with pytest.raises(ModelError) as err:
        Engine(model=model_copy)
    message = str(err.value)
    assert "decoder_step.onnx" in message and "previous" in message and "prev" in message


def test_a_card_with_a_byte_order_mark_loads(model_copy: Path) -> None:
    """The engine read it; Python's json, reading the card again, refused the BOM with a
    JSONDecodeError (not even a ModelError)."""
    card = model_copy / "model_card.json"
    card.write_bytes(b"\xef\xbb\xbf" + card.read_bytes())
    engine = Engine(model=model_copy)
    assert engine.model_card["format"] == "emolive-cvae"
    engine.close()


def test_card_that_is_not_json(model_copy: Path) -> None:
    (model_copy / "model_card.json").write_text("{ this is not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        Engine(model=model_copy)


def test_bundled_default_model_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(engine_module, "DEFAULT_MODEL_DIR", tmp_path / "default")
    with pytest.raises(ModelError, match="bundled default model is missing"):
        Engine()


LOAD_SCRIPT = """
import sys
from emolive import Engine, ModelError
try:
    Engine(model=sys.argv[1])
except ModelError as e:
    print("ModelError:", e)
    sys.exit(0)
print("loaded without error")
sys.exit(1)
"""


def load_in_subprocess(model_dir: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(model_dir)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, f"status {proc.returncode}: {proc.stdout}{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_damaged_onnx_file_is_refused_not_crashed(model_copy: Path, damage: str) -> None:
    path = model_copy / "decoder_init.onnx"
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"")
    out = load_in_subprocess(model_copy)
    assert "ModelError:" in out and "decoder_init" in out


def test_bad_onnxruntime_library_path(tiny_model_dir: Path) -> None:
    out = load_in_subprocess(tiny_model_dir, {"EMOLIVE_ONNXRUNTIME_LIB": "/nonexistent/libonnxruntime.so"})
    assert "EMOLIVE_ONNXRUNTIME_LIB" in out and "/nonexistent/libonnxruntime.so" in out
    assert out.count("/nonexistent/libonnxruntime.so") == 1  # dlerror's own copy of it is left out
    assert "point it at libonnxruntime" in out  # what to do
    assert out.count("\n") == 1  # one line (each path tried was a line of its own)


def test_without_the_onnxruntime_package_the_error_says_to_install_it(tiny_model_dir: Path) -> None:
    """Without the package (simulated: its library not found) the loader's search path is all
    there is; the message says what it tried, in one line, and to install the package."""
    script = ("import sys, emolive.engine as e; e.onnxruntime_library = lambda: ''\n"
              "exec(sys.argv[2])")
    proc = subprocess.run([sys.executable, "-c", script, str(tiny_model_dir), LOAD_SCRIPT],
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "EMOLIVE_ONNXRUNTIME_LIB"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("\n") == 1, proc.stdout
    assert "(tried the loader's search path: 'libonnxruntime.so" in proc.stdout
    assert "onnxruntime Python package" not in proc.stdout.split(";")[0]  # it was not looked in
    assert proc.stdout.rstrip().endswith("install the onnxruntime Python package (pip install onnxruntime), "
                                         "whose library emolive loads")


def test_model_loads_from_core_directly(tiny_model_dir: Path) -> None:
    model = Model(str(tiny_model_dir), engine_module.onnxruntime_library())
    assert Model(tiny_model_dir, engine_module.onnxruntime_library()).directory == str(tiny_model_dir)  # a Path too
    assert json.loads(model.card_json)["sizes"]["hidden"] == 32
    assert model.segment_steps == 32


EMPTY_CALLS = """
import sys
import numpy as np
from emolive.engine import load_model
m = load_model(sys.argv[1])
z, e = np.zeros((0, m.z_dim), np.float32), np.zeros((0, 4), np.float32)
calls = {
    "encode batch 0": lambda: m.encode(np.zeros((0, 32, 264), np.float32), e),
    "encode steps 0": lambda: m.encode(np.zeros((1, 0, 264), np.float32), np.zeros((1, 4), np.float32)),
    "decode_init batch 0": lambda: m.decode_init(z, e),
}
for name, call in calls.items():
    try:
        call()
        print(name, "returned")
    except ValueError as err:
        print(name, "ValueError", err)
"""


def test_empty_batches_are_refused_not_an_abort(tiny_model_dir: Path) -> None:
    """ONNX Runtime's GRU aborted the interpreter (status 134) on a batch of 0 (in a subprocess:
    an abort fails this test instead of ending pytest)."""
    proc = subprocess.run([sys.executable, "-c", EMPTY_CALLS, str(tiny_model_dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and all(" ValueError " in line for line in lines), lines
    assert "batch must be at least 1, got 0" in proc.stdout


def test_a_model_that_loads_but_cannot_run_is_a_model_error(model_copy: Path) -> None:
    """A decoder_step whose graph fails when run (here: a Gather out of bounds for the silent
    step the loader tries) is a broken model: ModelError, not the runtime's EngineError."""
    import onnx
    from onnx import helper, numpy_helper

    path = model_copy / "decoder_step.onnx"
    graph_model = onnx.load(str(path))
    for node in graph_model.graph.node:
        node.output[:] = ["onset_raw" if o == "onset_logits" else o for o in node.output]
    graph_model.graph.initializer.extend([
        numpy_helper.from_array(np.zeros(2, np.float32), "table"),
        numpy_helper.from_array(np.array([2], np.int64), "index")])
    graph_model.graph.node.extend([
        helper.make_node("Gather", ["table", "index"], ["picked"], axis=0),  # index 2 of 2: fails
        helper.make_node("Add", ["onset_raw", "picked"], ["onset_logits"])])
    onnx.save(graph_model, str(path))
    with pytest.raises(ModelError, match="decoder_step cannot run a silent step"):
        load_model(model_copy)


def test_a_step_that_computes_one_row_whatever_the_batch_is_refused_at_load(model_copy: Path) -> None:
    """velocity from row 0 alone ([1, 88] at any batch; shape inference cannot tell): the model
    loaded and played, then `generate --count 3` failed in ONNX Runtime (helper-65). The load's
    trial step runs a batch of 2."""
    import onnx
    from onnx import helper, numpy_helper

    path = model_copy / "decoder_step.onnx"
    graph_model = onnx.load(str(path))
    for node in graph_model.graph.node:
        node.output[:] = ["velocity_raw" if o == "velocity" else o for o in node.output]
    graph_model.graph.initializer.extend([
        numpy_helper.from_array(np.array([0], np.int64), "row_start"),
        numpy_helper.from_array(np.array([1], np.int64), "row_end"),
        numpy_helper.from_array(np.array([0], np.int64), "row_axis"),
        numpy_helper.from_array(np.zeros(1, np.float32), "nothing")])
    graph_model.graph.node.extend([
        helper.make_node("Slice", ["velocity_raw", "row_start", "row_end", "row_axis"], ["row0"]),
        helper.make_node("Add", ["row0", "nothing"], ["velocity"])])
    onnx.save(graph_model, str(path))
    with pytest.raises(ModelError, match=r"decoder_step output 'velocity': expected a float32 tensor of shape "
                                         r"\[2, 88\] \(from the model card\), the run gave \[1, 88\]"):
        load_model(model_copy)


def test_an_input_declared_without_a_shape_is_said_to_have_none(model_copy: Path) -> None:
    """It said "found []", which reads as a scalar (helper-65)."""
    import onnx

    path = model_copy / "decoder_step.onnx"
    graph_model = onnx.load(str(path))
    prev = next(i for i in graph_model.graph.input if i.name == "prev")
    prev.type.tensor_type.ClearField("shape")
    onnx.save(graph_model, str(path))
    with pytest.raises(ModelError, match=r"tensor 'prev': expected shape \[-1, 264\] \(from the model card\), "
                                         r"found \[\] \(a scalar, or no shape declared\)"):
        load_model(model_copy)


def _nan_onsets_when_sad(model_dir: Path) -> None:
    """decoder_step's onset logits NaN where the emotion's sad weight is over 0.5 (and finite at
    the load check's even blend), in every copy of the step the card names."""
    import onnx
    from onnx import helper, numpy_helper

    card = json.loads((model_dir / "model_card.json").read_text())
    for role in ("decoder_step", "decoder_step_batch"):
        if role not in card["files"]:
            continue
        path = model_dir / card["files"][role]
        graph_model = onnx.load(str(path))
        for node in graph_model.graph.node:
            node.output[:] = ["onset_raw" if o == "onset_logits" else o for o in node.output]
        graph_model.graph.initializer.extend([
            numpy_helper.from_array(np.array([2], np.int64), "sad_index"),
            numpy_helper.from_array(np.array(0.5, np.float32), "half"),
            numpy_helper.from_array(np.array(np.nan, np.float32), "nan")])
        graph_model.graph.node.extend([
            helper.make_node("Gather", ["emotion", "sad_index"], ["sad"], axis=1),  # [B, 1]
            helper.make_node("Greater", ["sad", "half"], ["is_sad"]),
            helper.make_node("Where", ["is_sad", "nan", "onset_raw"], ["onset_logits"])])
        onnx.save(graph_model, str(path))


def test_nan_onsets_start_no_note_and_are_counted_and_said(model_copy: Path, tmp_path: Path) -> None:
    """A step of NaN onsets started A0 on the first step, then silence, and nothing said it
    (helper-65): live and offline, such steps are counted, and `generate` warns."""
    _nan_onsets_when_sad(model_copy)
    engine = Engine(model=model_copy, record=True, seed=1)
    try:
        assert files.note_spans(engine.generate(1, "happy")) and engine.stats()["nonfinite_steps"] == 0
        assert files.note_spans(engine.generate(1, "sad")) == []
        assert engine.stats()["nonfinite_steps"] == 16
    finally:
        engine.close()
    result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model", str(model_copy), "-e", "sad",
                             "--bars", "2", "-o", str(tmp_path / "sad.mid")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "warning: the model gave NaN onset probabilities in 32 step(s)" in result.stderr
