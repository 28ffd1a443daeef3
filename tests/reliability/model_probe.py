"""Load a model directory with `emolive.Engine` in this process and report, as one JSON line,
either the exception raised (type, its bases, message) or, when it loads, what 4 bars of
offline generation gave. Run by test_malformed_models.py in a subprocess, so that a crash in
the native code shows up as a dead process instead of taking pytest down.

    .venv/bin/python tests/reliability/model_probe.py MODEL_DIR
"""

from __future__ import annotations

import json
import sys


def probe(model_dir: str) -> dict:
    from emolive import Engine

    try:
        engine = Engine(model=model_dir, seed=1)
    except Exception as err:  # noqa: BLE001 - reported, judged by the test
        return {"error": type(err).__name__, "bases": [c.__name__ for c in type(err).__mro__],
                "message": str(err)}
    with engine:
        midi = engine.generate(4, "happy")
    notes = [m for m in midi.tracks[0] if m.type == "note_on" and m.velocity > 0]
    return {"error": None, "note_ons": len(notes),
            "velocities": sorted({m.velocity for m in notes})[:10]}


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1])))
