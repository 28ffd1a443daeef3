"""The terminal while playing: single key presses without Enter, and a one-line status display.

Keys are read only when stdin is a terminal (CI and pipes have none: then there is no keyboard
control). On POSIX the terminal is put in cbreak mode (keys arrive at once, Ctrl-C still sends
SIGINT) and restored on exit; on Windows ``msvcrt`` reads keys.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import select
import sys
import time
from collections import deque
from typing import Any, Iterator, TextIO

import wcwidth

from emolive.ports import shown

if os.name == "posix":
    import signal
    import termios
    import tty

#: Names returned for special keys.
UP, DOWN, LEFT, RIGHT, ENTER, ESCAPE, BACKSPACE = "UP", "DOWN", "LEFT", "RIGHT", "ENTER", "ESC", "BACKSPACE"
_ARROWS = {"A": UP, "B": DOWN, "C": RIGHT, "D": LEFT}
#: Messages kept while the output cannot take them; beyond this many the oldest are dropped.
MAX_PENDING_MESSAGES = 100


def in_foreground(stream: TextIO) -> bool:
    """True unless ``stream`` is this process's controlling terminal and another job (process
    group: the shell, after `emolive ... &` or `bg`) has its foreground."""
    if os.name != "posix":
        return True
    try:
        return os.tcgetpgrp(stream.fileno()) == os.getpgrp()
    except (OSError, ValueError):  # not our controlling terminal (no job control through it), or gone
        return True


@contextlib.contextmanager
def _sigttou_held() -> Iterator[None]:
    """SIGTTOU blocked in this thread: a job put in the background (`bg`) after its foreground
    was checked has its terminal mode set all the same, where the kernel would stop it."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTTOU])
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


