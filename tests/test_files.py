"""MIDI, WAV and PNG files from any mido.MidiFile (no engine needed)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import mido
import numpy as np
import pytest

from emolive import files

ROOT = Path(__file__).resolve().parents[1]


def _c_major_arpeggio(bars: int = 2, ticks_per_beat: int = 480) -> mido.MidiFile:
    """Quarter notes C4 E4 G4 C5 repeated, velocity 90, at 120 BPM."""
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    track.append(mido.Message("program_change", program=0, time=0))
    for i in range(bars * 4):
        pitch = (60, 64, 67, 72)[i % 4]
        track.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=ticks_per_beat))
    return midi


def test_note_spans_pairs_notes_in_beats() -> None:
    spans = files.note_spans(_c_major_arpeggio(bars=1))
    assert [(s.start_beats, s.length_beats, s.pitch, s.velocity, s.channel) for s in spans] == [
        (0.0, 1.0, 60, 90, 1), (1.0, 1.0, 64, 90, 1), (2.0, 1.0, 67, 90, 1), (3.0, 1.0, 72, 90, 1)]


def test_note_spans_closes_restrikes_and_hanging_notes() -> None:
    midi = mido.MidiFile(ticks_per_beat=100)
    track = mido.MidiTrack(
        [mido.Message("note_on", note=50, velocity=10, time=0),
         mido.Message("note_on", note=50, velocity=20, time=50),  # re-strike ends the first
         mido.Message("note_on", note=50, velocity=0, time=100),  # velocity 0 = note-off
         mido.Message("note_on", note=70, velocity=30, channel=9, time=0),
         mido.Message("control_change", control=64, value=0, time=100)])  # 70 never released
    midi.tracks.append(track)
    spans = [(s.start_beats, s.length_beats, s.pitch, s.velocity, s.channel) for s in files.note_spans(midi)]
    assert spans == [(0.0, 0.5, 50, 10, 1), (0.5, 1.0, 50, 20, 1), (1.5, 1.0, 70, 30, 10)]


def test_note_spans_are_sorted_by_start_not_by_end() -> None:
    midi = mido.MidiFile(ticks_per_beat=100)
    midi.tracks.append(mido.MidiTrack(
        [mido.Message("note_on", note=60, velocity=50, time=0),  # C4 over beats 0..4
         mido.Message("note_on", note=64, velocity=60, time=100),  # E4 over beats 1..2, ends first
         mido.Message("note_off", note=64, velocity=0, time=100),
         mido.Message("note_off", note=60, velocity=0, time=200)]))
    spans = [(s.start_beats, s.length_beats, s.pitch) for s in files.note_spans(midi)]
    assert spans == [(0.0, 4.0, 60), (1.0, 1.0, 64)]


def test_a_file_with_no_ticks_per_beat_is_refused_not_divided_by() -> None:
    midi = mido.MidiFile(ticks_per_beat=0)
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=50, time=10)]))
    for use in (files.note_spans, files.length_beats):
        with pytest.raises(ValueError, match="no ticks per beat"):
            use(midi)


def test_the_length_of_a_type_1_file_is_that_of_its_longest_track() -> None:
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0),
                                       mido.MetaMessage("end_of_track", time=480)]))  # 1 beat
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=50, time=0),
                                       mido.Message("note_off", note=60, velocity=0, time=3 * 480),
                                       mido.MetaMessage("end_of_track", time=480)]))  # 4 beats
    assert files.length_beats(midi) == 4.0


def test_engine_notes_make_a_file_with_its_rests_program_key_and_name_once() -> None:
    from emolive.midi_notes import midi_from_events

    # 64 steps of 16ths with no notes: 16 beats of rest, kept to the end of the track.
    empty = midi_from_events([], 64, 120.0, 1, None, "emolive-default")
    assert files.length_beats(empty) == 16.0
    assert files.note_spans(empty) == []
    assert [m.name for m in empty.tracks[0] if m.type == "track_name"] == ["emolive-default"]
    # One C4 from step 4 to step 8 (beats 1..2), then rests to step 32 (8 beats).
    midi = midi_from_events([[4, 1, 60, 100], [8, 0, 60, 0]], 32, 120.0, 3, 1, "tiny", "F#m")
    assert files.length_beats(midi) == 8.0
    [span] = files.note_spans(midi)
    assert (span.start_beats, span.length_beats, span.pitch, span.velocity, span.channel) == (
        1.0, 1.0, 60, 100, 3)
    track = midi.tracks[0]
    assert [m.name for m in track if m.type == "track_name"] == ["emolive tiny"]
    assert [(m.channel, m.program) for m in track if m.type == "program_change"] == [(2, 0)]  # 1-based: 3, 1
    assert [m.key for m in track if m.type == "key_signature"] == ["F#m"]


def test_write_midi_round_trips(tmp_path: Path) -> None:
    path = files.write_midi(_c_major_arpeggio(), tmp_path / "a.mid")
    assert len(files.note_spans(mido.MidiFile(str(path)))) == 8


def test_write_midi_into_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        files.write_midi(_c_major_arpeggio(), tmp_path / "nope" / "a.mid")


def test_write_midi_of_something_else_is_a_type_error_and_writes_nothing(tmp_path: Path) -> None:
    """A string gave AttributeError: 'str' object has no attribute 'save' (helper-56)."""
    with pytest.raises(TypeError, match="takes a mido.MidiFile"):
        files.write_midi("notes", tmp_path / "a.mid")
    assert list(tmp_path.iterdir()) == []


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as handle:
        assert handle.getsampwidth() == 2
        frames = handle.readframes(handle.getnframes())
        samples = np.frombuffer(frames, dtype="<i2").reshape(-1, handle.getnchannels())
        return samples, handle.getframerate()


def test_a_soundfont_named_like_an_option_is_still_a_file(tmp_path: Path, monkeypatch) -> None:
    """FluidSynth read "-weird.sf2" (a relative name) as an option and printed its usage."""
    font = tmp_path / "-weird.sf2"
    font.symlink_to(_soundfont())
    monkeypatch.chdir(tmp_path)
    wav = files.render_wav(_c_major_arpeggio(bars=1), "-take.wav", soundfont="-weird.sf2", sample_rate=22050)
    assert _read_wav(wav)[0].size > 0


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (scripts/setup.sh)")
def test_render_wav_is_audible_and_as_long_as_the_music(tmp_path: Path) -> None:
    wav = files.render_wav(_c_major_arpeggio(bars=2), tmp_path / "a.wav", sample_rate=22050)
    samples, rate = _read_wav(wav)
    assert rate == 22050
    seconds = len(samples) / rate
    assert 3.9 <= seconds <= 7.0  # 8 beats at 120 BPM = 4 s, plus the release tail
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert rms > 100.0  # out of 32767: clearly not silence
    first_second = samples[: rate]
    assert np.abs(first_second).max() > 1000


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (scripts/setup.sh)")
def test_files_are_replaced_and_rendered_where_the_os_lacks_chown_and_sigxfsz(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As on Windows: replacing a file raised AttributeError (os.chown), and every render failed
    after FluidSynth had finished (signal.SIGXFSZ; helper-67)."""
    import signal

    monkeypatch.delattr(os, "chown")
    monkeypatch.delattr(signal, "SIGXFSZ")
    midi = _c_major_arpeggio()
    for _ in range(2):  # the second replaces the first
        files.write_midi(midi, tmp_path / "a.mid")
        files.render_wav(midi, tmp_path / "a.wav", sample_rate=22050)
    assert (tmp_path / "a.wav").stat().st_size > 1000


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (scripts/setup.sh)")
def test_render_wav_of_an_empty_file_is_silent(tmp_path: Path) -> None:
    midi = mido.MidiFile()
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("end_of_track", time=480)]))
    samples, _ = _read_wav(files.render_wav(midi, tmp_path / "silent.wav"))
    assert len(samples) > 0
    assert np.abs(samples).max() <= 4  # FluidSynth's dither only (+-1 LSB); the contrast to the test above


