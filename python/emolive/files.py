"""Files from generated music: MIDI (mido), WAV audio (the FluidSynth program), piano-roll PNG.

Everything here works on any ``mido.MidiFile``, not only the engine's.
"""

from __future__ import annotations

import errno
import math
import numbers
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mido

from emolive.emotions import is_number

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


def check_writable(path: str | Path) -> Path:
    """``path`` if a file can be written there, else the error a write would meet:
    FileNotFoundError when its folder does not exist, IsADirectoryError when it names a folder,
    PermissionError when the folder refuses a new file (or a device or pipe refuses writing).
    The check makes and removes a temporary file, since permission bits alone do not tell
    (root, ACLs, read-only mounts). A link is checked where it leads, as it is written."""
    _destination(path)
    return Path(path)


@dataclass(frozen=True)
class _Target:
    """Where a file's content goes: ``path`` is replaced (a regular file), or written into
    (``into``: a device, a named pipe), or ``descriptor`` is this process's open file that
    ``path`` names (/dev/stdout, /dev/fd/N), written at its offset and in its mode."""

    path: Path
    into: bool = False
    descriptor: int | None = None


def _destination(path: str | Path) -> _Target:
    """Where ``path``'s content goes, after check_writable's checks: the file a link leads to,
    else ``path``."""
    if not str(path).strip():
        raise FileNotFoundError("the file name is empty; give a file name")
    if str(path).endswith(("/", os.sep)):
        raise IsADirectoryError(f"{str(path)!r} names a folder; give a file name")
    path = Path(path)
    _refuse_link_loops_and_sockets(path)
    descriptor = _own_descriptor(path)
    if descriptor is not None:
        _check_descriptor(descriptor, path)
        return _Target(path, into=True, descriptor=descriptor)
    if _is_special(path):
        if not os.access(path, os.W_OK):
            raise PermissionError(f"cannot write to {str(path)!r}")
        return _Target(path, into=True)
    real = Path(os.path.realpath(path))
    if not real.parent.is_dir():
        link = f", a link to {str(real)!r}" if path.is_symlink() else ""
        missing = real.parent if link else path.parent
        not_a_folder = next((p for p in (missing, *missing.parents) if p.exists()), None)
        if not_a_folder is not None and not not_a_folder.is_dir():
            raise NotADirectoryError(f"{str(not_a_folder)!r} is a file, not a folder (for {str(path)!r}{link})")
        raise FileNotFoundError(f"folder {str(missing)!r} does not exist (for {str(path)!r}{link})")
    if real.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder, not a file name")
    try:
        with tempfile.TemporaryFile(prefix=".emolive-", dir=real.parent):
            pass
    except OSError as exc:
        raise PermissionError(f"cannot write into folder {str(real.parent)!r} (for {str(path)!r}): "
                              f"{exc.strerror or exc}") from None
    return _Target(real)


