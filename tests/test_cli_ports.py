"""Port matching (exact, substring, index) and MIDI input ports through JACK."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from emolive import input_port, ports

NAMES = ["Midi Through:Midi Through Port-0 14:0", "IAC Driver Bus 1", "IAC Driver Bus 12", "loopMIDI Port"]


def test_exact_name_wins_over_substring() -> None:
    assert ports.match_port(NAMES, "IAC Driver Bus 1") == 1  # also a substring of "... Bus 12"


def test_case_insensitive_substring() -> None:
    assert ports.match_port(NAMES, "loopmidi") == 3
    assert ports.match_port(NAMES, "bus 12") == 2


def test_index_when_no_name_matches() -> None:
    assert ports.match_port(NAMES, "3") == 3
    assert ports.match_port(NAMES, 0) == 0
    with pytest.raises(ports.InputPortError, match="no MIDI input port matches"):
        ports.match_port(NAMES, "²")  # isdigit() but not int(): was a bare ValueError


def test_digit_substring_of_one_name_is_a_name_match() -> None:
    names = ["synth A", "Port-7"]
    assert ports.match_port(names, "7") == 1  # substring first, then index


def test_a_name_python_escaped_from_argv_matches_its_port() -> None:
    """Under LC_ALL=C PYTHONUTF8=0, argv's non-ASCII bytes arrive as lone surrogates."""
    escaped = "Caf\xc3\xa9".encode("latin-1").decode("ascii", "surrogateescape")
    assert escaped == "Caf\udcc3\udca9"
    assert ports.port_matches(["Café Synth:in", "Other"], escaped) == [0]
    assert ports.from_argv("Caf\udce9") == "Caf\ufffd"  # not UTF-8: replaced, never raised
    assert ports.from_argv("Café") == "Café"
    assert ports.from_argv("Caf\udce9\ud800") == "Caf??"  # another lone surrogate: no UnicodeEncodeError


def test_ambiguous_substring_lists_the_candidates() -> None:
    with pytest.raises(ports.InputPortError, match="ambiguous.*'IAC Driver Bus 1', 'IAC Driver Bus 12'"):
        ports.match_port(NAMES, "iac")


def test_no_match_lists_the_ports() -> None:
    with pytest.raises(ports.InputPortError, match=r"no MIDI input port matches 'Scarlett'; available ports: "
                                                   r"0: 'Midi Through.*3: 'loopMIDI Port'"):
        ports.match_port(NAMES, "Scarlett")
    with pytest.raises(ports.InputPortError, match="no MIDI input port matches '9'"):
        ports.match_port(NAMES, 9)
    with pytest.raises(ports.InputPortError, match="no MIDI input ports are available; connect the controller"):
        ports.match_port([], "anything")


def test_an_empty_input_query_is_not_called_an_output_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """'' is in every name: it was said to be an output port wherever one existed."""
    monkeypatch.setattr(ports, "output_port_names", lambda: ["synth:in"])
    with pytest.raises(ports.InputPortError) as raised:
        ports.match_input_port(["keys:out"], "")
    assert "output port" not in str(raised.value)
    with pytest.raises(ports.InputPortError, match="'synth' is an output port"):
        ports.match_input_port(["keys:out"], "synth")


def test_port_must_be_a_name_or_index() -> None:
    with pytest.raises(TypeError, match="name or an index"):
        ports.match_port(NAMES, 1.5)  # type: ignore[arg-type]


@pytest.mark.jack
def test_input_port_receives_messages_and_clock(jack_server: str) -> None:
    import rtmidi

    sender = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="emolive-test-sender")
    sender.open_virtual_port("clock source")
    received: list[bytes] = []
    got_all = threading.Event()

    def collect(message: bytes, _delta: float) -> None:
        received.append(message)
        if len(received) >= 3:
            got_all.set()

    try:
        assert any("clock source" in name for name in input_port.input_port_names())
        with input_port.InputPort("CLOCK SOURCE", collect) as port:  # case-insensitive substring
            assert "clock source" in port.name
            time.sleep(0.2)  # JACK connects on its next cycle
            for message in ([0xFA], [0xF8], [0xB0, 20, 127]):
                sender.send_message(message)
            assert got_all.wait(5.0), f"only received {received}"
        assert received[:3] == [b"\xfa", b"\xf8", b"\xb0\x14\x7f"]
    finally:
        sender.close_port()
        sender.delete()


