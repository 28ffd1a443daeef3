"""The first messages of a play reach the receiver: a program change sent the moment a JACK port
is opened used to be lost now and then (the connection carries messages only from a later
process cycle; docs/reliability.md, "Connection settle").

Each run opens an engine on a named port and plays at once, under CPU load from busy
processes, which is what made the loss show (5 of 100 runs before the fix); the load is
paused while the engine closes. CI does a few runs;
the long run is

    EMOLIVE_SETTLE_RUNS=150 .venv/bin/python -m pytest tests/reliability/test_first_messages.py -s
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from emolive import Engine
from tests.jackd import terminate_with_parent
from tests.midi_sink import Sink

pytestmark = pytest.mark.jack

RUNS = int(os.environ.get("EMOLIVE_SETTLE_RUNS", "6"))
BUSY_PROCESSES = 2  # one per core of the 2-core machines here
PROGRAM = 5  # sent as 0xC0 0x04 on channel 1
RECEIVER = f"emolive-first-{os.getpid()}"


@pytest.fixture()
def receiver(jack_server: str) -> Iterator[Sink]:
    sink = Sink(RECEIVER)
    yield sink
    sink.close()


class CpuLoad:
    """Busy processes, one per core, that can be paused (SIGSTOP) and resumed (SIGCONT)."""

    def __init__(self) -> None:
        # They die with this process even if it crashes (a crash had left them spinning).
        self.busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                                      preexec_fn=terminate_with_parent)
                     for _ in range(BUSY_PROCESSES)]

    def pause(self, paused: bool) -> None:
        for process in self.busy:
            process.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def end(self) -> None:
        for process in self.busy:
            process.kill()
            process.wait()


@pytest.fixture()
def cpu_load() -> Iterator[CpuLoad]:
    load = CpuLoad()
    yield load
    load.end()


def test_the_program_change_and_first_note_arrive_when_playing_at_once(receiver: Sink, cpu_load: CpuLoad) -> None:
    missing = []
    for run in range(RUNS):
        start = len(receiver.snapshot())
        cpu_load.pause(False)
        engine = Engine(port=RECEIVER, program=PROGRAM, bpm=240, seed=run)
        engine.play("happy")  # no pause after opening the port
        time.sleep(0.25)
        # Closed without the load: under it, RtMidi 5.0's JACK close race (docs/reliability.md,
        # "Exit crash"; mitigated by waits that a starved JACK thread can outlast) crashed
        # pytest once in CI. What is tested here is the opening.
        cpu_load.pause(True)
        engine.close()
        received = received_since(receiver, start)
        notes = [m for m in received if len(m) == 3 and m[0] == 0x90 and m[2] > 0]
        if bytes([0xC0, PROGRAM - 1]) not in received or not notes or received.index(
                bytes([0xC0, PROGRAM - 1])) > received.index(notes[0]):
            missing.append((run, [m.hex() for m in received[:3]]))
    print(f"\nfirst messages: program change first in {RUNS - len(missing)} of {RUNS} runs")
    assert missing == [], f"program change missing or late (run, first messages): {missing}"


def received_since(sink: Sink, start: int, settle_s: float = 0.1) -> list[bytes]:
    time.sleep(settle_s)  # the last messages cross JACK's next period
    return sink.snapshot()[start:]
