"""Storm: random play/stop/emotion/morph/tempo/temperature/key/close (and reads of stats,
recording and state) from two Python threads against one Engine, in waves.

After each wave the main thread stops the engine and checks: no sounding notes in the engine's
tracker and, with the recording output, every note-on of the recording paired. A wave in which
a thread closed the engine ends with a check of the tracker and a fresh engine.

Run as a script (tests run it in a subprocess, so a crash is a failure, not a lost pytest):

    .venv/bin/python tests/reliability/storm.py --model DIR --ops 10000 [--port NAME] [--seed 1]

It prints one JSON line with the counts and the problems found (empty list: all good).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from midi_check import check_pairing  # noqa: E402

EMOTIONS = ["happy", "tense", "sad", "calm", "Q1", "Q3", "excited", "peaceful",
            "happy:0.6,calm:0.4", "sad:0.5,tense:0.5"]
# Relative frequencies of the operations; close is rare so that most waves play for a while.
OPS = {"play": 8, "stop": 5, "set_emotion": 8, "morph": 6, "set_bpm": 6, "set_temperature": 4,
       "set_key": 3, "stats": 6, "recorded": 2, "state": 4, "close": 0.2}


def random_op(engine: Any, rng: random.Random, record: bool) -> str:
    name = rng.choices(list(OPS), weights=list(OPS.values()))[0]
    if name == "recorded" and not record:
        name = "stats"  # recorded() is only for engines made with record=True
    emotion = rng.choice(EMOTIONS)
    if name == "play":
        engine.play(emotion)
    elif name == "stop":
        engine.stop()
    elif name == "set_emotion":
        engine.set_emotion(emotion, bars=rng.choice([0, 0, 0.25, 1, 4]))
    elif name == "morph":
        engine.morph(emotion, rng.choice(EMOTIONS), bars=rng.choice([0, 0.5, 2, 8]))
    elif name == "set_bpm":
        engine.set_bpm(rng.uniform(20.0, 400.0))
    elif name == "set_temperature":
        engine.set_temperature(rng.uniform(0.05, 5.0))
    elif name == "set_key":
        key = rng.choice([None, "C", "F#", "Bb"])
        engine.set_key(key, rng.choice(["major", "minor"]) if key else None)  # None undoes both
    elif name == "stats":
        engine.stats()
    elif name == "recorded":
        engine.recorded()
    elif name == "state":
        _ = engine.is_playing, engine.emotion
    else:
        engine.close()
    return name


def worker(engine: Any, ops: int, seed: int, record: bool, counts: Counter,
           problems: list[str]) -> None:
    from emolive import EngineError

    rng = random.Random(seed)
    for _ in range(ops):
        try:
            counts[random_op(engine, rng, record)] += 1
        except EngineError as err:
            if "closed" not in str(err):
                problems.append(f"unexpected EngineError: {err}")
            counts["refused: closed"] += 1
        except Exception as err:  # noqa: BLE001 - any other exception is a finding
            problems.append(f"{type(err).__name__}: {err}")
        time.sleep(rng.random() * 0.01)  # 0..10 ms: let the clock send notes between ops


def check_wave(engine: Any, record: bool, problems: list[str], totals: Counter) -> None:
    try:
        engine.stop()
    except Exception as err:  # noqa: BLE001
        problems.append(f"stop after wave: {type(err).__name__}: {err}")
    stats = engine.stats()
    if stats["sounding"] != 0:
        problems.append(f"{stats['sounding']} notes sounding after stop")
    if stats.get("port_error"):
        problems.append(f"port error: {stats['port_error']}")
    if record:  # since the wave's last play(); empty if a thread closed the engine
        pairing = check_pairing(m for _, m in engine.recorded())
        totals["recorded note-ons"] += pairing.note_ons
        if not pairing.ok:
            problems.append(f"recording not paired: {pairing.describe()}")
    totals["notes_sent"] += stats["notes_sent"]


def run_storm(model: str, ops: int, seed: int, port: str | None, waves: int,
              threads: int = 2) -> dict[str, Any]:
    from emolive import Engine

    counts: Counter = Counter()
    totals: Counter = Counter()
    problems: list[str] = []
    record = port is None
    per_thread = max(1, ops // (waves * threads))
    started = time.monotonic()
    engine = None
    for wave in range(waves):
        engine = Engine(model=model, port=port, record=record, bpm=300.0, seed=seed + wave)
        engine.play("happy")
        pool = [threading.Thread(target=worker, args=(engine, per_thread,
                                                      seed * 1000 + wave * 10 + i, record,
                                                      counts, problems))
                for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        check_wave(engine, record, problems, totals)
        engine.close()
        after = engine.stats()
        if after["sounding"] != 0:
            problems.append(f"{after['sounding']} notes sounding after close")
    return {"ops": sum(counts.values()), "waves": waves, "threads": threads,
            "seconds": round(time.monotonic() - started, 2), "counts": dict(counts),
            "notes_sent": totals["notes_sent"],
            "recorded_note_ons": totals["recorded note-ons"], "problems": problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--waves", type=int, default=0, help="default: one per 100 ops")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", default=None, help="play into this port (no recording)")
    args = parser.parse_args(argv)
    waves = args.waves or max(1, args.ops // 100)
    result = run_storm(args.model, args.ops, args.seed, args.port, waves)
    print(json.dumps(result))
    return 0 if not result["problems"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
