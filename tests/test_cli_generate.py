"""`emolive generate`: the engine's offline notes written as MIDI, WAV and PNG (tiny random model)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import mido
import numpy as np
import pytest

from emolive.files import note_spans
from tests.process_lines import with_stdout_closed


@pytest.fixture(autouse=True)
def _engine_built() -> None:
    import emolive

    if not hasattr(emolive, "Engine"):
        pytest.skip("the engine (emolive.Engine) is not built in this checkout")


def generate(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emolive.cli", "generate", *argv], capture_output=True,
                          text=True, timeout=300)


def test_generate_midi_with_notes(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "sad.mid"
    result = generate("--model", str(tiny_model_dir), "--emotion", "sad", "--bars", "8", "--seed", "5",
                      "--bpm", "90", "-o", str(out))
    assert result.returncode == 0, result.stderr
    midi = mido.MidiFile(str(out))
    spans = note_spans(midi)
    assert len(spans) > 0
    assert all(21 <= s.pitch <= 108 for s in spans)  # the model's piano range
    assert max(s.start_beats for s in spans) < 8 * 4  # within 8 bars of 4 beats
    tempos = [m.tempo for t in midi.tracks for m in t if m.type == "set_tempo"]
    assert tempos and mido.tempo2bpm(tempos[0]) == pytest.approx(90.0)
    assert f"wrote {out}" in result.stdout


def test_same_seed_same_file_other_seed_other_notes(tmp_path: Path, tiny_model_dir: Path) -> None:
    paths = [tmp_path / f"{name}.mid" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("7", "7", "8")):
        result = generate("--model", str(tiny_model_dir), "--bars", "4", "--seed", seed, "-o", str(path))
        assert result.returncode == 0, result.stderr
    notes = [note_spans(mido.MidiFile(str(p))) for p in paths]
    assert notes[0] == notes[1]
    assert notes[0] != notes[2]


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (scripts/setup.sh)")
def test_render_and_plot(tmp_path: Path, tiny_model_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    wav, png = tmp_path / "happy.wav", tmp_path / "happy.png"
    result = generate("--model", str(tiny_model_dir), "--emotion", "happy", "--bars", "4", "--seed", "1",
                      "--render", str(wav), "--plot", str(png), "--program", "1")
    assert result.returncode == 0, result.stderr
    with wave.open(str(wav), "rb") as handle:
        samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        seconds = handle.getnframes() / handle.getframerate()
    assert seconds >= 4 * 4 * 0.5 * 0.9  # 4 bars at 120 BPM = 8 s (less a little for a silent end)
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 50.0  # audible, not dither
    assert png.read_bytes()[:4] == b"\x89PNG"


def _files_of_100_kb_at_most() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (scripts/setup.sh)")
def test_a_render_stopped_by_the_file_size_limit_is_a_write_error(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Under `ulimit -f` FluidSynth died of SIGXFSZ and the command said "fluidsynth failed
    (exit -25): " with no reason, status 2 (helper-59); it is the write's failure, as -o's is."""
    wav = tmp_path / "take.wav"
    wav.write_bytes(b"kept")
    result = subprocess.run([sys.executable, "-m", "emolive", "generate", "--model", str(tiny_model_dir), "--bars", "8",
                             "--render", str(wav)], capture_output=True, text=True, timeout=120,
                            preexec_fn=_files_of_100_kb_at_most)
    assert result.returncode == 1, result.stderr
    assert f"could not write {str(wav)!r}: File too large (the file-size limit, ulimit -f" in result.stderr
    assert wav.read_bytes() == b"kept" and "Traceback" not in result.stderr


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (scripts/setup.sh)")
def test_a_take_whose_render_fails_replaces_none_of_its_files(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A full disk (here the file-size limit) at the WAV left the new MIDI beside the old WAV and
    PNG: the earlier take's MIDI was lost (helper-84). A take's files go in all or none."""
    take = {name: tmp_path / f"take.{name}" for name in ("mid", "wav", "png")}
    first = generate("--model", str(tiny_model_dir), "--bars", "1", "--seed", "1", "-o", str(take["mid"]),
                     "--plot", str(take["png"]))
    assert first.returncode == 0, first.stderr
    take["wav"].write_bytes(b"the earlier take's audio")
    before = {name: path.read_bytes() for name, path in take.items()}
    result = subprocess.run([sys.executable, "-m", "emolive", "generate", "--model", str(tiny_model_dir), "--bars", "8",
                             "--seed", "2", "-o", str(take["mid"]), "--render", str(take["wav"]), "--plot",
                             str(take["png"])], capture_output=True, text=True, timeout=120,
                            preexec_fn=_files_of_100_kb_at_most)
    assert result.returncode == 1 and "could not write" in result.stderr, result.stderr
    assert {name: path.read_bytes() for name, path in take.items()} == before
    assert "wrote" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid", "take.png", "take.wav"]  # no temporary left


def test_morph_to_changes_the_emotion_along_the_file(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "morph.mid"
    result = generate("--model", str(tiny_model_dir), "--emotion", "calm", "--morph-to", "excited",
                      "--morph-bars", "2", "--bars", "4", "--seed", "2", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "calm -> excited (happy)" in result.stdout  # the alias as given, its quadrant beside it
    assert note_spans(mido.MidiFile(str(out)))


def test_a_current_folder_removed_under_the_command_is_named(tmp_path: Path, tiny_model_dir: Path) -> None:
    """In a folder removed while the shell was in it, `-o g.mid` said only "[Errno 2] No such
    file or directory" (helper-85)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    result = subprocess.run([sys.executable, "-m", "emolive", "generate", "--model", str(tiny_model_dir), "--bars", "1",
                             "-o", "g.mid"], capture_output=True, text=True, timeout=120, cwd=gone,
                            preexec_fn=gone.rmdir)  # after the child's chdir, before Python starts
    assert result.returncode == 2, result.stderr
    assert "the current folder no longer exists" in result.stderr and "Traceback" not in result.stderr


