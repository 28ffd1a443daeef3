"""MIDI ports for the command line: output ports through the engine, input ports through python-rtmidi.

Output ports (where notes go) are opened by the C++ engine; this module only lists and matches
them through ``emolive.list_ports`` / ``emolive.find_port`` so the CLI and the engine agree.
Input ports (``--control-port`` for controllers, ``--sync`` for an external clock) are opened here
with python-rtmidi. Both follow one matching rule, the one sendmidi uses: exact name, then
case-insensitive substring, then index.
"""

from __future__ import annotations

import numbers
import os
import re
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from emolive._quiet import quiet_c_stderr

#: ``EMOLIVE_MIDI_API`` values (shared with the engine) -> python-rtmidi API names.
_API_NAMES = {"alsa": "API_LINUX_ALSA", "jack": "API_UNIX_JACK", "core": "API_MACOSX_CORE",
              "winmm": "API_WINDOWS_MM"}

#: Messages RtMidi keeps for us between two drains (a busy second of clock, notes and controllers).
QUEUE_MESSAGES = 8192

#: Called from the input's drain thread with (raw message bytes, seconds since the previous message).
MessageCallback = Callable[[bytes, float], None]

#: Called from the input's drain thread when its source port goes (False) or is back (True).
ConnectionCallback = Callable[[bool], None]


class InputPortError(ValueError):
    """An input port that cannot be found or opened; the message lists the ports there are."""


#: The advice on Linux when the MIDI system runs but the wanted port is not there.
START_THE_RECEIVER = ("start the synth or DAW that should play the notes (its MIDI input then "
                      "shows in emolive --list-ports)")


def platform_hint(midi_system_runs: bool = False) -> str:
    """What a user on this platform does to get a MIDI port a DAW can read from.
    ``midi_system_runs``: a MIDI client opens (a JACK server runs), so on Linux the advice is
    to start the receiving program, not the MIDI system."""
    if sys.platform == "darwin":
        return ("on macOS, enable the IAC Driver in Audio MIDI Setup (Window > Show MIDI Studio, "
                "double-click IAC Driver, tick 'Device is online'), then use --port \"IAC Driver\"")
    if sys.platform.startswith("win"):
        return ("on Windows, install a loopback MIDI driver such as loopMIDI, create a port in it, "
                "then use --port loopMIDI")
    if midi_system_runs:
        return f"on Linux, {START_THE_RECEIVER}, or use --virtual to open a port other programs connect to"
    return ("on Linux, start JACK (e.g. `jackd -d dummy`) or load ALSA's sequencer (snd-seq), "
            "or use --virtual to open a port other programs connect to")


def virtual_ports_supported() -> bool:
    """Windows MIDI has no virtual ports (RtMidi's WinMM API cannot open them)."""
    return not sys.platform.startswith("win")


def port_matches(names: Sequence[str], query: str | int) -> list[int]:
    """The indices of ``names`` that ``query`` names: one, none, or several for an ambiguous
    substring. An integer (numpy's too) is an index, never a piece of a name; text matches an
    exact name, then a case-insensitive substring, then an index in ASCII digits ("²" passes
    ``str.isdigit()`` but is no index). Shared by the output (engine) and the input ports."""
    if isinstance(query, numbers.Integral):
        return [int(query)] if 0 <= query < len(names) else []
    text = from_argv(query).strip()
    if text in names:
        return [list(names).index(text)]
    hits = [i for i, name in enumerate(names) if text.lower() in name.lower()] if text else []
    if hits:
        return hits
    if re.fullmatch(r"-?[0-9]+", text) and 0 <= int(text) < len(names):
        return [int(text)]
    return []


def from_argv(text: str) -> str:
    """A port name with the bytes Python escaped as lone surrogates read as UTF-8, as MIDI
    port names are: under an ASCII locale without UTF-8 mode (``LC_ALL=C PYTHONUTF8=0``) a
    non-ASCII ``--port`` or ``--virtual`` arrives in ``sys.argv`` as ``\\udcXX`` escapes, which
    matched no port and could not be encoded for a virtual one."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # other lone surrogates beside them (only through the API)
        raw = text.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def check_query_type(query: object) -> None:
    """TypeError unless ``query`` is a port's name or index (inputs and outputs alike)."""
    if isinstance(query, bool) or not isinstance(query, (str, numbers.Integral)):
        raise TypeError(f"a port is a name or an index, not {type(query).__name__}")


