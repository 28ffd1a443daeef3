"""Signals during play of the `emolive` command, beyond tests/test_cli_live.py (which stops it
once per signal after 8 notes): signals at random moments of a dense 400 BPM stream, and a
double Ctrl-C (a user pressing it twice). Every note-on that reached the JACK receiver must be
paired, and the command must end without a traceback.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from midi_check import ReceiverProcess

pytestmark = pytest.mark.jack
EMOLIVE = Path(sys.executable).with_name("emolive")


@pytest.fixture(autouse=True)
def _engine_built() -> None:
    import emolive

    if not hasattr(emolive, "Engine"):
        pytest.skip("the engine (emolive.Engine) is not built in this checkout")


@pytest.fixture
def sink(jack_server: str) -> ReceiverProcess:
    port = ReceiverProcess(f"EMOLIVE-SIG-{os.getpid()}")
    yield port
    port.kill()


def start(sink: ReceiverProcess, model: Path, seed: int) -> subprocess.Popen:
    return subprocess.Popen([str(EMOLIVE), "--port", sink.name, "--model", str(model),
                             "--emotion", "excited", "--bpm", "400", "--seed", str(seed),
                             "--no-keys"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, sink: ReceiverProcess) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("emolive did not exit after the signal")
    time.sleep(0.3)  # the last messages cross JACK's next period
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_at_random_moments_leaves_nothing_sounding(sink: ReceiverProcess,
                                                          tiny_model_dir: Path,
                                                          sig: int) -> None:
    rng = random.Random(int(sig))
    for run in range(3):
        sink.ask("clear")
        proc = start(sink, tiny_model_dir, seed=run)
        assert sink.wait_for_note_ons(1, timeout_s=30), "no notes arrived"
        time.sleep(rng.uniform(0.0, 1.0))  # anywhere in the stream, mid-step included
        proc.send_signal(sig)
        code, err = finish(proc, sink)
        assert code == 0, err
        assert "Traceback" not in err
        got = sink.ask()
        assert got["double_strikes"] == 0 and got["left_sounding"] == 0, f"run {run}: {got}"


def test_double_ctrl_c_still_ends_clean(sink: ReceiverProcess, tiny_model_dir: Path) -> None:
    proc = start(sink, tiny_model_dir, seed=9)
    assert sink.wait_for_note_ons(20, timeout_s=30), "no notes arrived"
    proc.send_signal(signal.SIGINT)
    time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc, sink)
    assert "Traceback" not in err, err
    assert code == 0, err  # one stop: the second, 5 ms on, doubled it (it was 130, no last line)
    got = sink.ask()
    assert got["double_strikes"] == 0 and got["left_sounding"] == 0, got
