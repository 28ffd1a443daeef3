"""The exported model run through ONNX Runtime (what ships), for evaluation and listening.

Turning step outputs into played frames (the same rule the engine follows):
- a key starts a note when its onset draws 1: ``sigmoid(logit / temperature)`` as a Bernoulli
  probability (``sample=True``) or compared with ``onset_threshold`` (deterministic);
- a sounding key keeps sounding while its hold probability passes ``hold_threshold``; a key that
  was silent never starts from hold alone (no note without an onset);
- at most ``max_onsets_per_step`` keys start per step (the most probable of those drawn; 0 = no
  limit): keys are drawn independently, so an uncertain step can otherwise start a cluster of
  dozens of keys, and a cluster fed back as ``prev`` tends to beget more;
- velocity is the model's velocity at the onset step.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .card import BATCH_STEP, FILES

N_KEYS = 88
FRAME = 3 * N_KEYS


class ModelDirError(ValueError):
    """A folder that does not hold a model in the contract (docs/model-contract.md)."""


def check_model_dir(model_dir: str | Path) -> None:
    """ModelDirError saying what is wrong unless ``model_dir`` holds a model the engine would
    load: the runtime's own checks (card, files, input and output names, shapes, NaN weights)
    where the engine is built, else only that the card is there."""
    path = Path(model_dir)
    if not (path / "model_card.json").is_file():
        raise ModelDirError(f"no model_card.json in {path}")
    try:
        from emolive.engine import ModelError, load_model
    except ImportError:  # no engine in this checkout: ONNX Runtime's errors will have to do
        return
    try:
        load_model(path)
    except ModelError as err:
        raise ModelDirError(str(err)) from None


@dataclass
class Sampling:
    onset_threshold: float = 0.5
    hold_threshold: float = 0.5
    temperature: float = 1.0
    sample: bool = True  # Bernoulli onsets; False = threshold
    max_onsets_per_step: int = 0  # 0 = unlimited


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class OnnxCVAE:
    """``step_file``: the card's role of the step to decode through: ``decoder_step`` (live
    play's) or ``decoder_step_batch`` (offline generation's, docs/model-contract.md)."""

    def __init__(self, model_dir: str | Path, threads: int = 1,
                 step_file: str = "decoder_step") -> None:
        self.dir = Path(model_dir)
        self.card = json.loads((self.dir / "model_card.json").read_text())
        self.step_file = step_file
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Only the contract's files, which check_model_dir has checked: any other entry of a
        # card from elsewhere ("../../etc/passwd", a pipe) was opened as a model too.
        named = self.card["files"]
        self.sessions = {role: ort.InferenceSession(str(self.dir / named[role]), opts,
                                                    providers=["CPUExecutionProvider"])
                         for role in (*FILES, BATCH_STEP) if role in named}
        self.z_dim = self.card["sizes"]["z"]

    def through(self, step_file: str) -> OnnxCVAE:
        """The same model (the same sessions) decoding through ``step_file``."""
        if step_file not in self.sessions:
            raise KeyError(f"model {self.dir} has no {step_file} file")
        other = copy.copy(self)
        other.step_file = step_file
        return other

    def encode(self, roll: np.ndarray, emotion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, logvar = self.sessions["encoder"].run(
            None, {"roll": roll.astype(np.float32), "emotion": emotion.astype(np.float32)})
        return mu, logvar

    def init_state(self, z: np.ndarray, emotion: np.ndarray) -> np.ndarray:
        return self.sessions["decoder_init"].run(
            None, {"z": z.astype(np.float32), "emotion": emotion.astype(np.float32)})[0]

    def step(self, prev: np.ndarray, z: np.ndarray, emotion: np.ndarray,
             state: np.ndarray) -> list[np.ndarray]:
        return self.sessions[self.step_file].run(None, {
            "prev": prev.astype(np.float32), "z": z.astype(np.float32),
            "emotion": emotion.astype(np.float32), "state": state})

    def teacher_forced(self, roll: np.ndarray, z: np.ndarray,
                       emotion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Onset and hold probabilities ``[B, T, 88]`` with the true previous frames fed in."""
        batch, steps = roll.shape[:2]
        state = self.init_state(z, emotion)
        prev = np.zeros((batch, FRAME), dtype=np.float32)
        onset_p = np.zeros((batch, steps, N_KEYS), dtype=np.float32)
        hold_p = np.zeros_like(onset_p)
        for t in range(steps):
            onset_l, hold_l, _, state = self.step(prev, z, emotion, state)
            onset_p[:, t], hold_p[:, t] = _sigmoid(onset_l), _sigmoid(hold_l)
            prev = roll[:, t]
        return onset_p, hold_p

    def generate(self, z: np.ndarray, emotion: np.ndarray, steps: int, sampling: Sampling,
                 rng: np.random.Generator, reseed_every: int | None = None,
                 z_next: list[np.ndarray] | None = None) -> np.ndarray:
        """Free-running float roll ``[B, steps, 264]``.

        ``emotion`` is ``[B, 4]`` or per step ``[steps, B, 4]`` (a morph). With
        ``reseed_every`` the state is re-initialised from ``decoder_init`` every that many
        steps (the engine's phrase re-seeding), taking the next latent from ``z_next``."""
        batch = z.shape[0]
        per_step = emotion.ndim == 3
        emo = emotion[0] if per_step else emotion
        state = self.init_state(z, emo)
        prev = np.zeros((batch, FRAME), dtype=np.float32)
        out = np.zeros((batch, steps, FRAME), dtype=np.float32)
        phrase = 0
        for t in range(steps):
            emo = emotion[t] if per_step else emotion
            if reseed_every and t > 0 and t % reseed_every == 0:
                phrase += 1
                if z_next is not None:
                    z = z_next[(phrase - 1) % len(z_next)]
                state = self.init_state(z, emo)
            onset_l, hold_l, vel, state = self.step(prev, z, emo, state)
            frame = play_frame(onset_l, hold_l, vel, prev, sampling, rng)
            out[:, t] = frame
            prev = frame
        return out


def play_frame(onset_l: np.ndarray, hold_l: np.ndarray, velocity: np.ndarray, prev: np.ndarray,
               sampling: Sampling, rng: np.random.Generator) -> np.ndarray:
    """The frame played at one step from the step's outputs (see the module docstring)."""
    p_onset = _sigmoid(onset_l / sampling.temperature)
    if sampling.sample:
        onset = rng.random(p_onset.shape) < p_onset
    else:
        onset = p_onset > sampling.onset_threshold
    cap = sampling.max_onsets_per_step
    if cap > 0:
        over = onset.sum(axis=1) > cap
        if over.any():
            ranked = np.where(onset[over], p_onset[over], -1.0)
            keep = np.argsort(-ranked, axis=1)[:, :cap]
            limited = np.zeros_like(onset[over])
            np.put_along_axis(limited, keep, True, axis=1)
            onset[over] = limited & onset[over]
    sounding_before = prev[:, N_KEYS:2 * N_KEYS] > 0.5
    hold = onset | (sounding_before & (_sigmoid(hold_l) > sampling.hold_threshold))
    frame = np.zeros((onset.shape[0], FRAME), dtype=np.float32)
    frame[:, :N_KEYS] = onset
    frame[:, N_KEYS:2 * N_KEYS] = hold
    frame[:, 2 * N_KEYS:] = np.where(onset, np.clip(velocity, 1 / 127, 1.0), 0.0)
    return frame
