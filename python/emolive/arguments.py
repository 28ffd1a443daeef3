"""Checks of the Python API's arguments, so that users get plain messages: a wrong type raises
``TypeError``, a bad value ``ValueError``. The C++ engine checks again.

Bars are counted on the model's grid: 16th-note steps, 4/4.
"""

from __future__ import annotations

import math
import numbers
import random
import reprlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

from emolive.emotions import EmotionLike, Weights, as_float, is_number, parse_emotion

if TYPE_CHECKING:
    import numpy as np

#: A whole number the API takes: Python's or numpy's, as checked by integer().
Whole = Union[int, "np.integer[Any]"]

STEPS_PER_BEAT = 4  # the model's grid: 16th notes
STEPS_PER_BAR = 16  # 4/4
MAX_BAR = 2**40  # the engine's kMaxBar: song positions (16th steps) stay far inside int64
MAX_GENERATE_BARS = 100_000  # per generate() call, and in all (count x bars) per generate_many()
MAX_GENERATE_COUNT = 10_000  # pieces per generate_many() call
MAX_SEED = 2**64 - 1
BPM_RANGE = (20.0, 400.0)  # tempi the engine plays (kMinBpm..kMaxBpm)
TEMPERATURE_RANGE = (0.05, 5.0)  # onset sampling temperatures
# A glide's or the latent walk's length in bars, live: 100,000 bars (1.6 M steps, 56 hours at 120
# BPM) lets an installation glide over a day (the glide's progress is exact in float up to 2**24
# steps); it was 10,000 (5.6 hours), which made a day's cycle a chain of glides (helper-89).
MAX_LIVE_BARS = 100_000.0


def number(name: str, value: Any, low: float, high: float) -> float:
    """``value`` as a float in low..high; any real number (numpy's too), not a bool."""
    if not is_number(value):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    checked = as_float(value)  # 10**400 -> inf, refused below
    if not math.isfinite(checked) or not low <= checked <= high:
        raise ValueError(f"{name} must be in {low:g}..{high:g}, got {reprlib.repr(value)}")
    return checked


def integer(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int in low..high; any integer (numpy's too), not a bool."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {reprlib.repr(int(value))}")
    return int(value)


def bars_to_steps(bars: Any, name: str = "bars", most: float = MAX_LIVE_BARS) -> int:
    """Bars (0..``most``, fractions allowed) as whole 16th steps; errors say ``name``."""
    return round(number(name, bars, 0.0, most) * STEPS_PER_BAR)


def seed_or_random(value: Any) -> int:
    """A seed 0..2**64-1; None: a random one."""
    if value is None:
        return random.SystemRandom().getrandbits(63)
    return integer("seed", value, 0, MAX_SEED)


def offline_arguments(bars: Any, emotion: EmotionLike, morph_to: EmotionLike | None,
                      morph_bars: Any) -> tuple[int, Weights, Weights | None, int]:
    """generate()'s checked arguments: (bars, start weights, glide target or None, glide steps)."""
    bars = integer("bars", bars, 1, MAX_GENERATE_BARS)
    weights = parse_emotion(emotion)
    target = None if morph_to is None else parse_emotion(morph_to)
    if morph_bars is not None and morph_to is None:
        raise ValueError("morph_bars needs morph_to")
    glide = bars * STEPS_PER_BAR if morph_bars is None else bars_to_steps(morph_bars, "morph_bars", MAX_GENERATE_BARS)
    if glide > bars * STEPS_PER_BAR:
        raise ValueError(f"morph_bars ({morph_bars}) is longer than bars ({bars}): the piece would end mid-morph")
    return bars, weights, target, glide


def seed_list(seeds: Any, count: int, engine_seed: int) -> list[int]:
    """generate_many()'s seeds: ``count`` integers 0..2**64-1; None: engine_seed + i."""
    if seeds is None:
        if engine_seed + count - 1 > MAX_SEED:  # piece i's seed, engine_seed + i, past the range
            raise ValueError(f"seeds=None gives piece i the seed engine.seed + i, and this engine's "
                             f"seed {engine_seed} leaves room for {MAX_SEED - engine_seed + 1} "
                             f"piece(s), not {count}: give seeds, or make the engine with a "
                             "smaller seed")
        return [engine_seed + i for i in range(count)]
    if hasattr(seeds, "tolist"):  # a numpy array
        seeds = seeds.tolist()
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise TypeError(f"seeds must be a sequence of integers or None, not {type(seeds).__name__}")
    if len(seeds) != count:
        raise ValueError(f"seeds must give one seed per piece: count is {count}, got {len(seeds)} seeds")
    return [integer(f"seeds[{i}]", seed, 0, MAX_SEED) for i, seed in enumerate(seeds)]
