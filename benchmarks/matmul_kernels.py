"""One weight matrix, three ways to multiply it in ONNX Runtime, at batch 1 and batch 64.

Why the shipped model has two step files (docs/model-contract.md, "The batch step"): live play
decodes one row per step and offline generation up to 64. For a random [K, N] matrix (default
472 x 1539, the shipped decoder's input-to-gates product) this times, in interleaved rounds on
one thread:
- float32 `MatMul`;
- int8 `MatMulNBits` (`decoder_step`'s form: the export's blocks of `quantize.BLOCK_SIZE`
  weights per scale, 128 since 2026-12-05; accuracy_level 4);
- int8 `MatMulInteger` (weights stored as uint8) with inputs quantised per row
  (`decoder_step_batch`'s form, made by the same `quantize_rows` the export uses);
and prints median and p99 per product, with each form's largest difference from float32.

    .venv/bin/python -m benchmarks.matmul_kernels [--rows 472 --cols 1539 --rounds 6]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.common import count_option, machine, parser_for, print_machine, summary_us, write_results

BATCHES = (1, 64)


def float_graph(weight: np.ndarray) -> Any:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rows, cols = weight.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="product")], "product",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", cols])],
        [numpy_helper.from_array(weight, "w")])
    return helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])


def forms(weight: np.ndarray) -> dict[str, Any]:
    """The three ONNX models of ``x @ weight``, by name."""
    from emolive.training.quantize import quantize_rows, quantize_weights

    return {"float32 MatMul": float_graph(weight),
            "int8 MatMulNBits (decoder_step)": quantize_weights(float_graph(weight)),
            "int8 (uint8-stored) MatMulInteger per row (decoder_step_batch)": quantize_rows(float_graph(weight))}


def session(model: Any) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def time_forms(weight: np.ndarray, rounds: int, runs: int) -> list[dict[str, Any]]:
    sessions = {name: session(model) for name, model in forms(weight).items()}
    rng = np.random.default_rng(1)
    rows = []
    for batch in BATCHES:
        x = rng.standard_normal((batch, weight.shape[0])).astype(np.float32)
        exact = x @ weight
        samples: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(rounds):  # interleaved, so load from elsewhere falls on every form
            for name, s in sessions.items():
                s.run(None, {"x": x})  # warm
                for _ in range(max(1, runs // batch)):
                    started = time.perf_counter()
                    s.run(None, {"x": x})
                    samples[name].append((time.perf_counter() - started) * 1e6)
        for name, s in sessions.items():
            diff = float(np.abs(s.run(None, {"x": x})[0] - exact).max())
            rows.append({"batch": batch, "form": name, **summary_us(samples[name]),
                         "max_abs_diff_from_float32": diff})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--rows", type=count_option("--rows"), default=472,
                        help="K: the weight's input rows")
    parser.add_argument("--cols", type=count_option("--cols"), default=1539,
                        help="N: its output columns")
    parser.add_argument("--rounds", type=count_option("--rounds"), default=6,
                        help="interleaved rounds of the three kernels (default: %(default)s)")
    parser.add_argument("--runs", type=count_option("--runs"), default=640,
                        help="products per round at batch 1 "
                        "(divided by the batch size for larger batches)")
    args = parser.parse_args(argv)
    info = machine()
    print_machine(info)
    weight = (np.random.default_rng(0).standard_normal((args.rows, args.cols)) * 0.05).astype(
        np.float32)
    rows = time_forms(weight, args.rounds, args.runs)
    print(f"| batch | product [B, {args.rows}] x [{args.rows}, {args.cols}] | median us | p99 us "
          "| max abs diff from float32 |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['form']} | {r['median_us']:.1f} | {r['p99_us']:.1f} | "
              f"{r['max_abs_diff_from_float32']:.4f} |")
    write_results("matmul_kernels", {"machine": info, "rows": args.rows, "cols": args.cols,
                                     "results": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
