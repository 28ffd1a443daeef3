"""A private dummy JACK server and a recording input port, for the benchmarks that measure
through real MIDI ports (process start to first note, end-to-end delivery). The server comes
from tests/jackd.py, one implementation for the tests and the benchmarks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.jackd import PERIOD_FRAMES, RATE_HZ, JackdError, dummy_server

__all__ = ["PERIOD_FRAMES", "RATE_HZ", "Receiver", "jack_server"]


@contextmanager
def jack_server() -> Iterator[str]:
    """A private synchronous dummy JACK server (`jackd -S -d dummy`), exported, its name."""
    try:
        with dummy_server("emolive-bench", synchronous=True) as name:
            yield name
    except JackdError as err:
        raise SystemExit(str(err)) from err


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
