"""Recover a PyTorch checkpoint from an exported model, so that it can be fine-tuned again.

    python -m emolive.training.recover [--model DIR] --out runs/NAME/ckpt.pt
    python -m emolive.training.train --config ... --init-from runs/NAME/ckpt.pt
    python -m emolive.training.recover --rebuild-batch-step --model DIR   # in place, below

The package ships ONNX files, not a checkpoint; this reads the weights back out of them
(``--model`` defaults to the shipped model). The sizes come from the card's ``model`` entry.
Float32 graphs give the weights exactly. An int8 ``decoder_step.onnx`` (``MatMulNBits``, blocks of
weights sharing a scale, 32 or 128 as the node says; the plan's rows with a scale per row) gives
the dequantised weights,
which differ from the trained ones by up to one quantisation step per weight (ONNX Runtime's
scale is a block's largest magnitude / 128, codes -128..127): the checkpoint is the model as
shipped, not the one before its export, and exported to int8 again it decodes exactly alike.
Not in the checkpoint: the emotion adversary (not in the ONNX files; fresh weights, seeded, and
the fine-tune trains it again), the optimizer state (so the checkpoint starts a run with
``--init-from``; it cannot be resumed) and the velocity calibration (the model
:func:`recover_model` returns has the card's, as the shipped step does, but it is not a
weight: calibrate and export with it again after a fine-tune).

``--rebuild-batch-step`` writes an int8 model's ``decoder_step_batch.onnx`` again from the
weights its ``decoder_step.onnx`` runs, in the current format (export.replace_batch_step): batch
steps exported before 2026-12-06 held int8 weights that ONNX Runtime summed wrongly on CPUs
without VNNI (docs/training.md, "Weights stored as uint8").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from emolive.cli_options import error_line

from .card import BATCH_STEP, BATCH_STEP_FILE
from .checkpoints import save_atomic
from .config import check_out_folder
from .data import BUNDLED_MODEL
from .export import FILES, replace_batch_step
from .losses import EmotionHeads
from .model import CVAE, FRAME_SIZE, ModelConfig

DEFAULT_MODEL = BUNDLED_MODEL


class RecoverError(Exception):
    """The model directory cannot be read back into a checkpoint (the message says why)."""


def _initializers(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def _named(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Initializers the exporter kept under their PyTorch names (``model.<param>``)."""
    return {name[len("model."):]: value for name, value in values.items()
            if name.startswith("model.")}


def _torch_gates(onnx_rows: np.ndarray) -> np.ndarray:
    """ONNX GRU gate blocks (z, r, h along the first axis) -> PyTorch's order (r, z, n)."""
    z, r, h = np.split(onnx_rows, 3, axis=0)
    return np.concatenate([r, z, h], axis=0)


def _fused_gru(node: onnx.NodeProto, values: dict[str, np.ndarray], prefix: str,
               layer: int) -> dict[str, np.ndarray]:
    """One ONNX ``GRU`` node (``linear_before_reset`` 1, as PyTorch exports) -> the PyTorch
    weights of ``layer``; a bidirectional node also gives the ``_reverse`` ones."""
    w, r, b = (values[name] for name in node.input[1:4])  # [D, 3H, in], [D, 3H, H], [D, 6H]
    out = {}
    for direction in range(w.shape[0]):
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        bias_ih, bias_hh = np.split(b[direction], 2)
        out[f"{prefix}.weight_ih{suffix}"] = _torch_gates(w[direction])
        out[f"{prefix}.weight_hh{suffix}"] = _torch_gates(r[direction])
        out[f"{prefix}.bias_ih{suffix}"] = _torch_gates(bias_ih)
        out[f"{prefix}.bias_hh{suffix}"] = _torch_gates(bias_hh)
    return out


def _nodes(graph: onnx.GraphProto, op_type: str) -> list[onnx.NodeProto]:
    return [node for node in graph.node if node.op_type == op_type]


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    found = [a for a in node.attribute if a.name == name]
    return int(onnx.helper.get_attribute_value(found[0])) if found else default


def _dequantised(node: onnx.NodeProto, values: dict[str, np.ndarray]) -> np.ndarray:
    """A ``MatMulNBits`` node's weight ``[N, K]`` in float32 (8 bits; zero point 2^(bits-1)
    unless the node gives one). ``[N, K]`` is PyTorch's ``Linear.weight`` layout."""
    bits, k, n = _attribute(node, "bits", 4), _attribute(node, "K", 0), _attribute(node, "N", 0)
    if bits != 8 or len(node.input) > 3 and node.input[3]:
        raise RecoverError(f"MatMulNBits node {node.name!r}: only 8-bit symmetric weights (as "
                           "the exporter writes them) can be read back")
    q = values[node.input[1]].reshape(n, -1).astype(np.float32)  # [N, blocks * block]
    scales = values[node.input[2]].reshape(n, -1)  # [N, blocks]
    block = q.shape[1] // scales.shape[1]
    weight = (q - 2 ** (bits - 1)) * np.repeat(scales, block, axis=1)
    return weight[:, :k]


