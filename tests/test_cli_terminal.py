"""Keys from a real pseudo-terminal, and the status line on and off a terminal."""

from __future__ import annotations

import io
import os
import time
from typing import TextIO

import pytest

from emolive.terminal import BACKSPACE, DOWN, ENTER, ESCAPE, LEFT, RIGHT, UP, Keyboard, StatusLine

pytestmark = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals are POSIX")


@pytest.fixture
def pty_pair():
    import pty

    leader, follower = pty.openpty()
    stream = os.fdopen(follower, "r", closefd=True)
    yield leader, stream
    stream.close()
    os.close(leader)


def test_keys_arrive_without_enter_and_arrows_are_named(pty_pair) -> None:
    import termios

    leader, stream = pty_pair
    before = termios.tcgetattr(stream.fileno())
    assert Keyboard.available(stream)
    with Keyboard(stream) as keyboard:
        assert keyboard.read(0.01) is None  # nothing typed yet
        os.write(leader, b"1\x1b[A\x1b[B\x1b[C\x1b[Dq\r\x7f")
        keys = [keyboard.read(0.5) for _ in range(8)]
        assert keys == ["1", UP, DOWN, RIGHT, LEFT, "q", ENTER, BACKSPACE]
        os.write(leader, b"\x1b")
        assert keyboard.read(0.5) == ESCAPE  # a lone Escape, no sequence after it
    assert termios.tcgetattr(stream.fileno()) == before  # the terminal's mode is restored


def test_function_keys_are_read_whole_and_ignored(pty_pair) -> None:
    """After ESC one byte was read (two for ESC [): F2 (ESC O Q) left Q, which quit, and F11
    (ESC [ 2 3 ~) left 2 and 3: tense, then sad."""
    leader, stream = pty_pair
    with Keyboard(stream) as keyboard:
        # F2, F11, Ctrl-F5, Shift-Up, ESC O B, the Linux console's F1
        os.write(leader, b"\x1bOQ\x1b[23~\x1b[15;5~\x1b[1;2A\x1bOB\x1b[[A1")
        keys = [keyboard.read(0.5) for _ in range(7)]
        assert keys == [None, None, None, UP, DOWN, None, "1"]
        # X10 mouse reports (a terminal left in mouse mode): a click at column 17, row 5, its
        # release, and an SGR report; the button and position bytes were keys (" " paused, "1" happy)
        os.write(leader, b"\x1b[M 1%\x1b[M#1%\x1b[<0;17;5M2")
        assert [keyboard.read(0.5) for _ in range(4)] == [None, None, None, "2"]


def test_characters_beyond_ascii_arrive_whole(pty_pair) -> None:
    leader, stream = pty_pair
    with Keyboard(stream) as keyboard:
        os.write(leader, "häppy €𝄞".encode())
        assert [keyboard.read(0.5) for _ in range(8)] == list("häppy €𝄞")
        os.write(leader, b"\xc3")  # the first byte of two, and no second
        assert keyboard.read(0.5) == "\ufffd"


def test_no_keyboard_without_a_terminal() -> None:
    assert not Keyboard.available(io.StringIO())


def test_status_line_off_a_terminal_prints_changes_only() -> None:
    out = io.StringIO()
    status = StatusLine(out, min_interval_s=0.0)
    status.show("playing | calm")
    status.show("playing | calm")  # unchanged: not repeated
    status.show("playing | happy")
    status.message("help text")
    assert out.getvalue().splitlines() == ["playing | calm", "playing | happy", "help text"]


def test_a_quiet_status_line_prints_messages_only() -> None:
    out = io.StringIO()
    status = StatusLine(out, min_interval_s=0.0, quiet=True)
    status.show("playing | calm", urgent=True)
    status.message("emolive: MIDI output lost")
    status.show("playing | happy")
    status.finish()
    assert out.getvalue().splitlines() == ["emolive: MIDI output lost"]


def test_messages_escape_control_characters_but_keep_line_breaks() -> None:
    """A message may quote a port name or a model card from elsewhere (an escape sequence
    that clears the screen, a carriage return that overwrites the line)."""
    out = io.StringIO()
    status = StatusLine(out, min_interval_s=0.0, quiet=True)
    status.message("emolive: MIDI output lost: port 'x\x1b[2J\ry'\nsecond line")
    assert out.getvalue() == "emolive: MIDI output lost: port 'x\\x1b[2J\\ry'\nsecond line\n"


def test_status_line_throttles_but_urgent_lines_pass() -> None:
    out = io.StringIO()
    status = StatusLine(out, min_interval_s=60.0)
    status.show("a")
    status.show("b")  # within the interval: dropped for now
    status.show("c", urgent=True)
    assert out.getvalue().splitlines() == ["a", "c"]


