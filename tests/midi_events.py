"""Note events of a generated MidiFile, for comparing pieces in tests."""

from __future__ import annotations

import mido


def note_events(midi: mido.MidiFile) -> list[tuple[int, str, int, int]]:
    """(absolute tick, type, note, velocity) of every note message of the first track."""
    out, now = [], 0
    for msg in midi.tracks[0]:
        now += msg.time
        if msg.type in ("note_on", "note_off"):
            out.append((now, msg.type, msg.note, msg.velocity))
    return out
