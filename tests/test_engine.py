"""The Python Engine on a tiny random model: arguments, offline generation, seeds, keys."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import mido
import pytest

from emolive import Engine, EngineError, ModelError
from emolive.scales import scale_mask, transposition
from tests.midi_events import note_events


def test_generate_returns_a_midi_file_with_paired_notes(engine: Engine) -> None:
    midi = engine.generate(4, emotion="happy")
    assert isinstance(midi, mido.MidiFile)
    events = note_events(midi)
    ons = [e for e in events if e[1] == "note_on"]
    assert len(ons) > 0
    sounding: set[int] = set()
    for _tick, kind, note, velocity in events:
        if kind == "note_on":
            assert note not in sounding, "a note-on for a key that already sounds"
            assert 1 <= velocity <= 127
            assert 21 <= note <= 108
            sounding.add(note)
        else:
            assert note in sounding, "a note-off for a key that is silent"
            sounding.discard(note)
    assert not sounding
    assert midi.length == pytest.approx(4 * 2.0, abs=1e-6)  # 4 bars at 120 BPM
    assert all(tick % 120 == 0 for tick, *_ in events)  # on the 16th grid (480 ticks per beat)


def test_the_track_is_named_after_the_model_once() -> None:
    with Engine() as engine:  # the bundled model, "emolive-default"
        names = [m.name for m in engine.generate(1).tracks[0] if m.type == "track_name"]
    assert names == ["emolive-default"]  # was "emolive emolive-default"


def test_same_seed_same_notes_and_other_seeds_differ(tiny_model_dir: Path) -> None:
    with Engine(model=tiny_model_dir, seed=5) as a, Engine(model=tiny_model_dir, seed=5) as b:
        assert note_events(a.generate(2, "sad")) == note_events(b.generate(2, "sad"))
        assert note_events(a.generate(2, "sad")) == note_events(a.generate(2, "sad", seed=5))
        assert note_events(a.generate(2, "sad", seed=6)) != note_events(a.generate(2, "sad"))


def test_emotion_changes_the_notes(engine: Engine) -> None:
    assert note_events(engine.generate(2, "happy")) != note_events(engine.generate(2, "sad"))


def test_generate_with_morph_glides_the_condition(engine: Engine) -> None:
    plain = note_events(engine.generate(4, "happy"))
    morphed = note_events(engine.generate(4, "happy", morph_to="sad", morph_bars=2))
    assert morphed != plain
    # The first step's condition is one 32nd of the way to sad, so notes differ from then on,
    # but the whole file is still well formed.
    assert Counter(k for _, k, _, _ in morphed)["note_on"] == Counter(k for _, k, _, _ in morphed)["note_off"]


def test_set_key_keeps_onsets_in_the_scale(engine: Engine) -> None:
    engine.set_key("A", "minor")
    allowed = scale_mask("A", "minor")
    notes = [n for _, kind, n, _ in note_events(engine.generate(4, "calm")) if kind == "note_on"]
    assert notes
    assert all((allowed >> (n % 12)) & 1 for n in notes)
    engine.set_key(None)
    notes = [n for _, kind, n, _ in note_events(engine.generate(4, "calm")) if kind == "note_on"]
    assert not all((allowed >> (n % 12)) & 1 for n in notes)


def test_temperature_changes_density(engine: Engine) -> None:
    engine.set_temperature(0.05)
    cold = sum(1 for e in note_events(engine.generate(4)) if e[1] == "note_on")
    engine.set_temperature(5.0)
    hot = sum(1 for e in note_events(engine.generate(4)) if e[1] == "note_on")
    assert cold != hot


def test_program_and_tempo_are_written(tiny_model_dir: Path) -> None:
    with Engine(model=tiny_model_dir, bpm=90, program=5, channel=3, seed=1) as e:
        midi = e.generate(1)
    msgs = list(midi.tracks[0])
    tempo = next(m for m in msgs if m.type == "set_tempo")
    assert mido.tempo2bpm(tempo.tempo) == pytest.approx(90)
    program = next(m for m in msgs if m.type == "program_change")
    assert program.program == 4 and program.channel == 2
    assert all(m.channel == 2 for m in msgs if m.type in ("note_on", "note_off"))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"bpm": 10}, ValueError),
        ({"bpm": 401}, ValueError),
        ({"bpm": "fast"}, TypeError),
        ({"bpm": float("nan")}, ValueError),
        ({"channel": 0}, ValueError),
        ({"channel": 17}, ValueError),
        ({"channel": 1.5}, TypeError),
        ({"program": 0}, ValueError),
        ({"program": 129}, ValueError),
        ({"temperature": 0.0}, ValueError),
        ({"temperature": 6}, ValueError),
        ({"seed": -1}, ValueError),
        ({"seed": "x"}, TypeError),
        ({"record": 1}, TypeError),
        ({"port": 1.5}, TypeError),
        ({"port": "a", "virtual": "b"}, ValueError),
        ({"virtual": ""}, ValueError),
        ({"virtual": 3}, TypeError),
        ({"bpm": 10**400}, ValueError),  # was OverflowError
        ({"temperature": 10**400}, ValueError),
    ],
)
def test_bad_arguments_raise_clear_errors(tiny_model_dir: Path, kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        Engine(model=tiny_model_dir, **kwargs)


def test_port_queries_of_unicode_digits_and_numpy_indices() -> None:
    """"²" passed str.isdigit() and then int() raised a bare ValueError; a numpy index was a
    TypeError though docs/engine.md takes numpy's numbers."""
    np = pytest.importorskip("numpy")
    from emolive import PortError
    from emolive.outputs import check_port_query, match_output_port

    names = ["synth A", "synth B", "synth C"]
    for query in ("²", "①", "-²"):
        with pytest.raises(PortError, match="no MIDI output port matches"):
            match_output_port(names, query)
    assert match_output_port(names, np.int64(1)) == (1, "synth B")
    assert match_output_port(names, "2") == (2, "synth C")
    if Engine is not None:
        try:
            check_port_query(np.int64(0))  # accepted as an index (PortError only without RtMidi)
        except PortError:
            pass


