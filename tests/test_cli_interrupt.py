"""Ctrl-C: while the `emolive` command is still importing (exit status 130, nothing on
stderr), and during a long offline generation (it stops within a moment, not at the end).

The interrupt is sent at a fixed point, not after a delay: a ``sitecustomize`` module (found
first through PYTHONPATH) puts an import hook in front that, when the command's process first
looks for ``emolive.cli`` (after the package's ``__init__`` ran, before ``main()``), sends SIGINT
to its own process and lets Python handle it right there, inside the import.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emolive._startup import INTERRUPTED_STATUS, is_the_command

SITECUSTOMIZE = r'''
import os, signal, sys

class InterruptAt:
    """Sends SIGINT to this process when the module EMOLIVE_TEST_SIGINT_AT is first looked for."""

    def find_spec(self, name, path=None, target=None):
        if name == os.environ["EMOLIVE_TEST_SIGINT_AT"]:
            sys.meta_path.remove(self)
            with open(os.environ["EMOLIVE_TEST_SIGINT_MARK"], "w") as mark:
                mark.write(name)
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # Python runs signal handlers at loop back-edges: here
                pass
        return None

sys.meta_path.insert(0, InterruptAt())
'''


def _default_sigint() -> None:
    """In the child before exec: SIGINT at its default, as in a terminal. A runner that starts
    the tests in the background (no job control) passes SIGINT down *ignored*, and Python then
    keeps ignoring it (the command acts on it all the same: the test below)."""
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ignored_sigint() -> None:
    """In the child before exec: SIGINT ignored, as a background job of a script starts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(command: list[str], preexec=_default_sigint, **kwargs) -> subprocess.CompletedProcess[str]:
    preexec = None if sys.platform.startswith("win") else preexec
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          preexec_fn=preexec, **kwargs)


def _console_script() -> Path | None:
    script = Path(sys.executable).parent / ("emolive.exe" if sys.platform.startswith("win") else "emolive")
    return script if script.exists() else None


def _run_interrupted(tmp_path: Path, command: list[str], module: str,
                     preexec=_default_sigint) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    mark = tmp_path / "interrupted"
    paths = [str(tmp_path)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths),
               EMOLIVE_TEST_SIGINT_AT=module, EMOLIVE_TEST_SIGINT_MARK=str(mark))
    result = _run(command, preexec=preexec, env=env)
    assert mark.read_text() == module, "the interrupt was not sent: the hook never saw the module"
    return result


@pytest.mark.skipif(sys.platform.startswith("win"), reason="sends SIGINT to itself")
@pytest.mark.parametrize("module", ["emolive.training.train", "emolive.training.export"])
def test_ctrl_c_while_a_training_command_imports_exits_130_quietly(tmp_path: Path, module: str) -> None:
    """`python -m emolive.training.train` interrupted while it imported torch printed a
    KeyboardInterrupt traceback (the `emolive train` route did not)."""
    pytest.importorskip("torch")
    result = _run_interrupted(tmp_path, [sys.executable, "-m", module, "--help"], "torch")
    assert result.returncode == INTERRUPTED_STATUS, (result.returncode, result.stderr)
    assert result.stderr == "" and result.stdout == ""


@pytest.mark.skipif(sys.platform.startswith("win"), reason="sends SIGINT to itself")
@pytest.mark.parametrize("route", ["console script", "python -m emolive"])
def test_ctrl_c_during_start_up_imports_exits_130_quietly(tmp_path: Path, route: str) -> None:
    if route == "console script":
        script = _console_script()
        if script is None:
            pytest.skip("the emolive console script is not installed next to this Python")
        command = [str(script), "--version"]
    else:
        command = [sys.executable, "-m", "emolive", "--version"]
    result = _run_interrupted(tmp_path, command, "emolive.cli")
    assert result.returncode == INTERRUPTED_STATUS, (result.returncode, result.stderr)
    assert result.stderr == ""
    assert result.stdout == ""  # it stopped before main(): no version printed