@pytest.mark.jack
def test_an_input_port_dropped_without_close_is_closed_and_stops_delivering(jack_server: str) -> None:
    """Its thread held it through a bound method: never collected, it kept its threads, JACK
    clients and port, and went on calling the callback (helper-51: 50 dropped ports, 101 clients,
    each sent message delivered 50 times). close() lets its JACK watch client go as well."""
    import gc

    import rtmidi

    sender = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="emolive-test-dropper")
    sender.open_virtual_port("drop source")
    lister = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=f"emolive-lister-{os.getpid()}")
    received: list[bytes] = []
    try:
        port = input_port.InputPort("drop source", lambda message, _delta: received.append(message),
                               client_name="emolive-dropped")
        drainer = port._drainer
        time.sleep(1.2)  # past a source check, which opens the JACK watch client
        assert any("emolive-dropped" in name for name in lister.get_ports())
        del port
        gc.collect()
        drainer.join(timeout=5)
        assert not drainer.is_alive()
        assert not any("emolive-dropped" in name for name in lister.get_ports())
        sender.send_message([0xF8])
        time.sleep(0.2)
        assert received == []
        with input_port.InputPort("drop source", lambda *_: None) as kept:
            time.sleep(1.2)
        assert not kept._server.connections  # closed with the port, though the object lives on
    finally:
        lister.delete()
        sender.close_port()
        sender.delete()


SLOW_WATCH = """
import time, rtmidi
from emolive import input_port
source = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="emolive-test-slow-src")
source.open_virtual_port("slow source")
port = input_port.InputPort("slow source", lambda m, d: None, client_name="emolive-slow-watch",
                       on_connection=lambda connected: time.sleep(3))  # a handler blocked on a lock
time.sleep(0.2)
source.close_port(); source.delete()  # the next check calls on_connection(False), for 3 s
time.sleep(0.8)
port.close()  # gives up waiting after JOIN_S (2 s) and deletes the input
port._drainer.join(5)
print("alive" if port._drainer.is_alive() else "ended", flush=True)
"""


@pytest.mark.jack
def test_closing_while_a_source_check_outlasts_the_wait_does_not_crash(jack_server: str) -> None:
    """The drain thread went from a slow source check straight to get_message() on the input
    close() had deleted meanwhile: a segmentation fault (helper-53)."""
    result = subprocess.run([sys.executable, "-c", SLOW_WATCH], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ended"


@pytest.mark.jack
def test_a_callback_that_raises_does_not_end_the_input(jack_server: str, capfd: pytest.CaptureFixture[str]) -> None:
    """A callback's exception ended the drain thread: nothing more was delivered, nor the
    source watched, while the port looked open."""
    import rtmidi

    sender = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=f"emolive-raiser-{os.getpid()}")
    sender.open_virtual_port("raiser")
    received: list[bytes] = []

    def fussy(message: bytes, _delta: float) -> None:
        received.append(message)
        raise RuntimeError("a bug in the callback")

    try:
        with pytest.raises(TypeError, match="callback must be callable, not str"):
            input_port.InputPort("raiser", "not a function")  # type: ignore[arg-type]
        with input_port.InputPort("raiser", fussy) as port:
            time.sleep(0.2)  # JACK connects on its next cycle
            for cc in range(3):
                sender.send_message([0xB0, 20, cc])
            deadline = time.monotonic() + 5.0
            while port.callback_errors < 3 and time.monotonic() < deadline:  # counted after the call
                time.sleep(0.01)
            assert len(received) == 3 and port.callback_errors == 3
        err = capfd.readouterr().err
        assert err.count("RuntimeError: a bug in the callback") == 1 and "the input goes on" in err
    finally:
        sender.close_port()
        sender.delete()


