"""Offline generation throughput and the latency of a live change.

- `Engine.generate_many` (the product path for the target: many pieces decoded in batches of up
  to 64 streams over the cores, each turned into a `mido.MidiFile`) in bars per second, and its
  C++ part alone (events arrays); how many of its pieces equal `generate` with the same seed;
- the single-stream baseline: `Engine.generate` (C++ generator, GIL released), one stream, and
  one stream per core (threads, each its own engine), with the batched path's ratio to it;
- change-to-effect latency: time from a live call to the first note that obeys it. An emotion
  change has no note-level signature, so it is measured through `set_key`, which travels the
  same command queue and the same one-beat lookahead: the time from `set_key("C")` to the last
  note-on outside C major (the recording output's timestamps). Target: <= 1 beat at 120 BPM.

    .venv/bin/python -m benchmarks.generation
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (count_option, machine, parser_for, prepare_models, print_machine, verdict,
                               write_results)
from emolive.cli_options import integer_in
from emolive.engine import MAX_GENERATE_BARS, MAX_GENERATE_COUNT

BARS_TARGET = 2000.0
C_MAJOR = {0, 2, 4, 5, 7, 9, 11}


def generate_rate(model: Path, bars: int, streams: int) -> float:
    from emolive import Engine

    engines = [Engine(model=model, seed=i) for i in range(streams)]
    engines[0].generate(2)  # warm-up
    threads = [threading.Thread(target=e.generate, args=(bars,)) for e in engines]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for e in engines:
        e.close()
    return bars * streams / elapsed


def core_generate_rate(model: Path, bars: int) -> tuple[float, float]:
    """(bars/s, note events per bar) of the C++ generate alone: the events array, before
    Python turns it into mido messages."""
    from emolive import Engine
    from emolive.emotions import parse_emotion

    with Engine(model=model, seed=0) as engine:
        weights = parse_emotion("happy")
        engine._core.generate(32, weights, 1, None, 0)  # warm-up
        started = time.perf_counter()
        events = engine._core.generate(bars * 16, weights, 1, None, 0)
        elapsed = time.perf_counter() - started
    return bars / elapsed, len(events) / bars


def generate_many_rates(model: Path, count: int, bars: int, checked: int) -> dict[str, float]:
    """Engine.generate_many: bars/s to MidiFiles, bars/s of its C++ part (events arrays), and
    how many of the first `checked` pieces equal generate() with the same seed (events)."""
    from emolive import Engine
    from emolive.emotions import parse_emotion

    checked = min(checked, count)
    with Engine(model=model, seed=0) as engine:
        engine.generate_many(2, 1)  # warm-up
        started = time.perf_counter()
        engine.generate_many(count, bars, "happy")
        to_midi = count * bars / (time.perf_counter() - started)
        weights = parse_emotion("happy")
        seeds = list(range(count))
        started = time.perf_counter()
        pieces = engine._core.generate_many(bars * 16, weights, seeds)
        core = count * bars / (time.perf_counter() - started)
        equal = sum(np.array_equal(pieces[s], engine._core.generate(bars * 16, weights, s))
                    for s in seeds[:checked])
    return {"generate_many": to_midi, "core_generate_many": core, "pieces_checked": checked,
            "pieces_equal_to_generate": equal}


def key_change_latency(model: Path, trials: int, bpm: float) -> dict[str, Any]:
    """Seconds from ``set_key("C", "major")`` to the last note-on outside C major, over
    ``trials`` trials that can show a latency: ones where notes outside C major were playing in
    the beat before the call. A trial without them (the music happened to be in C major) is
    skipped and counted, and another is played, up to 4 x ``trials`` in all."""
    from emolive import Engine

    rng = random.Random(0)
    beat_s = 60.0 / bpm
    latencies, skipped = [], 0
    with Engine(model=model, bpm=bpm, seed=11, record=True, temperature=2.0) as engine:
        while len(latencies) < trials and len(latencies) + skipped < 4 * trials:
            engine.set_key(None)
            play_at = time.monotonic()  # the recording's origin, to within play()'s duration
            engine.play("excited")
            time.sleep(2.0 + rng.random() * beat_s)  # a random phase within the beat
            call_s = time.monotonic() - play_at
            engine.set_key("C", "major")
            time.sleep(4 * beat_s)
            engine.stop()
            outside = [t for t, m in engine.recorded() if len(m) == 3 and m[0] & 0xF0 == 0x90
                       and m[2] > 0 and (m[1] % 12) not in C_MAJOR]
            if not any(call_s - beat_s <= t < call_s for t in outside):
                skipped += 1
                continue
            latencies.append(max([t - call_s for t in outside if t >= call_s], default=0.0))
    worst = max(latencies, default=None)
    if latencies:
        target = {f"change heard within {worst:.3f} s <= 1 beat ({beat_s:.3f} s)":
                  verdict(worst, beat_s)}
    else:
        target = {f"no trial of {skipped} could show a latency": "MISSED"}
    return {"bpm": bpm, "beat_s": beat_s, "trials": len(latencies), "skipped_in_key": skipped,
            "latency_s": latencies, "max_s": worst, "target": target,
            "median_s": float(np.median(latencies)) if latencies else None}


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--bars", type=integer_in(1, MAX_GENERATE_BARS, "--bars"), default=200,
                        help="bars per single-stream run")
    parser.add_argument("--count", type=integer_in(1, MAX_GENERATE_COUNT, "--count"), default=128,
                        help="pieces per generate_many run")
    parser.add_argument("--piece-bars", type=integer_in(1, MAX_GENERATE_BARS, "--piece-bars"), default=16,
                        help="bars per generate_many piece")
    parser.add_argument("--trials", type=count_option("--trials"), default=8,
                        help="change-latency trials that show a latency")
    args = parser.parse_args(argv)
    if args.count * args.piece_bars > MAX_GENERATE_BARS:
        parser.error(f"--count x --piece-bars must be at most {MAX_GENERATE_BARS} bars in all")
    info = machine()
    print_machine(info)
    results: dict[str, Any] = {"machine": info, "models": []}
    with tempfile.TemporaryDirectory() as tmp:
        models = prepare_models(Path(tmp))
        for model in models:
            core_rate, events_per_bar = core_generate_rate(model.path, args.bars)
            row = {"model": model.label, "core_generate": core_rate,
                   "events_per_bar": events_per_bar,
                   "generate_1_stream": generate_rate(model.path, args.bars, 1),
                   "generate_2_streams": generate_rate(model.path, args.bars, 2),
                   # Dense random models spend ~1 ms per 100 events in mido: fewer pieces.
                   "count": args.count if events_per_bar < 200 else max(2, args.count // 8),
                   "piece_bars": args.piece_bars}
            row.update(generate_many_rates(model.path, row["count"], args.piece_bars, 16))
            single = max(row["generate_1_stream"], row["generate_2_streams"])
            many = row["generate_many"]
            row["ratio_to_single_stream"] = many / single
            row["target"] = {
                f"Engine.generate_many (to MidiFiles) {many:.0f} bars/s >= {BARS_TARGET:.0f}":
                    verdict(many, BARS_TARGET, lower_is_better=False)}
            results["models"].append(row)
            print(f"\n== offline generation, {model.label} ({events_per_bar:.0f} note events per "
                  f"bar): Engine.generate_many {many:.0f} bars/s to MidiFiles "
                  f"({row['count']} pieces x {args.piece_bars} bars; C++ part "
                  f"{row['core_generate_many']:.0f} bars/s), {row['ratio_to_single_stream']:.1f}x "
                  f"the single-stream Engine.generate: {row['generate_1_stream']:.0f} bars/s "
                  f"(1 stream), {row['generate_2_streams']:.0f} bars/s (2 streams, 2 threads; "
                  f"C++ part of 1 stream {core_rate:.0f} bars/s); pieces equal to generate() "
                  f"with the same seed: {row['pieces_equal_to_generate']}/{row['pieces_checked']}")
            for text, ok in row["target"].items():
                print(f"  target {ok:6s} {text}")
        latency = key_change_latency(models[-1].path, args.trials, 120.0)
    results["change_latency"] = latency
    print(f"\n== change-to-effect latency at 120 BPM (via set_key), {latency['trials']} trials "
          f"({latency['skipped_in_key']} skipped: no note outside C major in the beat before the "
          "call): " + ", ".join(f"{x * 1000:.0f}" for x in latency["latency_s"]) + " ms")
    for text, ok in latency["target"].items():
        print(f"  target {ok:6s} {text}")
    write_results("generation", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