def test_numpy_numbers_are_numbers(tiny_model_dir: Path) -> None:
    np = pytest.importorskip("numpy")
    engine = Engine(model=tiny_model_dir, seed=np.int64(3), bpm=np.float32(100), record=True)
    try:
        engine.set_bpm(np.float64(90.0))
        engine.set_emotion(np.array([0.5, 0.5, 0.0, 0.0]))
        assert engine.emotion == pytest.approx((0.5, 0.5, 0.0, 0.0))
        plain = engine.generate(2, emotion=(0.0, 0.0, 1.0, 0.0), seed=5)
        assert note_events(engine.generate(np.int64(2), emotion=np.array([0, 0, 1, 0]), seed=np.uint64(5))) \
            == note_events(plain)
        pieces = engine.generate_many(2, 1, seeds=np.array([5, 6]))
        assert len(pieces) == 2
    finally:
        engine.close()


def test_weights_too_large_to_sum_are_still_a_blend() -> None:
    from emolive.emotions import parse_emotion

    assert parse_emotion("happy:1e308,sad:1e308") == pytest.approx((0.5, 0.0, 0.5, 0.0))
    assert parse_emotion([1e308, 1e308, 1e308, 1e308]) == pytest.approx((0.25,) * 4)


def test_bad_calls_raise_clear_errors(engine: Engine) -> None:
    with pytest.raises(ValueError, match="known emotions"):
        engine.play("ecstatic")
    with pytest.raises(TypeError):
        engine.set_emotion(3.5)
    with pytest.raises(ValueError):
        engine.set_bpm(19.9)
    with pytest.raises(ValueError):
        engine.set_temperature(5.1)
    with pytest.raises(ValueError, match=r"temperature must be in 0\.05\.\.5, got 0\.04"):
        engine.set_temperature(0.04)  # below the documented 0.05..5
    with pytest.raises(ValueError, match="bars"):
        engine.set_emotion("sad", bars=-1)
    with pytest.raises(ValueError, match="unknown key"):
        engine.set_key("H")
    with pytest.raises(ValueError, match="known scales"):
        engine.set_key("C", "bebop")
    with pytest.raises(ValueError, match="a scale needs a key"):
        engine.set_key(None, "minor")
    with pytest.raises(ValueError):
        engine.generate(0)
    with pytest.raises(TypeError):
        engine.generate(2.5)
    with pytest.raises(EngineError, match="record=True"):
        engine.recorded()
    assert not engine.is_playing


def test_an_empty_model_name_is_not_the_current_folder() -> None:
    with pytest.raises(ModelError, match="empty name"):
        Engine(model="")


def test_a_model_under_the_home_folder_is_found_by_a_tilde(tmp_path: Path, tiny_model_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`--model=~/m` (bash expands no ~ after "=") and Python's "~/m" said the folder did not
    exist; a folder really named "~" in the working folder is still taken first."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine").symlink_to(tiny_model_dir)
    monkeypatch.setenv("HOME", str(tmp_path))
    with Engine(model="~/models/mine") as engine:
        assert engine.generate(1).tracks
    monkeypatch.chdir(tmp_path)
    (tmp_path / "~").mkdir()
    with pytest.raises(ModelError, match="/~ has no readable model_card.json"):
        Engine(model="~")  # the literal folder (empty), not the home folder


