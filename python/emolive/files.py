"""Files from generated music: MIDI (mido), WAV audio (the FluidSynth program), piano-roll PNG.

Everything here works on any ``mido.MidiFile``, not only the engine's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mido

#: General MIDI soundfonts looked for when none is given (Debian's fluid-soundfont-gm first).
SOUNDFONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
)
INSTALL_HINT = ("install FluidSynth and a General MIDI soundfont: on Debian/Ubuntu "
                "`sudo apt-get install fluidsynth fluid-soundfont-gm`; on macOS `brew install fluid-synth` "
                "and pass a .sf2 file with --soundfont (or set EMOLIVE_SOUNDFONT)")


class RenderError(RuntimeError):
    """Audio could not be rendered (FluidSynth or a soundfont missing, or FluidSynth failed)."""


@dataclass(frozen=True)
class NoteSpan:
    """One note: start and length in beats (quarter notes), MIDI pitch, velocity, channel 1..16."""

    start_beats: float
    length_beats: float
    pitch: int
    velocity: int
    channel: int


def write_midi(midi: mido.MidiFile, path: str | Path) -> Path:
    """Save ``midi`` to ``path`` (parent folders must exist); returns the path."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(path.parent)!r} does not exist (for {str(path)!r})")
    midi.save(str(path))
    return path


def note_spans(midi: mido.MidiFile) -> list[NoteSpan]:
    """Every note of ``midi`` (all tracks), paired note-on/note-off, in beats; sorted by start.

    A note-on with velocity 0 is a note-off. A note still sounding at the end is closed there.
    """
    ticks_per_beat = float(midi.ticks_per_beat)
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


def find_soundfont(soundfont: str | Path | None = None) -> Path:
    """The soundfont to render with: the one given, else EMOLIVE_SOUNDFONT, else a system GM one."""
    given = soundfont or os.environ.get("EMOLIVE_SOUNDFONT")
    if given:
        path = Path(given)
        if not path.is_file():
            raise RenderError(f"soundfont {str(path)!r} does not exist")
        return path
    for candidate in SOUNDFONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise RenderError("no General MIDI soundfont found (looked in "
                      + ", ".join(SOUNDFONT_CANDIDATES) + "); " + INSTALL_HINT)


def render_wav(midi: mido.MidiFile | str | Path, wav_path: str | Path,
               soundfont: str | Path | None = None, sample_rate: int = 44100) -> Path:
    """Render ``midi`` (a MidiFile or a .mid path) to a 16-bit stereo WAV with FluidSynth."""
    if not 8000 <= sample_rate <= 192000:
        raise ValueError(f"sample rate must be 8000..192000 Hz, got {sample_rate}")
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None:
        raise RenderError("the `fluidsynth` program was not found; " + INSTALL_HINT)
    font = find_soundfont(soundfont)
    wav_path = Path(wav_path)
    if not wav_path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(wav_path.parent)!r} does not exist (for {str(wav_path)!r})")
    with tempfile.TemporaryDirectory(prefix="emolive-render-") as tmp:
        if isinstance(midi, mido.MidiFile):
            midi_path = Path(tmp) / "input.mid"
            midi.save(str(midi_path))
        else:
            midi_path = Path(midi)
            if not midi_path.is_file():
                raise FileNotFoundError(f"MIDI file {str(midi_path)!r} does not exist")
        # -n: no MIDI input, -i: no shell, -F: fast render to file, -q: quiet.
        command = [fluidsynth, "-n", "-i", "-q", "-F", str(wav_path), "-T", "wav", "-O", "s16",
                   "-r", str(sample_rate), str(font), str(midi_path)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not wav_path.is_file():
        raise RenderError(f"fluidsynth failed (exit {result.returncode}): "
                          f"{(result.stderr or result.stdout).strip()[-500:]}")
    return wav_path


def plot_piano_roll(midi: mido.MidiFile, png_path: str | Path, title: str | None = None) -> Path:
    """Draw ``midi`` as a piano roll (beats across, pitch up, shade = velocity) into a PNG."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'emolive[plot]'") from None
    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    png_path = Path(png_path)
    if not png_path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(png_path.parent)!r} does not exist (for {str(png_path)!r})")
    spans = note_spans(midi)
    end_beats = max((s.start_beats + s.length_beats for s in spans), default=4.0)
    figure, axes = plt.subplots(figsize=(min(24.0, 4.0 + end_beats / 4.0), 5.0), dpi=100)
    try:
        boxes = [Rectangle((s.start_beats, s.pitch - 0.4), s.length_beats, 0.8) for s in spans]
        collection = PatchCollection(boxes, cmap="viridis")
        collection.set_array([s.velocity for s in spans])
        collection.set_clim(0, 127)
        axes.add_collection(collection)
        for bar_line in range(0, int(end_beats) + 1, 4):  # 4/4: a bar is 4 beats
            axes.axvline(bar_line, color="0.85", linewidth=0.6, zorder=0)
        low = min((s.pitch for s in spans), default=60) - 2
        high = max((s.pitch for s in spans), default=72) + 2
        axes.set_xlim(0, max(end_beats, 1.0))
        axes.set_ylim(low, high)
        axes.set_xlabel("beats (quarter notes; lines mark 4/4 bars)")
        axes.set_ylabel("MIDI pitch")
        axes.set_title(title or f"{len(spans)} notes")
        figure.colorbar(collection, ax=axes, label="velocity")
        figure.tight_layout()
        figure.savefig(str(png_path))
    finally:
        plt.close(figure)
    return png_path
