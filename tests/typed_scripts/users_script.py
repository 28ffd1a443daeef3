"""A user's script, as README.md and docs/engine.md show the API (numpy numbers included):
tests/test_typing.py checks that ``mypy --strict`` accepts it. It is type-checked, never run."""

from __future__ import annotations

import time

import mido  # type: ignore[import-untyped]  # mido ships no type hints
import numpy as np

import emolive
from emolive import Engine, EngineError, ModelError, PortError, find_port, known_emotions, list_ports, parse_emotion
from emolive.files import render_wav, write_midi

ports: list[str] = list_ports()
index: int = find_port("IAC Driver")
names: list[str] = known_emotions()
blend: tuple[float, float, float, float] = parse_emotion({"happy": np.float32(0.5), "calm": 1})
also = parse_emotion([np.float64(0.25), 0, 0, np.int64(1)]), parse_emotion((0.2, -0.3)), parse_emotion("Q1")
from_array = parse_emotion(np.array([1.0, 0.0, 0.0, 1.0]))

with Engine(port="IAC Driver", bpm=100, channel=1, seed=7) as engine:
    engine.morph("sad", "excited", bars=8)
    time.sleep(19.2)
    engine.set_emotion({"happy": np.float32(0.6), "calm": 0.4}, bars=np.float64(1.5))
    engine.set_emotion((0.2, -0.3))
    engine.set_bpm(np.float32(99.5))
    engine.stop()
    engine.resume(bar=np.int64(4))
    weights: tuple[float, float, float, float] = engine.emotion
    late: int = engine.stats()["late_notes"]
    lateness: np.ndarray = engine.lateness_us()

offline = Engine(seed=np.int64(1), temperature=0.9, record=True)
midi: mido.MidiFile = offline.generate(16, emotion="happy:0.6,calm:0.4", seed=5, morph_to="sad", morph_bars=1)
pieces: list[mido.MidiFile] = offline.generate_many(3, 2, seeds=np.array([1, 2, 3], dtype=np.uint64))
sent: list[tuple[float, bytes]] = offline.recorded()
card: dict[str, object] = offline.model_card
write_midi(midi, "out.mid")
render_wav(midi, "out.wav")
offline.close()
try:
    Engine(port="nowhere")
except (EngineError, ModelError, PortError) as error:
    print(error, emolive.__version__)
