"""MIDI output ports (where notes go): listed, matched and opened through the engine's RtMidi
client, so that the command line and ``Engine`` agree on names. The matching rule is the one
sendmidi uses (:func:`emolive.ports.port_matches`): exact name, then case-insensitive
substring, then index. Input ports are in :mod:`emolive.ports`.
"""

from __future__ import annotations

import numbers
import os
import unicodedata
from typing import Any

from emolive import _core
from emolive._quiet import quiet_c_stderr
from emolive.arguments import Whole
from emolive.ports import (START_THE_RECEIVER, check_query_type, describe_ports, from_argv, port_matches,
                           virtual_ports_supported)

PortError = _core.PortError


def checked_virtual_name(virtual: object) -> str:
    """A virtual port's name, stripped; TypeError, ValueError, or PortError on Windows, for one
    that cannot be opened as asked."""
    if not isinstance(virtual, str):
        raise TypeError(f"virtual must be a port name, not {type(virtual).__name__}")
    virtual = from_argv(virtual)
    if "\0" in virtual:  # C strings end there: the error was cut short
        raise ValueError(f"a virtual port's name cannot contain a NUL character, got {virtual!r}")
    if any(unicodedata.category(c) == "Cc" for c in virtual):
        # other programs' port lists print it raw: an escape recoloured their terminal (helper-78)
        raise ValueError(f"a virtual port's name cannot contain control characters, got {virtual!r}")
    if not virtual.strip():
        raise ValueError("a virtual port needs a name that is not empty")
    if ":" in virtual:  # JACK's separator: "a:b" became port "a:b:a:b"
        raise ValueError(f"a virtual port's name cannot contain ':' (MIDI systems such as JACK write "
                         f"client:port with it), got {virtual!r}")
    name = virtual.strip()
    if len(name.encode()) > _core.MAX_VIRTUAL_NAME_BYTES:
        raise ValueError(f"a virtual port's name is at most {_core.MAX_VIRTUAL_NAME_BYTES} bytes "
                         f"(it names its MIDI client too), got {len(name.encode())}")
    if not virtual_ports_supported():
        raise PortError("virtual MIDI ports are not supported on Windows; install a loopback "
                        "driver such as loopMIDI and pass its name as port=...")
    return name


def list_ports() -> list[str]:
    """Names of the MIDI output ports (RtMidi: JACK/ALSA/CoreMIDI/WinMM); empty without a backend.

    The API is ``EMOLIVE_MIDI_API`` (alsa|jack|core|winmm) if set, else the first that opens.
    """
    with quiet_c_stderr():
        return list(_core.list_ports())


def find_port(query: str | Whole) -> int:
    """Index of an output port: exact name, then case-insensitive substring, then index (a
    string of digits); an ``int`` is taken as the index itself.

    Raises ``PortError`` listing the available ports (and how to get one) when nothing matches
    or a substring matches several ports.
    """
    check_port_query(query)
    names = list_ports()
    if not names and not midi_system_opens():
        wanted = f"{query.strip()!r}" if isinstance(query, str) else f"index {query}"
        if refused := _core.jack_server_name_refused():
            raise PortError(f"no MIDI output port matches {wanted}: {refused}")
        if _core.descriptors_were_short():  # as the check that refused decided; not a new count
            raise PortError(f"no MIDI output port matches {wanted}: no MIDI client could be opened: "
                            f"{_core.TOO_FEW_DESCRIPTORS}")
        raise PortError(f"no MIDI output port matches {wanted}: {why_no_midi_system()}")
    return match_output_port(names, query)[0]


def why_no_midi_system() -> str:
    """Why no MIDI system opens, where no other reason was found (the server's name, the
    descriptors): the system EMOLIVE_MIDI_API chose, or the JACK server by the name asked for."""
    chosen = os.environ.get("EMOLIVE_MIDI_API", "").strip()
    if chosen and chosen.lower() != "jack":  # it said "is the JACK server running?" with JACK running and ALSA chosen (helper-59)
        return (f"the MIDI system EMOLIVE_MIDI_API={chosen} chooses could not be opened; unset it to use "
                f"the first that opens. {_core.port_setup_hint()}")
    server = os.environ.get("JACK_DEFAULT_SERVER")  # libjack's rule: set, even blank, it names the server
    named = "the JACK server" if server is None else (
        f"the JACK server {server!r} (JACK_DEFAULT_SERVER{'' if server.strip() else ', blank: unset it for the default server'})")
    return f"no MIDI system could be opened (is {named} running?). {_core.port_setup_hint()}"


def midi_system_opens() -> bool:
    """Whether RtMidi opens a client on some MIDI system (JACK, ALSA, ...): with none, "no port
    matches" would hide that nothing runs to have ports (a stopped JACK server)."""
    with quiet_c_stderr():
        return bool(_core.midi_api())


#: Why no port can be opened in a build without RtMidi (PortError, and `emolive --list-ports`).
NO_RTMIDI = ("emolive was built without RtMidi, so no MIDI port can be opened; install "
             "librtmidi-dev (Debian/Ubuntu) or rtmidi (Homebrew) and reinstall emolive")


def rtmidi_available() -> bool:
    """Whether this build can open MIDI ports (it was built with RtMidi)."""
    return bool(_core.rtmidi_available())


def check_port_query(query: object) -> None:
    check_query_type(query)
    if not _core.rtmidi_available():
        raise PortError(NO_RTMIDI)


def open_output(port: str | Whole | None, virtual: str | None) -> tuple[Any, str | None]:
    """The engine's ``_core.Output`` and the name of its port: a virtual port, the output
    port ``port`` matches (listed and opened by one MIDI client), or no output."""
    if virtual is not None or port is None:
        with quiet_c_stderr():
            return _core.open_output(virtual_name=virtual or ""), virtual
    chosen: dict[str, Any] = {}

    def choose(names: list[str]) -> int:
        try:
            chosen["index"], chosen["name"] = match_output_port(names, port)
        except PortError as err:  # raised below, once the client is closed
            chosen["error"] = err
            return -1
        return int(chosen["index"])

    with quiet_c_stderr():
        output = _core.open_output(choose)
    if output is None:
        raise chosen["error"]
    return output, chosen["name"]


#: How to get a port when the MIDI system runs (its ports were listed), for every platform: an
#: API error is read on other machines than the one that raised it. (``_core.port_setup_hint``
#: says to start the MIDI system itself: for when none opens.)
PORT_HINT = ("On macOS enable the IAC Driver in Audio MIDI Setup (its ports are named 'IAC Driver "
             f"Bus 1'); on Windows install a loopback driver such as loopMIDI; on Linux {START_THE_RECEIVER}; "
             "or open a virtual port (--virtual; virtual=... in Python).")


def match_output_port(names: list[str], query: str | Whole) -> tuple[int, str]:
    """``find_port``'s (index, name) among ``names`` (emolive.ports.port_matches); the output
    side of emolive.ports.match_port, which matches inputs."""
    hits = port_matches(names, query)
    described = describe_ports(names, "MIDI output")
    if len(hits) == 1:
        return hits[0], names[hits[0]]
    if isinstance(query, numbers.Integral):  # an index matches one port or none
        raise PortError(f"MIDI output port index {query} is out of range; {described}. {PORT_HINT}")
    text = str(query).strip()  # a str here
    if hits:
        raise PortError(f"MIDI port {text!r} is ambiguous: it matches "
                        f"{', '.join(repr(names[i]) for i in hits)}; {described}")
    raise PortError(f"no MIDI output port matches {text!r}; {described}. {PORT_HINT}")
