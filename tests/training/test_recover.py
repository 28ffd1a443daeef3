"""Recovering a checkpoint from exported ONNX files: the same weights, ready to fine-tune."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from emolive.training import recover, train
from emolive.training.card import build_card
from emolive.training.export import export_model
from emolive.training.model import CVAE, ModelConfig
from emolive.training.onnx_runner import OnnxCVAE

pytestmark = pytest.mark.training

SIZES = dict(z_dim=8, hidden=24, enc_hidden=16, frame_proj=16, emb_dim=4, final_states=True)


def _exported(tmp_path: Path, precision: str, plan_steps: int,
              layers: int = 1) -> tuple[CVAE, Path]:
    torch.manual_seed(3)
    cfg = ModelConfig(**SIZES, layers=layers, plan_steps=plan_steps, plan_dim=8)
    model = CVAE(cfg).eval()
    out = tmp_path / f"{precision}-{plan_steps}-{layers}"
    export_model(model, out, build_card(cfg, name="tiny"), precision)
    return model, out


@pytest.mark.parametrize("plan_steps,layers", [(0, 1), (16, 1), (16, 2)])
def test_float32_export_gives_back_every_weight_exactly(tmp_path: Path, plan_steps: int,
                                                        layers: int) -> None:
    model, out = _exported(tmp_path, "float32", plan_steps, layers)
    back, card = recover.recover_model(out)
    assert card["name"] == "tiny"
    assert back.cfg == model.cfg
    theirs = back.state_dict()
    for name, value in model.state_dict().items():
        assert torch.allclose(theirs[name], value, atol=1e-7), name


@pytest.mark.parametrize("plan_steps", [0, 16])
def test_int8_export_gives_back_the_weights_it_runs(tmp_path: Path, plan_steps: int) -> None:
    """The int8 step holds rounded weights: they come back within one quantisation step (ONNX
    Runtime's symmetric scale is a block's largest magnitude / 128, codes -128..127, so a
    positive largest weight is clipped by up to a step), and exported again they make a model
    that decodes exactly like the one read."""
    model, out = _exported(tmp_path, "int8", plan_steps)
    back, card = recover.recover_model(out)
    ours, theirs = model.state_dict(), back.state_dict()
    for name, value in ours.items():
        if name.startswith(("decoder.gru.weight", "decoder.head.weight", "decoder.plan.weight")):
            step = value.abs().max() / 128  # the coarsest scale any block can have
            assert (theirs[name] - value).abs().max() <= step + 1e-6, name
            assert not torch.equal(theirs[name], value), name  # rounded, not the originals
        else:
            assert torch.allclose(theirs[name], value, atol=1e-7), name
    again = export_model(back, tmp_path / "again", card, "int8")
    roll = (np.random.default_rng(0).random((3, 32, 264)) < 0.1).astype(np.float32)
    emotion = np.eye(4, dtype=np.float32)[:3]
    first, second = OnnxCVAE(out), OnnxCVAE(again)
    mu, _ = first.encode(roll, emotion)
    theirs = second.teacher_forced(roll, mu, emotion)
    for a, b in zip(first.teacher_forced(roll, mu, emotion), theirs):
        assert np.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("sizes", [dict(hidden=88), dict(hidden=8, emb_dim=24)],
                         ids=["GRU as wide as the head", "emotion table as wide as the GRU"])
def test_int8_matrices_of_equal_widths_are_told_apart(tmp_path: Path, sizes: dict) -> None:
    """Hidden 88 gives the GRU's products the head's 264 outputs; an emotion table of 3 x hidden
    has a GRU's: each matrix is still read back into its own weight."""
    torch.manual_seed(5)
    cfg = ModelConfig(**{**SIZES, **sizes})
    model = CVAE(cfg).eval()
    out = export_model(model, tmp_path / "m", build_card(cfg, name="wide"), "int8")
    theirs = recover.recover_model(out)[0].state_dict()
    for name, value in model.state_dict().items():
        if name.startswith(("decoder.gru.weight", "decoder.head.weight")):
            assert (theirs[name] - value).abs().max() <= value.abs().max() / 128 + 1e-6, name


def test_the_recovered_checkpoint_fine_tunes(labelled_folder, tmp_path: Path, capsys) -> None:
    _, out = _exported(tmp_path, "int8", 16)
    ckpt = tmp_path / "back" / "ckpt.pt"
    assert recover.main(["--model", str(out), "--out", str(ckpt)]) == 0
    assert "fine-tune it with --init-from" in capsys.readouterr().out
    folder, csv_path = labelled_folder
    sizes = ["--z-dim", "8", "--hidden", "24", "--enc-hidden", "16", "--frame-proj", "16",
             "--emb-dim", "4", "--plan-steps", "16", "--plan-dim", "8"]
    argv = ["--datasets", "--generic-folder", str(folder), "--generic-csv", str(csv_path),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
            "--max-steps", "2", "--batch-size", "4", "--eval-every", "2", "--val-segments", "4",
            "--threads", "1", "--min-onsets", "1", "--segment-bars", "1", "--init-from",
            str(ckpt), "--own-frames", "0.5", *sizes]
    assert train.main(argv) == 0
    assert f"weights from {ckpt}" in capsys.readouterr().err
    assert torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)["iter_num"] == 2


