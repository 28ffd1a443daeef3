"""tests/jack_registry.py frees only the slots of servers whose process is gone."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.jack_registry import MAGIC, MAX_SERVERS, SERVERS_AT, reclaim_dead_servers

SLOT = 264  # jackd2 1.9.x: pid_t + char[257], padded


def _registry(tmp_path: Path, servers: list[tuple[int, str]]) -> Path:
    hdr_len = SERVERS_AT + MAX_SERVERS * SLOT
    data = bytearray(hdr_len + 64)
    struct.pack_into("<IHxxiiii", data, 0, MAGIC, 0, 1, len(data), hdr_len, 268)
    for index, (pid, name) in enumerate(servers):
        struct.pack_into("<i", data, SERVERS_AT + index * SLOT, pid)
        start = SERVERS_AT + index * SLOT + 4
        data[start:start + len(name)] = name.encode()
    path = tmp_path / "jack-shm-registry"
    path.write_bytes(bytes(data))
    return path


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_dead_servers_are_cleared_live_ones_kept(tmp_path: Path) -> None:
    path = _registry(tmp_path, [(os.getpid(), "jack-0:alive"), (_dead_pid(), "jack-0:dead"),
                                (0, "")])
    before = path.read_bytes()
    assert reclaim_dead_servers(path) == ["jack-0:dead"]
    after = path.read_bytes()
    assert after[:SERVERS_AT + SLOT] == before[:SERVERS_AT + SLOT]  # header and live slot
    assert after[SERVERS_AT + SLOT:SERVERS_AT + 2 * SLOT] == bytes(SLOT)
    assert after[SERVERS_AT + 2 * SLOT:] == before[SERVERS_AT + 2 * SLOT:]


def test_an_unknown_layout_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "jack-shm-registry"
    path.write_bytes(b"\x00" * 4096)
    assert reclaim_dead_servers(path) == []
    assert path.read_bytes() == b"\x00" * 4096
    assert reclaim_dead_servers(tmp_path / "missing") == []


def test_a_stopped_servers_files_are_removed_and_no_others(tmp_path: Path) -> None:
    from tests.jackd import remove_server_files

    uid = os.getuid()
    ours = [f"jack_sem.{uid}_srv-1a2b3c4d_system", f"jack_sem.{uid}_srv-1a2b3c4d_emolive-watch-7",
            "jack_srv-1a2b3c4d_0_0"]
    others = [f"jack_sem.{uid}_srv-1a2b3c4e_system", f"jack_sem.{uid}_srv-1a2b3c4d-x_system",
              "jack_srv-1a2b3c4e_0_0", "jack-shm-registry", "jack_db-0"]
    for name in ours + others:
        (tmp_path / name).write_text("")
    assert remove_server_files("srv-1a2b3c4d", shm=tmp_path) == len(ours)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)


@pytest.mark.jack
def test_stopping_a_server_with_a_client_attached_leaves_nothing_in_dev_shm() -> None:
    """The server stopped while a client still held it left that client's semaphore in
    /dev/shm: each test run left ~20 such files, and they gathered in the hundreds."""
    from tests.jackd import JackdError, start_dummy_jackd, stop_jackd

    name = f"emolive-shm-{os.urandom(4).hex()}"
    try:
        server = start_dummy_jackd(name)
    except JackdError as err:
        pytest.skip(str(err))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import rtmidi, sys, time; out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "
         "name='holder'); out.open_virtual_port('x'); print('open', flush=True); time.sleep(60)"],
        env=dict(os.environ, JACK_DEFAULT_SERVER=name), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        stop_jackd(server)
    finally:
        holder.kill()
        holder.wait()
        stop_jackd(server)
    assert [p.name for p in Path("/dev/shm").iterdir() if name in p.name] == []