def match_port(names: Sequence[str], query: str | int) -> int:
    """Index of the input port ``query`` names (:func:`port_matches`).

    Raises ``InputPortError`` (listing ``names``) when nothing matches or a substring is ambiguous.
    """
    check_query_type(query)
    hits = port_matches(names, query)
    text = str(query).strip()
    if len(hits) > 1:
        raise InputPortError(f"port {text!r} is ambiguous: it matches "
                             f"{', '.join(repr(names[i]) for i in hits)}; {describe_ports(names)}")
    if not hits:
        advice = "" if names else "; " + START_THE_SENDER
        raise InputPortError(f"no MIDI input port matches {text!r}; {describe_ports(names, 'MIDI input')}"
                             + advice)
    return hits[0]


#: What to do when no input port is listed: inputs are the ports of other programs and devices.
START_THE_SENDER = ("connect the controller, or start the program that sends MIDI (a DAW's MIDI "
                    "output, a clock master) first")


def match_input_port(names: Sequence[str], query: str | int) -> int:
    """:func:`match_port` for an input: when ``query`` names none of the inputs ``names`` but
    an output port, the error says so (a port for notes, not one that sends MIDI to emolive)."""
    try:
        return match_port(names, query)
    except InputPortError as err:
        text = str(query).strip()
        # An index, or a name no output port has (port_matches: the outputs' own rule).
        if not isinstance(query, str) or not text or text.isdigit() or not port_matches(output_port_names(), text):
            raise
        raise InputPortError(f"{err}; {text!r} is an output port (where notes go): an input "
                             "reads from a port that sends MIDI to emolive") from None


