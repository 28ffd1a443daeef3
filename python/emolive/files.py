"""Files from generated music, in one place for callers: MIDI (mido), WAV audio (the FluidSynth
program), piano-roll pictures (matplotlib), each written so that a failure leaves no partial
file. Everything here works on any ``mido.MidiFile``, not only the engine's.

The work is done along the data flow in :mod:`emolive.midi_notes` (events -> MIDI file ->
notes), :mod:`emolive.safe_write` (where and how a file is written), :mod:`emolive.audio`
(rendering) and :mod:`emolive.piano_roll` (plotting); this module names them together.
"""

from __future__ import annotations

from pathlib import Path

import mido

from emolive.audio import (INSTALL_HINT, MAX_SAMPLE_RATE, MAX_WAV_BYTES, MIN_SAMPLE_RATE, SOUNDFONT_CANDIDATES,
                           SOUNDFONT_FORMS, RenderError, check_wav_fits, find_renderer, find_soundfont, render_wav)
from emolive.midi_notes import (TICKS_PER_BEAT, NoteSpan, bar_beats, beat_ticks, check_midi_file, length_beats,
                                note_spans, save_midi, time_signature)
from emolive.piano_roll import MAX_BAR_LINES, check_plotting, plot_extent, plot_piano_roll
from emolive.safe_write import (MIDI_SUFFIXES, WAV_SUFFIXES, WriteError, check_no_other_data, check_suffix,
                                check_writable, is_stream, link_leads_elsewhere, misnamed, replaced_on_success)

__all__ = ["INSTALL_HINT", "MAX_BAR_LINES", "MAX_SAMPLE_RATE", "MAX_WAV_BYTES", "MIDI_SUFFIXES", "MIN_SAMPLE_RATE",
           "SOUNDFONT_CANDIDATES", "SOUNDFONT_FORMS", "TICKS_PER_BEAT", "NoteSpan", "RenderError", "bar_beats",
           "beat_ticks", "check_no_other_data", "check_plotting", "check_wav_fits", "check_writable", "find_renderer", "find_soundfont",
           "is_stream", "length_beats", "link_leads_elsewhere", "misnamed", "note_spans", "plot_extent", "plot_piano_roll",
           "WAV_SUFFIXES", "WriteError", "check_suffix", "render_wav", "replaced_on_success", "time_signature", "write_midi"]


def write_midi(midi: mido.MidiFile, path: str | Path) -> Path:
    """Save ``midi`` to ``path`` (its folder must exist); returns the path. An existing file is
    replaced only once the new one is whole. TypeError for anything but a mido.MidiFile;
    ValueError for a name ending in another suffix than .mid, .midi or .smf (take.wav)."""
    check_midi_file("write_midi", midi)
    check_suffix(path, MIDI_SUFFIXES, "MIDI files are")
    with replaced_on_success(path) as written:
        save_midi(midi, written)
    return Path(path)
