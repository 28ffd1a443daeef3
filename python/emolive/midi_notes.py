"""MIDI files as notes: the engine's note events made into a ``mido.MidiFile``
(:func:`midi_from_events`), and any MIDI file's notes (:func:`note_spans`), length and metre in
beats (quarter notes).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import mido

from emolive.arguments import STEPS_PER_BEAT


@dataclass(frozen=True)
class NoteSpan:
    """One note: start and length in beats (quarter notes), MIDI pitch, velocity, channel 1..16."""

    start_beats: float
    length_beats: float
    pitch: int
    velocity: int
    channel: int


TICKS_PER_BEAT = 480  # MIDI files made from the engine's notes


def midi_from_events(events: list[list[int]], steps: int, bpm: float, channel: int, program: int | None,
                     model_name: str, key_signature: str | None = None) -> mido.MidiFile:
    """The engine's notes as a one-track MIDI file of ``steps`` 16th steps (4/4) at ``bpm``.

    ``events`` are ``[step, is_on, pitch, velocity]`` in step order, as the engine generates
    them; ``channel`` is 1..16, ``program`` 1..128 (sent first) or None. The track is named
    after the model. ``key_signature`` (mido's name, "F#m": :func:`emolive.scales.key_signature`)
    is written at the start, so that a DAW or notation program shows the key played in."""
    ticks_per_step = TICKS_PER_BEAT // STEPS_PER_BEAT
    name = _track_name(model_name)
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT, charset=text_charset(name))
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("track_name", name=name))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
    if key_signature is not None:
        track.append(mido.MetaMessage("key_signature", key=key_signature))
    if program is not None:
        track.append(mido.Message("program_change", channel=channel - 1, program=program - 1))
    now = 0  # ticks
    for step, is_on, pitch, velocity in events:
        tick = step * ticks_per_step
        # Values from the engine are in range (note 21..108, velocity 0..127, time >= 0: events
        # come in step order), so mido's checks are skipped.
        track.append(mido.Message("note_on" if is_on else "note_off", skip_checks=True, channel=channel - 1,
                                  note=pitch, velocity=velocity, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, steps * ticks_per_step - now)))
    return midi


def text_charset(text: str) -> str:
    """How a file's text (the track name) is written: Latin-1, mido's default and what older
    programs read, where it holds the text; else UTF-8, which DAWs read today. A model named
    'piano – v2' (an en dash) or '音楽' could write no file at all: mido's Latin-1
    refused the name after the music was generated (helper-73)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return "utf-8"
    return "latin1"


#: mido reads and writes a file's text in a process-wide charset, switched for the length of
#: each ``MidiFile.save()`` and ``MidiFile(path)`` to that file's own (``mido.midifiles.meta.
#: meta_charset``). Two threads saving at once, one in UTF-8, wrote the other's Latin-1 name in
#: UTF-8 or failed on it (23 and 11 in 3,000 saves; helper-75): emolive's saves and reads take
#: turns here. A program's own mido calls on other threads are outside this lock.
_MIDO_CHARSET_LOCK = threading.Lock()


def _new_charset_lock_in_child() -> None:
    """A child forked while another thread saved holds the lock for good: its first save hung."""
    global _MIDO_CHARSET_LOCK
    _MIDO_CHARSET_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_charset_lock_in_child)


def save_midi(midi: mido.MidiFile, path: str | Path) -> None:
    """``midi.save(path)``, taking turns with emolive's other saves and reads (the charset)."""
    with _MIDO_CHARSET_LOCK:
        midi.save(str(path))


def read_midi(path: str | Path) -> mido.MidiFile:
    """``mido.MidiFile(path)``, taking turns with emolive's saves (the charset); mido's errors
    are passed on."""
    with _MIDO_CHARSET_LOCK:
        return mido.MidiFile(str(path))


def _track_name(model_name: str) -> str:
    """"emolive" and the model's name, once: "emolive-default" stays as it is."""
    return model_name if model_name.startswith("emolive") else f"emolive {model_name}".strip()


def check_midi_file(caller: str, midi: object) -> None:
    """TypeError naming ``caller`` for anything but a ``mido.MidiFile`` (a path or a number gave
    AttributeError: 'str' object has no attribute 'ticks_per_beat'; helper-63)."""
    if not isinstance(midi, mido.MidiFile):
        raise TypeError(f"{caller} takes a mido.MidiFile (as Engine.generate returns, or "
                        f"mido.MidiFile(path) for a file), not {type(midi).__name__}")


def beat_ticks(midi: mido.MidiFile) -> float:
    """``midi``'s ticks per beat; ValueError for a file timed in SMPTE frames (mido reads its
    division as a negative number: spans came out negative, plots empty and renders silent,
    FluidSynth exiting 0) or with a division of 0."""
    if midi.ticks_per_beat <= 0:
        raise ValueError(f"MIDI files timed in SMPTE frames (or with no ticks per beat) are not supported "
                         f"(division {midi.ticks_per_beat}); save the file with ticks per beat")
    return float(midi.ticks_per_beat)


def note_spans(midi: mido.MidiFile) -> list[NoteSpan]:
    """Every note of ``midi`` (all tracks), paired note-on/note-off, in beats; sorted by start.

    A note-on with velocity 0 is a note-off. A note still sounding at the end is closed there.
    """
    check_midi_file("note_spans", midi)
    ticks_per_beat = beat_ticks(midi)
    sounding: dict[tuple[int, int], tuple[int, int]] = {}  # (channel, pitch) -> (start tick, velocity)
    spans: list[NoteSpan] = []
    tick = 0

    def close(key: tuple[int, int], end_tick: int) -> None:
        start_tick, velocity = sounding.pop(key)
        spans.append(NoteSpan(start_tick / ticks_per_beat, (end_tick - start_tick) / ticks_per_beat,
                              key[1], velocity, key[0] + 1))

    for message in mido.merge_tracks(midi.tracks):
        tick += message.time
        if message.type not in ("note_on", "note_off"):
            continue
        key = (message.channel, message.note)
        if key in sounding:  # a note-off, or a re-strike that ends the sounding note
            close(key, tick)
        if message.type == "note_on" and message.velocity > 0:
            sounding[key] = (tick, message.velocity)
    for key in list(sounding):
        close(key, tick)
    return sorted(spans, key=lambda s: (s.start_beats, s.pitch))


def length_beats(midi: mido.MidiFile) -> float:
    """The length of ``midi`` in beats, to its last event (the end of track, not the last note:
    a piece may end in rests)."""
    ticks = max((sum(message.time for message in track) for track in midi.tracks), default=0)
    return ticks / beat_ticks(midi)


def time_signature(midi: mido.MidiFile) -> tuple[int, int]:
    """``midi``'s first time signature as (numerator, denominator); (4, 4) when it has none.
    Later changes are not followed. One of 0 beats (mido reads and writes it) is no metre and
    is passed over (bar lines divided by zero)."""
    for message in mido.merge_tracks(midi.tracks):
        if message.type == "time_signature" and message.numerator > 0:
            return message.numerator, message.denominator
    return 4, 4


def bar_beats(midi: mido.MidiFile) -> float:
    """Quarter-note beats in a bar of ``midi``'s first time signature (3/4: 3, 6/8: 3, 4/4: 4)."""
    numerator, denominator = time_signature(midi)
    return numerator * 4.0 / denominator
