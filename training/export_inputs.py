"""What ``emolive export`` reads besides the model: its JSON files (``--card-extra``,
``--velocity-calibration``), the run's record of the checkpoint (the card's ``training``
entry), and whether ``--out`` may take the export."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from emolive.emotions import is_number

from .card import DESCRIBES_THE_FILES
from .checkpoints import read_metrics
from .config import check_out_folder
from .model import N_EMOTIONS


def training_entry(ckpt: dict[str, Any], ckpt_path: Path) -> dict[str, Any]:
    """The card's ``training`` entry of a checkpoint. One made by hand, or by recover, may lack
    an entry or hold something else there: it is taken as missing."""
    config = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    steps = ckpt.get("iter_num") if _is_count(ckpt.get("iter_num")) else None
    elapsed_s = ckpt.get("elapsed_s") if _is_finite(ckpt.get("elapsed_s")) else 0.0
    training = {"config": config, "steps": steps,
                # None for a checkpoint read back by recover (an older one says infinity)
                "best_val_loss": ckpt.get("best_val_loss") if _is_finite(ckpt.get("best_val_loss")) else None,
                "minutes": round(elapsed_s / 60, 1),
                "checkpoint": ckpt_path.name}
    resumed_at = ckpt.get("resumed_at")
    if isinstance(resumed_at, list) and resumed_at and all(_is_count(at) for at in resumed_at):
        training["resumed_at"] = resumed_at  # the steps a stopped run went on from
    losses = _validation_losses(ckpt_path.parent / "metrics.jsonl", steps)
    if losses is not None:
        training["validation_losses"] = losses
    return training


def _is_finite(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def json_file(path: str, flag: str) -> Any:
    """A JSON file given by ``flag``; ValueError naming the flag when it cannot be read, is not
    JSON, or holds NaN or infinity (which a model card, strict JSON, cannot hold)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{flag} {path}: {getattr(err, 'strerror', None) or err}") from None
    try:
        value = json.loads(text, parse_constant=_not_finite)
        json.dumps(value, allow_nan=False)  # a number too large for a float reads as infinity
    except json.JSONDecodeError as err:
        raise ValueError(f"{flag} {path} is not valid JSON: {err}") from None
    except ValueError as err:
        raise ValueError(f"{flag} {path} holds {_named(err)}, which a model card cannot hold") \
            from None
    return value


def _not_finite(name: str) -> float:
    raise ValueError(name)  # NaN, Infinity or -Infinity in a JSON file


def _named(err: ValueError) -> str:
    """The number a JSON file held that is not finite: its literal, or 'a number too large'."""
    text = str(err)
    return text if text in ("NaN", "Infinity", "-Infinity") else "a number too large for a float"


def card_extra(path: str) -> dict[str, Any]:
    """Card entries to add (sampling defaults, licence, evaluation, notes of one's own); those
    that describe the files (card.DESCRIBES_THE_FILES) are refused: ValueError."""
    extra = json_file(path, "--card-extra")
    if not isinstance(extra, dict):
        raise ValueError(f"--card-extra {path} must hold a JSON object of card entries, "
                         f"not {type(extra).__name__}")
    taken = [key for key in DESCRIBES_THE_FILES if key in extra]
    if taken:
        raise ValueError(f"--card-extra {path} sets {', '.join(map(repr, taken))}, which the export "
                         "writes from the model and its files (a name: --name; a calibration: "
                         "--velocity-calibration); remove them (a whole old card: keep only its "
                         "'sampling', say)")
    return extra


def velocity_calibration(path: str) -> dict[str, Any]:
    """emolive.training.calibrate's output: a gain and a bias per quadrant (4 finite numbers)."""
    calibration = json_file(path, "--velocity-calibration")
    ok = isinstance(calibration, dict) and all(
        isinstance(calibration.get(key), list) and len(calibration[key]) == N_EMOTIONS
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in calibration[key])
        for key in ("gain", "bias"))
    if not ok:
        raise ValueError(f"--velocity-calibration {path} is not a calibration written by "
                         f"emolive calibrate (\"gain\" and \"bias\": {N_EMOTIONS} numbers each)")
    return calibration


def _validation_losses(metrics: Path, step: int | None) -> dict[str, Any] | None:
    """The validation losses train.py logged at ``step`` (finite ones; None for the others), or
    None. A line cut short by a kill, or one that is not a record, is passed over."""
    if not metrics.is_file():
        return None
    found = None
    for record in read_metrics(metrics):
        if record.get("step") == step and isinstance(record.get("val"), dict):
            found = record["val"]
    if found is None:
        return None
    return {key: _finite_or_none(value) for key, value in found.items()}


def out_refused(out: Path, replace: bool) -> str | None:
    """Why ``--out`` cannot take the export, or None: a file, or a model folder (without
    ``replace``), whose model the export would overwrite."""
    try:
        check_out_folder(out, "--out")
    except ValueError as err:  # a file, under a file, or empty
        return str(err)
    card = out / "model_card.json"
    if (card.exists() or card.is_symlink()) and not replace:
        return (f"{out} already holds a model (model_card.json): give --replace true to replace "
                "it, or another --out")
    return None


def _finite_or_none(value: Any) -> Any:
    """``value``, or None for a float that strict JSON cannot hold (NaN, infinity)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value
