"""Emotion names, blends and valence/arousal, turned into quadrant weights.

This module is the one place that knows emotion names. Everything downstream (the C++ engine,
the model) takes a weight vector over the four quadrants of Russell's circumplex, in the order
Q1, Q2, Q3, Q4. Weights are non-negative and sum to 1.

    >>> parse_emotion("happy")
    (1.0, 0.0, 0.0, 0.0)
    >>> parse_emotion("happy:0.6,calm:0.4")
    (0.6, 0.0, 0.0, 0.4)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union, cast

if TYPE_CHECKING:
    import numpy as np

QUADRANTS: tuple[str, ...] = ("Q1", "Q2", "Q3", "Q4")

#: Everyday names for each quadrant: (valence, arousal) signs Q1 (+,+), Q2 (-,+), Q3 (-,-), Q4 (+,-).
QUADRANT_NAMES: dict[str, tuple[str, ...]] = {
    "Q1": ("happy", "excited", "joyful"),
    "Q2": ("tense", "angry", "anxious", "fearful"),
    "Q3": ("sad", "melancholic", "depressed"),
    "Q4": ("calm", "relaxed", "peaceful"),
}

#: Lower-case name -> quadrant index (0..3). Quadrant codes themselves are names too.
_NAME_TO_INDEX: dict[str, int] = {
    **{q.lower(): i for i, q in enumerate(QUADRANTS)},
    **{name: i for i, q in enumerate(QUADRANTS) for name in QUADRANT_NAMES[q]},
}

Weights = tuple[float, float, float, float]
#: A number the API takes: Python's or numpy's (np.float32, np.int64 ...), as checked by
#: emolive.arguments.number().
Real = Union[float, "np.floating[Any]", "np.integer[Any]"]
# numpy arrays of 2 or 4 numbers are accepted too (as sequences); named here for type checkers.
EmotionLike = Union[str, Mapping[str, Real], Sequence[Real], "np.ndarray[Any, Any]"]


def known_emotions() -> list[str]:
    """Every accepted emotion name, quadrant codes first."""
    return list(QUADRANTS) + [n for q in QUADRANTS for n in QUADRANT_NAMES[q]]


def quadrant_of(name: str) -> str:
    """The quadrant code (``"Q1"``..``"Q4"``) of one emotion name; ``ValueError`` if unknown."""
    return QUADRANTS[_index_of(name)]


def _index_of(name: str) -> int:
    key = name.strip().lower()
    if key not in _NAME_TO_INDEX:
        raise ValueError(
            f"unknown emotion {name.strip()!r}; known emotions: {', '.join(known_emotions())}"
        )
    return _NAME_TO_INDEX[key]


def is_number(value: object) -> bool:
    """A real number, numpy's too; not a bool (``True`` is an int to Python, not a weight)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def from_valence_arousal(valence: float, arousal: float) -> Weights:
    """Quadrant weights for a point of the circumplex, each coordinate in [-1, 1].

    Bilinear in both coordinates, so the corners are pure quadrants, (0, 0) weighs all four
    equally, and moving the point moves the weights continuously.
    """
    for label, value in (("valence", valence), ("arousal", arousal)):
        if not is_number(value) or not math.isfinite(value) or not -1.0 <= value <= 1.0:
            raise ValueError(f"{label} must be a number in [-1, 1], got {value!r}")
    u = (valence + 1.0) / 2.0  # 1 = fully positive valence
    w = (arousal + 1.0) / 2.0  # 1 = fully high arousal
    return (u * w, (1.0 - u) * w, (1.0 - u) * (1.0 - w), u * (1.0 - w))


def to_valence_arousal(weights: Sequence[Real]) -> tuple[float, float]:
    """The inverse of :func:`from_valence_arousal` (exact for its outputs)."""
    q1, q2, q3, q4 = normalise(weights)
    return (q1 + q4) * 2.0 - 1.0, (q1 + q2) * 2.0 - 1.0


def as_float(value: object) -> float:
    """A number (``is_number``) as a float; an int too large for one (10**400) is infinite,
    which callers refuse as a bad value (ValueError), not Python's OverflowError."""
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


def normalise(weights: Sequence[Real]) -> Weights:
    """Check four non-negative finite weights with a positive sum and scale them to sum to 1."""
    if not all(is_number(x) for x in weights):
        raise ValueError(f"emotion weights must be numbers, got {list(weights)!r}")
    values = [as_float(x) for x in weights]
    if len(values) != 4:
        raise ValueError(f"emotion weights need 4 values (Q1..Q4), got {len(values)}")
    if any(not math.isfinite(x) or x < 0.0 for x in values):
        raise ValueError(f"emotion weights must be finite and non-negative, got {values}")
    top = max(values)
    if top <= 0.0:
        raise ValueError("emotion weights must not all be zero")
    scaled = [x / top for x in values]  # first to 0..1, so that the sum cannot overflow
    total = sum(scaled)
    return tuple(x / total for x in scaled)  # type: ignore[return-value]