def _refuse_link_loops_and_sockets(path: Path) -> None:
    """A loop of links (``a -> b -> a``: the write replaced the link with a file) and a socket
    (a write fails with "No such device or address") cannot be written; said now."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, f"{str(path)!r} is a loop of links; give a file name") from None
        return  # not there yet (or a dangling link): the file is made
    if stat.S_ISSOCK(mode):
        raise PermissionError(f"{str(path)!r} is a socket, not a file; give a file name")


def is_stream(path: str | Path) -> bool:
    """Whether ``path`` is written into rather than replaced: a device (a terminal, /dev/null),
    a named pipe, or an open descriptor of this process (/dev/stdout, /dev/fd/N)."""
    return _own_descriptor(Path(path)) is not None or _is_special(Path(path))


def _is_special(path: Path) -> bool:
    """An existing file, links followed, that is neither a regular file nor a folder: a device
    (a terminal), a named pipe, or what /dev/stdout leads to."""
    try:
        mode = os.stat(path).st_mode  # the kernel follows /proc's links to pipes, realpath cannot
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _own_descriptor(path: Path) -> int | None:
    """The file descriptor of this process that ``path`` names through /dev/stdout,
    /dev/fd/N or /proc/self/fd/N (links followed one at a time), else None. Such a name is
    the shell's redirection (``-o /dev/stdout >> takes.mid``): the open file, its offset and
    its append mode are what the user chose, which replacing the file it leads to would lose."""
    own = re.compile(rf"/(?:proc/(?:self|thread-self|{os.getpid()})/fd|dev/fd)/(\d+)")
    name = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links in a path
        found = own.fullmatch(name)
        if found:
            return int(found.group(1))
        if not os.path.islink(name):
            return None
        name = os.path.normpath(os.path.join(os.path.dirname(name), os.readlink(name)))
    return None


def _check_descriptor(descriptor: int, path: Path) -> None:
    """PermissionError unless ``descriptor`` is open for writing."""
    import fcntl  # POSIX only, as the names that lead here are

    try:
        mode = fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        raise PermissionError(f"cannot write to {str(path)!r}: file descriptor {descriptor} "
                              "is not open") from None
    if mode not in (os.O_WRONLY, os.O_RDWR):
        raise PermissionError(f"cannot write to {str(path)!r}: file descriptor {descriptor} "
                              "is open for reading only")


@contextmanager
def replaced_on_success(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file name to write ``path``'s content to; when the block ends without
    an exception, the content goes to ``path``, else the temporary file is removed.

    A regular file (new, or there already) is replaced by one rename from beside it, so a
    failed or interrupted write leaves no partial file and the file already there as it was;
    the new file keeps that file's permissions (and owner, where allowed). A link is written
    through: the file it leads to is replaced, the link stays. A device or named pipe (a FIFO,
    a terminal) is written into, and so is the open file that /dev/stdout or /dev/fd/N names
    (at its offset: ``>>`` appends), once the content is whole."""
    target = _destination(path)
    with tempfile.TemporaryDirectory(prefix=".emolive-",
                                     dir=None if target.into else target.path.parent) as tmp:
        written = Path(tmp) / ("output" if target.into else target.path.name)
        yield written
        if target.descriptor is not None:
            _copy_to_descriptor(written, target.descriptor)
        elif target.into:
            with open(written, "rb") as source, open(target.path, "wb") as sink:
                shutil.copyfileobj(source, sink)
        else:
            if target.path.is_file():
                _keep_permissions(target.path, written)
            os.replace(written, target.path)


def _copy_to_descriptor(source: Path, descriptor: int) -> None:
    """Write ``source``'s bytes to the open ``descriptor``, after what Python's own streams on
    it hold (so earlier lines come first); the descriptor stays open."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and stream.fileno() == descriptor:
                stream.flush()
        except (OSError, ValueError):  # a stream without a descriptor, or closed
            pass
    with open(source, "rb") as data, open(os.dup(descriptor), "wb") as sink:
        shutil.copyfileobj(data, sink)


def _keep_permissions(old: Path, new: Path) -> None:
    """Give ``new`` the mode of ``old``, and its owner where this process may (root)."""
    shutil.copymode(old, new)
    info = old.stat()
    try:
        os.chown(new, info.st_uid, info.st_gid)
    except OSError:  # only root may give a file away; the file stays this user's
        pass


def write_midi(midi: mido.MidiFile, path: str | Path) -> Path:
    """Save ``midi`` to ``path`` (its folder must exist); returns the path. An existing file is
    replaced only once the new one is whole."""
    with replaced_on_success(path) as written:
        midi.save(str(written))
    return Path(path)


TICKS_PER_BEAT = 480  # MIDI files made from the engine's notes
STEPS_PER_BEAT = 4  # the engine's steps are 16th notes


def midi_from_events(events: list[list[int]], steps: int, bpm: float, channel: int, program: int | None,
                     model_name: str) -> mido.MidiFile:
    """The engine's notes as a one-track MIDI file of ``steps`` 16th steps (4/4) at ``bpm``.

    ``events`` are ``[step, is_on, pitch, velocity]`` in step order, as the engine generates
    them; ``channel`` is 1..16, ``program`` 1..128 (sent first) or None. The track is named
    after the model."""
    ticks_per_step = TICKS_PER_BEAT // STEPS_PER_BEAT
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("track_name", name=_track_name(model_name)))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
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


def _track_name(model_name: str) -> str:
    """"emolive" and the model's name, once: "emolive-default" stays as it is."""
    return model_name if model_name.startswith("emolive") else f"emolive {model_name}".strip()


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


#: The sample rates FluidSynth renders at (its synth.sample-rate setting's range, 2.3).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 96000

#: RIFF form types FluidSynth loads: SoundFont 2 and 3 (.sf2, .sf3) and DLS.
SOUNDFONT_FORMS: tuple[bytes, ...] = (b"sfbk", b"DLS ")


