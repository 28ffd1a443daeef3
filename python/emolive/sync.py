"""Follow an external MIDI clock: tempo from the spacing of clock ticks, transport from start/stop.

MIDI clock is 24 ticks (0xF8) per quarter note; 0xFA starts, 0xFB continues, 0xFC stops.
The tempo is estimated over the last ``window_ticks`` tick intervals (default 24, one beat) as
``60 / (24 * mean interval)``: the mean over a window depends only on its two end ticks, so the
jitter of single ticks (JACK delivers on period boundaries, ~1.3 ms) hardly moves it.
A gap longer than ``gap_s`` between ticks means the clock paused: the window starts afresh.

The follower tracks tempo and transport, not phase: notes start with the master's Start and
keep its tempo, but the engine's bar lines are not nudged onto the master's.

The MIDI thread calls :meth:`ClockFollower.feed`; the thread that owns the engine calls
:meth:`ClockFollower.take` and applies the result.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

TICKS_PER_QUARTER = 24
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

    def __init__(self, window_ticks: int = TICKS_PER_QUARTER, min_ticks: int = 6,
                 min_change_bpm: float = 0.2, gap_s: float = 0.5) -> None:
        if not 2 <= min_ticks <= window_ticks:
            raise ValueError(f"need 2 <= min_ticks <= window_ticks, got {min_ticks}, {window_ticks}")
        self.window_ticks = window_ticks
        self.min_ticks = min_ticks
        self.min_change_bpm = min_change_bpm
        self.gap_s = gap_s
        self._lock = threading.Lock()
        self._times: deque[float] = deque(maxlen=window_ticks + 1)  # seconds, last ticks
        self._running = False
        self._running_changed = False
        self._bpm: float | None = None  # latest estimate
        self._reported_bpm: float | None = None  # last estimate handed out by take()
        self.ticks_since_start = 0

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
                if status == START:
                    self.ticks_since_start = 0
                self._set_running(True)
            elif status == STOP:
                self._set_running(False)

    def _tick(self, time_s: float) -> None:
        if self._times and time_s - self._times[-1] > self.gap_s:
            self._times.clear()
        self._times.append(time_s)
        self.ticks_since_start += 1
        intervals = len(self._times) - 1
        if intervals >= self.min_ticks:
            span = self._times[-1] - self._times[0]
            if span > 0.0:
                bpm = 60.0 * intervals / (TICKS_PER_QUARTER * span)
                self._bpm = min(MAX_BPM, max(MIN_BPM, bpm))

    def _set_running(self, running: bool) -> None:
        if running != self._running:
            self._running = running
            self._running_changed = True

    def take(self) -> SyncUpdate:
        """Changes since the last call (a tempo counts when it moved by ``min_change_bpm``)."""
        with self._lock:
            running = self._running if self._running_changed else None
            self._running_changed = False
            bpm = None
            if self._bpm is not None and (
                self._reported_bpm is None or abs(self._bpm - self._reported_bpm) >= self.min_change_bpm
            ):
                bpm = self._reported_bpm = round(self._bpm, 2)
        return SyncUpdate(running=running, bpm=bpm)


class MessageClock:
    """Accumulates python-rtmidi's per-message delta times into a running time in seconds."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def advance(self, delta_s: float) -> float:
        self.now_s += max(0.0, delta_s)
        return self.now_s
