"""Follow an external MIDI clock: tempo from the spacing of clock ticks, transport from start/stop.

MIDI clock is 24 ticks (0xF8) per quarter note; 0xFA starts, 0xFB continues, 0xFC stops, and
0xF2 (Song Position Pointer) tells where a Continue resumes, in 16th notes. After Start the
master's first beat is the next tick: that tick starts us. After Continue the next tick is at the
master's song position (the last Song Position Pointer, or where it stopped), and we start at
the first tick on a bar line (4/4, 96 ticks a bar), so that our bars and phrases fall on the
master's: at once when the master resumes on a bar line, else within a bar.

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
LOST_TICK_TOLERANCE = 0.2  # a gap within 0.2 intervals of a whole number of intervals
CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2
TICKS_PER_SIXTEENTH = 6  # a Song Position Pointer counts 16th notes
TICKS_PER_BAR = 4 * TICKS_PER_QUARTER  # the engine's bar: 4/4
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
        # The last half beat's ticks as (index, seconds); indices count lost ticks too.
        self._recent: deque[tuple[int, float]] = deque(maxlen=RECENT_TICKS + 1)
        self._suspect_lost = 0  # ticks the last gap may have lost (confirmed by the next gap)
        self._deferred = False  # the last tick's estimate waited for this one
        self.lost_ticks = 0  # ticks found lost so far
        self._anchor_s = 0.0  # time of the first tick of the steady-tempo window
        self._anchor_index = 0  # tick index of the anchor
        self._running = False
        self._running_changed = False
        self._bpm: float | None = None  # latest estimate
        self._reported_bpm: float | None = None  # last estimate handed out by take()
        self._ticks_since_report = 0
        self._master_running = False  # between the master's Start/Continue and its Stop
        self._position = 0  # the master's song position (ticks) of its next tick
        self._start_at: int | None = None  # the song position (ticks) at which we start
        self.ticks_since_start = 0  # ticks since the one we started on

    @property
    def running(self) -> bool:
        with self._lock:
            return self._running

    @property
    def waiting_for_bar_line(self) -> bool:
        """The master runs and we wait for its next bar line to start (after a mid-bar Continue:
        up to a bar; after Start: until the next tick)."""
        with self._lock:
            return self._start_at is not None

    @property
    def bpm(self) -> float | None:
        """The latest tempo estimate in BPM, None before enough ticks arrived."""
        with self._lock:
            return self._bpm

    def feed(self, message: bytes, time_s: float) -> None:
        """One raw MIDI message received at ``time_s`` seconds (any monotonic origin)."""
        if len(message) == 3 and message[0] == SONG_POSITION:
            with self._lock:
                if not self._master_running:  # a jump while playing is not followed
                    sixteenths = (message[2] & 0x7F) << 7 | (message[1] & 0x7F)
                    self._position = sixteenths * TICKS_PER_SIXTEENTH
            return
        if len(message) != 1:
            return
        status = message[0]
        with self._lock:
            if status == CLOCK:
                self._tick(time_s)
            elif status in (START, CONTINUE) and not self._master_running:  # a repeat: no change
                self._master_running = True
                if status == START:
                    self._position = 0
                self._start_at = -(-self._position // TICKS_PER_BAR) * TICKS_PER_BAR  # next bar line
            elif status == STOP:
                self._master_running, self._start_at = False, None
                self._set_running(False)

    def _tick(self, time_s: float) -> None:
        if self._recent and time_s - self._recent[-1][1] > self.gap_s:
            self._recent.clear()
            self._suspect_lost = 0
        if not self._recent:
            index = 0
            self._anchor_s, self._anchor_index = time_s, 0
        else:
            self._count_lost_ticks(time_s - self._recent[-1][1])
            index = self._recent[-1][0] + 1
        self._recent.append((index, time_s))
        if self._start_at is not None and self._position >= self._start_at:
            self._start_at = None
            self.ticks_since_start = 0  # this tick is our position 0
            self._set_running(True)
        else:
            self.ticks_since_start += 1
        if self._master_running:
            self._position += 1
        self._ticks_since_report += 1
        first_index, first_s = self._recent[0]
        # After a first long gap, the next gap tells lost ticks from a slower tempo: estimate then.
        defer = self._suspect_lost and not self._deferred
        self._deferred = bool(defer)
        if defer or len(self._recent) - 1 < self.min_ticks or time_s <= first_s:
            return
        recent = _bpm_of(index - first_index, time_s - first_s)
        steady = self._steady_bpm(index, time_s, recent)
        if abs(recent - steady) > self.change_ratio * steady:  # the tempo changed: restart the window
            self._anchor_index, self._anchor_s = self._recent[-1 - self.min_ticks]
            steady = self._steady_bpm(index, time_s, recent)
        self._bpm = min(MAX_BPM, max(MIN_BPM, steady))

    def _steady_bpm(self, index: int, time_s: float, recent: float) -> float:
        """The tempo since the anchor; ``recent`` while no time has passed since it (ticks
        delivered with one timestamp, as a large JACK period at a fast tempo may)."""
        if time_s <= self._anchor_s:
            return recent
        return _bpm_of(index - self._anchor_index, time_s - self._anchor_s)

    def _count_lost_ticks(self, gap_s: float) -> None:
        """Ticks lost on the way (a loaded machine's JACK drops a late client's input) leave one
        gap of about k intervals between ticks at the usual spacing; a slower tempo makes every
        gap longer. So a gap of k >= 2 intervals is suspected, and confirmed as k - 1 lost ticks
        when the next gap is one interval again: the tick before it moves k - 1 places on."""
        if self._bpm is None:
            return
        ratio = gap_s * self._bpm * TICKS_PER_QUARTER / 60.0  # gap in expected intervals
        nearest = round(ratio)
        if self._suspect_lost and abs(ratio - 1.0) < LOST_TICK_TOLERANCE:
            last_index, last_s = self._recent[-1]
            self._recent[-1] = (last_index + self._suspect_lost, last_s)
            if self._anchor_s == last_s:
                self._anchor_index += self._suspect_lost
            self.ticks_since_start += self._suspect_lost
            if self._master_running:
                self._position += self._suspect_lost
            self.lost_ticks += self._suspect_lost
        self._suspect_lost = nearest - 1 if nearest >= 2 and abs(ratio - nearest) < LOST_TICK_TOLERANCE else 0

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
