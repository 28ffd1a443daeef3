"""Property-based fuzz of the training loaders with hypothesis: MIDI-shaped files with random
events, absurd values, then byte-level damage (truncation, flipped and inserted bytes).

Property: every file is either kept as a bounded roll or skipped with a reason, and nothing
raises. CI runs 300 cases; the long run (docs/reliability.md) is

    EMOLIVE_FUZZ_EXAMPLES=10000 .venv/bin/python -m pytest tests/reliability/test_midi_fuzz.py -s
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("torch")  # emolive.training imports torch at package level

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from loader_probe import DATASETS, MAX_ROLL_STEPS, load_one  # noqa: E402
from midi_bytes import chunk, event, header, note, tempo, track  # noqa: E402

pytestmark = pytest.mark.training

EXAMPLES = int(os.environ.get("EMOLIVE_FUZZ_EXAMPLES", "300"))

# Delta times: mostly musical, sometimes absurd (up to the 4-byte VLQ maximum, in ticks).
musical_delta = st.integers(0, 960)
deltas = st.one_of(musical_delta, musical_delta, musical_delta, st.integers(0, 0x0FFFFFFF))
data_7bit = st.integers(0, 127)
data_byte = st.one_of(data_7bit, data_7bit, data_7bit, st.integers(0, 255))  # > 127: malformed

good_note = st.builds(note, musical_delta, st.integers(21, 108), st.integers(1, 127),
                      st.integers(1, 960), st.integers(0, 15))
malformed = st.one_of(
    st.builds(note, deltas, data_byte, data_byte, deltas, st.integers(0, 15)),
    st.builds(tempo, deltas, st.integers(0, 0xFFFFFF)),
    st.builds(lambda d, s, a, b: event(d, s, a, b), deltas, st.integers(0x80, 0xFF),
              data_byte, data_byte),  # any status byte, incl. meta/sysex/undefined
    st.binary(min_size=1, max_size=8),  # raw bytes
)
# Well-formed bytes, but values that may be absurd (days-long notes, 0 or 16.7 s per beat).
absurd_note = st.builds(note, deltas, st.integers(21, 108), st.integers(1, 127), deltas,
                        st.integers(0, 15))
clean_events = st.one_of(
    good_note, good_note, good_note, absurd_note,
    st.builds(tempo, musical_delta, st.one_of(st.integers(200_000, 1_500_000),
                                              st.integers(0, 0xFFFFFF))),
    st.builds(lambda d, c, v, ch: event(d, 0xB0 | ch, c, v), musical_delta, data_7bit,
              data_7bit, st.integers(0, 15)),  # control change (64 = sustain pedal)
)
any_events = st.one_of(clean_events, clean_events, malformed)


def tracks(events: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.builds(lambda evs, end: track(*evs, end=end),
                     st.lists(events, max_size=40), st.booleans())


def midi_files(events: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda fmt, division, body: header(fmt, max(1, len(body)), division) + b"".join(body),
        st.sampled_from([0, 1, 1, 1, 2]),
        st.one_of(st.integers(1, 960), st.integers(1, 960), st.integers(-32768, 32767)),
        st.lists(tracks(events), min_size=0, max_size=3),
    )


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A file, then with some probability truncated, bit-flipped, spliced, or wrongly sized."""
    clean = draw(st.booleans())  # half the files: well-formed events only
    data = bytearray(draw(midi_files(clean_events if clean else any_events)))
    kind = draw(st.sampled_from(["intact"] * 4 + ["truncate", "flip", "insert", "chunk length"]))
    if kind == "truncate" and data:
        del data[draw(st.integers(0, len(data) - 1)):]
    elif kind == "flip" and data:
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
    elif kind == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    elif kind == "chunk length":
        data += chunk(b"MTrk", b"", length=draw(st.integers(0, 0xFFFFFFFF)))
    return bytes(data)


def test_fuzzed_files_are_kept_or_skipped_never_raise() -> None:
    outcomes: Counter[str] = Counter()
    started = time.monotonic()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.mid"

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(data=damaged(), dataset=st.sampled_from(DATASETS))
        def check(data: bytes, dataset: str) -> None:
            path.write_bytes(data)
            outcome = load_one(path, dataset)
            if outcome.accepted:
                assert 0 < outcome.steps <= MAX_ROLL_STEPS
                outcomes["kept"] += 1
            else:
                assert outcome.reason.strip()
                outcomes["skipped: " + outcome.reason.split(":")[0][:40]] += 1

        check()

    total = sum(outcomes.values())
    print(f"\nfuzzed {total} files in {time.monotonic() - started:.1f} s:")
    for reason, count in outcomes.most_common():
        print(f"  {count:6d}  {reason}")
    # The generator must reach both sides, else the property says nothing.
    assert outcomes["kept"] > 0
    assert total - outcomes["kept"] > 0
