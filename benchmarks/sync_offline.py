"""Following a MIDI clock through JACK periods, simulated: how steady the tempo reads, how fast a
change is followed, and how far from the master the engine plays.

    .venv/bin/python -m benchmarks.sync_offline

Runs the real `ClockSync` (tempo line, jitter band, phase lock) against `tests.clock_master`:
a master on exact times, ticks stamped the way RtMidi's JACK input stamps them (the process
callback after they were sent: late by up to a period, plus 0.3 ms of noise each way) and an
engine that keeps exact time at the tempo it is given. No real time passes, so the figures are
the algorithm's, the same on every machine; `benchmarks.sync_follow` measures it through a
real JACK server. Phase error: engine minus master at the master's true tick times (negative:
behind; with large periods it is about the ticks' mean lateness, which nothing can see).
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import parser_for
from tests.clock_master import SAMPLE_RATE, delivered, follow, tick_times

PERIODS = (64, 256, 1024, 2048)


def steady(period: int, bpm: float) -> str:
    times = tick_times([(64, bpm)])
    followed = follow(times, delivered(times, period, seed=1))
    after_two = np.array([b for b in followed.bpm[48:] if b is not None])
    last = np.array(followed.bpm[-32 * 24:])
    error_ms = np.array(followed.error_ticks[-32 * 24:]) * 60_000.0 / (bpm * 24)
    return (f"steady {bpm:5.1f}: tempo read from beat 2 {after_two.min():7.2f}..{after_two.max():7.2f}, "
            f"last 32 beats {last.min():7.2f}..{last.max():7.2f}; phase {error_ms.min():+6.1f}..{error_ms.max():+6.1f} ms; "
            f"lost ticks counted {followed.sync.follower.lost_ticks}")


def beats_to_follow(bpm: list[float | None], change: int, target: float, tolerance: float) -> float:
    """Beats after tick ``change`` until the estimate stays within ``tolerance`` of ``target``."""
    off = [k for k, b in enumerate(bpm[change:]) if b is None or abs(b - target) >= tolerance * target]
    return (off[-1] + 1) / 24 if off else 0.0


def change(period: int, name: str, segments: list[tuple[float, float]]) -> str:
    times = tick_times(segments)
    followed = follow(times, delivered(times, period, seed=2))
    target = segments[-1][1]
    at = round(segments[0][0] * 24)
    error_ms = np.abs(np.array(followed.error_ticks)) * 60_000.0 / (target * 24)
    # Back on the beat: within 10 ms of the error the ticks' mean lateness leaves at the end.
    settled_ms = np.median(np.array(followed.error_ticks[-96:])) * 60_000.0 / (target * 24)
    off_beat = np.abs(np.array(followed.error_ticks[at:]) * 60_000.0 / (target * 24) - settled_ms) >= 10.0
    back_beats = (np.nonzero(off_beat)[0][-1] + 1) / 24 if off_beat.any() else 0.0
    return (f"{name:18s}: within 1 % after {beats_to_follow(followed.bpm, at, target, 0.01):5.2f} beats, "
            f"0.2 % after {beats_to_follow(followed.bpm, at, target, 0.002):5.2f}; phase error peak "
            f"{error_ms[at:].max():5.1f} ms, within 10 ms after {back_beats:5.2f} beats, last 4 beats "
            f"{error_ms[-96:].max():5.1f} ms")


def disturbances(period: int) -> list[str]:
    times = tick_times([(32, 120.0)])
    interval_ms = 60_000.0 / (120.0 * 24)
    lost = follow(times, delivered(times, period, seed=3, lose=frozenset({300, 400, 401, 500})))
    stamps = delivered(times, period, seed=3)
    stamps[300:315] = [stamps[315]] * 15
    stall = follow(times, stamps)
    start_times = tick_times([(16, 100.0)])
    start_stamps = delivered(start_times, period, seed=3)
    start_stamps[3:15] = [start_stamps[15]] * 12
    start = follow(start_times, start_stamps, start_bpm=120.0)
    start_tick_ms = 60_000.0 / (100.0 * 24)
    long_times = tick_times([(64, 120.0)])
    pulled = delivered(long_times, period, seed=3)
    pulled[400:640] = [None] * 240
    cable = follow(long_times, pulled)
    return [
        f"4 ticks lost       : counted {lost.sync.follower.lost_ticks}, phase at the end "
        f"{lost.error_ticks[-1] * interval_ms:+6.1f} ms",
        f"300 ms stall, burst: tempo after {min(stall.bpm[300:]):.2f}..{max(stall.bpm[300:]):.2f}, "
        f"phase error after {np.abs(stall.error_ticks[330:]).max() * interval_ms:5.1f} ms at most",
        f"stall at the start : 100 BPM read {min(start.bpm[24:]):.2f}..{max(start.bpm[24:]):.2f} from beat 2, "
        f"phase error from beat 3 {np.abs(start.error_ticks[48:]).max() * start_tick_ms:5.1f} ms at most",
        f"5 s without clock  : phase error after it {np.abs(cable.error_ticks[400:]).max() * interval_ms:5.1f} ms at most "
        "(the master played on)",
    ]


def main(argv: list[str] | None = None) -> int:
    # No settings: the figures are the algorithm's. --help says so; anything else is a usage
    # error (it ran the whole benchmark and exited 0).
    parser_for(__doc__, writes_results=False).parse_args(argv)
    ramp = [(0.25, 120.0 + 20.0 * step / 32) for step in range(32)]
    for period in PERIODS:
        print(f"JACK period {period} frames ({1000.0 * period / SAMPLE_RATE:.1f} ms at 48 kHz)")
        for bpm in (110.0, 120.0, 133.0):
            print("  " + steady(period, bpm))
        for name, segments in [("120 -> 126 BPM", [(16, 120.0), (16, 126.0)]),
                               ("120 -> 90 BPM", [(16, 120.0), (16, 90.0)]),
                               ("120 -> 180 BPM", [(16, 120.0), (16, 180.0)]),
                               ("60 -> 180 BPM", [(8, 60.0), (16, 180.0)]),
                               ("ramp to 140 in 8b", [(16, 120.0), *ramp, (16, 140.0)])]:
            print("  " + change(period, name, segments))
        for line in disturbances(period):
            print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
