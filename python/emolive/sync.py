"""Follow an external MIDI clock: tempo from the spacing of clock ticks, transport from start/stop.

MIDI clock is 24 ticks (0xF8) per quarter note; 0xFA starts, 0xFB continues, 0xFC stops. After
Start (or Continue) the master's first beat is the next tick: that tick starts us.

Tempo: ``60 * intervals / (24 * span)`` over a window of ticks. A mean over a window depends
only on its two end ticks, so the jitter of single ticks (JACK delivers on period boundaries,
~1.3 ms) hardly moves it, and the longer the window the smaller the error. So the window grows
for as long as the tempo holds (the error of a steady master's tempo shrinks with time, and
so does the drift between the master and us). When the last half beat's tempo differs from the
long window's by more than ``change_ratio`` (a tempo change), the window starts afresh from the
last ``min_ticks`` ticks, so a change is followed within half a beat.
A gap longer than ``gap_s`` between ticks means the clock paused: everything starts afresh.

Reported tempos: a change of 1 BPM or more at once, smaller refinements at most once a beat.

:class:`PhaseLock` keeps the phase: the engine keeps exact time once given a tempo (absolute
deadlines), so its position is the integral of the tempos it was given; the lock compares that
with the master's tick count and nudges the tempo (at most ``max_ratio`` off the measured one)
to remove the difference over a few beats. Start-up errors and estimation errors therefore do
not accumulate into drift.

The MIDI thread calls :meth:`ClockFollower.feed`; :meth:`ClockFollower.take` hands out changes.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

TICKS_PER_QUARTER = 24
RECENT_TICKS = 12  # the window that detects a tempo change: half a beat
CLOCK, START, CONTINUE, STOP = 0xF8, 0xFA, 0xFB, 0xFC
MIN_BPM, MAX_BPM = 20.0, 400.0  # the engine's accepted range


@dataclass(frozen=True)
class SyncUpdate:
    """What changed since the last :meth:`ClockFollower.take`.

    ``running`` is the new transport state (None: unchanged); ``bpm`` the new tempo (None: unchanged).
    """

    running: bool | None = None
    bpm: float | None = None


class ClockFollower:
    """Turns clock and transport messages into tempo and start/stop; thread-safe."""

    def __init__(self, min_ticks: int = 6, change_ratio: float = 0.02, gap_s: float = 0.5) -> None:
        if not 2 <= min_ticks <= RECENT_TICKS:
            raise ValueError(f"min_ticks must be 2..{RECENT_TICKS}, got {min_ticks}")
        self.min_ticks = min_ticks
        self.change_ratio = change_ratio
        self.gap_s = gap_s
        self._lock = threading.Lock()
        self._recent: deque[float] = deque(maxlen=RECENT_TICKS + 1)  # last half beat's tick times (s)
        self._anchor_s = 0.0  # time of the first tick of the steady-tempo window
        self._anchor_intervals = 0  # tick intervals since the anchor
        self._running = False
        self._running_changed = False
        self._bpm: float | None = None  # latest estimate
        self._reported_bpm: float | None = None  # last estimate handed out by take()
        self._ticks_since_report = 0
        self._start_pending = False
        self.ticks_since_start = 0  # ticks since the one that followed Start/Continue

    @property
    def running(self) -> bool:
        with self._lock:
            return self._running

    @property
    def bpm(self) -> float | None:
        """The latest tempo estimate in BPM, None before enough ticks arrived."""
        with self._lock:
            return self._bpm

    def feed(self, message: bytes, time_s: float) -> None:
        """One raw MIDI message received at ``time_s`` seconds (any monotonic origin)."""
        if len(message) != 1:
            return
        status = message[0]
        with self._lock:
            if status == CLOCK:
                self._tick(time_s)
            elif status in (START, CONTINUE):
                self._start_pending = True  # the master's first beat is the next tick
            elif status == STOP:
                self._start_pending = False
                self._set_running(False)

    def _tick(self, time_s: float) -> None:
        if self._recent and time_s - self._recent[-1] > self.gap_s:
            self._recent.clear()
        if not self._recent:
            self._anchor_s, self._anchor_intervals = time_s, 0
        else:
            self._anchor_intervals += 1
        self._recent.append(time_s)
        if self._start_pending:
            self._start_pending = False
            self.ticks_since_start = 0  # this tick is the master's position 0
            self._set_running(True)
        else:
            self.ticks_since_start += 1
        self._ticks_since_report += 1
        intervals = len(self._recent) - 1
        if intervals < self.min_ticks or time_s <= self._recent[0]:
            return
        recent = _bpm_of(intervals, time_s - self._recent[0])
        steady = _bpm_of(self._anchor_intervals, time_s - self._anchor_s)
        if abs(recent - steady) > self.change_ratio * steady:  # the tempo changed: restart the window
            self._anchor_s, self._anchor_intervals = self._recent[-1 - self.min_ticks], self.min_ticks
            steady = _bpm_of(self.min_ticks, time_s - self._anchor_s)
        self._bpm = min(MAX_BPM, max(MIN_BPM, steady))

    def _set_running(self, running: bool) -> None:
        if running != self._running:
            self._running = running
            self._running_changed = True

    def take(self) -> SyncUpdate:
        """Changes since the last call: the transport, and the tempo when it moved by 1 BPM or
        more, or by 0.01 BPM or more and a beat passed since the last tempo handed out."""
        with self._lock:
            running = self._running if self._running_changed else None
            self._running_changed = False
            bpm = None
            if self._bpm is not None:
                moved = abs(self._bpm - self._reported_bpm) if self._reported_bpm is not None else 1e9
                if moved >= 1.0 or (moved >= 0.01 and self._ticks_since_report >= TICKS_PER_QUARTER):
                    bpm = self._reported_bpm = round(self._bpm, 3)
                    self._ticks_since_report = 0
        return SyncUpdate(running=running, bpm=bpm)


def _bpm_of(intervals: int, span_s: float) -> float:
    return 60.0 * intervals / (TICKS_PER_QUARTER * span_s)


class PhaseLock:
    """The tempo to give the engine so that its position follows the master's tick count."""

    def __init__(self, horizon_beats: float = 4.0, max_ratio: float = 0.04, min_change_bpm: float = 0.01) -> None:
        self.horizon_ticks = horizon_beats * TICKS_PER_QUARTER
        self.max_ratio = max_ratio
        self.min_change_bpm = min_change_bpm
        self._time_s = 0.0
        self._position_ticks = 0.0  # where the engine is, from the tempos it was given
        self._bpm = 120.0  # the tempo the engine was last given
        self.error_ticks = 0.0  # master position minus engine position at the last tick

    def start(self, time_s: float, bpm: float) -> None:
        """The engine started at ``time_s`` (the master's position 0) with ``bpm``."""
        self._time_s, self._position_ticks, self._bpm, self.error_ticks = time_s, 0.0, bpm, 0.0

    def tick(self, time_s: float, master_ticks: int, measured_bpm: float | None) -> float | None:
        """At a master tick: the new tempo for the engine, or None to keep the current one."""
        self._position_ticks += (time_s - self._time_s) * self._bpm * TICKS_PER_QUARTER / 60.0
        self._time_s = time_s
        self.error_ticks = master_ticks - self._position_ticks
        nudge = max(-self.max_ratio, min(self.max_ratio, self.error_ticks / self.horizon_ticks))
        base = measured_bpm if measured_bpm is not None else self._bpm
        target = min(MAX_BPM, max(MIN_BPM, base * (1.0 + nudge)))
        if abs(target - self._bpm) < self.min_change_bpm:
            return None
        self._bpm = target
        return target


class MessageClock:
    """Accumulates python-rtmidi's per-message delta times into a running time in seconds."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def advance(self, delta_s: float) -> float:
        self.now_s += max(0.0, delta_s)
        return self.now_s
