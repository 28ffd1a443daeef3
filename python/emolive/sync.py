"""Following an external MIDI clock: :class:`ClockSync` drives the engine from the clock and
transport messages of the --sync port, through :class:`emolive.clock_follower.ClockFollower`
(tempo and transport from the messages) and :class:`emolive.phase_lock.PhaseLock` (the tempo
that keeps the engine on the master's beat).

The MIDI thread calls :meth:`ClockSync.feed`, which feeds the follower and the lock and drives
the engine; :meth:`ClockFollower.take` hands out changes.
"""

from __future__ import annotations

from typing import Callable, Protocol

from emolive.clock_follower import CLOCK, ClockFollower
from emolive.phase_lock import PhaseLock


class SyncTarget(Protocol):
    """What :class:`ClockSync` drives: the engine."""

    def set_bpm(self, bpm: float) -> None: ...

    def stop(self) -> None: ...


class ClockSync:
    """A follower and a phase lock driving an engine: what ``--sync`` runs on the MIDI input
    thread, so that the master's first beat reaches the engine at once.

    ``start()`` starts (or resumes) the engine and returns the tempo it plays at. While running,
    every tick goes to the phase lock, which sets the tempo; while stopped, the measured tempo
    is handed on."""

    def __init__(self, target: SyncTarget, start: Callable[[], float]) -> None:
        self.target = target
        self._start = start
        self.follower = ClockFollower()
        self.phase_lock = PhaseLock()
        self._pauses = 0  # the follower's pause count the lock has seen

    def feed(self, message: bytes, time_s: float) -> None:
        """One raw MIDI message from the --sync port at ``time_s`` seconds."""
        follower = self.follower
        follower.feed(message, time_s)
        update = follower.take()
        if update.running is False:
            self.target.stop()
        elif update.running is True:
            if follower.bpm is not None:
                self.target.set_bpm(follower.bpm)
            # The engine starts now (time_s); the master's ticks are compared at their line's times.
            self.phase_lock.start(time_s, self._start())
            self._pauses = follower.pauses
        elif message == bytes([CLOCK]) and follower.running and not follower.after_gap:
            line_time_s = follower.line_time_s()
            if follower.pauses != self._pauses:
                self._pauses = follower.pauses
                self.phase_lock.resume(time_s, follower.ticks_since_start, line_time_s)
            bpm = self.phase_lock.tick(time_s, follower.ticks_since_start, follower.bpm, line_time_s)
            if bpm is not None:
                self.target.set_bpm(bpm)
        elif update.bpm is not None:
            self.target.set_bpm(update.bpm)


class MessageClock:
    """Accumulates python-rtmidi's per-message delta times into a running time in seconds."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def advance(self, delta_s: float) -> float:
        self.now_s += max(0.0, delta_s)
        return self.now_s