def test_status_line_on_a_terminal_redraws_in_place(pty_pair) -> None:
    leader, stream = pty_pair
    writer = os.fdopen(os.dup(stream.fileno()), "w")
    status = StatusLine(writer)
    status.show("bar 1")
    status.show("bar 2")
    writer.flush()
    want = b"\rbar 1\x1b[K\rbar 2\x1b[K"
    assert _read_pty(leader, len(want)) == want
    writer.close()


def test_a_dumb_terminal_gets_lines_not_redraws(pty_pair, monkeypatch) -> None:
    leader, stream = pty_pair
    monkeypatch.setenv("TERM", "dumb")
    writer = os.fdopen(os.dup(stream.fileno()), "w")
    status = StatusLine(writer, min_interval_s=0.0)
    status.show("playing | happy | bar 1")
    writer.flush()
    want = b"playing | happy | bar 1\r\n"  # the pty turns the newline into CR LF
    assert _read_pty(leader, len(want)) == want
    writer.close()


def test_status_line_is_cut_to_the_terminals_width(pty_pair) -> None:
    import fcntl
    import struct
    import termios

    leader, stream = pty_pair
    fcntl.ioctl(stream.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", 24, 20, 0, 0))
    writer = os.fdopen(os.dup(stream.fileno()), "w")
    status = StatusLine(writer)
    status.show("playing | happy | bar 12 | 120.0 BPM")
    status.show("emotion> happy:0.5,sad:0.25", keep_end=True)  # typing: its end stays in view
    status.show("bar 2")
    writer.flush()
    want = b"\rplaying | happy ...\x1b[K\r...ppy:0.5,sad:0.25\x1b[K\rbar 2\x1b[K"
    assert _read_pty(leader, len(want)) == want
    writer.close()


def test_the_cut_counts_screen_columns_not_characters() -> None:
    """A CJK or emoji character takes two columns: the line was up to twice the width, and
    wrapped (each redraw a new line)."""
    from emolive.terminal import _fit

    import wcwidth

    for text in ("emotion> 日本語のテキストをここに入力します日本語", "🎹" * 30, "ｈａｐｐｙ" * 6, "é" * 50,
                 "e\u0301" * 40):
        for columns in (5, 20, 40):
            for keep_end in (False, True):
                fitted = _fit(text, columns, keep_end)
                assert wcwidth.wcswidth(fitted) <= columns - 1, (text, columns, fitted)
                assert not fitted.startswith("\u0301") and not fitted.startswith("...\u0301")
    assert _fit("日本語", 7, False) == "日本語"  # 6 columns fit in 7
    assert _fit("日本語です", 8, False) == "日本..."


def _read_pty(leader: int, size: int, timeout_s: float = 5.0) -> bytes:
    """Up to ``size`` bytes from the pty's leader side: each write reaches it on its own, so one
    read may return only the first of two (seen under load)."""
    import select

    data, deadline = b"", time.monotonic() + timeout_s
    while len(data) < size and time.monotonic() < deadline:
        if select.select([leader], [], [], 0.1)[0]:
            data += os.read(leader, size - len(data))
    return data


def test_status_line_survives_a_closed_stream() -> None:
    out = io.StringIO()
    status = StatusLine(out, min_interval_s=0.0)
    out.close()
    status.show("still running")  # no exception: the terminal went away (SIGHUP)
    status.message("nor here")


def test_status_text_shows_blend_bar_tempo_and_lateness() -> None:
    from emolive.live import status_text

    stats = {"emotion": (0.5, -1e-9, 0.0, 0.5), "bar": 3, "bpm": 120.0, "temperature": 1.0, "notes_sent": 5,
             "late_notes": 2, "max_lateness_us": 1500.0}
    assert status_text(stats, True) == ("playing | happy:0.50,calm:0.50 | bar 3 | 120.0 BPM | temperature 1.00 | "
                                        "notes 5 | late 2 (max 1.5 ms)")
    stats.update(emotion=(0.0, 0.0, 1.0, 0.0), late_notes=0)
    assert status_text(stats, False).startswith("stopped | sad | bar 3")
    assert status_text(stats, False).endswith("| late 0")
    assert status_text(stats, False, waiting_for_bar_line=True).startswith("waiting for the master's bar line | sad")
    stats.update(missed_steps=12)  # a model too slow for the tempo: it said "late 0" (helper-65)
    assert status_text(stats, True).endswith("| late 0 | missed 12 steps")
    stats.update(missed_steps=1)
    assert status_text(stats, True).endswith("| late 0 | missed 1 step")


def test_a_model_giving_nan_is_said_once() -> None:
    from emolive.live import Session

    said: list[str] = []
    session = Session.__new__(Session)
    session.status = type("Status", (), {"message": staticmethod(said.append)})()
    session.said_nonfinite = False
    for count in (0, 2, 5):
        session.say_when_the_model_gives_nan({"nonfinite_steps": count})
    assert said == ["emolive: warning: the model gave NaN onset probabilities in 2 step(s), whose keys play "
                    "nothing: it is broken for some input (emotion, key or latent point)"]


def test_a_model_falling_behind_is_said_from_4_missed_steps_and_again_at_each_tenfold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from emolive.live import Session

    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))  # an idle machine

    said: list[str] = []
    session = Session.__new__(Session)  # the method needs only its status and count
    session.status = type("Status", (), {"message": staticmethod(said.append)})()
    session.said_missed_steps = 0
    for missed in (0, 1, 3, 5, 6, 49, 50, 51, 600):
        session.say_when_the_model_falls_behind({"missed_steps": missed, "bpm": 120.0})
    assert said == [
        f"emolive: the model cannot keep up: {count} steps not decoded in time played nothing (a 16th note "
        "lasts 125 ms at 120.0 BPM); lower the tempo, or use a faster model" for count in (5, 50, 600)]