def test_render_without_fluidsynth_names_the_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no fluidsynth on an empty PATH
    with pytest.raises(files.RenderError, match="fluidsynth fluid-soundfont-gm"):
        files.render_wav(_c_major_arpeggio(), tmp_path / "a.wav")


def test_missing_soundfont_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(files.RenderError, match="does not exist"):
        files.find_soundfont(tmp_path / "none.sf2")


def test_a_file_that_is_not_a_soundfont_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.sf2"
    text.write_text("not a soundfont\n")
    wave_file = tmp_path / "RIFFwave.sf2"
    wave_file.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")  # RIFF, but a WAV's form type
    for path in (text, wave_file):
        with pytest.raises(files.RenderError, match="is not a SoundFont"):
            files.find_soundfont(path)


def _soundfont() -> Path:
    """The General MIDI soundfont render_wav uses by default (skips the test without one)."""
    try:
        return files.find_soundfont()
    except files.RenderError:
        pytest.skip("no General MIDI soundfont installed (scripts/setup.sh)")


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (scripts/setup.sh)")
@pytest.mark.parametrize("name", [b"truncated.sf2", b"trunc\xe9 (Latin-1).sf2"])
def test_a_soundfont_fluidsynth_cannot_load_fails_and_leaves_the_wav_alone(tmp_path: Path, name: bytes) -> None:
    # FluidSynth warns about a soundfont it cannot load, renders with its default one and
    # exits 0; render_wav must fail instead, and keep what was in the WAV file before. A name
    # that is not UTF-8 (an old archive's Latin-1) hid the reason behind a decode error (helper-85).
    truncated = tmp_path / os.fsdecode(name)
    with open(_soundfont(), "rb") as whole:
        truncated.write_bytes(whole.read(100_000))  # the header is right, the chunks cut short
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"an earlier render")
    with pytest.raises(files.RenderError, match="could not load the soundfont"):
        files.render_wav(_c_major_arpeggio(), wav, soundfont=truncated)
    assert wav.read_bytes() == b"an earlier render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", truncated.name]  # no temporary left


