"""Dummy JACK servers for the tests and benchmarks: start one, wait until a client can connect,
stop it without leaking a slot of JACK's 8-slot server registry.

    with dummy_server("emolive-bench") as name:   # exported as JACK_DEFAULT_SERVER meanwhile
        ...

The server runs `jackd --no-realtime [-S] -n NAME -d dummy -r 48000 -p 64` (48 kHz, 64-frame
periods = 1.33 ms). `-S` (synchronous, the default here) makes a client that dies stall the
server for ~4 s; asynchronous mode is JACK2's own default and removes a dead client at once.

An asynchronous server does not wait for a late client: a client whose process cycle is not
scheduled within one period has its previous MIDI buffer read again, and what it queued for the
missed cycle is lost (docs/reliability.md, "Call storm"). Without real-time scheduling a 1.33 ms
period is easily missed on a busy machine, so asynchronous servers here run 1024-frame periods
(21.3 ms).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.jack_registry import reclaim_dead_servers

RATE_HZ = 48000
PERIOD_FRAMES = 64  # one period: 64 / 48000 s = 1.33 ms
ASYNC_PERIOD_FRAMES = 1024  # an asynchronous server's period: 1024 / 48000 s = 21.3 ms


class JackdError(RuntimeError):
    """jackd is missing or did not come up."""


def terminate_with_parent() -> None:
    """In the child before exec: SIGTERM when the starting process dies, even by SIGKILL
    (Linux prctl PR_SET_PDEATHSIG), so no orphaned jackd keeps a registry slot."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG


def _wait_until_usable(proc: subprocess.Popen, name: str, timeout_s: float) -> bool:
    """`jack_wait` in a subprocess (libjack talks to one server per process, and this process
    may be a client of another one); JACK_NO_START_SERVER keeps it from starting its own."""
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    result = subprocess.run(["jack_wait", "-w", "-t", str(max(1, round(timeout_s)))], env=env,
                            capture_output=True, text=True)
    return result.returncode == 0 and proc.poll() is None


def start_dummy_jackd(name: str, synchronous: bool = True, attempts: int = 5,
                      timeout_s: float = 10.0, period_frames: int | None = None) -> subprocess.Popen:
    """Start server `name` and wait until it is usable. jackd sometimes exits at start-up when
    other servers start at the same moment, so it is tried `attempts` times."""
    jackd = shutil.which("jackd")
    if jackd is None or shutil.which("jack_wait") is None:
        raise JackdError("jackd not installed (Debian package jackd2; scripts/setup.sh installs it)")
    mode = ["-S"] if synchronous else []
    if period_frames is None:
        period_frames = PERIOD_FRAMES if synchronous else ASYNC_PERIOD_FRAMES
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    for _ in range(attempts):
        reclaim_dead_servers()  # slots that killed servers (of any run) left in the registry
        proc = subprocess.Popen(
            [jackd, "--no-realtime", *mode, "-n", name, "-d", "dummy", "-r", str(RATE_HZ),
             "-p", str(period_frames)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            preexec_fn=terminate_with_parent)
        if _wait_until_usable(proc, name, timeout_s):
            return proc
        stop_jackd(proc)
    raise JackdError(f"jackd -n {name} did not come up in {attempts} attempts "
                     f"(status {proc.returncode})")


def stop_jackd(proc: subprocess.Popen) -> None:
    """SIGTERM (frees the registry slot), then SIGKILL only if it does not exit within 5 s; then
    the files the server left in /dev/shm (``remove_server_files``)."""
    stop_process(proc)
    args = list(proc.args) if isinstance(proc.args, (list, tuple)) else []
    if "-n" in args[:-1]:
        remove_server_files(str(args[args.index("-n") + 1]))


def remove_server_files(name: str, shm: Path = Path("/dev/shm")) -> int:
    """Remove the semaphores (``jack_sem.<uid>_<name>_<client>``) and sockets (``jack_<name>_*``)
    that server ``name`` and its clients leave in ``shm`` when one of them is killed or the
    server stops with clients attached; how many. For a stopped server only: the tests' server
    names are unique, so nothing of another server is touched (a name that is a prefix of
    another's, as "a" of "a_b", is never made here: names end in 8 random hex digits). Without
    this, every test run left ~20 files there, and a developer's machine gathered hundreds."""
    prefixes = (f"jack_sem.{os.getuid()}_{name}_", f"jack_{name}_")
    removed = 0
    try:
        entries = list(shm.iterdir())
    except OSError:
        return 0
    for entry in entries:
        if entry.name.startswith(prefixes):
            try:
                entry.unlink()
                removed += 1
            except OSError:  # gone already, or not ours
                pass
    return removed


def stop_process(proc: subprocess.Popen) -> None:
    """End a child still running: SIGTERM, then SIGKILL if it does not exit within 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def dummy_server(prefix: str = "emolive", synchronous: bool = True,
                 period_frames: int | None = None) -> Iterator[str]:
    """A server named `prefix-<random>`, exported as JACK_DEFAULT_SERVER while in use;
    ``period_frames`` None: the mode's usual period."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    proc = start_dummy_jackd(name, synchronous, period_frames=period_frames)
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        yield name
    finally:
        stop_jackd(proc)
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous
