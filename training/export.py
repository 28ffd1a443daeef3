"""Export a CVAE to the ONNX files + model card of docs/model-contract.md.

    python -m emolive.training.export --checkpoint runs/NAME/ckpt.pt --out DIR [--card-extra J]
        [--decoder-precision int8] [--replace true]

The files are written and checked in a temporary folder beside ``DIR`` and only then moved into
it, so a failed export leaves ``DIR`` as it was. A folder that already holds a model
(``model_card.json``) is replaced only with ``--replace true``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from emolive.cli_options import error_line

from .card import BATCH_STEP, BATCH_STEP_FILE, FILES, OPSET, build_card, io_shapes, provenance
from .config import parse_bool
from .export_inputs import card_extra, out_refused, training_entry, velocity_calibration
from .model import CVAE, FRAME_SIZE, N_EMOTIONS, ModelConfig, read_checkpoint
from .quantize import (BATCH_PRECISION, MIN_ONNXRUNTIME, PRECISION, export_int8_step,
                       export_row_int8_step)
from .swap_in import failed_to_write, moved_in_on_success

PRECISIONS = ("float32", "int8")  # of decoder_step's weights


class _EncoderGraph(nn.Module):
    def __init__(self, model: CVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, roll: torch.Tensor, emotion: torch.Tensor):
        return self.model.encode(roll, emotion)


class _DecoderInitGraph(nn.Module):
    def __init__(self, model: CVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, emotion: torch.Tensor):
        return self.model.decoder_init(z, emotion)


class _DecoderStepGraph(nn.Module):
    def __init__(self, model: CVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, prev: torch.Tensor, z: torch.Tensor, emotion: torch.Tensor,
                state: torch.Tensor):
        return self.model.decoder_step(prev, z, emotion, state)


def example_inputs(cfg: ModelConfig, batch: int = 2, steps: int = 32,
                   seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Random float32 inputs for each file, by input name (emotion rows sum to 1)."""
    gen = torch.Generator().manual_seed(seed)
    emotion = torch.rand(batch, N_EMOTIONS, generator=gen)
    emotion = emotion / emotion.sum(dim=1, keepdim=True)
    z = torch.randn(batch, cfg.z_dim, generator=gen)
    state = torch.randn(cfg.layers, batch, cfg.state_width, generator=gen)
    if cfg.plan_steps:  # the step slot holds a whole step count
        state[..., -1] = torch.randint(0, 3 * cfg.plan_steps, (batch,), generator=gen).float()
    return {
        "encoder": {"roll": torch.rand(batch, steps, FRAME_SIZE, generator=gen), "emotion": emotion},
        "decoder_init": {"z": z, "emotion": emotion},
        "decoder_step": {"prev": torch.rand(batch, FRAME_SIZE, generator=gen), "z": z,
                         "emotion": emotion,
                         "state": state},
    }


def graphs(model: CVAE) -> dict[str, nn.Module]:
    return {"encoder": _EncoderGraph(model), "decoder_init": _DecoderInitGraph(model),
            "decoder_step": _DecoderStepGraph(model)}


def _dynamic_axes(shapes: dict[str, dict[str, list[int]]]) -> dict[str, dict[int, str]]:
    """TorchScript-exporter dynamic axes from the card's -1 entries (batch B, steps T)."""
    axes: dict[str, dict[int, str]] = {}
    for kind in ("inputs", "outputs"):
        for name, shape in shapes[kind].items():
            dyn = [i for i, d in enumerate(shape) if d < 0]
            axes[name] = {i: ("T" if (name == "roll" and i == 1) else "B") for i in dyn}
    return axes


def _export_one(graph: nn.Module, inputs: dict[str, torch.Tensor],
                shapes: dict[str, dict[str, list[int]]], path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            graph, tuple(inputs.values()), str(path), input_names=list(shapes["inputs"]),
            output_names=list(shapes["outputs"]), dynamic_axes=_dynamic_axes(shapes),
            opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )


