"""Closing MIDI inputs while messages pour in: no crash, no hang (docs/reliability.md, "Exit crash").

A source process sends clock and controllers as fast as JACK takes them; a second process opens
and closes ``emolive.input_port.InputPort`` on it, cycle after cycle, and exits. Each close stops the
JACK client's process thread (JACK cancels it); if that happened while RtMidi's callback was
queueing a message, the process would crash or hang, now or at exit. Both processes run outside
pytest, so a crash is a failed test, not a lost session.

    EMOLIVE_INPUT_CYCLES=500 .venv/bin/python -m pytest tests/reliability/test_input_close.py -s
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.jackd import terminate_with_parent

pytestmark = pytest.mark.jack
CYCLER = Path(__file__).resolve().parent / "input_cycle_proc.py"
CYCLES = int(os.environ.get("EMOLIVE_INPUT_CYCLES", "40"))

FLOOD = r"""
import signal, sys, time, rtmidi
name = sys.argv[1]
out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=name)
out.open_virtual_port(name)
print("ready", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
n = 0
while True:
    out.send_message([0xF8])
    out.send_message([0xB0, 20, n % 128])
    n += 1
    time.sleep(0.0002)  # about 10,000 messages a second, far more than a MIDI cable carries
"""


@pytest.fixture(params=[True, False], ids=["synchronous JACK", "asynchronous JACK"])
def server(request: pytest.FixtureRequest, private_jack_server, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"emolive-close-{os.getpid()}-{'s' if request.param else 'a'}"
    private_jack_server(name, request.param)
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    return name


def test_inputs_close_cleanly_under_a_message_flood(server: str) -> None:
    source_name = f"emolive-flood-{os.getpid()}"
    source = subprocess.Popen([sys.executable, "-c", FLOOD, source_name], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, preexec_fn=terminate_with_parent)
    try:
        assert source.stdout is not None and source.stdout.readline().strip() == "ready"
        result = subprocess.run([sys.executable, str(CYCLER), source_name, str(CYCLES)], capture_output=True,
                                text=True, timeout=60 + CYCLES * 2)
    finally:
        source.terminate()
        source.wait(timeout=10)
    assert result.returncode == 0, f"status {result.returncode}\n{result.stderr[-3000:]}"
    assert result.stdout.startswith(f"done {CYCLES} ")
    messages = int(result.stdout.split()[2])
    assert messages > CYCLES, "the inputs received (almost) nothing: the flood did not reach them"
    print(f"{CYCLES} open/close cycles, {messages} messages received")
