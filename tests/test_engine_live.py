"""The live engine with a recording output (no MIDI port): timing, glides, stop, seeds."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path

import pytest

from emolive import Engine


def wait_for_steps(engine: Engine, steps: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while engine.stats()["step"] < steps:
        assert time.monotonic() < deadline, f"engine did not reach step {steps}"
        time.sleep(0.005)


def note_balance(messages: list[tuple[float, bytes]]) -> Counter:
    """note-ons minus note-offs per note (velocity-0 note-ons count as offs)."""
    balance: Counter = Counter()
    for _t, msg in messages:
        kind = msg[0] & 0xF0
        if kind == 0x90 and msg[2] > 0:
            balance[msg[1]] += 1
        elif kind == 0x80 or (kind == 0x90 and msg[2] == 0):
            balance[msg[1]] -= 1
    return balance


def step_times(messages: list[tuple[float, bytes]]) -> list[float]:
    """Send times of the steps that had notes: note messages closer than 3 ms form one step."""
    times = sorted(t for t, m in messages if m[0] & 0xF0 in (0x80, 0x90))
    starts: list[float] = []
    for t in times:
        if not starts or t - starts[-1] > 0.003:
            starts.append(t)
    return starts


def test_play_sends_notes_and_stop_silences_every_one(tiny_model_dir: Path) -> None:
    with Engine(model=tiny_model_dir, bpm=400, seed=2, record=True, program=1) as engine:
        engine.play("tense")
        assert engine.is_playing
        wait_for_steps(engine, 16)
        engine.stop()
        engine.stop()  # idempotent: sends nothing more
        assert not engine.is_playing
        stats = engine.stats()
        messages = engine.recorded()
    assert stats["notes_sent"] > 0
    assert stats["sounding"] == 0
    assert stats["port_error"] is None
    assert messages[0][1] == bytes([0xC0, 0])  # program change first
    assert all(v == 0 for v in note_balance(messages).values())
    tail = [m for _t, m in messages[-3:]]
    assert tail == [bytes([0xB0, 64, 0]), bytes([0xB0, 123, 0]), bytes([0xB0, 120, 0])]


def test_set_bpm_changes_the_step_spacing(tiny_model_dir: Path) -> None:
    with Engine(model=tiny_model_dir, bpm=240, seed=3, record=True) as engine:
        engine.play("happy")
        wait_for_steps(engine, 12)
        engine.set_bpm(120)
        first_slow = engine.stats()["step"] + 1
        wait_for_steps(engine, first_slow + 10)
        engine.stop()
        messages = engine.recorded()
    starts = step_times(messages)
    fast = [b - a for a, b in zip(starts[1:10], starts[2:11])]
    slow = [b - a for a, b in zip(starts[-9:-1], starts[-8:])]
    # A step that happens to have no note events would show as a double interval: use medians.
    assert statistics.median(fast) == pytest.approx(0.0625, abs=0.004)
    assert statistics.median(slow) == pytest.approx(0.125, abs=0.004)


def test_morph_glides_the_emotion_while_playing(tiny_model_dir: Path) -> None:
    with Engine(model=tiny_model_dir, bpm=400, seed=4) as engine:
        engine.morph("happy", "sad", bars=2)  # 32 steps of 37.5 ms = 1.2 s
        assert engine.is_playing
        seen = []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            seen.append(engine.emotion)
            if seen[-1][2] >= 1.0:
                break
            time.sleep(0.02)
        engine.stop()
    happy = [w[0] for w in seen]
    sad = [w[2] for w in seen]
    assert sad[-1] == pytest.approx(1.0)
    assert any(0.1 < s < 0.9 for s in sad), "no intermediate blend was observed"
    assert all(b >= a - 1e-6 for a, b in zip(sad, sad[1:])), "the glide went backwards"
    assert all(abs(h + s - 1.0) < 1e-5 for h, s in zip(happy, sad))


def test_set_emotion_jump_is_heard_within_a_beat(tiny_model_dir: Path) -> None:
    with Engine(model=tiny_model_dir, bpm=400, seed=4) as engine:
        engine.play("happy")
        wait_for_steps(engine, 8)
        engine.set_emotion("calm")
        asked_at = engine.stats()["step"]
        deadline = time.monotonic() + 1.0
        while engine.emotion != pytest.approx((0, 0, 0, 1)) and time.monotonic() < deadline:
            time.sleep(0.002)
        decoded_at = engine.stats()["step"]
        engine.stop()
    # The generator decodes at most one beat (4 steps) ahead, so the new condition reaches the
    # decoder before the clock has moved more than a beat.
    assert engine.emotion == pytest.approx((0, 0, 0, 1))
    assert decoded_at - asked_at <= 4


def test_live_notes_match_offline_generation(tiny_model_dir: Path) -> None:
    """Same seed, same note logic: the first bars played live are the offline file's (for a
    model without a batch step, as this float32 one; tests/training/test_batch_step.py covers
    one with)."""
    with Engine(model=tiny_model_dir, bpm=400, seed=9, record=True) as engine:
        offline = engine.generate(1, "calm")
        engine.play("calm")
        wait_for_steps(engine, 20)
        engine.stop()
        live = [m for _t, m in engine.recorded() if m[0] & 0xF0 == 0x90]
    expected = [bytes([0x90, m.note, m.velocity]) for m in offline.tracks[0] if m.type == "note_on"]
    assert live[: len(expected)] == expected


def test_play_after_stop_plays_again(tiny_model_dir: Path) -> None:
    with Engine(model=tiny_model_dir, bpm=400, seed=5, record=True) as engine:
        engine.play("sad")
        wait_for_steps(engine, 4)
        engine.stop()
        engine.play("sad")
        wait_for_steps(engine, 4)
        assert engine.is_playing
        engine.stop()
        assert engine.stats()["sounding"] == 0
        assert engine.recorded()[0][0] < 0.05  # timestamps restart at each play()


def test_close_while_playing_silences_and_lateness_is_logged(tiny_model_dir: Path) -> None:
    engine = Engine(model=tiny_model_dir, bpm=400, seed=6, record=True)
    engine.play("calm")
    wait_for_steps(engine, 8)
    engine.close()
    assert not engine.is_playing
    assert engine.stats()["sounding"] == 0
    messages = engine.recorded()  # still readable after close
    assert messages and all(v == 0 for v in note_balance(messages).values())
    lateness = engine.lateness_us()
    assert len(lateness) >= 8
    assert (lateness >= 0).all()


def test_clock_out_sends_24_ticks_per_quarter(tiny_model_dir: Path) -> None:
    with Engine(model=tiny_model_dir, bpm=400, seed=7, record=True, clock_out=True) as engine:
        engine.play("calm")
        wait_for_steps(engine, 8)
        engine.stop()
        steps = engine.stats()["step"]
        messages = [m for _t, m in engine.recorded()]
    assert messages.count(b"\xfa") == 1
    assert messages[-1] == b"\xfc"
    # Six ticks per 16th step; stop may come between the ticks of the last step.
    assert 6 * (steps - 1) < messages.count(b"\xf8") <= 6 * steps


def _transport(engine: Engine) -> list[bytes]:
    """The transport messages of the engine's last run (Song Position, Start, Continue, Stop)."""
    return [m for _t, m in engine.recorded() if m[0] in (0xF2, 0xFA, 0xFB, 0xFC)]


