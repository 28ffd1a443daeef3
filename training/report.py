"""The evaluation report: README.md with tables, PNG figures, listening MIDI and WAV files."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from emolive import files  # noqa: E402
from emolive.emotions import QUADRANT_NAMES, QUADRANTS  # noqa: E402

from .checkpoints import read_metrics  # noqa: E402
from .features import roll_to_midi  # noqa: E402
from .metrics import musical_stats  # noqa: E402
from .onnx_runner import N_KEYS, OnnxCVAE, Sampling  # noqa: E402
from .swap_in import moved_in_on_success  # noqa: E402

LISTEN_BPM = 100.0
WAV_RATE = 16000  # Hz, mono 16-bit: ~0.6 MB for 8 bars at 100 BPM
NAMES = [QUADRANT_NAMES[q][0] for q in QUADRANTS]


def _name(q: int) -> str:
    return f"{QUADRANTS[q]} {NAMES[q]}"


def render_wav(midi_path: Path, wav_path: Path) -> bool:
    """FluidSynth render to a mono 16-bit WAV with the soundfont ``emolive generate --render``
    finds (EMOLIVE_SOUNDFONT, else a system General MIDI one); False (and no file) when
    FluidSynth or a soundfont is absent."""
    stereo = wav_path.with_suffix(".stereo.wav")
    try:
        files.find_renderer()
    except files.RenderError:
        return False
    files.render_wav(midi_path, stereo, sample_rate=WAV_RATE, gain=0.7)
    with wave.open(str(stereo)) as src:
        frames = np.frombuffer(src.readframes(src.getnframes()), dtype=np.int16)
        channels, rate = src.getnchannels(), src.getframerate()
    mono = frames.reshape(-1, channels).mean(axis=1).astype(np.int16)
    with wave.open(str(wav_path), "wb") as dst:
        dst.setnchannels(1)
        dst.setsampwidth(2)
        dst.setframerate(rate)
        dst.writeframes(mono.tobytes())
    stereo.unlink()
    return True


def _draw_roll(ax, roll: np.ndarray, title: str) -> None:
    hold = roll[:, N_KEYS:2 * N_KEYS].T
    ax.imshow(hold, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1.5,
              interpolation="nearest")
    steps, keys = np.nonzero(roll[:, :N_KEYS] > 0.5)
    ax.scatter(steps, keys, s=6, c=roll[steps, 2 * N_KEYS + keys], cmap="plasma", vmin=0, vmax=1)
    for bar in range(0, len(roll), 16):
        ax.axvline(bar - 0.5, color="tab:blue", lw=0.5, alpha=0.5)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("key (0 = A0)")


def _listening(model: OnnxCVAE, sampling: Sampling, out: Path, wav: bool, seed: int) -> dict:
    """8 bars per emotion (a new latent every 2 bars) and two 8-bar morphs."""
    steps = model.card["sizes"]["segment_steps"]
    rng = np.random.default_rng(seed)
    latents = [rng.standard_normal((1, model.z_dim)).astype(np.float32) for _ in range(4)]
    files, rolls = {}, {}
    for q in range(4):
        emotion = np.eye(4, dtype=np.float32)[[q]]
        roll = model.generate(latents[0], emotion, 4 * steps, sampling, rng,
                              reseed_every=steps, z_next=latents[1:])[0]
        rolls[NAMES[q]] = roll
    for src, dst in ((2, 0), (3, 1)):  # sad -> happy, calm -> tense
        alpha = np.linspace(0, 1, 4 * steps)[:, None, None]
        emo = ((1 - alpha) * np.eye(4)[src] + alpha * np.eye(4)[dst]).astype(np.float32)
        roll = model.generate(latents[0], emo, 4 * steps, sampling, rng, reseed_every=steps,
                              z_next=latents[1:])[0]
        rolls[f"morph_{NAMES[src]}_to_{NAMES[dst]}"] = roll
    for name, roll in rolls.items():
        midi_path = out / f"{name}.mid"
        roll_to_midi(roll, midi_path, bpm=LISTEN_BPM)
        files[name] = {"midi": midi_path.name}
        if wav and (not name.startswith("morph") or name == "morph_sad_to_happy"):
            if render_wav(midi_path, out / f"{name}.wav"):
                files[name]["wav"] = f"{name}.wav"
    fig, axes = plt.subplots(len(rolls), 1, figsize=(11, 2.2 * len(rolls)), sharex=True)
    for ax, (name, roll) in zip(axes, rolls.items()):
        _draw_roll(ax, roll, name)
    axes[-1].set_xlabel("step (16th); blue lines are bars")
    fig.tight_layout()
    fig.savefig(out / "listening_rolls.png", dpi=80)
    plt.close(fig)
    return files


def _figures(results: dict, real_by_q: list[np.ndarray], generated: np.ndarray, out: Path,
             run_dir: str | None) -> None:
    kl = np.array(results["reconstruction"]["kl_per_dim"])
    fig, ax = plt.subplots(figsize=(8, 2.8))
    ax.bar(np.arange(len(kl)), np.sort(kl)[::-1])
    ax.set_xlabel("latent dimension (sorted)")
    ax.set_ylabel("KL (nats)")
    ax.set_title("KL per latent dimension on validation")
    fig.tight_layout()
    fig.savefig(out / "kl_per_dim.png", dpi=80)
    plt.close(fig)

    names = ["note_density", "pitch_range", "velocity", "polyphony", "mode"]
    present = [q for q in range(4) if len(real_by_q[q])]
    fig, axes = plt.subplots(len(names), len(present), figsize=(12, 10), squeeze=False)
    for col, q in enumerate(present):
        real, gen = musical_stats(real_by_q[q]), musical_stats(generated[q])
        for row, name in enumerate(names):
            ax = axes[row, col]
            lo = min(real[name].min(), gen[name].min())
            hi = max(real[name].max(), gen[name].max())
            bins = np.linspace(lo, hi + 1e-9, 30)
            ax.hist(real[name], bins=bins, alpha=0.5, density=True, label="real")
            ax.hist(gen[name], bins=bins, alpha=0.5, density=True, label="generated")
            overlap = results["statistics"][QUADRANTS[q]][name]["overlap"]
            ax.set_title(f"{_name(q)}: {name} (OA {overlap:.2f})", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "statistics.png", dpi=70)
    plt.close(fig)

    emo = results["emotion"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, title in ((axes[0], "real_val_confusion", "real validation segments"),
                           (axes[1], "generated_confusion", "generated (requested emotion)")):
        conf = np.array(emo[key], dtype=float)
        ax.imshow(conf / np.maximum(conf.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
        for i in range(4):
            for j in range(4):
                ax.text(j, i, int(conf[i, j]), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(4), NAMES)
        ax.set_yticks(range(4), NAMES)
        ax.set_xlabel("classifier says")
        ax.set_ylabel("true / requested")
        ax.set_title(title, fontsize=9)
    for name, morph in emo["morphs"].items():
        axes[2].plot(morph["alpha"], morph["p_target"], marker="o", label=name)
    axes[2].set_xlabel("morph position (0 = from, 1 = to)")
    axes[2].set_ylabel("P(target) by the classifier")
    axes[2].legend(fontsize=7)
    axes[2].set_title("emotion morphs", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "emotion.png", dpi=80)
    plt.close(fig)

    fig, axes = plt.subplots(2, 4, figsize=(14, 5), sharey=True)
    for q in range(4):
        if len(real_by_q[q]):
            _draw_roll(axes[0, q], real_by_q[q][0], f"real {_name(q)}")
        _draw_roll(axes[1, q], generated[q][0], f"generated {_name(q)} (same z)")
    fig.tight_layout()
    fig.savefig(out / "rolls_real_vs_generated.png", dpi=80)
    plt.close(fig)

    _training_curves(run_dir, out)


def _training_curves(run_dir: str | Path | None, out: Path) -> None:
    """``training_curves.png`` from the run's ``metrics.jsonl`` (nothing without a run)."""
    metrics_file = Path(run_dir) / "metrics.jsonl" if run_dir else None
    if metrics_file and metrics_file.is_file():
        records = [r for r in read_metrics(metrics_file)
                   if all(isinstance(r.get(part), dict) for part in ("train", "val")) and "step" in r]
        steps = [r["step"] for r in records]
        keys = ["recon", "kl"] + _loss_terms_in_use(Path(run_dir) / "config.json")
        fig, axes = plt.subplots(1, len(keys), figsize=(4.3 * len(keys), 3))
        for ax, key in zip(axes, keys):
            ax.plot(steps, [r["train"][key] for r in records], label="train (batch)")
            ax.plot(steps, [r["val"][key] for r in records], label="validation")
            ax.set_title(CURVE_TITLES.get(key, key))
            ax.set_xlabel("step")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(out / "training_curves.png", dpi=80)
        plt.close(fig)