_PLAY_WITH_NO_THREAD_TO_BE_HAD = """
import resource, sys
from emolive import Engine, EngineError
engine = Engine(model=sys.argv[1], record=True)
size_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:"))
_, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, ((size_kb + 1024) * 1024, hard))  # no room for a thread's stack
try:
    engine.play("happy")
except EngineError as error:
    print(error)
resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
engine.close()
print("closed; playing:", engine.is_playing)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmSize from /proc")
def test_play_without_a_thread_to_be_had_says_why_and_the_engine_still_closes(tiny_model_dir: Path) -> None:
    """Under `ulimit -v` or `ulimit -u` play() raised a bare RuntimeError ("Resource temporarily
    unavailable"), and stop() and close() then raised "Invalid argument": the engine could not
    be closed (helper-59)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _PLAY_WITH_NO_THREAD_TO_BE_HAD, str(tiny_model_dir)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "refused the engine a thread" in result.stdout and "ulimit -u" in result.stdout, result.stdout
    assert "closed; playing: False" in result.stdout


def test_model_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        Engine(model=42)
    with pytest.raises(ModelError, match="does not exist"):
        Engine(model=tmp_path / "nowhere")


def test_set_emotion_while_stopped_updates_the_condition(engine: Engine) -> None:
    engine.set_emotion("happy:0.5,sad:0.5")
    assert engine.emotion == pytest.approx((0.5, 0.0, 0.5, 0.0))
    assert engine.stats()["emotion"] == pytest.approx((0.5, 0.0, 0.5, 0.0))


def test_close_is_idempotent_and_closes(engine: Engine) -> None:
    engine.close()
    engine.close()
    engine.stop()
    with pytest.raises(EngineError, match="closed"):
        engine.play("calm")


def test_closing_an_engine_stops_its_offline_generation_on_another_thread(engine: Engine) -> None:
    """generate_many on an asyncio executor's thread (which sees no Ctrl-C) went on for 28 s
    after the program had closed its engine on the way out (helper-80): it stops at its next
    step with EngineError. A closed engine still generates offline, as before."""
    raised: list[BaseException] = []

    def generate() -> None:
        try:
            engine.generate_many(100, 1000)  # 100,000 bars: far longer than the wait below
        except EngineError as exc:
            raised.append(exc)

    worker = threading.Thread(target=generate)
    worker.start()
    time.sleep(1.0)  # well inside the decoding (minutes here), even on a loaded machine
    engine.close()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert [str(exc) for exc in raised] == ["the engine was closed while it generated"]
    assert len(engine.generate_many(2, 80)) == 2  # more than the 64 bars done without a thread


def test_a_closed_engine_keeps_the_tempo_it_ended_with(engine: Engine) -> None:
    """stats() and offline generate() after close() (they said the constructor's 120 BPM)."""
    engine.set_bpm(90)
    engine.close()
    assert engine.stats()["bpm"] == 90
    tempos = [m.tempo for m in engine.generate(1) if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(90)]


def test_a_closed_engine_keeps_the_song_position_it_ended_at(engine: Engine) -> None:
    """stats()["step"] read 0 after close() (helper-55)."""
    import time

    engine.set_bpm(400)
    engine.play("happy")
    deadline = time.monotonic() + 10
    while engine.stats()["step"] < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    engine.close()
    assert engine.stats()["step"] >= 8


def test_model_card_is_exposed(engine: Engine) -> None:
    card = engine.model_card
    assert card["format"] == "emolive-cvae"
    assert card["sizes"]["z"] == 16
    card["name"], card["tonic"] = "edited", 5  # a copy: the engine's own card was edited
    assert engine.model_card["name"] != "edited" and engine.model_card.get("tonic") != 5


def test_walk_rate_changes_the_material(engine: Engine) -> None:
    slow = note_events(engine.generate(4, "calm"))
    engine.set_walk_rate(0.25)  # a new prior sample every beat instead of every 2 bars
    fast = note_events(engine.generate(4, "calm"))
    assert fast != slow
    engine.set_walk_rate(2)
    assert note_events(engine.generate(4, "calm")) == slow
    for too_fast in (0, -1, 0.03):  # one message for every value below one 16th step
        with pytest.raises(ValueError, match=r"bars must be in 0\.0625\.\.100000"):
            engine.set_walk_rate(too_fast)


def test_card_sampling_defaults_are_used(tiny_model_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    model = tmp_path / "capped"
    shutil.copytree(tiny_model_dir, model)
    card = json.loads((model / "model_card.json").read_text())
    card["sampling"]["max_onsets_per_step"] = 3
    card["sampling"]["temperature"] = 0.7
    (model / "model_card.json").write_text(json.dumps(card))
    with Engine(model=model, seed=4) as capped, Engine(model=tiny_model_dir, seed=4) as free:
        assert capped.stats()["temperature"] == pytest.approx(0.7)
        per_step = Counter(t for t, kind, _, _ in note_events(capped.generate(4)) if kind == "note_on")
        assert per_step and max(per_step.values()) <= 3
        free_per_step = Counter(t for t, kind, _, _ in note_events(free.generate(4)) if kind == "note_on")
        assert max(free_per_step.values()) > 3  # the random model draws many more
    with Engine(model=model, seed=4, temperature=1.5) as chosen:
        assert chosen.stats()["temperature"] == pytest.approx(1.5)


def test_every_performance_starts_with_a_note_in_the_key() -> None:
    """Step 0 of a performance starts a note even where the draw is silent (a sparse, cold
    calm on the shipped model), within the key lock: play() is heard at once."""
    with Engine(seed=0, temperature=0.2) as engine:
        engine.set_key("A", "minor")
        pieces = engine.generate_many(24, 1, "calm")
    a_minor = {9, 11, 0, 2, 4, 5, 7}
    for piece in pieces:
        first = [n for tick, kind, n, _ in note_events(piece) if kind == "note_on" and tick == 0]
        assert first and all(n % 12 in a_minor for n in first)


def test_live_play_loads_neither_numpy_nor_mido_nor_torch() -> None:
    """The live path stays small (docs/benchmarks.md, memory): numpy alone is ~12 MB resident."""
    import subprocess
    import sys

    code = ("import sys, time\n"
            "from emolive import Engine\n"
            "with Engine(seed=1) as engine:\n"
            "    engine.play('happy'); time.sleep(0.3); engine.stop()\n"
            "print(sorted(m for m in ('numpy', 'mido', 'torch', 'rtmidi') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _model_trained_in(tonic: int | None, source: Path, folder: Path) -> Path:
    """A copy of ``source`` whose card says every training clip was moved to ``tonic``."""
    import json
    import shutil

    model = folder / f"tonic_{tonic}"
    shutil.copytree(source, model)
    card_path = model / "model_card.json"
    card = json.loads(card_path.read_text())
    card["tonic"] = tonic
    card_path.write_text(json.dumps(card))
    return model


def test_a_model_trained_in_c_is_transposed_to_the_key(tmp_path: Path) -> None:
    # The bundled model's notes, with its card saying it was trained in C. (The tiny random
    # model plays every key up to both ends, where a transposed note has no key to go to.)
    from emolive.engine import DEFAULT_MODEL_DIR

    with Engine(model=_model_trained_in(0, DEFAULT_MODEL_DIR, tmp_path), seed=3) as engine:
        plain = note_events(engine.generate(4, "calm"))
        notes = [n for _, kind, n, _ in plain if kind == "note_on"]
        assert notes and 21 + 3 <= min(notes) and max(notes) <= 108 - 2
        engine.set_key("D", "chromatic")  # up 2, no scale lock
        assert note_events(engine.generate(4, "calm")) == [
            (tick, kind, note + 2, velocity) for tick, kind, note, velocity in plain]
        engine.set_key("D")  # no scale given: the same, the mode left to the emotion
        assert engine.key == ("D", "chromatic")
        assert note_events(engine.generate(4, "calm")) == [
            (tick, kind, note + 2, velocity) for tick, kind, note, velocity in plain]
        engine.set_key("A", "chromatic")  # down 3
        assert note_events(engine.generate(4, "calm")) == [
            (tick, kind, note - 3, velocity) for tick, kind, note, velocity in plain]
        engine.set_key("A", "minor")  # down 3, and locked to A minor
        allowed = scale_mask("A", "minor")
        moved = [n for _, kind, n, _ in note_events(engine.generate(4, "calm")) if kind == "note_on"]
        assert moved and all((allowed >> (n % 12)) & 1 for n in moved)
        engine.set_key(None)
        assert note_events(engine.generate(4, "calm")) == plain
        plain_many = [note_events(m) for m in engine.generate_many(2, 2, emotion="sad")]
        engine.set_key("D", "chromatic")  # the batched path moves its notes the same way
        assert [note_events(m) for m in engine.generate_many(2, 2, emotion="sad")] == [
            [(tick, kind, note + 2, velocity) for tick, kind, note, velocity in events]
            for events in plain_many]


def test_a_model_trained_in_every_key_is_not_transposed(tiny_model_dir: Path) -> None:
    with Engine(model=tiny_model_dir, seed=3) as engine:
        assert engine.model_card["tonic"] is None
        plain = note_events(engine.generate(4, "calm"))
        engine.set_key("D", "chromatic")
        assert note_events(engine.generate(4, "calm")) == plain
        engine.set_key("A")  # no scale given: it cannot move, so it is locked to A major
        assert engine.key == ("A", "major")
        allowed = scale_mask("A", "major")
        notes = [n for _, kind, n, _ in note_events(engine.generate(4, "calm")) if kind == "note_on"]
        assert notes and all((allowed >> (n % 12)) & 1 for n in notes)


def test_a_card_with_a_bad_tonic_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    for bad in (12, -1, "C"):
        with pytest.raises(ModelError, match="tonic"):
            Engine(model=_model_trained_in(bad, tiny_model_dir, tmp_path / str(bad)))


def test_transposition_takes_the_nearer_way_to_the_key() -> None:
    assert transposition("C", 0) == 0
    assert transposition("A", 0) == -3 and transposition("G", 0) == -5
    assert transposition("F#", 0) == 6 and transposition("F", 0) == 5
    assert transposition("C", 9) == 3  # a model trained in A, played in C
    assert transposition(None, 0) == 0 and transposition("A", None) == 0


# Each scale's notes on C, spelled out from music theory (not read from emolive.scales.SCALES).
SCALE_NOTES_ON_C = {
    "major": "C D E F G A B",
    "minor": "C D Eb F G Ab Bb",
    "harmonic_minor": "C D Eb F G Ab B",
    "melodic_minor": "C D Eb F G A B",  # ascending
    "dorian": "C D Eb F G A Bb",
    "phrygian": "C Db Eb F G Ab Bb",
    "lydian": "C D E F# G A B",
    "mixolydian": "C D E F G A Bb",
    "locrian": "C Db Eb F Gb Ab Bb",
    "major_pentatonic": "C D E G A",
    "minor_pentatonic": "C Eb F G Bb",
    "blues": "C Eb F Gb G Bb",
    "chromatic": "C Db D Eb E F Gb G Ab A Bb B",
}
PITCH_CLASS_OF = {"C": 0, "Db": 1, "D": 2, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6, "G": 7, "Ab": 8,
                  "A": 9, "Bb": 10, "B": 11}


def _mask_of(notes: str, shift: int = 0) -> int:
    return sum(1 << ((PITCH_CLASS_OF[note] + shift) % 12) for note in set(notes.split()))


@pytest.mark.parametrize("scale", sorted(SCALE_NOTES_ON_C))
def test_every_scale_holds_its_notes(scale: str) -> None:
    assert scale_mask("C", scale) == _mask_of(SCALE_NOTES_ON_C[scale]), f"{scale} on C"
    assert scale_mask("A", scale) == _mask_of(SCALE_NOTES_ON_C[scale], shift=9), f"{scale} on A"


def test_every_scale_is_in_the_table_of_notes() -> None:
    from emolive.scales import SCALES

    assert sorted(SCALES) == sorted(SCALE_NOTES_ON_C)


@pytest.mark.parametrize(("alias", "scale"), [
    ("ionian", "major"), ("aeolian", "minor"), ("natural_minor", "minor"), ("natural minor", "minor"),
    ("Natural-Minor", "minor"), ("harmonic-minor", "harmonic_minor"), ("melodic minor", "melodic_minor"),
    ("major-pentatonic", "major_pentatonic"), ("MINOR PENTATONIC", "minor_pentatonic"),
])
def test_scale_aliases_and_spellings_are_the_scale(alias: str, scale: str) -> None:
    assert scale_mask("D", alias) == scale_mask("D", scale)


def test_accidentals_wrap_around_the_octave() -> None:
    from emolive.scales import pitch_class

    assert pitch_class("Cb") == 11  # C flat is B
    assert pitch_class("B#") == 0  # B sharp is C
    assert pitch_class("Bbb") == 9  # B double flat is A
    assert scale_mask("Cb", "major") == scale_mask("B", "major")


def _wait_for_steps(engine: Engine, steps: int, timeout_s: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while engine.stats()["step"] < steps:
        assert time.monotonic() < deadline, "the engine did not play"
        time.sleep(0.005)


def test_a_glide_may_last_a_day(engine: Engine) -> None:
    """An installation glides from night to day: 43,200 bars is 24 hours at 120 BPM (the limit
    was 10,000 bars, 5.6 hours). A bar of it moves the blend by 1/43,200."""
    engine.set_bpm(400)
    engine.play("calm")
    engine.set_emotion("happy", bars=43_200)
    _wait_for_steps(engine, 24)
    engine.stop()
    moved = engine.emotion[0]
    assert 0.0 < moved < 3 / 43_200  # under 3 bars of the glide in (lookahead included)
    with pytest.raises(ValueError, match=r"bars must be in 0\.\.100000, got 100001"):
        engine.set_emotion("sad", bars=100_001)


def test_resume_goes_on_with_a_glide_that_stop_interrupted(engine: Engine) -> None:
    engine.set_bpm(400)  # a 16th step is 37.5 ms
    engine.play("calm")
    engine.set_emotion("happy", bars=2)  # 32 steps
    _wait_for_steps(engine, 12)
    engine.stop()
    halfway = engine.emotion
    assert 0.1 < halfway[0] < 0.9 and halfway[0] + halfway[3] == pytest.approx(1.0)
    engine.resume()
    # From where it was: the generator may already have decoded a few steps ahead (a slow,
    # sanitized build decodes while this thread reads), but it has neither gone back to calm
    # nor jumped to happy.
    assert engine.is_playing and halfway[0] - 1e-6 <= engine.emotion[0] < halfway[0] + 0.4
    assert 16 <= engine.stats()["step"] < 28  # on from the next bar line (12 steps: 0.45 s)
    _wait_for_steps(engine, 40)
    assert engine.emotion == pytest.approx((1.0, 0.0, 0.0, 0.0))  # and on to the target
    engine.resume()  # while playing: nothing changes
    assert engine.emotion == pytest.approx((1.0, 0.0, 0.0, 0.0)) and engine.is_playing
    engine.stop()
    engine.play("sad")  # play jumps, as before
    assert engine.emotion == pytest.approx((0.0, 0.0, 1.0, 0.0))


@pytest.mark.parametrize("call", ["engine.generate(4)", "engine.generate(200)", "engine.generate_many(8, 20)"])
def test_a_daemon_thread_generating_when_the_program_exits_does_not_abort_it(call: str) -> None:
    """CPython ends a daemon thread that takes the GIL back during finalization with
    pthread_exit; unwinding through the binding's GIL guard aborted the process (status 134,
    'terminate called without an active exception'), 3 times in 3 with the bundled model."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import threading, time
        from emolive import Engine
        engine = Engine(seed=1)  # the bundled model: its steps are long enough to be caught in
        def loop():
            while True:
                {call}
        threading.Thread(target=loop, daemon=True).start()
        time.sleep(0.3)
    """)
    # Under scripts/sanitize_python.sh thread: the daemon thread is parked at exit by design
    # (cpp/bindings/gil.cpp) and never joins the worker its generate() started, which
    # ThreadSanitizer reports as a thread leak when the process ends; races are still reported.
    env = dict(os.environ)
    if "TSAN_OPTIONS" in env:
        env["TSAN_OPTIONS"] += ":report_thread_leaks=0"
    for _ in range(3):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=60, env=env)
        assert result.returncode == 0, result.stderr
        assert "terminate called" not in result.stderr


FORK_CHILD = r"""
import os, sys, time
from emolive import Engine, EngineError
engine = Engine(model=sys.argv[1], record=True, seed=5)
engine.play("calm")
time.sleep(0.3)
pid = os.fork()
if pid == 0:  # the child: the engine's threads and port are the parent's
    if engine.is_playing or "closed" not in repr(engine):  # read the parent's state (helper-63)
        os._exit(5)
    if engine.stats()["step"] != 0:  # the parent's song position, under its locks (helper-66)
        os._exit(6)
    try:
        engine.play("sad")
        os._exit(3)
    except EngineError as err:
        ok = "another process" in str(err)
    engine.stop()
    engine.close()
    engine.close()
    stats = engine.stats()
    del engine  # the destructor
    import gc; gc.collect()
    os._exit(0 if ok and stats["sounding"] >= 0 else 4)
_, status = os.waitpid(pid, 0)
before = engine.stats()["notes_sent"]
time.sleep(0.5)
after = engine.stats()["notes_sent"]
engine.close()
print(os.waitstatus_to_exitcode(status), after > before, engine.stats()["sounding"])
"""


GENERATE_IN_A_FORKED_CHILD = r"""
import os, sys, time
from emolive import Engine
engine = Engine(model=sys.argv[1], seed=5)
engine.generate(1)  # the main thread's generation worker now runs in this process
pid = os.fork()
if pid == 0:  # the child has no such thread: its generation must not wait for it
    try:
        os._exit(0 if len(Engine(model=sys.argv[1], seed=6).generate(2).tracks[0]) > 3 else 3)
    finally:
        os._exit(4)
deadline = time.monotonic() + 30
while os.waitpid(pid, os.WNOHANG) == (0, 0):
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        sys.exit("the child's generate() hung")
    time.sleep(0.05)
print(len(engine.generate(1).tracks[0]) > 3)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_generates_on_its_main_thread(tiny_model_dir: Path) -> None:
    """The main thread's offline work runs on a worker thread made once per process; a child of
    fork() has none and makes its own."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", GENERATE_IN_A_FORKED_CHILD, str(tiny_model_dir)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True"], result.stderr[-2000:]


def test_an_engine_playing_at_fork_is_closed_in_the_child_without_touching_the_parents(
        tiny_model_dir: Path) -> None:
    """A child of fork() that closed (or dropped) an engine playing at the fork died of SIGSEGV:
    close() joined the parent's threads, which are not in the child. There it counts as closed
    (play raises), and the parent plays on undisturbed."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", FORK_CHILD, str(tiny_model_dir)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["0", "True", "0"], (result.stdout, result.stderr[-2000:])


def test_flags_must_be_python_bools_and_numpys_is_named_as_such() -> None:
    """record=np.bool_(True) said "must be True or False, not bool" (helper-63)."""
    import numpy as np

    with pytest.raises(TypeError, match=r"record must be True or False \(a Python bool\), not numpy.bool"):
        Engine(record=np.bool_(True))
    with pytest.raises(TypeError, match=r"clock_out must be True or False \(a Python bool\), not int"):
        Engine(clock_out=1)


def test_an_engine_refuses_copies_and_keeps_its_settings_read_only(tiny_model_dir: Path) -> None:
    """copy.copy shared the live engine, so dropping the copy closed the original; assigning
    channel, program or seed changed only what generate() wrote, not the live notes."""
    import copy
    import pickle

    engine = Engine(model=str(tiny_model_dir), seed=3, channel=2, program=5)
    for make_copy in (copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="cannot be copied"):
            make_copy(engine)
    with pytest.raises(TypeError):
        pickle.dumps(engine)
    for name, value in (("seed", 4), ("channel", 3), ("program", 6), ("port_name", "x")):
        with pytest.raises(AttributeError):
            setattr(engine, name, value)
    assert (engine.seed, engine.channel, engine.program, engine.port_name) == (3, 2, 5, None)
    assert "seed=3" in repr(engine) and "channel=2" in repr(engine) and repr(engine).endswith("stopped>")
    engine.close()
    assert repr(engine).endswith("closed>")


def test_stats_read_the_temperature_as_set_and_dir_lists_the_lazy_names(tiny_model_dir: Path) -> None:
    import emolive

    engine = Engine(model=str(tiny_model_dir))
    engine.set_temperature(0.8)
    assert engine.stats()["temperature"] == 0.8  # not float32's 0.800000011920929
    engine.close()
    assert {"Engine", "EngineError", "PortError", "list_ports"} <= set(dir(emolive))
    assert not {"Any", "TYPE_CHECKING", "annotations", "quiet_interrupt_while_starting"} & set(dir(emolive))


def test_a_virtual_port_name_with_a_colon_is_refused(tiny_model_dir: Path) -> None:
    """JACK names ports client:port: --virtual "a:b/c" made the port 'a:b/c:a:b/c'."""
    with pytest.raises(ValueError, match="cannot contain ':'"):
        Engine(model=tiny_model_dir, virtual="a:b/c")


@pytest.mark.parametrize("name", ["a\0b", "\0zz"])
def test_a_virtual_port_name_with_a_nul_is_refused(tiny_model_dir: Path, name: str) -> None:
    """C strings end at NUL: it was a PortError cut short ("a JACK client named 'a")."""
    with pytest.raises(ValueError, match="cannot contain a NUL character"):
        Engine(model=tiny_model_dir, virtual=name)


@pytest.mark.parametrize("name", ["a\x1b[31mRED", "a\nb", "tab\there"])
def test_a_virtual_port_name_with_control_characters_is_refused(tiny_model_dir: Path, name: str) -> None:
    """Other programs' port lists print the name raw: an escape sequence recoloured their
    terminal, a newline split their listing (helper-78)."""
    with pytest.raises(ValueError, match="cannot contain control characters"):
        Engine(model=tiny_model_dir, virtual=name)


@pytest.mark.parametrize("name", ["x" * 64, "é" * 32, "emoji🎹" * 8])
def test_a_virtual_port_name_too_long_for_a_midi_client_is_refused(tiny_model_dir: Path, name: str) -> None:
    """64 bytes or more: JACK said 'server not running?' (the name names the client too)."""
    with pytest.raises(ValueError, match=r"at most 63 bytes \(it names its MIDI client too\), got"):
        Engine(model=tiny_model_dir, virtual=name)


@pytest.mark.jack
def test_a_virtual_port_name_of_63_bytes_opens(jack_server: str, tiny_model_dir: Path) -> None:
    with Engine(model=tiny_model_dir, virtual="v" * 61 + "é") as engine:  # 63 bytes
        assert engine.port_name == "v" * 61 + "é"


STALLED_CHILD = r"""
import os, signal, sys, time
from emolive import Engine
engine = Engine(model=sys.argv[1], record=True, bpm=400, seed=3)
engine.play("happy")
time.sleep(0.5)
os.kill(os.getppid(), signal.SIGUSR1)  # ready: the parent stops this process for 2 s
time.sleep(2.5)
stats = engine.stats()
engine.close()
print(stats["missed_steps"], stats["step"])
"""


def test_a_stalled_process_is_not_taken_for_a_model_that_cannot_keep_up(tiny_model_dir: Path) -> None:
    """After a SIGSTOP of 3 s the clock played the steps it owed at once, none decoded, and the
    command said "the model cannot keep up" (helper-66): a step the clock itself reaches late
    is no sign of a slow model."""
    import signal
    import subprocess
    import sys

    ready = threading.Event()
    previous = signal.signal(signal.SIGUSR1, lambda *_: ready.set())
    try:
        child = subprocess.Popen([sys.executable, "-c", STALLED_CHILD, str(tiny_model_dir)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert ready.wait(60), child.communicate(timeout=60)
        child.send_signal(signal.SIGSTOP)
        time.sleep(2.0)
        child.send_signal(signal.SIGCONT)
        out, err = child.communicate(timeout=60)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert child.returncode == 0, err[-2000:]
    missed, step = (int(x) for x in out.split())
    assert step > 60 and missed == 0, (missed, step)  # 400 BPM: 26.7 steps a second, for 3 s


def _key_signatures(midi: mido.MidiFile) -> list[str]:
    return [m.key for track in midi.tracks for m in track if m.type == "key_signature"]


def test_a_piece_in_a_key_says_its_key_signature(engine: Engine) -> None:
    """Files made with --key/--scale held no key signature: a DAW or a notation program showed
    them in C major (helper-73). A mode is written in its parent major's signature, as notation
    does; no key, or no scale on a model with a tonic (the emotion picks the mode), none."""
    engine.set_key("F#", "minor")
    assert _key_signatures(engine.generate(1, "sad")) == ["F#m"]
    assert [_key_signatures(m) for m in engine.generate_many(2, 1, "sad")] == [["F#m"], ["F#m"]]
    engine.set_key("Gb", "major")
    assert _key_signatures(engine.generate(1)) == ["Gb"]
    engine.set_key("D", "dorian")
    assert _key_signatures(engine.generate(1)) == ["C"]
    engine.set_key("D", "chromatic")
    assert _key_signatures(engine.generate(1)) == []
    engine.set_key(None)
    assert _key_signatures(engine.generate(1)) == []


@pytest.mark.parametrize(("key", "scale", "signature"), [
    ("C", "major", "C"), ("A", "minor", "Am"), ("F#", "minor", "F#m"), ("Gb", "minor", "F#m"),
    ("A#", "major", "Bb"), ("bb", "aeolian", "Bbm"), ("G\u266d", "major", "Gb"), ("D#", "dorian", "C#"),
    ("Eb", "dorian", "Db"), ("E", "phrygian", "C"), ("A", "blues", "Am"), ("C", "major pentatonic", "C"),
    ("G", "chromatic", None)])
def test_key_signatures_are_spelled_as_the_key_where_one_is(key: str, scale: str, signature: str | None) -> None:
    from emolive.scales import key_signature

    assert key_signature(key, scale) == signature
    if signature is not None:
        mido.MetaMessage("key_signature", key=signature)  # one a MIDI file can hold
