"""A JACK MIDI receiver in its own process, for tests that make the receiver disappear: it opens
a python-rtmidi virtual input port, prints "ready", and on any line from stdin prints the number
of messages it got (JSON) and leaves abruptly, as a receiving application that quits would.
(Closing a python-rtmidi JACK port inside the test process crashed it now and then, in libjack's
threads after the port was gone; a separate process keeps that out of pytest.)

    .venv/bin/python tests/reliability/receiver_proc.py PORT_NAME
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from midi_check import JackSink, check_pairing  # noqa: E402


def main(name: str) -> None:
    deadline = time.monotonic() + 15.0
    while True:
        try:
            sink = JackSink(name)
            break
        except Exception:  # noqa: BLE001 - the server is still starting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    print("ready", flush=True)
    sys.stdin.readline()
    pairing = check_pairing(sink.snapshot())
    print(json.dumps({"note_ons": pairing.note_ons, "note_offs": pairing.note_offs}), flush=True)
    os._exit(0)  # no orderly JACK shutdown: the port vanishes with the process


if __name__ == "__main__":
    main(sys.argv[1])