@pytest.mark.skipif(sys.platform.startswith("win"), reason="sends SIGINT to itself")
def test_a_sigint_inherited_ignored_still_stops_the_starting_command(tmp_path: Path) -> None:
    """A background job of a script starts with SIGINT ignored: the command caught it only once
    live play began, so a `kill -INT` in its first 0.15 s was lost and it played on for good."""
    command = [sys.executable, "-m", "emolive", "--version"]
    result = _run_interrupted(tmp_path, command, "emolive.cli", preexec=_ignored_sigint)
    assert result.returncode == INTERRUPTED_STATUS, (result.returncode, result.stderr)
    assert result.stdout == ""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh interpreter."""
    return _run([sys.executable, "-c", code])


def test_importing_emolive_leaves_sigint_alone() -> None:
    code = ("import signal, emolive\n"
            "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
            "from emolive.cli import main\n"
            "assert main(['--version']) == 0\n"
            "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n")
    result = _python(code)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(sys.platform.startswith("win"), reason="sends SIGINT to itself")
def test_ctrl_c_once_main_runs_is_a_keyboard_interrupt_again() -> None:
    # After start-up, main() and live play see KeyboardInterrupt as before (not SystemExit).
    code = ("import os, signal, sys\n"
            "sys.argv[0] = 'emolive'\n"  # as the console script's process
            "import emolive\n"
            "assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler\n"
            "from emolive._startup import end_of_startup\n"
            "end_of_startup()\n"
            "try:\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    for _ in range(1000): pass\n"
            "except KeyboardInterrupt:\n"
            "    sys.exit(7)\n")
    result = _python(code)
    assert result.returncode == 7, result.stderr


@pytest.mark.parametrize(("argv", "orig_argv", "expected"), [
    (["/venv/bin/emolive", "--port", "x"], ["/venv/bin/python", "/venv/bin/emolive", "--port", "x"], True),
    (["C:\\venv\\Scripts\\emolive.exe"], ["python.exe", "C:\\venv\\Scripts\\emolive.exe"], True),
    (["-m"], ["python", "-m", "emolive", "--version"], True),
    (["-m"], ["python", "-X", "faulthandler", "-m", "emolive.cli"], True),
    (["-m"], ["python", "-memolive"], True),
    (["-m"], ["python", "-m", "emolive.training.train"], True),
    (["-m"], ["python", "-m", "emolive.training.data"], False),
    (["-m"], ["python", "-m", "pytest"], False),
    (["/usr/bin/pytest"], ["python", "/usr/bin/pytest"], False),
    (["-c"], ["python", "-c", "import emolive"], False),
    ([""], ["python"], False),
    ([], [], False),
])
def test_the_command_is_recognised(argv: list[str], orig_argv: list[str], expected: bool) -> None:
    assert is_the_command(argv, orig_argv) is expected


def test_status_is_that_of_a_shell_for_sigint() -> None:
    assert INTERRUPTED_STATUS == 128 + int(signal.SIGINT)


GENERATE_THEN_INTERRUPT = """
import os, signal, sys, threading, time
from emolive import Engine
engine = Engine(seed=1)  # the bundled model: about 0.5-3k bars/s here, so this takes > 30 s
threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
start = time.monotonic()
try:
    CALL
except KeyboardInterrupt:
    print(f"interrupted after {time.monotonic() - start:.2f} s", flush=True)
    assert len(engine.generate(1).tracks[0]) > 3  # the engine still works
    sys.exit(0)
