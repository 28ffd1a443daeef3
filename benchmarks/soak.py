"""Soak: play for a long time at a fast tempo with random morphs, and report clock drift,
lateness and memory growth (issue 5: drift < 1 ms, growth < 5 MB over 10 minutes).

    .venv/bin/python -m benchmarks.soak [--minutes 10] [--bpm 300]

Drift is measured from outside the engine: a Python thread polls `stats()["step"]` every
millisecond and timestamps each increment; with a constant tempo, step n should be played at
t0 + n * step_seconds. The residual (observed - ideal) is averaged over the first and the last
minute; drift is last minus first (the polling jitter, < 1 ms, averages out over ~1,200 steps).
Memory is the process's resident set (VmRSS) after a 20 s warm-up and at the end, before the
lateness log is copied out. The harness's own records are allocated before the warm-up (the step
times in preallocated arrays): a list of (step, time) tuples grew by about 1.5 MB over 10
minutes at 300 BPM, and was read as the engine's growth until 2026-12-07.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (bpm_option, count_option, one_model_run, parser_for, summary_us, verdict,
                               write_results)
from emolive.cli_options import number_in

EMOTIONS = ["happy", "tense", "sad", "calm", "excited", "peaceful", "happy:0.5,sad:0.5"]
DRIFT_TARGET_MS = 1.0
GROWTH_TARGET_MB = 5.0
WARMUP_S = 20.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class StepWatcher(threading.Thread):
    """Timestamps (monotonic seconds) of every change of the engine's played-step counter, in
    arrays allocated up front for ``capacity`` changes (later ones are not kept), so that the
    process's memory does not grow with the run."""

    def __init__(self, engine: Any, capacity: int) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        # Filled, not np.zeros: calloc'd pages would become resident only as the run writes them.
        self.steps = np.full(capacity, -1, dtype=np.int64)
        self.times = np.full(capacity, np.nan)
        self.count = 0
        self.running = True

    def run(self) -> None:
        last = -1
        while self.running:
            step = self.engine.stats()["step"]
            if step != last and self.count < len(self.steps):
                self.steps[self.count], self.times[self.count] = step, time.monotonic()
                self.count += 1
                last = step
            time.sleep(0.001)

    @property
    def samples(self) -> list[tuple[int, float]]:
        return list(zip(self.steps[:self.count].tolist(), self.times[:self.count].tolist()))


def drift_ms(samples: list[tuple[int, float]], step_s: float, window_s: float = 60.0) -> dict:
    """The mean timing residual of the first and the last ``window_s`` (at most a third of the
    run each, so that they never overlap: in a 1-minute run 60 s windows held the same samples
    and the drift read 0 by construction)."""
    steps = np.array([s for s, _ in samples], dtype=np.float64)
    times = np.array([t for _, t in samples])
    window_s = min(window_s, (times[-1] - times[0]) / 3.0)
    residual = times - times[0] - (steps - steps[0]) * step_s  # seconds, observed - ideal
    first = residual[times - times[0] < window_s]
    last = residual[times > times[-1] - window_s]
    return {"first_minute_ms": float(first.mean() * 1e3),
            "last_minute_ms": float(last.mean() * 1e3),
            "drift_ms": float((last.mean() - first.mean()) * 1e3),
            "residual_p99_ms": float(np.percentile(np.abs(residual - residual.mean()), 99) * 1e3),
            "window_s": float(window_s), "transitions": int(len(samples))}


def soak(model_dir: Path, minutes: float, bpm: float, seed: int) -> dict[str, Any]:
    from emolive import Engine

    rng = random.Random(seed)
    step_s = 60.0 / bpm / 4.0
    morphs = 0
    with Engine(model=model_dir, bpm=bpm, seed=seed) as engine:
        engine.play("calm")
        watcher = StepWatcher(engine, capacity=int(minutes * 60.0 / step_s * 1.1) + 1000)
        watcher.start()
        started = time.monotonic()
        end = started + minutes * 60.0
        rss_start = None
        while time.monotonic() < end:
            time.sleep(rng.uniform(1.0, 6.0))
            engine.morph(rng.choice(EMOTIONS), rng.choice(EMOTIONS), bars=rng.choice([1, 2, 4]))
            morphs += 1
            if rss_start is None and time.monotonic() - started >= WARMUP_S:
                rss_start = rss_mb()
        watcher.running = False
        watcher.join()
        stats = engine.stats()
        rss_end = rss_mb()  # before the lateness log is copied into a Python list
        lateness = engine.lateness_us()
        engine.stop()
        sounding = engine.stats()["sounding"]
    return {"minutes": minutes, "bpm": bpm, "morphs": morphs, "steps": int(stats["step"]),
            "notes_sent": int(stats["notes_sent"]), "late_notes": int(stats["late_notes"]),
            "sounding_after_stop": int(sounding), "lateness": summary_us(lateness),
            "drift": drift_ms(watcher.samples, step_s),
            "rss_mb": {"after_warmup": rss_start, "end": rss_end,
                       "growth": rss_end - (rss_start or rss_end)}}


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    # At least a minute: memory growth is measured from the end of the 20 s warm-up, and drift
    # compares the first and the last minute's timing (a third of a shorter run's each).
    parser.add_argument("--minutes", type=number_in(1.0, 1440.0, "--minutes"), default=10.0,
                        help="how long to play (default: %(default)s; at least 1)")
    parser.add_argument("--bpm", type=bpm_option(), default=300.0, help="tempo (default: %(default)s)")
    parser.add_argument("--seed", type=count_option("--seed", 0), default=7,
                        help="seed of the engine and of the morphs' times and emotions (default: %(default)s)")
    with one_model_run(parser, argv) as (args, info, model):
        result = soak(model.path, args.minutes, args.bpm, args.seed)
    result["model"] = model.label
    d, m, lat = result["drift"], result["rss_mb"], result["lateness"]
    result["targets"] = {
        f"drift {d['drift_ms']:+.3f} ms < {DRIFT_TARGET_MS} ms":
            verdict(abs(d["drift_ms"]), DRIFT_TARGET_MS),
        f"memory growth {m['growth']:+.2f} MB < {GROWTH_TARGET_MB} MB":
            verdict(m["growth"], GROWTH_TARGET_MB)}
    print(f"\n== soak: {args.minutes:g} min at {args.bpm:g} BPM, model {model.label}: "
          f"{result['steps']} steps, {result['notes_sent']} notes, {result['morphs']} morphs")
    print(f"lateness median {lat['median_us']:.1f} us, p99 {lat['p99_us']:.1f} us, max "
          f"{lat['max_us']:.1f} us; {result['late_notes']} note-ons > 1 ms late")
    print(f"step timing residual: first {d['window_s']:.0f} s {d['first_minute_ms']:+.3f} ms, last "
          f"{d['window_s']:.0f} s {d['last_minute_ms']:+.3f} ms ({d['transitions']} steps observed)")
    print(f"RSS {m['after_warmup']:.1f} MB after warm-up -> {m['end']:.1f} MB at the end; "
          f"{result['sounding_after_stop']} notes sounding after stop")
    for text, ok in result["targets"].items():
        print(f"  target {ok:6s} {text}")
    write_results("soak", {"machine": info, **result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
