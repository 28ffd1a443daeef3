"""Measure a velocity calibration for an exported model (then export again with it).

    python -m emolive.training.calibrate --model DIR --out velocity.json [--temperature 1.0]
    python -m emolive.training.export --checkpoint CKPT --out DIR --velocity-calibration velocity.json

Why: the emotion critic rewards loudness differences between quadrants, and the trained decoder
exaggerates them (e.g. calm far softer than real calm music). Per quadrant, the velocities of
onsets in prior samples are mapped linearly onto the mean and spread of the onsets of real
training segments of that quadrant: ``gain = real_std / generated_std``,
``bias = real_mean - gain * generated_mean`` (velocities in 0..1). The map is part of the
exported ``decoder_step`` and is recorded in the card (``velocity_calibration``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from emolive.cli_options import TEMPERATURE_RANGE, error_line, integer_in, number_in
from emolive.files import check_writable, replaced_on_success

from .config import MAX_SEED, add_labelled_data_flags, check_generic_pair, labelled_data_config
from .onnx_runner import N_KEYS, OnnxCVAE, Sampling, check_model_dir
from .train import DataError, SegmentBatches, load_data


def onset_velocities(roll: np.ndarray) -> np.ndarray:
    """Velocities (0..1) of every onset in float rolls ``[N, T, 264]``."""
    onset = roll[..., :N_KEYS] > 0.5
    return roll[..., 2 * N_KEYS:][onset]


#: Fewer onsets than this (real or generated) in a quadrant: it is not measured but left as it
#: is (gain 1, bias 0), and said so.
MIN_ONSETS = 10


def measure(model: OnnxCVAE, real_by_q: list[np.ndarray], samples: int, sampling: Sampling,
            seed: int) -> dict:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((samples, model.z_dim)).astype(np.float32)
    steps = model.card["sizes"]["segment_steps"]
    gain, bias, table, unmeasured = [], [], [], []
    for q in range(4):
        emotion = np.tile(np.eye(4, dtype=np.float32)[[q]], (samples, 1))
        gen = onset_velocities(model.generate(z, emotion, steps, sampling, rng))
        real = onset_velocities(real_by_q[q])
        if len(gen) < MIN_ONSETS or len(real) < MIN_ONSETS:  # left as it is: gain 1, bias 0
            gain.append(1.0)
            bias.append(0.0)
            unmeasured.append({"quadrant": q, "real_onsets": int(len(real)),
                               "generated_onsets": int(len(gen))})
            continue
        g = float(real.std() / max(gen.std(), 1e-3))
        gain.append(g)
        bias.append(float(real.mean() - g * gen.mean()))
        table.append({"quadrant": q, "real_mean": float(real.mean() * 127),
                      "real_std": float(real.std() * 127),
                      "generated_mean": float(gen.mean() * 127),
                      "generated_std": float(gen.std() * 127)})
    return {"gain": gain, "bias": bias, "measured_midi_velocity": table,
            "not_measured": unmeasured,
            "method": "per quadrant, linear map of prior-sample onset velocities onto the mean "
                      "and std of real training onsets", "temperature": sampling.temperature}


def check_uncalibrated(model_dir: str | Path) -> None:
    """ValueError when the model already maps its velocities (its card's velocity_calibration):
    measured through that map the gains come out near 1, and exporting the checkpoint with them
    would throw the map away."""
    card = json.loads((Path(model_dir) / "model_card.json").read_text(encoding="utf-8"))
    if card.get("velocity_calibration"):
        raise ValueError(f"{model_dir} is already calibrated (its card has a velocity_calibration): "
                         "calibrate the export made without --velocity-calibration")
    if _exported_card(Path(model_dir), card).get("velocity_calibration"):
        # The map is in the graph; a card edited by hand no longer says so (the gains came out 1).
        raise ValueError(f"{model_dir} is already calibrated: its decoder_step file holds a velocity "
                         "calibration (in the card export wrote into it) that model_card.json no "
                         "longer names; calibrate the export made without --velocity-calibration")


def _exported_card(model_dir: Path, card: dict) -> dict:
    """The card export wrote into the decoder step's ONNX metadata ({} where there is none)."""
    import onnx

    step = model_dir / str(card.get("files", {}).get("decoder_step", ""))
    if not step.is_file():
        return {}  # the runtime's check of the folder names what is missing
    try:
        proto = onnx.load(str(step), load_external_data=False)
    except Exception:  # noqa: BLE001 - a corrupt file: loading the model says what is wrong
        return {}
    text = next((p.value for p in proto.metadata_props if p.key == "model_card"), "{}")
    try:
        embedded = json.loads(text)
    except ValueError:
        return {}
    return embedded if isinstance(embedded, dict) else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emolive calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="exported model directory (uncalibrated)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    add_labelled_data_flags(parser)
    parser.add_argument("--samples", type=integer_in(1, None, "--samples"), default=128)
    parser.add_argument("--temperature", type=number_in(*TEMPERATURE_RANGE, "--temperature"),
                        default=1.0)
    parser.add_argument("--max-onsets-per-step", type=integer_in(0, None, "--max-onsets-per-step"),
                        default=0)
    parser.add_argument("--seed", type=integer_in(0, MAX_SEED, "--seed"), default=0)
    args = parser.parse_args(argv)
    try:
        check_model_dir(args.model)
        check_uncalibrated(args.model)
        check_writable(args.out)  # before the minutes of measuring, not after
        check_generic_pair(args.generic_folder, args.generic_csv)
    except (ValueError, OSError) as err:  # ModelDirError, the generic pair
        return error_line(parser.prog, err)
    model = OnnxCVAE(args.model)
    cfg = labelled_data_config(args, model.card)
    try:
        prep = load_data(cfg, log=lambda text: print(text, file=sys.stderr))
        batches = SegmentBatches(prep, "train", cfg, args.seed)
    except DataError as err:
        return error_line(parser.prog, err)
    rows = np.random.default_rng(args.seed).permutation(len(batches))[:4000]
    roll, _, label = batches.tensors(np.sort(rows))
    roll, label = roll.numpy(), label.numpy()
    sampling = Sampling(temperature=args.temperature,
                        max_onsets_per_step=args.max_onsets_per_step)
    result = measure(model, [roll[label == q] for q in range(4)], args.samples, sampling,
                     args.seed)
    with replaced_on_success(args.out) as out:  # a failed write keeps the file there before
        out.write_text(json.dumps(result, indent=2) + "\n")
    for row in result["measured_midi_velocity"]:
        print(f"Q{row['quadrant'] + 1}: generated {row['generated_mean']:.0f}+-"
              f"{row['generated_std']:.0f}, real {row['real_mean']:.0f}+-{row['real_std']:.0f}")
    for row in result["not_measured"]:
        print(f"Q{row['quadrant'] + 1}: not calibrated (gain 1, bias 0): {row['real_onsets']} real "
              f"and {row['generated_onsets']} generated onsets, fewer than {MIN_ONSETS} "
              "(data without that emotion?)", file=sys.stderr)
    return 0


if __name__ == "__main__":  # as `emolive calibrate ARGS`: its messages for errors, signals, statuses
    from emolive.cli import main as emolive

    raise SystemExit(emolive(["calibrate", *sys.argv[1:]]))
