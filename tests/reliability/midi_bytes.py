"""Raw Standard MIDI File bytes, written by hand so that files can be broken on purpose.

mido refuses to *write* most of what the loaders must survive (data bytes > 127, truncated
chunks, lying length fields), so the malformed corpus is assembled from bytes here.
Units: delta times and divisions in ticks; tempo in microseconds per quarter note.
"""

from __future__ import annotations

import struct


def vlq(value: int) -> bytes:
    """A MIDI variable-length quantity (7 bits per byte, high bit = more follows)."""
    if value < 0:
        raise ValueError("variable-length quantities are non-negative")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def chunk(kind: bytes, payload: bytes, length: int | None = None) -> bytes:
    """A chunk; ``length`` overrides the true payload length (to make it lie)."""
    size = len(payload) if length is None else length
    return kind + struct.pack(">I", size) + payload


def header(fmt: int = 1, ntracks: int = 1, division: int = 480) -> bytes:
    """MThd; a negative ``division`` sets the SMPTE bit (two's complement, 16 bits)."""
    return chunk(b"MThd", struct.pack(">HHH", fmt, ntracks, division & 0xFFFF))


def event(delta: int, *data: int) -> bytes:
    """One track event: delta time then raw bytes (not validated: may be > 127)."""
    return vlq(delta) + bytes(data)


def tempo(delta: int, us_per_beat: int) -> bytes:
    return event(delta, 0xFF, 0x51, 0x03) + us_per_beat.to_bytes(3, "big")


END_OF_TRACK = event(0, 0xFF, 0x2F, 0x00)


def track(*events: bytes, end: bool = True, length: int | None = None) -> bytes:
    body = b"".join(events) + (END_OF_TRACK if end else b"")
    return chunk(b"MTrk", body, length)


def note(delta_on: int, pitch: int, velocity: int, duration: int, channel: int = 0) -> bytes:
    """A note-on then its note-off ``duration`` ticks later."""
    return (event(delta_on, 0x90 | channel, pitch, velocity)
            + event(duration, 0x80 | channel, pitch, 0))


def simple_song(notes: int = 8, division: int = 480) -> bytes:
    """A valid one-track file: ``notes`` quarter notes climbing from middle C, 120 BPM."""
    body = [tempo(0, 500_000)] + [note(0, 60 + i, 80, division) for i in range(notes)]
    return header(0, 1, division) + track(*body)
