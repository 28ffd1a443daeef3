"""A model that fails while playing: the error is reported and no note is left sounding."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from emolive import Engine
from tests.reliability.bad_models import STEP, edit_onnx, fail_once_notes_play


def test_a_model_error_mid_stream_ends_the_sounding_notes(tiny_model_dir: Path,
                                                          tmp_path: Path) -> None:
    model = tmp_path / "fails-when-notes-play"
    shutil.copytree(tiny_model_dir, model)
    edit_onnx(STEP, fail_once_notes_play)(model)
    with Engine(model=model, bpm=400, seed=1, record=True) as engine:
        engine.play("excited")
        deadline = time.monotonic() + 10
        while not engine.stats()["generator_error"] and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = engine.stats()
        assert "Reshape" in stats["generator_error"] or "reshape" in stats["generator_error"]
        assert stats["notes_sent"] > 0  # it failed with notes sounding, not before
        deadline = time.monotonic() + 2  # the clock plays what was decoded, then ends the notes
        while engine.stats()["sounding"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.stats()["sounding"] == 0
        assert engine.is_playing  # still keeping time; stop() is the caller's to make
        sent = engine.recorded()
        # play() starts afresh (docs/engine.md): new notes, until this model fails again.
        before = engine.stats()["notes_sent"]
        engine.play("calm")
        deadline = time.monotonic() + 10
        while engine.stats()["notes_sent"] == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.stats()["notes_sent"] > before, "play() after the error played nothing"
    ons = sum(1 for _, m in sent if m[0] & 0xF0 == 0x90 and m[2] > 0)
    offs = sum(1 for _, m in sent if m[0] & 0xF0 == 0x80 or (m[0] & 0xF0 == 0x90 and m[2] == 0))
    assert ons == offs > 0
    assert [m[1] for _, m in sent if m[0] & 0xF0 == 0xB0][-3:] == [64, 123, 120]
