"""The straight line through a steady master's clock ticks, and the jitter of their times.

A master at a steady tempo sends tick ``i`` at ``t0 + i * interval``; what arrives is that time
plus delivery jitter (RtMidi stamps a JACK period's messages with the time its process callback
ran, so at 1024 frames and 48 kHz a tick's time is off by up to 21 ms: a whole tick at 120 BPM).
:class:`TickLine` fits ``time = t0 + index * interval`` by least squares, which averages the
jitter of every tick in the window instead of trusting the two at its ends.
:class:`JitterBand` measures how far ticks fall from the line, so that a tempo change is told
from jitter by ticks falling outside what the jitter explains.
"""

from __future__ import annotations

import bisect
import math
from collections import deque


class TickLine:
    """Least-squares line through ``(tick index, seconds)`` points; O(1) per point.

    Sums are kept relative to the first point added since :meth:`reset`. Every add and remove
    rounds them a little, and in ``n * sxx - sx ** 2`` the rounding grows with the points' distance
    from that origin: a line that points only ever leave (:class:`LineWindow`) must be built
    afresh from time to time, or its slope drifts (a 96-tick window's 0.9 ppm after 1.7 hours of
    ticks at 120 BPM; the tempo read 0.4 % slow after 5 days, 0.9 % after 6: helper-89)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._origin_index = 0
        self._origin_s = 0.0
        self._sx = self._sy = self._sxx = self._sxy = 0.0

    def add(self, index: int, time_s: float) -> None:
        if self.count == 0:
            self._origin_index, self._origin_s = index, time_s
        self._weigh(index, time_s, 1)

    def remove(self, index: int, time_s: float) -> None:
        """Take back a point added before (a tick whose index turned out wrong)."""
        self._weigh(index, time_s, -1)

    def _weigh(self, index: int, time_s: float, weight: int) -> None:
        x, y = index - self._origin_index, time_s - self._origin_s
        self.count += weight
        self._sx += weight * x
        self._sy += weight * y
        self._sxx += weight * x * x
        self._sxy += weight * x * y

    def interval_s(self) -> float | None:
        """Seconds per tick; None with fewer than two distinct indices or no time passing
        (ticks delivered with one timestamp)."""
        spread = self.count * self._sxx - self._sx * self._sx
        if self.count < 2 or spread <= 0.0:
            return None
        slope = (self.count * self._sxy - self._sx * self._sy) / spread
        return slope if slope > 0.0 else None

    def time_at(self, index: int) -> float | None:
        """The line's time of tick ``index``; None while it has no slope."""
        slope = self.interval_s()
        if slope is None:
            return None
        mean_x, mean_y = self._sx / self.count, self._sy / self.count
        return self._origin_s + mean_y + (index - self._origin_index - mean_x) * slope


class LineWindow:
    """A :class:`TickLine` through the last ``size`` points added: the oldest leaves as a new
    one comes, so the line follows a tempo that moves slowly (a ramp) instead of averaging it
    away, and what it has seen of the ticks' jitter stays bounded."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._points: deque[tuple[int, float]] = deque()
        self._line = TickLine()
        self._changes = 0  # points added or removed since the line was last built from its points

    @property
    def count(self) -> int:
        return len(self._points)

    def reset(self, points: list[tuple[int, float]] | None = None) -> None:
        self._points.clear()
        self._line.reset()
        self._changes = 0
        for index, time_s in points or []:
            self.add(index, time_s)

    def add(self, index: int, time_s: float) -> None:
        if len(self._points) == self.size:
            self._line.remove(*self._points.popleft())
        self._points.append((index, time_s))
        self._line.add(index, time_s)
        self._count_change()

    def _count_change(self) -> None:
        """Invariant: the line's sums have taken at most ``2 * size`` changes (an add that
        pushes the oldest point out counts once: two updates) since they were summed from the
        window's own points, relative to its oldest (O(1) a point, amortised)."""
        self._changes += 1
        if self._changes >= 2 * self.size:
            self._line.reset()
            for index, time_s in self._points:
                self._line.add(index, time_s)
            self._changes = 0

    @property
    def last(self) -> tuple[int, float] | None:
        """The last point added (and not removed), or None."""
        return self._points[-1] if self._points else None

    def remove_last(self) -> None:
        """Take back the last point (the window holds one point fewer until the next comes)."""
        if self._points:
            self._line.remove(*self._points.pop())
            self._count_change()

    def move_last(self, index: int) -> None:
        """The last point's index was wrong (ticks were lost before it)."""
        if self._points:
            old = self._points.pop()
            self._line.remove(*old)
            self._points.append((index, old[1]))
            self._line.add(index, old[1])
            self._count_change()

    def interval_s(self) -> float | None:
        return self._line.interval_s()

    def time_at(self, index: int) -> float | None:
        return self._line.time_at(index)


class JitterBand:
    """How far ticks scatter: each tick's distance from the line through the ``local`` ticks
    before it, and a high quantile of the last ``size`` such distances.

    The local line follows the tempo as it moves (a ramp, a change), so only the scatter counts:
    measured against the steady window's line instead, a slow ramp's growing distances widened
    the band as fast as they grew, and the ramp was never taken for a change. A quantile rather
    than the largest: a stall that delivers ticks late at once widens the band for no longer
    than its share of the window stays above the quantile."""

    def __init__(self, size: int = 768, quantile: float = 0.8, local: int = 24, min_local: int = 7) -> None:
        self.size = size
        self.quantile = quantile
        self.min_local = min_local
        self._local = LineWindow(local)
        self._last_measured = False  # the last add_tick added a distance
        self._order: deque[float] = deque()  # distances in arrival order
        self._sorted: list[float] = []

    def add_tick(self, index: int, time_s: float, clip_s: float = math.inf) -> None:
        """A tick (its index counting lost ticks): its distance from the local line, at most
        ``clip_s`` (so that a burst of ticks delivered at once widens the band step by step, not
        at a stroke), then the tick into that line."""
        expected_s = self._local.time_at(index) if self._local.count >= self.min_local else None
        self._last_measured = expected_s is not None
        if expected_s is not None:
            self.add(min(abs(time_s - expected_s), clip_s))
        self._local.add(index, time_s)

    def take_back_last(self) -> None:
        """Undo the last :meth:`add_tick` (a tick that was held up: its lateness is not jitter)."""
        if self._last_measured:
            old = self._order.pop()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
            self._last_measured = False
        self._local.remove_last()

    def move_last_tick(self, index: int) -> None:
        """The last tick's index was wrong (ticks were lost before it)."""
        self._local.move_last(index)

    def restart_local(self) -> None:
        """The clock paused: the local line starts afresh (the distances are kept)."""
        self._local.reset()

    def add(self, distance_s: float) -> None:
        distance_s = abs(distance_s)
        self._order.append(distance_s)
        bisect.insort(self._sorted, distance_s)
        if len(self._order) > self.size:
            old = self._order.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def __len__(self) -> int:
        return len(self._order)

    def width_s(self) -> float:
        """The quantile of the distances (seconds); 0 before any."""
        if not self._sorted:
            return 0.0
        return self._sorted[min(len(self._sorted) - 1, int(self.quantile * len(self._sorted)))]
