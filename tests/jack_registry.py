"""Free the slots of dead servers in JACK's server registry, so killed test servers cannot
lock the machine out of JACK.

jackd2 keeps at most 8 servers in the shared-memory registry ``/dev/shm/jack-shm-registry``
(``MAX_SERVERS`` in common/shm.h). A server killed with SIGKILL keeps its slot, and jackd only
reclaims a dead server's slot for a server *of the same name*; the tests name their servers
uniquely, so after eight kills every jackd fails with "Too many servers already active".

Layout (jackd2 1.9.x, ``jack_shm_header_t``): magic ``"KCAJ"`` (u32 0x4a41434b), u16
protocol, i32 type, i32 size, i32 hdr_len, i32 entry_len, then 8 server entries
``{pid_t pid; char name[257]}`` padded to ``(hdr_len - 24) / 8`` bytes each. Anything else is
left untouched. The registry is changed under jackd's own lock (the System V semaphore of key
0x282929, ``jack_shm_lock_registry``), so a server starting or stopping meanwhile is not
disturbed; without that lock nothing is changed.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REGISTRY = Path("/dev/shm/jack-shm-registry")
MAGIC = 0x4A41434B
MAX_SERVERS = 8
SERVERS_AT = 24  # bytes: where the server array starts


JACK_SEMAPHORE_KEY = 0x282929  # jackd2 common/shm.c
SEM_UNDO = 0x1000


class _SemBuf(ctypes.Structure):
    _fields_ = [("sem_num", ctypes.c_ushort), ("sem_op", ctypes.c_short),
                ("sem_flg", ctypes.c_short)]


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


@contextmanager
def _registry_lock(timeout_s: int = 2) -> Iterator[bool]:
    """jackd's registry lock; yields False (and changes nothing) when it cannot be taken."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        semid = libc.semget(JACK_SEMAPHORE_KEY, 0, 0)
    except (OSError, AttributeError):
        semid = -1
    if semid < 0:
        yield False
        return
    take, give = _SemBuf(0, -1, SEM_UNDO), _SemBuf(0, 1, SEM_UNDO)
    timeout = _TimeSpec(timeout_s, 0)
    if libc.semtimedop(semid, ctypes.byref(take), 1, ctypes.byref(timeout)) != 0:
        yield False
        return
    try:
        yield True
    finally:
        libc.semop(semid, ctypes.byref(give), 1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def reclaim_dead_servers(registry: Path = REGISTRY) -> list[str]:
    """Clear the registry entries of servers whose process is gone, under jackd's registry
    lock; returns their names."""
    with _registry_lock() as locked:
        return _clear_dead_entries(registry) if locked else []


def _clear_dead_entries(registry: Path) -> list[str]:
    try:
        with registry.open("r+b") as f:
            header = f.read(SERVERS_AT)
            if len(header) < SERVERS_AT:
                return []
            magic, = struct.unpack_from("<I", header, 0)
            hdr_len, = struct.unpack_from("<i", header, 16)
            slot = (hdr_len - SERVERS_AT) // MAX_SERVERS
            if magic != MAGIC or slot < 8 or SERVERS_AT + MAX_SERVERS * slot != hdr_len:
                return []  # not the layout this knows
            reclaimed = []
            for index in range(MAX_SERVERS):
                offset = SERVERS_AT + index * slot
                f.seek(offset)
                entry = f.read(slot)
                pid, = struct.unpack_from("<i", entry, 0)
                if pid > 0 and not _alive(pid):
                    reclaimed.append(entry[4:].split(b"\0", 1)[0].decode(errors="replace"))
                    f.seek(offset)
                    f.write(b"\0" * slot)
            return reclaimed
    except OSError:  # no registry yet, or not ours to write
        return []
