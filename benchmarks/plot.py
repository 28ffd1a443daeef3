"""The figure of docs/benchmarks.md, from benchmarks/results/*.json: decode time per step by
backend and model (median and p99), and the clock lateness of the engine against the Python
sleep loop.

    .venv/bin/python -m benchmarks.plot    # writes docs/benchmarks.png

With EMOLIVE_BENCH_RESULTS set, the figure goes beside those results, never over the one the
docs show.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from benchmarks.common import REPO, RESULTS, RESULTS_ELSEWHERE
from emolive.files import replaced_on_success

OUT = RESULTS / "benchmarks.png" if RESULTS_ELSEWHERE else REPO / "docs" / "benchmarks.png"
NEEDED = ("decode.json", "clock.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"the PNG to write (default {OUT})")
    args = parser.parse_args(argv)
    if not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: no folder {args.out.parent}")
    missing = [name for name in NEEDED if not (RESULTS / name).is_file()]
    if missing:
        parser.error(f"no {' or '.join(missing)} in {RESULTS}: run python -m benchmarks.run_all "
                     "(or the decode and clock benchmarks) first")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decode = json.loads((RESULTS / "decode.json").read_text())
    clock = json.loads((RESULTS / "clock.json").read_text())
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    models = decode["models"]
    backends = list(models[0]["rows"])
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        xs = [b + i * width for b in range(len(backends))]
        med = [model["rows"][b]["step"]["median_us"] for b in backends]
        p99 = [model["rows"][b]["step"]["p99_us"] for b in backends]
        left.bar(xs, med, width, label=f"{model['model']} median")
        left.scatter(xs, p99, marker="_", s=200, color="black")
    left.axhline(150, color="red", linestyle="--", linewidth=1, label="step p99 target 150 us")
    left.set_xticks([b + 0.4 - width / 2 for b in range(len(backends))])
    left.set_xticklabels([textwrap.fill(b, 16) for b in backends], fontsize=7)
    left.set_ylabel("microseconds per 16th step (bars: median, dash: p99)")
    left.set_yscale("log")
    left.set_title("decode step, batch 1, one thread"
                   + (" (UNDER LOAD)" if decode["machine"]["under_load"] else ""))
    left.legend(fontsize=7)
    names = ["engine clock thread", "Python sleep loop"]
    keys = ["engine", "python_loop"]
    for j, stat in enumerate(("median_us", "p99_us", "max_us")):
        right.bar([k + j * 0.27 for k in range(2)], [clock[k][stat] for k in keys], 0.27,
                  label=stat.replace("_us", ""))
    right.axhline(200, color="red", linestyle="--", linewidth=1, label="p99 target 200 us")
    right.set_xticks([0.27, 1.27])
    right.set_xticklabels(names)
    right.set_yscale("log")
    right.set_ylabel("lateness, microseconds (send time - deadline)")
    right.set_title(f"clock lateness, {clock['seconds']:.0f} s at {clock['bpm']:.0f} BPM 16ths"
                    + (" (UNDER LOAD)" if clock.get("machine", {}).get("under_load") else ""))
    right.legend(fontsize=7)
    # Each part's own load mark (the parts run one after the other: one may be under load alone).
    fig.suptitle(f"{decode['machine']['cpu']}, {decode['machine']['cores']} cores")
    fig.tight_layout()
    with replaced_on_success(args.out) as written:  # a failed write keeps the plot there before
        fig.savefig(written, dpi=110, format="png")
    print(f"plot written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
