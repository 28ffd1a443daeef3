"""Engine.generate_many on a tiny random model: the batched offline path gives, piece by piece,
what generate() gives for the same seed; arguments; every piece ends with its notes off."""

from __future__ import annotations

import mido
import pytest

from emolive import Engine
from emolive.emotions import parse_emotion
from tests.midi_events import note_events


def singles(engine: Engine, seeds: list[int], bars: int, **kwargs) -> list[list[tuple]]:
    return [note_events(engine.generate(bars, seed=s, **kwargs)) for s in seeds]


def test_each_piece_equals_generate_with_its_seed(engine: Engine) -> None:
    seeds = [0, 1, 2, 99, 2**64 - 1]
    pieces = engine.generate_many(5, 4, "happy", seeds=seeds)
    assert all(isinstance(p, mido.MidiFile) for p in pieces)
    assert [note_events(p) for p in pieces] == singles(engine, seeds, 4, emotion="happy")
    assert len({tuple(note_events(p)) for p in pieces}) == 5  # distinct seeds, distinct music
    assert all(p.length == pytest.approx(4 * 2.0) for p in pieces)


def test_default_seeds_follow_the_engine_seed(engine: Engine) -> None:
    pieces = engine.generate_many(3, 2, "sad")
    assert note_events(pieces[0]) == note_events(engine.generate(2, "sad"))
    assert [note_events(p) for p in pieces] == singles(engine, [11, 12, 13], 2, emotion="sad")


def test_count_one_equals_generate(engine: Engine) -> None:
    [piece] = engine.generate_many(1, 3, "calm", seeds=[7])
    assert note_events(piece) == note_events(engine.generate(3, "calm", seed=7))


def test_morph_in_a_batch_equals_morph_per_seed(engine: Engine) -> None:
    seeds = [3, 4, 5, 6]
    morphed = engine.generate_many(4, 4, "happy", seeds=seeds, morph_to="sad", morph_bars=2)
    expected = singles(engine, seeds, 4, emotion="happy", morph_to="sad", morph_bars=2)
    assert [note_events(p) for p in morphed] == expected
    assert expected != singles(engine, seeds, 4, emotion="happy")
    whole = engine.generate_many(2, 4, "happy", seeds=[3, 4], morph_to="sad")  # glide over all
    assert [note_events(p) for p in whole] == singles(engine, [3, 4], 4, emotion="happy",
                                                      morph_to="sad")


def test_engine_settings_apply_to_every_piece(engine: Engine) -> None:
    engine.set_key("A", "minor")
    engine.set_temperature(2.0)
    engine.set_walk_rate(0.5)
    seeds = [21, 22, 23]
    pieces = engine.generate_many(3, 4, "excited", seeds=seeds)
    assert [note_events(p) for p in pieces] == singles(engine, seeds, 4, emotion="excited")
    a_minor = {9, 11, 0, 2, 4, 5, 7}
    assert all(n % 12 in a_minor for p in pieces for _, kind, n, _ in note_events(p)
               if kind == "note_on")


def test_uneven_chunks_on_two_threads_give_the_same_pieces(engine: Engine) -> None:
    """10 streams in chunks of at most 3 (3+2+3+2... sizes) on 2 threads, against one batch."""
    weights = parse_emotion("happy")
    seeds = list(range(100, 110))
    one_batch = engine._core.generate_many(64, weights, seeds, None, 0, 64, 1)
    chunked = engine._core.generate_many(64, weights, seeds, None, 0, 3, 2)
    per_seed = [engine._core.generate(64, weights, s) for s in seeds]
    for a, b, c in zip(one_batch, chunked, per_seed):
        assert a.tolist() == b.tolist() == c.tolist()
    with pytest.raises(ValueError, match="batch size"):
        engine._core.generate_many(64, weights, seeds, None, 0, 0, 1)


