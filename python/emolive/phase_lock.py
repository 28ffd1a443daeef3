"""The tempo that keeps the engine on an external clock master's beat.

:class:`PhaseLock` keeps the phase: the engine keeps exact time once given a tempo (absolute
deadlines, 16th-note steps each at the tempo it began with), so its position follows from the
tempos it was given and when; the lock compares that with the master's tick count at the
line's time of each tick and nudges the tempo (at most ``max_ratio`` off the measured one) to
remove the difference over a few beats (a time constant of ``horizon_beats``). Start-up errors and estimation errors therefore do not
accumulate into drift. After a pause of the clock without a Stop the engine's position is kept
(:meth:`PhaseLock.resume`): the ticks missed are not made up.
"""

from __future__ import annotations

from emolive.clock_follower import MAX_BPM, MIN_BPM, TICKS_PER_QUARTER, TICKS_PER_STEP


class PhaseLock:
    """The tempo to give the engine so that its position follows the master's tick count.

    The engine's position is modelled as the engine keeps time: in steps (16th notes, 6 ticks),
    each as long as the tempo it began with (a tempo given during a step applies from the next).
    Modelled as if every tempo applied at once, a start at a wrong tempo left the engine behind
    by the part of a step it played at the old tempo, unseen: 20 ms at 123 BPM from --bpm 90."""

    # A time constant of 2 beats, and a nudge of at most 4 %, or 15 % while catching up with a
    # change of the measured tempo (1 % or more from the last measured, or the first measured
    # from the start tempo) until the error is below half a tick: after 120 -> 90 BPM the engine
    # is back within 10 ms of the master's beat in about 4 beats, after 60 -> 180 in 6-7
    # (with 4 beats and 4 % always, until 2026-12-07: 8 and 17 beats, half a beat off for 3 s;
    # helper-62). 15 % at all times took a stall's late ticks for an error: ticks held 0.3 s
    # at the start put the engine most of a beat off. The engine's tempo applies from its next
    # step, a quarter beat, well inside the time constant, so the lock does not overshoot.
    def __init__(self, horizon_beats: float = 2.0, max_ratio: float = 0.04, catch_up_ratio: float = 0.15,
                 change_ratio: float = 0.01, min_change_bpm: float = 0.01) -> None:
        self.horizon_ticks = horizon_beats * TICKS_PER_QUARTER
        self.max_ratio = max_ratio
        self.catch_up_ratio = catch_up_ratio
        self.change_ratio = change_ratio
        self.min_change_bpm = min_change_bpm
        self._measured_bpm: float | None = None  # the master's tempo as last measured
        self._catching_up = False  # since a change of it, until the error is below half a tick
        self._steps = 0  # the engine's whole steps since it started
        self._step_start_s = 0.0  # when its current step began
        self._step_bpm = 120.0  # the tempo of its current step
        self._bpm = 120.0  # the tempo the engine was last given (from its next step on)
        self._offset_ticks = 0.0  # master ticks that do not count (missed in a pause of its clock)
        self.error_ticks = 0.0  # master position minus engine position at the last tick

    def start(self, time_s: float, bpm: float) -> None:
        """The engine started at ``time_s`` (the master's position 0) with ``bpm``."""
        self._steps, self._step_start_s, self._step_bpm, self._bpm = 0, time_s, bpm, bpm
        self._offset_ticks = self.error_ticks = 0.0
        self._measured_bpm, self._catching_up = None, False

    def resume(self, now_s: float, master_ticks: int, master_s: float | None = None) -> None:
        """The master's clock came back after a pause without a Stop, during which the engine
        played on at its tempo. What the master did meanwhile is unknown (a pulled cable: it
        played on and its ticks were lost), so the engine's position is kept: the error goes
        on from what it was before the pause, not from the ticks missed."""
        self._advance(now_s)
        position = self._position_at(now_s if master_s is None else master_s)
        self._offset_ticks = master_ticks - position - self.error_ticks

    def tick(self, now_s: float, master_ticks: int, measured_bpm: float | None,
             master_s: float | None = None) -> float | None:
        """At a master tick received at ``now_s``: the new tempo for the engine (given now), or
        None to keep the current one. ``master_s``: the tick's time with its jitter smoothed out
        (the follower's line), where the engine's position is compared with ``master_ticks``."""
        self._advance(now_s)
        position = self._position_at(now_s if master_s is None else master_s)
        self.error_ticks = master_ticks - self._offset_ticks - position
        self._follow_changes(measured_bpm)
        limit = self.catch_up_ratio if self._catching_up else self.max_ratio
        nudge = max(-limit, min(limit, self.error_ticks / self.horizon_ticks))
        base = measured_bpm if measured_bpm is not None else self._bpm
        target = min(MAX_BPM, max(MIN_BPM, base * (1.0 + nudge)))
        if abs(target - self._bpm) < self.min_change_bpm:
            return None
        self._bpm = target
        return target

    def _follow_changes(self, measured_bpm: float | None) -> None:
        """Catching up from a change of the measured tempo (the first measurement against the
        tempo the engine started with) until the error is below half a tick."""
        if measured_bpm is not None:
            before = self._measured_bpm if self._measured_bpm is not None else self._bpm
            if abs(measured_bpm - before) >= self.change_ratio * before:
                self._catching_up = True
            self._measured_bpm = measured_bpm
        if self._catching_up and abs(self.error_ticks) < 0.5:
            self._catching_up = False

    def _advance(self, now_s: float) -> None:
        """The engine's steps that ended by ``now_s``: each next one began at the tempo given last."""
        length_s = step_seconds(self._step_bpm)
        while now_s >= self._step_start_s + length_s:
            self._steps += 1
            self._step_start_s += length_s
            self._step_bpm = self._bpm
            length_s = step_seconds(self._step_bpm)

    def _position_at(self, time_s: float) -> float:
        """The engine's position in ticks at ``time_s``, near the current step (a little before
        its start is read at its tempo)."""
        fraction = (time_s - self._step_start_s) / step_seconds(self._step_bpm)
        return (self._steps + fraction) * TICKS_PER_STEP


def step_seconds(bpm: float) -> float:
    """The engine's step, a 16th note, at ``bpm``."""
    return 60.0 / (bpm * 4)
