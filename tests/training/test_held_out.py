"""The held-out listeners: folds of whole validation songs, judged by listeners that never heard them."""

from __future__ import annotations

import numpy as np
import pytest

from emolive.training.held_out import compared, difference_interval, held_out_listeners, song_folds
from emolive.training.model import FRAME_SIZE

N_KEYS = 88


def _songs_in_quadrant_registers(n_songs: int, per_song: int, steps: int, seed: int):
    """Segments whose quadrant is audible: quadrant q plays only in the q-th quarter of the
    keyboard (a listener that transposes by up to 7 semitones still hears it). Each song keeps
    one quadrant, as EMOPIA's clips mostly do."""
    rng = np.random.default_rng(seed)
    rolls, labels, songs = [], [], []
    for song in range(n_songs):
        q = song % 4
        for _ in range(per_song):
            roll = np.zeros((steps, FRAME_SIZE), dtype=np.float32)
            keys = rng.integers(22 * q + 7, 22 * q + 15, size=steps)
            roll[np.arange(steps), keys] = 1.0  # onset
            roll[np.arange(steps), N_KEYS + keys] = 1.0  # hold
            roll[np.arange(steps), 2 * N_KEYS + keys] = 0.6  # velocity
            rolls.append(roll)
            labels.append(q)
            songs.append(f"song{song}")
    return np.stack(rolls), np.array(labels), np.array(songs)


def test_song_folds_keep_each_song_whole_and_every_quadrant_heard() -> None:
    songs = np.array([f"s{i % 12}" for i in range(120)])
    label = np.array([int(song[1:]) % 4 for song in songs])  # three songs per quadrant
    for seed in range(20):
        fold = song_folds(songs, label, 3, seed=seed)
        for song in np.unique(songs):
            assert len(set(fold[songs == song])) == 1  # never both heard and judged
        for f in range(3):  # each listener hears all four quadrants
            assert set(label[fold != f]) == {0, 1, 2, 3}
    assert np.array_equal(fold, song_folds(songs, label, 3, seed=19))  # seeded


def test_listeners_hear_what_real_music_says_and_not_noise() -> None:
    real, label, songs = _songs_in_quadrant_registers(12, 6, 8, seed=0)
    copies = np.stack([real[label == q][:12] for q in range(4)])  # "generated" that sounds right
    held = held_out_listeners(real, label, songs, copies, folds=3, steps=150, seed=0,
                              log=lambda _: None)
    assert held["folds"] == 3 and held["songs"] == 12
    assert sum(f["songs_judged"] for f in held["per_fold"]) == 12
    assert held["real_val_accuracy"] >= 0.9  # out-of-fold: songs no listener heard
    assert held["generated_accuracy"] >= 0.9
    assert np.sum(held["generated_confusion"]) == 3 * 48  # every fold judges every generated one
    wrong = np.stack([real[label == (q + 2) % 4][:12] for q in range(4)])  # the opposite quadrant
    held = held_out_listeners(real, label, songs, wrong, folds=3, steps=150, seed=0,
                              log=lambda _: None)
    assert held["generated_accuracy"] <= 0.1 and held["real_val_accuracy"] >= 0.9
    low, high = held["generated_minus_real_interval"]
    assert low <= high < -0.7  # clearly worse: the interval says so


def test_listeners_that_would_not_hear_every_quadrant_give_no_figures() -> None:
    """Two validation songs of two quadrants: each listener heard only the other's, real
    accuracy was 0 and the verdict "met" by construction (helper-88)."""
    real, label, songs = _songs_in_quadrant_registers(4, 4, 8, seed=0)  # one song per quadrant
    held = held_out_listeners(real, label, songs, real[None].repeat(4, 0), folds=2, steps=2, seed=0,
                              log=lambda _: None)
    assert held == {"skipped": "with 4 validation song(s) in 2 folds, a listener would not hear every "
                               "quadrant (each needs at least two songs)"}


