"""Shared fixtures: a dummy JACK server, and a tiny random-weight model in the ONNX contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.jack_registry import reclaim_dead_servers


def start_jackd(name: str, attempts: int = 5) -> subprocess.Popen:
    """Start `jackd` with the dummy driver as server `name` and wait until a client can connect.

    jackd sometimes exits at start-up when other servers start at the same moment, so it is
    tried `attempts` times. Stop it with terminate() (SIGTERM frees its slot in JACK's 8-slot
    server registry; SIGKILL leaks the slot, which the next start reclaims: tests/jack_registry.py).
    Skips if jackd is not installed.
    """
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.skip("jackd not installed (Debian package jackd2); scripts/setup.sh installs it")
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    proc: subprocess.Popen | None = None
    for _ in range(attempts):
        reclaim_dead_servers()  # slots that killed servers (of any run) left in the registry
        proc = subprocess.Popen(
            [jackd, "--no-realtime", "-S", "-n", name, "-d", "dummy", "-r", "48000", "-p", "64"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            preexec_fn=_terminate_with_parent,
        )
        if _wait_for_jack(proc, name):
            return proc
        stop_jackd(proc)
    assert proc is not None
    pytest.fail(f"jackd -n {name} did not come up in {attempts} attempts (status {proc.returncode})")


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, even by SIGKILL or a
    timeout (Linux prctl PR_SET_PDEATHSIG), so no orphaned jackd keeps a registry slot."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG


def stop_jackd(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL only if the server does not exit within 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def jack_server() -> Iterator[str]:
    """A dummy JACK server under a private name for the whole session; yields the name.

    The name is exported as JACK_DEFAULT_SERVER for this process (RtMidi, python-rtmidi) and so
    for subprocesses started by the tests.
    """
    name = f"emolive-test-{uuid.uuid4().hex[:8]}"
    proc = start_jackd(name)
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        yield name
    finally:
        stop_jackd(proc)
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous


def _wait_for_jack(proc: subprocess.Popen, name: str, timeout_s: float = 10.0) -> bool:
    """Poll until a JACK client can connect to server `name`; False if jackd exits or times out.

    Connects from a subprocess with JACK_DEFAULT_SERVER=name, so a failed attempt (libjack
    tries to start a server of its own) never disturbs this process.
    """
    probe = (
        "import rtmidi, sys\n"
        "out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name='emolive-probe')\n"
        "out.open_virtual_port('probe')\n"
    )
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        result = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, timeout=timeout_s
        )
        if result.returncode == 0:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def private_jack_server() -> Iterator[Callable[[str], subprocess.Popen]]:
    """A factory for extra JACK servers a test may stop itself (server-loss tests).

    Call it with a server name; the server is stopped at the end of the test if still running.
    """
    started: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        proc = start_jackd(name)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_jackd(proc)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model with random weights, exported in the contract of docs/model-contract.md.

    Needs torch (the `train` extra): tests that use it are skipped without torch.
    """
    pytest.importorskip("torch")
    from emolive.training.export import export_random_model

    out = tmp_path_factory.mktemp("tiny_model")
    export_random_model(out, z_dim=16, hidden=32, layers=1, seed=0)
    return out