def test_bad_model_directory_exits_2(tmp_path: Path) -> None:
    result = generate("--model", str(tmp_path / "missing"), "-o", str(tmp_path / "x.mid"))
    assert result.returncode == 2
    assert "emolive: error:" in result.stderr and "Traceback" not in result.stderr


ESCAPES = "\x1b]0;TITLE\x07\x1b[2J\r\u202e"  # retitle, clear the screen, overwrite the line, reverse


def test_a_card_from_elsewhere_cannot_write_control_characters_to_the_terminal(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    """The engine quotes a wrong card value in its error; the commands print it escaped."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    card = json.loads((model / "model_card.json").read_text())
    card["format"] = "not-emolive" + ESCAPES
    (model / "model_card.json").write_text(json.dumps(card))
    result = generate("--model", str(model), "-o", str(tmp_path / "x.mid"))
    evaluated = subprocess.run([sys.executable, "-m", "emolive.cli", "evaluate", "--model", str(model),
                                "--report", str(tmp_path / "report")], capture_output=True, text=True, timeout=300)
    for run in (result, evaluated):
        assert run.returncode == 2 and "not-emolive" in run.stderr, run.stderr
        assert not any(c in run.stderr for c in "\x1b\x07\r\u202e"), run.stderr
        assert "\\x1b]0;TITLE" in run.stderr and "Traceback" not in run.stderr


def test_a_cards_name_is_written_printable_and_short(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The track name comes from the card: escape sequences were written into the file, and a
    1 MB name made a file that mido (and so emolive's own render) refuses to read."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    card = json.loads((model / "model_card.json").read_text())
    card["name"] = "mine" + ESCAPES + "x" * 1_000_000
    (model / "model_card.json").write_text(json.dumps(card))
    result = generate("--model", str(model), "--bars", "1", "-o", str(tmp_path / "x.mid"))
    assert result.returncode == 0, result.stderr
    names = [m.name for m in mido.MidiFile(tmp_path / "x.mid").tracks[0] if m.type == "track_name"]
    assert names == ["emolive " + ("mine]0;TITLE[2J" + "x" * 100)[:100]]  # printable, 100 at most


def test_key_lock_keeps_onsets_in_the_scale(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "a_minor.mid"
    result = generate("--model", str(tiny_model_dir), "--key", "A", "--scale", "minor", "--bars", "4",
                      "--seed", "4", "-o", str(out))
    assert result.returncode == 0, result.stderr
    pitch_classes = {s.pitch % 12 for s in note_spans(mido.MidiFile(str(out)))}
    assert pitch_classes and pitch_classes <= {9, 11, 0, 2, 4, 5, 7}  # A B C D E F G


def test_readme_generate_example(tmp_path: Path, tiny_model_dir: Path) -> None:
    """README: `emolive generate --emotion sad --bars 32 -o sad.mid --render sad.wav --plot sad.png`
    (with the tiny model when the bundled one is absent)."""
    pytest.importorskip("matplotlib")
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth not installed (scripts/setup.sh)")
    from emolive.engine import DEFAULT_MODEL_DIR

    model = [] if (DEFAULT_MODEL_DIR / "model_card.json").is_file() else ["--model", str(tiny_model_dir)]
    result = subprocess.run([sys.executable, "-m", "emolive", "generate", "--emotion", "sad", "--bars", "32", "-o",
                             "sad.mid", "--render", "sad.wav", "--plot", "sad.png", *model],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(note_spans(mido.MidiFile(str(tmp_path / "sad.mid")))) > 0
    with wave.open(str(tmp_path / "sad.wav"), "rb") as handle:
        assert handle.getnframes() / handle.getframerate() >= 32 * 2.0 * 0.9  # 32 bars at 120 BPM = 64 s
    assert (tmp_path / "sad.png").read_bytes()[:4] == b"\x89PNG"


def test_render_without_fluidsynth_exits_2_naming_the_packages(tmp_path: Path, tiny_model_dir: Path) -> None:
    import os

    env = dict(os.environ, PATH=str(tmp_path))  # no fluidsynth program to be found
    result = subprocess.run([sys.executable, "-m", "emolive", "generate", "--model", str(tiny_model_dir), "--bars",
                             "1", "--render", str(tmp_path / "x.wav")], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 2
    assert "apt-get install fluidsynth fluid-soundfont-gm" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_soundfont_exits_2_before_generating(tmp_path: Path, tiny_model_dir: Path) -> None:
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth not installed (scripts/setup.sh)")
    not_a_soundfont = tmp_path / "font.sf2"
    not_a_soundfont.write_text("hello")
    result = generate("--model", str(tiny_model_dir), "--bars", "1", "-o", str(tmp_path / "x.mid"),
                      "--render", str(tmp_path / "x.wav"), "--soundfont", str(not_a_soundfont))
    assert result.returncode == 2
    assert "is not a SoundFont" in result.stderr and "Traceback" not in result.stderr
    assert "generated" not in result.stdout
    assert not (tmp_path / "x.mid").exists() and not (tmp_path / "x.wav").exists()


def test_count_writes_numbered_pieces_with_consecutive_seeds(tmp_path: Path, tiny_model_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    result = generate("--model", str(tiny_model_dir), "--bars", "2", "--seed", "7", "--count", "3",
                      "-o", str(tmp_path / "set.mid"), "--plot", str(tmp_path / "set.png"))
    assert result.returncode == 0, result.stderr
    pieces = [note_spans(mido.MidiFile(str(tmp_path / f"set-{i}.mid"))) for i in (1, 2, 3)]
    assert all((tmp_path / f"set-{i}.png").read_bytes()[:4] == b"\x89PNG" for i in (1, 2, 3))
    assert not (tmp_path / "set.mid").exists()
    assert result.stdout.count("generated 2 bars") == 3
    single = generate("--model", str(tiny_model_dir), "--bars", "2", "--seed", "8", "-o", str(tmp_path / "one.mid"))
    assert single.returncode == 0, single.stderr
    assert pieces[1] == note_spans(mido.MidiFile(str(tmp_path / "one.mid")))  # piece 2 has seed 7 + 1
    assert pieces[0] != pieces[1] != pieces[2]


@pytest.mark.parametrize(("argv", "message"), [
    (("--count", "0"), "--count"),
    (("--count", "1001"), "--count"),
    (("--count", "20", "--bars", "10000"), "at most 100000 bars in all"),
])
def test_bad_count_exits_2(tmp_path: Path, tiny_model_dir: Path, argv: tuple[str, ...], message: str) -> None:
    result = generate("--model", str(tiny_model_dir), *argv, "-o", str(tmp_path / "x.mid"))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_an_unwritable_output_folder_exits_2_before_generating(tmp_path: Path, tiny_model_dir: Path,
                                                              unwritable_folder: Path) -> None:
    result = generate("--model", str(tiny_model_dir), "--bars", "1", "-o", str(tmp_path / "x.mid"),
                      "--render", str(unwritable_folder / "x.wav"))
    assert result.returncode == 2
    assert f"cannot write into folder '{unwritable_folder}'" in result.stderr
    assert "Traceback" not in result.stderr and "generated" not in result.stdout
    assert not (tmp_path / "x.mid").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (("-o", "{d}/same", "--render", "{d}/same"), "-o and --render would both write"),
    (("-o", "{d}/new-folder/"), "is a folder; give a file name"),
    (("-o", "{d}/set.mid", "--count", "3"), "is a folder"),  # set-2.mid is a folder
    (("--plot", "{d}/roll.xyz"), "plots are written as"),
    (("-o", "{d}/take.wav"), "MIDI files are written as .mid or .midi or .smf"),
    (("--render", "{d}/take.flac"), "audio is written as .wav"),
    (("--render", "{d}/take.mid"), "audio is written as .wav"),
    (("--render", "{d}/" + "y" * 300 + ".wav"), "the name is too long for the file system"),
    # a model or soundfont named so exited 1 with '[Errno 36] File name too long' (helper-78)
    (("-o", "{d}/x.mid", "--model", "{d}/" + "m" * 300), "the name is too long for the file system"),
    (("--render", "{d}/x.wav", "--soundfont", "{d}/" + "f" * 300 + ".sf2"), "the name is too long for the file"),
    (("-o", "{d}/x.mid", "--soundfont", "{d}/font.sf2"), "--soundfont is for --render"),
    (("--render", "{d}/x.wav", "--soundfont", ""), "--soundfont is an empty name"),
    (("--render", "{d}/x.wav", "--bars", "10000", "--bpm", "60"), "do not fit a WAV file"),
    (("--seed", "9223372036854775807", "--count", "2", "-o", "{d}/x.mid"), "give --seed 9223372036854775806 or less"),
])
def test_outputs_that_cannot_all_be_written_exit_2_before_generating(
        tmp_path: Path, tiny_model_dir: Path, argv: tuple[str, ...], message: str) -> None:
    (tmp_path / "set-2.mid").mkdir()
    result = generate("--model", str(tiny_model_dir), "--bars", "1",
                      *(arg.format(d=tmp_path) for arg in argv))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "generated" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set-2.mid"]  # nothing written


@pytest.mark.parametrize("option", ["-o", "--plot", "--render"])
def test_a_file_named_without_a_suffix_that_holds_other_data_is_not_replaced(
        tmp_path: Path, tiny_model_dir: Path, option: str) -> None:
    """`-o notes` replaced a text file named notes, and `--plot /etc/passwd` (as root) the
    password file (helper-78): a name without a suffix is written over that format only."""
    if option == "--render" and not shutil.which("fluidsynth"):
        pytest.skip("fluidsynth is not installed")
    notes = tmp_path / "notes"
    notes.write_text("my notes\n")
    result = generate("--model", str(tiny_model_dir), "--bars", "1", option, str(notes))
    assert result.returncode == 2 and "which writing it would lose" in result.stderr
    assert notes.read_text() == "my notes\n" and "generated" not in result.stdout
    notes.write_bytes(b"")  # empty, or already of the format: written over
    assert generate("--model", str(tiny_model_dir), "--bars", "1", option, str(notes)).returncode == 0
    assert generate("--model", str(tiny_model_dir), "--bars", "1", option, str(notes)).returncode == 0
    assert notes.stat().st_size > 0


def test_a_written_name_with_control_characters_is_shown_escaped(tmp_path: Path, tiny_model_dir: Path) -> None:
    """`-o $'x\\e[2J.mid'` printed "wrote" with the escape raw, clearing the screen; a newline
    split the line (helper-78). The file keeps its name."""
    name = "x\x1b[2J\nb.mid"
    result = generate("--model", str(tiny_model_dir), "--bars", "1", "-o", str(tmp_path / name))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"wrote {tmp_path}/x\\x1b[2J\\nb.mid"
    assert (tmp_path / name).read_bytes()[:4] == b"MThd"


def test_names_of_any_legal_length_and_suffix_case_are_written(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A 255-byte WAV name (the render's helper file was 3 bytes longer, and failed after
    generating), upper-case suffixes, and a name without one."""
    names = ["y" * 251 + ".WAV", "take.MID", "take"]
    argv = ["-o", str(tmp_path / names[1]), "--plot", str(tmp_path / "roll.png")]
    if shutil.which("fluidsynth"):
        argv += ["--render", str(tmp_path / names[0])]
    result = generate("--model", str(tiny_model_dir), "--bars", "1", *argv)
    assert result.returncode == 0, result.stderr
    assert generate("--model", str(tiny_model_dir), "--bars", "1", "-o", str(tmp_path / names[2])).returncode == 0
    written = {p.name for p in tmp_path.iterdir()}
    assert written == {*names[1:], "roll.png"} | ({names[0]} if "--render" in argv else set())


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def _a_long_render_started(tmp_path: Path, tiny_model_dir: Path) -> subprocess.Popen[str]:
    """`generate --render tmp_path/take.wav` of 10 minutes of music, once FluidSynth runs."""
    import time

    process = subprocess.Popen([sys.executable, "-m", "emolive.cli", "generate", "--model",
                                str(tiny_model_dir), "--bars", "200", "--bpm", "20",
                                "--render", str(tmp_path / "take.wav")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not [p for p in _processes_mentioning(str(tmp_path)) if p != process.pid]:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError("no render started")
        time.sleep(0.05)
    return process


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not Path("/proc/self").is_dir(),
                    reason="needs fluidsynth and /proc")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGUSR2"])
def test_termination_during_a_render_leaves_nothing_behind(tmp_path: Path, tiny_model_dir: Path,
                                                           name: str) -> None:
    """SIGTERM to emolive alone (a task manager's kill), or SIGHUP (a closed terminal), while
    FluidSynth renders: status 128 + N, no hidden folder with a partial WAV, no FluidSynth left
    rendering, the WAV already there kept."""
    import signal
    import time

    (tmp_path / "take.wav").write_bytes(b"the take before")
    process = _a_long_render_started(tmp_path, tiny_model_dir)
    try:
        time.sleep(0.3)  # FluidSynth is writing its file
        process.send_signal(getattr(signal, name))
        _out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 128 + getattr(signal, name), err
    assert "Traceback" not in err
    time.sleep(0.2)
    assert [p for p in _processes_mentioning(str(tmp_path))] == []  # FluidSynth stopped too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.wav"]
    assert (tmp_path / "take.wav").read_bytes() == b"the take before"


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not sys.platform.startswith("linux"),
                    reason="needs fluidsynth and Linux's parent-death signal")
def test_fluidsynth_dies_with_an_emolive_killed_outright(tmp_path: Path, tiny_model_dir: Path) -> None:
    """SIGKILL (the out-of-memory killer) can run no handler: FluidSynth went on rendering into
    a hidden folder, orphaned, to 337 MB (helper-84). The kernel now kills it with its parent."""
    import signal
    import time

    process = _a_long_render_started(tmp_path, tiny_model_dir)
    try:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    finally:
        process.kill()
    deadline = time.monotonic() + 5
    while _processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_mentioning(str(tmp_path)) == []


def test_generate_writes_every_file_when_its_reader_went_away(tmp_path: Path, tiny_model_dir: Path) -> None:
    result = with_stdout_closed("generate", "--model", str(tiny_model_dir), "--bars", "1", "--count", "3",
                                 "-o", str(tmp_path / "take.mid"))
    assert result.returncode == 0 and result.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take-1.mid", "take-2.mid", "take-3.mid"]


def test_generate_to_stdout_keeps_its_messages_off_the_music(tiny_model_dir: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model", str(tiny_model_dir),
                             "--bars", "1", "-o", "/dev/stdout"], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout[:4] == b"MThd"
    assert b"generated 1 bar of" in result.stderr


def test_generate_to_stdout_appended_to_a_file_keeps_what_the_file_held(tmp_path: Path,
                                                                         tiny_model_dir: Path) -> None:
    takes = tmp_path / "takes.bin"
    takes.write_bytes(b"an earlier take")
    with open(takes, "ab") as appending:  # the shell's `>> takes.bin`
        result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model",
                                 str(tiny_model_dir), "--bars", "1", "-o", "/dev/stdout"],
                                stdout=appending, stderr=subprocess.PIPE, timeout=120)
    assert result.returncode == 0, result.stderr
    assert takes.read_bytes().startswith(b"an earlier takeMThd")