def test_a_recovered_checkpoint_exports_to_a_model_the_engine_loads(tmp_path: Path) -> None:
    from emolive.training import export

    _, out = _exported(tmp_path, "int8", 16)
    for name, ckpt in (("new", tmp_path / "back.pt"), ("older", tmp_path / "older.pt")):
        if name == "new":
            assert recover.main(["--model", str(out), "--out", str(ckpt)]) == 0
        else:  # written before recover wrote None: best_val_loss infinity
            older = torch.load(tmp_path / "back.pt", weights_only=False)
            torch.save({**older, "best_val_loss": float("inf")}, ckpt)
        again = tmp_path / f"again-{name}"
        assert export.main(["--checkpoint", str(ckpt), "--out", str(again),
                            "--decoder-precision", "int8"]) == 0
        card = json.loads((again / "model_card.json").read_text(),
                          parse_constant=lambda c: pytest.fail(f"{c} in the card"))
        assert card["training"]["best_val_loss"] is None
        engine = pytest.importorskip("emolive.engine")
        engine.Engine(model=again).generate(bars=1)  # the runtime reads the card


def test_the_recovered_model_plays_the_cards_velocity_calibration(tmp_path: Path) -> None:
    """The card's calibration is not a weight, but the model returned decodes with it, as the
    exported step does."""
    torch.manual_seed(3)
    cfg = ModelConfig(**SIZES)
    model = CVAE(cfg).eval()
    calibration = {"gain": [1.5, 0.5, 1.0, 2.0], "bias": [0.0, 0.1, -0.1, 0.0]}
    model.set_velocity_calibration(calibration["gain"], calibration["bias"])
    card = build_card(cfg, name="tiny")
    card["velocity_calibration"] = calibration
    out = export_model(model, tmp_path / "cal", card, "float32")
    back, _ = recover.recover_model(out)
    prev, z = torch.rand(4, 264), torch.randn(4, 8)
    emotion = torch.eye(4)
    with torch.no_grad():
        state = back.decoder_init(z, emotion)
        velocity = back.decoder_step(prev, z, emotion, state)[2]
        uncalibrated = CVAE(cfg).eval()
        uncalibrated.load_state_dict(back.state_dict())
        plain = uncalibrated.decoder_step(prev, z, emotion, state)[2]
    played = OnnxCVAE(out).step(prev.numpy(), z.numpy(), emotion.numpy(), state.numpy())[2]
    assert np.allclose(velocity.numpy(), played, atol=1e-5)
    assert not torch.allclose(velocity, plain)


def test_a_recovered_checkpoint_starts_a_run_but_is_not_resumed(labelled_folder, tmp_path: Path,
                                                                 capsys) -> None:
    _, out = _exported(tmp_path, "int8", 0)
    assert recover.main(["--model", str(out), "--out", str(tmp_path / "run" / "ckpt.pt")]) == 0
    folder, csv_path = labelled_folder
    argv = ["--datasets", "--generic-folder", str(folder), "--generic-csv", str(csv_path),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
            "--max-steps", "2", "--batch-size", "4", "--val-segments", "4", "--threads", "1",
            "--min-onsets", "1", "--segment-bars", "1", "--z-dim", "8", "--hidden", "24",
            "--enc-hidden", "16", "--frame-proj", "16", "--emb-dim", "4", "--resume", "true"]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert "no training state to resume" in err and "--init-from" in err