def test_resume_goes_on_at_the_next_bar_line_and_a_clock_receiver_is_told_where(
        tiny_model_dir: Path) -> None:
    """A DAW following --clock-out kept its place across a pause: resume used to send Start
    (0xFA), which sends a DAW back to its beginning, and count bars from 0 again."""
    with Engine(model=tiny_model_dir, bpm=400, seed=7, record=True, clock_out=True) as engine:
        engine.play("calm")
        wait_for_steps(engine, 20)  # into bar 1
        engine.stop()
        stopped_at = engine.stats()["step"]
        assert 20 <= stopped_at < 32 and engine.stats()["bar"] == 1
        assert _transport(engine) == [b"\xfa", b"\xfc"]

        engine.resume()  # on at bar 2, the next bar line: song position 32 sixteenths
        wait_for_steps(engine, 33)
        engine.stop()
        assert _transport(engine) == [bytes([0xF2, 32, 0]), b"\xfb", b"\xfc"]
        assert engine.stats()["bar"] >= 2

        engine.resume(bar=1000)  # 16,000 sixteenths: 0x3E80 as 7-bit LSB, MSB
        wait_for_steps(engine, 16001)
        engine.stop()
        assert _transport(engine) == [bytes([0xF2, 0x00, 0x7D]), b"\xfb", b"\xfc"]
        assert engine.stats()["bar"] == 1000

        engine.resume(bar=0)
        wait_for_steps(engine, 1)
        engine.stop()
        assert _transport(engine) == [b"\xfa", b"\xfc"]

        engine.play("sad")  # play starts the song again
        assert engine.stats()["step"] < 16
        wait_for_steps(engine, 1)
        engine.stop()
        assert _transport(engine)[0] == b"\xfa"