def test_generate_to_a_stdout_open_for_reading_is_refused_before_generating(tmp_path: Path,
                                                                            tiny_model_dir: Path) -> None:
    takes = tmp_path / "takes.bin"
    takes.write_bytes(b"an earlier take")
    with open(takes, "rb") as reading:  # the shell's `1< takes.bin`
        result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model",
                                 str(tiny_model_dir), "--bars", "1", "-o", "/dev/stdout"],
                                stdout=reading, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 2
    assert "open for reading only" in result.stderr and "Traceback" not in result.stderr
    assert takes.read_bytes() == b"an earlier take"


def test_an_output_that_is_a_file_the_command_reads_exits_2_before_generating(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    font = tmp_path / "font"  # no suffix, so that the name passes for a WAV's
    font.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")  # a soundfont's header, enough for the checks
    (tmp_path / "step").symlink_to(model / "decoder_step.onnx")  # a name that passes for MIDI's
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    for argv, message in (
            (("-o", str(tmp_path / "step")), "is the model's decoder_step.onnx"),
            (("-o", str(model / "decoder_step.onnx")), "MIDI files are written as .mid"),
            (("--render", str(font), "--soundfont", str(font)), "is the soundfont, which this command reads")):
        result = generate("--model", str(model), "--bars", "1", *argv)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "generated" not in result.stdout
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    assert font.read_bytes() == b"RIFF\x04\x00\x00\x00sfbk"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_count_with_a_stream_as_output_exits_2_before_generating(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Numbered names beside a pipe (or /dev/stdout-1 in /dev) were written as new files."""
    pipe = tmp_path / "to-the-synth.mid"
    os.mkfifo(pipe)
    result = generate("--model", str(tiny_model_dir), "--bars", "1", "--count", "2", "-o", str(pipe))
    assert result.returncode == 2, result.stderr
    assert "is a stream" in result.stderr and "generated" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["to-the-synth.mid"]


def test_the_seed_of_each_piece_is_said_and_makes_it_again(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Without --seed a take could not be made again: its random seed was shown nowhere."""
    result = generate("--model", str(tiny_model_dir), "--bars", "2", "--count", "2", "-o", str(tmp_path / "t.mid"))
    assert result.returncode == 0, result.stderr
    seeds = [int(line.rsplit("seed ", 1)[1].split(",")[0]) for line in result.stdout.splitlines()
             if line.startswith("generated")]
    assert len(seeds) == 2 and seeds[1] == seeds[0] + 1 and seeds[1] <= 2**63 - 1
    again = generate("--model", str(tiny_model_dir), "--bars", "2", "--seed", str(seeds[1]), "-o", str(tmp_path / "a.mid"))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "t-2.mid").read_bytes()


def test_a_dash_writes_to_standard_output(tmp_path: Path, tiny_model_dir: Path) -> None:
    """`-o -` wrote a file named "-" instead of standard output."""
    result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model", str(tiny_model_dir),
                             "--bars", "1", "-o", "-"], capture_output=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout[:4] == b"MThd" and b"generated 1 bar of" in result.stderr
    assert not (tmp_path / "-").exists()