SHORT_RENDERER = """#!{python}
import sys, wave
out = sys.argv[sys.argv.index("-F") + 1]
with wave.open(out, "wb") as wav:  # what FluidSynth leaves when the disk fills: 0.1 s, exit 0
    wav.setnchannels(2); wav.setsampwidth(2); wav.setframerate(44100)
    wav.writeframes(bytes(4 * 4410))
"""


def test_a_render_cut_short_fails_and_leaves_the_wav_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FluidSynth exits 0 after a write it could not finish (a full disk, seen with a 64 kB
    tmpfs): its short WAV replaced the one there, and `emolive generate` said "wrote"."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    renderer = bin_dir / "fluidsynth"
    renderer.write_text(SHORT_RENDERER.format(python=sys.executable))
    renderer.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    font = tmp_path / "font.sf2"
    font.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"an earlier render")
    with pytest.raises(OSError, match=r"fluidsynth wrote 0.10 s of audio for 4.00 s of music; the disk may be full"):
        files.render_wav(_c_major_arpeggio(bars=2), wav, soundfont=font)
    assert wav.read_bytes() == b"an earlier render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "bin", "font.sf2"]


def test_a_failed_write_keeps_the_file_that_was_there(tmp_path: Path) -> None:
    midi = _c_major_arpeggio()
    midi.tracks[0].insert(3, "not a message")  # mido.MidiFile.save fails part way through
    old = tmp_path / "take.mid"
    old.write_bytes(b"an earlier take")
    with pytest.raises(Exception):  # noqa: B017 - whatever mido raises for a bad track
        files.write_midi(midi, old)
    assert old.read_bytes() == b"an earlier take"
    assert [p.name for p in tmp_path.iterdir()] == ["take.mid"]  # no partial or temporary file


def test_files_replaced_together_go_in_none_when_the_disk_fails_at_the_second(tmp_path: Path,
                                                                             monkeypatch) -> None:
    """Each file of a take was synced and renamed in turn: an error the disk reports at the
    second's sync (a full disk's delayed error, EIO) left the first replaced (helper-87). Every
    file is synced before any is renamed."""
    import errno

    from emolive import safe_write

    take = tmp_path / "take.mid"
    roll = tmp_path / "take.png"
    take.write_bytes(b"the earlier take")
    roll.write_bytes(b"its earlier plot")
    synced = []
    real_fsync = os.fsync

    def failing_second(descriptor: int) -> None:
        synced.append(descriptor)
        if len(synced) == 2:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", failing_second)
    with pytest.raises(files.WriteError, match="take.png"):
        with safe_write.replaced_together():
            files.write_midi(_c_major_arpeggio(), take)
            with safe_write.replaced_on_success(roll) as written:
                written.write_bytes(b"a new plot")
    assert take.read_bytes() == b"the earlier take" and roll.read_bytes() == b"its earlier plot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid", "take.png"]


