"""Clock lateness: send time minus deadline of every 16th step, the engine's clock thread on the
null output (no port) against a plain Python sleep-loop scheduler keeping the same deadlines.

    .venv/bin/python -m benchmarks.clock [--seconds 60] [--bpm 240]

The engine plays the shipped default model if present (else a random model of the default size)
so that its generator thread decodes for real beside the clock. The Python loop computes
absolute deadlines (t0 + k * step) and `time.sleep`s until each, like a careful Python
scheduler would; it does no decoding, which only flatters it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import bpm_option, one_model_run, parser_for, summary_us, verdict, write_results
from emolive.cli_options import number_in

P99_TARGET_US = 200.0
RATIO_TARGET = 10.0


def step_seconds(bpm: float) -> float:
    return 60.0 / bpm / 4.0  # one 16th


def engine_lateness(model_dir: Path, seconds: float, bpm: float) -> dict[str, Any]:
    from emolive import Engine

    with Engine(model=model_dir, bpm=bpm, seed=1) as engine:
        engine.play("happy")
        time.sleep(seconds)
        stats = engine.stats()
        engine.stop()
        lateness = engine.lateness_us()
    return {"lateness_us": lateness, "notes_sent": stats["notes_sent"],
            "late_notes": stats["late_notes"], "steps": int(stats["step"])}


def python_loop_lateness(seconds: float, bpm: float) -> np.ndarray:
    """Sleep to absolute deadlines with time.sleep; lateness of each wake-up in microseconds."""
    step = step_seconds(bpm)
    n = int(seconds / step)
    out = np.empty(n)
    t0 = time.perf_counter() + step
    for k in range(n):
        deadline = t0 + k * step
        delay = deadline - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        out[k] = (time.perf_counter() - deadline) * 1e6
    return out


def run(model_dir: Path, label: str, seconds: float, bpm: float) -> dict[str, Any]:
    eng = engine_lateness(model_dir, seconds, bpm)
    loop = python_loop_lateness(seconds, bpm)
    e, p = summary_us(eng["lateness_us"]), summary_us(loop)
    ratio = p["p99_us"] / max(e["p99_us"], 1e-3)
    return {"model": label, "seconds": seconds, "bpm": bpm,
            "engine": {**e, "notes_sent": eng["notes_sent"], "late_notes": eng["late_notes"],
                       "steps": eng["steps"]},
            "python_loop": p, "p99_ratio": ratio,
            "targets": {
                f"engine lateness p99 {e['p99_us']:.1f} us <= {P99_TARGET_US:.0f} us":
                    verdict(e["p99_us"], P99_TARGET_US),
                f"{ratio:.1f}x better p99 than the Python loop >= {RATIO_TARGET:.0f}x":
                    verdict(ratio, RATIO_TARGET, lower_is_better=False)}}


def print_result(r: dict[str, Any]) -> None:
    print(f"\n== clock lateness, {r['seconds']:.0f} s at {r['bpm']:.0f} BPM 16ths, "
          f"model {r['model']}")
    print(f"{'scheduler':28s} {'n':>6s} {'median':>9s} {'p99':>9s} {'max':>9s}")
    for name, key in (("engine clock thread", "engine"), ("Python sleep loop", "python_loop")):
        s = r[key]
        print(f"{name:28s} {s['n']:6d} {s['median_us']:8.1f}u {s['p99_us']:8.1f}u "
              f"{s['max_us']:8.1f}u")
    e = r["engine"]
    print(f"engine: {e['steps']} steps, {e['notes_sent']} notes sent, {e['late_notes']} note-ons "
          f"> 1 ms late")
    for text, ok in r["targets"].items():
        print(f"  target {ok:6s} {text}")


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--seconds", type=number_in(1.0, 86400.0, "--seconds"), default=60.0,
                        help="how long each scheduler plays (default: %(default)s)")
    parser.add_argument("--bpm", type=bpm_option(), default=240.0, help="tempo (default: %(default)s)")
    with one_model_run(parser, argv) as (args, info, model):
        result = run(model.path, model.label, args.seconds, args.bpm)
    print_result(result)
    write_results("clock", {"machine": info, **result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
