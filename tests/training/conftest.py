"""Fixtures of the training tests: labelled MIDI folders written with mido."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # two threads on two busy cores run several times slower

from midi_factory import scale_notes, write_csv, write_midi  # noqa: E402


@pytest.fixture
def labelled_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A generic labelled folder, 8 songs: major/minor scales, loud for high arousal; one song
    per emotion in train and one in val (``split`` column)."""
    folder = tmp_path / "mine"
    kinds = {"happy": (False, 100), "tense": (True, 105), "sad": (True, 45), "calm": (False, 50)}
    rows = []
    for song in range(8):
        emotion = list(kinds)[song % 4]
        minor, velocity = kinds[emotion]
        name = f"song{song}.mid"
        write_midi(folder / name, scale_notes(57 + song, minor, velocity=velocity))
        rows.append({"path": name, "emotion": emotion, "song": f"s{song}",
                     "split": "train" if song < 4 else "val"})
    return folder, write_csv(tmp_path / "labels.csv", rows)