def test_a_dash_with_standard_output_closed_exits_2_before_generating(tmp_path: Path, tiny_model_dir: Path) -> None:
    """`-o - >&-`: the command opened /dev/null in the closed descriptor's place, wrote the
    music there and said "wrote /dev/stdout" (helper-59)."""
    result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model", str(tiny_model_dir),
                             "--bars", "1", "-o", "-"], stdout=None, stderr=subprocess.PIPE, text=True,
                            timeout=120, cwd=tmp_path, preexec_fn=lambda: os.close(1))
    assert result.returncode == 2, result.stderr
    assert "-o -: standard output is closed" in result.stderr and "generated" not in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (scripts/setup.sh)")
def test_music_on_both_standard_streams_gets_no_progress_lines_in_it(tiny_model_dir: Path) -> None:
    """`-o /dev/stdout --render /dev/stderr`: the progress lines went into the WAV."""
    result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model", str(tiny_model_dir),
                             "--bars", "1", "-o", "/dev/stdout", "--render", "/dev/stderr"],
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr[:300]
    assert result.stdout[:4] == b"MThd" and result.stderr[:4] == b"RIFF"
    assert b"generated" not in result.stdout + result.stderr


def test_a_plot_format_matplotlib_cannot_write_here_exits_2_before_generating(tmp_path: Path,
                                                                              tiny_model_dir: Path) -> None:
    """.pgf needs LaTeX: the MIDI was written, then the plot failed with a traceback."""
    pytest.importorskip("matplotlib")
    if any(shutil.which(tex) for tex in ("xelatex", "pdflatex", "lualatex")):
        pytest.skip("LaTeX is installed: matplotlib can write .pgf here")
    result = generate("--model", str(tiny_model_dir), "--bars", "1", "-o", str(tmp_path / "x.mid"),
                      "--plot", str(tmp_path / "x.pgf"))
    assert result.returncode == 2
    assert "matplotlib cannot write .pgf files here" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", [["-m", "emolive", "generate", "--bars", "1", "-o", "x.mid"],
                                     ["-m", "emolive.training.evaluate", "--help"],
                                     ["emo", "generate", "--bars", "1", "-o", "x.mid"]])
