"""The signals that stop or suspend `emolive` live play: recorded by their handlers, acted on by
the main loop (``emolive.live``), so that every way out ends every note.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from emolive._startup import INTERRUPTED_STATUS
from emolive.cli_options import KEYBOARD_STOP_SIGNALS, stop_signals_to_catch

#: Seconds after a Ctrl-C (or Ctrl-\\) within which the same key again is the same request: the
#: stop under way ends every note and prints its last line in about 0.3 s, and a performer's
#: panic double-tap (0.1 s apart) cut it short: status 130, no last line (helper-70).
REPEAT_GRACE_S = 1.0


class StopSignals:
    """The stop signals (``cli_options.STOP_SIGNALS``: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
    SIGUSR2, SIGALRM, SIGXCPU) set ``received`` (``requested`` is then true): every one of them used to end
    the run, the last four killing it with notes sounding. The same Ctrl-C or Ctrl-\\ again
    REPEAT_GRACE_S or more after the first gets the handler from before back and acts at once
    (Python's KeyboardInterrupt, SIGQUIT's core dump: the way out of a stop that hangs; the
    engine still closes on KeyboardInterrupt's way out); sooner, and a second of any
    other, changes nothing, so that the stop under way ends every note (a terminal that hangs up
    can send SIGHUP twice, and the second one, at its default, killed emolive with notes
    sounding). A signal other than SIGINT and SIGTERM ignored when emolive starts (``nohup
    emolive ...``, a supervisor's choice) stays ignored.

    The handler only assigns and re-installs a handler. Python runs it in the main thread
    between two bytecodes, wherever that thread is, so it must not take a lock the thread may
    hold: it used to set a ``threading.Event``, and `emolive` hung on SIGTERM in CI
    when the signal came while the main loop, inside that Event's ``wait()``, held its lock."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}
        self._first_at: dict[int, float] = {}  # a keyboard signal's number -> when it first came

    @property
    def requested(self) -> bool:
        return self.received is not None

    @property
    def status_while_starting(self) -> int:
        """The exit status of a run this signal ended before it played: 128 + its number, as
        shells report a program ended by it (130 for Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
        number = getattr(signal, self.received or "", None)
        return 128 + int(number) if number is not None else INTERRUPTED_STATUS

    @staticmethod
    def wait(timeout_s: float) -> None:
        """Sleep ``timeout_s`` seconds; a signal's handler runs meanwhile (the sleep then goes
        on, PEP 475), so a stop is seen within one wait."""
        time.sleep(timeout_s)

    def __enter__(self) -> StopSignals:
        for number in stop_signals_to_catch():
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, _frame: object) -> None:
        self.received = self.received or signal.Signals(number).name
        if signal.Signals(number).name not in KEYBOARD_STOP_SIGNALS:
            return
        now = time.monotonic()
        if now - self._first_at.setdefault(number, now) >= REPEAT_GRACE_S:  # the stop hangs
            signal.signal(number, self._previous.get(number, signal.SIG_DFL))
            signal.raise_signal(number)  # acted on as the handler from before acts on it

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class SuspendSignal:
    """Ctrl-Z (SIGTSTP) sets ``requested``, where it stopped the process at once with the notes
    of that moment sounding for as long as it stayed stopped, and the terminal in cbreak mode.
    The main loop ends the notes, gives the terminal back and then calls :meth:`stop_here`.
    Not caught where SIGTSTP comes in ignored (no job control: it stops nothing)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> SuspendSignal:
        number = getattr(signal, "SIGTSTP", None)  # none on Windows
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            self._previous = signal.signal(number, self._handle)
        return self

    def _handle(self, _number: int, _frame: object) -> None:
        self.requested = True  # only assigns: see StopSignals on why

    def stop_here(self) -> None:
        """Stop this process as Ctrl-Z stops any program; returns once continued (`fg`, `bg`:
        SIGCONT). The signal goes to this thread, so the stop comes before the call returns."""
        self.requested = False
        if self._previous is None:
            return
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        try:
            signal.pthread_kill(threading.get_ident(), signal.SIGTSTP)
        finally:
            signal.signal(signal.SIGTSTP, self._handle)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTSTP, self._previous)
            self._previous = None
