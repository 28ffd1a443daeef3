"""An int8 `decoder_step.onnx`: the streaming step with 8-bit weights (docs/model-contract.md).

The step is memory-bound: at z 128 / hidden 512 it reads 6.4 MB of float32 weights per 16th
note. Stored as int8 (blocks of 128 weights sharing one float scale) they are 1.7 MB, and ONNX
Runtime's ``MatMulNBits`` kernel multiplies them in int8 (``accuracy_level`` 4), quantising
each input *row* on the fly: one stream's outputs depend on the other rows of a batch only by
float rounding (the order its blocks are summed in). Inputs and outputs stay float32, so the
engine and the contract do not change. Offline generation decodes through a second file, the
batch step (:func:`quantize_rows`, at the end), exact row by row and faster for many rows.

``torch.nn.GRU`` exports as one fused ONNX ``GRU`` node that no quantiser touches, so the step
is first written out as the GRU's plain matrix products (:class:`DecoderStepMatMuls`, checked
against the fused one) and every constant matrix then becomes a ``MatMulNBits``. The per-step
plan's projection is the exception: a step needs only its slot's ``plan_dim`` rows of it
(``StepDecoder.plan_of_step``), so the step gathers those rows (9,216 weights at z 128) instead
of multiplying all ``plan_steps * plan_dim`` of them. They are stored as int8 too, one float
scale per row (:func:`int8_rows`), and dequantised after the gather.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from .model import CVAE, N_KEYS

BITS = 8
# Weights per scale, along the input dimension. 128 (since 2026-12-05) rather than 32: the step
# is 13% faster (less scale data to stream; docs/benchmarks.md) and decodes the same music
# (onset F1 and prior onset density unchanged; docs/training.md).
BLOCK_SIZE = 128
ACCURACY_LEVEL = 4  # int8 compute, each input row quantised per block on the fly
PRECISION = (f"int8 weights (ONNX Runtime MatMulNBits, bits {BITS}, block {BLOCK_SIZE}, "
             f"symmetric, accuracy_level {ACCURACY_LEVEL}; a per-step plan's rows: int8, one "
             f"scale per row, the step's slot gathered); float32 inputs and outputs")
MIN_ONNXRUNTIME = "1.22"  # the first release with 8-bit MatMulNBits kernels on x86


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T + bias`` as an ONNX MatMul + Add (``F.linear`` would become a Gemm,
    which the weight-only quantiser does not handle); the transpose is folded at export."""
    return x @ weight.t() + bias