def test_every_piece_ends_with_its_notes_off(engine: Engine) -> None:
    engine.set_temperature(3.0)  # dense notes: many still sound at the last step
    pieces = engine.generate_many(12, 2, "excited", seeds=list(range(12)))
    end_tick = 2 * 16 * 120
    closed_at_end = 0
    for piece in pieces:
        sounding: set[int] = set()
        for tick, kind, note, _ in note_events(piece):
            assert tick <= end_tick
            if kind == "note_on":
                assert note not in sounding
                sounding.add(note)
            else:
                assert note in sounding
                sounding.discard(note)
                closed_at_end += tick == end_tick
        assert not sounding, "a note still sounds at the end of a piece"
    assert closed_at_end > 0  # the final note-offs were needed, so the check meant something


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"count": 0, "bars": 2}, ValueError, "count must be in 1..10000"),
    ({"count": -3, "bars": 2}, ValueError, "count"),
    ({"count": 2.5, "bars": 2}, TypeError, "count must be an integer"),
    ({"count": True, "bars": 2}, TypeError, "count"),
    ({"count": 2, "bars": 0}, ValueError, "bars"),
    ({"count": 200, "bars": 1000}, ValueError, "at most 100000 bars in all"),
    ({"count": 2, "bars": 2, "seeds": [1]}, ValueError, "one seed per piece: count is 2, got 1"),
    ({"count": 2, "bars": 2, "seeds": [1, 2, 3]}, ValueError, "one seed per piece: count is 2, got 3"),
    ({"count": 2, "bars": 2, "seeds": [1, -1]}, ValueError, r"seeds\[1\]"),
    ({"count": 2, "bars": 2, "seeds": [1, 2.0]}, TypeError, r"seeds\[1\]"),
    ({"count": 2, "bars": 2, "seeds": "12"}, TypeError, "sequence of integers"),
    ({"count": 2, "bars": 2, "seeds": 5}, TypeError, "sequence of integers"),
    ({"count": 2, "bars": 2, "morph_bars": 1}, ValueError, "morph_bars needs morph_to"),
    ({"count": 2, "bars": 2, "morph_to": "sad", "morph_bars": 200000}, ValueError, "morph_bars must be"),
    ({"count": 2, "bars": 2, "morph_to": "sad", "morph_bars": float("nan")}, ValueError, "morph_bars must be"),
    ({"count": 2, "bars": 2, "morph_to": "sad", "morph_bars": 2.5}, ValueError, r"morph_bars \(2.5\) is longer than bars \(2\)"),
    ({"count": 2, "bars": 2, "emotion": "grumpy"}, ValueError, "emotion"),
])
def test_bad_arguments_give_clear_errors(engine: Engine, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        engine.generate_many(**kwargs)


def test_a_morph_may_be_as_long_as_the_longest_piece() -> None:
    """morph_bars stopped at 10,000 (the live glides' limit) where bars goes to 100,000, and
    leaving it out glided over all of them."""
    from emolive.arguments import offline_arguments

    assert offline_arguments(20_000, "calm", "sad", 15_000)[3] == 15_000 * 16
    assert offline_arguments(20_000, "calm", "sad", None)[3] == 20_000 * 16


def test_a_fractional_morph_rounds_to_the_nearest_sixteenth() -> None:
    from emolive.arguments import offline_arguments

    # 0.99 bar is 15.84 sixteenths: 16 steps (a whole bar), not 15 cut off.
    assert offline_arguments(1, "calm", "sad", 0.99)[3] == 16
    assert offline_arguments(2, "calm", "sad", 0.02)[3] == 0  # 0.32 sixteenths


def test_default_seeds_past_the_largest_are_refused_not_wrapped_to_0(tiny_model_dir) -> None:
    """Piece i's seed is engine.seed + i: an engine of seed 2**64 - 1 gave piece 1 the seed 0
    without a word (the command refuses the same with --seed and --count)."""
    with Engine(model=tiny_model_dir, seed=2**64 - 2) as engine:
        assert len(engine.generate_many(2, 1, "sad")) == 2  # seeds 2**64 - 2 and 2**64 - 1
        with pytest.raises(ValueError, match=r"leaves room for 2 piece\(s\), not 3: give seeds"):
            engine.generate_many(3, 1, "sad")
