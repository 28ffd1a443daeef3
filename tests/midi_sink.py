"""A python-rtmidi JACK input that records every message it receives, living in a child process.

Closing a python-rtmidi JACK input port can crash or hang the process that owns it (a race in
RtMidi/libjack at close: docs/reliability.md, "Exit crash"); in a child, it cannot take pytest
down. The child drains RtMidi's queue (no Python runs in JACK's process thread) and prints each
message as a hex line; a thread here collects them.

    sink = Sink("emolive-sink")                      # a virtual input port "emolive-sink"
    sink = Sink("reader", source="emolive-out")      # an input connected to an output port

`CallbackReceiver` is the in-process kind, for what needs arrival times taken in RtMidi's
callback (the live benchmark) or runs in a child of its own already (reliability/receiver_proc.py).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

from tests.jackd import terminate_with_parent

CHILD = r"""
import sys, time, rtmidi
name, source = sys.argv[1], sys.argv[2]
port = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name=name, queue_size_limit=1 << 16)
port.ignore_types(sysex=True, timing=False, active_sense=True)
if source:
    port.open_port(next(i for i, n in enumerate(port.get_ports()) if source in n))
else:
    port.open_virtual_port(name)
print("ready", flush=True)
while True:
    event = port.get_message()
    if event is None:
        time.sleep(0.001)
        continue
    print(bytes(event[0]).hex(), flush=True)
"""


class Sink:
    """Every message received, in order (``snapshot()``), from a child process."""

    def __init__(self, name: str, source: str = "") -> None:
        self.messages: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._process = subprocess.Popen([sys.executable, "-c", CHILD, name, source],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True,
                                         preexec_fn=terminate_with_parent)
        assert self._process.stdout is not None
        first = self._process.stdout.readline().strip()
        assert first == "ready", f"the sink process did not open its port ({first!r})"
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with self._lock:
                self.messages.append((time.monotonic(), bytes.fromhex(line.strip())))

    def snapshot(self) -> list[bytes]:
        with self._lock:
            return [message for _, message in self.messages]

    def wait_for(self, condition: Callable[[list[bytes]], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition(self.snapshot()):
                return True
            time.sleep(0.05)
        return condition(self.snapshot())

    def close(self) -> None:
        """SIGTERM: the port goes as a program that quits takes it."""
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=2)


class CallbackReceiver:
    """A python-rtmidi virtual input on JACK in this process: (time.monotonic() at arrival,
    message bytes) of every message, stamped in RtMidi's callback; MIDI clock is kept."""

    def __init__(self, name: str) -> None:
        import rtmidi

        self.name = name
        self.messages: list[tuple[float, bytes]] = []
        self.first_note_on = threading.Event()
        self._lock = threading.Lock()
        self._port = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name=name)
        self._port.ignore_types(sysex=True, timing=False, active_sense=True)
        self._port.set_callback(self._receive)
        self._port.open_virtual_port(name)

    def _receive(self, event: tuple[list[int], float], _data: object) -> None:
        now = time.monotonic()
        msg = bytes(event[0])
        with self._lock:
            self.messages.append((now, msg))
        if len(msg) == 3 and msg[0] & 0xF0 == 0x90 and msg[2] > 0:
            self.first_note_on.set()

    def timed(self) -> list[tuple[float, bytes]]:
        with self._lock:
            return list(self.messages)

    def snapshot(self) -> list[bytes]:
        return [message for _, message in self.timed()]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
        self.first_note_on.clear()

    def close(self) -> None:
        # Callback off first: closing a port while JACK's thread is inside the Python
        # callback has crashed python-rtmidi here (1 run in 6). Only where a crash cannot take
        # pytest down (a benchmark, a child process).
        self._port.cancel_callback()
        self._port.close_port()
        del self._port
