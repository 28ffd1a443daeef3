"""Helpers writing MIDI files with mido for the training tests (known notes, tempi, labels)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import mido

Note = tuple[int, int, float, float]  # pitch, velocity, start beat, end beat


def write_midi(path: Path, notes: Sequence[Note], tempi: Sequence[tuple[float, float]] = ((0, 120),),
               ticks_per_beat: int = 480, extra: Sequence[tuple[float, mido.Message]] = ()) -> Path:
    """A type-1 file: a tempo track (``(beat, bpm)`` changes) and one note track."""
    tempo_track = mido.MidiTrack()
    now = 0
    for beat, bpm in tempi:
        tick = round(beat * ticks_per_beat)
        tempo_track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=tick - now))
        now = tick
    events: list[tuple[int, int, mido.Message]] = []
    for pitch, vel, start, end in notes:
        events.append((round(start * ticks_per_beat), 1, mido.Message("note_on", note=pitch,
                                                                       velocity=vel)))
        events.append((round(end * ticks_per_beat), 0, mido.Message("note_off", note=pitch)))
    for beat, msg in extra:
        events.append((round(beat * ticks_per_beat), 0, msg))
    events.sort(key=lambda e: (e[0], e[1]))
    note_track = mido.MidiTrack()
    now = 0
    for tick, _, msg in events:
        note_track.append(msg.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat, tracks=[tempo_track, note_track])
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(str(path))
    return path


def scale_notes(root: int, minor: bool, bars: int = 4, velocity: int = 80) -> list[Note]:
    """Eighth notes up and down a major or minor scale with a held root, ``bars`` 4/4 bars."""
    steps = [0, 2, 3, 5, 7, 8, 10, 12] if minor else [0, 2, 4, 5, 7, 9, 11, 12]
    notes: list[Note] = []
    for i in range(bars * 8):
        pitch = root + steps[i % 8] if (i // 8) % 2 == 0 else root + steps[7 - i % 8]
        notes.append((pitch, velocity, i * 0.5, i * 0.5 + 0.5))
    for bar in range(bars):
        notes.append((root - 12, velocity - 20, bar * 4.0, bar * 4.0 + 4.0))
    return notes


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
