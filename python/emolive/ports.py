"""MIDI port names for the command line: matching, listing, and what to say when none fits.

Output ports (where notes go) are opened by the C++ engine; this module only lists and matches
them through ``emolive.list_ports`` / ``emolive.find_port`` so the CLI and the engine agree.
Input ports (``--control-port`` for controllers, ``--sync`` for an external clock) are opened by
``emolive.input_port`` with python-rtmidi. Both follow one matching rule, the one sendmidi uses:
exact name, then case-insensitive substring, then index.
"""

from __future__ import annotations

import numbers
import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emolive.arguments import Whole


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
    # Not --virtual: a virtual port needs the MIDI system too (helper-64: "use --virtual", then
    # --virtual failed with "JACK server not running?").
    return ("on Linux, start JACK (e.g. `jackd -d dummy`) or load ALSA's sequencer (snd-seq); then "
            "--virtual opens a port other programs connect to")


def virtual_ports_supported() -> bool:
    """Windows MIDI has no virtual ports (RtMidi's WinMM API cannot open them)."""
    return not sys.platform.startswith("win")


def port_matches(names: Sequence[str], query: str | Whole) -> list[int]:
    """The indices of ``names`` that ``query`` names: one, none, or several for an ambiguous
    substring. An integer (numpy's too) is an index, never a piece of a name; text matches an
    exact name, then a case-insensitive substring, then an index in ASCII digits ("²" passes
    ``str.isdigit()`` but is no index). Shared by the output (engine) and the input ports."""
    if isinstance(query, numbers.Integral):
        return [int(query)] if 0 <= int(query) < len(names) else []
    text = from_argv(str(query)).strip()  # a str here
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
