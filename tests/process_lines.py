"""Reading a running command's output line by line, with a deadline instead of a fixed sleep."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
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


def stacks_of_hung(process: subprocess.Popen, timeout_s: float = 60.0) -> str:
    """Where a process that failed to exit is stuck, for the failure message; then kill it.

    Native stacks of every thread come from gdb where it is installed. Then SIGABRT: a Python
    started with PYTHONFAULTHANDLER=1 writes every thread's Python stack to its stderr before it
    dies, which the caller reads from the process's stderr pipe.
    """
    report = ""
    if shutil.which("gdb"):
        try:
            gdb = ["gdb", "-p", str(process.pid), "-batch", "-ex", "thread apply all bt"]
            report = subprocess.run(gdb, capture_output=True, text=True, timeout=timeout_s).stdout
        except subprocess.TimeoutExpired:
            report = "gdb did not answer"
    if process.poll() is None:
        process.send_signal(signal.SIGABRT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return report


def wait_or_fail(process: subprocess.Popen, timeout_s: float, after: str) -> int:
    """The exit status of ``process`` within ``timeout_s`` seconds; otherwise fail the test with
    where it is stuck (:func:`stacks_of_hung`, which also kills it). ``after``: what it was
    waiting for, for the message (``"SIGINT"``)."""
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        native = stacks_of_hung(process)
        stderr = process.stderr.read() if process.stderr else ""
        if isinstance(stderr, bytes):
            stderr = stderr.decode("utf-8", "replace")
        raise AssertionError(f"no exit {timeout_s} s after {after}\nstderr (Python stacks):\n"
                             f"{stderr}\nnative stacks:\n{native}") from None


def with_stdout_closed(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run `emolive ARGV` with the read end of its stdout pipe closed before it writes, as
    `emolive ... | head -1` leaves it once head has exited."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "emolive.cli", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