def test_the_command_leaves_no_onnx_runtime_device_id_in_home(tmp_path: Path, tiny_model_dir: Path,
                                                              command: list[str]) -> None:
    """ONNX Runtime 1.32 wrote a device id and a database under ~/.cache/Microsoft on every
    machine that ran emolive (helper-86), `python -m emolive.training.evaluate` imported it
    before the command could say no (helper-87), and a link to the script under another name
    was not taken for the command (helper-88); a user's own setting stands."""
    if "emolive.training.evaluate" in command:
        pytest.importorskip("torch")
    home = tmp_path / "home"
    home.mkdir()
    env = {name: value for name, value in os.environ.items() if name != "ORT_DISABLE_TELEMETRY"}
    argv = command + (["--model", str(tiny_model_dir)] if "generate" in command else [])
    if argv[0] == "emo":  # the console script, linked under another name
        script = Path(sys.executable).parent / "emolive"
        if not script.is_file():
            pytest.skip("no emolive console script beside this Python")
        (tmp_path / "emo").symlink_to(script)
        argv = [str(tmp_path / "emo"), *argv[1:]]
    else:
        argv = [sys.executable, *argv]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                            env=dict(env, HOME=str(home)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (home / ".cache" / "Microsoft").exists()


def test_an_unknown_matplotlib_backend_in_the_environment_is_named(tmp_path: Path, tiny_model_dir: Path) -> None:
    """MPLBACKEND=nonexistent gave matplotlib's "Key backend: 'nonexistent' is not a valid
    value ..." without naming the variable (helper-85)."""
    pytest.importorskip("matplotlib")
    result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model", str(tiny_model_dir),
                             "--bars", "1", "--plot", str(tmp_path / "x.png")], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, MPLBACKEND="nonexistent"))
    assert result.returncode == 2
    assert "MPLBACKEND='nonexistent' names no matplotlib backend" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("setting", [("HOME", "/proc/no-such-home"), ("MPLCONFIGDIR", "/proc/1")])
