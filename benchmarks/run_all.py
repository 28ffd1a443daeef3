"""Every benchmark in one command, one after the other (so they do not disturb each other),
then the plot for docs/benchmarks.md:

    .venv/bin/python -m benchmarks.run_all            # about 6 minutes on 2 cores
    EMOLIVE_BENCH_RESULTS=/tmp/bench .venv/bin/python -m benchmarks.run_all --quick  # smoke check

The soak (10 minutes) is separate: `python -m benchmarks.soak`.
Each part prints its table and targets and writes benchmarks/results/<part>.json.
"""

from __future__ import annotations


from benchmarks import clock, decode, generation, live, plot
from benchmarks.common import RESULTS, RESULTS_ELSEWHERE, parser_for


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (smoke check)")
    args = parser.parse_args(argv)
    quick = args.quick
    if quick and not RESULTS_ELSEWHERE:  # its short runs would replace the figures the docs quote
        parser.error("--quick writes its results elsewhere: give EMOLIVE_BENCH_RESULTS=DIR "
                     f"(else they would replace {RESULTS}/*.json, which docs/benchmarks.md quotes)")
    decode.main(["--steps", "2000" if quick else "8000"])
    clock.main(["--seconds", "10" if quick else "60"])
    generation.main(["--bars", "40" if quick else "200", "--trials", "3" if quick else "8"])
    live.main(["--runs", "2" if quick else "10", "--seconds", "5" if quick else "20"])
    # A quick run must not replace the figure docs/benchmarks.md shows: it goes with the JSON
    # (as every run's does while EMOLIVE_BENCH_RESULTS points elsewhere: plot.OUT).
    plot.main(["--out", str(RESULTS / "benchmarks.png")] if quick else [])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
