"""The model card of docs/model-contract.md: what the engine validates, plus provenance."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from emolive.emotions import QUADRANT_NAMES, QUADRANTS

from .model import FRAME_SIZE, N_EMOTIONS, N_KEYS, ModelConfig

FORMAT = "emolive-cvae"
FORMAT_VERSION = 1
OPSET = 18
STEPS_PER_BEAT = 4
BEATS_PER_BAR = 4
STEPS_PER_BAR = STEPS_PER_BEAT * BEATS_PER_BAR
PITCH_LOW, PITCH_HIGH = 21, 108  # MIDI; key index k = pitch - 21
#: Card entries that describe the files themselves (their format, sizes, graphs, the weights'
#: precision and calibration): the export writes them from the model and nothing may replace
#: them, or the card would not fit the files (an engine refuses them) or would misstate them.
DESCRIBES_THE_FILES = ("format", "format_version", "name", "grid", "pitch", "features", "sizes",
                       "emotions", "files", "opset", "tonic", "io", "model", "precision",
                       "velocity_calibration")
FILES = {"encoder": "encoder.onnx", "decoder_init": "decoder_init.onnx",
         "decoder_step": "decoder_step.onnx"}
BATCH_STEP = "decoder_step_batch"  # the optional fourth file (int8 exports write it)
BATCH_STEP_FILE = "decoder_step_batch.onnx"
DEFAULT_SAMPLING = {"onset_threshold": 0.5, "hold_threshold": 0.5, "temperature": 1.0}

DYNAMIC = -1  # marks a dynamic dimension (batch B, steps T) in `io`


#: What the card says about each dataset the training can use.
DATASETS = {
    "emopia": {"name": "EMOPIA 1.0", "licence": "CC BY-NC-SA 4.0",
               "citation": "Hung et al., EMOPIA, ISMIR 2021"},
    "vgmidi": {"name": "VGMIDI (labelled)", "licence": "none stated",
               "citation": "Ferreira and Whitehead, ISMIR 2019"},
}
#: The same for the unlabelled folders of ../shared/data (TrainConfig.unlabelled names).
UNLABELLED = {
    "pop909": {"name": "POP909", "licence": "MIT", "citation": "Wang et al., POP909, ISMIR 2020"},
    "vgmidi/unlabelled": {"name": "VGMIDI (unlabelled)",
                          "licence": "none stated: weights trained on them should not ship",
                          "citation": "Ferreira and Whitehead, ISMIR 2019"},
}
UNLABELLED_USE = "unlabelled pre-training (even emotion blend, no emotion terms)"
NON_COMMERCIAL = "(non-commercial use, attribution, share-alike)"


def _known_unlabelled(folder: str) -> dict[str, Any] | None:
    """The UNLABELLED entry whose name ``folder`` ends with, however it was spelt (``pop909``,
    ``./pop909/``, ``/data/pop909``: only the first was recognised, the others carded as
    "unlabelled MIDI" of unknown licence, helper-57); None for another folder."""
    parts = [p for p in PurePosixPath(folder.replace("\\", "/")).parts if p not in (".", "/")]
    for name, entry in UNLABELLED.items():
        tail = name.split("/")
        if [p.lower() for p in parts[-len(tail):]] == tail:
            return entry
    return None


def data_entries(config: dict[str, Any], clips: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """The card's ``data`` entries for one training config (TrainConfig as a dict)."""
    data = []
    for name in config.get("datasets", []):
        entry = dict(DATASETS[name])
        if clips and name in clips:
            entry["clips"] = clips[name]
        data.append(entry)
    if config.get("generic_csv"):
        data.append({"name": f"user data ({config['generic_csv']})", "licence": "unknown"})
    for folder in config.get("unlabelled", []):
        known = _known_unlabelled(folder)
        entry = dict(known) if known else {"name": f"unlabelled MIDI ({folder})", "licence": "unknown"}
        data.append({**entry, "use": UNLABELLED_USE})
    return data