def test_a_home_without_a_config_folder_gets_no_matplotlib_notice(tmp_path: Path, tiny_model_dir: Path,
                                                                  setting: tuple[str, str]) -> None:
    """A service's HOME where no folder can be made: matplotlib's two lines of advice about
    MPLCONFIGDIR came with every --plot (helper-59); with MPLCONFIGDIR a folder it cannot write
    (read-only even for root: /proc/1), a third (helper-85)."""
    pytest.importorskip("matplotlib")
    env = {name: value for name, value in os.environ.items()
           if name not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env[setting[0]] = setting[1]  # no folder can be made under /proc, even as root
    result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model", str(tiny_model_dir),
                             "--bars", "1", "-o", str(tmp_path / "x.mid"), "--plot", str(tmp_path / "x.png")],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.png").stat().st_size > 0
    assert "MPLCONFIGDIR" not in result.stdout + result.stderr and "mkdir" not in result.stderr, result.stderr
    assert "writable" not in result.stderr, result.stderr


def test_a_soundfont_that_is_a_folder_is_called_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth not installed (scripts/setup.sh)")
    result = generate("--model", str(tiny_model_dir), "--bars", "1", "--render", str(tmp_path / "x.wav"),
                      "--soundfont", str(tmp_path))
    assert result.returncode == 2
    assert "is a folder; give a soundfont file" in result.stderr