@pytest.mark.skipif(shutil.which("setpriv") is None or not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root and util-linux's setpriv to give up reading any file")
def test_a_write_only_file_is_replaced_by_its_owner(tmp_path: Path) -> None:
    """The sync before the rename opened the staged file for reading after it had taken the old
    file's mode: a write-only (0200) file could no longer be replaced by its owner (helper-87).
    Root without the capability to read any file stands for its owner."""
    target = tmp_path / "take.mid"
    target.write_bytes(b"old")
    os.chmod(target, 0o200)
    code = ("import sys; from emolive import files; from tests.test_files import _c_major_arpeggio; "
            "files.write_midi(_c_major_arpeggio(), sys.argv[1])")
    result = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c", code,
                             str(target)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o200  # its mode kept
    os.chmod(target, 0o600)
    assert target.read_bytes()[:4] == b"MThd"


def test_a_system_error_names_the_file_asked_for_not_the_temporary_one(tmp_path: Path, monkeypatch) -> None:
    """A full disk said only '[Errno 28] No space left on device' (which of --count's files?),
    an immutable file the temporary path beside it."""
    from emolive import safe_write

    old = tmp_path / "take.mid"
    old.write_bytes(b"an earlier take")

    def refused(source, target) -> None:
        raise PermissionError(1, "Operation not permitted", str(source), None, str(target))

    monkeypatch.setattr(safe_write.os, "replace", refused)
    with pytest.raises(files.WriteError) as raised:
        files.write_midi(_c_major_arpeggio(), old)
    assert str(raised.value) == f"could not write {str(old)!r}: Operation not permitted"
    assert raised.value.errno == 1
    assert not isinstance(raised.value, PermissionError)  # the machine's failure: exit 1, not 2
    assert old.read_bytes() == b"an earlier take" and [p.name for p in tmp_path.iterdir()] == ["take.mid"]


def test_a_link_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "takes" / "take.mid"
    target.parent.mkdir()
    target.write_bytes(b"an earlier take")
    link = tmp_path / "latest.mid"
    link.symlink_to(target)
    files.write_midi(_c_major_arpeggio(), link)
    assert link.is_symlink() and link.resolve() == target
    assert target.read_bytes()[:4] == b"MThd"


def test_a_file_written_again_keeps_its_permissions(tmp_path: Path) -> None:
    take = tmp_path / "take.mid"
    take.write_bytes(b"an earlier take")
    take.chmod(0o640)
    files.write_midi(_c_major_arpeggio(), take)
    assert take.stat().st_mode & 0o777 == 0o640
    assert take.read_bytes()[:4] == b"MThd"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_written_into_not_replaced(tmp_path: Path) -> None:
    pipe = tmp_path / "to-the-synth.mid"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    files.write_midi(_c_major_arpeggio(), pipe)
    reader.join(timeout=10)
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    assert received and received[0][:4] == b"MThd"


def test_an_open_descriptor_named_by_dev_fd_is_written_at_its_offset(tmp_path: Path) -> None:
    takes = tmp_path / "takes.bin"
    takes.write_bytes(b"an earlier take")
    inode = takes.stat().st_ino
    with open(takes, "ab") as appending:
        files.write_midi(_c_major_arpeggio(), f"/dev/fd/{appending.fileno()}")
        files.write_midi(_c_major_arpeggio(), f"/proc/self/fd/{appending.fileno()}")
    data = takes.read_bytes()
    assert data.startswith(b"an earlier takeMThd") and data.count(b"MThd") == 2
    assert takes.stat().st_ino == inode  # written into, not replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["takes.bin"]


def test_a_descriptor_open_for_reading_is_a_permission_error(tmp_path: Path) -> None:
    takes = tmp_path / "takes.bin"
    takes.write_bytes(b"an earlier take")
    with open(takes, "rb") as reading, pytest.raises(PermissionError, match="reading only"):
        files.write_midi(_c_major_arpeggio(), f"/dev/fd/{reading.fileno()}")
    assert takes.read_bytes() == b"an earlier take"


def test_a_link_into_a_missing_folder_names_that_folder(tmp_path: Path) -> None:
    link = tmp_path / "latest.mid"
    link.symlink_to(tmp_path / "takes" / "take.mid")
    with pytest.raises(FileNotFoundError, match=f"folder '{tmp_path / 'takes'}' does not exist .*a link to"):
        files.write_midi(_c_major_arpeggio(), link)
    assert link.is_symlink() and not (tmp_path / "takes").exists()


def test_a_name_ending_in_a_slash_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="names a folder"):
        files.write_midi(_c_major_arpeggio(), f"{tmp_path}/new-folder/")
    assert list(tmp_path.iterdir()) == []


def test_a_midi_file_or_a_wav_named_for_another_format_is_refused(tmp_path: Path) -> None:
    """The API wrote a MIDI file named take.wav (the command refused it): a DAW then fails to
    import it. Names without a suffix, the MIDI suffixes in any case, and streams are taken."""
    with pytest.raises(ValueError, match=r"MIDI files are written as \.mid or \.midi or \.smf"):
        files.write_midi(_c_major_arpeggio(), tmp_path / "take.wav")
    with pytest.raises(ValueError, match=r"audio is written as \.wav"):
        files.render_wav(_c_major_arpeggio(), tmp_path / "take.mid")
    with pytest.raises(ValueError, match=r"MIDI files are written as"):
        files.write_midi(_c_major_arpeggio(), tmp_path / ".wav")  # all suffix (helper-60)
    assert list(tmp_path.iterdir()) == []
    for name in ("take", "take.MID", "take.smf"):
        files.write_midi(_c_major_arpeggio(), tmp_path / name)
    files.write_midi(_c_major_arpeggio(), os.devnull)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take", "take.MID", "take.smf"]


