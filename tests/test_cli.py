"""The `emolive` command line: validation, messages and exit statuses (no engine or port needed)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emolive._startup import TORCH_HINT

from emolive import cli
from tests.process_lines import with_stdout_closed


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emolive.cli", *argv], capture_output=True, text=True,
                          timeout=60, env=env)


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--help")
    assert code == 0 and "--port" in out and "--virtual" in out and "emolive generate" in out
    code, out, _ = run_main(capsys, "generate", "--help")
    assert code == 0 and "--render" in out and "--bars" in out
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and out.startswith("emolive ")


def test_list_emotions_shows_names_with_quadrants(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--list-emotions")
    assert code == 0
    lines = out.splitlines()
    assert any(line.strip().startswith("Q1") and "happy" in line and "valence +" in line for line in lines)
    assert any(line.strip().startswith("Q3") and "sad" in line and "melancholic" in line for line in lines)
    assert "happy:0.7,calm:0.3" in out


@pytest.mark.parametrize("argv, message", [
    (["--bpm", "500"], "--bpm must be from 20 to 400, got 500"),
    (["--bpm", "fast"], "--bpm must be a number from 20 to 400, got 'fast'"),
    (["--bpm", "nan"], "--bpm must be from 20 to 400"),
    (["--channel", "0"], "--channel must be from 1 to 16, got 0"),
    (["--channel", "17"], "--channel must be from 1 to 16, got 17"),
    (["--program", "0"], "--program must be from 1 to 128"),
    (["--program", "129"], "--program must be from 1 to 128"),
    (["--temperature", "0"], "--temperature must be from 0.05 to 5"),
    (["--seed", "-1"], "--seed must be from 0"),
    (["--valence", "1.5"], "valence must be from -1 to 1"),
    (["--glide-bars", "-1"], "--glide-bars must be from 0"),
    (["--valence-cc", "128"], "--valence-cc must be from 0 to 127"),
    (["--valence-cc", "7", "--arousal-cc", "7", "--virtual"], "valence and arousal need different controllers"),
    (["--emotion", "joyous"], "unknown emotion 'joyous'; known emotions: Q1, Q2, Q3, Q4, happy"),
    (["--emotion", "happy:lots"], "weight 'lots' of 'happy' is not a number"),
    (["--emotion", "happy:0"], "must not all be zero"),
    (["--morph-to", "blue"], "unknown emotion 'blue'"),
    (["--emotion", "sad", "--valence", "0.5"], "either --emotion or --valence/--arousal"),
    (["--scale", "minor"], "--scale needs --key"),
    (["--key", "H"], "unknown key 'H'; write a note name: C, C#, Db"),
    (["--key", "C", "--scale", "klezmer"], "unknown scale 'klezmer'; known scales:"),
    (["generate", "--key", "Q", "-o", "x.mid"], "unknown key 'Q'"),
    (["--port", "a", "--virtual"], "not allowed with argument"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["generate", "--bars", "0", "-o", "x.mid"], "--bars must be from 1 to 10000, got 0"),
    (["generate", "--bars", "4"], "nothing to write: give -o FILE.mid"),
    (["generate", "-o", "/no/such/folder/x.mid"], "folder '/no/such/folder' does not exist"),
    (["generate", "--plot", "/tmp"], "'/tmp' is a folder"),
    (["generate", "--bars", "2", "--morph-to", "sad", "--morph-bars", "4", "-o", "x.mid"],
     "--morph-bars (4) is longer than --bars (2)"),
    (["generate", "--morph-bars", "4", "-o", "x.mid"], "--morph-bars needs --morph-to"),
    (["--morph-bars", "4", "--virtual"], "--morph-bars needs --morph-to"),
])
def test_bad_input_exits_2_with_what_is_allowed(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                  message: str) -> None:
    code, out, err = run_main(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out


def test_a_point_of_the_circumplex_starts_at_its_quadrant() -> None:
    """--valence is the first coordinate, --arousal the second: + and - is calm (Q4)."""
    from emolive.cli_options import live_parser, start_emotion
    from emolive.emotions import parse_emotion

    parser = live_parser()
    for argv, emotion in [(["--valence", "1", "--arousal", "-1"], "calm"),
                          (["--valence", "-1", "--arousal", "1"], "tense"),
                          (["--valence", "1"], "happy:1,calm:1")]:  # arousal 0: between Q1 and Q4
        assert start_emotion(parser.parse_args(argv), parser) == pytest.approx(parse_emotion(emotion)), argv


def test_music_options_default_to_channel_1_at_120_bpm() -> None:
    from emolive.cli_options import generate_parser, live_parser

    for parser in (live_parser(), generate_parser()):
        args = parser.parse_args([])
        assert (args.channel, args.bpm) == (1, 120.0)


def test_no_output_chosen_says_how_to_choose(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMOLIVE_PORT", raising=False)
    code, _, err = run_main(capsys, "--emotion", "happy")
    assert code == 2
    assert "--port NAME, --virtual [NAME], or set EMOLIVE_PORT" in err


def test_the_linux_hint_without_a_midi_system_offers_virtual_ports_only_once_it_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """It said "or use --virtual", which fails the same way without JACK or ALSA (helper-64)."""
    from emolive import ports

    monkeypatch.setattr(sys, "platform", "linux")
    assert ports.platform_hint(midi_system_runs=False).endswith(
        "(snd-seq); then --virtual opens a port other programs connect to")
    assert "or use --virtual" in ports.platform_hint(midi_system_runs=True)


@pytest.mark.parametrize("platform, hint", [("win32", "loopMIDI"), ("darwin", "IAC Driver")])
def test_platform_hints(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                        platform: str, hint: str) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.delenv("EMOLIVE_PORT", raising=False)
    code, _, err = run_main(capsys, "--virtual") if platform == "win32" else run_main(capsys)
    assert code == 2
    assert hint in err
    if platform == "win32":
        assert "no virtual MIDI ports" in err


def test_training_commands_without_torch_name_the_install(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    for command in ("train", "export", "evaluate"):
        code, _, err = run_main(capsys, command, "--help")
        assert code == 2
        assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in err
        assert "emolive[train]" in err


@pytest.mark.parametrize("module", ["emolive.training.train", "emolive.training.evaluate"])
def test_python_m_a_training_command_without_torch_says_how_to_get_it(module: str) -> None:
    """`python -m emolive.training.train` without torch was a traceback (helper-64). torch is
    hidden from the child the way it looks for it; sys.argv is what `python -m` makes it."""
    code = ("import importlib.util, runpy, sys; real = importlib.util.find_spec; "
            "importlib.util.find_spec = lambda name, *a: None if name == 'torch' else real(name, *a); "
            f"sys.argv = ['-m', '--help']; sys.orig_argv = [sys.executable, '-m', '{module}', '--help']; "
            f"runpy.run_module('{module}', run_name='__main__', alter_sys=True)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"python -m {module}: error: {TORCH_HINT}\n"
    assert "--index-url https://download.pytorch.org/whl/cpu" in TORCH_HINT


def test_a_system_library_the_native_module_lacks_is_named_with_what_to_install(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A wheel moved to a machine without RtMidi said only "librtmidi.so.6: cannot open shared
    object file" (helper-64: the loader's own words, raised where the module is imported)."""
    from emolive import cli

    def missing(_args: list[str], name: str = "_core") -> int:  # as the loader names it, with its file
        raise ImportError("librtmidi.so.6: cannot open shared object file: No such file or directory", name=name,
                          path=f"/site-packages/{'emolive' if name == '_core' else name}/_core.cpython-311.so")

    monkeypatch.setattr(cli, "_dispatch", missing)
    assert cli.main(["generate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emolive: error: emolive's native module cannot load: librtmidi.so.6: cannot open")
    assert "apt-get install librtmidi6 libjack-jackd2-0" in err and err.count("\n") == 1
    # macOS's loader says it its own way (helper-67)
    monkeypatch.setattr(cli, "_dispatch", lambda args: (_ for _ in ()).throw(ImportError(
        "dlopen(.../_core.so): Library not loaded: /opt/homebrew/opt/rtmidi/lib/librtmidi.6.dylib", name="_core",
        path="/site-packages/emolive/_core.cpython-311-darwin.so")))
    assert cli.main(["generate"]) == 2 and "brew install rtmidi" in capsys.readouterr().err
    # Another package's missing library is not blamed on emolive's module (helper-66: torch's CUDA)
    monkeypatch.setattr(cli, "_dispatch", lambda args: missing(args, name="torch"))
    assert cli.main(["train"]) == 2
    assert "librtmidi6" not in capsys.readouterr().err


def test_ctrl_c_while_an_error_is_reported_exits_130_quietly(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The error path imports modules to choose a status: a Ctrl-C there was a traceback."""
    from emolive import cli

    def fail(_args: list[str]) -> int:
        raise ValueError("a user's mistake")

    def interrupted(_exc: Exception) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_dispatch", fail)
    monkeypatch.setattr(cli, "_status_of", interrupted)
    assert cli.main(["--emotion", "happy"]) == 130
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the training commands need torch")
def test_a_name_too_long_for_the_file_system_is_a_users_mistake(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    """`train --data` with a 300-byte name exited 1 with '[Errno 36] File name too long'
    (helper-78): the name is the user's to shorten, exit 2."""
    long_name = str(tmp_path / ("d" * 300))
    code, _out, err = run_main(capsys, "train", "--data", long_name, "--out", str(tmp_path / "run"))
    assert code == 2
    assert err.startswith(f"emolive: error: {long_name[:-1]!r}"[:-1])  # the name, or a file in it
    assert err.endswith("': the name is too long for the file system\n") and err.count("\n") == 1


def test_subprocess_exit_statuses_and_no_traceback() -> None:
    bad = run_process("--channel", "99")
    assert bad.returncode == 2
    assert "--channel must be from 1 to 16, got 99" in bad.stderr
    assert "Traceback" not in bad.stderr
    unknown = run_process("generate", "--emotion", "ecstatic", "-o", "x.mid")
    assert unknown.returncode == 2 and "unknown emotion 'ecstatic'" in unknown.stderr
    listing = run_process("--list-emotions")
    assert listing.returncode == 0 and "Q4" in listing.stdout and "calm" in listing.stdout
    as_module = subprocess.run([sys.executable, "-m", "emolive", "--bpm", "0"], capture_output=True, text=True,
                               timeout=60)
    assert as_module.returncode == 2 and "--bpm must be from 20 to 400" in as_module.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="no address-space limit (ulimit -v) on Windows")
def test_memory_refused_by_an_address_space_limit_is_said_so(tmp_path: Path) -> None:
    """Under `ulimit -v` 100 MB numpy's import failed with a page of install advice, status 2;
    lower, the errors blamed ONNX Runtime's library or the model (helper-59)."""
    import resource

    def limit_address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (100 * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))

    result = subprocess.run([sys.executable, "-m", "emolive.cli", "generate", "--bars", "1", "-o",
                             str(tmp_path / "x.mid")], capture_output=True, text=True, timeout=120,
                            preexec_fn=limit_address_space)
    assert result.returncode == 1, result.stderr
    assert "out of memory under the address-space limit of 100 MB (ulimit -v)" in result.stderr
    assert "Traceback" not in result.stderr and "IMPORTANT" not in result.stderr
    assert not (tmp_path / "x.mid").exists()


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("emolive")
    assert script.exists(), "pip install -e . makes the `emolive` console script"
    result = subprocess.run([str(script), "--bpm", "1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--bpm must be from 20 to 400" in result.stderr


@pytest.mark.training
@pytest.mark.parametrize("command", ["train", "export", "evaluate", "calibrate", "recover"])
def test_training_commands_reach_the_training_package(command: str) -> None:
    pytest.importorskip("torch")
    result = run_process(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: emolive {command}")


def test_the_command_never_imports_torch() -> None:
    code = ("import sys, emolive.cli, emolive.live, emolive.cli_generate, emolive.files, emolive.sync, "
            "emolive.midi_control, emolive.ports, emolive.terminal; "
            "emolive.cli.main(['--list-emotions']); assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("argv", [["--list-emotions"], ["--version"], ["--help"], ["generate", "--help"]])
def test_a_listing_into_a_full_disk_says_it_could_not_write_standard_output(argv: list[str]) -> None:
    """`emolive --list-emotions > /dev/full` said only "[Errno 28] No space left on device"
    (helper-59); `--help > /dev/full` exited 0, saying nothing (argparse passes over the write;
    helper-85)."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "emolive", *argv], stdout=full, stderr=subprocess.PIPE,
                                text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == "emolive: error: could not write to standard output: No space left on device\n"


def test_a_reader_that_went_away_is_no_error() -> None:
    result = with_stdout_closed("--list-emotions")
    assert result.returncode == 141  # as a tool that SIGPIPE ended
    assert result.stderr == ""



def test_no_midi_system_says_how_to_get_one_and_not_to_use_virtual(tmp_path: Path) -> None:
    pytest.importorskip("emolive.engine", reason="the engine is not built")
    from emolive import _core

    if not _core.rtmidi_available():
        pytest.skip("built without RtMidi")
    env = dict(os.environ, EMOLIVE_MIDI_API="jack", JACK_NO_START_SERVER="1",
               JACK_DEFAULT_SERVER=f"emolive-nobody-{os.getpid()}")
    result = run_process("--virtual", "nowhere", "--no-keys", env=env)
    assert result.returncode == 2
    assert "no MIDI backend could be opened" in result.stderr and "start JACK" in result.stderr
    assert "--virtual" not in result.stderr  # a virtual port needs a MIDI system too


def test_a_bad_onnxruntime_library_is_named_without_model_advice() -> None:
    pytest.importorskip("emolive.engine", reason="the engine is not built")
    env = dict(os.environ, EMOLIVE_ONNXRUNTIME_LIB="/nonexistent/libonnxruntime.so")
    result = run_process("generate", "--bars", "1", "-o", os.devnull, env=env)
    assert result.returncode == 2
    assert "EMOLIVE_ONNXRUNTIME_LIB" in result.stderr and "--model" not in result.stderr


def test_music_into_a_pipe_whose_reader_went_away_is_no_error() -> None:
    """`emolive generate -o - | true`: the write into the gone reader was wrapped as "could not
    write '/dev/stdout': Broken pipe", exit 1, where a tool exits 141 and says nothing."""
    result = with_stdout_closed("generate", "--bars", "2", "-o", "-")
    assert result.returncode == 141, result.stderr
    assert "error" not in result.stderr  # the progress line only (on stderr: stdout is the music)
