"""The tests' helper processes (JACK receivers, drivers) end with the test process that started
them, even when it is killed, so a crashed run leaves no process holding a JACK port."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STARTER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from tests.midi_sink import Sink
sink = Sink(sys.argv[2])
print(sink._process.pid, flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (no such process, or a zombie not yet reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_receiver_ends_when_its_test_process_is_killed(jack_server: str) -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(ROOT), f"emolive-orphan-{time.time_ns()}"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None
        receiver = int(starter.stdout.readline())
        assert not _gone(receiver)
    finally:
        starter.kill()  # as a crash would: no finally blocks, no atexit in the starter
        starter.wait()
    deadline = time.monotonic() + 10.0
    while not _gone(receiver) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(receiver), f"receiver {receiver} outlived the process that started it"
