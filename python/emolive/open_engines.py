"""The program's engines, as one set: each Engine registers itself when made, so that those
still open are closed at the interpreter's exit, and an engine can find another of the program
that holds a port (a notebook's cell run again). Collected engines leave the set by themselves
(weak references)."""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emolive.engine import Engine

_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
# A WeakSet's iteration is guarded against removals only: an Engine made on another thread
# while one was listing them raised "Set changed size during iteration" (helper-82).
_LOCK = threading.Lock()


def register(engine: Engine) -> None:
    with _LOCK:
        _ENGINES.add(engine)


def listed() -> list[Engine]:
    """The engines made and not yet collected (closed ones too)."""
    with _LOCK:
        return list(_ENGINES)


def find(wanted: Callable[[Engine], bool]) -> Engine | None:
    """The first engine of the program for which ``wanted`` is true, or None."""
    return next((engine for engine in listed() if wanted(engine)), None)


def _close_all() -> None:
    """At interpreter exit, close every engine still open (a note-off for each sounding note).
    The destructor does it too, but CPython runs no destructor of a module's globals, nor of a
    daemon thread's locals, while any daemon thread is alive at exit (an input port's reader
    is one): the notes then sounding were left on in the receiver."""
    for engine in listed():
        try:
            engine.close()
        except Exception:  # noqa: BLE001 - the others are closed whatever one raises
            pass


def _new_lock_in_child() -> None:
    """A child forked while another thread listed the engines would hold the lock for good."""
    global _LOCK
    _LOCK = threading.Lock()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)
