"""A simulated MIDI clock master, JACK delivery and engine, for `--sync` without real time.

The master sends 24 ticks a beat on exact times; delivery stamps each tick the way RtMidi's JACK
input does: with the time of the process callback after it was sent, so a tick's time is late
by up to a JACK period (plus a little scheduling noise). :class:`SimEngine` plays the role of the
engine: it keeps exact time in steps at the tempos it was given. :func:`follow` drives the real :class:`emolive.sync.ClockSync` with it and returns
the tempo estimates and the engine's phase error against the master's true position.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from emolive.clock_follower import CLOCK, CONTINUE, START, STOP, TICKS_PER_QUARTER
from emolive.phase_lock import step_seconds
from emolive.sync import ClockSync

SAMPLE_RATE = 48_000


def tick_times(segments: list[tuple[float, float]]) -> list[float]:
    """True send times (seconds) of a master playing ``(beats, bpm)`` segments in turn."""
    times, t = [], 0.0
    for beats, bpm in segments:
        interval_s = 60.0 / (bpm * TICKS_PER_QUARTER)
        for _ in range(round(beats * TICKS_PER_QUARTER)):
            times.append(t)
            t += interval_s
    return times


def delivered(times: list[float], period_frames: int, seed: int = 0, lose: frozenset[int] = frozenset(),
              send_jitter_s: float = 0.0003, wake_jitter_s: float = 0.0003) -> list[float | None]:
    """Arrival stamps: ``None`` for a lost tick. ``period_frames`` 0 delivers exactly."""
    rng = random.Random(seed)
    period_s = period_frames / SAMPLE_RATE
    wake_s: dict[int, float] = {}  # each callback's lateness: one time for all it delivers
    stamps: list[float | None] = []
    last_s = 0.0  # stamps never go back: the MIDI thread's clock is monotonic
    for k, t in enumerate(times):
        if k in lose:
            stamps.append(None)
        elif period_frames == 0:
            stamps.append(t)
        else:
            cycle = math.ceil((t + rng.uniform(0.0, send_jitter_s)) / period_s)
            wake = wake_s.setdefault(cycle, rng.uniform(0.0, wake_jitter_s))
            last_s = max(last_s, cycle * period_s + wake)
            stamps.append(last_s)
    return stamps


@dataclass
class SimEngine:
    """Keeps time as the engine's scheduler does: in steps (16th notes), each as long as the tempo
    it began with, on absolute deadlines; a tempo given during a step applies from the next."""

    bpm: float = 120.0  # the tempo given last
    playing: bool = False
    position_ticks: float = 0.0
    time_s: float = 0.0
    step_bpm: float = 120.0  # the current step's tempo
    step_left_s: float = 0.0  # time to the end of the current step

    def advance(self, time_s: float) -> None:
        elapsed_s, self.time_s = time_s - self.time_s, time_s
        while self.playing and elapsed_s > 0.0:
            part_s = min(elapsed_s, self.step_left_s)
            self.position_ticks += part_s * self.step_bpm * TICKS_PER_QUARTER / 60.0
            elapsed_s -= part_s
            self.step_left_s -= part_s
            if self.step_left_s <= 0.0:
                self.step_bpm = self.bpm
                self.step_left_s = step_seconds(self.step_bpm)

    @property
    def is_playing(self) -> bool:
        return self.playing

    def set_bpm(self, bpm: float) -> None:
        self.bpm = bpm

    def stop(self) -> None:
        self.playing = False

    def start(self) -> float:
        self.playing, self.position_ticks = True, 0.0
        self.step_bpm, self.step_left_s = self.bpm, step_seconds(self.bpm)
        return self.bpm


@dataclass
class Followed:
    """Per delivered tick: the follower's estimate (None before one), and while playing the
    engine's phase error in ticks at the master's true tick time (+: ahead of the master)."""

    bpm: list[float | None] = field(default_factory=list)
    error_ticks: list[float] = field(default_factory=list)
    sync: ClockSync | None = None


def follow(times: list[float], stamps: list[float | None], start_bpm: float = 120.0,
           stop_at: int | None = None, continue_at: int | None = None) -> Followed:
    """Start, then the ticks through a real ClockSync into a SimEngine; Stop and Continue just
    before ticks ``stop_at`` and ``continue_at`` (the clock runs on between: the position the
    master continues from is where it stopped, and the engine starts on the next bar line)."""
    engine = SimEngine(bpm=start_bpm)
    sync = ClockSync(engine, engine.start)
    result = Followed(sync=sync)
    first = next(s for s in stamps if s is not None)
    sync.feed(bytes([START]), first - 0.001)
    start_tick = None
    for k, (true_s, stamp) in enumerate(zip(times, stamps)):
        if k in (stop_at, continue_at):
            sync.feed(bytes([STOP if k == stop_at else CONTINUE]), true_s - 0.001)
            start_tick = None
        if stamp is None:
            continue
        engine.advance(stamp)
        sync.feed(bytes([CLOCK]), stamp)
        if engine.playing and start_tick is None:
            start_tick = k
        result.bpm.append(sync.follower.bpm)
        if engine.playing:
            # Where the engine was at the master's true time of tick k, against tick k.
            back_ticks = (stamp - true_s) * engine.bpm * TICKS_PER_QUARTER / 60.0
            result.error_ticks.append(engine.position_ticks - back_ticks - (k - start_tick))
    return result