class Keyboard:
    """Key presses from a terminal; a context manager that restores the terminal's mode.

    Only a job in the terminal's foreground sets its mode or reads it: a background job doing
    either is stopped by the terminal (SIGTTOU, SIGTTIN), and `emolive ... &` stopped so at once
    ("Stopped (tty output)"), with its port open and silent. In the background keys are not
    read; they are again once the job is brought to the foreground (`fg`)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdin
        self._saved_mode: list[Any] | None = None  # the terminal's mode before, while ours is set
        self._our_mode: list[Any] | None = None  # the cbreak mode we set, to set again if undone

    @staticmethod
    def available(stream: TextIO | None = None) -> bool:
        stream = stream or sys.stdin
        try:
            return stream is not None and stream.isatty()
        except (ValueError, OSError):  # closed stream
            return False

    def in_foreground(self) -> bool:
        return in_foreground(self._stream)

    def __enter__(self) -> Keyboard:
        self._take_the_terminal()
        return self

    def _take_the_terminal(self) -> None:
        """Cbreak mode (keys at once, Ctrl-C still SIGINT), the mode before kept; in the
        foreground only. Set again when something else changed the mode: a shell puts its own
        mode back when a job is stopped from elsewhere (`kill -STOP`) and not ours on `fg`, and
        keys then waited for Enter (helper-58)."""
        if os.name != "posix" or not self.in_foreground():
            return
        fd = self._stream.fileno()
        with _sigttou_held():
            if self._saved_mode is None:
                self._saved_mode = termios.tcgetattr(fd)
                tty.setcbreak(fd)
                self._our_mode = termios.tcgetattr(fd)
                return
            try:
                if self._our_mode is not None and termios.tcgetattr(fd) != self._our_mode:
                    termios.tcsetattr(fd, termios.TCSADRAIN, self._our_mode)
            except termios.error:  # the terminal is gone: the read says so
                pass

    def release(self) -> None:
        """The terminal's mode as it was before (for a suspend, and at the end), in the
        foreground only: a job sent to the background by a stop from elsewhere (`kill -STOP`,
        `bg`) leaves the mode to the shell, which took the terminal back with its own."""
        if self._saved_mode is None or not self.in_foreground():
            return
        with _sigttou_held():
            try:
                termios.tcsetattr(self._stream.fileno(), termios.TCSADRAIN, self._saved_mode)
            except (OSError, termios.error):  # the terminal is gone (SIGHUP): nothing to restore
                pass
        self._saved_mode = self._our_mode = None

    def __exit__(self, *exc: object) -> None:
        self.release()

    def read(self, timeout_s: float) -> str | None:
        """One key (a character, or UP/DOWN/LEFT/RIGHT/ENTER/ESC/BACKSPACE); None after timeout_s,
        or for a key this command has no use for (a function key: its sequence read whole)."""
        if os.name != "posix":
            return self._read_windows(timeout_s)
        if not self.in_foreground():  # a background job: reading would stop it (SIGTTIN)
            time.sleep(timeout_s)
            return None
        self._take_the_terminal()  # again after a suspend, or once brought to the foreground
        fd = self._stream.fileno()
        if not select.select([fd], [], [], timeout_s)[0]:
            return None
        char = self._read_character(fd)
        if char == "":
            raise EOFError("the terminal closed")
        if char == "\x1b":
            return self._read_escape(fd)
        return _name_of(char)

    @staticmethod
    def _read_escape(fd: int) -> str | None:
        """After ESC: a lone Escape, an arrow key (ESC [ A, ESC O A, with modifiers ESC [ 1;2 A:
        the arrow), or another key's sequence read whole and ignored (None), so that none of
        its bytes is taken for a key of its own (F2 = ESC O Q quit, F11 = ESC [ 2 3 ~ chose sad)."""
        def next_byte() -> bytes:
            return os.read(fd, 1) if select.select([fd], [], [], 0.03)[0] else b""

        kind = next_byte()
        if kind == b"O":  # SS3: one more byte (F1-F4, arrows in application mode)
            return _ARROWS.get(next_byte().decode("ascii", "replace"))
        if kind != b"[":
            return ESCAPE  # a lone Escape (or Alt with a key: the key is dropped)
        first = next_byte()
        if first == b"[":  # the Linux console's F1-F5: ESC [ [ A..E
            next_byte()
            return None
        if not first:
            return None
        if first == b"M":  # an X10 mouse report, ESC [ M and 3 bytes: a click's " " paused, "1" chose happy
            for _ in range(3):
                next_byte()
            return None
        if 0x40 <= first[0] <= 0x7E:  # a final byte at once: ESC [ A
            return _ARROWS.get(first.decode("ascii"))
        body = first
        while len(body) < 32:  # CSI: parameter bytes, then one final byte 0x40..0x7E
            byte = next_byte()
            if not byte:
                return None
            if 0x40 <= byte[0] <= 0x7E:
                return _ARROWS.get(byte.decode("ascii")) if all(c in b"0123456789;" for c in body) else None
            body += byte
        return None

    @staticmethod
    def _read_character(fd: int) -> str:
        """One character typed: its UTF-8 bytes (1 to 4) read one at a time as they come; ""
        at the end of input. A sequence cut short (30 ms without its next byte) is U+FFFD."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        byte = os.read(fd, 1)
        while byte:
            char = decoder.decode(byte)
            if char:
                return char
            byte = os.read(fd, 1) if select.select([fd], [], [], 0.03)[0] else b""
        return decoder.decode(b"", final=True)

    @staticmethod
    def _read_windows(timeout_s: float) -> str | None:
        if sys.platform != "win32":  # (and type checkers on other systems skip the rest)
            raise OSError("the Windows console is read on Windows only")
        import msvcrt

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if msvcrt.kbhit():
                char = msvcrt.getwch()
                if char in ("\x00", "\xe0"):  # arrow keys come as a prefix and a code
                    return {"H": UP, "P": DOWN, "K": LEFT, "M": RIGHT}.get(msvcrt.getwch())
                return _name_of(char)
            time.sleep(0.01)
        return None


def _name_of(char: str) -> str:
    if char in ("\r", "\n"):
        return ENTER
    if char in ("\x7f", "\x08"):
        return BACKSPACE
    return char


class StatusLine:
    """One status line: redrawn in place on a terminal, else printed when it changes (at most 1/s)."""

    def __init__(self, stream: TextIO | None = None, min_interval_s: float = 1.0, quiet: bool = False) -> None:
        self._stream = stream or sys.stdout
        self._quiet = quiet  # no status line at all; messages still (a service's log: --quiet)
        # Redrawn in place only where the terminal knows the erase sequence: TERM=dumb (Emacs's
        # shell, some CI logs) showed "\x1b[K" on every line; there it prints lines as a pipe does.
        self._interactive = Keyboard.available(self._stream) and os.environ.get("TERM") != "dumb"
        self._min_interval_s = min_interval_s
        self._last_text = ""
        self._last_print = -1e9
        self._pending: deque[str] = deque(maxlen=MAX_PENDING_MESSAGES)  # messages not yet written
        self._finished = False

    def show(self, text: str, urgent: bool = False, keep_end: bool = False) -> None:
        """Display ``text``; off a terminal, repeats are dropped and changes throttled unless urgent.
        On a terminal the line is cut to its width (a wrapped line could not be redrawn in place:
        each redraw would scroll), at its end, or with ``keep_end`` (what is being typed) at its
        start."""
        if not self._write_pending(wait=False):
            return  # the messages come first, and the output cannot take them yet
        if self._quiet or (self._interactive and not in_foreground(self._stream)):
            return  # a background job's line would be drawn over the shell's prompt and typing
        try:
            if self._interactive:
                text = _fit(text, self._columns(), keep_end)
                if text != self._last_text and _takes_a_line_now(self._stream):  # only what changed
                    self._last_text = text
                    self._stream.write("\r" + text + "\x1b[K")
                    self._stream.flush()
                return
            now = time.monotonic()
            if text == self._last_text or (not urgent and now - self._last_print < self._min_interval_s):
                return
            if not _takes_a_line_now(self._stream):
                return
            self._last_text, self._last_print = text, now
            self._stream.write(text + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # terminal or pipe gone: keep running, stop printing
            pass

    def _columns(self) -> int:
        """The terminal's width in columns; 0 when it does not say (a pty nobody sized)."""
        try:
            return os.get_terminal_size(self._stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 0

    def message(self, text: str) -> None:
        """A line of its own (help, errors), above the status line. While the output cannot
        take it without waiting (see ``_takes_a_line_now``) it is kept, in order, and written
        when the output takes lines again: the main loop, which acts on signals and keys, does
        not wait for it. After ``finish()`` messages are written at once, waiting if need be.
        Control characters but line breaks are escaped (a message may quote a model card or a
        port name from elsewhere)."""
        self._pending.append("\n".join(shown(line) for line in text.split("\n")))
        self._write_pending(wait=self._finished)

    def finish(self) -> None:
        """Write the messages still kept (waiting for the output if need be) and end the status
        line so the shell prompt starts on a fresh line."""
        self._finished = True
        if self._interactive:
            self._pending.append("")
        self._write_pending(wait=True)

    def _write_pending(self, wait: bool) -> bool:
        """Write the kept messages the output takes now (all of them with ``wait``); whether
        none is left."""
        while self._pending and (wait or _takes_a_line_now(self._stream)):
            text = self._pending.popleft()
            self._last_text = ""  # the status line is drawn again below the message
            try:
                self._stream.write(("\r\x1b[K" if self._interactive else "") + text + "\n")
                self._stream.flush()
            except (OSError, ValueError):  # terminal or pipe gone: nothing more will be shown
                self._pending.clear()
        return not self._pending


def _takes_a_line_now(stream: TextIO) -> bool:
    """Whether ``stream`` takes a status line without waiting. A terminal whose output is held
    (Ctrl-S, a frozen ssh session) or a pipe nobody reads would block the write, and with it
    the main loop, which then acted on no signal or key (SIGTERM did nothing for as long as the
    terminal held its output; the line it finally showed was 500 notes old). A status line that
    cannot be written now is skipped: the next one says the same, newer. A stream without a
    file (a StringIO), or a system without select() on files, always takes it."""
    if os.name != "posix":
        return True
    try:
        _, writable, _ = select.select([], [stream.fileno()], [], 0)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return True
    return bool(writable)


def _fit(text: str, columns: int, keep_end: bool) -> str:
    """``text`` in at most ``columns - 1`` screen columns (the last stays free, so the cursor
    never wraps), "..." marking what was cut; unchanged when ``columns`` is unknown (0). Columns
    are counted as the terminal draws them (wcwidth): a CJK character or an emoji takes two,
    an accent none, and the cut never parts a character from its accent."""
    room = columns - 1
    if columns <= 0 or _width(text) <= room:
        return text
    if room <= 3:
        return _cut(text, room, keep_end)
    return "..." + _cut(text, room - 3, True) if keep_end else _cut(text, room - 3, False) + "..."


def _width(text: str) -> int:
    return sum(max(0, wcwidth.wcwidth(char)) for char in text)


def _cut(text: str, room: int, keep_end: bool) -> str:
    """The longest start (or end) of ``text`` that fits in ``room`` columns, whole characters
    with their accents."""
    chars = list(reversed(text)) if keep_end else list(text)
    taken, used = [], 0
    for char in chars:
        width = max(0, wcwidth.wcwidth(char))
        if used + width > room:
            break
        taken.append(char)
        used += width
    if not keep_end:  # a letter's accents (0 columns) follow it, so the cut parts none
        return "".join(taken)
    while taken and wcwidth.wcwidth(taken[-1]) == 0:  # an accent whose letter was cut
        taken.pop()
    return "".join(reversed(taken))