"""One MIDI file -> its notes (mido), in seconds and beats, the damper pedal applied: what the
features are made from (training/features.py). A file that cannot be used raises
:class:`MidiReadError`, which the loaders count as a skip with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

SUSTAIN_CC = 64  # damper pedal; values >= 64 mean down
# A file longer than this is treated as corrupt (absurd delta times or tempos): its roll would
# need gigabytes. 2 hours, and 36,000 beats (2 hours at 300 BPM).
MAX_FILE_SECONDS = 7200.0
MAX_FILE_BEATS = 36_000.0
# A tempo faster than this is corruption, not music: 1,000 us per beat squeezed a performed file
# into a few steps of the beat-tracked grid. None of the 2,923 files of the shared data is
# faster than 1,000 BPM (checked 2026-12-06); MIDI's slowest, 16.7 s per beat, is allowed.
MIN_TEMPO_US = 60_000  # microseconds per beat: 1,000 BPM


@dataclass
class Notes:
    """Notes of one file, sorted by onset. Times in seconds (tempo map applied) and in beats
    (ticks / ticks_per_beat); ends are after sustain-pedal extension when it was applied."""

    pitch: np.ndarray  # int, MIDI 0..127
    velocity: np.ndarray  # int, 1..127
    start_s: np.ndarray
    end_s: np.ndarray
    start_beat: np.ndarray
    end_beat: np.ndarray
    beat_s: np.ndarray  # seconds per beat (tempo) at each onset
    tempo_changes: int  # number of distinct set_tempo values in the file

    def __len__(self) -> int:
        return len(self.pitch)


class MidiReadError(ValueError):
    """A file that cannot be used: unreadable, corrupt or without notes."""


def _reason(err: Exception) -> str:
    """mido's error, or what it means where mido gives no text (a bare EOFError: "skipped x.mid:
    unreadable MIDI: EOFError: " said nothing)."""
    if str(err):
        return f"{type(err).__name__}: {err}"
    if isinstance(err, EOFError):
        return "the file ends early (truncated, empty or not MIDI)"
    return type(err).__name__


def read_notes(path: Path | str, sustain: bool = True) -> Notes:
    """All notes of a MIDI file (every track and channel but drums, channel 10).

    With ``sustain`` a note released while the damper pedal is down sounds until the pedal
    comes up (or the same key is struck again). Raises :class:`MidiReadError`.
    """
    try:
        midi = mido.MidiFile(str(path))
    except Exception as err:  # noqa: BLE001 - mido raises many types for corrupt files
        raise MidiReadError(f"unreadable MIDI: {_reason(err)}") from None
    if midi.type == 2:
        raise MidiReadError("MIDI type 2 (independent sequences) is not supported")
    tpb = midi.ticks_per_beat
    if not tpb or tpb <= 0:
        raise MidiReadError("SMPTE time division is not supported (no ticks per beat)")
    rows: list[tuple[float, ...]] = []  # pitch, velocity, start s, end s, start/end beat, s/beat
    sounding: dict[tuple[int, int], tuple[int, float, float, float]] = {}  # (ch, pitch) -> vel,
    held_by_pedal: dict[tuple[int, int], tuple[int, float, float, float]] = {}  # s, beat, s/beat
    pedal_down = [False] * 16
    # (ch, pitch) -> the tick at which a note-on ended the key's sounding note. A file may write
    # a repeated note as note-on (new) then note-off (old) at one tick: that note-off is the old
    # note's, already ended, and must not end the new one at length 0.
    restruck: dict[tuple[int, int], int] = {}
    tempos = set()
    drum_notes = 0  # note-ons on channel 10, which are not read
    seconds, ticks = 0.0, 0
    try:
        merged = mido.merge_tracks(midi.tracks)
        tempo = 500000  # microseconds per beat until the first set_tempo
        for msg in merged:
            ticks += msg.time
            seconds += mido.tick2second(msg.time, tpb, tempo)
            beat = ticks / tpb
            if msg.type == "set_tempo":
                if msg.tempo < MIN_TEMPO_US:
                    raise MidiReadError(f"absurd tempo: {6e7 / max(msg.tempo, 1):.0f} BPM ({msg.tempo} us per "
                                        f"beat) at beat {beat:.1f}; the limit is {6e7 / MIN_TEMPO_US:.0f} BPM")
                tempo = msg.tempo
                tempos.add(tempo)
                continue
            if msg.is_meta or not hasattr(msg, "channel"):
                continue
            if msg.channel == 9:
                drum_notes += msg.type == "note_on" and msg.velocity > 0
                continue
            ch = msg.channel
            if msg.type == "control_change" and msg.control == SUSTAIN_CC and sustain:
                pedal_down[ch] = msg.value >= 64
                if not pedal_down[ch]:
                    for key in [k for k in held_by_pedal if k[0] == ch]:
                        vel, s0, b0, spb = held_by_pedal.pop(key)
                        rows.append((key[1], vel, s0, seconds, b0, beat, spb))
                continue
            if msg.type not in ("note_on", "note_off"):
                continue
            key = (ch, msg.note)
            for table in (sounding, held_by_pedal):  # a re-strike ends the previous note
                if key in table and msg.type == "note_on" and msg.velocity > 0:
                    vel, s0, b0, spb = table.pop(key)
                    rows.append((msg.note, vel, s0, seconds, b0, beat, spb))
                    restruck[key] = ticks
            if msg.type == "note_on" and msg.velocity > 0:
                sounding[key] = (msg.velocity, seconds, beat, tempo / 1e6)
            elif restruck.pop(key, None) == ticks and key in sounding and sounding[key][2] == beat:
                pass  # the re-struck note's own note-off, written after the new note-on: ended
            elif key in sounding:
                if pedal_down[ch]:
                    held_by_pedal[key] = sounding.pop(key)
                else:
                    vel, s0, b0, spb = sounding.pop(key)
                    rows.append((msg.note, vel, s0, seconds, b0, beat, spb))
    except MidiReadError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as err:
        raise MidiReadError(f"corrupt MIDI events: {err}") from None
    for key, (vel, s0, b0, spb) in {**sounding, **held_by_pedal}.items():
        rows.append((key[1], vel, s0, seconds, b0, ticks / tpb, spb))  # unterminated: end of file
    struck = len(rows)
    rows = [r for r in rows if r[3] > r[2] or r[5] > r[4]]  # a note-off on its note-on's tick: none
    if not rows:
        if struck:  # "no notes" sent the user looking for an empty file (helper-61)
            raise MidiReadError(f"{struck} note{'s' if struck != 1 else ''}, all of length 0 (each "
                                "note-off on its note-on's tick)")
        raise MidiReadError(f"no notes but {drum_notes} drum note{'s' if drum_notes != 1 else ''} "
                            "(channel 10, not read)" if drum_notes else "no notes")
    rows.sort(key=lambda r: (r[2], r[0]))
    arr = np.array(rows, dtype=np.float64)
    if arr[:, 3].max() > MAX_FILE_SECONDS or arr[:, 5].max() > MAX_FILE_BEATS:
        raise MidiReadError(f"absurd length: notes reach {arr[:, 3].max():.0f} s, beat "
                            f"{arr[:, 5].max():.0f} (limits {MAX_FILE_SECONDS:.0f} s, "
                            f"{MAX_FILE_BEATS:.0f} beats)")
    return Notes(pitch=arr[:, 0].astype(np.int64), velocity=arr[:, 1].astype(np.int64),
                 start_s=arr[:, 2], end_s=arr[:, 3], start_beat=arr[:, 4], end_beat=arr[:, 5],
                 beat_s=arr[:, 6], tempo_changes=len(tempos))