def test_a_plot_is_drawn_in_the_format_its_suffix_names(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    files.plot_piano_roll(_c_major_arpeggio(), tmp_path / "roll.svg")
    assert b"<svg" in (tmp_path / "roll.svg").read_bytes()[:500]
    with pytest.raises(ValueError, match=r"plots are written as .*\.png"):
        files.plot_piano_roll(_c_major_arpeggio(), tmp_path / "roll.xyz")


@pytest.mark.parametrize("suffix", ["svg", "pdf", "png"])
def test_a_plot_of_the_same_notes_is_the_same_bytes_in_any_process(tmp_path: Path, suffix: str) -> None:
    """SVG and PDF stamped the date, and SVG's ids changed with PYTHONHASHSEED: a seeded take's
    plot differed between runs though its MIDI and WAV did not (helper-85)."""
    pytest.importorskip("matplotlib")
    code = ("import sys; from emolive import files; from tests.test_files import _c_major_arpeggio; "
            "files.plot_piano_roll(_c_major_arpeggio(), sys.argv[1])")
    made = []
    for seed in ("1", "2"):
        out = tmp_path / f"roll{seed}.{suffix}"
        subprocess.run([sys.executable, "-c", code, str(out)], check=True, timeout=120, cwd=ROOT,
                       env=dict(os.environ, PYTHONHASHSEED=seed, SOURCE_DATE_EPOCH=f"{seed}00000"))  # two dates
        made.append(out.read_bytes())
    assert made[0] == made[1]


@pytest.mark.parametrize("kind", ["midi", "plot"])
def test_an_unwritable_folder_is_a_clear_permission_error(unwritable_folder: Path, kind: str) -> None:
    if kind == "plot":
        pytest.importorskip("matplotlib")
    write = files.write_midi if kind == "midi" else files.plot_piano_roll
    with pytest.raises(PermissionError, match=f"cannot write into folder '{unwritable_folder}'"):
        write(_c_major_arpeggio(), unwritable_folder / "take")


def _refused_as_another_user(path: Path) -> str:
    """The PermissionError check_writable raises for ``path``, as user nobody (65534), in a child
    process (root is refused nothing); "" if none."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nobody, then the check
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            files.check_writable(path)
            said = ""
        except PermissionError as error:
            said = str(error)
        os.write(write, said.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    return said


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="makes files as root for another user")
def test_a_file_this_user_may_not_replace_is_refused_before_the_work() -> None:
    """Written beside and renamed over, a read-only file was replaced (the shell's `>` refuses
    it), and so was root's file in a folder anyone may write into; another user's file in a
    sticky folder (/tmp) failed only after the work (helper-59)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="emolive-protected-"))
    try:
        folder.chmod(0o777)  # anyone may make files here
        read_only = folder / "take.mid"
        read_only.write_bytes(b"kept")
        read_only.chmod(0o444)
        assert "is read-only" in _refused_as_another_user(read_only)
        folder.chmod(0o1777)  # sticky: only a file's owner may replace it
        theirs = folder / "theirs.mid"
        theirs.write_bytes(b"kept")
        theirs.chmod(0o666)
        assert "belongs to another user" in _refused_as_another_user(theirs)
        assert _refused_as_another_user(folder / "new.mid") == ""  # a new file is made
        assert read_only.read_bytes() == theirs.read_bytes() == b"kept"
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("kwargs,error", [
    ({"sample_rate": 96001}, ValueError), ({"sample_rate": 192000}, ValueError),  # FluidSynth refuses
    ({"sample_rate": 7999}, ValueError), ({"sample_rate": 44100.7}, TypeError),
    ({"sample_rate": True}, TypeError), ({"gain": True}, TypeError), ({"gain": 10.5}, ValueError),
])
def test_render_settings_fluidsynth_cannot_use_are_refused_up_front(tmp_path: Path, kwargs: dict,
                                                                      error: type) -> None:
    with pytest.raises(error):
        files.render_wav(_c_major_arpeggio(), tmp_path / "a.wav", **kwargs)
    assert not list(tmp_path.iterdir())


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = files.plot_piano_roll(_c_major_arpeggio(), tmp_path / "roll.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 2000


def test_a_plot_leaves_the_hosts_matplotlib_backend_and_figures_alone(tmp_path: Path) -> None:
    """plot_piano_roll switched the host's backend to Agg for good (a notebook's inline display,
    a Tk or Qt app's windows; helper-63). In a child: the backend is process-wide."""
    pytest.importorskip("matplotlib")
    code = ("import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot as plt; from pathlib import Path; "
            "from emolive import files; from tests.test_files import _c_major_arpeggio; plt.figure(); "
            f"files.check_plotting(Path({str(tmp_path)!r}) / 'r.pdf'); "
            f"files.plot_piano_roll(_c_major_arpeggio(), Path({str(tmp_path)!r}) / 'r.png'); "
            "print(matplotlib.get_backend(), plt.get_fignums())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["svg", "[1]"] and (tmp_path / "r.png").stat().st_size > 2000


def test_the_files_functions_name_a_wrong_argument_type(tmp_path: Path) -> None:
    """A path or a number gave AttributeError: 'str' object has no attribute 'ticks_per_beat'."""
    with pytest.raises(TypeError, match="plot_piano_roll takes a mido.MidiFile .*not str"):
        files.plot_piano_roll(str(tmp_path / "x.mid"), tmp_path / "r.png")
    with pytest.raises(TypeError, match="note_spans takes a mido.MidiFile .*not int"):
        files.note_spans(5)
    with pytest.raises(TypeError, match="plot_piano_roll's title must be text, not int"):
        files.plot_piano_roll(_c_major_arpeggio(), tmp_path / "r.png", title=5)
    assert not list(tmp_path.iterdir())


def test_a_plot_spans_the_whole_piece_rests_at_the_end_included() -> None:
    midi = _c_major_arpeggio(bars=1)
    midi.tracks[0].append(mido.MetaMessage("end_of_track", time=4 * 480))  # a silent second bar
    assert files.length_beats(midi) == 8.0
    assert files.plot_extent(midi) == (8.0, 1)
    assert files.plot_extent(mido.MidiFile()) == (4.0, 1)  # nothing at all: one bar


def test_a_long_plot_draws_a_bar_line_every_few_bars(tmp_path: Path) -> None:
    """A 25,000-bar note: 25,000 bar lines took 20 s to draw; at most MAX_BAR_LINES now."""
    pytest.importorskip("matplotlib")
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=64),
                                       mido.Message("note_off", note=60, time=480 * 100_000)]))
    end, bars_per_line = files.plot_extent(midi)
    assert end == 100_000.0 and 100_000 / 4 / bars_per_line <= files.MAX_BAR_LINES
    assert files.plot_piano_roll(midi, tmp_path / "long.png").stat().st_size > 2000


