"""Malformed model directories (tests/reliability/bad_models.py, 40 kinds): each is refused
with a ModelError whose message names what is wrong; each runs in its own subprocess so a crash
of the native loader is a failure, not a lost test session."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
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


HANGS_ON_NOTES = r"""
import json, sys, threading, time
from emolive import Engine
engine = Engine(model=sys.argv[1], record=True, seed=1, bpm=400)
engine.play("excited")
deadline = time.monotonic() + 20
while engine.stats()["notes_sent"] == 0 and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.5)  # the step after the first notes loops for ever
started = time.monotonic()
engine.stop()
stopped_s = time.monotonic() - started
stats = engine.stats()
last_on = {}
for _, message in engine.recorded():  # what a receiver would still hold: keys last struck
    if len(message) == 3 and message[0] & 0xE0 == 0x80:
        last_on[message[1]] = message[0] & 0xF0 == 0x90 and message[2] > 0
engine.close()
print(json.dumps({"notes": stats["notes_sent"], "stop_s": stopped_s, "left": sum(last_on.values()),
                  "error": stats["generator_error"]}))
"""


def _constant(name: str, value: object):
    import numpy as np
    from onnx import helper, numpy_helper

    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value), name + "_v"))


def _step_also_computing(model: Path, nodes: list, result: str) -> None:
    """decoder_step gains ``nodes``, which may read ``notes`` (the sum of ``prev``: 0 for the
    load's silent trial step), and whose scalar ``result`` is added, times 0, to onset_logits."""
    import numpy as np
    import onnx
    from onnx import helper

    step = onnx.load(model / "decoder_step.onnx")
    for node in step.graph.node:
        node.output[:] = ["onset_raw" if out == "onset_logits" else out for out in node.output]
    step.graph.node.extend([helper.make_node("ReduceSum", ["prev"], ["notes"], keepdims=0), *nodes,
                            _constant("zero", np.float32(0)), helper.make_node("Mul", [result, "zero"], ["nothing"]),
                            helper.make_node("Add", ["onset_raw", "nothing"], ["onset_logits"])])
    onnx.save(step, model / "decoder_step.onnx")


def _a_step_that_loops_while_notes_sound(model: Path, also_silent: bool = False) -> None:
    """A Loop of sum(prev) * 1e15 iterations: the first step after notes never returns; with
    ``also_silent``, (sum(prev) + 1) * 1e15: no step returns, the load's silent trial neither."""
    import numpy as np
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [_constant("one", np.float32(1)), helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["v_in", "one"], ["v_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [])])
    _step_also_computing(model, [
        _constant("many", np.float32(1e15)), _constant("floor", np.float32(1.0 if also_silent else 0.0)),
        helper.make_node("Add", ["notes", "floor"], ["notes_or_one"]),
        helper.make_node("Mul", ["notes_or_one", "many"], ["trips_f"]),
        helper.make_node("Cast", ["trips_f"], ["trips"], to=TensorProto.INT64),
        _constant("go_on", np.bool_(True)), _constant("v0", np.float32(0)),
        helper.make_node("Loop", ["trips", "go_on", "v0"], ["counted"], body=body)], "counted")


def _a_step_that_asks_for_terabytes_once_notes_sound(model: Path) -> None:
    """ConstantOfShape [sum(prev) * 1e6 + 1, 1e6] floats: 4 MB silent, terabytes after notes."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    _step_also_computing(model, [
        _constant("million", np.float32(1e6)), helper.make_node("Mul", ["notes", "million"], ["rows_m"]),
        _constant("one_f", np.float32(1)), helper.make_node("Add", ["rows_m", "one_f"], ["rows_f"]),
        helper.make_node("Cast", ["rows_f"], ["rows"], to=TensorProto.INT64),
        _constant("axis", np.array([0], np.int64)), helper.make_node("Unsqueeze", ["rows", "axis"], ["rows_1"]),
        _constant("width", np.array([1_000_000], np.int64)),
        helper.make_node("Concat", ["rows_1", "width"], ["shape"], axis=0),
        helper.make_node("ConstantOfShape", ["shape"], ["block"],
                         value=numpy_helper.from_array(np.array([1], np.float32))),
        helper.make_node("ReduceSum", ["block"], ["total"], keepdims=0)], "total")


def test_a_step_that_never_returns_does_not_hang_stop(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A graph from elsewhere that loops for ever once notes sound: stop() (Ctrl-C, SIGTERM,
    close()) waited for the step for ever; ONNX Runtime is now told to end it after 0.5 s, the
    notes are ended, and a stop's cancelled step is no model error."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    card = json.loads((model / "model_card.json").read_text())
    assert "decoder_step_batch" not in card["files"]  # only the live step is changed
    _a_step_that_loops_while_notes_sound(model)
    run = subprocess.run([sys.executable, "-c", HANGS_ON_NOTES, str(model)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["notes"] > 0 and result["left"] == 0, result  # every recorded note-on ended
    assert 0.4 < result["stop_s"] < 3.0, result
    assert not result["error"], result


@pytest.mark.skipif(sys.platform.startswith("win"), reason="sends SIGINT")
@pytest.mark.parametrize("count", ["1", "3"])
def test_ctrl_c_ends_a_generation_whose_step_never_returns(tiny_model_dir: Path, tmp_path: Path,
                                                          count: str) -> None:
    """`emolive generate` of a few bars (64 steps, which ran on the calling thread, out of
    signals' reach) with a step that never returns: Ctrl-C did nothing, only SIGKILL ended it.
    The main thread now always waits for the decoding on another thread, looking at signals,
    and the cancellation ends the step in progress through ONNX Runtime."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    _a_step_that_loops_while_notes_sound(model)
    process = subprocess.Popen([sys.executable, "-m", "emolive", "generate", "--model", str(model),
                                "--bars", "4", "--count", count, "-o", str(tmp_path / "x.mid")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(4.0)  # loaded (0.3-1.5 s here) and stuck in the step after the first notes
    assert process.poll() is None, process.communicate()
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130, (out, err)
    assert time.monotonic() - sent < 3.0
    assert "Traceback" not in err and list(tmp_path.glob("x*.mid")) == []


GENERATES_ON_A_THREAD = r"""
import json, sys, threading, time
import emolive
engine = emolive.Engine(model=sys.argv[1], seed=1)
outcome = {}
def generate():
    started = time.monotonic()
    try:
        engine.generate_many(2, 100)
    except emolive.EngineError as e:
        outcome.update(error=str(e), after_close_s=time.monotonic() - closed_at)
worker = threading.Thread(target=generate, daemon=True)
worker.start()
time.sleep(1.0)  # stuck in the step after the first notes
closed_at = time.monotonic()
engine.close()
worker.join(10)
print(json.dumps(outcome))
"""


def test_closing_the_engine_ends_a_generation_whose_step_never_returns(tiny_model_dir: Path,
                                                                      tmp_path: Path) -> None:
    """On a thread other than the main one (an asyncio executor's, say) a long generation ends
    when its engine is closed; a step that never returned held that up for ever."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    _a_step_that_loops_while_notes_sound(model)
    run = subprocess.run([sys.executable, "-c", GENERATES_ON_A_THREAD, str(model)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    outcome = json.loads(run.stdout)
    assert outcome.get("error") == "the engine was closed while it generated", outcome
    assert outcome["after_close_s"] < 2.0, outcome


def test_a_model_whose_trial_step_never_returns_is_refused_at_load(tiny_model_dir: Path,
                                                                   tmp_path: Path) -> None:
    """The load's silent trial step waited for ever (Ctrl-C too); it is given 5 s."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    _a_step_that_loops_while_notes_sound(model, also_silent=True)
    started = time.monotonic()
    result = probe(model)
    assert "ModelError" in result["bases"], result
    assert "did not finish within 5 s" in result["message"] and "loops for ever" in result["message"], result
    assert time.monotonic() - started < 30


def test_a_step_asking_for_more_memory_than_the_machine_has_is_named_so(tiny_model_dir: Path,
                                                                        tmp_path: Path) -> None:
    """The message said "out of memory" (and, under `ulimit -v`, to allow more), and ONNX
    Runtime printed its own coloured line beside it; it now says what the model asked for."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    _a_step_that_asks_for_terabytes_once_notes_sound(model)
    run = subprocess.run([sys.executable, "-m", "emolive", "generate", "--model", str(model), "--bars", "4",
                          "-o", str(tmp_path / "x.mid")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "a model step asked for" in run.stderr and "GiB at once, more than this machine's" in run.stderr, run.stderr
    assert "onnxruntime" not in run.stderr.split("emolive: error:")[0], run.stderr  # no line of ORT's own
    assert "Traceback" not in run.stderr and not (tmp_path / "x.mid").exists()