def find_soundfont(soundfont: str | Path | None = None) -> Path:
    """The soundfont to render with: the one given, else EMOLIVE_SOUNDFONT, else a system GM one."""
    given = soundfont or os.environ.get("EMOLIVE_SOUNDFONT")
    if given:
        path = Path(given)
        if path.is_dir():
            raise RenderError(f"soundfont {str(path)!r} is a folder; give a soundfont file (.sf2, .sf3)")
        if not path.is_file():
            raise RenderError(f"soundfont {str(path)!r} " + ("is not a regular file" if path.exists() else "does not exist"))
        _check_soundfont_header(path)
        return path
    for candidate in SOUNDFONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise RenderError("no General MIDI soundfont found (looked in "
                      + ", ".join(SOUNDFONT_CANDIDATES) + "); " + INSTALL_HINT)


def find_renderer(soundfont: str | Path | None = None) -> tuple[str, Path]:
    """The FluidSynth program and the soundfont ``render_wav`` would use; RenderError naming
    what is missing, so that a caller can check before it generates anything."""
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None:
        raise RenderError("the `fluidsynth` program was not found; " + INSTALL_HINT)
    return fluidsynth, find_soundfont(soundfont)


def _check_soundfont_header(path: Path) -> None:
    """RenderError unless ``path`` starts as a SoundFont or DLS file does. FluidSynth itself only
    warns about a file it cannot load and renders with its default soundfont instead."""
    with open(path, "rb") as handle:
        head = handle.read(12)  # "RIFF", the chunk size (4 bytes), the form type
    if head[:4] != b"RIFF" or head[8:12] not in SOUNDFONT_FORMS:
        raise RenderError(f"{str(path)!r} is not a SoundFont (.sf2, .sf3) or DLS file")