def test_plot_without_matplotlib_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'emolive\[plot\]'"):
        files.plot_piano_roll(_c_major_arpeggio(), tmp_path / "roll.png")


def test_a_loop_of_links_is_refused_not_replaced_by_a_file(tmp_path: Path) -> None:
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    for check in (files.check_writable, lambda p: files.write_midi(_c_major_arpeggio(), p)):
        with pytest.raises(PermissionError, match="^'.*a' is a loop of links"):  # exit 2, no [Errno 40]
            check(tmp_path / "a")
    assert os.path.islink(tmp_path / "a") and os.path.islink(tmp_path / "b")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX sockets")
def test_a_socket_is_not_a_file_to_write(tmp_path: Path) -> None:
    import socket

    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "s.mid"))
    try:
        with pytest.raises(PermissionError, match="is a socket"):
            files.check_writable(tmp_path / "s.mid")
    finally:
        server.close()


def _smpte_file(path: Path) -> Path:
    _c_major_arpeggio().save(str(path))
    data = bytearray(path.read_bytes())
    data[12:14] = b"\xe7\x28"  # the division: 25 frames a second, 40 ticks a frame
    path.write_bytes(bytes(data))
    return path


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (scripts/setup.sh)")
def test_smpte_timed_files_are_refused_not_read_as_negative_beats(tmp_path: Path) -> None:
    """Spans came out negative, plots empty, and renders silent (FluidSynth exits 0)."""
    midi = mido.MidiFile(str(_smpte_file(tmp_path / "smpte.mid")))
    for use in (files.note_spans, files.length_beats):
        with pytest.raises(ValueError, match="SMPTE"):
            use(midi)
    with pytest.raises(ValueError, match="SMPTE"):
        files.render_wav(midi, tmp_path / "s.wav", soundfont=_fake_soundfont(tmp_path))
    assert not (tmp_path / "s.wav").exists()


def _fake_soundfont(tmp_path: Path) -> Path:
    font = tmp_path / "font.sf2"
    font.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")  # refused by nothing before the render
    return font


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (scripts/setup.sh)")
def test_a_cut_midi_file_is_named_when_it_cannot_be_read(tmp_path: Path) -> None:
    """mido raised a bare EOFError() after FluidSynth had rendered."""
    path = tmp_path / "cut.mid"
    _c_major_arpeggio().save(str(path))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(files.RenderError, match="cut.mid' cannot be read as a MIDI file"):
        files.render_wav(path, tmp_path / "cut.wav", soundfont=_fake_soundfont(tmp_path))


