"""A JACK MIDI receiver in its own process. Closing a python-rtmidi JACK port inside the test
process crashed it now and then (libjack's threads, after the port was gone); in a separate
process such a crash cannot take pytest down, and a receiver can also vanish abruptly, as a
receiving application that quits would.

    .venv/bin/python tests/reliability/receiver_proc.py PORT_NAME

Prints "ready" once the port is open, then answers each command read from stdin with one JSON
line (a pairing report of everything received since the last "clear"):
    "report"  -> {"note_ons", "note_offs", "double_strikes", "left_sounding", "messages"}
    "clear"   -> forget what was received, then a report
    "quit"    -> a report whose "last" holds every message received (not only the last 12),
                 then leave at once (no orderly JACK shutdown)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.*
from midi_check import check_pairing  # noqa: E402

from tests.midi_sink import CallbackReceiver  # noqa: E402


def report(sink: CallbackReceiver, everything: bool = False) -> str:
    messages = sink.snapshot()
    pairing = check_pairing(messages)
    return json.dumps({"note_ons": pairing.note_ons, "note_offs": pairing.note_offs,
                       "double_strikes": len(pairing.double_strikes),
                       "left_sounding": len(pairing.left_sounding),
                       "describe": pairing.describe(), "messages": len(messages),
                       "last": [m.hex() for m in (messages if everything else messages[-12:])]})


def open_sink(name: str, timeout_s: float = 15.0) -> CallbackReceiver:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return CallbackReceiver(name)
        except Exception:  # noqa: BLE001 - the server is still starting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main(name: str) -> None:
    sink = open_sink(name)
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "clear":
            sink.clear()
        print(report(sink, everything=command == "quit"), flush=True)
        if command == "quit":
            break
    os._exit(0)  # no orderly JACK shutdown: the port vanishes with the process


if __name__ == "__main__":
    main(sys.argv[1])
