"""Export: the three ONNX files follow docs/model-contract.md and match PyTorch eager."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from emolive.training.card import FILES, io_shapes  # noqa: E402
from emolive.training.export import export_model, example_inputs, graphs  # noqa: E402
from emolive.training.model import CVAE, ModelConfig  # noqa: E402

pytestmark = pytest.mark.training

TOLERANCE = 1e-4


def _session(path: Path) -> "ort.InferenceSession":
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("batch,steps,final_states,plan", [
    (1, 32, False, ""), (3, 17, False, ""), (5, 64, False, ""), (3, 17, True, ""),
    (2, 40, True, ""), (3, 17, True, "gru"), (2, 40, True, "head")])
def test_onnx_matches_eager_for_every_file(tmp_path: Path, batch: int, steps: int,
                                           final_states: bool, plan: str) -> None:
    torch.manual_seed(3)
    cfg = ModelConfig(z_dim=16, hidden=32, layers=2, enc_hidden=24, emb_dim=8, frame_proj=40,
                      final_states=final_states, plan_steps=8 if plan else 0, plan_dim=6,
                      plan_head_only=plan == "head")
    model = CVAE(cfg).eval()
    model.set_velocity_calibration([1.5, 0.5, 1.0, 2.0], [-0.1, 0.2, 0.0, -0.3])
    from emolive.training.card import build_card

    export_model(model, tmp_path, build_card(cfg, name="parity"))
    inputs = example_inputs(cfg, batch=batch, steps=steps, seed=11)
    with torch.no_grad():
        for key, graph in graphs(model).items():
            expected = graph(*inputs[key].values())
            expected = expected if isinstance(expected, tuple) else (expected,)
            feeds = {name: t.numpy() for name, t in inputs[key].items()}
            got = _session(tmp_path / FILES[key]).run(None, feeds)
            assert len(got) == len(expected)
            for e, g in zip(expected, got):
                assert g.shape == tuple(e.shape)
                assert np.max(np.abs(e.numpy() - g)) <= TOLERANCE, key


def test_tiny_model_follows_the_contract(tiny_model_dir: Path) -> None:
    card = json.loads((tiny_model_dir / "model_card.json").read_text())
    assert card["format"] == "emolive-cvae" and card["format_version"] == 1
    assert card["sizes"] == {"z": 16, "layers": 1, "hidden": 32, "segment_steps": 32}
    assert card["emotions"]["order"] == ["Q1", "Q2", "Q3", "Q4"]
    assert card["io"] == io_shapes(ModelConfig(z_dim=16, hidden=32, layers=1))
    for key, file_name in FILES.items():
        path = tiny_model_dir / file_name
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto, full_check=True)
        assert proto.opset_import[0].version >= 17
        props = {p.key: p.value for p in proto.metadata_props}
        assert json.loads(props["model_card"]) == card
        session = _session(path)
        declared = card["io"][key]
        for kind, values in (("inputs", session.get_inputs()), ("outputs", session.get_outputs())):
            assert [v.name for v in values] == list(declared[kind])
            for value in values:
                assert value.type == "tensor(float)"
                shape = [d if isinstance(d, int) else -1 for d in value.shape]
                assert shape == declared[kind][value.name], (key, value.name)


@pytest.mark.parametrize("plan", ["", "gru", "head"])
def test_streaming_steps_equal_teacher_forced_decoding(plan: str) -> None:
    """Calling decoder_step T times with the played frames reproduces a whole-segment pass; with
    a plan, T runs past plan_steps, so the step slot of the state wraps."""
    torch.manual_seed(0)
    cfg = ModelConfig(z_dim=16, hidden=32, layers=2 if plan else 1, enc_hidden=32, emb_dim=8,
                      frame_proj=32, plan_steps=6 if plan else 0, plan_dim=5,
                      plan_head_only=plan == "head")
    model = CVAE(cfg).eval()
    steps = 14
    roll = (torch.rand(2, steps, 264) > 0.9).float()
    z = torch.randn(2, 16)
    emotion = torch.tensor([[1.0, 0, 0, 0], [0.5, 0, 0, 0.5]])
    with torch.no_grad():
        onset_tf, hold_tf, vel_tf = model.forward_teacher(roll, z, emotion)
        state = model.decoder_init(z, emotion)
        assert state.shape == (cfg.layers, 2, cfg.state_width)
        prev = torch.zeros(2, 264)
        for t in range(steps):
            onset, hold, vel, state = model.decoder_step(prev, z, emotion, state)
            assert torch.allclose(onset, onset_tf[:, t], atol=1e-5)
            assert torch.allclose(hold, hold_tf[:, t], atol=1e-5)
            assert torch.allclose(vel, vel_tf[:, t], atol=1e-5)
            prev = roll[:, t]
        if plan:
            want_slot = float(steps % cfg.plan_steps)  # the slot counts modulo plan_steps
            assert torch.equal(state[..., -1], torch.full((cfg.layers, 2), want_slot))


def test_the_plan_gives_each_step_of_the_phrase_its_own_vector() -> None:
    """Step t of a phrase gets plan row t % plan_steps, whatever the first step of the call."""
    cfg = ModelConfig(z_dim=4, hidden=8, enc_hidden=8, emb_dim=3, frame_proj=8, plan_steps=4,
                      plan_dim=2)
    decoder = CVAE(cfg).decoder
    plan = torch.arange(16.0).reshape(2, 8)  # batch 2: rows [0,1] [2,3] [4,5] [6,7], then +8
    got = decoder.plan_at(plan, torch.tensor([0.0, 3.0]), steps=3)
    assert got.tolist() == [[[0, 1], [2, 3], [4, 5]], [[14, 15], [8, 9], [10, 11]]]


def test_one_steps_plan_is_its_slots_rows_of_the_whole_projection() -> None:
    """plan_of_step (what the exported steps run) = plan_at of the whole projection, past the
    end of the phrase too."""
    cfg = ModelConfig(z_dim=4, hidden=8, enc_hidden=8, emb_dim=3, frame_proj=8, plan_steps=4,
                      plan_dim=2)
    decoder = CVAE(cfg).decoder
    cond = torch.randn(5, 7)
    steps = torch.tensor([0.0, 1.0, 3.0, 4.0, 9.0])  # slots 0, 1, 3, 0, 1
    want = decoder.plan_at(decoder.plan(cond), steps, 1)[:, 0]
    assert torch.allclose(decoder.plan_of_step(cond, steps), want, atol=1e-6)


def test_a_plan_widens_the_state_by_one_slot_in_card_and_files(tmp_path: Path) -> None:
    from emolive.training.export import export_random_model

    out = export_random_model(tmp_path / "plan", z_dim=8, hidden=24, layers=2, plan_steps=32)
    card = json.loads((out / "model_card.json").read_text())
    assert card["sizes"]["hidden"] == 25 and card["model"]["plan_steps"] == 32
    session = _session(out / FILES["decoder_init"])
    assert session.get_outputs()[0].shape[0] == 2 and session.get_outputs()[0].shape[2] == 25


def test_blend_embedding_is_weighted_sum() -> None:
    model = CVAE(ModelConfig(z_dim=4, hidden=8, enc_hidden=8, emb_dim=3, frame_proj=8))
    table = model.embed.table.detach()
    blend = torch.tensor([[0.6, 0.0, 0.0, 0.4]])
    assert torch.allclose(model.embed(blend)[0], 0.6 * table[0] + 0.4 * table[3])


def test_velocity_calibration_maps_step_velocity_per_emotion() -> None:
    torch.manual_seed(1)
    model = CVAE(ModelConfig(z_dim=4, hidden=8, enc_hidden=8, emb_dim=3, frame_proj=8)).eval()
    inputs = example_inputs(model.cfg, batch=4)["decoder_step"]
    emotion = torch.eye(4)
    with torch.no_grad():
        raw = model.decoder_step(inputs["prev"], inputs["z"][:4], emotion, inputs["state"])[2]
        model.set_velocity_calibration([2.0, 0.5, 1.0, 1.0], [0.0, 0.1, -2.0, 5.0])
        cal = model.decoder_step(inputs["prev"], inputs["z"][:4], emotion, inputs["state"])[2]
    assert torch.allclose(cal[0], (2 * raw[0]).clamp(0, 1))
    assert torch.allclose(cal[1], 0.5 * raw[1] + 0.1)
    assert torch.all(cal[2] == 0) and torch.all(cal[3] == 1)


def _tiny_export(out: Path, seed: int = 0) -> Path:
    from emolive.training.card import build_card

    torch.manual_seed(seed)
    cfg = ModelConfig(z_dim=8, hidden=16, layers=1, enc_hidden=8, emb_dim=4, frame_proj=8)
    return export_model(CVAE(cfg), out, build_card(cfg, name=f"tiny-{seed}"))


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_export_into_a_folder_of_links_replaces_the_links_not_what_they_lead_to(tmp_path: Path) -> None:
    bundled = _tiny_export(tmp_path / "bundled", seed=0)
    before = _contents(bundled)
    links = tmp_path / "links"
    links.mkdir()
    for name in before:
        (links / name).symlink_to(bundled / name)
    _tiny_export(links, seed=1)
    assert _contents(bundled) == before  # the files the links led to are as they were
    assert not any(p.is_symlink() for p in links.iterdir())
    assert json.loads((links / "model_card.json").read_text())["name"] == "tiny-1"


def test_a_failed_export_leaves_the_model_folder_as_it_was(tmp_path: Path, monkeypatch) -> None:
    model_dir = _tiny_export(tmp_path / "model", seed=0)
    (model_dir / "NOTES.txt").write_text("mine")
    before = _contents(model_dir)

    def checker_fails(*args, **kwargs) -> None:
        raise onnx.checker.ValidationError("refused")

    monkeypatch.setattr(onnx.checker, "check_model", checker_fails)
    with pytest.raises(onnx.checker.ValidationError):
        _tiny_export(model_dir, seed=1)
    assert _contents(model_dir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left
    monkeypatch.undo()
    _tiny_export(model_dir, seed=1)
    assert (model_dir / "NOTES.txt").read_text() == "mine"  # other files in the folder stay


def test_update_card_replaces_links_instead_of_writing_through_them(tmp_path: Path) -> None:
    from emolive.training.export import update_card

    bundled = _tiny_export(tmp_path / "bundled")
    before = _contents(bundled)
    links = tmp_path / "links"
    links.mkdir()
    for name in before:
        (links / name).symlink_to(bundled / name)
    update_card(links, {"name": "renamed"})
    assert _contents(bundled) == before
    assert json.loads((links / "model_card.json").read_text())["name"] == "renamed"
    assert sorted(p.name for p in links.iterdir()) == sorted(before)  # no temporary folder left


def _immutable(path: Path, on: bool) -> bool:
    """chattr +i / -i (root on a file system that has the flag); whether it took."""
    import subprocess

    done = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.mark.parametrize("how", ["immutable file", "rename fails"])
def test_a_card_update_that_cannot_replace_every_file_leaves_the_folder_as_it_was(
        tmp_path: Path, monkeypatch, how: str) -> None:
    """The files were moved in one by one: one that could not be replaced left the folder half
    updated (ONNX cards that disagreed with model_card.json), and evaluate --update-card
    ended on a traceback after the whole evaluation."""
    from emolive.training import export, swap_in

    model_dir = _tiny_export(tmp_path / "model")
    before = _contents(model_dir)
    blocked = model_dir / "decoder_step.onnx"  # moved after decoder_init and encoder (sorted)
    if how == "immutable file":
        if not _immutable(blocked, True):
            pytest.skip("chattr +i needs root and a file system with the flag")
    else:
        real_rename = os.rename

        def rename(src, dst) -> None:
            if Path(src) == blocked:
                raise PermissionError(1, "Operation not permitted", str(src))
            real_rename(src, dst)

        monkeypatch.setattr(swap_in.os, "rename", rename)
    try:
        with pytest.raises(OSError):
            export.update_card(model_dir, {"name": "renamed"})
    finally:
        if how == "immutable file":
            _immutable(blocked, False)
    assert _contents(model_dir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left


def test_export_command_says_when_the_folder_cannot_be_written_and_leaves_it(tmp_path: Path, monkeypatch,
                                                                             capsys) -> None:
    from emolive.training import export, swap_in

    checkpoint = _tiny_checkpoint(tmp_path / "ckpt.pt")
    model_dir = _tiny_export(tmp_path / "model")
    before = _contents(model_dir)

    def rename(src, dst) -> None:
        raise PermissionError(1, "Operation not permitted", str(src))

    monkeypatch.setattr(swap_in.os, "rename", rename)
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(model_dir), "--replace", "true"]) == 1
    err = capsys.readouterr().err
    assert "could not write into" in err and "left as it was" in err and "Traceback" not in err
    assert _contents(model_dir) == before


def test_export_command_replaces_a_model_only_when_told(tmp_path: Path, capsys) -> None:
    from emolive.training import export

    cfg = ModelConfig(z_dim=8, hidden=16, layers=1, enc_hidden=8, emb_dim=4, frame_proj=8)
    checkpoint = tmp_path / "ckpt.pt"
    torch.save({"model": CVAE(cfg).state_dict(), "model_args": cfg.to_dict(), "config": {}},
               checkpoint)
    model_dir = _tiny_export(tmp_path / "model")
    before = _contents(model_dir)
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(model_dir)]) == 2
    assert "already holds a model" in capsys.readouterr().err
    assert _contents(model_dir) == before
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(model_dir),
                        "--replace", "true"]) == 0
    assert _contents(model_dir) != before
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(checkpoint)]) == 2
    assert "is a file" in capsys.readouterr().err


def _tiny_checkpoint(path: Path, iter_num: int = 10) -> Path:
    cfg = ModelConfig(z_dim=8, hidden=16, layers=1, enc_hidden=8, emb_dim=4, frame_proj=8)
    torch.save({"model": CVAE(cfg).state_dict(), "model_args": cfg.to_dict(), "config": {},
                "iter_num": iter_num}, path)
    return path


def test_export_takes_a_hand_made_checkpoints_odd_entries_as_missing(tmp_path: Path) -> None:
    """config None, or an iter_num or elapsed_s that is not a number, gave a traceback."""
    from emolive.training import export

    checkpoint = _tiny_checkpoint(tmp_path / "ckpt.pt")
    ckpt = torch.load(checkpoint, weights_only=False)
    ckpt.update(config=None, iter_num="ten", elapsed_s="long", best_val_loss=[1])
    torch.save(ckpt, checkpoint)
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "m")]) == 0
    training = json.loads((tmp_path / "m" / "model_card.json").read_text())["training"]
    assert training["config"] == {} and training["steps"] is None and training["minutes"] == 0.0
    assert training["best_val_loss"] is None


def test_export_reads_the_losses_of_a_metrics_log_cut_short(tmp_path: Path) -> None:
    """A kill while train.py appended leaves half a line; a NaN loss is written as null."""
    from emolive.training import export

    checkpoint = _tiny_checkpoint(tmp_path / "ckpt.pt", iter_num=10)
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 5, "val": {"recon": 3.0}}\n{"note": "not a record"}\n'
        '{"step": 10, "val": {"recon": 2.5, "kl": NaN}}\n{"step": 15, "elapsed_s": 0.')
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "m")]) == 0
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert card["training"]["validation_losses"] == {"recon": 2.5, "kl": None}


@pytest.mark.parametrize("flag,text,message", [
    ("--card-extra", "[1, 2]", "--card-extra {path} must hold a JSON object"),
    ("--card-extra", '{"x": NaN}', "--card-extra {path} holds NaN, which a model card cannot hold"),
    ("--card-extra", "{", "--card-extra {path} is not valid JSON"),
    # Entries that describe the files: the export exited 0 with a card the engine refused
    # (sizes, format_version) or one that misstated the weights (a calibration not applied).
    ("--card-extra", '{"sizes": {"z": 99}, "sampling": {"temperature": 0.8}}',
     "--card-extra {path} sets 'sizes', which the export writes from the model"),
    ("--card-extra", '{"format_version": 42, "velocity_calibration": {"gain": [2, 2, 2, 2]}}',
     "sets 'format_version', 'velocity_calibration', which"),
    ("--card-extra", '{"name": "other"}', "(a name: --name;"),
    ("--velocity-calibration", '{"gain": [1e999, 1, 1, 1], "bias": [0, 0, 0, 0]}',
     "--velocity-calibration {path} holds a number too large for a float"),
    ("--card-extra", None, "--card-extra {path}: No such file or directory"),
    ("--velocity-calibration", '{"gain": [1, 1], "bias": [0, 0]}', "(\"gain\" and \"bias\": 4 numbers each)"),
    ("--velocity-calibration", None, "--velocity-calibration {path}: No such file or directory"),
])
def test_export_names_the_file_that_is_wrong(tmp_path: Path, capsys, flag, text, message) -> None:
    from emolive.training import export

    checkpoint = _tiny_checkpoint(tmp_path / "ckpt.pt")
    given = tmp_path / "given.json"
    if text is not None:
        given.write_text(text)
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "m"),
                        flag, str(given)]) == 2
    err = capsys.readouterr().err
    assert message.format(path=given) in err and "ckpt.pt" not in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_export_refuses_a_checkpoint_whose_weights_are_not_finite(tmp_path: Path, capsys) -> None:
    from emolive.training import export

    checkpoint = _tiny_checkpoint(tmp_path / "ckpt.pt")
    ckpt = torch.load(checkpoint, weights_only=False)
    next(v for v in ckpt["model"].values() if v.is_floating_point()).fill_(float("nan"))
    torch.save(ckpt, checkpoint)
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "m")]) == 2
    assert "not finite numbers (its run diverged)" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_export_and_train_refuse_an_out_that_is_a_link_to_nothing(tmp_path: Path, capsys) -> None:
    """mkdir failed there with FileExistsError: a traceback after the whole export."""
    from emolive.training import export, train

    checkpoint = _tiny_checkpoint(tmp_path / "ckpt.pt")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "dangling")]) == 2
    assert "is a link to" in capsys.readouterr().err
    assert train.main(["--data", str(tmp_path / "no-data"), "--out", str(tmp_path / "dangling")]) == 2
    err = capsys.readouterr().err
    assert "is a link to" in err and "dataset folder" not in err  # before the data is read
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "dangling" / "m")]) == 2
    assert f"cannot be made: {tmp_path / 'dangling'} is a link to" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_export_refuses_an_out_under_a_file(tmp_path: Path, capsys) -> None:
    from emolive.training import export

    checkpoint = _tiny_checkpoint(tmp_path / "ckpt.pt")
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(checkpoint / "model")]) == 2
    assert "cannot be made" in capsys.readouterr().err


def test_provenance_names_every_stages_data_and_the_strictest_licence() -> None:
    """The shipped recipe's chain: POP909 pre-training, EMOPIA fine-tune."""
    from emolive.training.card import checkpoint_data, provenance

    pretrained = {"config": {"datasets": [], "unlabelled": ["pop909"]}}
    tuned = provenance({"datasets": ["emopia"]}, earlier=checkpoint_data(pretrained))
    assert [d["name"] for d in tuned["data"]] == ["EMOPIA 1.0", "POP909"]
    assert tuned["data"][1]["licence"] == "MIT" and "pre-training" in tuned["data"][1]["use"]
    assert tuned["licence"] == ("model weights derived from EMOPIA: CC BY-NC-SA 4.0 (non-commercial "
                                "use, attribution, share-alike); also from POP909 (MIT); code MIT")
    alone = provenance({"datasets": ["emopia"]})
    assert alone["licence"] == ("model weights derived from EMOPIA: CC BY-NC-SA 4.0 (non-commercial "
                                "use, attribution, share-alike); code MIT")
    vg = provenance({"datasets": [], "unlabelled": ["vgmidi/unlabelled/"]})
    assert vg["licence"] == ("model weights derived from: VGMIDI (unlabelled) (none stated: weights trained "
                             "on them should not ship)")
    # However the folder is spelt (helper-57: only "pop909" itself was recognised).
    for folder in ("./pop909", "/work/shared/data/pop909/", "data\\POP909"):
        assert provenance({"datasets": [], "unlabelled": [folder]})["data"][0]["name"] == "POP909", folder
    assert provenance({"datasets": [], "unlabelled": ["../x/vgmidi/unlabelled"]})["data"][0]["name"] == \
        "VGMIDI (unlabelled)"
    mine = provenance({"datasets": [], "unlabelled": ["my/pop"]})["data"][0]
    assert mine["name"] == "unlabelled MIDI (my/pop)" and mine["licence"] == "unknown"