def int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight [..., C]`` -> (int8 ``[..., C]``, float scale ``[..., 1]``): symmetric, one scale
    per row, ``weight ~= int8 * scale``."""
    scale = weight.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / 127.0
    return torch.round(weight / scale).clamp(-127, 127).to(torch.int8), scale


class DecoderStepMatMuls(nn.Module):
    """``CVAE.decoder_step`` with the GRU written as its matrix products (PyTorch's gate order
    r, z, n; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; ``h' = (1 - z) n + z h``).
    ``int8_plan``: the plan's rows as int8 with a scale per row (:func:`int8_rows`), as exported;
    without it the module computes exactly what the fused step does. ``whole_plan`` (the batch
    step): the plan is one matrix product of all its rows, then each row's slot is picked
    (:meth:`_whole_plan_slot`); gathering every stream's own rows costs more than the product
    once the batch passes a few streams."""

    def __init__(self, model: CVAE, int8_plan: bool = False, whole_plan: bool = False) -> None:
        super().__init__()
        self.model = model
        self.whole_plan = whole_plan
        self.plan_rows_of = None  # slot [B] -> the plan rows to use; None: the float ones
        if int8_plan and model.decoder.plan is not None:  # [plan_steps, plan_dim, C]
            plan_q, plan_scale = int8_rows(model.decoder.plan_rows().detach())
            self.register_buffer("plan_q", plan_q)
            self.register_buffer("plan_scale", plan_scale)
            self.plan_rows_of = self._int8_plan_rows

    def _int8_plan_rows(self, slot: torch.Tensor) -> torch.Tensor:
        """The dequantised plan rows of ``slot [B]``: ``[B, plan_dim, C]``."""
        return self.plan_q[slot].to(torch.float32) * self.plan_scale[slot]

    def _whole_plan_slot(self, cond: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """``plan_of_step`` as one product of all ``plan_steps * plan_dim`` rows (a MatMul the
        batch step quantises), each row's slot then picked by a one-hot sum: ``[B, plan_dim]``."""
        decoder = self.model.decoder
        plan = _linear(cond, decoder.plan.weight, decoder.plan.bias)
        plan = plan.reshape(-1, decoder.plan_steps, decoder.plan_dim)  # [B, slots, plan_dim]
        slots = torch.arange(decoder.plan_steps, dtype=step.dtype)
        one_hot = (decoder.slot_of(step).unsqueeze(-1) == slots).to(plan.dtype)  # [B, slots]
        return (plan * one_hot.unsqueeze(-1)).sum(dim=1)

    def forward(self, prev: torch.Tensor, z: torch.Tensor, emotion: torch.Tensor,
                state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        decoder = self.model.decoder
        cond = torch.cat([z, self.model.embed(emotion)], dim=-1)  # [B, Z + E]
        x, head_in, states = torch.cat([prev, cond], dim=-1), [cond], []
        if decoder.plan is not None:  # the step's plan vector (StepDecoder.plan_of_step)
            step = state[0, :, -1]
            if self.whole_plan:
                plan = self._whole_plan_slot(cond, step)  # [B, plan_dim]
            else:
                plan = decoder.plan_of_step(cond, step, self.plan_rows_of)
            head_in.append(plan)
            if decoder.plan_in_gru:
                x = torch.cat([x, plan], dim=-1)
            state = state[..., :-1]
        for layer in range(decoder.layers):
            h = state[layer]  # [B, H]
            gru = {name: getattr(decoder.gru, f"{name}_l{layer}")
                   for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            gates = [decoder.hidden] * 3  # constant sizes: one Split (chunk exports shape maths)
            in_r, in_z, in_n = _linear(x, gru["weight_ih"], gru["bias_ih"]).split(gates, dim=-1)
            h_r, h_z, h_n = _linear(h, gru["weight_hh"], gru["bias_hh"]).split(gates, dim=-1)
            reset, update = torch.sigmoid(in_r + h_r), torch.sigmoid(in_z + h_z)
            x = (1 - update) * torch.tanh(in_n + reset * h_n) + update * h
            states.append(x)
        frame = _linear(torch.cat([x] + head_in, dim=-1), decoder.head.weight, decoder.head.bias)
        onset, hold, velocity = frame.split(N_KEYS, dim=-1)
        velocity = self.model.calibrate_velocity(torch.sigmoid(velocity), emotion)
        state_out = states[0].unsqueeze(0) if len(states) == 1 else torch.stack(states)  # [L, B, H]
        if decoder.plan is not None:
            state_out = decoder.with_step_slot(state_out, step + 1)
        return onset, hold, velocity, state_out


def quantize_weights(float_model: onnx.ModelProto) -> onnx.ModelProto:
    """Every MatMul with a constant weight matrix of ``float_model`` -> int8 ``MatMulNBits``."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(float_model, bits=BITS, block_size=BLOCK_SIZE,
                                     is_symmetric=True, accuracy_level=ACCURACY_LEVEL)
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # the quantiser logs every node at INFO
    try:
        quantizer.process()
    finally:
        logging.getLogger().setLevel(level)
    return quantizer.model.model


ExportOne = Callable[[nn.Module, dict[str, torch.Tensor], Path], None]


def _export_quantised(step: DecoderStepMatMuls, quantise: Callable[[onnx.ModelProto],
                      onnx.ModelProto], inputs: dict[str, torch.Tensor], export_one: ExportOne,
                      path: Path) -> None:
    """Write ``step`` to ``path`` through ``export_one(graph, inputs, path)`` (the exporter's
    float32 export), then ``quantise`` its weight matrices. The float32 file goes beside
    ``path`` (not to $TMPDIR), so that a full disk is the one the export writes to."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        float_path = Path(tmp) / "decoder_step_float.onnx"
        export_one(step, inputs, float_path)
        onnx.save(quantise(onnx.load(str(float_path))), str(path))


def export_int8_step(model: CVAE, inputs: dict[str, torch.Tensor], export_one: ExportOne,
                     path: Path) -> None:
    """Write the int8 decoder step (``MatMulNBits``) to ``path``."""
    _export_quantised(DecoderStepMatMuls(model, int8_plan=True), quantize_weights, inputs,
                      export_one, path)


# The batch step (docs/model-contract.md, "The batch step"). MatMulNBits multiplies a batch of
# 64 rows 4-9x slower than ONNX's MatMulInteger with uint8 inputs quantised per row
# (benchmarks/matmul_kernels.py; docs/benchmarks.md), so offline generation decodes through a
# second file whose weight matrices are MatMulInteger nodes. Its inputs are quantised per *row*
# (one scale per stream, the row's largest magnitude / 127): integer products are exact, so a
# row's outputs never depend on the rest of the batch, and generate() and generate_many() agree
# bit for bit.
ROW_INT8_MIN_ROWS = 32  # weight matrices with fewer input rows (the emotion table) stay float
# The weights are stored as uint8 with zero point 128 (codes 1..255 for -127..127), not as int8.
# On an x86 CPU without VNNI (the 2-core AMD EPYC, Zen 3) ONNX Runtime's uint8 x int8 sums came
# out wrong where a pair of products overflows 16 bits (255 * 127 * 2; AVX2's saturating
# vpmaddubsw, by the pattern): 2,868 of 12,288 outputs of the shipped model's hh product, off
# by up to 39,209 of 1,126,352, and offline music changed. Its uint8 x uint8 sums were exact
# (tests/training/test_batch_step.py checks it on the CPU that runs them). 7-bit int8 weights
# (ONNX Runtime's reduce_range) are exact too, but decode further from the live step
# (docs/training.md, "Weights stored as uint8").
ROW_WEIGHT_ZERO = 128
BATCH_PRECISION = ("int8 weights (stored as uint8 with zero point 128; ONNX MatMulInteger, one "
                   "float scale per output column, symmetric), inputs quantised to uint8 per row "
                   "on the fly (zero point 128, one scale per row); the per-step plan's "
                   "projection is one such product; float32 inputs and outputs")


def _row_int8_matmul(x: str, weight: onnx.TensorProto, out: str,
                     prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing ``out = x @ weight`` for a float ``x [B, K]`` with int8 weights (one
    scale per column, stored as uint8: ``w ~= (wq - 128) * s_col``) and ``x`` quantised per
    row: ``x ~= (xq - 128) * s_row``."""

    w = numpy_helper.to_array(weight).astype(np.float32)  # [K, N]
    w_scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0  # [N]
    w_q = (np.clip(np.round(w / w_scale), -127, 127) + ROW_WEIGHT_ZERO).astype(np.uint8)

    def n(name: str) -> str:  # names local to this product
        return f"{prefix}/{name}"

    consts = [numpy_helper.from_array(w_q, n("w_q")),
              numpy_helper.from_array(w_scale.astype(np.float32), n("w_scale")),
              numpy_helper.from_array(np.array([-1], np.int64), n("last_axis")),
              numpy_helper.from_array(np.array(1e-30 / 127.0, np.float32), n("tiny")),
              numpy_helper.from_array(np.array(1.0 / 127.0, np.float32), n("per_level")),
              numpy_helper.from_array(np.array(128, np.uint8), n("zero"))]
    nodes = [
        helper.make_node("Abs", [x], [n("abs")]),
        helper.make_node("ReduceMax", [n("abs"), n("last_axis")], [n("peak")], keepdims=0),
        helper.make_node("Mul", [n("peak"), n("per_level")], [n("scale_raw")]),
        helper.make_node("Max", [n("scale_raw"), n("tiny")], [n("scale")]),  # a silent row: 0s
        helper.make_node("Shape", [n("scale")], [n("rows")]),
        helper.make_node("ConstantOfShape", [n("rows")], [n("zeros")],
                         value=numpy_helper.from_array(np.array([128], np.uint8))),
        helper.make_node("QuantizeLinear", [x, n("scale"), n("zeros")], [n("x_q")], axis=0),
        helper.make_node("MatMulInteger", [n("x_q"), n("w_q"), n("zero"), n("zero")], [n("acc")]),
        helper.make_node("Cast", [n("acc")], [n("acc_f")], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", [n("scale"), n("last_axis")], [n("row_scale")]),
        helper.make_node("Mul", [n("acc_f"), n("row_scale")], [n("rows_scaled")]),
        helper.make_node("Mul", [n("rows_scaled"), n("w_scale")], [out]),
    ]
    return nodes, consts


def quantize_rows(float_model: onnx.ModelProto) -> onnx.ModelProto:
    """Every MatMul of ``float_model`` with a constant weight matrix of at least
    ``ROW_INT8_MIN_ROWS`` rows -> :func:`_row_int8_matmul`. The model is changed in place and
    returned."""
    graph = float_model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes, used = [], set()
    for index, node in enumerate(graph.node):
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or len(weight.dims) != 2 or weight.dims[0] < ROW_INT8_MIN_ROWS:
            nodes.append(node)
            continue
        new_nodes, consts = _row_int8_matmul(node.input[0], weight, node.output[0],
                                             node.name or f"matmul_{index}")
        nodes.extend(new_nodes)
        graph.initializer.extend(consts)
        used.add(weight.name)
    del graph.node[:]
    graph.node.extend(nodes)
    still_read = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name not in used or t.name in still_read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return float_model


def export_row_int8_step(model: CVAE, inputs: dict[str, torch.Tensor], export_one: ExportOne,
                         path: Path) -> None:
    """Write the batch step (:func:`quantize_rows` of the whole-plan matrix-product step) to
    ``path``."""
    _export_quantised(DecoderStepMatMuls(model, whole_plan=True), quantize_rows, inputs,
                      export_one, path)
