"""Two exported models side by side: the C++ decode step and offline generation, interleaved.

For a change to the exported graph (or the weights' precision) the baseline is the model
before the change, on the same machine at the same time: each figure alternates between the
two models in short rounds, so that a burst of load from elsewhere falls on both alike.

    .venv/bin/python -m benchmarks.compare_models BASELINE_DIR CANDIDATE_DIR [--rounds 8]

Prints, per model, the C++ decode step (`time_decode_steps`, batch 1, timed in C++, in
microseconds: median and p99), a bar's p99 (16 consecutive steps, milliseconds) and
`Engine.generate_many` in bars per second (and its C++ part), then the candidate's ratios to
the baseline. Results go to ``benchmarks/results/compare_models.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (STEPS_PER_BAR, bars_from_steps, count_option, machine, print_machine,
                               parser_for, summary_us, write_results)
from benchmarks.generation import generate_many_rates
from emolive.cli_options import integer_in
from emolive.engine import MAX_GENERATE_BARS, MAX_GENERATE_COUNT, ModelError, load_model

WARMUP = 200  # untimed steps before each timed round


def compare(paths: list[Path], rounds: int, steps: int, count: int,
            bars: int) -> list[dict[str, Any]]:
    models = [load_model(path) for path in paths]
    step_us: list[list[float]] = [[] for _ in paths]
    rates: list[list[dict[str, float]]] = [[] for _ in paths]
    for _ in range(rounds):
        for i, (path, model) in enumerate(zip(paths, models)):
            step_us[i].extend(np.asarray(model.time_decode_steps(steps, WARMUP)).tolist())
            rates[i].append(generate_many_rates(path, count, bars, checked=0))
    results = []
    for path, times, rate in zip(paths, step_us, rates):
        bar_us = bars_from_steps(np.asarray(times))
        results.append({"model": str(path), "step_us": summary_us(times),
                        "bar_p99_ms": float(np.percentile(bar_us, 99)) / 1000.0,
                        "generate_many_bars_per_s": float(np.median(
                            [r["generate_many"] for r in rate])),
                        "core_generate_many_bars_per_s": float(np.median(
                            [r["core_generate_many"] for r in rate]))})
    return results


def print_comparison(results: list[dict[str, Any]]) -> None:
    print("| model | step median us | step p99 us | bar p99 ms | generate_many bars/s (C++ part) |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['step_us']['median_us']:.1f} | {r['step_us']['p99_us']:.1f} | "
              f"{r['bar_p99_ms']:.2f} | {r['generate_many_bars_per_s']:,.0f} "
              f"({r['core_generate_many_bars_per_s']:,.0f}) |")
    base, new = results[0], results[1]

    def ratio(*keys: str) -> float:  # the candidate's figure over the baseline's
        a, b = new, base
        for key in keys:
            a, b = a[key], b[key]
        return a / b

    print(f"candidate / baseline: step median {ratio('step_us', 'median_us'):.3f}x, "
          f"step p99 {ratio('step_us', 'p99_us'):.3f}x, bar p99 {ratio('bar_p99_ms'):.3f}x, "
          f"generate_many {ratio('generate_many_bars_per_s'):.3f}x "
          f"(C++ part {ratio('core_generate_many_bars_per_s'):.3f}x)")


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("baseline", type=Path, help="model directory before the change")
    parser.add_argument("candidate", type=Path, help="model directory after the change")
    parser.add_argument("--rounds", type=count_option("--rounds"), default=8,
                        help="interleaved rounds per model")
    parser.add_argument("--steps", type=count_option("--steps", STEPS_PER_BAR), default=1000,
                        help="timed decode steps per round (at least a bar, 16)")
    parser.add_argument("--count", type=integer_in(1, MAX_GENERATE_COUNT, "--count"), default=128,
                        help="generate_many pieces per round")
    parser.add_argument("--bars", type=integer_in(1, MAX_GENERATE_BARS, "--bars"), default=16,
                        help="bars per generate_many piece")
    args = parser.parse_args(argv)
    if args.count * args.bars > MAX_GENERATE_BARS:
        parser.error(f"--count x --bars must be at most {MAX_GENERATE_BARS} bars in all")
    for path in (args.baseline, args.candidate):
        if not (path / "model_card.json").is_file():
            parser.error(f"{path} is not an exported model directory (no model_card.json)")
        try:
            load_model(path)
        except ModelError as err:  # a card or ONNX file the engine refuses
            parser.error(str(err))
    info = machine()
    print_machine(info)
    results = compare([args.baseline, args.candidate], args.rounds, args.steps, args.count,
                      args.bars)
    print_comparison(results)
    write_results("compare_models", {"machine": info, "rounds": args.rounds,
                                     "steps": args.steps, "count": args.count, "bars": args.bars,
                                     "models": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
