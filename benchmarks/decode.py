"""Decode speed per 16th step and per bar (16 steps), batch 1, one thread, side by side:

- C++ engine, timed in C++ (`_core.Model.time_decode_steps`: the generator's batch-1 fast path,
  no Python between calls);
- C++ engine step (`_core.Model.time_generator_steps`: latent walk + decoder + note sampling, as
  the generator thread runs it);
- C++ through Python (`_core.Model.decode_step`, one Python call per step: shows the binding cost);
- Python onnxruntime (same decoder_step.onnx; one intra-op thread, spinning off, as the engine);
- PyTorch eager (`CVAE.decoder_step`, torch.set_num_threads(1), inference mode), float32 (the
  model as trained: the target's baseline) and through torch's dynamic int8 quantisation (for a
  like-for-like look at an int8 `decoder_step.onnx`; no target).

A bar is 16 consecutive steps (sums of consecutive per-step times).

    .venv/bin/python -m benchmarks.decode [--steps 8000]
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (STEPS_PER_BAR, ModelDir, bars_from_steps, count_option, machine,
                               parser_for, prepare_models, print_machine, summary_us, torch_model, verdict,
                               write_results)

STEP_P99_TARGET_US = 150.0
BAR_P99_TARGET_US = 2500.0
TORCH_RATIO_TARGET = 2.0
FRAME = 264
WARMUP = 50


def _inputs(z_dim: int, layers: int, hidden: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"prev": (rng.random((1, FRAME)) < 0.05).astype(np.float32),
            "z": rng.standard_normal((1, z_dim)).astype(np.float32),
            "emotion": np.full((1, 4), 0.25, dtype=np.float32),
            "state": np.zeros((layers, 1, hidden), dtype=np.float32)}


def _time_loop(step: Callable[[], None], n: int) -> np.ndarray:
    """Microseconds of each of n calls of ``step`` after WARMUP untimed calls."""
    for _ in range(WARMUP):
        step()
    out = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        step()
        out[i] = (clock() - t0) / 1000.0
    return out


def time_cpp_python(core_model: Any, x: dict[str, np.ndarray], n: int) -> np.ndarray:
    state = [x["state"]]

    def step() -> None:
        state[0] = core_model.decode_step(x["prev"], x["z"], x["emotion"], state[0])[3]

    return _time_loop(step, n)


def time_onnxruntime(path: Path, x: dict[str, np.ndarray], n: int) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path / "decoder_step.onnx"), opts,
                                   providers=["CPUExecutionProvider"])
    feeds = dict(x)

    def step() -> None:
        feeds["state"] = session.run(None, feeds)[3]

    return _time_loop(step, n)


def time_torch(model: ModelDir, x: dict[str, np.ndarray], n: int,
               int8: bool = False) -> tuple[np.ndarray, float]:
    """Per-step times, and the largest |eager - onnxruntime| on the first step's onset logits
    (near 0 means the eager twin has the very weights of float32 ONNX files). ``int8``: the
    twin through PyTorch's own dynamic int8 quantisation of its GRU and Linear layers, but for
    a per-step plan's projection, of which a step gathers only its slot's rows (a packed int8
    Linear has no weight tensor to gather from), so it stays float32."""
    import onnxruntime as ort
    import torch

    torch.set_num_threads(1)
    net = torch_model(model)
    if int8:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
            plan = net.decoder.plan
            net = torch.ao.quantization.quantize_dynamic(
                net, {torch.nn.GRU, torch.nn.Linear}, dtype=torch.qint8)
            net.decoder.plan = plan
    t = {k: torch.from_numpy(v) for k, v in x.items()}
    state = [t["state"]]
    with torch.inference_mode():
        eager = net.decoder_step(t["prev"], t["z"], t["emotion"], t["state"])[0].numpy()
        ref = ort.InferenceSession(str(model.path / "decoder_step.onnx"),
                                   providers=["CPUExecutionProvider"]).run(None, x)[0]
        diff = float(np.max(np.abs(eager - ref)))

        def step() -> None:
            state[0] = net.decoder_step(t["prev"], t["z"], t["emotion"], state[0])[3]

        return _time_loop(step, n), diff


def bench_model(model: ModelDir, n: int, rounds: int) -> dict[str, Any]:
    """Each backend runs ``n`` steps, in ``rounds`` interleaved slices, so that a burst of load
    from other processes falls on every backend alike rather than on one."""
    from emolive.engine import load_model

    core_model = load_model(model.path)
    x = _inputs(core_model.z_dim, core_model.layers, core_model.hidden)
    per = n // rounds  # >= STEPS_PER_BAR (main checks)
    backends: dict[str, Callable[[], np.ndarray]] = {
        "C++ (timed in C++)": lambda: np.asarray(core_model.time_decode_steps(per, WARMUP)),
        "C++ engine step (walk+decode+sample)": lambda: np.asarray(
            core_model.time_generator_steps(per, WARMUP, 0)),
        "C++ via Python call": lambda: time_cpp_python(core_model, x, per),
        "Python onnxruntime": lambda: time_onnxruntime(model.path, x, per),
        "PyTorch eager": lambda: time_torch(model, x, per)[0],
        "PyTorch eager, int8 (quantize_dynamic)": lambda: time_torch(model, x, per, int8=True)[0],
    }
    times: dict[str, list[np.ndarray]] = {name: [] for name in backends}
    for _ in range(rounds):
        for name, run in backends.items():
            times[name].append(run())
    diff = time_torch(model, x, 1)[1]
    rows = {name: np.concatenate(parts) for name, parts in times.items()}
    card = json.loads((model.path / "model_card.json").read_text())
    precision = card.get("precision", {}).get("decoder_step", "float32")
    return {"model": model.label, "path": str(model.path), "torch_twin": model.torch_source,
            "decoder_step_precision": precision,
            "torch_vs_onnx_max_abs_diff": diff,
            "sizes": {"z": core_model.z_dim, "layers": core_model.layers,
                      "hidden": core_model.hidden},
            "rows": {name: {"step": summary_us(t), "bar": summary_us(bars_from_steps(t))}
                     for name, t in rows.items()}}


def print_model(result: dict[str, Any]) -> None:
    rows = result["rows"]
    cpp = rows["C++ (timed in C++)"]
    print(f"\n== {result['model']} (z {result['sizes']['z']}, hidden {result['sizes']['hidden']},"
          f" layers {result['sizes']['layers']}); eager twin: {result['torch_twin']}, "
          f"max |eager-onnx| {result['torch_vs_onnx_max_abs_diff']:.2e}")
    print(f"{'backend':40s} {'step med':>9s} {'step p99':>9s} {'bar med':>9s} {'bar p99':>9s}"
          f" {'x C++ (step med / bar p99)':>28s}")
    for name, r in rows.items():
        ratio_med = r["step"]["median_us"] / cpp["step"]["median_us"]
        ratio_bar = r["bar"]["p99_us"] / cpp["bar"]["p99_us"]
        print(f"{name:40s} {r['step']['median_us']:8.1f}u {r['step']['p99_us']:8.1f}u "
              f"{r['bar']['median_us']:8.0f}u {r['bar']['p99_us']:8.0f}u "
              f"{ratio_med:13.2f} / {ratio_bar:5.2f}")


def targets(result: dict[str, Any]) -> dict[str, str]:
    """Issue 2's decode targets, judged on the C++ engine timed in C++."""
    rows = result["rows"]
    cpp, ort_, eager = (rows["C++ (timed in C++)"], rows["Python onnxruntime"],
                        rows["PyTorch eager"])
    torch_ratio = eager["step"]["median_us"] / cpp["step"]["median_us"]
    ort_ratio = ort_["step"]["median_us"] / cpp["step"]["median_us"]
    int8_ratio = (rows["PyTorch eager, int8 (quantize_dynamic)"]["step"]["median_us"]
                  / cpp["step"]["median_us"])
    return {
        f"step p99 {cpp['step']['p99_us']:.1f} us <= {STEP_P99_TARGET_US:.0f} us":
            verdict(cpp["step"]["p99_us"], STEP_P99_TARGET_US),
        f"bar p99 {cpp['bar']['p99_us'] / 1000:.3f} ms <= {BAR_P99_TARGET_US / 1000} ms":
            verdict(cpp["bar"]["p99_us"], BAR_P99_TARGET_US),
        f"{torch_ratio:.2f}x faster than PyTorch eager (median step) >= 2x":
            verdict(torch_ratio, TORCH_RATIO_TARGET, lower_is_better=False),
        f"{ort_ratio:.2f}x Python onnxruntime's speed (median step) >= 1x":
            verdict(ort_ratio, 1.0, lower_is_better=False),
        f"{int8_ratio:.2f}x faster than PyTorch eager int8 (median step; no target)": "INFO",
    }


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--steps", type=count_option("--steps", STEPS_PER_BAR), default=8000,
                        help="timed steps per backend (at least a bar, 16, per round)")
    parser.add_argument("--rounds", type=count_option("--rounds"), default=4,
                        help="interleaved slices per backend")
    parser.add_argument("--work", type=Path, default=None, help="folder for the random models")
    args = parser.parse_args(argv)
    if args.steps < STEPS_PER_BAR * args.rounds:
        parser.error(f"--steps {args.steps} gives some of the {args.rounds} rounds less than a "
                     f"bar ({STEPS_PER_BAR} steps): give at least {STEPS_PER_BAR * args.rounds}")
    if args.work is not None and not args.work.is_dir():
        parser.error(f"--work {args.work} is not a folder")
    info = machine()
    print_machine(info)
    with tempfile.TemporaryDirectory() as tmp:
        models = prepare_models(args.work or Path(tmp))
        results = []
        for model in models:
            result = bench_model(model, args.steps, args.rounds)
            result["targets"] = targets(result)
            print_model(result)
            for text, ok in result["targets"].items():
                print(f"  target {ok:6s} {text}")
            results.append(result)
    write_results("decode", {"machine": info, "steps": args.steps, "rounds": args.rounds,
                             "models": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
