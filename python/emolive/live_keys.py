"""Keyboard commands while playing: what each key does to the engine.

1-4 pick an emotion (happy, tense, sad, calm) gliding over --glide-bars bars; `/` starts typing
an emotion name or blend (Enter applies, Esc cancels); up/down (or +/-) change the tempo by
BPM_STEP; right/left (or ]/[) the temperature by TEMPERATURE_STEP; space pauses and resumes;
q quits; ? shows this help.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emolive.arguments import BPM_RANGE, TEMPERATURE_RANGE
from emolive.emotions import Weights, describe_as_asked, parse_emotion
from emolive.terminal import BACKSPACE, DOWN, ENTER, ESCAPE, LEFT, RIGHT, UP

BPM_STEP = 5.0  # beats per minute per key press
TEMPERATURE_STEP = 0.1
EMOTION_KEYS = {"1": "happy", "2": "tense", "3": "sad", "4": "calm"}
HELP = ("keys: 1 happy  2 tense  3 sad  4 calm  / type an emotion (Enter)  "
        "up/down or +/- tempo  right/left or ]/[ temperature  space pause  q quit")


@dataclass
class KeyCommands:
    """Applies key presses to an engine; ``typing`` holds a half-typed emotion name."""

    engine: Any
    glide_bars: int
    transport_is_external: bool = False  # with --sync the master starts and stops us
    typing: str | None = None
    quit_requested: bool = False
    messages: list[str] = field(default_factory=list)  # feedback for the status display
    on_emotion: Callable[[Weights], None] | None = None  # told each emotion a key sets

    def prompt(self) -> str | None:
        """The typing prompt to show instead of the status, or None."""
        return None if self.typing is None else f"emotion> {self.typing}"

    def press(self, key: str) -> None:
        if self.typing is not None:
            self._type(key)
        elif key in EMOTION_KEYS:
            self._set_emotion(EMOTION_KEYS[key])
        elif key == "/":
            self.typing = ""
        elif key in (UP, "+", "="):
            self._change_bpm(+BPM_STEP)
        elif key in (DOWN, "-", "_"):
            self._change_bpm(-BPM_STEP)
        elif key in (RIGHT, "]"):
            self._change_temperature(+TEMPERATURE_STEP)
        elif key in (LEFT, "["):
            self._change_temperature(-TEMPERATURE_STEP)
        elif key == " ":
            self._toggle_pause()
        elif key in ("q", "Q"):
            self.quit_requested = True
        elif key in ("?", "h", "H"):
            self.messages.append(HELP)

    def _type(self, key: str) -> None:
        assert self.typing is not None
        if key == ESCAPE:
            self.typing = None
        elif key == BACKSPACE:
            self.typing = self.typing[:-1]
        elif key == ENTER:
            text, self.typing = self.typing, None
            if text.strip():
                self._set_emotion(text)
        elif len(key) == 1 and key.isprintable():
            self.typing += key

    def _set_emotion(self, text: str) -> None:
        try:
            weights = parse_emotion(text)
        except ValueError as exc:
            self.messages.append(str(exc))
            return
        if self.on_emotion is not None:  # first: a controller moved after it is newer (helper-72)
            self.on_emotion(weights)
        self.engine.set_emotion(weights, bars=self.glide_bars)
        glide = f" over {self.glide_bars} bars" if self.glide_bars else ""
        self.messages.append(f"-> {describe_as_asked(text, weights)}{glide}")  # an alias: its quadrant too

    def _change_bpm(self, step: float) -> None:
        if self.transport_is_external:
            self.messages.append("--sync: the tempo follows the clock master")
            return
        bpm = min(BPM_RANGE[1], max(BPM_RANGE[0], float(self.engine.stats()["bpm"]) + step))
        self.engine.set_bpm(bpm)

    def _change_temperature(self, step: float) -> None:
        current = float(self.engine.stats()["temperature"])
        value = round(min(TEMPERATURE_RANGE[1], max(TEMPERATURE_RANGE[0], current + step)), 2)
        self.engine.set_temperature(value)

    def _toggle_pause(self) -> None:
        if self.transport_is_external:
            self.messages.append("--sync: the clock master starts and stops playing")
        elif self.engine.is_playing:
            self.engine.stop()
        else:
            self.engine.resume()  # a glide under way goes on to its target