def _stamp_shapes(proto: onnx.ModelProto, shapes: dict[str, dict[str, list[int]]]) -> None:
    """Write the card's shapes on the graph's inputs/outputs: fixed sizes as numbers, dynamic
    ones as the names B (batch) and T (steps), so tools and the engine read the same shapes."""
    declared = {**shapes["inputs"], **shapes["outputs"]}
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        wanted = declared[value.name]
        if len(dims) != len(wanted):
            raise RuntimeError(f"{value.name}: exported rank {len(dims)}, contract {len(wanted)}")
        for index, (dim, size) in enumerate(zip(dims, wanted)):
            if size < 0:
                dim.dim_param = "T" if (value.name == "roll" and index == 1) else "B"
            else:
                dim.dim_value = size


def export_model(model: CVAE, out_dir: str | Path, card: dict[str, Any],
                 decoder_precision: str = "float32") -> Path:
    """Write the ONNX files and model_card.json into ``out_dir``; return ``out_dir``.

    ``decoder_precision`` "int8" stores ``decoder_step``'s weights as int8 (training/quantize.py;
    about 2x faster per step) and also writes the batch step, ``decoder_step_batch.onnx``, for
    offline generation (docs/model-contract.md); the card's ``precision`` says which, with each
    int8 step's largest difference from PyTorch on example inputs. Each file gets the card under
    ``metadata_props['model_card']`` and passes ``onnx.checker.check_model(full_check=True)``.

    Everything is written and checked beside ``out_dir`` first (:func:`swap_in.moved_in_on_success`):
    an export that fails leaves ``out_dir`` as it was, a link in it is replaced, never written
    through, and other files in it stay.
    """
    if decoder_precision not in PRECISIONS:
        raise ValueError(f"decoder precision {decoder_precision!r}: expected one of {PRECISIONS}")
    out = Path(out_dir)
    # A float32 export over an int8 one leaves no stale batch step.
    stale = () if decoder_precision == "int8" else (BATCH_STEP_FILE,)
    with moved_in_on_success(out, remove=stale) as tmp:
        _write_model(model, tmp, card, decoder_precision)
    return out


def _write_model(model: CVAE, out: Path, card: dict[str, Any], decoder_precision: str) -> None:
    """export_model's work, into the empty folder ``out``."""
    model = model.eval()
    int8 = decoder_precision == "int8"
    shapes = io_shapes(model.cfg, batch_step=int8)
    files = {**FILES, BATCH_STEP: BATCH_STEP_FILE} if int8 else dict(FILES)
    inputs = example_inputs(model.cfg)
    with torch.no_grad():
        for key, graph in graphs(model).items():
            path = out / FILES[key]
            if key == "decoder_step" and int8:
                step_shapes = shapes[key]
                export_step = lambda g, x, p: _export_one(g, x, step_shapes, p)  # noqa: E731
                export_int8_step(model, inputs[key], export_step, path)
                export_row_int8_step(model, inputs[key], export_step, out / BATCH_STEP_FILE)
            else:
                _export_one(graph, inputs[key], shapes[key], path)
        card = {**card, "files": files, "io": shapes,
                "precision": _precision(model, out, decoder_precision)}
    card_text = _card_json(card)
    for key, name in files.items():
        path = out / name
        proto = onnx.load(str(path))
        _stamp_shapes(proto, shapes[key])
        onnx.helper.set_model_props(proto, {"model_card": card_text})
        onnx.save(proto, str(path))
        onnx.checker.check_model(str(path), full_check=True)
    (out / "model_card.json").write_text(card_text + "\n", encoding="utf-8")


def _card_json(card: dict[str, Any]) -> str:
    """The card as JSON text. Strict JSON: a NaN or infinity is a ValueError here, before any
    file is written, since every reader of the card (the engine's included) would refuse it."""
    return json.dumps(card, indent=2, allow_nan=False)


