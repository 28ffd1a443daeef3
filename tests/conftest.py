"""Shared fixtures: a dummy JACK server, and a tiny random-weight model in the ONNX contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def jack_server() -> Iterator[str]:
    """Start `jackd` with the dummy driver under a private server name; yield that name.

    The name is exported as JACK_DEFAULT_SERVER for this process (RtMidi, python-rtmidi) and so
    for subprocesses started by the tests. Skips (never silently passes) if jackd is absent.
    """
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.skip("jackd not installed (Debian package jackd2); scripts/setup.sh installs it")
    name = f"emolive-test-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    # -S (synchronous mode): in JACK2's default asynchronous mode a client that misses a cycle
    # (easy on a loaded 2-core machine without real-time scheduling) leaves its stale MIDI
    # buffer to be read again: receivers see duplicated and lost events (measured: duplicated
    # note-ons in 2 of 5 runs async, none in 15 runs with -S; see docs/reliability.md).
    proc = subprocess.Popen(
        [jackd, "--no-realtime", "-S", "-n", name, "-d", "dummy", "-r", "48000", "-p", "64"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        _wait_for_jack(proc)
        yield name
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous


def _wait_for_jack(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Poll until a JACK client can connect (python-rtmidi lists ports without error)."""
    import rtmidi

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jackd exited with status {proc.returncode} at start-up")
        try:
            probe = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="emolive-probe")
            probe.get_ports()
            del probe
            return
        except Exception:  # noqa: BLE001 - server not up yet
            time.sleep(0.1)
    pytest.fail("jackd did not come up within 10 s")


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