def test_missed_steps_on_a_busy_machine_name_the_load_not_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine whose other programs took the CPU was said to run a model that "cannot keep
    up": the load is named, and freeing the CPU is the first advice."""
    from emolive.live import Session

    said: list[str] = []
    session = Session.__new__(Session)
    session.status = type("Status", (), {"message": staticmethod(said.append)})()
    session.said_missed_steps = 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (2.9, 1.0, 1.0))  # emolive's own generator, and one more
    session.say_when_the_model_falls_behind({"missed_steps": 5, "bpm": 120.0})
    assert said[-1].startswith("emolive: the model cannot keep up: 5 steps")
    monkeypatch.setattr(os, "getloadavg", lambda: (3.42, 1.0, 1.0))
    session.said_missed_steps = 0
    session.say_when_the_model_falls_behind({"missed_steps": 5, "bpm": 120.0})
    assert said[1:] == ["emolive: the machine is too busy for the model: 5 steps not decoded in time played nothing "
                    "(a 16th note lasts 125 ms at 120.0 BPM; load 3.4 on 2 cores); free the CPU, lower the tempo, "
                    "or use a faster model"]


def _full_pipe() -> tuple[int, TextIO]:
    """A pipe with no room left (a reader that stopped reading): its read end, and its write
    end as a blocking text stream, which a plain write would wait on."""
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    try:
        while True:
            os.write(writer, b"x" * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(writer, True)
    return reader, os.fdopen(writer, "w")


@pytest.mark.skipif(os.name != "posix", reason="select() on a pipe is POSIX")
@pytest.mark.parametrize("interactive", [False, True])
def test_a_status_line_the_stream_cannot_take_now_is_skipped_not_waited_for(interactive: bool) -> None:
    """A terminal holding its output (Ctrl-S, a frozen ssh session) or a pipe nobody reads:
    the write blocked the main loop, and with it every signal and key."""
    import threading

    reader, stream = _full_pipe()
    status = StatusLine(stream, min_interval_s=0.0)
    status._interactive = interactive  # as on a terminal: redrawn in place
    shown = threading.Thread(target=status.show, args=("playing | calm",), daemon=True)
    shown.start()
    shown.join(2.0)
    try:
        assert not shown.is_alive(), "show() waited for a stream that takes nothing"
        os.read(reader, 1 << 20)  # room again: the next line is written
        status.show("playing | sad")
        stream.flush()
        assert b"playing | sad" in os.read(reader, 1 << 20)
    finally:
        os.read(reader, 1 << 20) if shown.is_alive() else None
        stream.close()
        os.close(reader)


@pytest.mark.skipif(os.name != "posix", reason="select() on a pipe is POSIX")
def test_a_message_the_stream_cannot_take_now_is_kept_in_order_not_waited_for() -> None:
    """A message (a port lost, the help) while the output is held blocked the main loop as a
    status line did; it is kept and written, in order and before the status line, once the
    output takes lines again; after finish() a message waits for the output."""
    import threading

    reader, stream = _full_pipe()
    status = StatusLine(stream, min_interval_s=0.0)

    def while_held() -> None:
        status.message("emolive: MIDI output lost")
        status.message("emolive: MIDI output is back")
        status.show("playing | calm")

    held = threading.Thread(target=while_held, daemon=True)
    held.start()
    held.join(2.0)
    try:
        assert not held.is_alive(), "message() waited for a stream that takes nothing"
        assert os.read(reader, 1 << 20).strip(b"x") == b""  # nothing of them yet
        status.show("playing | sad")
        status.finish()
        status.message("emolive: stopped")
        written = os.read(reader, 1 << 20).decode()
        assert written == ("emolive: MIDI output lost\nemolive: MIDI output is back\nplaying | sad\n"
                           "emolive: stopped\n")
    finally:
        stream.close()
        os.close(reader)