def test_music_too_long_for_a_wav_is_refused_before_rendering() -> None:
    """Past 4 GiB the WAV's sizes wrapped, and minutes of rendering ended in "the disk may be full".
    The WAV runs on past the music by the notes' release: music within that tail of the limit
    passed the check, then failed so (24,345.7 s at 44.1 kHz, helper-56)."""
    files.check_wav_fits(6.7 * 3600, 44100)
    with pytest.raises(ValueError, match="do not fit a WAV file at 44100 Hz"):
        files.check_wav_fits(24345.7, 44100)  # under 4 GiB itself, not with its tail
    with pytest.raises(ValueError, match="do not fit a WAV file at 44100 Hz"):
        files.check_wav_fits(6.8 * 3600, 44100)
    with pytest.raises(ValueError, match="at 96000 Hz"):
        files.check_wav_fits(3.25 * 3600, 96000)
    # Just over: both figures read 6.73 hours (helper-68); to the second they differ
    with pytest.raises(ValueError, match=r"^6:44:02 of music do not fit a WAV file at 44100 Hz \(at most 6:43:47, h:mm:ss\)"):
        files.check_wav_fits(10000 * 4 * 60 / 99, 44100)


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (scripts/setup.sh)")
def test_a_type_2_file_renders_its_tracks_together(tmp_path: Path) -> None:
    """mido has no length for type 2: render_wav raised its ValueError after rendering."""
    _soundfont()
    one = _c_major_arpeggio(bars=1)
    midi = mido.MidiFile(type=2, ticks_per_beat=one.ticks_per_beat, tracks=[one.tracks[0], one.tracks[0]])
    samples, rate = _read_wav(files.render_wav(midi, tmp_path / "t2.wav"))
    assert len(samples) / rate >= 2.0 and np.abs(samples).max() > 0


def test_bar_lines_follow_the_files_time_signature() -> None:
    """A 3/4 file got a line every 4 beats, labelled 4/4 bars."""
    midi = _c_major_arpeggio(bars=1)
    assert files.time_signature(midi) == (4, 4) and files.bar_beats(midi) == 4.0
    midi.tracks[0].insert(0, mido.MetaMessage("time_signature", numerator=6, denominator=8))
    assert files.time_signature(midi) == (6, 8) and files.bar_beats(midi) == 3.0
    midi.tracks[0].append(mido.MetaMessage("end_of_track", time=480 * 3 * 600))  # 600 more bars of 3 beats
    end, bars_per_line = files.plot_extent(midi)
    assert end == 4 + 3 * 600 and bars_per_line == 3  # 602 bars of 3 beats: a line every 3 bars


def test_a_time_signature_of_no_beats_is_passed_over(tmp_path: Path) -> None:
    """numerator=0 (mido saves and loads it) made plot_extent and plot_piano_roll divide by zero."""
    midi = _c_major_arpeggio(bars=1)
    midi.tracks[0].insert(0, mido.MetaMessage("time_signature", numerator=0, denominator=4))
    midi.save(tmp_path / "zero.mid")
    midi = mido.MidiFile(tmp_path / "zero.mid")
    assert files.time_signature(midi) == (4, 4) and files.plot_extent(midi) == (4.0, 1)
    pytest.importorskip("matplotlib")
    assert files.plot_piano_roll(midi, tmp_path / "zero.png").stat().st_size > 0