def provenance(config: dict[str, Any], clips: dict[str, int] | None = None,
               earlier: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """``data`` and ``licence`` card entries for a training config, with ``earlier``: the data
    entries of the runs whose weights it started from (checkpoint "data_before")."""
    data = data_entries(config, clips)
    data += [entry for entry in earlier if entry.get("name") not in {d["name"] for d in data}]
    restricted = [d for d in data if d.get("licence", "").startswith("CC BY-NC")]
    others = [f"{d['name']} ({d.get('licence', 'unknown')})" for d in data if d not in restricted]
    if restricted:
        names = ", ".join(d["name"].split(" ")[0] for d in restricted)
        licence = (f"model weights derived from {names}: CC BY-NC-SA 4.0 {NON_COMMERCIAL}"
                   + (f"; also from {', '.join(others)}" if others else "") + "; code MIT")
    else:
        licence = "model weights derived from: " + ", ".join(others)
    return {"data": data, "licence": licence}


def checkpoint_data(ckpt: dict[str, Any]) -> list[dict[str, Any]]:
    """The data a checkpoint's weights were trained on: its run's, then its ancestors'."""
    return provenance(ckpt.get("config") or {}, earlier=ckpt.get("data_before") or [])["data"]


def io_shapes(cfg: ModelConfig,
              batch_step: bool = False) -> dict[str, dict[str, dict[str, list[int]]]]:
    """Every input and output of each file with its shape (-1 = dynamic); ``batch_step``: with
    the batch step's, which are decoder_step's."""
    b, z, l, h = DYNAMIC, cfg.z_dim, cfg.layers, cfg.state_width
    shapes = {
        "encoder": {
            "inputs": {"roll": [b, DYNAMIC, FRAME_SIZE], "emotion": [b, N_EMOTIONS]},
            "outputs": {"mu": [b, z], "logvar": [b, z]},
        },
        "decoder_init": {
            "inputs": {"z": [b, z], "emotion": [b, N_EMOTIONS]},
            "outputs": {"state": [l, b, h]},
        },
        "decoder_step": {
            "inputs": {"prev": [b, FRAME_SIZE], "z": [b, z], "emotion": [b, N_EMOTIONS],
                       "state": [l, b, h]},
            "outputs": {"onset_logits": [b, N_KEYS], "hold_logits": [b, N_KEYS],
                        "velocity": [b, N_KEYS], "state_out": [l, b, h]},
        },
    }
    if batch_step:
        shapes[BATCH_STEP] = shapes["decoder_step"]
    return shapes


def build_card(cfg: ModelConfig, *, name: str, segment_bars: int = 2, tonic: int | None = None,
               sampling: dict[str, float] | None = None, data: list[dict[str, Any]] | None = None,
               licence: str | None = None, training: dict[str, Any] | None = None,
               evaluation: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card for a model of config ``cfg``; provenance fields default to 'untrained'.

    ``tonic``: the pitch class (0 = C) every training clip was moved to (``key_normalise``),
    which the engine transposes from; None when the model was trained in every key."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "grid": {"steps_per_beat": STEPS_PER_BEAT, "beats_per_bar": BEATS_PER_BAR,
                 "steps_per_bar": STEPS_PER_BAR, "segment_bars": segment_bars},
        "pitch": {"low": PITCH_LOW, "high": PITCH_HIGH, "count": N_KEYS},
        "features": {"layout": ["onset", "hold", "velocity"], "size": FRAME_SIZE},
        "sizes": {"z": cfg.z_dim, "layers": cfg.layers, "hidden": cfg.state_width,
                  "segment_steps": segment_bars * STEPS_PER_BAR},
        "emotions": {"order": list(QUADRANTS),
                     "labels": {q: QUADRANT_NAMES[q][0] for q in QUADRANTS}},
        "files": dict(FILES),
        "opset": OPSET,
        "tonic": tonic,
        "sampling": dict(sampling or DEFAULT_SAMPLING),
        "io": io_shapes(cfg),
        "model": cfg.to_dict(),
        "data": data or [],
        "licence": licence or "random weights, no training data (test model)",
        "training": training or {},
        "evaluation": evaluation or {},
    }