def test_resume_refuses_a_bar_that_is_not_a_whole_number_from_0(engine: Engine) -> None:
    for bar, error in ((-1, ValueError), (True, TypeError), (1.5, TypeError), (2**40 + 1, ValueError)):
        with pytest.raises(error, match="bar"):
            engine.resume(bar=bar)
    assert not engine.is_playing


def test_the_largest_bar_plays_and_resumes_without_overflow(tiny_model_dir: Path) -> None:
    """resume(bar=(2**63-1)//16) was accepted: the song position wrapped negative after a bar,
    and the next resume() failed half-way, leaving an engine that said it played and did not."""
    from emolive.arguments import MAX_BAR

    with Engine(model=tiny_model_dir, bpm=400, seed=7, record=True) as engine:
        engine.resume(bar=MAX_BAR)
        wait_for_steps(engine, MAX_BAR * 16 + 20)
        engine.stop()
        assert engine.stats()["bar"] == MAX_BAR + 1
        engine.resume()  # the next bar line is past the largest: it starts on the largest again
        wait_for_steps(engine, MAX_BAR * 16 + 1)
        assert engine.stats()["step"] < (MAX_BAR + 1) * 16 and engine.stats()["notes_sent"] > 0
        engine.stop()
        engine.play("happy")
        assert engine.stats()["step"] < 16 and engine.is_playing


def test_the_step_count_never_runs_ahead_while_a_resume_starts(tiny_model_dir: Path) -> None:
    """stats() read the new run's start with the old run's step count: "stopped at 9, resumed
    at 16, read 25", from another thread (the live status line under --sync)."""
    import threading

    with Engine(model=tiny_model_dir, bpm=400, seed=7) as engine:
        seen: list[int] = []
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                seen.append(engine.stats()["step"])

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            engine.play("calm")
            for _ in range(8):
                wait_for_steps(engine, engine.stats()["step"] + 9)  # into the next bar
                engine.stop()
                resumed_at = -(-engine.stats()["step"] // 16) * 16
                seen.clear()
                engine.resume()
                time.sleep(0.02)  # under one step at 400 BPM (37.5 ms)
                assert max(seen) <= resumed_at + 1, (resumed_at, max(seen))
        finally:
            done.set()
            poller.join()


def test_late_counts_go_on_over_a_pause_as_the_notes_count_does(tiny_model_dir: Path) -> None:
    """A resume cleared the late count and the largest lateness while notes_sent went on: the
    command's last line said "76 notes, 5 late", the 5 of its last run only."""
    with Engine(model=tiny_model_dir, bpm=400, seed=7) as engine:
        engine.play("calm")
        wait_for_steps(engine, 24)
        engine.stop()
        first = engine.stats()
        assert first["max_lateness_us"] > 0.0
        engine.resume()
        after = engine.stats()  # the new run's log is empty: the counts are the first run's
        assert after["late_notes"] >= first["late_notes"]
        assert after["max_lateness_us"] >= first["max_lateness_us"]
        assert len(engine.lateness_us()) <= 2  # the log itself is per run
        engine.stop()