def test_an_output_under_a_file_names_the_file(tmp_path: Path, tiny_model_dir: Path) -> None:
    """`-o a.mid/x.mid` with a.mid a file said "folder 'a.mid' does not exist"."""
    (tmp_path / "a.mid").write_bytes(b"a take")
    result = generate("--model", str(tiny_model_dir), "--bars", "1", "-o", str(tmp_path / "a.mid" / "x.mid"))
    assert result.returncode == 2
    assert f"'{tmp_path / 'a.mid'}' is a file, not a folder" in result.stderr and "Traceback" not in result.stderr


def test_a_model_folder_that_cannot_be_listed_still_guards_the_files_its_card_names(
        tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder one may enter but not list (mode 311 for another user) ended generate with a
    bare "[Errno 13] Permission denied": its files are now those its card names."""
    import argparse
    import pathlib

    from emolive import cli_generate

    real_iterdir = pathlib.Path.iterdir

    def iterdir(self: pathlib.Path):
        if self == tiny_model_dir:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(pathlib.Path, "iterdir", iterdir)
    args = argparse.Namespace(model=str(tiny_model_dir), render=None, soundfont=None)
    read = set(cli_generate._files_read(args).values())
    assert {"the model's model_card.json", "the model's decoder_step.onnx", "the model's encoder.onnx"} <= read


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_progress_lines_into_a_full_disk_do_not_stop_the_files(tmp_path: Path) -> None:
    """Only a reader going away was let pass: stdout on a full disk stopped the command before
    any file was written."""
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--bars", "2", "-o",
                                 str(tmp_path / "a.mid")], stdout=full, stderr=subprocess.PIPE, text=True,
                                timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.mid").stat().st_size > 0



def test_a_progress_line_the_terminal_cannot_encode_is_escaped_not_fatal(tmp_path: Path) -> None:
    """'wrote 日本.mid' under a cp1252 stdout raised UnicodeEncodeError after the MIDI file:
    the plot was never drawn, exit 2."""
    pytest.importorskip("matplotlib")
    env = dict(os.environ, PYTHONIOENCODING="cp1252")
    result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--bars", "1", "-o",
                             str(tmp_path / "日本.mid"), "--plot", str(tmp_path / "b.png")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "日本.mid").is_file() and (tmp_path / "b.png").is_file()
    assert "\\u65e5\\u672c.mid" in result.stdout


def test_the_summary_names_an_alias_as_given(tmp_path: Path, tiny_model_dir: Path) -> None:
    """`-e excited` was summed up as "of happy", `--morph-to angry` as "-> tense" (helper-56)."""
    result = generate("--model", str(tiny_model_dir), "--bars", "1", "-e", "Excited", "--morph-to", "angry",
                      "-o", str(tmp_path / "a.mid"))
    assert result.returncode == 0, result.stderr
    assert "generated 1 bar of Excited (happy) -> angry (tense):" in result.stdout
    card = json.loads((tiny_model_dir / "model_card.json").read_text())["sampling"]["temperature"]
    assert result.stdout.split("\n")[0].endswith(f", temperature {card:g}")  # the card's: what made the notes
    hotter = generate("--model", str(tiny_model_dir), "--bars", "1", "--temperature", "1.25", "-o", str(tmp_path / "c.mid"))
    assert hotter.stdout.split("\n")[0].endswith(", temperature 1.25")
    blend = generate("--model", str(tiny_model_dir), "--bars", "1", "-e", "happy:0.5,calm:0.5", "--morph-to", "Q3",
                     "-o", str(tmp_path / "b.mid"))
    assert "generated 1 bar of happy:0.50,calm:0.50 -> Q3 (sad):" in blend.stdout, blend.stdout


@pytest.mark.parametrize("argv", [("-o", ".mid"), ("-o", ".mid", "--count", "2"), ("--plot", ".png", "--count", "2"),
                                  ("-o", "..mid", "--count", "2")])
def test_a_name_that_is_only_a_suffix_exits_2_before_generating(tmp_path: Path, tiny_model_dir: Path,
                                                                argv: tuple[str, ...]) -> None:
    """`-o .mid --count 2` passed the checks, generated every piece, and then failed on the
    name '.mid-1'; `-o .mid` wrote a hidden file; `--plot .png --count 2` wrote '.png-1'
    (helper-73)."""
    result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model", str(tiny_model_dir),
                             "--bars", "1", *argv], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"{argv[1]!r} is only a suffix; give a name before it, such as 'take.{argv[1].lstrip('.')}'" in result.stderr
    assert "generated" not in result.stdout + result.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals are POSIX")
def test_a_dash_with_standard_output_on_a_terminal_exits_2_before_generating(tmp_path: Path,
                                                                             tiny_model_dir: Path) -> None:
    """`-o -` at a terminal wrote the MIDI file's bytes onto it, status 0 (helper-73)."""
    import pty

    leader, follower = pty.openpty()
    try:
        result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model", str(tiny_model_dir),
                                 "--bars", "1", "-o", "-"], stdout=follower, stderr=subprocess.PIPE,
                                text=True, timeout=120, cwd=tmp_path)
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 2, result.stderr
    assert "-o -: standard output is a terminal" in result.stderr and "generated" not in result.stderr


@pytest.mark.parametrize("argv", [("-o", "take.mid"), ("--plot", "pr.png"), ("-o", "take.mid", "--count", "2")])
def test_a_link_to_a_file_of_another_format_exits_2_before_generating(tmp_path: Path, tiny_model_dir: Path,
                                                                      argv: tuple[str, ...]) -> None:
    """--plot through a link pr.png -> song.wav wrote a PNG into the WAV; a numbered name that
    was such a link (take-1.mid with --count 2) was refused only after generating (helper-75)."""
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF....WAVE")
    name = argv[1] if "--count" not in argv else "take-1.mid"
    (tmp_path / name).symlink_to(song)
    result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--model", str(tiny_model_dir),
                             "--bars", "1", *argv], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"{name!r} is a link to {str(song)!r}, a file named for another" in result.stderr
    assert "generated" not in result.stdout + result.stderr and song.read_bytes() == b"RIFF....WAVE"
