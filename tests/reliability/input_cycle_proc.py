"""Opens and closes ``emolive.input_port.InputPort`` on a busy JACK source many times, then exits.

    .venv/bin/python tests/reliability/input_cycle_proc.py SOURCE_PORT CYCLES

Each cycle opens the input (its own JACK client), lets messages arrive for 0-30 ms (random,
seeded), and closes it the way `emolive` does at exit. Prints "done CYCLES MESSAGES" at the end;
a crash (e.g. SIGSEGV, see docs/reliability.md, "Exit crash") or a hang is the failure.
"""

from __future__ import annotations

import faulthandler
import random
import sys
import time

from emolive.input_port import InputPort


def main(source: str, cycles: int) -> int:
    faulthandler.enable()
    rng = random.Random(1)
    received = [0]

    def count(_message: bytes, _delta_s: float) -> None:
        received[0] += 1

    for _ in range(cycles):
        with InputPort(source, count, client_name="emolive-cycle"):
            time.sleep(rng.uniform(0.0, 0.03))
    print(f"done {cycles} {received[0]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
