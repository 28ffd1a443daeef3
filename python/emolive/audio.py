"""WAV audio from MIDI through the FluidSynth program and a General MIDI soundfont, checked:
a render FluidSynth could not finish (it exits 0 on a full disk) or one with the wrong
soundfont fails, and the file there before stays.
"""

from __future__ import annotations

import ctypes
import errno
import numbers
import os
import signal
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mido

from emolive.arguments import Whole
from emolive.emotions import is_number
from emolive.midi_notes import beat_ticks, read_midi, save_midi
from emolive.safe_write import WAV_SUFFIXES, check_suffix, name_too_long, replaced_on_success, space_left

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
                "and pass a .sf2 file with --soundfont (or set EMOLIVE_SOUNDFONT); on Windows, FluidSynth's "
                "release on PATH and a .sf2 file with --soundfont")


class RenderError(RuntimeError):
    """Audio could not be rendered (FluidSynth or a soundfont missing, or FluidSynth failed)."""


#: The sample rates FluidSynth renders at (its synth.sample-rate setting's range, 2.3).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 96000

#: RIFF form types FluidSynth loads: SoundFont 2 and 3 (.sf2, .sf3) and DLS.
SOUNDFONT_FORMS: tuple[bytes, ...] = (b"sfbk", b"DLS ")


def find_soundfont(soundfont: str | Path | None = None) -> Path:
    """The soundfont to render with: the one given, else EMOLIVE_SOUNDFONT, else a system GM one."""
    given = soundfont or os.environ.get("EMOLIVE_SOUNDFONT")
    if given:
        path = Path(given)
        whence = "" if soundfont else " (EMOLIVE_SOUNDFONT)"  # a variable set long ago is named
        if name_too_long(path):
            raise RenderError(f"soundfont {str(path)!r}{whence}: the name is too long for the file system")
        if path.is_dir():
            raise RenderError(f"soundfont {str(path)!r}{whence} is a folder; give a soundfont file (.sf2, .sf3)")
        if not path.is_file():
            raise RenderError(f"soundfont {str(path)!r}{whence} "
                              + ("is not a regular file" if path.exists() else "does not exist"))
        _check_soundfont_header(path, whence)
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


def _check_soundfont_header(path: Path, whence: str = "") -> None:
    """RenderError unless ``path`` starts as a SoundFont or DLS file does. FluidSynth itself only
    warns about a file it cannot load and renders with its default soundfont instead."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)  # "RIFF", the chunk size (4 bytes), the form type
    except OSError as exc:  # it said "[Errno 13] Permission denied: '/etc/shadow'" (helper-59)
        raise RenderError(f"soundfont {str(path)!r}{whence} cannot be read: {exc.strerror or exc}") from None
    if head[:4] != b"RIFF" or head[8:12] not in SOUNDFONT_FORMS:
        raise RenderError(f"{str(path)!r}{whence} is not a SoundFont (.sf2, .sf3) or DLS file")


def render_wav(midi: mido.MidiFile | str | Path, wav_path: str | Path,
               soundfont: str | Path | None = None, sample_rate: Whole = 44100,
               gain: float = 0.2) -> Path:
    """Render ``midi`` (a MidiFile or a .mid path) to a 16-bit stereo WAV with FluidSynth;
    ``gain`` is FluidSynth's master gain (its default 0.2; 0..10). RenderError when FluidSynth
    or the soundfont is missing or fails; OSError when the WAV comes out shorter than the music
    (a full disk). Either way a file at ``wav_path`` before is left as it was. ValueError for a
    ``wav_path`` ending in another suffix than .wav (take.mid). FluidSynth runs as a child
    process; on Linux it is started by a fork that asks the kernel to kill it when the calling
    thread ends (so a killed program leaves no render running)."""
    check_suffix(wav_path, WAV_SUFFIXES, "audio is")
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
            save_midi(midi, midi_path)
        # -n: no MIDI input, -i: no shell, -F: fast render to file, -q: quiet. The files are
        # given as absolute paths: a name starting with "-" was read as an option.
        command = [fluidsynth, "-n", "-i", "-q", "-F", os.path.abspath(rendered), "-T", "wav", "-O", "s16",
                   "-r", str(sample_rate), "-g", str(gain), os.path.abspath(font), os.path.abspath(midi_path)]
        # Its lines echo the soundfont's name, whatever bytes that holds (a Latin-1 name on a
        # UTF-8 system failed to decode and hid FluidSynth's reason; helper-85).
        result = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace",
                                check=False, preexec_fn=_dies_with_this_process())
        _check_render(result, font, rendered, Path(wav_path))
        _check_wav_length(rendered, music_s, Path(wav_path))
    return Path(wav_path)


#: prctl(2)'s option: the signal the child gets when its parent thread ends.
PR_SET_PDEATHSIG = 1


def _dies_with_this_process() -> Callable[[], None] | None:
    """For FluidSynth's process on Linux: the kernel kills it when this thread ends, so that a
    process killed outright (SIGKILL, the out-of-memory killer) leaves no FluidSynth filling a
    hidden folder (337 MB when helper-84 looked). The library is loaded before the fork; the
    child only makes the system call."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def in_the_child() -> None:
        if prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return  # refused (a seccomp filter): FluidSynth renders without the safety net
        if os.getppid() != parent:  # this process died before the call took effect
            os._exit(1)

    return in_the_child



