"""Malformed MIDI files through the training loaders: each is skipped with a reason, or kept as a
bounded roll; no exception escapes (issue 5, "Malformed MIDI for the loaders").

Files are built from bytes in the test (tests/reliability/midi_bytes.py). Each runs through both
grids (EMOPIA beat tracking, and the file's own beats).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")  # emolive.training imports torch at package level

from loader_probe import DATASETS, MAX_ROLL_STEPS, load_one  # noqa: E402
from midi_bytes import (END_OF_TRACK, chunk, event, header, note, simple_song,  # noqa: E402
                        tempo, track)

pytestmark = pytest.mark.training

VALID = simple_song()
LONG_DELTA = 0x0FFFFFFF  # largest 4-byte variable-length quantity: 268,435,455 ticks

# name -> bytes that must be *skipped* (unusable: corrupt, or nothing to learn from).
MUST_SKIP: dict[str, bytes] = {
    "empty file": b"",
    "one byte": b"M",
    "header truncated": header()[:9],
    "header only, no track": header(1, 1),
    "text, not MIDI": b"this is not a MIDI file\n" * 10,
    "random bytes": bytes((i * 197 + 13) % 256 for i in range(600)),
    "truncated mid-track": VALID[: len(VALID) // 2],
    "truncated one byte short": VALID[:-1],
    "track length beyond file": header(0, 1) + track(note(0, 60, 80, 480), length=0x7FFFFFFF),
    "track length 0xFFFFFFFF": header(0, 1) + track(note(0, 60, 80, 480), length=0xFFFFFFFF),
    "header length absurd": b"MThd\xff\xff\xff\xff\x00\x01\x00\x01\x01\xe0",
    "more tracks declared than present": header(1, 5) + track(note(0, 60, 80, 480)),
    "note-on data byte > 127 (pitch)": header(0, 1) + track(event(0, 0x90, 200, 80),
                                                            event(480, 0x80, 60, 0)),
    "note-on data byte > 127 (velocity)": header(0, 1) + track(event(0, 0x90, 60, 0xFF),
                                                               event(480, 0x80, 60, 0)),
    "control change data byte > 127": header(0, 1) + track(event(0, 0xB0, 64, 200),
                                                           note(0, 60, 80, 480)),
    "running status with no status": header(0, 1) + track(event(0, 60, 80)),
    "undefined status byte 0xF4": header(0, 1) + track(event(0, 0xF4, 1, 2),
                                                       note(0, 60, 80, 480)),
    "sysex never terminated": header(0, 1) + track(event(0, 0xF0, 0x7F) + b"\x7f" * 8, end=False),
    "variable-length delta never ends": header(0, 1) + chunk(b"MTrk", b"\xff" * 40),
    "empty track (length 0)": header(0, 1) + chunk(b"MTrk", b""),
    "only end-of-track": header(0, 1) + track(),
    "two empty tracks": header(1, 2) + track() + track(),
    "tempo only, no notes": header(0, 1) + track(tempo(0, 500_000)),
    "note-offs without note-ons": header(0, 1) + track(event(0, 0x80, 60, 0),
                                                       event(10, 0x80, 62, 0)),
    "drums only (channel 10)": header(0, 1) + track(note(0, 36, 100, 480, channel=9)),
    "zero-length notes only": header(0, 1) + track(note(0, 60, 80, 0), note(0, 62, 80, 0)),
    "ticks per beat 0": header(0, 1, division=0) + track(note(0, 60, 80, 480)),
    "SMPTE division": header(0, 1, division=-(25 << 8) + 40) + track(note(0, 60, 80, 480)),
    "type 2 file": header(2, 1) + track(note(0, 60, 80, 480)),
    "notes outside the 88 keys only": header(0, 1) + track(note(0, 5, 80, 480),
                                                           note(0, 120, 80, 480)),
    "absurd length: a note 2^28 ticks long": header(0, 1) + track(note(0, 60, 80, LONG_DELTA)),
    "absurd length, 1 tick per beat": header(0, 1, division=1) + track(
        note(0, 60, 80, LONG_DELTA)),
    "absurd length: last onset 2^28 ticks in": header(0, 1, division=1) + track(
        note(0, 60, 80, 1), note(LONG_DELTA, 62, 80, 1)),
    # 60,000 BPM squeezed a performed file into a few steps of the beat-tracked grid, unsaid.
    "tempo 1000 us per beat (60,000 BPM)": header(0, 1) + track(
        tempo(0, 1000), *[note(0, 60 + i % 12, 80, 480) for i in range(64)]),
    "absurd tempo, onset days in": header(0, 1, division=1) + track(
        tempo(0, 0xFFFFFF), note(0, 60, 80, 1), note(LONG_DELTA, 62, 80, 1)),
}

# name -> bytes that are odd but usable: kept, as a roll of bounded length.
MAY_KEEP: dict[str, bytes] = {
    "valid reference": VALID,
    "tempo 0 us per beat": header(0, 1) + track(tempo(0, 0), *[note(0, 60 + i, 80, 480)
                                                               for i in range(8)]),
    "tempo 0xFFFFFF (16.7 s per beat)": header(0, 1) + track(
        tempo(0, 0xFFFFFF), *[note(0, 60 + i, 80, 480) for i in range(8)]),
    "a thousand tempo changes": header(0, 1) + track(
        *[tempo(0, 300_000 + 1000 * i) + note(0, 60 + i % 12, 80, 120) for i in range(1000)]),
    "note never released": header(0, 1) + track(event(0, 0x90, 60, 80), note(480, 64, 80, 480)),
    "no end-of-track": header(0, 1) + track(*[note(0, 60 + i, 80, 480) for i in range(8)],
                                            end=False),
    "empty track beside a good one": header(1, 2) + track() + track(
        *[note(0, 60 + i, 80, 480) for i in range(8)]),
    "trailing garbage after the last chunk": VALID + b"\x00\x01garbage",
    "unknown chunk between tracks": header(1, 2) + chunk(b"XFIH", b"\x01\x02\x03")
    + track(*[note(0, 60 + i, 80, 480) for i in range(8)]) + track(),
    "1 tick per beat": simple_song(division=1),
    "32767 ticks per beat": simple_song(division=32767),
    "all 16 channels but drums at once": header(0, 1) + track(
        *[note(0, 48 + ch, 90, 480, channel=ch) for ch in range(16) if ch != 9]),
    "sustain pedal never released": header(0, 1) + track(
        event(0, 0xB0, 64, 127), *[note(0, 60 + i, 80, 120) for i in range(8)]),
    "end-of-track in the middle": header(0, 1) + chunk(
        b"MTrk", note(0, 60, 80, 480) + END_OF_TRACK + note(0, 62, 80, 480) + END_OF_TRACK),
}


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / (name.replace(" ", "_").replace("/", "_") + ".mid")
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("name", sorted(MUST_SKIP))
def test_unusable_file_is_skipped_with_a_reason(tmp_path: Path, name: str, dataset: str) -> None:
    outcome = load_one(_write(tmp_path, name, MUST_SKIP[name]), dataset)
    assert not outcome.accepted, f"{name}: accepted as a roll of {outcome.steps} steps"
    assert outcome.reason.strip(), f"{name}: skipped without a reason"


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("name", sorted(MAY_KEEP))
def test_odd_but_usable_file_never_raises(tmp_path: Path, name: str, dataset: str) -> None:
    outcome = load_one(_write(tmp_path, name, MAY_KEEP[name]), dataset)
    if outcome.accepted:
        assert 0 < outcome.steps <= MAX_ROLL_STEPS, f"{name}: roll of {outcome.steps} steps"
    else:
        assert outcome.reason.strip()


@pytest.mark.parametrize("dataset", DATASETS)
def test_reference_file_is_kept(tmp_path: Path, dataset: str) -> None:
    """The corpus generator itself is right: its valid file gives a roll (so skips above are
    the loaders' verdict on the damage, not on the generator)."""
    outcome = load_one(_write(tmp_path, "valid", VALID), dataset)
    assert outcome.accepted, outcome.reason
    assert outcome.steps >= 8 * 4  # eight quarter notes, 4 steps each


def test_missing_file_is_skipped(tmp_path: Path) -> None:
    outcome = load_one(tmp_path / "does-not-exist.mid", "VGMIDI")
    assert not outcome.accepted and outcome.reason.strip()


def test_corpus_counts_every_skip(tmp_path: Path) -> None:
    """A whole folder of broken files with good ones among them: the good ones are kept, every
    broken one is counted once in the report with its reason (as training sees a dataset)."""
    from emolive.training.data import load_unlabelled
    from emolive.training.prepare import prepare

    broken = ["empty file", "random bytes", "truncated mid-track", "type 2 file",
              "note-on data byte > 127 (pitch)", "drums only (channel 10)"]
    for name in broken:
        _write(tmp_path, name, MUST_SKIP[name])
    for i in range(3):
        _write(tmp_path, f"good {i}", simple_song(notes=8 + i))
    prep = prepare([load_unlabelled(tmp_path)])
    assert len(prep.rolls) == 3
    assert len(prep.skipped) == len(broken)
    assert all(reason.strip() for _, reason in prep.skipped)