def shown(name: str) -> str:
    """A port name as a terminal may print it: its control characters as escapes (``\\x1b``,
    ``\\n``), so that a port named with an escape sequence cannot recolour or retitle the
    terminal, nor a newline split the listing."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


def describe_ports(names: Sequence[str], kind: str = "MIDI") -> str:
    """``available ports: 0: 'A', 1: 'B'`` or a sentence saying there are none (of ``kind``)."""
    if not names:
        return f"no {kind} ports are available"
    return "available ports: " + ", ".join(f"{i}: {name!r}" for i, name in enumerate(names))


def quiet_libjack() -> None:
    """libjack's own stderr lines (a dozen a second while a lost server is checked for) off for
    the rest of the process: the command reports JACK's state itself. EMOLIVE_JACK_MESSAGES=1
    keeps them, for debugging a JACK set-up."""
    global _libjack_quiet
    if os.environ.get("EMOLIVE_JACK_MESSAGES", "") not in ("", "0"):
        return
    from emolive import _core

    _core.silence_libjack_messages()
    _libjack_quiet = True


_libjack_quiet = False  # quiet_libjack() was called: python-rtmidi's own libjack is silenced too
_libjack_copy_quiet = False  # ... and that was done


def _quiet_python_rtmidis_libjack() -> None:
    """python-rtmidi's wheel carries a libjack of its own (``python_rtmidi*/libjack-*.so``, its
    own error and info functions), which ``silence_libjack_messages`` does not reach: an input's
    client printed some 500 lines in 25 s after a server loss (helper-55). Once rtmidi is loaded."""
    global _libjack_copy_quiet
    if not _libjack_quiet or _libjack_copy_quiet:
        return
    _libjack_copy_quiet = True  # once: it is loaded once
    from pathlib import Path

    import rtmidi

    try:
        from emolive import _core
    except ImportError:  # a build without the engine: its messages stay
        return
    for library in Path(rtmidi.__file__).parent.parent.glob("python_rtmidi*/libjack*.so*"):
        _core.silence_libjack_copy(str(library))


def output_port_names() -> list[str]:
    """Output port names as the engine sees them (empty when there is no MIDI backend)."""
    from emolive import list_ports

    return list(list_ports())


def _rtmidi_api_candidates() -> list[int]:
    import rtmidi

    wanted = os.environ.get("EMOLIVE_MIDI_API", "").strip().lower()
    if wanted:
        if wanted not in _API_NAMES:
            raise InputPortError(f"EMOLIVE_MIDI_API={wanted!r} is not one of {', '.join(_API_NAMES)}")
        return [getattr(rtmidi, _API_NAMES[wanted])]
    return list(rtmidi.get_compiled_api())


def _new_midi_in(client_name: str, api: int | None = None) -> Any:
    """A python-rtmidi ``MidiIn`` on ``api``, or on the first API that opens (these machines:
    JACK, no ALSA)."""
    import rtmidi

    _quiet_python_rtmidis_libjack()
    errors = []
    for api in [api] if api is not None else _rtmidi_api_candidates():
        try:
            with quiet_c_stderr():
                return rtmidi.MidiIn(rtapi=api, name=client_name, queue_size_limit=QUEUE_MESSAGES)
        except (rtmidi.RtMidiError, OSError) as exc:
            errors.append(f"{rtmidi.get_api_name(api)}: {exc}")
    raise InputPortError("no MIDI input backend could be opened (" + "; ".join(errors) + "); "
                         + platform_hint())


def _jack_connections(midi_in: Any) -> Any:
    """A ``_core.JackConnections`` when ``midi_in`` is on JACK and one opens; else False."""
    import rtmidi

    if midi_in.get_current_api() != rtmidi.API_UNIX_JACK:
        return False
    from emolive import _core

    connections = _core.JackConnections()
    return connections if connections.available else False


def input_port_names() -> list[str]:
    """Input port names (sources a controller or a clock can come from); empty without a backend."""
    try:
        midi_in = _new_midi_in(f"emolive-list-{os.getpid()}")  # per process: see client_names.hpp
    except InputPortError:
        return []
    try:
        return list(midi_in.get_ports())
    finally:
        close_midi_in(midi_in)


#: Between closing an input port and closing its JACK client (seconds): longer than a JACK cycle
#: still in flight (one period: 1.3 ms at 64 frames / 48 kHz, 43 ms at 2048 / 48 kHz), with a
#: margin for a process thread descheduled on a busy machine. See ``close_midi_in``.
SETTLE_S = 0.1


def close_midi_in(midi_in: Any, port_was_open: bool = False) -> None:
    """Close a python-rtmidi input: its port first, then (after ``SETTLE_S``) its client.

    Why this order and the pause (docs/reliability.md, "Exit crash"): closing a JACK client
    (``delete()`` -> ``jack_client_close`` -> ``jack_deactivate``) stops the client's process
    thread with ``pthread_cancel`` in *asynchronous* mode (JACK2's JackPosixThread), so the thread
    dies wherever it is. RtMidi's JACK input callback allocates (it copies each message into
    ``std::vector``s) while a message is being queued; cancelled inside ``malloc``, the thread
    can leave the heap locked or half-updated, and the process hang or crash later (at exit,
    say). ``close_port()`` unregisters the port and RtMidi's callback returns at once from the
    next cycle on (it does nothing without a port), so after a cycle's time the thread is
    cancelled while idle, never while allocating.
    """
    if port_was_open:
        midi_in.close_port()
        time.sleep(SETTLE_S)
    midi_in.delete()


#: Status bytes of input messages nobody here uses: system exclusive (0xF0) and active sensing
#: (0xFE). They are dropped after their time is counted (InputPort._drain_once).
UNUSED_STATUS = frozenset({0xF0, 0xFE})


def _drain(port_ref: Callable[[], InputPort | None], midi_in: Any, closing: threading.Event) -> None:
    """An InputPort's thread: drains RtMidi's queue and watches the source. It holds the port
    only for one pass, so a port dropped without close() is collected; the thread then closes
    its MIDI input itself. ``closing`` is checked before every get_message(): close() waits.
    ``midi_in`` is the one the port's watch last chose: a new one after a JACK server restart,
    None while no server answers."""
    unused_s = 0.0
    watch_at = time.monotonic() + InputPort.WATCH_S
    while not closing.is_set():
        port = port_ref()
        if port is None:  # dropped without close()
            if midi_in is not None:
                close_midi_in(midi_in, port_was_open=True)
            return
        if time.monotonic() >= watch_at:
            midi_in = port._watch(midi_in)  # may outlast close()'s JOIN_S (a slow on_connection)
            watch_at = time.monotonic() + InputPort.WATCH_S
            if closing.is_set():  # closed meanwhile: midi_in may be deleted already
                return
        had_one = False
        if midi_in is not None:
            had_one, unused_s = port._drain_once(midi_in, unused_s)
        del port
        if not had_one:
            closing.wait(InputPort.POLL_S)


#: Clients of a JACK server that has gone (zombies), never closed: libjack crashes closing them
#: once a new server runs. Their references are leaked on purpose (Py_IncRef), so that not even
#: the interpreter's teardown deallocates them (python-rtmidi's dealloc closes the client).
def _leave_to_the_process_end(*clients: Any) -> None:
    import ctypes

    for client in clients:
        if client is not None:
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(client))


class InputPort:
    """One open MIDI input; ``callback`` gets every message, clock included, but sysex and
    active sensing, with the seconds since the previous message delivered.

    Messages wait in RtMidi's own queue, filled by the MIDI system's thread without Python, and
    a thread of ours drains it (within about a millisecond) and calls ``callback`` with the
    message and the seconds since the previous one, as stamped on arrival. (A Python callback
    inside JACK's process thread makes JACK drop input whenever the interpreter is busy.)
    ``callback`` runs on that thread: keep it short and thread-safe. Keep a reference to the
    port (or use ``with``): one dropped without ``close()`` is closed once it is collected. An exception it raises
    does not end the input: the first is printed with its traceback, every one is counted in
    ``callback_errors``, and delivery goes on with the next message.

    The same thread checks every ``WATCH_S`` that the source port is still there. When it goes
    (a device unplugged, a DAW quit), ``on_connection(False)`` is called; when a port of that
    name is back, the input connects to it again and ``on_connection(True)`` is called.
    """

    POLL_S = 0.001  # how long the drain thread sleeps when the queue is empty (seconds)

    JOIN_S = 2.0  # how long close() waits for a callback in progress (seconds)

    WATCH_S = 0.5  # how often the source port's presence is checked (seconds)

    def __init__(self, query: str | int, callback: MessageCallback, client_name: str = "emolive",
                 on_connection: ConnectionCallback | None = None) -> None:
        for name, function in (("callback", callback), ("on_connection", on_connection)):
            if function is not None and not callable(function):
                raise TypeError(f"{name} must be callable, not {type(function).__name__}")
        midi_in = _new_midi_in(client_name)
        port_open = False
        try:  # from here on, a failure closes the client: none is left to the interpreter's exit
            names = list(midi_in.get_ports())
            self.index = match_input_port(names, query)
            self.name = names[self.index]
            # Nothing is filtered by RtMidi: its JACK input restarts a message's delta time at a
            # message it then drops, so ignored active sensing or sysex made the clock's time
            # run short (the engine ran ahead of the master). _drain_once drops them and keeps time.
            midi_in.ignore_types(sysex=False, timing=False, active_sense=False)
            self._port_name = f"{client_name} in"
            midi_in.open_port(self.index, name=self._port_name)
            port_open = True
            self.connected = True  # the source port is there (as last checked)
            self.callback_errors = 0  # exceptions raised by callback or on_connection
            self._client_name = client_name
            self._api = midi_in.get_current_api()  # a new client after a server loss: the same API
            # _core.JackConnections under JACK, from the start: it also tells a server's end.
            self._connections: Any = _jack_connections(midi_in)
            self._linked: bool | None = None  # JACK: connected to the source at the last check
            self._swap = threading.Lock()  # the MIDI input in use: the drain thread's watch, close()
            self._callback = callback
            self._on_connection = on_connection
            self._closing = threading.Event()
            self._midi_in: Any = midi_in
            # The thread holds the port weakly: one dropped without close() is collected and
            # its thread closes the input (a bound method kept it, its threads, JACK clients and
            # callback, for the life of the process: helper-51).
            self._drainer = threading.Thread(target=_drain, args=(weakref.ref(self), midi_in, self._closing),
                                             name=f"emolive-in {self.name}", daemon=True)
            self._drainer.start()
        except BaseException:
            close_midi_in(midi_in, port_was_open=port_open)
            raise

    def _drain_once(self, midi_in: Any, unused_s: float) -> tuple[bool, float]:
        """One message from RtMidi's queue delivered or dropped: (whether there was one, the
        time of messages not delivered, sysex and active sensing, since the last one)."""
        event = midi_in.get_message()
        if event is None:
            return False, unused_s
        message, delta_s = event
        if not message or message[0] in UNUSED_STATUS:
            return True, unused_s + float(delta_s)
        self._deliver(self._callback, bytes(message), unused_s + float(delta_s))
        return True, 0.0

    def _deliver(self, sink: Callable[..., None], *args: Any) -> None:
        try:
            sink(*args)
        except Exception:
            if self._closing.is_set():  # e.g. the engine closed meanwhile: nothing to deliver to
                return
            self.callback_errors += 1
            if self.callback_errors == 1:  # once: a clock's 48 messages a second would flood
                print(f"emolive: the callback of input {self.name!r} raised (shown once; the input "
                      "goes on, and InputPort.callback_errors counts these):", file=sys.stderr)
                traceback.print_exc()

    def _watch(self, midi_in: Any) -> Any:
        """Is the source port still there, and (JACK) still connected to this input; if it was
        gone, is it back (then connect again)? Returns the MIDI input to drain from now on."""
        if midi_in is None or (self._connections and self._connections.server_gone):
            return self._after_server_loss(midi_in)
        try:
            names = list(midi_in.get_ports())
        except Exception:  # noqa: BLE001 - the MIDI system is gone too: the port is not there
            names = []
        if self.connected and self.name in names and self._lost_connection(midi_in):
            # Closed and opened again since the last check (a program restarted at once): the
            # name is there, the connection is not. Said as a loss and a return.
            self._set_connected(False)
        if self.connected and self.name not in names:
            self._set_connected(False)
        elif not self.connected and self.name in names and not self._closing.is_set():
            # (on_connection may have run past close()'s wait: midi_in is then deleted)
            try:
                midi_in.close_port()
                midi_in.open_port(names.index(self.name), name=self._port_name)
            except Exception:  # noqa: BLE001 - gone again, or the MIDI system refuses: next time
                return midi_in
            self.index = names.index(self.name)
            self._linked = None  # judged afresh at the next check
            self._set_connected(True)
        return midi_in

    def _after_server_loss(self, zombie: Any) -> Any:
        """The JACK server went away: this input's clients are the old server's zombies (they
        list its ports still, see nothing of a new server, and libjack crashes closing them
        once one runs: a segmentation fault as the engine closed, and an input that never came
        back, helper-55). They are left to the process's end, and a new client is made once a
        server answers; the source is then looked for as after any loss. Returns the input to
        drain: the new one, or None while no server answers."""
        if self.connected:
            self._set_connected(False)
        if zombie is not None:
            with self._swap:
                if self._midi_in is zombie:
                    self._midi_in = None
            _leave_to_the_process_end(zombie, self._connections)
            self._connections = None
        try:
            fresh = _new_midi_in(self._client_name, self._api)
        except InputPortError:
            return None  # no server yet
        fresh.ignore_types(sysex=False, timing=False, active_sense=False)  # as __init__ does
        with self._swap:
            if self._closing.is_set():  # close() is under way: it closes what it finds, not this
                close_midi_in(fresh)
                return None
            self._midi_in = fresh
        self._connections = _jack_connections(fresh)
        self._linked = None
        return self._watch(fresh)  # opens the source if it is there

    def _set_connected(self, connected: bool) -> None:
        self.connected = connected
        if self._on_connection is not None:
            self._deliver(self._on_connection, connected)

    def _lost_connection(self, midi_in: Any) -> bool:
        """Under JACK: was this input connected to the source at the last check, and is it not
        now? (Only a change counts, so a name this check cannot match never loops.)"""
        if self._connections is None:
            self._connections = _jack_connections(midi_in)
        if not self._connections:
            return False
        ours = ":" + self._port_name
        linked = any(name.endswith(ours) for name in self._connections.of(self.name))
        # Unlinked at two checks running (a second, 0.1 s later), so that a graph read while
        # JACK reorders it is not taken for a loss (a reconnection drops what is in flight).
        if self._linked is True and not linked:
            if self._closing.wait(0.1):  # closing meanwhile: nothing more to tell
                return False
            linked = any(name.endswith(ours) for name in self._connections.of(self.name))
        lost = self._linked is True and not linked
        self._linked = linked
        return lost

    def close(self) -> None:
        """Stop delivering, then close the port and its client (see ``close_midi_in``); idempotent.

        Returns once the drain thread has stopped calling python-rtmidi (or after ``JOIN_S`` if a
        callback is stuck: that thread checks the flag before its next ``get_message()``).
        """
        if self._closing.is_set():
            return
        self._closing.set()
        self._drainer.join(timeout=self.JOIN_S)
        with self._swap:  # the watch puts no new input here once closing is set
            midi_in, self._midi_in = self._midi_in, None
        if midi_in is not None:
            if self._connections and self._connections.server_gone:  # a zombie: see _after_server_loss
                _leave_to_the_process_end(midi_in)
            else:
                close_midi_in(midi_in, port_was_open=True)
        self._connections = None  # its JACK client closes now, not when this object goes

    def __enter__(self) -> InputPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