def _read_midi(path: Path) -> mido.MidiFile:
    """The MIDI file at ``path``, or an error naming it (mido's own for a cut file is a bare
    EOFError)."""
    if not path.is_file():
        raise FileNotFoundError(f"MIDI file {str(path)!r} does not exist")
    try:
        return read_midi(path)
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


#: How long a WAV may run past the music's last event (seconds): FluidSynth renders on until
#: every voice has faded, 2.3-3.2 s after a piano's last note and 51 s for the General MIDI drum
#: kit (`--channel 10`), measured by helper-56 on 2026-12-07; a margin over both.
RELEASE_TAIL_S = 120.0


def check_wav_fits(music_s: float, sample_rate: int = 44100) -> None:
    """ValueError, before anything is rendered, when ``music_s`` seconds of 16-bit stereo at
    ``sample_rate``, and the release tail after them (RELEASE_TAIL_S), would not fit a WAV (its
    sizes wrapped, and the render was taken for one cut short by a full disk after minutes of
    work; music just short of the limit, its tail not counted, did so until 2026-12-07)."""
    largest_s = MAX_WAV_BYTES / (4 * sample_rate) - RELEASE_TAIL_S
    if music_s > largest_s:  # to the second: in hours, 6.734 against 6.730 both read "6.73" (helper-68)
        raise ValueError(f"{_clock_time(music_s)} of music do not fit a WAV file at {sample_rate} Hz "
                         f"(at most {_clock_time(largest_s)}, h:mm:ss); render a shorter piece (or, from "
                         "Python, at a lower sample_rate)")


def _clock_time(seconds: float) -> str:
    """``seconds`` as h:mm:ss, rounded down."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


#: How much shorter than the music a rendered WAV may be (seconds): FluidSynth renders past the
#: last event (the release tail), but rounds to its 64-frame blocks.
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
        raise OSError(f"fluidsynth wrote no readable WAV ({exc}); {space_left(target)}") from None
    audio_s = frames / rate
    if rendered.stat().st_size > MAX_WAV_BYTES:  # a tail longer than RELEASE_TAIL_S: sizes wrapped
        raise OSError(f"fluidsynth's WAV for {music_s:.2f} s of music came out over 4 GiB, more than "
                      "a WAV file holds (the notes' release ran on past the music); render a shorter piece")
    if audio_s < music_s - WAV_SHORT_BY_S or rendered.stat().st_size < data_bytes:
        raise OSError(f"fluidsynth wrote {audio_s:.2f} s of audio for {music_s:.2f} s of music; "
                      f"{space_left(target)}")


def _check_render(result: subprocess.CompletedProcess[str], font: Path, rendered: Path, wav_path: Path) -> None:
    """RenderError if FluidSynth failed. It exits 0 when it could not load the soundfont (and
    renders with its default one), so its report of that is looked for too. Stopped by the
    file-size limit (SIGXFSZ), the failure is the write's: OSError, as for a full disk."""
    file_size_limit = getattr(signal, "SIGXFSZ", None)  # none on Windows (every render failed, helper-67)
    if file_size_limit is not None and result.returncode == -file_size_limit:  # it said "(exit -25): "
        raise OSError(errno.EFBIG, f"{os.strerror(errno.EFBIG)} (the file-size limit, ulimit -f, stopped "
                      "fluidsynth)", str(wav_path))
    if result.returncode < 0:
        raise RenderError(f"fluidsynth was killed by {signal.Signals(-result.returncode).name}")
    report = (result.stderr or result.stdout).strip()
    if "Failed to load" in report:
        errors = [line.removeprefix("fluidsynth: error: ") for line in report.splitlines()
                  if line.startswith("fluidsynth: error: ")]
        raise RenderError(f"fluidsynth could not load the soundfont {str(font)!r}"
                          + (f": {errors[0]}" if errors else ""))
    if result.returncode != 0 or not rendered.is_file():
        raise RenderError(f"fluidsynth failed (exit {result.returncode}): {report[-500:]}")
