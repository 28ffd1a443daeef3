"""Fixtures of the training tests: labelled MIDI folders written with mido."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # two threads on two busy cores run several times slower

from midi_factory import scale_notes, write_csv, write_midi  # noqa: E402


@pytest.fixture
def labelled_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A generic labelled folder: happy = fast major, sad = slow-ish minor; two songs each."""
    folder = tmp_path / "mine"
    rows = []
    for song, (emotion, minor, velocity) in enumerate(
            [("happy", False, 100), ("sad", True, 50), ("happy", False, 96), ("sad", True, 45)]):
        name = f"song{song}.mid"
        write_midi(folder / name, scale_notes(60 + song, minor, velocity=velocity))
        rows.append({"path": name, "emotion": emotion, "song": f"s{song}"})
    return folder, write_csv(tmp_path / "labels.csv", rows)
