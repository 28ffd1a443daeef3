"""An external MIDI clock read: tempo from the clock ticks, transport from Start/Stop/Continue.

MIDI clock is 24 ticks (0xF8) per quarter note; 0xFA starts, 0xFB continues, 0xFC stops, and
0xF2 (Song Position Pointer) tells where a Continue resumes, in 16th notes. After Start the
master's first beat is the next tick: that tick starts us. After Continue the next tick is at the
master's song position (the last Song Position Pointer, or where it stopped), and we start at
the first tick on a bar line (4/4, 96 ticks a bar), so that our bars and phrases fall on the
master's: at once when the master resumes on a bar line, else within a bar.

Tempo: a least-squares line through the ticks since the last tempo change, the last 4 bars of
them at most (:class:`emolive.tick_line.LineWindow`): the jitter of single ticks is averaged
over the window, and a slow ramp is followed about 2 bars behind. The jitter is measured too
(:class:`emolive.tick_line.JitterBand`), as the wider of two bands: how far each tick falls
from a line through the beat before it (which follows ramps and changes, so only the scatter
counts), and how far ticks fall from the steady line, each counted as at most the tolerance
(which sees a JACK period's slowly drifting jitter, and which a ramp cannot widen faster than
it leaves the line). A tempo change is declared when ``min_ticks`` ticks in a row fall outside
1.5 times the band on one side, the last no closer than the first; the new line is made from
them and the earlier ticks that agree with them. A tick outside the band is not fitted (a stall
that delivers ticks late does not bend the line), and of a group of ticks held up and delivered
at once (a delivery more than HOLD_UP usual gaps after the one before) only the last is fitted
or measured, also while the jitter is not yet known. So with JACK's small periods (64 frames:
1.3 ms) a change of a few percent is noticed within half a beat, and with 1024 frames (21 ms
of jitter at 48 kHz) the jitter is not taken for tempo changes; a change is noticed once it
has moved the ticks past the jitter.

Lost ticks: by the double gap one leaves, or by the ticks after it lying on the line a whole
number of ticks on; both only while the jitter is well below a tick interval (else a late tick
and a lost one look alike). A gap longer than ``gap_s`` is judged by the ticks after it: 3 at
once were held up (a stall; they count as they come), ticks back on the line a whole number of
ticks on were lost (counted), anything else means the clock paused: the line starts afresh and
:attr:`ClockFollower.pauses` counts it (the jitter measured so far is kept).

Reported tempos: a change of 1 BPM or more at once, smaller refinements at most once a beat.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
from dataclasses import dataclass

from emolive.arguments import BPM_RANGE
from emolive.tick_line import JitterBand, LineWindow

TICKS_PER_QUARTER = 24
RECENT_TICKS = 12  # ticks kept for restarting the line; also the jitter band's minimum sample
SETTLE_TICKS = 48  # a new line after a pause (or, with a tick of jitter, a change) fits 2 beats of ticks
SETTLE_AFTER_CHANGE_TICKS = 12  # ... and after any other change half a beat (longer slowed ramps)
BURST_S = 0.001  # ticks this close after a gap were held up and are delivered in a rush ...
BURST_TICKS = 3  # ... if there are this many (two share a JACK period near a tick interval)
HOLD_UP = 3.0  # a delivery this many usual gaps after the one before was held up
RUN_TICKS = 24  # how far back a tempo change's run of ticks off the line is looked for
LINE_TICKS = 4 * 96  # the line's window: 4 bars (a slow ramp's tempo lags by about 2 bars of it)
LOST_TICK_TOLERANCE = 0.2  # a gap within 0.2 intervals of a whole number of intervals
BAND_MARGIN = 1.5  # a tick farther than 1.5 jitter bands from the line is off it
MIN_TOLERANCE_S = 0.00025  # never closer than 0.25 ms (timestamps of a perfect clock still round)
CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2
TICKS_PER_SIXTEENTH = 6  # a Song Position Pointer counts 16th notes
TICKS_PER_STEP = TICKS_PER_SIXTEENTH  # the engine's step is a 16th note
TICKS_PER_BAR = 4 * TICKS_PER_QUARTER  # the engine's bar: 4/4
MIN_BPM, MAX_BPM = BPM_RANGE  # the engine's accepted range


@dataclass(frozen=True)
class SyncUpdate:
    """What changed since the last :meth:`ClockFollower.take`.

    ``running`` is the new transport state (None: unchanged); ``bpm`` the new tempo (None: unchanged).
    """

    running: bool | None = None
    bpm: float | None = None


class ClockFollower:
    """Turns clock and transport messages into tempo and start/stop; thread-safe."""

    def __init__(self, min_ticks: int = 6, gap_s: float = 0.5) -> None:
        if not 2 <= min_ticks <= RECENT_TICKS:
            raise ValueError(f"min_ticks must be 2..{RECENT_TICKS}, got {min_ticks}")
        self.min_ticks = min_ticks  # ticks the first estimate waits for; ticks in a row that make a change
        self.gap_s = gap_s
        self._lock = threading.Lock()
        # The last ticks as (index, seconds); indices count lost ticks too.
        self._recent: deque[tuple[int, float]] = deque(maxlen=RUN_TICKS + 1)
        # The ticks since the last tempo change (not those off the line), the last 4 bars of them.
        self._line = LineWindow(LINE_TICKS)
        self._last_fitted = False  # the last tick is in the line
        # The jitter, kept across changes and pauses, as two bands; the wider counts. The scatter
        # of ticks about the line through the beat before each: quick to see more jitter, and
        # blind to ramps. The distances of ticks from the steady line, each at most the
        # tolerance: they see jitter that drifts slowly (a JACK period's, at a tempo whose tick
        # is near the period), and a ramp cannot widen them faster than it leaves the line.
        self._band = JitterBand(quantile=0.8)
        self._from_line = JitterBand(quantile=0.9)
        self._off_line: deque[float] = deque(maxlen=RUN_TICKS)  # signed distances of the last ticks
        self._suspect_lost = 0  # ticks the last gap may have lost (confirmed by the next gap)
        self._delivery_gaps: deque[float] = deque(maxlen=RECENT_TICKS)  # seconds between deliveries
        self._held_group = False  # the ticks delivered with the last one were held up
        self._ticks_after_gap = 0  # ticks since a gap longer than gap_s while they are judged (0: none is)
        self._stopped_since_tick = False  # a Stop came, and no tick since while the master ran
        self._restarted_since_stop = False  # the line started afresh after the last Stop
        self._settling = 0  # ticks the line still fits whatever their distance (after a pause)
        self.lost_ticks = 0  # ticks found lost so far
        self.pauses = 0  # gaps longer than gap_s seen while ticks came
        self._running = False
        self._running_changed = False
        self._bpm: float | None = None  # latest estimate, within the engine's MIN_BPM..MAX_BPM
        self._measured_bpm: float | None = None  # the same before it is kept in that range
        self._reported_bpm: float | None = None  # last estimate handed out by take()
        self._ticks_since_report = 0
        self._master_running = False  # between the master's Start/Continue and its Stop
        self._position = 0  # the master's song position (ticks) of its next tick
        self._start_at: int | None = None  # the song position (ticks) at which we start
        self.ticks_since_start = 0  # ticks since the one we started on
        self.start_bar = 0  # the master's bar (0 = its song's start) we last started on

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
    def after_gap(self) -> bool:
        """The last ticks came after a gap longer than ``gap_s``: whether ticks were lost,
        held up or the clock paused, the next ticks tell."""
        with self._lock:
            return self._ticks_after_gap > 0

    @property
    def bpm(self) -> float | None:
        """The latest tempo estimate in BPM, None before enough ticks arrived; within the
        engine's range (MIN_BPM..MAX_BPM), the tempo it can follow."""
        with self._lock:
            return self._bpm

    @property
    def measured_bpm(self) -> float | None:
        """The master's tempo as measured, also beyond the engine's range (a 450 BPM master read
        400: the status line said so, with emolive falling behind it unsaid)."""
        with self._lock:
            return self._measured_bpm

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
                self._stopped_since_tick, self._restarted_since_stop = True, False
                self._set_running(False)

    def _tick(self, time_s: float) -> None:
        gap_s = time_s - self._recent[-1][1] if self._recent else 0.0
        if gap_s >= BURST_S:  # the first tick of a delivery (one JACK period's ticks, or a held-up group)
            self._held_group = self._was_held_up(gap_s)
            self._delivery_gaps.append(gap_s)
        after_stop = self._stopped_since_tick
        if self._master_running:
            self._stopped_since_tick = False
        # The first tick after a Continue, once the line started afresh while stopped.
        continuing = after_stop and self._master_running and self._restarted_since_stop
        if after_stop and self._recent and (gap_s > self.gap_s or
                                            (not self._restarted_since_stop and self._a_gap(gap_s))):
            # A pause, whatever its length (_judge_gap): the first gap after the Stop, and then
            # any silence while stopped. Only those: the gaps of a clock running on while
            # stopped restarted the line at every tick at 1024 frames (helper-75).
            self._start_line_afresh([])
            self._restarted_since_stop = True
        elif continuing and self._recent and self._a_gap(gap_s):
            # A pause too: the first clock after a Continue is where the master goes on, however
            # long it took to come (else the ticks after it left the line, which was read again
            # from 6 of them: a tempo set while stopped was followed 63-93 ms off at 1024 frames;
            # helper-76). A first clock lost on its way cannot be told from a late one: not counted.
            self._read_the_tempo_so_far()
            self._start_line_afresh([])
        elif self._ticks_after_gap:
            self._judge_gap(time_s, gap_s)
        if gap_s > self.gap_s and not after_stop:
            self._ticks_after_gap = 1  # what the gap was, the next ticks tell
        elif self._recent and not self._ticks_after_gap and not after_stop:
            self._count_lost_ticks(gap_s)
        index = self._recent[-1][0] + 1 if self._recent else 0
        self._recent.append((index, time_s))
        if self._start_at is not None and self._position >= self._start_at:
            self.start_bar = self._start_at // TICKS_PER_BAR
            self._start_at = None
            self.ticks_since_start = 0  # this tick is our position 0
            self._set_running(True)
        else:
            self.ticks_since_start += 1
        if self._master_running:
            self._position += 1
        self._ticks_since_report += 1
        self._fit(index, time_s)

    def _was_held_up(self, gap_s: float) -> bool:
        """A delivery came ``gap_s`` after the one before: held up when that is HOLD_UP times the
        usual gap between deliveries (a tick interval, or a JACK period when that is longer),
        judged from the first gap on (a stall after a beat at 2048 frames has one before it)."""
        if not self._delivery_gaps:
            return False
        return gap_s > HOLD_UP * statistics.median(self._delivery_gaps)

    def _judge_gap(self, time_s: float, gap_s: float) -> None:
        """A tick while the ticks after a gap longer than ``gap_s`` are judged (each was taken
        as the next so far). BURST_TICKS of them at once: they were held up (a stall) and come
        in a rush; each counts as it comes. Else, when this one comes apart: if they lie on the
        steady line a whole number of ticks on, those ticks were lost (a pulled cable, the
        master playing on) and are counted; otherwise the master's clock paused: the line
        starts afresh from them and ``pauses`` counts it (the engine kept playing;
        :class:`ClockSync` keeps its position). A gap after the master's Stop is not judged:
        :meth:`_tick` takes it for a pause at once."""
        if gap_s < BURST_S:
            self._ticks_after_gap += 1
            if self._ticks_after_gap >= BURST_TICKS:
                self._ticks_after_gap = 0
            return
        after = list(self._recent)[-self._ticks_after_gap:]
        self._ticks_after_gap = 0
        next_index = after[-1][0] + 1
        lost = self._slipped_by([*after, (next_index, time_s)])
        if lost > 0:
            self._shift_last_ticks(after, lost)
            return
        self._start_line_afresh(after)

    def _read_the_tempo_so_far(self) -> None:
        """Before the line starts afresh at a Continue: a line of too few ticks for a tempo yet
        (a quarter beat of clock while stopped) gives its rough tempo, from 3 ticks on; else the
        engine started at the tempo before the Stop (90 BPM for a master gone to 180; helper-79)."""
        if self._steady_interval_s() is None and self._line.count >= 3:
            self._take_tempo(self._line.interval_s())

    def _take_tempo(self, interval_s: float | None) -> None:
        """The tempo of a line ``interval_s`` seconds a tick, kept in the engine's range too."""
        if interval_s is not None:
            self._measured_bpm = 60.0 / (TICKS_PER_QUARTER * interval_s)
            self._bpm = min(MAX_BPM, max(MIN_BPM, self._measured_bpm))

    def _a_gap(self, gap_s: float) -> bool:
        """Whether ``gap_s`` between two ticks is more than their usual spacing: half as long
        again as the line's interval or the usual gap between deliveries, whichever is longer
        (before the line has an interval, just after it started afresh, any gap was one, and a
        clock running on while stopped restarted the line at every tick: its tempo was never
        read; helper-75; at 2048 frames every delivery after a Stop was a gap; helper-76)."""
        usual_s = self._steady_interval_s()
        if len(self._delivery_gaps) >= 2:  # a large JACK period delivers less often than ticks come
            # (2048 frames: 43 ms at 120 BPM, 2 ticks; every delivery after a Stop was a gap)
            usual_s = max(usual_s or 0.0, statistics.median(self._delivery_gaps))
        return usual_s is None or gap_s > 1.5 * usual_s

    def _start_line_afresh(self, after: list[tuple[int, float]]) -> None:
        """The clock paused: the line starts afresh from the ticks ``after`` it (none: from the
        tick coming), the jitter measured so far kept, and ``pauses`` counts it. Also every gap
        after the master's Stop, however long and wherever the ticks resume: a master going on
        on its own tick grid (emolive's --clock-out does, at a bar line) put them a whole number
        of ticks on, and the stopped time was counted as lost ticks: the engine, taken for that
        many ticks behind, ran 4 % fast for up to a minute (helper-71; helper-72: also for a
        stop shorter than gap_s, and for a master clocking on for a while after its Stop)."""
        self._ticks_after_gap = 0
        self._recent.clear()
        self._recent.extend(after)
        self._line.reset(after)
        self._settling = SETTLE_TICKS
        self._off_line.clear()
        self._band.restart_local()
        self._suspect_lost = 0
        self.pauses += 1

    def _slipped_by(self, points: list[tuple[int, float]]) -> int:
        """k when every point lies within the tolerance of the steady line k ticks further on,
        for one k at least two tolerances' worth of ticks away (nearer, jitter could do it):
        k ticks were lost before them (k < 0: counted twice). 0 otherwise, and always while
        the tolerance is over a quarter of a tick (a JACK period near a tick interval), where
        any offset fits some k."""
        interval_s = self._steady_interval_s()
        tolerance_s = self._tolerance_s()
        if interval_s is None or tolerance_s > interval_s / 4.0:  # jitter near a tick: any shift fits
            return 0
        shifts = set()
        for index, time_s in points:
            expected_s = self._line.time_at(index)
            assert expected_s is not None
            ticks = (time_s - expected_s) / interval_s
            shift = round(ticks)
            if abs(ticks - shift) * interval_s > tolerance_s or abs(shift) * interval_s < 2.0 * tolerance_s:
                return 0
            shifts.add(shift)
        return shifts.pop() if len(shifts) == 1 else 0

    def _fit(self, index: int, time_s: float) -> None:
        """Put the tick on the line, or declare a tempo change; then re-estimate the tempo."""
        self._take_back_held_tick(time_s)
        known = len(self._band) >= RECENT_TICKS
        self._band.add_tick(index, time_s, clip_s=2.0 * self._tolerance_s() if known else math.inf)
        line = self._line
        expected_s = self._expected_s(index)
        self._last_fitted = True
        if self._settling:
            self._settling -= 1
        if expected_s is None or self._settling:  # a window's first ticks: all fitted
            # (after a pause, 2 beats of them: through a JACK period near a tick interval, the
            # first ticks lie a period apart until two share one, and a line restarted from
            # them read the period as the tick: 117.2 BPM for 120 at 1024 frames.)
            line.add(index, time_s)
        else:
            distance_s = time_s - expected_s
            tolerance_s = self._tolerance_s()
            self._last_fitted = abs(distance_s) <= tolerance_s or len(self._band) < RECENT_TICKS
            if self._last_fitted:
                line.add(index, time_s)
            self._off_line.append(distance_s)
            if len(self._band) >= RECENT_TICKS and self._left_the_line(tolerance_s):
                self._restart_line()
            else:  # at most the tolerance: a drift that has not yet left the line cannot widen it much
                self._from_line.add(min(abs(distance_s), tolerance_s))
        self._take_tempo(self._steady_interval_s())

    def _take_back_held_tick(self, time_s: float) -> None:
        """In a group of ticks held up and then delivered at once, all but the last are late by
        up to the hold-up: neither on the line nor jitter. So when a tick comes with the one
        before it in such a group, that one is taken back from the line and the band. (A stall
        before the jitter was known put 12 held ticks into the first line: a 100 BPM master
        read 147 BPM, the engine ran half a beat ahead for 10 s, and the band they widened hid
        a change to 150 BPM.) Ticks sharing a large JACK period are not held up: each is late
        by less than the period, and the line needs them all."""
        if not self._held_group or len(self._recent) < 2:
            return
        previous = self._recent[-2]
        if time_s - previous[1] < BURST_S:
            self._band.take_back_last()
            if self._line.last == previous:
                self._line.remove_last()

    def _steady_interval_s(self) -> float | None:
        """The line's seconds per tick once it has more than ``min_ticks`` ticks, else None."""
        return self._line.interval_s() if self._line.count > self.min_ticks else None

    def _expected_s(self, index: int) -> float | None:
        """The line's time of tick ``index`` once it has more than ``min_ticks`` ticks."""
        return self._line.time_at(index) if self._line.count > self.min_ticks else None

    def _tolerance_s(self) -> float:
        """How far from the line a tick may fall and still be on it (seconds)."""
        return max(MIN_TOLERANCE_S, BAND_MARGIN * self._band.width_s(), BAND_MARGIN * self._from_line.width_s())

    def _left_the_line(self, tolerance_s: float) -> bool:
        """The last ``min_ticks`` ticks all fell off the line on one side, the last no closer
        than the first: the tempo changed (late ticks coming closer are a stall catching up)."""
        off = list(self._off_line)[-self.min_ticks:]
        if len(off) < self.min_ticks or abs(off[-1]) < abs(off[0]):
            return False
        return all(d > tolerance_s for d in off) or all(d < -tolerance_s for d in off)

    def _restart_line(self) -> None:
        """The last ``min_ticks`` ticks left the line. If they lie on it a whole number of
        ticks on, ticks were lost before them (too many, or with too much jitter, to be seen
        by their gap): counted, and the line goes on. Otherwise the tempo changed: a new line
        from them, extended back over the earlier ticks (up to RUN_TICKS) that lie within the
        tolerance of it (with a period's jitter, 6 ticks alone give a tempo 5-10 % off)."""
        recent = list(self._recent)
        departed = recent[-self.min_ticks:]
        slip = self._slipped_by(departed)
        if slip:
            self._shift_last_ticks(departed, slip)
            return
        first = len(recent) - self.min_ticks
        self._line.reset(recent[first:])
        tolerance_s = self._tolerance_s()
        while first > 0:
            index, time_s = recent[first - 1]
            expected_s = self._line.time_at(index)
            if expected_s is None or abs(time_s - expected_s) > tolerance_s:
                break
            first -= 1
        self._line.reset(recent[first:])
        # The new line fits every tick for a while (see _fit): 2 beats where a period's jitter
        # nears a tick, else 1. Ticks each delivered at a period's start (256 frames: 5.3 ms)
        # then lay a whole number of periods apart, and a line of 6-12 of them, with a tolerance
        # under a period, read 120 -> 115 BPM as 117.2 (4 periods a tick), left it again and
        # again and took 4-6 beats to read 115; the follower 11-21 ms off meanwhile (helper-74).
        interval_s = self._line.interval_s()
        coarse = interval_s is None or tolerance_s > interval_s / 4.0
        self._settling = SETTLE_TICKS if coarse else SETTLE_AFTER_CHANGE_TICKS
        self._last_fitted = True
        self._off_line.clear()
        self._suspect_lost = 0  # a gap judged by the old tempo's interval

    def line_time_s(self) -> float:
        """The line's time of the last tick (its jitter averaged out), or the tick's own time
        while there is no line."""
        with self._lock:
            index, time_s = self._recent[-1] if self._recent else (0, 0.0)
            expected_s = self._expected_s(index)
            return time_s if expected_s is None else expected_s

    def _count_lost_ticks(self, gap_s: float) -> None:
        """Ticks lost on the way (a loaded machine's JACK drops a late client's input) leave one
        gap of about k intervals between ticks at the usual spacing; a slower tempo makes every
        gap longer. So a gap of k >= 2 intervals is suspected, and confirmed as k - 1 lost ticks
        when the next gap is one interval again: the tick before it moves k - 1 places on.
        Only while the jitter is well below an interval: with more (a JACK period near a tick
        interval) a late tick cannot be told from a lost one."""
        interval_s = self._steady_interval_s()
        jitter_known = len(self._band) >= RECENT_TICKS  # else a period's gaps pass for losses
        if interval_s is None or not jitter_known or self._tolerance_s() > LOST_TICK_TOLERANCE * interval_s:
            self._suspect_lost = 0
            return
        ratio = gap_s / interval_s  # gap in expected intervals
        nearest = round(ratio)
        if self._suspect_lost and abs(ratio - 1.0) < LOST_TICK_TOLERANCE:
            self._move_last_tick(self._suspect_lost)
        self._suspect_lost = nearest - 1 if nearest >= 2 and abs(ratio - nearest) < LOST_TICK_TOLERANCE else 0

    def _shift_last_ticks(self, ticks: list[tuple[int, float]], lost: int) -> None:
        """``ticks`` (the last ones, off the line) came after ``lost`` lost ticks: their indices
        and the counts move on, and they go on the line."""
        moved = [(index + lost, time_s) for index, time_s in ticks]
        for k, point in enumerate(moved):
            self._recent[len(self._recent) - len(moved) + k] = point
            self._line.add(*point)
        self._band.restart_local()  # its points have the old indices
        self._off_line.clear()
        self._last_fitted = True
        self._count_lost(lost)

    def _count_lost(self, lost: int) -> None:
        self.ticks_since_start += lost
        if self._master_running:
            self._position += lost
        self.lost_ticks += lost

    def _move_last_tick(self, lost: int) -> None:
        """The last tick came after ``lost`` lost ticks: its index and the counts move on."""
        last_index, last_s = self._recent[-1]
        self._recent[-1] = (last_index + lost, last_s)
        self._band.move_last_tick(last_index + lost)
        if self._last_fitted:
            self._line.move_last(last_index + lost)
        else:
            self._line.add(last_index + lost, last_s)
        self._last_fitted = True
        self._count_lost(lost)

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