def _precision(model: CVAE, out: Path, decoder_precision: str) -> dict[str, Any]:
    """The card's ``precision`` entry; for int8, the step's largest difference from PyTorch."""
    precision: dict[str, Any] = {key: "float32" for key in FILES}
    if decoder_precision == "int8":
        for key, name, text in (("decoder_step", FILES["decoder_step"], PRECISION),
                                (BATCH_STEP, BATCH_STEP_FILE, BATCH_PRECISION)):
            precision[key] = text
            precision[f"{key}_max_abs_diff"] = _step_difference(model, out / name)
        precision["onnxruntime_min"] = MIN_ONNXRUNTIME
    return precision


def _step_difference(model: CVAE, path: Path) -> dict[str, float]:
    """Each output's largest difference between the step file at ``path`` and ``model``'s
    PyTorch step, on the card's example inputs (8 rows, seed 1)."""
    import onnxruntime as ort

    feeds = example_inputs(model.cfg, batch=8, seed=1)["decoder_step"]
    with torch.no_grad():
        expected = graphs(model)["decoder_step"](*feeds.values())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: t.numpy() for name, t in feeds.items()})
    names = [o.name for o in session.get_outputs()]
    return {name: round(float(abs(e.numpy() - g).max()), 5)
            for name, e, g in zip(names, expected, got)}


def update_card(model_dir: str | Path, changes: dict[str, Any],
                replaced: dict[str, onnx.ModelProto] | None = None) -> dict[str, Any]:
    """Merge ``changes`` (top-level keys) into a model directory's card, in model_card.json and
    in every ONNX file's metadata, keeping the two identical; ``replaced`` gives new graphs for
    some files (by file name). Returns the new card. The files are written beside the folder
    and moved in, as export_model's are."""
    out = Path(model_dir)
    card = json.loads((out / "model_card.json").read_text())
    card.update(changes)
    card_text = _card_json(card)
    replaced = replaced or {}
    with moved_in_on_success(out) as tmp:
        for name in card["files"].values():
            proto = replaced[name] if name in replaced else onnx.load(str(out / name))
            onnx.helper.set_model_props(proto, {"model_card": card_text})
            onnx.save(proto, str(tmp / name))
            onnx.checker.check_model(str(tmp / name), full_check=True)
        (tmp / "model_card.json").write_text(card_text + "\n", encoding="utf-8")
    return card


def replace_batch_step(model: CVAE, model_dir: str | Path) -> dict[str, Any]:
    """Write ``model``'s batch step into the int8 model directory ``model_dir`` in place of the
    one there, in this version's format (uint8-stored weights: training/quantize.py,
    ROW_WEIGHT_ZERO), and the card's batch-step ``precision`` entries; the other files keep
    their graphs and weights. For a model exported before 2026-12-06, whose int8 batch weights
    overflowed ONNX Runtime's sums on CPUs without VNNI, with ``model`` read back from its own
    files (recover.py). Returns the new card."""
    out = Path(model_dir)
    card = json.loads((out / "model_card.json").read_text())
    if card.get("files", {}).get(BATCH_STEP) != BATCH_STEP_FILE:
        raise ValueError(f"{out}: no {BATCH_STEP_FILE} in its card (a float32 model has none)")
    model = model.eval()
    shapes = io_shapes(model.cfg, batch_step=True)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        path = Path(tmp) / BATCH_STEP_FILE
        export_row_int8_step(model, example_inputs(model.cfg)["decoder_step"],
                             lambda g, x, p: _export_one(g, x, shapes[BATCH_STEP], p), path)
        difference = _step_difference(model, path)
        proto = onnx.load(str(path))
    _stamp_shapes(proto, shapes[BATCH_STEP])
    precision = {**card["precision"], BATCH_STEP: BATCH_PRECISION,
                 f"{BATCH_STEP}_max_abs_diff": difference}
    return update_card(out, {"precision": precision}, replaced={BATCH_STEP_FILE: proto})


def export_random_model(out_dir: str | Path, z_dim: int = 16, hidden: int = 32, layers: int = 1,
                        seed: int = 0, decoder_precision: str = "float32",
                        plan_steps: int = 0) -> Path:
    """A model with random weights of the given sizes, exported in the contract (for tests)."""
    torch.manual_seed(seed)
    cfg = ModelConfig(z_dim=z_dim, hidden=hidden, layers=layers, enc_hidden=hidden, emb_dim=8,
                      frame_proj=hidden, plan_steps=plan_steps, plan_dim=8)
    model = CVAE(cfg)
    card = build_card(cfg, name=f"random-z{z_dim}-h{hidden}-l{layers}-seed{seed}")
    return export_model(model, out_dir, card, decoder_precision)