def test_a_soundfont_that_cannot_be_read_or_comes_from_the_environment_is_named_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreadable soundfont said only "[Errno 13] Permission denied: '/etc/shadow'", and one
    from EMOLIVE_SOUNDFONT never named the variable (helper-59)."""
    if Path("/proc/self/mem").is_file():  # a file even root cannot read from its start
        with pytest.raises(files.RenderError, match=r"soundfont '/proc/self/mem' cannot be read: "):
            files.find_soundfont("/proc/self/mem")
    monkeypatch.setenv("EMOLIVE_SOUNDFONT", str(tmp_path / "gone.sf2"))
    with pytest.raises(files.RenderError, match=r"gone.sf2' \(EMOLIVE_SOUNDFONT\) does not exist"):
        files.find_soundfont()


@pytest.mark.parametrize("model_name", ["piano \u2013 v2", "\u97f3\u697d model", "cr\u00e8me", "emolive-default"])
def test_a_model_named_beyond_latin_1_still_writes_its_files(tmp_path: Path, model_name: str) -> None:
    """mido writes text in Latin-1: a model named with an en dash or in Japanese generated its
    music and then wrote no file ('latin-1' codec can't encode, status 2; helper-73). The name
    goes in Latin-1 where it fits (as before) and in UTF-8 otherwise."""
    from emolive.midi_notes import midi_from_events

    midi = midi_from_events([[0, 1, 60, 90], [4, 0, 60, 0]], 16, 120.0, 1, None, model_name)
    path = files.write_midi(midi, tmp_path / "a.mid")
    charset = "latin1" if model_name.isascii() or model_name == "cr\u00e8me" else "utf-8"
    name = next(m.name for m in mido.MidiFile(str(path), charset=charset).tracks[0] if m.type == "track_name")
    assert model_name in name
    assert len(files.note_spans(mido.MidiFile(str(path)))) == 1


def test_two_threads_writing_names_in_two_charsets_each_write_their_own(tmp_path: Path) -> None:
    """mido switches one process-wide charset for each save: a UTF-8 name saved on one thread
    while a Latin-1 one was saved on another wrote the Latin-1 name in UTF-8 or failed (helper-75).
    The names here follow a track of notes, so that the saves overlap often."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: the race shows in a few hundred saves
    wrong: list[str] = []

    def save_many(name: str, charset: str) -> None:
        midi = _c_major_arpeggio(bars=100)
        midi.charset = charset
        midi.tracks.append(mido.MidiTrack([mido.MetaMessage("track_name", name=name)]))
        path = tmp_path / f"{charset}.mid"
        for _ in range(300):
            try:
                files.write_midi(midi, path)
            except UnicodeError as exc:
                wrong.append(f"{name}: {exc}")
                continue
            if name.encode(charset) not in path.read_bytes():
                wrong.append(f"{name} not in {charset}")

    threads = [threading.Thread(target=save_many, args=args)
               for args in (("\u97f3\u697d", "utf-8"), ("cr\u00e8me", "latin1"))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []


def test_the_file_functions_keep_a_file_named_without_a_suffix_that_holds_other_data(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.write_text("my notes\n")
    with pytest.raises(ValueError, match=r"holds something other than MIDI"):
        files.write_midi(_c_major_arpeggio(), notes)
    with pytest.raises(ValueError, match=r"holds something other than a PNG picture"):
        files.plot_piano_roll(_c_major_arpeggio(), notes)
    assert notes.read_text() == "my notes\n"
    files.write_midi(_c_major_arpeggio(), tmp_path / "take")
    files.write_midi(_c_major_arpeggio(), tmp_path / "take")  # a MIDI file: written over
    assert (tmp_path / "take").read_bytes()[:4] == b"MThd"
    (tmp_path / "empty").touch()  # an empty file holds nothing to lose: written over
    files.write_midi(_c_major_arpeggio(), tmp_path / "empty")
    assert (tmp_path / "empty").read_bytes()[:4] == b"MThd"


def test_a_file_name_of_spaces_is_no_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="the file name is empty"):
        files.write_midi(_c_major_arpeggio(), "   ")
    assert list(tmp_path.iterdir()) == []


def test_a_file_without_a_suffix_that_cannot_be_read_is_not_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write-only file (as a user other than root) passed the check unread, and was replaced
    (helper-82)."""
    from emolive import safe_write

    notes = tmp_path / "notes"
    notes.write_text("my notes\n")

    def unreadable(*args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(safe_write, "open", unreadable, raising=False)
    with pytest.raises(ValueError, match=r"cannot be read to see what it holds"):
        files.write_midi(_c_major_arpeggio(), notes)
    assert notes.read_text() == "my notes\n"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_child_forked_while_a_save_held_the_charset_lock_can_save(tmp_path: Path) -> None:
    """The lock stayed held in the child for good: its first save hung (helper-82)."""
    from emolive import midi_notes

    with midi_notes._MIDO_CHARSET_LOCK:  # another thread mid-save at the fork
        pid = os.fork()
        if pid == 0:  # the child: save and leave at once, whatever happens
            try:
                files.write_midi(_c_major_arpeggio(), tmp_path / "child.mid")
            finally:
                os._exit(0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
        time.sleep(0.05)
    if not (tmp_path / "child.mid").exists():
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert (tmp_path / "child.mid").read_bytes()[:4] == b"MThd"


def test_a_link_named_for_one_format_to_a_file_of_another_is_refused(tmp_path: Path) -> None:
    """take.mid -> song.wav: the WAV was replaced by MIDI without a word (helper-73); the link's
    own name passed the check."""
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF....WAVE")
    (tmp_path / "take.mid").symlink_to(song)
    with pytest.raises(ValueError, match=r"MIDI files are written as"):
        files.write_midi(_c_major_arpeggio(), tmp_path / "take.mid")
    assert song.read_bytes() == b"RIFF....WAVE"
    (tmp_path / "other.mid").symlink_to(tmp_path / "other-take.mid")  # a link to a MIDI name: written through
    files.write_midi(_c_major_arpeggio(), tmp_path / "other.mid")
    assert (tmp_path / "other-take.mid").read_bytes()[:4] == b"MThd"