def render_wav(midi: mido.MidiFile | str | Path, wav_path: str | Path,
               soundfont: str | Path | None = None, sample_rate: int = 44100,
               gain: float = 0.2) -> Path:
    """Render ``midi`` (a MidiFile or a .mid path) to a 16-bit stereo WAV with FluidSynth;
    ``gain`` is FluidSynth's master gain (its default 0.2; 0..10). RenderError when FluidSynth
    or the soundfont is missing or fails; OSError when the WAV comes out shorter than the music
    (a full disk). Either way a file at ``wav_path`` before is left as it was."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Integral):
        raise TypeError(f"sample rate must be a whole number of Hz, not {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"sample rate must be {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz (what "
                         f"FluidSynth renders), got {sample_rate}")
    if not is_number(gain):
        raise TypeError(f"gain must be a number, not {gain!r}")
    if not 0.0 <= gain <= 10.0:
        raise ValueError(f"gain must be 0..10, got {gain}")
    fluidsynth, font = find_renderer(soundfont)
    music = midi if isinstance(midi, mido.MidiFile) else _read_midi(Path(midi))
    music_s = _length_s(music)
    check_wav_fits(music_s, sample_rate)
    # FluidSynth writes a file of its own beside wav_path, which replaces wav_path only once
    # the render succeeded: a failed render leaves no partial or wrong WAV behind.
    with replaced_on_success(wav_path) as rendered:
        # rendered's folder is the render's own: a short fixed name, whatever wav_path's length
        midi_path = Path(midi) if not isinstance(midi, mido.MidiFile) else rendered.parent / "input.mid"
        if isinstance(midi, mido.MidiFile):  # FluidSynth reads files: the music goes beside
            midi.save(str(midi_path))
        # -n: no MIDI input, -i: no shell, -F: fast render to file, -q: quiet.
        command = [fluidsynth, "-n", "-i", "-q", "-F", str(rendered), "-T", "wav", "-O", "s16",
                   "-r", str(sample_rate), "-g", str(gain), str(font), str(midi_path)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        _check_render(result, font, rendered)
        _check_wav_length(rendered, music_s, Path(wav_path))
    return Path(wav_path)


def _read_midi(path: Path) -> mido.MidiFile:
    """The MIDI file at ``path``, or an error naming it (mido's own for a cut file is a bare
    EOFError)."""
    if not path.is_file():
        raise FileNotFoundError(f"MIDI file {str(path)!r} does not exist")
    try:
        return mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise RenderError(f"{str(path)!r} cannot be read as a MIDI file ({type(exc).__name__}"
                          f"{': ' + str(exc) if str(exc) else ''})") from None


def _length_s(midi: mido.MidiFile) -> float:
    """``midi``'s length in seconds; a type 2 file's tracks taken as played together, as
    FluidSynth (and note_spans) take them (mido has no length for type 2)."""
    beat_ticks(midi)
    if midi.type == 2:
        midi = mido.MidiFile(type=1, ticks_per_beat=midi.ticks_per_beat, tracks=midi.tracks)
    return float(midi.length)


#: A WAV's sizes are 32-bit: at most 4 GiB of 16-bit stereo samples (6.7 hours at 44.1 kHz).
MAX_WAV_BYTES = 2**32 - 1 - 44


def check_wav_fits(music_s: float, sample_rate: int = 44100) -> None:
    """ValueError, before anything is rendered, when ``music_s`` seconds of 16-bit stereo at
    ``sample_rate`` would not fit a WAV (its sizes wrapped, and the render was taken for one
    cut short by a full disk after minutes of work)."""
    largest_s = MAX_WAV_BYTES / (4 * sample_rate)
    if music_s > largest_s:
        raise ValueError(f"{music_s / 3600:.2f} hours of music do not fit a WAV file at {sample_rate} Hz "
                         f"(at most {largest_s / 3600:.2f} hours); render a shorter piece, or at a lower "
                         "sample rate")


#: How much shorter than the music a rendered WAV may be (seconds): FluidSynth renders to the
#: last event, but rounds to its 64-frame blocks.
WAV_SHORT_BY_S = 0.05


def _check_wav_length(rendered: Path, music_s: float, target: Path) -> None:
    """OSError (a failure of the machine, not the user's: exit status 1) when the WAV holds
    less audio than the music lasts. FluidSynth exits 0 after a write it could not finish (a
    full disk): the WAV it leaves is short, and would have replaced the file there before."""
    import wave

    try:
        with wave.open(str(rendered), "rb") as wav:
            frames, rate = wav.getnframes(), wav.getframerate()
            data_bytes = frames * wav.getnchannels() * wav.getsampwidth()
    except (wave.Error, EOFError) as exc:
        raise OSError(f"fluidsynth wrote no readable WAV ({exc}); {_space_left(target)}") from None
    audio_s = frames / rate
    if audio_s < music_s - WAV_SHORT_BY_S or rendered.stat().st_size < data_bytes:
        raise OSError(f"fluidsynth wrote {audio_s:.2f} s of audio for {music_s:.2f} s of music; "
                      f"{_space_left(target)}")


def _space_left(path: Path) -> str:
    """What the disk holding ``path`` (the file asked for) has free, for an error that a full
    disk may explain."""
    try:
        free_mb = shutil.disk_usage(path.parent).free / 1e6
    except OSError:
        return "is the disk full?"
    return f"the disk may be full ({free_mb:.1f} MB free in {str(path.parent)!r})"


def _check_render(result: subprocess.CompletedProcess[str], font: Path, rendered: Path) -> None:
    """RenderError if FluidSynth failed. It exits 0 when it could not load the soundfont (and
    renders with its default one), so its report of that is looked for too."""
    report = (result.stderr or result.stdout).strip()
    if "Failed to load" in report:
        errors = [line.removeprefix("fluidsynth: error: ") for line in report.splitlines()
                  if line.startswith("fluidsynth: error: ")]
        raise RenderError(f"fluidsynth could not load the soundfont {str(font)!r}"
                          + (f": {errors[0]}" if errors else ""))
    if result.returncode != 0 or not rendered.is_file():
        raise RenderError(f"fluidsynth failed (exit {result.returncode}): {report[-500:]}")


def check_plotting(image_path: str | Path | None = None) -> None:
    """ImportError naming the extra to install when matplotlib, which plotting needs, is
    missing; ValueError when ``image_path``'s suffix names no image format it writes."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'emolive[plot]'") from None
    if image_path is not None:
        from matplotlib.backend_bases import FigureCanvasBase

        formats = FigureCanvasBase.get_supported_filetypes()
        if _image_format(image_path) not in formats:
            raise ValueError(f"{str(image_path)!r}: plots are written as "
                             + ", ".join(f".{kind}" for kind in sorted(formats)))
        _try_image_format(image_path)


def _try_image_format(image_path: str | Path) -> None:
    """ValueError when matplotlib cannot write ``image_path``'s format here: some formats need
    programs of their own (.pgf needs LaTeX), which only saving tells. A blank figure is saved
    to memory (milliseconds), so that a run does not fail after generating."""
    import io

    import matplotlib

    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(1, 1))
    figure.text(0.5, 0.5, "emolive")  # text, as the plot has: .pgf measures it with LaTeX
    try:
        figure.savefig(io.BytesIO(), format=_image_format(image_path))
    except Exception as exc:  # noqa: BLE001 - whatever the format's writer needs and lacks
        raise ValueError(f"{str(image_path)!r}: matplotlib cannot write .{_image_format(image_path)} "
                         f"files here ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                         "give another format, such as .png") from None
    finally:
        plt.close(figure)


def _image_format(path: str | Path) -> str:
    """The image format a file name asks for by its suffix (png without one)."""
    return Path(path).suffix.lower().removeprefix(".") or "png"


#: At most this many bar lines in a plot (a longer piece gets a line every few bars).
MAX_BAR_LINES = 256


def length_beats(midi: mido.MidiFile) -> float:
    """The length of ``midi`` in beats, to its last event (the end of track, not the last note:
    a piece may end in rests)."""
    ticks = max((sum(message.time for message in track) for track in midi.tracks), default=0)
    return ticks / beat_ticks(midi)


def time_signature(midi: mido.MidiFile) -> tuple[int, int]:
    """``midi``'s first time signature as (numerator, denominator); (4, 4) when it has none.
    Later changes are not followed."""
    for message in mido.merge_tracks(midi.tracks):
        if message.type == "time_signature":
            return message.numerator, message.denominator
    return 4, 4


def bar_beats(midi: mido.MidiFile) -> float:
    """Quarter-note beats in a bar of ``midi``'s first time signature (3/4: 3, 6/8: 3, 4/4: 4)."""
    numerator, denominator = time_signature(midi)
    return numerator * 4.0 / denominator


def plot_extent(midi: mido.MidiFile, spans: list[NoteSpan] | None = None) -> tuple[float, int]:
    """What a plot of ``midi`` spans: its end in beats (the end of track, or a later note's end;
    one bar for an empty file) and the bars between two bar lines (1, or more for a piece
    longer than MAX_BAR_LINES bars), bars of its first time signature."""
    spans = note_spans(midi) if spans is None else spans
    bar = bar_beats(midi)
    end_beats = max([s.start_beats + s.length_beats for s in spans] + [length_beats(midi)]) or bar
    return end_beats, max(1, math.ceil(end_beats / (bar * MAX_BAR_LINES)))


def plot_piano_roll(midi: mido.MidiFile, png_path: str | Path, title: str | None = None) -> Path:
    """Draw ``midi`` as a piano roll (beats across, pitch up, shade = velocity) into a PNG
    (or the image format ``png_path``'s suffix names: .svg, .pdf, .jpg, ...)."""
    check_plotting(png_path)
    import matplotlib

    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    spans = note_spans(midi)
    end_beats, bars_per_line = plot_extent(midi, spans)
    figure, axes = plt.subplots(figsize=(min(24.0, 4.0 + end_beats / 4.0), 5.0), dpi=100)
    try:
        boxes = [Rectangle((s.start_beats, s.pitch - 0.4), s.length_beats, 0.8) for s in spans]
        collection = PatchCollection(boxes, cmap="viridis")
        collection.set_array([s.velocity for s in spans])
        collection.set_clim(0, 127)
        axes.add_collection(collection)
        line_beats = bar_beats(midi) * bars_per_line
        for line in range(int(end_beats / line_beats) + 1):
            axes.axvline(line * line_beats, color="0.85", linewidth=0.6, zorder=0)
        low = min((s.pitch for s in spans), default=60) - 2
        high = max((s.pitch for s in spans), default=72) + 2
        axes.set_xlim(0, max(end_beats, 1.0))
        axes.set_ylim(low, high)
        meter = "{}/{}".format(*time_signature(midi))
        every = f"{meter} bars" if bars_per_line == 1 else f"every {bars_per_line} bars of {meter}"
        axes.set_xlabel(f"beats (quarter notes; lines mark {every})")
        axes.set_ylabel("MIDI pitch")
        axes.set_title(title or f"{len(spans)} notes")
        figure.colorbar(collection, ax=axes, label="velocity")
        figure.tight_layout()
        with replaced_on_success(png_path) as written:
            figure.savefig(str(written), format=_image_format(png_path))
    finally:
        plt.close(figure)
    return Path(png_path)
