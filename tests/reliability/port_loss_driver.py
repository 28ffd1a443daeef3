"""Play into a MIDI port until told to go on, then report how the engine fared; for
test_port_loss.py, which removes the port (or the JACK server) in between. Each line of output
is one JSON object; the driver reads commands from stdin:

    .venv/bin/python tests/reliability/port_loss_driver.py MODEL_DIR PORT|virtual:NAME
    -> {"event": "playing", ...}        (after notes have been sent)
    <- "continue"                       (the port or server is gone now)
    -> {"event": "after_loss", ...}     (1 s later: is the clock still running? any error?)
       ("continue until reported": 1 s, then up to 2.5 s in all until the loss is reported;
        "continue until gone": up to 10 s until the error says the port disappeared)
    <- "reconnect"  (optional: the port is back) -> {"event": "reconnected", ...}, then waits
                    for one more line
    -> {"event": "stopped", ...}        (after stop(): sounding notes, time stop() took, and
                                         "sent": every 3-byte message sent since play(), hex)
       (after "stop, then wait" instead of "reconnect": waits for one more line before closing)
    -> {"event": "closed", ...}
"""

from __future__ import annotations

import json
import sys
import time


# After "continue": what the driver waits for in port_error, and for at most how long (seconds)
# from the command; plain "continue" waits for nothing (1 s).
WAIT_FOR = {
    # The engine probes a JACK server once a second, so a dead server is noticed up to ~1 s
    # (plus the probe's own time) after it went.
    "continue until reported": (lambda error: error is not None, 2.5),
    # A synchronous server stalls ~4 s for a dead client before the port is seen gone.
    "continue until gone": (lambda error: "disappeared" in (error or ""), 10.0),
}


def emit(event: str, **data: object) -> None:
    print(json.dumps({"event": event, **data}), flush=True)


def wait_for_reconnection(engine, timeout_s: float = 10.0) -> None:
    """Until the engine has reconnected (it looks every 0.5 s); then report, after a second
    of playing into the returned port."""
    started = time.monotonic()
    while engine.stats()["port_reconnects"] == 0 and time.monotonic() - started < timeout_s:
        time.sleep(0.05)
    waited = time.monotonic() - started
    notes_before = engine.stats()["notes_sent"]
    time.sleep(1.0)
    stats = engine.stats()
    emit("reconnected", waited_s=round(waited, 3), port_reconnects=stats["port_reconnects"],
         port_error=stats["port_error"], notes_since=stats["notes_sent"] - notes_before)


def main(model: str, port: str) -> int:
    from emolive import Engine

    if port.startswith("virtual:"):
        engine = Engine(model=model, virtual=port.split(":", 1)[1], bpm=300.0, seed=5, record=True)
    else:
        engine = Engine(model=model, port=port, bpm=300.0, seed=5, record=True)
    engine.play("excited")
    time.sleep(1.0)
    stats = engine.stats()
    emit("playing", step=stats["step"], notes_sent=stats["notes_sent"],
         sounding=stats["sounding"])
    seen, within_s = WAIT_FOR.get(sys.stdin.readline().strip(), (lambda _error: True, 0.0))
    step_at_loss = engine.stats()["step"]
    told = time.monotonic()
    time.sleep(1.0)
    while not seen(engine.stats()["port_error"]) and time.monotonic() - told < within_s:
        time.sleep(0.05)
    stats = engine.stats()
    emit("after_loss", steps_since=stats["step"] - step_at_loss, port_error=stats["port_error"],
         waited_s=round(time.monotonic() - told, 3), generator_error=stats.get("generator_error"),
         playing=engine.is_playing)
    command = sys.stdin.readline().strip()
    if command == "reconnect":
        wait_for_reconnection(engine)
        sys.stdin.readline()
    started = time.monotonic()
    engine.stop()
    stats = engine.stats()
    emit("stopped", stop_s=round(time.monotonic() - started, 3), sounding=stats["sounding"],
         owed=stats["owed_note_offs"],
         port_reconnects=stats["port_reconnects"], notes_sent=stats["notes_sent"],
         port_error=stats["port_error"],
         sent=[message.hex() for _, message in engine.recorded() if len(message) == 3])
    if command == "stop, then wait":
        sys.stdin.readline()
    started = time.monotonic()
    engine.close()
    emit("closed", close_s=round(time.monotonic() - started, 3),
         sounding=engine.stats()["sounding"], owed=engine.stats()["owed_note_offs"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
