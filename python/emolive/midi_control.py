"""Steer the emotion from MIDI controllers: one CC sets valence, another arousal.

Defaults: CC 20 -> valence, CC 21 -> arousal (both undefined in the General MIDI controller
list, so they collide with nothing a DAW sends on its own), on any channel. A controller value
0..127 maps linearly to -1..+1 (0 -> -1, 127 -> +1, 64 -> +0.008), and the point (valence,
arousal) becomes quadrant weights through :func:`emolive.emotions.from_valence_arousal`.

The MIDI thread calls :meth:`CcSteering.feed`; the thread that owns the engine calls
:meth:`CcSteering.take` and applies the result, so the engine is driven from one thread only.
"""

from __future__ import annotations

import numbers
import threading
from dataclasses import dataclass

from emolive.emotions import Weights, from_valence_arousal, to_valence_arousal

CONTROL_CHANGE = 0xB0  # status nibble; low nibble is the channel 0..15


@dataclass(frozen=True)
class CcMap:
    """Which controllers steer what. ``channel`` is 1..16, or None for any channel."""

    valence_cc: int = 20
    arousal_cc: int = 21
    channel: int | None = None

    def __post_init__(self) -> None:
        # Any integer (numpy's too), kept as an int; not a bool.
        for name, label in (("valence_cc", "valence CC"), ("arousal_cc", "arousal CC")):
            cc = getattr(self, name)
            if isinstance(cc, bool) or not isinstance(cc, numbers.Integral) or not 0 <= int(cc) <= 127:
                raise ValueError(f"{label} must be a controller number 0..127, got {cc!r}")
            object.__setattr__(self, name, int(cc))
        if self.valence_cc == self.arousal_cc:
            raise ValueError(f"valence and arousal need different controllers, both are CC {self.valence_cc}")
        if self.channel is not None:
            if (isinstance(self.channel, bool) or not isinstance(self.channel, numbers.Integral)
                    or not 1 <= self.channel <= 16):
                raise ValueError(f"control channel must be 1..16 or any, got {self.channel!r}")
            object.__setattr__(self, "channel", int(self.channel))


def cc_to_unit(value: int) -> float:
    """Controller value 0..127 -> -1.0..+1.0, linear."""
    return max(-1.0, min(1.0, value / 127.0 * 2.0 - 1.0))


class CcSteering:
    """Tracks the (valence, arousal) point set by controllers; thread-safe."""

    def __init__(self, mapping: CcMap | None = None, start: Weights = (0.25, 0.25, 0.25, 0.25)) -> None:
        self.mapping = mapping or CcMap()
        self._lock = threading.Lock()
        self._valence, self._arousal = to_valence_arousal(start)
        self._changed = False
        self._moved = False  # a controller has moved the point since the start

    @property
    def moved(self) -> bool:
        """Whether a controller has moved the point since the start."""
        with self._lock:
            return self._moved

    def aim(self, emotion: Weights) -> None:
        """The emotion set another way (a key, --morph-to): the axis a controller does not move
        next keeps this one's value, not the starting emotion's (moving valence alone after
        the key for happy gave sad, not tense). Not a change to apply, and newer than one
        a controller made before it that is not yet taken: that one is dropped (taken after the
        key, it replaced the key's glide with a jump, and a typed blend with its nearest
        valence/arousal point; helper-70)."""
        valence, arousal = to_valence_arousal(emotion)
        with self._lock:
            self._valence, self._arousal = valence, arousal
            self._changed = False

    @property
    def point(self) -> tuple[float, float]:
        """The current (valence, arousal), each in [-1, 1]."""
        with self._lock:
            return self._valence, self._arousal

    def feed(self, message: bytes) -> bool:
        """Take one raw MIDI message; True when it moved the point (other messages are ignored)."""
        if len(message) != 3 or message[0] & 0xF0 != CONTROL_CHANGE:
            return False
        channel = (message[0] & 0x0F) + 1
        if self.mapping.channel is not None and channel != self.mapping.channel:
            return False
        controller, value = message[1], message[2]
        if value > 127 or controller not in (self.mapping.valence_cc, self.mapping.arousal_cc):
            return False  # a data byte over 127 is no MIDI (a buggy sender): it was read as 127
        with self._lock:
            if controller == self.mapping.valence_cc:
                self._valence = cc_to_unit(value)
            else:
                self._arousal = cc_to_unit(value)
            self._changed = self._moved = True
        return True

    def take(self) -> Weights | None:
        """The quadrant weights if the point moved since the last call, else None."""
        with self._lock:
            if not self._changed:
                return None
            self._changed = False
            valence, arousal = self._valence, self._arousal
        return from_valence_arousal(valence, arousal)