CURVE_TITLES = {"adv_ce": "adv_ce (adversary on z; chance 1.386)",
                "critic_fake": "critic_fake (emotion critic on output)"}


def _loss_terms_in_use(config_file: Path) -> list[str]:
    """The emotion terms whose weight is positive in the run's config (all if it is unknown)."""
    try:
        cfg = json.loads(config_file.read_text())
    except (OSError, ValueError):
        cfg = {}
    return [key for key, weight in (("adv_ce", "adv_weight"), ("critic_fake", "critic_weight"))
            if cfg.get(weight, 1.0) > 0]


def card_summary(results: dict, report_folder: str) -> dict:
    """The figures copied into the model card's ``evaluation``; ``report_folder`` as given to
    the evaluation (``--report``), where its README.md is."""
    rec, emo = results["reconstruction"], results["emotion"]
    best = str(rec["best_threshold"])
    return {
        "report": f"{Path(report_folder).as_posix()}/README.md",
        "onset_f1_teacher_forced": rec["teacher_forced"][best]["f1"],
        "onset_f1_free_running": rec["free_running"][best]["f1"],
        "onset_threshold": rec["best_threshold"],
        "active_units": f"{rec['active_units']}/{rec['latent_dims']}",
        "kl_total_nats": rec["kl_total"],
        "prior_nonempty_fraction": results["prior_samples"]["nonempty_fraction"],
        "classifier_accuracy_real_val": emo["real_val_accuracy"],
        "classifier_accuracy_generated": emo["generated_accuracy"],
        **{f"classifier_{key}": emo[key] for key in ("generated_minus_real_interval", "level", "songs",
                                                      "interval_not_measured") if key in emo},
        "generated_accuracy_per_emotion": dict(zip(QUADRANTS, emo["generated_accuracy_per_emotion"])),
        "generated_valence_accuracy": emo["generated_valence_accuracy"],
        "generated_arousal_accuracy": emo["generated_arousal_accuracy"],
        **_held_out_summary(emo.get("held_out")),
        "sampling_choice": results["sampling"]["why"],
        **({"settings": results["settings"]} if "settings" in results else {}),
    }


