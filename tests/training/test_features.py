"""Grid, piano roll, roll -> MIDI -> roll, transposition, beat tracking, segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emolive.training.notes import read_notes
from emolive.training.features import (N_KEYS, note_steps, notes_to_roll, onset_error_s,
                                       roll_notes, roll_to_midi, to_float, track_beats,
                                       transpose_roll, transpose_segments)
from emolive.training.prepare import Prepared, gather_segments, segment_starts


pytestmark = pytest.mark.training


def _roll_of(path: Path) -> np.ndarray:
    notes = read_notes(path, sustain=False)
    start, end, _ = note_steps(notes, "beats")
    return notes_to_roll(notes.pitch, notes.velocity, start, end)


@st.composite
def _grid_notes(draw) -> list[tuple[int, int, int, int]]:
    """Notes on the 16th grid, no two on one key overlapping (pitch, vel, start, end step)."""
    notes = []
    for key in draw(st.sets(st.integers(21, 108), min_size=1, max_size=6)):
        step = draw(st.integers(0, 8))
        for _ in range(draw(st.integers(1, 4))):
            length = draw(st.integers(1, 12))
            notes.append((key, draw(st.integers(1, 127)), step, step + length))
            step += length + draw(st.integers(0, 5))
    return notes


@settings(max_examples=25, deadline=None)
@given(notes=_grid_notes())
def test_roll_midi_roll_round_trip(tmp_path_factory, notes) -> None:
    pitch, vel, start, end = (np.array(col) for col in zip(*notes))
    roll = notes_to_roll(pitch, vel, start.astype(float), end.astype(float))
    path = tmp_path_factory.mktemp("rt") / "rt.mid"
    roll_to_midi(roll, path, bpm=97.0)
    again = _roll_of(path)
    np.testing.assert_array_equal(again, roll[:len(again)])
    assert not roll[len(again):].any()
    assert sorted(roll_notes(roll)) == sorted(map(tuple, notes))
    # The float layout decodes to the same notes.
    assert roll_notes(to_float(roll)) == roll_notes(roll)


def test_roll_layout_and_out_of_range_keys() -> None:
    roll = notes_to_roll(np.array([21, 108, 20, 109]), np.array([127, 64, 90, 90]),
                         np.array([0.0, 2.2, 0.0, 0.0]), np.array([2.0, 2.4, 1.0, 1.0]))
    assert roll.shape == (3, 3 * N_KEYS) and roll.dtype == np.uint8
    assert roll[0, 0] == 1 and roll[0:2, N_KEYS].tolist() == [1, 1] and roll[0, 2 * N_KEYS] == 127
    # 2.2 -> step 2, 2.4 -> 2: still one step long (minimum length).
    assert roll[2, 87] == 1 and roll[2, N_KEYS + 87] == 1 and roll[2, 2 * N_KEYS + 87] == 64
    assert roll[:, :N_KEYS].sum() == 2  # MIDI 20 and 109 are off the piano


def test_transpose_moves_all_blocks_and_drops_off_keyboard() -> None:
    roll = notes_to_roll(np.array([21, 60]), np.array([80, 81]), np.array([0.0, 0.0]),
                         np.array([1.0, 1.0]))
    up = transpose_roll(roll, 3)
    assert up[0, 3] == 1 and up[0, N_KEYS + 3] == 1 and up[0, 2 * N_KEYS + 3] == 80
    down = transpose_roll(roll, -1)
    assert down[0, :N_KEYS].sum() == 1 and down[0, 60 - 21 - 1] == 1  # A0 fell off


def test_beat_tracking_recovers_a_performed_tempo() -> None:
    """Eighth notes at 100 BPM with +-10 ms jitter, accents on the beat."""
    rng = np.random.default_rng(0)
    beat_s = 0.6
    times = np.arange(0, 40) * beat_s / 2 + 0.37 + rng.uniform(-0.01, 0.01, 40)
    weight = np.where(np.arange(40) % 2 == 0, 1.0, 0.5)
    beats = track_beats(times, weight)
    assert abs(np.median(np.diff(beats)) - beat_s) < 0.02
    steps = np.interp(times, beats, np.arange(len(beats))) * 4
    error = onset_error_s(steps, np.full(len(steps), beat_s / 4))
    assert error[2:-2].mean() < 0.015  # far below 37.5 ms, the mean for random onsets


def test_segments_skip_sparse_windows_and_pad_short_clips() -> None:
    dense = notes_to_roll(np.full(64, 60), np.full(64, 90), np.arange(64.0), np.arange(64.0) + 1)
    sparse = np.zeros((64, 3 * N_KEYS), dtype=np.uint8)
    short = dense[:10]
    prep = Prepared([dense, sparse, short], np.array([0, 1, 2]), np.array(["train"] * 3),
                    ["a", "b", "c"], ["a", "b", "c"], ["x"] * 3)
    starts = segment_starts(prep, np.array([0, 1, 2]), segment_steps=32, hop_steps=16)
    assert starts.tolist() == [[0, 0], [0, 16], [0, 32], [2, 0]]
    segs = gather_segments(prep, starts, 32)
    assert segs.shape == (4, 32, 3 * N_KEYS)
    assert segs[3, :10].any() and not segs[3, 10:].any()


def test_transpose_segments_shifts_each_segment_by_its_own_amount() -> None:
    rolls = np.zeros((2, 4, 264), dtype=np.float32)
    rolls[:, 0, 40] = rolls[:, 0, 88 + 40] = 1.0  # key 40 onset and hold in both segments
    out = transpose_segments(rolls, np.array([2, -3]))
    assert out[0, 0, 42] == 1.0 and out[0, 0, 88 + 42] == 1.0 and out[0, 0, 40] == 0.0
    assert out[1, 0, 37] == 1.0 and out[1, 0, 88 + 37] == 1.0 and out[1, 0, 40] == 0.0


def test_two_onsets_of_a_key_on_one_step_keep_the_louder_velocity() -> None:
    for velocities in ([100, 40], [40, 100]):  # either order
        roll = notes_to_roll(np.array([60, 60]), np.array(velocities), np.array([0.0, 0.0]),
                             np.array([1.0, 1.0]))
        assert roll[0, 2 * N_KEYS + 60 - 21] == 100, velocities


def test_onsets_snap_to_the_nearest_step() -> None:
    roll = notes_to_roll(np.array([60, 62]), np.array([90, 90]), np.array([3.6, 5.4]), np.array([6.0, 7.0]))
    # 3.6 -> step 4 (not 3), 5.4 -> step 5.
    assert np.flatnonzero(roll[:, 60 - 21]).tolist() == [4]
    assert np.flatnonzero(roll[:, 62 - 21]).tolist() == [5]


def _notes(start_s: np.ndarray, start_beat: np.ndarray, beat_s: float = 0.5):
    from emolive.training.notes import Notes

    n = len(start_s)
    return Notes(pitch=np.full(n, 60), velocity=np.full(n, 90), start_s=start_s, end_s=start_s + 0.1,
                 start_beat=start_beat, end_beat=start_beat + 0.2, beat_s=np.full(n, beat_s),
                 tempo_changes=1)


def test_auto_grid_keeps_the_files_beats_when_one_onset_of_ten_is_off_the_grid() -> None:
    """The rule is the mean distance from the nearest 16th (at most 0.1 step), not the largest:
    one onset half a step off in ten is a mean of 0.05 step."""
    beats = np.arange(10) * 0.25  # 16ths
    beats[5] += 0.125  # half a step off
    notes = _notes(beats * 0.5, beats)
    auto, by_beats = note_steps(notes, "auto"), note_steps(notes, "beats")
    for a, b in zip(auto, by_beats):
        np.testing.assert_array_equal(a, b)
    assert auto[0][5] == 5.5


def test_tracked_grid_counts_from_the_beat_holding_the_first_onset(monkeypatch: pytest.MonkeyPatch) -> None:
    from emolive.training import features

    # Beats tracked at 0.5, 1.0, 1.5, 2.0 s (0.5 s each). An onset at 0.25 s is half a beat
    # before the first (extrapolated at the first interval: beat -0.5), one at 1.25 s is beat 1.5.
    # The first onset's beat, floor(-0.5) = -1, is beat 0: the onsets are at beats 0.5 and 2.5,
    # steps 2 and 10.
    monkeypatch.setattr(features, "track_beats", lambda times, weight: np.array([0.5, 1.0, 1.5, 2.0]))
    notes = _notes(np.array([0.25, 1.25]), np.array([0.0, 1.0]))
    start, _end, step_s = note_steps(notes, "tracked")
    assert start == pytest.approx([2.0, 10.0])
    assert step_s == pytest.approx([0.125, 0.125])


def test_a_key_struck_again_as_its_note_ends_is_two_notes_in_the_midi_file() -> None:
    """At one tick the note-off of the note that ends goes before the note-on of the next."""
    from emolive.midi_notes import note_spans

    roll = notes_to_roll(np.array([60, 60]), np.array([90, 70]), np.array([0.0, 2.0]), np.array([2.0, 4.0]))
    spans = [(s.start_beats, s.length_beats, s.velocity) for s in note_spans(roll_to_midi(roll))]
    assert spans == [(0.0, 0.5, 90), (0.5, 0.5, 70)]  # 2 steps each: half a beat


def test_an_onset_of_velocity_zero_decodes_with_velocity_one() -> None:
    roll = np.zeros((2, 3 * N_KEYS), dtype=np.float32)
    roll[0, 39] = roll[0, N_KEYS + 39] = 1.0  # C4, velocity 0
    assert roll_notes(roll) == [(60, 1, 0, 1)]  # a note-on of velocity 0 would be a note-off