def _encoder_weights(graph: onnx.GraphProto, cfg: ModelConfig) -> dict[str, np.ndarray]:
    values = _initializers(graph)
    out = _named(values)
    (gru,) = _nodes(graph, "GRU")
    out.update(_fused_gru(gru, values, "encoder.gru", 0))
    for node in _nodes(graph, "MatMul"):
        weight = values.get(node.input[1])
        if weight is None:
            continue
        if node.input[0] == "roll":  # the per-step projection, [F, P]
            out["encoder.proj.weight"] = weight.T
        elif cfg.attention and weight.shape == (2 * cfg.enc_hidden, 1):
            out["encoder.attention.weight"] = weight.T
    return out


def _plan_weights(graph: onnx.GraphProto, values: dict[str, np.ndarray],
                  cfg: ModelConfig) -> dict[str, np.ndarray]:
    """The plan projection: its rows ``[plan_steps, plan_dim, C]`` (float32, or int8 with a
    float scale per row) and its bias ``[plan_steps, plan_dim]``, all read by Gather nodes."""
    slots = (cfg.plan_steps, cfg.plan_dim)
    gathered = [values[node.input[0]] for node in _nodes(graph, "Gather")
                if node.input[0] in values]
    rows = [v for v in gathered if v.shape == slots + (cfg.z_dim + cfg.emb_dim,)]
    scale = [v for v in gathered if v.shape == slots + (1,)]
    bias = [v for v in gathered if v.shape == slots and v.dtype == np.float32]
    if len(rows) != 1 or len(bias) != 1 or len(scale) > 1:
        raise RecoverError("decoder_step.onnx: cannot find the plan's rows and bias")
    weight = rows[0].astype(np.float32) * (scale[0] if scale else 1.0)
    return {"decoder.plan.weight": weight.reshape(-1, rows[0].shape[2]),
            "decoder.plan.bias": bias[0].reshape(-1)}


def _step_weights(graph: onnx.GraphProto, cfg: ModelConfig) -> dict[str, np.ndarray]:
    values = _initializers(graph)
    out = {name: value for name, value in _named(values).items() if name.startswith("decoder.")}
    if cfg.plan_steps:
        out.update(_plan_weights(graph, values, cfg))
    quantised = _nodes(graph, "MatMulNBits")
    if quantised:  # the int8 step: the GRU as matrix products, layer by layer, ih before hh
        out.update(_int8_step_matrices(quantised, values, cfg))
        return out
    for layer, node in enumerate(_nodes(graph, "GRU")):  # float32: one fused node per layer
        out.update(_fused_gru(node, values, "decoder.gru", layer))
    head = [values[n.input[1]] for n in _nodes(graph, "MatMul")
            if n.input[1] in values and values[n.input[1]].shape[-1] == FRAME_SIZE]
    if len(head) != 1:
        raise RecoverError("decoder_step.onnx: cannot find the output head")
    out["decoder.head.weight"] = head[0].T
    return out


def _int8_step_matrices(quantised: list[onnx.NodeProto], values: dict[str, np.ndarray],
                        cfg: ModelConfig) -> dict[str, np.ndarray]:
    """The GRU's and the head's weights from the step's ``MatMulNBits`` nodes, in graph order
    (each layer's ih then hh, then the head), each the next node of its weight's [N, K]. Sizes
    alone cannot tell them apart: hidden 88 makes the GRU's N (3 x 88) the head's (264), and an
    emotion table as wide as 3 x hidden has a GRU's N."""
    with torch.device("meta"):  # the sizes only: no weights are made
        shapes = {name: tuple(tensor.shape) for name, tensor in CVAE(cfg).state_dict().items()}
    wanted = [f"decoder.gru.weight_{kind}_l{layer}" for layer in range(cfg.layers)
              for kind in ("ih", "hh")] + ["decoder.head.weight"]
    found: dict[str, np.ndarray] = {}
    nodes = iter(quantised)
    for name in wanted:
        node = next((n for n in nodes
                     if (_attribute(n, "N", 0), _attribute(n, "K", 0)) == shapes[name]), None)
        if node is None:
            raise RecoverError("decoder_step.onnx: its int8 matrices do not match the card's "
                               f"sizes (none for {name} {list(shapes[name])} in graph order)")
        found[name] = _dequantised(node, values)
    return found


def _read(path: Path) -> onnx.GraphProto:
    try:
        return onnx.load(str(path)).graph
    except (OSError, DecodeError, ValueError) as err:
        raise RecoverError(f"cannot read {path}: {err}") from None


