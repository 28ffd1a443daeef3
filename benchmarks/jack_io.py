"""A private dummy JACK server and a recording input port, for the benchmarks that measure
through real MIDI ports (process start to first note, end-to-end delivery)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PERIOD_FRAMES = 64
RATE_HZ = 48000  # one JACK period: 64 / 48000 s = 1.33 ms


@contextmanager
def jack_server() -> Iterator[str]:
    """Start `jackd -S -d dummy` under a private name, export it, yield the name."""
    jackd = shutil.which("jackd")
    if jackd is None:
        raise SystemExit("jackd is not installed (Debian package jackd2)")
    name = f"emolive-bench-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([jackd, "--no-realtime", "-S", "-n", name, "-d", "dummy", "-r",
                             str(RATE_HZ), "-p", str(PERIOD_FRAMES)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, JACK_NO_AUDIO_RESERVATION="1"))
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        subprocess.run(["jack_wait", "-w", "-t", "15"], capture_output=True, check=True)
        yield name
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous


class Receiver:
    """python-rtmidi virtual input on JACK: (time.monotonic() at arrival, message bytes)."""

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

    def snapshot(self) -> list[tuple[float, bytes]]:
        with self._lock:
            return list(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
        self.first_note_on.clear()

    def close(self) -> None:
        # Callback off first: closing a port while JACK's thread is inside the Python
        # callback has crashed python-rtmidi here (1 run in 6).
        self._port.cancel_callback()
        self._port.close_port()