def _parse_blend(text: str) -> Weights:
    """``"happy:0.6,calm:0.4"`` (weights default to 1; they are normalised)."""
    pairs: list[tuple[str, float]] = []
    for part in text.split(","):
        name, sep, amount = part.partition(":")
        if not name.strip():
            raise ValueError(f"empty emotion name in {text!r}; write e.g. 'happy:0.6,calm:0.4'")
        value = 1.0
        if sep:
            try:
                value = float(amount)
            except ValueError:
                raise ValueError(
                    f"weight {amount.strip()!r} of {name.strip()!r} is not a number"
                ) from None
        pairs.append((name, value))
    return _from_named(pairs)


def _from_named(pairs: Sequence[tuple[str, object]]) -> Weights:
    """Quadrant weights from (emotion name, weight) pairs; names of one quadrant (``happy``,
    ``excited``) add up. Each weight must be a finite number >= 0 (ValueError naming it)."""
    checked = [(_index_of(str(name)), _named_weight(str(name), value)) for name, value in pairs]
    top = max((w for _, w in checked), default=0.0)
    if top <= 0.0:
        raise ValueError("emotion weights must not all be zero")
    weights = [0.0, 0.0, 0.0, 0.0]
    for quadrant, weight in checked:
        weights[quadrant] += weight / top  # each at most 1 first, so that the sum cannot overflow
    return normalise(weights)


def _named_weight(name: str, value: object) -> float:
    if not is_number(value):
        raise ValueError(f"the weight of {name.strip()!r} must be a number, got {value!r}")
    weight = as_float(value)
    if not math.isfinite(weight) or weight < 0.0:
        raise ValueError(f"the weight of {name.strip()!r} must be a finite number >= 0, got {weight}")
    return weight


def parse_emotion(emotion: EmotionLike) -> Weights:
    """Turn any accepted emotion description into quadrant weights (Q1, Q2, Q3, Q4).

    Accepts a name (``"sad"``, ``"Q3"``), a blend string (``"happy:0.6,calm:0.4"``), a mapping
    of names to weights (``{"happy": 0.6, "calm": 0.4}``), four weights, or a
    ``(valence, arousal)`` pair in [-1, 1]. Raises ``ValueError`` for anything else, naming
    what is allowed; ``TypeError`` for objects that are not emotions at all.
    """
    if isinstance(emotion, (bytes, bytearray, memoryview)):  # a sequence of ints, not weights
        raise TypeError(f"emotion must be a name (str), a blend string, a mapping or weights, "
                        f"not {type(emotion).__name__}")
    if hasattr(emotion, "tolist") and not isinstance(emotion, str):  # numpy: plain numbers
        emotion = emotion.tolist()
    if isinstance(emotion, str):
        if not emotion.strip():
            raise ValueError(f"empty emotion; known emotions: {', '.join(known_emotions())}")
        return _parse_blend(emotion)
    if isinstance(emotion, Mapping):
        return _from_named(list(emotion.items()))
    if isinstance(emotion, Sequence):
        if len(emotion) == 2:
            if not all(is_number(x) for x in emotion):
                raise ValueError(f"two values are (valence, arousal), numbers in [-1, 1], got "
                                 f"{list(emotion)!r}; to blend emotions write 'happy,calm' or "
                                 "{'happy': 1, 'calm': 1}")
            return from_valence_arousal(as_float(emotion[0]), as_float(emotion[1]))
        if len(emotion) == 4:
            return normalise(cast("Sequence[Real]", emotion))  # not a str: returned above
        raise ValueError(
            f"a sequence emotion is (valence, arousal) or 4 quadrant weights, got {len(emotion)} values"
        )
    raise TypeError(
        f"emotion must be a name, a blend string, a mapping or weights, not {type(emotion).__name__}"
    )


def describe_as_asked(asked: str, weights: Sequence[Real]) -> str:
    """``describe(weights)``, with the name asked for first where that was an alias:
    ``"excited (happy)"``; a quadrant's name, a blend or nothing asked (``""``) as ``describe``."""
    named, asked = describe(weights), asked.strip()
    if asked and not any(c in asked for c in ",:") and asked.lower() != named:
        return f"{asked} ({named})"
    return named


def describe(weights: Sequence[Real]) -> str:
    """A short human label for weights, e.g. ``"happy"`` or ``"happy:0.60,calm:0.40"``; a weight
    that would show as 0.00 is left out (a controller at 1 of 127 showed ``happy:0.00,...``)."""
    parts = [
        (QUADRANT_NAMES[q][0], w) for q, w in zip(QUADRANTS, normalise(weights)) if w >= 0.005
    ]
    if len(parts) == 1:
        return parts[0][0]
    return ",".join(f"{name}:{w:.2f}" for name, w in parts)