@pytest.mark.jack
def test_active_sensing_and_sysex_between_ticks_take_no_time_from_the_clock(jack_server: str) -> None:
    """RtMidi's JACK input restarted a message's delta at a message it then ignored: with active
    sensing between clock ticks, the deltas delivered added up to less than the time that passed
    (the synced engine ran ahead of the master). They are dropped here, their time kept."""
    import rtmidi

    sender = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="emolive-test-sender")
    sender.open_virtual_port("sensing source")
    received: list[tuple[bytes, float]] = []
    try:
        with input_port.InputPort("sensing source", lambda m, d: received.append((m, d))):
            time.sleep(0.2)  # JACK connects on its next cycle
            sender.send_message([0xF8])
            start = time.monotonic()
            for _ in range(40):  # 40 ticks 25 ms apart, each followed by sensing and a sysex
                time.sleep(0.0125)
                sender.send_message([0xFE])
                sender.send_message([0xF0, 0x7D, 0x01, 0xF7])
                time.sleep(0.0125)
                sender.send_message([0xF8])
            elapsed = time.monotonic() - start
            deadline = time.monotonic() + 5
            while len(received) < 41 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert [m for m, _ in received] == [b"\xf8"] * 41  # nothing but the ticks
        counted = sum(d for _, d in received[1:])
        assert counted == pytest.approx(elapsed, rel=0.1), (counted, elapsed)
    finally:
        sender.close_port()
        sender.delete()


def _open_source(name: str):  # noqa: ANN202 - an rtmidi.MidiOut
    import rtmidi

    sender = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="emolive-test-sender")
    sender.open_virtual_port(name)
    return sender


def _wait_until(predicate, timeout_s: float = 5.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


@pytest.mark.jack
def test_an_input_whose_source_goes_and_comes_back_is_reported_and_reconnected(jack_server: str) -> None:
    """A device unplugged and plugged in again, a DAW restarted: the input was left unconnected
    and nothing was said."""
    received: list[bytes] = []
    changes: list[bool] = []
    sender = _open_source("replug source")
    with input_port.InputPort("replug source", lambda m, _d: received.append(m), on_connection=changes.append) as port:
        time.sleep(0.2)  # JACK connects on its next cycle
        sender.send_message([0xB0, 20, 1])
        assert _wait_until(lambda: received == [b"\xb0\x14\x01"])
        sender.close_port()
        sender.delete()
        assert _wait_until(lambda: changes == [False]) and not port.connected
        sender = _open_source("replug source")
        assert _wait_until(lambda: changes == [False, True]) and port.connected
        time.sleep(0.2)
        sender.send_message([0xB0, 20, 2])
        assert _wait_until(lambda: received == [b"\xb0\x14\x01", b"\xb0\x14\x02"]), received
    sender.close_port()
    sender.delete()


@pytest.mark.jack
def test_a_source_that_closes_and_opens_again_between_two_checks_is_connected_again(jack_server: str) -> None:
    """A program restarted within the half second between two checks: its port's name was
    there at both, so the input counted as connected, and stayed deaf (18 of 20 tries)."""
    received: list[bytes] = []
    changes: list[bool] = []
    sender = _open_source("quick source")
    with input_port.InputPort("quick source", lambda m, _d: received.append(m), on_connection=changes.append):
        time.sleep(1.2)  # connected, and seen connected by at least one check
        sender.close_port()
        sender.delete()
        sender = _open_source("quick source")  # within ~50 ms
        assert _wait_until(lambda: changes == [False, True], 3.0), changes
        time.sleep(0.2)
        sender.send_message([0xB0, 20, 3])
        assert _wait_until(lambda: received == [b"\xb0\x14\x03"]), received
    sender.close_port()
    sender.delete()


@pytest.mark.jack
def test_unknown_input_port_is_an_error_listing_inputs(jack_server: str) -> None:
    with pytest.raises(ports.InputPortError, match="no MIDI input port matches 'no-such-port'"):
        input_port.InputPort("no-such-port", lambda m, d: None)


@pytest.mark.jack
def test_an_output_port_named_as_an_input_is_said_to_be_one(jack_server: str) -> None:
    import rtmidi

    sink = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=f"probe-{os.getpid()}")
    sink.open_virtual_port("notes-in")  # a port emolive sends to: an output from emolive's side
    try:
        with pytest.raises(ports.InputPortError, match=r"'notes-in' is an output port \(where notes go\)"):
            input_port.InputPort("notes-in", lambda m, d: None)
        with pytest.raises(ports.InputPortError) as plain:
            input_port.InputPort("no-such-port", lambda m, d: None)
        assert "output port" not in str(plain.value)
    finally:
        sink.delete()


