"""Steering the emotion from MIDI controllers: pure logic fed with messages."""

from __future__ import annotations

import pytest

from emolive.emotions import parse_emotion, to_valence_arousal
from emolive.midi_control import CcMap, CcSteering, cc_to_unit


def cc(controller: int, value: int, channel: int = 1) -> bytes:
    return bytes([0xB0 | (channel - 1), controller, value])


def test_cc_range_maps_to_unit_range() -> None:
    assert cc_to_unit(0) == -1.0
    assert cc_to_unit(127) == 1.0
    assert cc_to_unit(64) == pytest.approx(0.0, abs=0.01)


def test_default_controllers_steer_to_each_quadrant() -> None:
    steering = CcSteering()
    assert steering.take() is None  # nothing received yet
    for valence, arousal, quadrant in ((127, 127, "happy"), (0, 127, "tense"), (0, 0, "sad"), (127, 0, "calm")):
        assert steering.feed(cc(20, valence)) and steering.feed(cc(21, arousal))
        assert steering.take() == pytest.approx(parse_emotion(quadrant))
        assert steering.take() is None  # reported once


def test_one_controller_keeps_the_other_coordinate_from_the_start_emotion() -> None:
    steering = CcSteering(start=parse_emotion("sad"))  # valence -1, arousal -1
    steering.feed(cc(21, 127))  # arousal up only
    weights = steering.take()
    assert weights is not None
    assert to_valence_arousal(weights) == pytest.approx((-1.0, 1.0))
    assert weights == pytest.approx(parse_emotion("tense"))


def test_other_messages_and_channels_are_ignored() -> None:
    steering = CcSteering(CcMap(valence_cc=1, arousal_cc=2, channel=3))
    assert not steering.feed(cc(1, 0, channel=4))  # wrong channel
    assert not steering.feed(cc(7, 0, channel=3))  # another controller
    assert not steering.feed(bytes([0x90, 60, 100]))  # a note
    assert not steering.feed(bytes([0xF8]))  # clock
    assert not steering.feed(bytes([0xB2, 1, 255]))  # a data byte over 127: no MIDI (it was read as 127)
    assert steering.take() is None
    assert steering.feed(cc(1, 0, channel=3))
    assert steering.point == pytest.approx((-1.0, 0.0))


@pytest.mark.parametrize("kwargs, message", [
    ({"valence_cc": 128}, "0..127"),
    ({"arousal_cc": -1}, "0..127"),
    ({"valence_cc": 5, "arousal_cc": 5}, "different controllers"),
    ({"channel": 0}, "1..16"),
    ({"channel": 17}, "1..16"),
])
def test_bad_mappings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CcMap(**kwargs)


def test_an_emotion_set_another_way_is_what_an_unmoved_axis_keeps() -> None:
    """After the key for happy, moving valence alone gave sad (the starting calm's arousal),
    not tense: a key or --morph-to aims the controllers' point too."""
    from emolive.live_keys import KeyCommands

    class Engine:
        def set_emotion(self, weights, bars: float = 0) -> None:
            self.weights = weights

    steering = CcSteering(start=parse_emotion("calm"))
    keys = KeyCommands(Engine(), 0, on_emotion=steering.aim)
    keys.press("1")  # happy
    assert steering.take() is None and not steering.moved  # aimed, nothing to apply
    steering.feed(cc(20, 0))  # valence down only
    assert steering.take() == pytest.approx(parse_emotion("tense"))


def test_a_typed_alias_is_confirmed_with_its_quadrant() -> None:
    """`/excited` said only "-> happy": the name typed was not shown."""
    from emolive.live_keys import KeyCommands
    from emolive.terminal import ENTER

    class Engine:
        def set_emotion(self, weights, bars: float = 0) -> None:
            pass

    keys = KeyCommands(Engine(), 2)
    for typed in ("excited", "Happy", "sad:0.5,calm:0.5", "q3"):
        keys.press("/")
        for key in typed:
            keys.press(key)
        keys.press(ENTER)
    assert keys.messages == ["-> excited (happy) over 2 bars", "-> happy over 2 bars",
                             "-> sad:0.50,calm:0.50 over 2 bars", "-> q3 (sad) over 2 bars"]


@pytest.mark.parametrize("how", ["controllers", "key"])
def test_what_is_chosen_before_a_synced_start_is_what_starts(how: str) -> None:
    """Under --sync, CC values a DAW sent before its Start, or a key pressed then (confirmed on
    screen), were overwritten by --emotion at the start: it played calm."""
    import argparse

    from emolive.live import Session

    class Engine:
        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def set_emotion(self, weights, bars: float = 0) -> None:
            self.calls.append(("set_emotion", tuple(weights), bars))

        def resume(self, bar: int | None = None) -> None:
            self.calls.append(("resume", bar))

    engine = Engine()
    args = argparse.Namespace(sync="master", control_port="master", glide_bars=1.0, valence_cc=20,
                              arousal_cc=21, control_channel=None, morph_to=None, morph_bars=None, quiet=False)
    session = Session(engine, args, parse_emotion("calm"))
    session.set_starting_emotion()  # as run() does first
    if how == "controllers":
        session.steering.feed(cc(20, 0))
        session.steering.feed(cc(21, 127))
        session.apply_controllers()  # the main loop, while waiting for the master's Start
    else:
        session.commands.press("2")  # tense
    session.start()  # the master's Start
    emotions = [call[1] for call in engine.calls if call[0] == "set_emotion"]
    assert emotions[0] == pytest.approx(parse_emotion("calm"))  # shown while waiting
    assert emotions[-1] == pytest.approx(parse_emotion("tense"))
    assert engine.calls[-1] == ("resume", 0)


def test_controller_numbers_and_channel_may_be_numpy_integers() -> None:
    """np.int64(20) was refused, where the port functions take numpy integers."""
    np = pytest.importorskip("numpy")
    mapping = CcMap(valence_cc=np.int64(1), arousal_cc=np.uint8(2), channel=np.int32(5))
    assert (mapping.valence_cc, mapping.arousal_cc, mapping.channel) == (1, 2, 5)
    assert type(mapping.valence_cc) is int and type(mapping.channel) is int
    for bad in (True, 1.0, np.int64(128)):
        with pytest.raises(ValueError, match="valence CC must be a controller number 0..127"):
            CcMap(valence_cc=bad)


def test_an_emotion_set_by_a_key_after_a_controller_drops_the_controllers_point_not_yet_taken() -> None:
    """A CC, then a key within the same 50 ms poll: the main loop took the controllers after
    the key, and the key's point (through valence/arousal) replaced the key's glide with a jump
    (helper-70). A CC after the key still counts."""
    steering = CcSteering()
    steering.feed(cc(20, 0))
    steering.feed(cc(21, 0))  # sad, not yet taken
    steering.aim(parse_emotion("happy:0.3,sad:0.7"))  # the key: newer
    assert steering.take() is None
    steering.feed(cc(21, 127))  # a controller after the key: applied
    assert steering.take() is not None
