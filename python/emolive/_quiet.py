"""Silence what C libraries (ALSA, JACK) print on file descriptor 2 while MIDI backends are probed.

Their failure notes are noise to a user: emolive reports the failure itself, once, in plain words.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_c_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration of the block, then restore it."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