print(f"finished after {time.monotonic() - start:.2f} s")
sys.exit(1)
"""


@pytest.mark.skipif(sys.platform.startswith("win"), reason="sends SIGINT to itself")
@pytest.mark.parametrize("call", ["engine.generate(100_000)", "engine.generate_many(10, 10_000)"])
def test_ctrl_c_stops_a_long_generation_at_once(call: str) -> None:
    pytest.importorskip("emolive.engine", reason="needs the engine")
    result = _python(GENERATE_THEN_INTERRUPT.replace("CALL", call))
    assert result.returncode == 0, (result.stdout, result.stderr)
    seconds = float(result.stdout.split("interrupted after ")[1].split()[0])
    assert seconds < 4.0, result.stdout  # SIGINT came at 1 s; before the fix, at the end (> 30 s)


@pytest.mark.skipif(sys.platform.startswith("win"), reason="sends SIGINT")
def test_ctrl_c_during_generate_exits_130_and_writes_nothing(tmp_path: Path) -> None:
    pytest.importorskip("emolive.engine", reason="needs the engine")
    process = subprocess.Popen([sys.executable, "-m", "emolive", "generate", "--bars", "10000", "--count", "10",
                                "-o", str(tmp_path / "long.mid")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    time.sleep(2.0)  # the model is loaded and generating
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == INTERRUPTED_STATUS, (out, err)
    assert time.monotonic() - sent < 3.0
    assert err == "" and list(tmp_path.iterdir()) == []


def _stop_signals_blocked() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask") or not Path("/proc/self/status").exists(),
                    reason="POSIX signal masks, and /proc to see the handlers")
@pytest.mark.parametrize("name,status", [("SIGINT", INTERRUPTED_STATUS), ("SIGTERM", 143)])
def test_stop_signals_blocked_by_the_parent_still_stop_the_command(tmp_path: Path, name: str, status: int) -> None:
    """A process started from a thread that blocked SIGINT and SIGTERM inherits the mask (exec
    keeps it): neither arrived, and only SIGKILL ended live play, with notes sounding (helper-85)."""
    pytest.importorskip("emolive.engine", reason="needs the engine")
    process = subprocess.Popen([sys.executable, "-m", "emolive", "generate", "--bars", "10000", "--count", "10",
                                "-o", str(tmp_path / "long.mid")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=_stop_signals_blocked)
    try:
        _wait_until_it_catches(process.pid, signal.SIGTERM)  # generate's handler: unblocked before it
        process.send_signal(getattr(signal, name))
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == status, (out, err)
    assert list(tmp_path.iterdir()) == []


def _wait_until_it_catches(pid: int, number: int, timeout_s: float = 60.0) -> None:
    """Until /proc says process ``pid`` has a handler for signal ``number`` (a fixed sleep sent
    the signal before it had one on a loaded machine; helper-87)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
        if caught >> (number - 1) & 1:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never caught signal {number}")


@pytest.mark.parametrize("name,status", [("SIGINT", INTERRUPTED_STATUS), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_port_open_that_a_signal_interrupted_is_the_stop_not_an_error(monkeypatch, capsys, name: str,
                                                                      status: int) -> None:
    """libjack's port registration fails when a signal interrupts it (EINTR): that ends the start
    quietly with 128 + the signal's number, as shells report it (a SIGTERM gave Ctrl-C's 130),
    not with a PortError and status 2."""
    from emolive import PortError, cli, live

    def interrupted_open(*args, **kwargs):
        os.kill(os.getpid(), getattr(signal, name))  # the handler of live's StopSignals runs at once
        time.sleep(0.01)
        raise PortError("could not open virtual MIDI port 'emolive': JACK error creating virtual port")

    monkeypatch.setattr(live, "open_engine", interrupted_open)
    assert cli.main(["--virtual", "interrupted", "--no-keys"]) == status
    assert capsys.readouterr().err == ""


@pytest.mark.jack
@pytest.mark.parametrize("name,status", [("SIGTERM", 143), ("SIGINT", INTERRUPTED_STATUS)])
def test_a_signal_while_the_model_loads_ends_the_run_before_a_note(jack_server: str, tiny_model_dir: Path,
                                                                  monkeypatch, capsys, name: str, status: int) -> None:
    """The stop was recorded, then the engine started anyway: one note played and the run
    exited 0, where the docs say a signal while starting gives 128 + its number."""
    from emolive import cli, live

    real_open = live.open_engine

    def signalled_open(*args, **kwargs):
        engine = real_open(*args, **kwargs)
        os.kill(os.getpid(), getattr(signal, name))  # as if it came while the model loaded
        time.sleep(0.01)
        return engine

    monkeypatch.setattr(live, "open_engine", signalled_open)
    assert cli.main(["--virtual", f"sig-{os.getpid()}", "--no-keys", "--model", str(tiny_model_dir)]) == status
    assert "notes" not in capsys.readouterr().out  # no "stopped: N notes" line: it never played