@pytest.mark.parametrize(("label", "songs", "latents", "why"), [
    (np.repeat([0, 1, 2], 40), np.arange(120) // 4, 64, "the validation segments hold no Q4"),
    (np.arange(120) % 4, np.arange(120) % 9, 64, "9 validation song(s) (an interval needs 10)"),
    (np.arange(120) % 4, np.arange(120) // 4, 3, "3 generated latent(s) (an interval needs 10)"),
])
def test_an_interval_is_not_drawn_from_too_little_music(label, songs, latents: int, why: str) -> None:
    """One song gave a "95% interval" of no width; validation without a quadrant compared real
    music of three quadrants with generated music of four (helper-88)."""
    assert compared(np.ones(len(label), bool), label, songs, np.ones((latents, 4), bool), seed=0) == {
        "interval_not_measured": why}


@pytest.mark.parametrize("n_songs", [1])
def test_one_song_makes_no_folds(n_songs: int) -> None:
    real, label, songs = _songs_in_quadrant_registers(n_songs, 4, 8, seed=0)
    held = held_out_listeners(real, label, songs, real[None].repeat(4, 0), folds=4, steps=2,
                              seed=0, log=lambda _: None)
    assert held == {"skipped": "1 validation song(s): no two folds"}


def test_the_difference_interval_holds_zero_for_equals_and_not_for_a_clear_gap() -> None:
    rng = np.random.default_rng(0)
    clips = np.repeat(np.arange(100), 10)  # 100 clips of 10 segments
    real_right = rng.permutation(np.repeat([True, False], 500))  # exactly half right
    same = rng.permutation(np.repeat([True, False], 1024)).reshape(256, 8)  # 256 latents, 4 requests x 2 listeners
    low, high = difference_interval(real_right, clips, same, seed=0)
    assert low < 0 < high and high - low < 0.2
    better = rng.random((256, 8)) < 0.8
    better_low, better_high = difference_interval(real_right, clips, better, seed=0)
    assert 0.2 < better_low < better_high < 0.4
    # Songs are drawn whole: a song's segments all right or all wrong widen the interval.
    by_song = np.repeat(rng.permutation(np.repeat([True, False], 50)), 10)
    wide_low, wide_high = difference_interval(by_song, clips, same, seed=0)
    assert wide_high - wide_low > 1.5 * (high - low)
    # Latents are drawn whole: a latent's answers all right or all wrong widen it too.
    by_latent = np.repeat(rng.permutation(np.repeat([True, False], 128)), 8).reshape(256, 8)
    latent_low, latent_high = difference_interval(real_right, clips, by_latent, seed=0)
    assert latent_high - latent_low > 1.5 * (high - low)


@pytest.mark.parametrize(("interval", "verdict"), [
    ([0.01, 0.05], "met (generated minus real +3.0 points"),
    ([-0.05, -0.01], "**missed** (generated minus real +3.0 points"),  # an interval is what decides
    ([-0.02, 0.08], "not shown either way: the point estimate meets it, but the interval holds 0"),
])
def test_the_report_says_what_the_interval_shows(interval: list[float], verdict: str) -> None:
    from emolive.training.report_text import _difference_verdict

    judged = {"generated_accuracy": 0.53, "real_val_accuracy": 0.50, "generated_minus_real_interval": interval,
              "level": 0.95, "real_drawn_by": "song", "songs": 32, "latents": 256}
    assert _difference_verdict(judged).startswith(verdict)
    assert "drawn by whole songs (32), generated by latent (256)" in _difference_verdict(judged)
    del judged["real_drawn_by"]  # stop 39's first metrics.json: drawn by clip
    assert "drawn by whole clips" in _difference_verdict(judged)
    del judged["generated_minus_real_interval"]  # before stop 39: a point estimate only
    assert _difference_verdict(judged) == "met by the point estimate only (no interval)"
    assert _difference_verdict({**judged, "interval_not_measured": "9 validation song(s) (an interval needs 10)"}) \
        == "not measured: 9 validation song(s) (an interval needs 10)"
