"""Storm of random calls from two threads (tests/reliability/storm.py), run in a subprocess so
that a crash (use-after-free, deadlock under the timeout) fails the test instead of pytest.

CI runs 1,000 operations against the recording output and 600 against a JACK port; the long
run (docs/reliability.md) sets EMOLIVE_STORM_OPS=10000.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from midi_check import ReceiverProcess

STORM = Path(__file__).resolve().parent / "storm.py"
OPS = int(os.environ.get("EMOLIVE_STORM_OPS", "1000"))
JACK_OPS = int(os.environ.get("EMOLIVE_STORM_OPS", "600"))


@pytest.fixture(autouse=True)
def _engine_built() -> None:
    import emolive

    if not hasattr(emolive, "Engine"):
        pytest.skip("the engine (emolive.Engine) is not built in this checkout")


def run_storm(model: Path, ops: int, *extra: str) -> dict:
    proc = subprocess.run([sys.executable, str(STORM), "--model", str(model), "--ops", str(ops),
                           *extra], capture_output=True, text=True,
                          timeout=120 + ops * 0.05)
    assert proc.returncode in (0, 1), (
        f"storm process died with status {proc.returncode}\nstderr:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nstorm: {json.dumps(result)}")  # shown with -s (docs/reliability.md)
    assert result["problems"] == [], result["problems"][:20]
    assert proc.returncode == 0
    return result


def test_storm_against_the_recording_output(tiny_model_dir: Path) -> None:
    result = run_storm(tiny_model_dir, OPS)
    assert result["ops"] >= OPS * 0.9
    # The storm must have made music, else "no stuck notes" says nothing.
    assert result["notes_sent"] > 100
    assert result["recorded_note_ons"] > 0
    for op in ("play", "stop", "set_emotion", "morph", "set_bpm"):
        assert result["counts"].get(op, 0) > 0, op


@pytest.mark.jack
def test_storm_against_a_jack_port(jack_server: str, tiny_model_dir: Path) -> None:
    """Every message the engine sent during the whole storm, as an independent JACK client (its
    own process) received it: every note-on paired, nothing left sounding after the last close."""
    receiver = ReceiverProcess(f"EMOLIVE-STORM-{os.getpid()}")
    try:
        run_storm(tiny_model_dir, JACK_OPS, "--port", receiver.name)
        time.sleep(0.5)  # the last messages cross JACK's next period
        got = receiver.quit()
    finally:
        receiver.kill()
    print(f"JACK receiver: {got['describe']}")
    assert got["note_ons"] > 50, f"too few notes reached the port: {got['describe']}"
    assert got["double_strikes"] == 0 and got["left_sounding"] == 0, got["describe"]