@pytest.mark.jack
@pytest.mark.parametrize("picked, error, message", [
    ("0", TypeError, "must return an index \\(int\\), not str"),
    (True, TypeError, "not bool"),
    (2**70, "PortError", "index 1180591620717411303424 is out of range"),
])
def test_a_port_chooser_returning_no_index_is_a_clear_error(jack_server: str, picked, error, message) -> None:
    """pybind11's cast said only 'Unable to cast Python instance of type ... to C++ type'."""
    from emolive import PortError, _core

    with pytest.raises(PortError if error == "PortError" else error, match=message):
        _core.open_output(lambda names: picked)


@pytest.mark.jack
def test_odd_port_names_are_listed_safely(jack_server: str) -> None:
    """A port named in Latin-1 bytes hid every output ('utf-8' codec can't decode); one named
    with an escape sequence recoloured the terminal in --list-ports; under an ASCII stdout a
    Japanese name emptied the listing with UnicodeEncodeError."""
    import ctypes
    import ctypes.util

    import rtmidi

    libjack = ctypes.CDLL(ctypes.util.find_library("jack") or "libjack.so.0")
    libjack.jack_client_open.restype = ctypes.c_void_p
    libjack.jack_port_register.restype = ctypes.c_void_p
    libjack.jack_port_register.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                           ctypes.c_ulong, ctypes.c_ulong]
    libjack.jack_activate.argtypes = libjack.jack_client_close.argtypes = [ctypes.c_void_p]
    latin = libjack.jack_client_open(b"caf\xe9", 1, None)  # JackNoStartServer
    assert latin, "could not open a JACK client"
    named = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="\x1b[31mred")
    try:
        assert libjack.jack_port_register(latin, b"in \xe9", b"8 bit raw midi", 0x1, 0)  # JackPortIsInput
        libjack.jack_activate(latin)
        named.open_virtual_port("日本語")
        import emolive

        names = emolive.list_ports()
        assert "caf\ufffd:in \ufffd" in names and "\x1b[31mred:日本語" in names
        env = dict(os.environ, PYTHONIOENCODING="ascii")
        listing = subprocess.run([sys.executable, "-m", "emolive.cli", "--list-ports"], capture_output=True,
                                 text=True, env=env, timeout=60)
        assert listing.returncode == 0, listing.stderr
        assert "\\x1b[31mred:\\u65e5\\u672c\\u8a9e" in listing.stdout and "\x1b" not in listing.stdout
    finally:
        named.delete()
        libjack.jack_client_close(latin)


