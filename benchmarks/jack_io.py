"""A private dummy JACK server and a recording input port, for the benchmarks that measure
through real MIDI ports (process start to first note, end-to-end delivery). Both come from the
tests (tests/jackd.py, tests/midi_sink.py): one implementation for the tests and the benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.jackd import PERIOD_FRAMES, RATE_HZ, JackdError, dummy_server
from tests.midi_sink import CallbackReceiver as Receiver

__all__ = ["PERIOD_FRAMES", "RATE_HZ", "Receiver", "jack_server"]


@contextmanager
def jack_server() -> Iterator[str]:
    """A private synchronous dummy JACK server (`jackd -S -d dummy`), exported, its name."""
    try:
        with dummy_server("emolive-bench", synchronous=True) as name:
            yield name
    except JackdError as err:
        raise SystemExit(str(err)) from err