def recover_model(model_dir: str | Path) -> tuple[CVAE, dict]:
    """The CVAE whose weights the ONNX files of ``model_dir`` hold, with the card's velocity
    calibration (as its decoder step applies it), and the model card."""
    model_dir = Path(model_dir)
    card_path = model_dir / "model_card.json"
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        cfg = ModelConfig(**card["model"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise RecoverError(f"{card_path}: no readable 'model' entry ({err})") from None
    if cfg.problems():
        raise RecoverError(f"{card_path}: its 'model' sizes make no model: "
                           f"{'; '.join(cfg.problems())}")
    weights = {}
    for part, read in (("encoder", _encoder_weights), ("decoder_step", _step_weights)):
        path = model_dir / FILES[part]
        try:
            weights.update(read(_read(path), cfg))
        except (KeyError, ValueError, IndexError) as err:  # a graph of another shape
            raise RecoverError(f"{path}: not the graph the exporter writes ({err!r})") from None
    init = _initializers(_read(model_dir / FILES["decoder_init"]))
    weights.update({k: v for k, v in _named(init).items() if k.startswith("decoder.to_state")})
    model = CVAE(cfg)
    try:
        model.load_state_dict({name: torch.tensor(value, dtype=torch.float32)
                               for name, value in weights.items()}, strict=True)
    except RuntimeError as err:
        raise RecoverError(f"{model_dir}: the ONNX weights do not fit the card's sizes: "
                           f"{str(err).splitlines()[0]}") from None
    calibration = card.get("velocity_calibration")
    if calibration:
        model.set_velocity_calibration(calibration["gain"], calibration["bias"])
    return model.eval(), card


def recovered_checkpoint(model: CVAE, card: dict, seed: int = 0) -> dict:
    """A checkpoint in train.py's layout for ``--init-from``: the adversary is fresh, and
    there is no optimizer state (``"optimizer": None``: train.py refuses to resume it)."""
    torch.manual_seed(seed)
    heads = EmotionHeads(model.cfg.z_dim)
    config = card.get("training", {}).get("config", {})
    return {"model": model.state_dict(), "heads": heads.state_dict(), "optimizer": None,
            "model_args": model.cfg.to_dict(), "iter_num": card.get("training", {}).get("steps"),
            "best_val_loss": None, "config": config, "elapsed_s": 0.0,
            "recovered_from": card.get("name"), "data_before": card.get("data", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emolive recover", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="exported model directory (default: the shipped model; "
                                         "with --rebuild-batch-step, give it)")
    parser.add_argument("--out", help="checkpoint file to write (ckpt.pt)")
    parser.add_argument("--rebuild-batch-step", action="store_true",
                        help="instead of a checkpoint, write the int8 model --model's "
                             "decoder_step_batch.onnx again from the weights its decoder_step "
                             "runs, in this version's format (exact on every CPU; needed for "
                             "int8 models exported before 2026-12-06); give --model")
    args = parser.parse_args(argv)
    if args.rebuild_batch_step:
        return _rebuild_batch_step(parser, args)
    if args.out is None:
        parser.error("the following arguments are required: --out (or --rebuild-batch-step)")
    if not args.out or args.out.endswith(("/", os.sep)):
        return error_line(parser.prog, f"--out {args.out!r} names no file; give the checkpoint "
                                       "file to write, such as runs/shipped/ckpt.pt")
    out = Path(args.out)
    if out.exists() or out.is_symlink():  # a run's ckpt.pt, say: its optimizer state would be lost
        return error_line(parser.prog,
                          f"{args.out} exists; give a new file name (or remove it first)")
    try:  # absolute: a bare file name's folder is the current one, not an empty name
        check_out_folder(out.absolute().parent, "the folder of --out")
    except ValueError as err:  # under a file
        return error_line(parser.prog, err)
    try:
        model, card = recover_model(args.model or DEFAULT_MODEL)
    except RecoverError as err:
        return error_line(parser.prog, err)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(recovered_checkpoint(model, card), out)
    print(f"wrote {out}: {card.get('name')} ({sum(p.numel() for p in model.parameters()):,} "
          f"weights); fine-tune it with --init-from {out}")
    return 0


def _rebuild_batch_step(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.out is not None:
        parser.error("--rebuild-batch-step rewrites --model in place: give no --out")
    if args.model is None:
        parser.error("--rebuild-batch-step changes a model's files: name it with --model")
    try:
        model, _card = recover_model(args.model)
        card = replace_batch_step(model, args.model)
    except (RecoverError, ValueError, OSError) as err:
        return error_line(parser.prog, err)
    difference = card["precision"][f"{BATCH_STEP}_max_abs_diff"]
    print(f"rewrote {Path(args.model) / BATCH_STEP_FILE}; its largest difference from the live "
          f"step's weights on example inputs: {max(difference.values()):.4f}")
    return 0


if __name__ == "__main__":  # as `emolive recover ARGS`: its messages for errors, signals, statuses
    from emolive.cli import main as emolive

    raise SystemExit(emolive(["recover", *sys.argv[1:]]))
