"""tests/jack_registry.py frees only the slots of servers whose process is gone."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

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
