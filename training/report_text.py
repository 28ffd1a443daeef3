"""The Markdown of docs/evaluation/README.md, from the evaluation's results dict."""

from __future__ import annotations

from emolive.emotions import QUADRANT_NAMES, QUADRANTS

NAMES = {q: QUADRANT_NAMES[q][0] for q in QUADRANTS}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _target(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _bars(n: int) -> str:
    return f"{n} bar" if n == 1 else f"{n} bars"


def _reconstruction(rec: dict, bars: int) -> list[str]:
    best = str(rec["best_threshold"])
    tf, fr = rec["teacher_forced"], rec["free_running"]
    lines = ["## Reconstruction (validation songs)", "",
             f"{rec['segments']} validation segments of {_bars(bars)}, encoded to the posterior mean and "
             "decoded. An onset is correct when its key and its 16th step match. Figures are "
             "means over bars (16 steps).", "",
             "| decoding | onset threshold | precision | recall | F1 | onsets/bar (pred / true) |",
             "|---|---|---|---|---|---|"]
    for t, m in tf.items():
        lines.append(f"| teacher-forced | {t} | {m['precision']:.3f} | {m['recall']:.3f} | "
                     f"{m['f1']:.3f} | {m['pred_onsets_per_bar']:.1f} / "
                     f"{m['true_onsets_per_bar']:.1f} |")
    for t, m in fr.items():
        lines.append(f"| free-running | {t} | {m['precision']:.3f} | {m['recall']:.3f} | "
                     f"{m['f1']:.3f} | {m['pred_onsets_per_bar']:.1f} / "
                     f"{m['true_onsets_per_bar']:.1f} |")
    lines += ["", "Target F1 >= 0.85: " + ", ".join(
        _f1_against_target(name, m[best]["f1"], rec.get("f1_interval", {}).get(key))
        for name, key, m in (("teacher-forced", "teacher_forced", tf), ("free-running", "free_running", fr)))
        + "."]
    if "f1_interval" in rec:
        drawn = "songs" if "songs" in rec["f1_interval"] else "clips"  # clips: metrics.json before stop 40
        lines.append(f"(Intervals: 95% bootstrap over the {rec['f1_interval'][drawn]} validation {drawn}, "
                     f"the {drawn} drawn with replacement; a target inside one is met by the point estimate "
                     "only.)")
    if "f1_pooled" in tf[best]:
        lines.append(f"Pooled over every onset instead of averaged per bar: teacher-forced "
                     f"{tf[best]['f1_pooled']:.3f}, free-running {fr[best]['f1_pooled']:.3f}.")
    return lines + [""]


def _f1_against_target(name: str, f1: float, interval: list[float] | None) -> str:
    """``teacher-forced 0.854 (95% interval 0.836-0.871; met by the point estimate only)``."""
    if interval is None:
        return f"{name} {f1:.3f} ({_target(f1 >= 0.85)})"
    low, high = interval
    verdict = "met" if low >= 0.85 else ("met by the point estimate only" if f1 >= 0.85 else "**missed**")
    return f"{name} {f1:.3f} (95% interval {low:.3f}-{high:.3f}; {verdict})"


def _latent(rec: dict, prior: dict) -> list[str]:
    return ["## Latent health", "",
            f"- KL on validation: {rec['kl_total']:.1f} nats in total over {rec['latent_dims']} "
            f"dimensions (per dimension: `kl_per_dim.png`).",
            f"- Active units (variance of the posterior mean over validation > 0.01): "
            f"{rec['active_units']}/{rec['latent_dims']} = {_pct(rec['active_fraction'])} "
            f"(target >= 50%: {_target(rec['active_fraction'] >= 0.5)}).",
            f"- Prior samples with at least one note: {_pct(prior['nonempty_fraction'])} of "
            f"{prior['count']}.", "", "![KL per dimension](kl_per_dim.png)", ""]


def _emotion(emo: dict, bars: int) -> list[str]:
    per = emo["generated_accuracy_per_emotion"]
    lines = ["## Emotion", "",
             "A separate classifier (bidirectional GRU over raw frames, trained with random "
             f"transpositions on real training segments only) listens to {bars}-bar segments.", "",
             "| | 4-quadrant accuracy | valence accuracy | arousal accuracy |", "|---|---|---|---|",
             f"| real validation segments | {_pct(emo['real_val_accuracy'])} | "
             f"{_pct(emo['real_val_valence_accuracy'])} | {_pct(emo['real_val_arousal_accuracy'])} |",
             f"| generated, per requested emotion | {_pct(emo['generated_accuracy'])} | "
             f"{_pct(emo['generated_valence_accuracy'])} | {_pct(emo['generated_arousal_accuracy'])} |",
             ]
    flat = emo.get("flat_velocity")
    if flat:
        lines.append(f"| the same with every velocity set to 64 (real / generated) | "
                     f"{_pct(flat['real_val_accuracy'])} / {_pct(flat['generated_accuracy'])} | "
                     f"{_pct(flat['real_val_valence_accuracy'])} / "
                     f"{_pct(flat['generated_valence_accuracy'])} | - / "
                     f"{_pct(flat['generated_arousal_accuracy'])} |")
    clip = emo.get("real_val_clip_accuracy")
    if clip:
        lines += ["", f"Whole real validation clips ({clip['clips']}, mean log-probability over "
                  f"their segments): {_pct(clip['accuracy'])}."]
    lines += ["", "Generated accuracy per requested emotion (same prior latents for all four): " +
             ", ".join(f"{NAMES[q]} {_pct(a)}" for q, a in zip(QUADRANTS, per)) + ".",
             f"Target generated >= real: {_difference_verdict(emo)}.",
             "",
             *_held_out(emo.get("held_out")),
             *_swap(emo["swap"]),
             "Mean P(requested) per emotion: " + ", ".join(
                 f"{NAMES[q]} {p:.2f}" for q, p in zip(QUADRANTS, emo["mean_p_requested"])) + ".",
             "", "| morph | P(target) from start to end | non-decreasing steps |", "|---|---|---|"]
    for name, m in emo["morphs"].items():
        src, dst = name.split("->")
        curve = " ".join(f"{p:.2f}" for p in m["p_target"])
        lines.append(f"| {NAMES[src]} -> {NAMES[dst]} | {curve} | {m['monotonic_steps']}/{m['steps']} |")
    lines += ["", "![emotion](emotion.png)", ""]
    return lines


def _held_out(held: dict | None) -> list[str]:
    """The generated-versus-real comparison by listeners that never heard the training songs."""
    if not held:  # metrics.json before 2026-12-07, or --held-out-folds 0
        return []
    if "skipped" in held:
        return [f"Held-out listeners: none ({held['skipped']}).", ""]
    folds = "; ".join(f"{_pct(f['real_accuracy'])} / {_pct(f['generated_accuracy'])}"
                      for f in held["per_fold"])
    verdict = _difference_verdict(held)
    return ["The same comparison by held-out listeners (the classifier above learned from the "
            "songs the model learned from, which may favour generated music): the "
            f"{held['songs']} validation songs of the segments drawn, cut into {held['folds']} folds of whole songs, a "
            f"listener trained ({held['steps']} steps) on the other folds judges each fold's real "
            "segments and every generated segment. They hear less music, so both accuracies are "
            f"lower. Real validation segments {_pct(held['real_val_accuracy'])}, generated "
            f"{_pct(held['generated_accuracy'])} (per emotion " + ", ".join(
                f"{NAMES[q]} {_pct(a)}" for q, a in zip(QUADRANTS, held["generated_accuracy_per_emotion"]))
            + f"; per fold, real / generated: {folds}). Target generated >= real by these "
            f"listeners: {verdict}.", ""]


def _difference_verdict(judged: dict) -> str:
    """``met``, ``**missed**``, or neither shown, by the bootstrap interval of generated minus
    real accuracy (``judged``: the classifier's figures or the held-out listeners')."""
    difference = judged["generated_accuracy"] - judged["real_val_accuracy"]
    if "interval_not_measured" in judged:
        return f"not measured: {judged['interval_not_measured']}"
    if "generated_minus_real_interval" not in judged:  # metrics.json before stop 39
        return f"{'met' if difference >= 0 else '**missed**'} by the point estimate only (no interval)"
    low, high = judged["generated_minus_real_interval"]
    drawn = (f"whole songs ({judged['songs']}), generated by latent ({judged['latents']})"
             if judged.get("real_drawn_by") == "song" else "whole clips, generated by latent")  # stop 39's first
    span = (f"generated minus real {100 * difference:+.1f} points, {judged['level']:.0%} interval "
            f"{100 * low:+.1f} to {100 * high:+.1f}; real segments drawn by {drawn}")
    if low >= 0:
        return f"met ({span})"
    if high < 0:
        return f"**missed** ({span})"
    return (f"not shown either way: the point estimate {'meets' if difference >= 0 else 'misses'} it, "
            f"but the interval holds 0 ({span})")


def _swap(swap: dict) -> list[str]:
    """The emotion swap: each latent is decoded under all four emotions and is its own control."""
    return ["Emotion swap for a fixed z (each prior latent decoded under all four emotions, so "
            "what z alone decides cancels out; a decoder deaf to the emotion scores 0 on each of "
            "the first three lines):",
            f"- the classifier's answer is the requested emotion under all four requests for "
            f"{_pct(swap['all_four_follow'])} of the latents; it changes with the request for "
            f"{_pct(swap['answer_changes'])};",
            f"- P(class) is {swap['p_lift']:+.3f} higher when that class is requested than under "
            "the other three requests;",
            f"- P(positive valence) is {swap['valence_shift']:+.3f} higher under a positive-valence "
            f"request (higher for {_pct(swap['valence_shift_positive'])} of the latents); P(high "
            f"arousal) {swap['arousal_shift']:+.3f} higher under a high-arousal request "
            f"({_pct(swap['arousal_shift_positive'])}).",
            f"- What z alone decides, for comparison: P(positive valence) averaged over the four "
            f"requests varies by {swap['valence_z_spread']:.3f} (standard deviation over latents), "
            f"P(high arousal) by {swap['arousal_z_spread']:.3f}.", ""]


def _statistics(stats: dict, div: dict) -> list[str]:
    names = ["note_density", "pitch_range", "velocity", "polyphony", "mode"]
    lines = ["## Musical statistics per quadrant (generated vs real validation)", "",
             "note_density: onsets per step; pitch_range: semitones per segment; velocity: MIDI; "
             "polyphony: sounding keys per sounding step; mode: best major-key minus best "
             "minor-key profile correlation (> 0 leans major). OA: overlapping area of the two "
             "histograms (1 = identical).", "",
             "| quadrant | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for q in stats:
        cells = [f"{s['generated_mean']:.2f} vs {s['real_mean']:.2f} (OA {s['overlap']:.2f})"
                 for s in (stats[q][n] for n in names)]
        lines.append(f"| {q} {NAMES[q]} | " + " | ".join(cells) + " |")
    g, r = div["generated"], div["real"]
    lines += ["", f"Diversity: distinct onset patterns {_pct(g['distinct_fraction'])} generated vs "
              f"{_pct(r['distinct_fraction'])} real; mean pairwise Jaccard distance of onset sets "
              f"{g['mean_jaccard_distance']:.3f} generated vs {r['mean_jaccard_distance']:.3f} real.",
              "", "![statistics](statistics.png)", "",
              "![piano rolls](rolls_real_vs_generated.png)", ""]
    return lines


def _batch_step(figures: dict | None) -> list[str]:
    if not figures:
        return []
    lines = ["## The batch step (offline generation)", "",
             "`Engine.generate` and `generate_many` decode through `decoder_step_batch` "
             "(docs/model-contract.md); live play and the figures above through `decoder_step`. "
             "The same segments, latents and random draws through each:", "",
             "| step file | onset F1 teacher-forced / free-running | prior onset density "
             "Q1..Q4 |", "|---|---|---|"]
    for name, f in figures.items():
        if name == "note":  # when the figures were measured apart from the rest of the report
            continue
        lines.append(f"| `{name}` | {f['onset_f1_teacher_forced']:.3f} / "
                     f"{f['onset_f1_free_running']:.3f} | "
                     f"{' '.join(f'{d:.3f}' for d in f['onset_density'])} |")
    return lines + ([""] + [figures["note"]] if "note" in figures else []) + [""]


def markdown(results: dict, discussion: str) -> str:
    sampling = results["sampling"]
    lines = [f"# Evaluation of `{results['model_name']}`", "",
             "Written by `python -m emolive.training.evaluate` (do not edit by hand; the "
             "discussion comes from `discussion.md`). Generation runs through the exported ONNX "
             "files with ONNX Runtime, so the figures describe what ships. Raw figures: "
             "`metrics.json`.", ""]
    if results.get("settings"):  # metrics.json before 2026-12-07 did not record them
        flags = " ".join(f"--{name.replace('_', '-')} {value}" for name, value in results["settings"].items())
        lines += [f"Evaluated with `{flags}` (every draw seeded; the same flags give the same "
                  "figures).", ""]
    if discussion.strip():
        lines += [discussion.strip(), ""]
    bars = results.get("segment_bars", 2)  # metrics.json before 2026-12-06: 2-bar models only
    lines += _reconstruction(results["reconstruction"], bars)
    lines += _latent(results["reconstruction"], results["prior_samples"])
    lines += ["## Sampling defaults (written to the model card)", "",
              f"temperature {sampling['temperature']}, onset threshold "
              f"{sampling['onset_threshold']}, hold threshold {sampling['hold_threshold']}, "
              f"at most {sampling['max_onsets_per_step']} onsets per step. "
              f"Why: {sampling['why']}.", "", "| temperature | onset density per quadrant "
              "(Q1..Q4) | mean abs log ratio to real |", "|---|---|---|"]
    for t, v in sampling["tried"].items():
        lines.append(f"| {t} | {' '.join(f'{d:.2f}' for d in v['density'])} | "
                     f"{v['mean_abs_log_ratio']:.3f} |")
    lines.append("")
    lines += _emotion(results["emotion"], bars)
    lines += _statistics(results["statistics"], results["diversity"])
    lines += _batch_step(results.get("batch_step"))
    lines += ["## Quantisation", "", "| dataset | grid | files | notes | mean onset error | "
              "median | p95 |", "|---|---|---|---|---|---|---|"]
    for name, e in results["onset_error"].items():
        lines.append(f"| {name} | {e['grid']} | {e['files']} | {e['notes']} | {e['mean_ms']:.1f} ms "
                     f"| {e['median_ms']:.1f} ms | {e['p95_ms']:.1f} ms |")
    wavs = any("wav" in files for files in results["listening"].values())
    lines += ["", "## Listening", "", f"Rendered at 100 BPM; {_bars(4 * bars)} each, a new prior "
              f"latent every {_bars(bars)} (as the engine re-seeds phrases)."
              + (" WAVs: FluidSynth, FluidR3_GM, mono 16 kHz." if wavs else " No WAVs (--wav false, "
                 "or FluidSynth missing)."), ""]
    for name, files in results["listening"].items():
        links = ", ".join(f"[{kind}](samples/{f})" for kind, f in files.items())
        lines.append(f"- {name}: {links}")
    lines += ["", "![listening rolls](samples/listening_rolls.png)", ""]
    if (results.get("training_curves", True)):
        lines += ["## Training curves", "", "![training curves](training_curves.png)", ""]
    return "\n".join(lines) + "\n"
