"""MIDI input ports (``--control-port``, ``--sync``) through python-rtmidi: open one by name,
drain its messages on a thread of its own, follow its source as it goes and comes back (also
across a JACK server restart), and close it without the exit crash of docs/reliability.md.
Names are matched by ``emolive.ports``, as outputs are."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from emolive._quiet import quiet_c_stderr
from emolive.ports import InputPortError, _quiet_python_rtmidis_libjack, match_input_port, platform_hint

#: ``EMOLIVE_MIDI_API`` values (shared with the engine) -> python-rtmidi API names.
_API_NAMES = {"alsa": "API_LINUX_ALSA", "jack": "API_UNIX_JACK", "core": "API_MACOSX_CORE",
              "winmm": "API_WINDOWS_MM"}

#: Messages RtMidi keeps for us between two drains (a busy second of clock, notes and controllers).
QUEUE_MESSAGES = 8192

#: Called from the input's drain thread with (raw message bytes, seconds since the previous message).
MessageCallback = Callable[[bytes, float], object]  # what it returns is not used

#: Called from the input's drain thread when its source port goes (False) or is back (True).
ConnectionCallback = Callable[[bool], None]


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

    from emolive import _core

    if refused := _core.jack_server_name_refused():  # libjack aborts the process on such a name
        raise InputPortError(f"no MIDI input client could be opened: {refused}")
    if _core.too_few_descriptors():  # libjack dies in the attempt with one descriptor too few
        raise InputPortError(f"no MIDI input client could be opened: {_core.TOO_FEW_DESCRIPTORS}")
    _quiet_python_rtmidis_libjack()
    errors = []
    for api in [api] if api is not None else _rtmidi_api_candidates():
        try:
            with quiet_c_stderr(), _signal_mask_kept():
                return rtmidi.MidiIn(rtapi=api, name=client_name, queue_size_limit=QUEUE_MESSAGES)
        except (rtmidi.RtMidiError, OSError) as exc:
            errors.append(f"{rtmidi.get_api_name(api)}: {exc}")
    raise InputPortError("no MIDI input backend could be opened (" + "; ".join(errors) + "); "
                         + platform_hint())


@contextmanager
def _signal_mask_kept() -> Iterator[None]:
    """The calling thread's signal mask as it was, after the block: python-rtmidi's libjack
    blocks SIGPIPE on the thread that opens its first client, and programs started later from
    that thread inherited it (helper-63). As the engine's ``SignalMaskKept``
    (cpp/src/stop_signal_hold.hpp): SIGPIPE stays blocked where its action is the default (a
    host that set SIG_DFL: libjack's guard for writes to a dead server; helper-66)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        yield
    finally:
        now = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        if signal.SIGPIPE in now and signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL:
            before = set(before) | {signal.SIGPIPE}
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class _ServerWatch:
    """A JACK input's ``_core.JackConnections`` (its shutdown flag tells the server's end), held
    by the InputPort and by its drain thread: the thread closes the input of a port dropped
    without close(), and must leave a zombie client as close() does. ``connections`` is False
    off JACK and while none opens (then made again at each watch)."""

    def __init__(self, midi_in: Any) -> None:
        self.connections: Any = _jack_connections(midi_in)

    def server_gone(self) -> bool:
        return bool(self.connections) and self.connections.server_gone


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


def _drain(port_ref: Callable[[], InputPort | None], midi_in: Any, closing: threading.Event,
           server: _ServerWatch) -> None:
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
            if midi_in is not None and server.server_gone():  # a zombie: see _after_server_loss
                _leave_to_the_process_end(midi_in)
            elif midi_in is not None:
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
            self._server = _ServerWatch(midi_in)
            self._linked: bool | None = None  # JACK: connected to the source at the last check
            self._swap = threading.Lock()  # the MIDI input in use: the drain thread's watch, close()
            self._callback = callback
            self._on_connection = on_connection
            self._closing = threading.Event()
            self._midi_in: Any = midi_in
            # The thread holds the port weakly: one dropped without close() is collected and
            # its thread closes the input (a bound method kept it, its threads, JACK clients and
            # callback, for the life of the process: helper-51).
            self._drainer = threading.Thread(target=_drain, args=(weakref.ref(self), midi_in, self._closing, self._server),
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

    def _deliver(self, sink: Callable[..., object], *args: Any) -> None:
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
        if midi_in is None or self._server.server_gone():
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
            _leave_to_the_process_end(zombie, self._server.connections)
            self._server.connections = False
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
        self._server.connections = _jack_connections(fresh)  # if False, tried again at each watch
        self._linked = None
        return self._watch(fresh)  # opens the source if it is there

    def _set_connected(self, connected: bool) -> None:
        self.connected = connected
        if self._on_connection is not None:
            self._deliver(self._on_connection, connected)

    def _lost_connection(self, midi_in: Any) -> bool:
        """Under JACK: was this input connected to the source at the last check, and is it not
        now? (Only a change counts, so a name this check cannot match never loops.)"""
        if not self._server.connections and not self._closing.is_set():  # none opened yet
            self._server.connections = _jack_connections(midi_in)  # (close() drops it; none after)
        connections = self._server.connections
        if not connections:
            return False
        ours = ":" + self._port_name
        linked = any(name.endswith(ours) for name in connections.of(self.name))
        # Unlinked at two checks running (a second, 0.1 s later), so that a graph read while
        # JACK reorders it is not taken for a loss (a reconnection drops what is in flight).
        if self._linked is True and not linked:
            if self._closing.wait(0.1):  # closing meanwhile: nothing more to tell
                return False
            linked = any(name.endswith(ours) for name in connections.of(self.name))
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
            if self._server.server_gone():  # a zombie: see _after_server_loss
                _leave_to_the_process_end(midi_in)
            else:
                close_midi_in(midi_in, port_was_open=True)
        self._server.connections = False  # its JACK client closes now, not when this object goes

    def __enter__(self) -> InputPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
