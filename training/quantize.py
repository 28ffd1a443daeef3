"""An int8 `decoder_step.onnx`: the streaming step with 8-bit weights (docs/model-contract.md).

The step is memory-bound: at z 128 / hidden 512 it reads 6.4 MB of float32 weights per 16th
note. Stored as int8 (blocks of 32 weights sharing one float scale) they are 1.8 MB, and ONNX
Runtime's ``MatMulNBits`` kernel multiplies them in int8 (``accuracy_level`` 4), quantising
each input *row* on the fly: one stream's outputs never depend on the other rows of a batch.
Inputs and outputs stay float32, so the engine and the contract do not change.

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

import onnx
import torch
from torch import nn

from .model import CVAE, N_KEYS

BITS = 8
BLOCK_SIZE = 32  # weights per scale, along the input dimension
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
    without it the module computes exactly what the fused step does."""

    def __init__(self, model: CVAE, int8_plan: bool = False) -> None:
        super().__init__()
        self.model = model
        self.plan_rows_of = None  # slot [B] -> the plan rows to use; None: the float ones
        if int8_plan and model.decoder.plan is not None:  # [plan_steps, plan_dim, C]
            plan_q, plan_scale = int8_rows(model.decoder.plan_rows().detach())
            self.register_buffer("plan_q", plan_q)
            self.register_buffer("plan_scale", plan_scale)
            self.plan_rows_of = self._int8_plan_rows

    def _int8_plan_rows(self, slot: torch.Tensor) -> torch.Tensor:
        """The dequantised plan rows of ``slot [B]``: ``[B, plan_dim, C]``."""
        return self.plan_q[slot].to(torch.float32) * self.plan_scale[slot]

    def forward(self, prev: torch.Tensor, z: torch.Tensor, emotion: torch.Tensor,
                state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        decoder = self.model.decoder
        cond = torch.cat([z, self.model.embed(emotion)], dim=-1)  # [B, Z + E]
        x, head_in, states = torch.cat([prev, cond], dim=-1), [cond], []
        if decoder.plan is not None:  # the step's plan vector (StepDecoder.plan_of_step)
            step = state[0, :, -1]
            plan = decoder.plan_of_step(cond, step, self.plan_rows_of)  # [B, plan_dim]
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


def export_int8_step(model: CVAE, inputs: dict[str, torch.Tensor],
                     export_one: Callable[[nn.Module, dict[str, torch.Tensor], Path], None],
                     path: Path) -> None:
    """Write the int8 decoder step to ``path`` through ``export_one(graph, inputs, path)`` (the
    exporter's float32 export), then quantise its weight matrices in place."""
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "decoder_step_float.onnx"
        export_one(DecoderStepMatMuls(model, int8_plan=True), inputs, float_path)
        onnx.save(quantize_weights(onnx.load(str(float_path))), str(path))