@pytest.mark.jack
def test_list_ports_shows_outputs_and_inputs(jack_server: str) -> None:
    import emolive
    import rtmidi

    if not hasattr(emolive, "Engine"):
        pytest.skip("the engine (emolive.Engine) is not built in this checkout")
    sender = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="emolive-test-lister")
    sender.open_virtual_port("controller surface")
    synth = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name="emolive-test-synth")
    synth.open_virtual_port("synth input")
    try:
        result = subprocess.run([sys.executable, "-m", "emolive.cli", "--list-ports"], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0
        outputs, inputs = result.stdout.split("MIDI inputs", 1)
        assert "synth input" in outputs and "controller surface" not in outputs
        assert "controller surface" in inputs and "synth input" not in inputs
    finally:
        for port in (sender, synth):
            port.close_port()
            port.delete()


@pytest.mark.parametrize("argv", [["--list-ports"], ["--port", "midi"]])
@pytest.mark.parametrize("api", ["bogus", "core"])
def test_an_unknown_midi_api_is_named_not_taken_for_no_ports(argv: list[str], api: str) -> None:
    """An API RtMidi lacks here is named with those it has: "core" on Linux was said not to be
    one of "alsa, jack, core, winmm" (helper-59)."""
    pytest.importorskip("emolive.engine", reason="needs the engine")
    env = dict(os.environ, EMOLIVE_MIDI_API=api)
    result = subprocess.run([sys.executable, "-m", "emolive", *argv], capture_output=True, text=True,
                            timeout=60, env=env)
    assert f"EMOLIVE_MIDI_API={api} is not a MIDI API compiled into RtMidi here (" in result.stderr
    compiled = result.stderr.split("compiled into RtMidi here (")[1].split(")")[0]
    assert "core" not in compiled or not sys.platform.startswith("linux"), result.stderr  # CoreMIDI: macOS only
    assert result.returncode == 2 and "Traceback" not in result.stderr  # --list-ports exited 0


def test_list_ports_in_a_build_without_rtmidi_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the MIDI-system hint (start JACK, use --virtual), which cannot help such a build."""
    from emolive import cli, outputs

    monkeypatch.setattr(outputs, "rtmidi_available", lambda: False)
    listing = cli._port_listing()
    assert listing.startswith("no MIDI ports: emolive was built without RtMidi")
    assert "librtmidi-dev" in listing and "--virtual" not in listing


@pytest.mark.parametrize("api", ["jack", " JACK "])
def test_a_port_asked_for_with_no_midi_system_running_says_so(api: str) -> None:
    """With the JACK server stopped, `--port synth` said only that no port matched. (The API's
    name with spaces around it was refused by the output and taken by the input; helper-78.)"""
    pytest.importorskip("emolive.engine", reason="needs the engine")
    env = dict(os.environ, JACK_DEFAULT_SERVER=f"emolive-none-{os.getpid()}", JACK_NO_START_SERVER="1",
               EMOLIVE_MIDI_API=api)
    result = subprocess.run([sys.executable, "-m", "emolive", "--port", "synth"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 2
    assert "no MIDI output port matches 'synth': no MIDI system could be opened" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [["--port", "sink", "--no-keys"], ["--virtual", "v", "--no-keys"], ["--list-ports"],
                                  ["--control-port", "x", "--no-keys"]])
def test_a_jack_server_name_too_long_for_libjack_is_refused_with_a_reason(argv: list[str]) -> None:
    """JACK_DEFAULT_SERVER of 270 bytes or more: libjack aborted the process inside
    jack_client_open ("stack smashing detected"), and emolive died with status 134 and no word
    (helper-59)."""
    env = dict(os.environ, JACK_DEFAULT_SERVER="j" * 300)
    result = subprocess.run([sys.executable, "-m", "emolive", *argv], capture_output=True, text=True, env=env,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode in (0, 2) and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    if argv != ["--control-port", "x", "--no-keys"]:  # an input matching nothing is said first
        said = result.stdout + result.stderr
        assert "JACK_DEFAULT_SERVER is 300 bytes long; a JACK server's name is at most 255" in said, said


@pytest.mark.skipif(os.path.exists("/dev/snd/seq"), reason="needs a machine whose ALSA has no sequencer")
def test_a_midi_system_chosen_by_the_environment_that_does_not_open_is_named() -> None:
    """EMOLIVE_MIDI_API=alsa, where ALSA has no sequencer and JACK runs, asked "is the JACK
    server running?"; a JACK_DEFAULT_SERVER naming no server was not named (helper-59), nor by
    --list-ports and --virtual, which told a user with a stale one to start JACK, and a blank
    one was taken for the default server, which libjack does not look for (helper-85)."""
    pytest.importorskip("emolive.engine", reason="needs the engine")
    for env, said in (({"EMOLIVE_MIDI_API": "alsa"}, "the MIDI system EMOLIVE_MIDI_API=alsa chooses could not be "
                                                     "opened; unset it"),
                      ({"JACK_DEFAULT_SERVER": "emolive-no-such-server"},
                       "is the JACK server 'emolive-no-such-server' (JACK_DEFAULT_SERVER) running?"),
                      ({"JACK_DEFAULT_SERVER": " "}, "is the JACK server ' ' (JACK_DEFAULT_SERVER, blank: unset it")):
        for argv in (["--port", "sink", "--no-keys"], ["--list-ports"], ["--virtual", "v", "--no-keys"]):
            result = subprocess.run([sys.executable, "-m", "emolive", *argv], capture_output=True, text=True,
                                    timeout=60, env=dict(os.environ, **env), stdin=subprocess.DEVNULL)
            if argv[0] == "--virtual":  # RtMidi's own words, then the server named
                if "JACK_DEFAULT_SERVER" in env:
                    server = env["JACK_DEFAULT_SERVER"]
                    assert f"JACK_DEFAULT_SERVER names the JACK server '{server}': is that one running?" in \
                        result.stderr, result.stderr
                    assert result.returncode == 2
                continue
            assert said in result.stdout + result.stderr, (argv, result.stdout, result.stderr)
            assert "Traceback" not in result.stderr
