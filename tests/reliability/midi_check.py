"""Checks on streams of raw MIDI messages, and a JACK input port that records what arrives.

Pairing rule: every note-on (0x9n with velocity > 0) must be followed, on the same channel and
key, by a note-off (0x8n, or 0x9n with velocity 0) before that key is struck again and before
the stream ends. A note-off for a key not sounding is tolerated (harmless, and what a careful
engine may send on stop).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class PairingReport:
    note_ons: int = 0
    note_offs: int = 0
    double_strikes: list[tuple[int, int]] = field(default_factory=list)  # (channel, key)
    left_sounding: set[tuple[int, int]] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.double_strikes and not self.left_sounding

    def describe(self) -> str:
        return (f"{self.note_ons} note-ons, {self.note_offs} note-offs, "
                f"re-struck without note-off: {self.double_strikes[:10]}, "
                f"left sounding: {sorted(self.left_sounding)[:10]}")


def check_pairing(messages: Iterable[bytes]) -> PairingReport:
    report = PairingReport()
    sounding: set[tuple[int, int]] = set()
    for msg in messages:
        if len(msg) < 3:
            continue
        kind, channel = msg[0] & 0xF0, msg[0] & 0x0F
        key = (channel, msg[1])
        if kind == 0x90 and msg[2] > 0:
            report.note_ons += 1
            if key in sounding:
                report.double_strikes.append(key)
            sounding.add(key)
        elif kind == 0x80 or (kind == 0x90 and msg[2] == 0):
            report.note_offs += 1
            sounding.discard(key)
    report.left_sounding = sounding
    return report


def note_on_count(messages: list[bytes]) -> int:
    return sum(1 for m in messages if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0)


class ReceiverProcess:
    """tests/reliability/receiver_proc.py driven from the test: a JACK receiver in its own
    process, asked for pairing reports (see that file for the protocol)."""

    def __init__(self, name: str) -> None:
        import subprocess
        import sys
        from pathlib import Path

        self.name = name
        script = Path(__file__).resolve().parent / "receiver_proc.py"
        from tests.jackd import terminate_with_parent

        self.proc = subprocess.Popen([sys.executable, str(script), name], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, preexec_fn=terminate_with_parent)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.kill()
            raise RuntimeError(f"the JACK receiver did not start (said {line!r})")

    def ask(self, command: str = "report") -> dict:
        import json

        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the JACK receiver process died")
        return json.loads(line)

    def wait_for_note_ons(self, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ask()["note_ons"] >= count:
                return True
            time.sleep(0.05)
        return False

    def quit(self) -> dict:
        result = self.ask("quit")
        self.proc.wait(timeout=10)
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def compare_streams(sent: list[str], received: list[str]) -> str:
    """How `received` (hex messages, as a receiver got them) differs from the tail of `sent`
    (as the engine sent them) it should be: "" when it is exactly sent[start:], where `start` is
    the first message matched; else the differences, to tell an engine that sent something
    wrong from a transport that lost, repeated or cut short what was sent."""
    from difflib import SequenceMatcher

    blocks = [b for b in SequenceMatcher(a=sent, b=received, autojunk=False)
              .get_matching_blocks() if b.size]
    start = blocks[0].a - blocks[0].b if blocks else 0
    expected = sent[max(start, 0):]
    if received == expected:
        return ""
    changes = [f"{tag} sent[{start + i1}:{start + i2}]={expected[i1:i2][:6]} "
               f"got[{j1}:{j2}]={received[j1:j2][:6]}"
               for tag, i1, i2, j1, j2 in SequenceMatcher(a=expected, b=received,
                                                          autojunk=False).get_opcodes()
               if tag != "equal"]
    engine_side = check_pairing(bytes.fromhex(m) for m in expected)
    return (f"the receiver's {len(received)} messages are not the engine's last "
            f"{len(expected)} of {len(sent)}: " + "; ".join(changes[:8])
            + f" (what the engine sent: {engine_side.describe()})")