def _held_out_summary(held: dict | None) -> dict:
    """The held-out listeners' generated-versus-real figures, where they ran."""
    if not held:
        return {}
    return {"held_out_listeners": {key: held[key] for key in (
        "skipped", "folds", "songs", "real_val_accuracy", "generated_accuracy", "generated_minus_real_interval",
        "level", "interval_not_measured") if key in held}}


def write_report(results: dict, model: OnnxCVAE, args, real_by_q: list[np.ndarray],
                 generated: np.ndarray, sampling: Sampling, log=print) -> None:
    """The report's files, written beside ``args.report`` and moved in all or none: a full disk
    or Ctrl-C part-way leaves the report before (its README was cut mid-word, or the new
    pictures sat beside the old README). Its discussion.md, the author's, is read, not written."""
    report_dir = Path(args.report)
    with moved_in_on_success(report_dir, folders=True) as out:
        (out / "samples").mkdir()
        _figures(results, real_by_q, generated, out, args.run)
        listening_sampling = Sampling(sampling.onset_threshold, sampling.hold_threshold,
                                      sampling.temperature, sample=True,
                                      max_onsets_per_step=sampling.max_onsets_per_step)
        results["listening"] = _listening(model, listening_sampling, out / "samples", args.wav,
                                          args.seed)
        results["training_curves"] = (out / "training_curves.png").is_file()
        (out / "metrics.json").write_text(json.dumps(results, indent=1) + "\n")
        from .report_text import markdown

        notes = report_dir / "discussion.md"
        text = markdown(results, notes.read_text() if notes.is_file() else "")
        (out / "README.md").write_text(text)
    log(f"wrote {report_dir / 'README.md'}")
