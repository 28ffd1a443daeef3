"""Reading a running command's output line by line, with a deadline instead of a fixed sleep."""

from __future__ import annotations

import select
import subprocess
import time


def read_until(process: subprocess.Popen, prefix: str, timeout_s: float, seen: list[str]) -> bool:
    """Read `process`'s stdout lines (text mode) into `seen` until one starts with `prefix`.

    True when such a line came; False when `timeout_s` seconds passed or the process ended first.
    """
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if select.select([process.stdout], [], [], 0.5)[0]:
            line = process.stdout.readline()
            seen.append(line)
            if line.startswith(prefix):
                return True
    return False
