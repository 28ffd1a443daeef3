"""Emotion descriptions -> quadrant weights (emolive.emotions): every accepted form, and clear
errors for what is not an emotion."""

from __future__ import annotations

import math

import pytest

from emolive.emotions import (
    describe,
    describe_as_asked,
    from_valence_arousal,
    known_emotions,
    parse_emotion,
    quadrant_of,
    to_valence_arousal,
)


@pytest.mark.parametrize("emotion,weights", [
    ("sad", (0.0, 0.0, 1.0, 0.0)),
    ("Q4", (0.0, 0.0, 0.0, 1.0)),
    ("happy:0.6,calm:0.4", (0.6, 0.0, 0.0, 0.4)),
    ("happy,calm", (0.5, 0.0, 0.0, 0.5)),
    ("happy:1,excited:1,calm:2", (0.5, 0.0, 0.0, 0.5)),  # two names of Q1 add up
    ({"tense": 3, "sad": 1}, (0.0, 0.75, 0.25, 0.0)),
    ([0, 2, 0, 2], (0.0, 0.5, 0.0, 0.5)),
    ((1.0, 1.0), (1.0, 0.0, 0.0, 0.0)),  # (valence, arousal)
    ("happy:1e308,excited:1e308", (1.0, 0.0, 0.0, 0.0)),  # too large to add: still a weight
])
def test_accepted_forms(emotion, weights) -> None:
    assert parse_emotion(emotion) == pytest.approx(weights)


@pytest.mark.parametrize("emotion,message", [
    ("happy:-1,excited:2,calm:1", "the weight of 'happy' must be a finite number >= 0, got -1.0"),
    ({"happy": -1, "excited": 2}, "the weight of 'happy' must be a finite number >= 0"),
    ({"happy": None}, "the weight of 'happy' must be a number, got None"),
    ({"happy": True}, "the weight of 'happy' must be a number, got True"),
    ("happy:nan", "must be a finite number >= 0, got nan"),
    ("happy:0,calm:0", "must not all be zero"),
    ([True, False, False, False], "emotion weights must be numbers"),
    ([1, 0, 0, "x"], "emotion weights must be numbers"),
    (["happy", "calm"], "to blend emotions write 'happy,calm'"),
    ((True, 0.5), "two values are (valence, arousal)"),
    ([0.1, 0.2, 0.3], "got 3 values"),
    ("joyous", "unknown emotion 'joyous'"),
    ([10**400, 0, 0, 0], "must be finite and non-negative"),  # was OverflowError
    ({"happy": 10**400}, "must be a finite number >= 0, got inf"),
    ({"happy": -10**400}, "must be a finite number >= 0, got -inf"),  # not "inf": its sign kept
    ((10**400, 0), "valence must be a number in [-1, 1]"),
])
def test_what_is_not_an_emotion_is_a_clear_value_error(emotion, message) -> None:
    with pytest.raises(ValueError) as error:
        parse_emotion(emotion)
    assert message in str(error.value)


@pytest.mark.parametrize("emotion", [b"calm", bytearray(b"\x00\x00\x01\x00"), memoryview(b"sad!")])
def test_bytes_are_not_four_weights(emotion) -> None:
    """bytes are a sequence of ints: b"calm" was taken as the weights 99, 97, 108, 109."""
    with pytest.raises(TypeError, match="not (bytes|bytearray|memoryview)"):
        parse_emotion(emotion)


def test_valence_arousal_refuses_bools_and_round_trips() -> None:
    with pytest.raises(ValueError, match="valence must be a number"):
        from_valence_arousal(True, 0.0)
    for valence, arousal in ((0.3, -0.7), (-1.0, 1.0), (0.0, 0.0)):
        back = to_valence_arousal(from_valence_arousal(valence, arousal))
        assert all(math.isclose(a, b, abs_tol=1e-12) for a, b in zip(back, (valence, arousal)))


def test_describe_names_a_pure_quadrant_and_lists_a_blend() -> None:
    assert describe(parse_emotion("excited")) == "happy"
    assert describe((0.6, 0.0, 0.0, 0.4)) == "happy:0.60,calm:0.40"
    # A weight that would read 0.00 is left out (a controller at 1 of 127 from calm).
    assert describe(from_valence_arousal(1.0, -1.0 + 2 / 127)) == "happy:0.01,calm:0.99"
    assert describe((0.004, 0.004, 0.496, 0.496)) == "sad:0.50,calm:0.50"


# The documented names (README.md, docs/cli.md, docs/engine.md), written out here rather than
# read from QUADRANT_NAMES, so that a name dropped from the code is noticed.
@pytest.mark.parametrize("name,quadrant", [
    ("happy", "Q1"), ("excited", "Q1"), ("joyful", "Q1"),
    ("tense", "Q2"), ("angry", "Q2"), ("anxious", "Q2"), ("fearful", "Q2"),
    ("sad", "Q3"), ("melancholic", "Q3"), ("depressed", "Q3"),
    ("calm", "Q4"), ("relaxed", "Q4"), ("peaceful", "Q4"),
])
def test_every_documented_name_parses_to_its_quadrant(name: str, quadrant: str) -> None:
    expected = tuple(1.0 if q == quadrant else 0.0 for q in ("Q1", "Q2", "Q3", "Q4"))
    assert parse_emotion(name) == expected, f"{name!r} should be pure {quadrant}"
    assert quadrant_of(name) == quadrant
    assert name in known_emotions()


def test_known_emotions_list_the_quadrant_codes_first() -> None:
    assert known_emotions()[:4] == ["Q1", "Q2", "Q3", "Q4"]


def test_four_weights_refuse_a_negative_weight() -> None:
    with pytest.raises(ValueError, match="finite and non-negative"):
        parse_emotion([1.0, -0.5, 0.0, 0.0])


def test_four_zero_weights_are_a_value_error_not_a_division_by_zero() -> None:
    with pytest.raises(ValueError, match="must not all be zero"):
        parse_emotion([0, 0, 0, 0])


def test_a_blend_name_without_a_weight_weighs_one() -> None:
    # "happy" weighs 1 by default, as "calm:1": 1 / (1 + 1) each.
    assert parse_emotion("happy,calm:1") == pytest.approx((0.5, 0.0, 0.0, 0.5))


def test_spaces_around_blend_names_are_ignored() -> None:
    assert parse_emotion(" happy, calm ") == pytest.approx((0.5, 0.0, 0.0, 0.5))
    assert parse_emotion(" happy : 3 , calm ") == pytest.approx((0.75, 0.0, 0.0, 0.25))


def test_describe_as_asked_repeats_no_blend_string() -> None:
    """A blend string ("happy:1") is not an alias to show beside the quadrant's name."""
    assert describe_as_asked("happy:1", (1.0, 0.0, 0.0, 0.0)) == "happy"
    assert describe_as_asked("excited", (1.0, 0.0, 0.0, 0.0)) == "excited (happy)"