def _broken(tmp_path: Path, how: str) -> Path:
    _, out = _exported(tmp_path, "int8", 16)
    card = out / "model_card.json"
    if how == "no card":
        card.unlink()
    elif how == "card without sizes":
        card.write_text(json.dumps({k: v for k, v in json.loads(card.read_text()).items()
                                    if k != "model"}))
    elif how == "card with other sizes":
        data = json.loads(card.read_text())
        data["model"]["hidden"] = 32
        card.write_text(json.dumps(data))
    elif how.startswith("card with "):  # "card with hidden -1": a size that makes no model
        data = json.loads(card.read_text())
        name, value = how.removeprefix("card with ").split(" ")
        data["model"][name] = json.loads(value)
        card.write_text(json.dumps(data))
    elif how == "truncated encoder":
        data = (out / "encoder.onnx").read_bytes()
        (out / "encoder.onnx").write_bytes(data[: len(data) // 2])
    elif how == "missing step":
        (out / "decoder_step.onnx").unlink()
    elif how == "step in place of the encoder":
        shutil.copy(out / "decoder_step.onnx", out / "encoder.onnx")
    elif how == "another model's step":
        _, other = _exported(tmp_path / "other", "int8", 0)
        shutil.copy(other / "decoder_step.onnx", out / "decoder_step.onnx")
    return out


@pytest.mark.parametrize("how", ["no card", "card without sizes", "card with other sizes",
                                 "card with hidden -1", 'card with hidden "16"', "card with layers 0",
                                 "card with attention 1", "truncated encoder", "missing step",
                                 "another model's step", "step in place of the encoder"])
def test_a_model_that_cannot_be_read_back_exits_2_with_a_message(tmp_path: Path, capsys,
                                                                 how: str) -> None:
    out = _broken(tmp_path, how)
    assert recover.main(["--model", str(out), "--out", str(tmp_path / "ckpt.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emolive recover: error: ") and "Traceback" not in err
    assert not (tmp_path / "ckpt.pt").exists()


def test_an_existing_file_is_not_overwritten(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "ckpt.pt").write_bytes(b"a training run's checkpoint")
    assert recover.main(["--out", str(run / "ckpt.pt")]) == 2
    assert "exists" in capsys.readouterr().err
    assert (run / "ckpt.pt").read_bytes() == b"a training run's checkpoint"


def test_recover_refuses_an_out_under_a_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "afile").write_text("")
    assert recover.main(["--out", str(tmp_path / "afile" / "ckpt.pt")]) == 2
    assert "afile is a file" in capsys.readouterr().err


def test_a_bare_file_name_is_written_in_the_current_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    """--out ckpt.pt was refused: "the folder of --out is empty"."""
    monkeypatch.chdir(tmp_path)
    assert recover.main(["--out", "ckpt.pt"]) == 0, capsys.readouterr().err
    assert torch.load(tmp_path / "ckpt.pt", weights_only=False)["model_args"]["z_dim"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]  # no partial file left


@pytest.mark.parametrize("given,message", [
    ("", "--out '' names no file"),  # was "emolive recover: error:  exists"
    ("run/", "--out 'run/' names no file"),
    ("dangling", "exists"),  # a link, even to nothing, is not replaced
])
def test_recover_refuses_an_out_that_names_no_new_file(tmp_path: Path, monkeypatch, capsys, given: str,
                                                      message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert recover.main(["--out", given]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_the_default_model_is_the_one_the_package_ships() -> None:
    """Found through the package, not the checkout's layout (a wheel has no python/emolive/)."""
    from emolive.engine import DEFAULT_MODEL_DIR
    from emolive.training import evaluate

    assert recover.DEFAULT_MODEL == evaluate.DEFAULT_MODEL == Path(DEFAULT_MODEL_DIR).resolve()


def _old_batch_step(model_dir: Path) -> None:
    """Turn an export's batch step into the format written before 2026-12-06: int8 weights,
    no weight zero point (which overflowed on CPUs without VNNI)."""
    path = model_dir / "decoder_step_batch.onnx"
    proto = onnx.load(str(path))
    weights = {t.name: t for t in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "MatMulInteger":
            stored = onnx.numpy_helper.to_array(weights[node.input[1]]).astype(np.int16) - 128
            weights[node.input[1]].CopyFrom(onnx.numpy_helper.from_array(stored.astype(np.int8),
                                                                         node.input[1]))
            del node.input[3]
    onnx.save(proto, str(path))


def test_rebuild_batch_step_rewrites_an_old_one_in_place(tmp_path: Path, capsys) -> None:
    _, out = _exported(tmp_path, "int8", 16)
    _old_batch_step(out)
    step_before = (out / "decoder_step.onnx").read_bytes()
    assert recover.main(["--rebuild-batch-step", "--model", str(out)]) == 0
    assert "rewrote" in capsys.readouterr().out
    card = json.loads((out / "model_card.json").read_text())
    assert "uint8" in card["precision"]["decoder_step_batch"]
    graph = onnx.load(str(out / "decoder_step_batch.onnx")).graph
    weights = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            assert weights[node.input[1]].data_type == onnx.TensorProto.UINT8
    for name in card["files"].values():  # one card everywhere, the other graphs as they were
        assert json.loads(onnx.load(str(out / name)).metadata_props[0].value) == card
    assert onnx.load_from_string(step_before).graph == onnx.load(str(out / "decoder_step.onnx")).graph
    rng = np.random.default_rng(1)
    feeds = {"prev": (rng.random((4, 264)) < 0.1).astype(np.float32),
             "z": rng.standard_normal((4, SIZES["z_dim"])).astype(np.float32),
             "emotion": np.eye(4, dtype=np.float32), "state": np.zeros((1, 4, 25), np.float32)}
    live = ort.InferenceSession(str(out / "decoder_step.onnx")).run(None, feeds)
    batch = ort.InferenceSession(str(out / "decoder_step_batch.onnx")).run(None, feeds)
    assert max(float(np.abs(a - b).max()) for a, b in zip(live, batch)) < 0.1


@pytest.mark.parametrize("args,message", [
    ([], "name it with --model"),
    (["--out", "x.pt"], "give no --out"),
    (["--model", "FLOAT"], "no decoder_step_batch.onnx"),
    (["--model", "MISSING"], "no readable 'model' entry"),
])
def test_rebuild_batch_step_refuses_with_a_message(tmp_path: Path, capsys, args: list[str],
                                                    message: str) -> None:
    _, float_dir = _exported(tmp_path, "float32", 0)
    args = [str(float_dir) if a == "FLOAT" else str(tmp_path / "missing") if a == "MISSING" else a
            for a in args]
    try:
        status = recover.main(["--rebuild-batch-step", *args])
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