def load_checkpoint_model(path: str | Path) -> tuple[CVAE, dict[str, Any]]:
    """The CVAE and the checkpoint dict saved by train.py; ValueError when its weights are not
    all finite (a run that diverged), which would export a model that plays nothing."""
    ckpt = read_checkpoint(path)
    model = CVAE(ModelConfig(**ckpt["model_args"]))
    model.load_state_dict(ckpt["model"])
    if not all(torch.isfinite(weight).all() for weight in model.state_dict().values()
               if weight.is_floating_point()):
        raise ValueError(f"{path} holds weights that are not finite numbers (its run diverged): "
                         "export an earlier checkpoint, such as best.pt")
    return model.eval(), ckpt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emolive export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by train.py")
    parser.add_argument("--out", required=True, help="directory for the ONNX files and card")
    parser.add_argument("--card-extra", help="JSON file whose keys are merged into the card")
    parser.add_argument("--name", default="emolive-model", help="model name in the card")
    parser.add_argument("--decoder-precision", choices=PRECISIONS, default="float32",
                        help="weights of decoder_step.onnx: int8 is about 2x faster per step, "
                             "float32 matches PyTorch exactly (default: %(default)s)")
    parser.add_argument("--velocity-calibration",
                        help="JSON written by emolive.training.calibrate (gain/bias per quadrant)")
    parser.add_argument("--replace", type=parse_bool, default=False, metavar="BOOL",
                        help="replace the model that --out already holds (default: %(default)s, "
                             "an --out holding a model_card.json is refused)")
    args = parser.parse_args(argv)
    ckpt_path = Path(args.checkpoint)
    if ckpt_path.is_dir():  # a run's folder: its checkpoint is inside
        return error_line(parser.prog, f"checkpoint {ckpt_path} is a folder; give its ckpt.pt "
                                       f"({ckpt_path / 'ckpt.pt'})")
    if not ckpt_path.is_file():
        return error_line(parser.prog, f"checkpoint {ckpt_path} not found")
    refused = out_refused(Path(args.out), args.replace)
    if refused:
        return error_line(parser.prog, refused)
    try:
        extra = card_extra(args.card_extra) if args.card_extra else {}
        calibration = velocity_calibration(args.velocity_calibration) if args.velocity_calibration else None
        model, ckpt = load_checkpoint_model(ckpt_path)
    except ValueError as err:  # not a checkpoint, its weights not finite, or a bad JSON file
        return error_line(parser.prog, err)
    except (OSError, KeyError, RuntimeError, TypeError) as err:
        return error_line(parser.prog, f"cannot read {ckpt_path}: {err}")
    if calibration is not None:
        model.set_velocity_calibration(calibration["gain"], calibration["bias"])
    config = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    card = build_card(model.cfg, name=args.name, segment_bars=config.get("segment_bars", 2),
                      tonic=0 if config.get("key_normalise") else None,
                      training=training_entry(ckpt, ckpt_path),
                      **provenance(config, earlier=ckpt.get("data_before") or []))
    if calibration is not None:
        card["velocity_calibration"] = calibration
    card.update(extra)
    try:
        out = export_model(model, args.out, card, args.decoder_precision)
    except OSError as err:  # a file there that cannot be replaced, a full disk: nothing moved in
        return failed_to_write(parser.prog, args.out, err)
    files = json.loads((out / "model_card.json").read_text())["files"]
    print(f"exported {', '.join(files.values())} and model_card.json to {out}")
    return 0


if __name__ == "__main__":  # as `emolive export ARGS`: its messages for errors, signals, statuses
    from emolive.cli import main as emolive

    raise SystemExit(emolive(["export", *sys.argv[1:]]))
