"""Evaluation figures: onset precision/recall/F1 per bar, latent health, musical statistics,
distribution overlap and diversity. Inputs are numpy rolls ``[N, T, 264]`` (float layout)."""

from __future__ import annotations

import numpy as np

from emolive.emotions import to_valence_arousal

N_KEYS = 88
STEPS_PER_BAR = 16
# Krumhansl-Kessler key profiles, pitch class 0 = C.
_KK = {"major": [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88],
       "minor": [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]}


def onset_prf_per_bar(pred: np.ndarray, true: np.ndarray, tolerance: int = 0) -> dict[str, float]:
    """Mean over bars (16 steps, either side having an onset) of onset precision, recall and F1,
    a note counting as correct when pitch and step both match, and F1 pooled over every onset.
    ``pred``/``true`` ``[N, T, 88]`` booleans.

    ``tolerance`` (steps, a diagnostic; the targets use 0): predicted and true onsets of a key
    up to that many steps apart are matched one to one (as mir_eval matches them; until
    2026-12-07 one predicted onset between two true ones found both: helper-92), a predicted
    onset counting for precision in its bar and a true one for recall in its own; F1 is then
    2PR / (P + R)."""
    p, t = _by_bar(pred), _by_bar(true)
    cut = true.shape[1] // STEPS_PER_BAR * STEPS_PER_BAR
    n_pred, n_true = p.sum(1), t.sum(1)
    keep = (n_pred + n_true) > 0
    if tolerance == 0:
        hit = (p & t).sum(1).astype(np.float64)
        hit_pred = hit_true = hit
    else:
        pred_matched, true_matched = _matched_within(pred[:, :cut], true[:, :cut], tolerance)
        hit_pred = _by_bar(pred_matched).sum(1).astype(np.float64)
        hit_true = _by_bar(true_matched).sum(1).astype(np.float64)
    precision = np.where(n_pred > 0, hit_pred / np.maximum(n_pred, 1), 0.0)
    recall = np.where(n_true > 0, hit_true / np.maximum(n_true, 1), 0.0)
    if tolerance == 0:
        f1 = 2 * hit / np.maximum(n_pred + n_true, 1)
    else:
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    pooled_p, pooled_r = hit_pred.sum() / max(n_pred.sum(), 1), hit_true.sum() / max(n_true.sum(), 1)
    return {"precision": float(precision[keep].mean()), "recall": float(recall[keep].mean()),
            "f1": float(f1[keep].mean()), "bars": int(keep.sum()),
            # over every onset instead of per bar (sparse bars weigh as much as dense ones above)
            "f1_pooled": float(2 * pooled_p * pooled_r / max(pooled_p + pooled_r, 1e-12)),
            "pred_onsets_per_bar": float(n_pred.mean()), "true_onsets_per_bar": float(n_true.mean())}


def onset_f1_interval(pred: np.ndarray, true: np.ndarray, groups: np.ndarray, rounds: int = 2000,
                      seed: int = 0, level: float = 0.95) -> list[float]:
    """The ``level`` bootstrap interval of :func:`onset_prf_per_bar`'s F1 over groups of
    segments: ``groups`` names each segment's group (the evaluation's: its song), and groups are
    drawn with replacement ``rounds`` times (segments of one song are no independent draws; the
    evaluation drew clips until 2026-12-07, and clips of a song share its music and style)."""
    p, t = _by_bar(pred), _by_bar(true)
    bars = len(p) // len(true)
    total = p.sum(1) + t.sum(1)
    keep = total > 0
    f1 = 2 * (p & t).sum(1) / np.maximum(total, 1)
    means = group_bootstrap_means(f1[keep], np.repeat(np.asarray(groups), bars)[keep], rounds,
                                  np.random.default_rng(seed))
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return [float(low), float(high)]


def confusion(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """``[4, 4]`` counts: rows the quadrant asked for or labelled, columns the one answered."""
    counts = np.zeros((4, 4), dtype=int)
    np.add.at(counts, (labels, predicted), 1)
    return counts


def group_bootstrap_means(values: np.ndarray, groups: np.ndarray, rounds: int,
                          rng: np.random.Generator) -> np.ndarray:
    """``[rounds]`` means of ``values`` (one per row: a bar, a segment) over groups (songs, or
    latents with all their answers) drawn with replacement, each drawn group bringing all its
    rows: a group's rows are no independent draws."""
    ids, group_of_row = np.unique(groups, return_inverse=True)
    sums = np.bincount(group_of_row, weights=values, minlength=len(ids))
    counts = np.bincount(group_of_row, minlength=len(ids))
    draws = rng.integers(0, len(ids), size=(rounds, len(ids)))
    return sums[draws].sum(1) / counts[draws].sum(1)


def _by_bar(onsets: np.ndarray) -> np.ndarray:
    """``[N, T, 88]`` -> ``[N * bars, 16 * 88]``: one row per whole bar (a part bar at the end is left out)."""
    n, steps = onsets.shape[:2]
    bars = steps // STEPS_PER_BAR
    return onsets[:, :bars * STEPS_PER_BAR].reshape(n * bars, STEPS_PER_BAR * onsets.shape[2])


def _matched_within(pred: np.ndarray, true: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``[N, T, 88]`` booleans of the predicted and of the true onsets matched one to one with
    an onset of the other side on the same key, in the same segment, at most ``k`` steps away.
    On a line, taking each true onset in turn with the earliest unmatched prediction in reach
    gives the largest matching."""
    pred_matched, true_matched = np.zeros_like(pred), np.zeros_like(true)
    for n, key in zip(*np.nonzero(pred.any(1) & true.any(1))):
        steps_pred, steps_true = np.flatnonzero(pred[n, :, key]), np.flatnonzero(true[n, :, key])
        i = j = 0
        while i < len(steps_true) and j < len(steps_pred):
            if steps_pred[j] < steps_true[i] - k:
                j += 1
            elif steps_pred[j] > steps_true[i] + k:
                i += 1
            else:
                pred_matched[n, steps_pred[j], key] = true_matched[n, steps_true[i], key] = True
                i, j = i + 1, j + 1
    return pred_matched, true_matched


def kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    return (0.5 * (mu ** 2 + np.exp(logvar) - 1.0 - logvar)).mean(axis=0)


def active_units(mu: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Burda et al. (2016): a unit is active when Var_x(E[z_i | x]) > threshold."""
    return mu.var(axis=0) > threshold


def pitch_class_hist(roll: np.ndarray) -> np.ndarray:
    """``[N, 12]`` distribution of sounding steps over pitch classes (0 = C)."""
    hold = roll[..., N_KEYS:2 * N_KEYS].sum(axis=1)  # [N, 88]
    pc = np.zeros((len(roll), 12))
    for key in range(N_KEYS):
        pc[:, (key + 9) % 12] += hold[:, key]
    return pc / np.maximum(pc.sum(axis=1, keepdims=True), 1e-9)


def _key_correlations(pc: np.ndarray) -> dict[str, np.ndarray]:
    """Correlation of each row of ``pc [N, 12]`` with the Krumhansl-Kessler profile of every
    tonic: ``{"major": [N, 12], "minor": [N, 12]}``, column = tonic pitch class (0 = C)."""
    centred = pc - pc.mean(axis=1, keepdims=True)
    centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-9)
    out = {}
    for mode, profile in _KK.items():
        table = np.stack([np.roll(profile, r) for r in range(12)]).astype(np.float64)
        table -= table.mean(axis=1, keepdims=True)
        table /= np.linalg.norm(table, axis=1, keepdims=True)
        out[mode] = centred @ table.T
    return out


def mode_score(pc: np.ndarray) -> np.ndarray:
    """Best major-key minus best minor-key profile correlation, per row: > 0 sounds major."""
    corr = _key_correlations(pc)
    return corr["major"].max(axis=1) - corr["minor"].max(axis=1)


def estimate_key(pc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Krumhansl-Schmuckler key of each row of ``pc [N, 12]``: (tonic pitch class 0..11,
    is-major booleans), the best-correlating of the 24 major and minor profiles."""
    corr = _key_correlations(pc)
    both = np.concatenate([corr["major"], corr["minor"]], axis=1)  # [N, 24]
    best = both.argmax(axis=1)
    return best % 12, best < 12


def musical_stats(roll: np.ndarray) -> dict[str, np.ndarray]:
    """Per-segment statistics ``{name: [N]}``: note density (onsets per step), pitch range
    (semitones), mean velocity (MIDI), polyphony (sounding keys per sounding step), mode."""
    onset = roll[..., :N_KEYS] > 0.5
    hold = roll[..., N_KEYS:2 * N_KEYS] > 0.5
    vel = roll[..., 2 * N_KEYS:] * 127.0
    steps = roll.shape[1]
    keys = np.arange(N_KEYS)
    any_key = hold.any(axis=1)  # [N, 88]
    low = np.where(any_key, keys, N_KEYS).min(axis=1)
    high = np.where(any_key, keys, -1).max(axis=1)
    sounding_steps = np.maximum(hold.any(axis=2).sum(axis=1), 1)
    n_onsets = onset.sum(axis=(1, 2))
    return {
        "note_density": n_onsets / steps,
        "pitch_range": np.where(high >= low, high - low, 0).astype(np.float64),
        "velocity": (vel * onset).sum(axis=(1, 2)) / np.maximum(n_onsets, 1),
        "polyphony": hold.sum(axis=(1, 2)) / sounding_steps,
        "mode": mode_score(pitch_class_hist(roll)),
    }


def overlap_area(a: np.ndarray, b: np.ndarray, bins: int = 30) -> float:
    """Overlapping area of two distributions' histograms on a shared range (1 = identical)."""
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    if hi <= lo:
        return 1.0
    ha, edges = np.histogram(a, bins=bins, range=(lo, hi))
    hb, _ = np.histogram(b, bins=edges)
    return float(np.minimum(ha / max(ha.sum(), 1), hb / max(hb.sum(), 1)).sum())


def diversity(roll: np.ndarray, max_pairs: int = 20000, seed: int = 0) -> dict[str, float]:
    """Distinct onset patterns and the mean pairwise Jaccard distance of onset sets."""
    onset = (roll[..., :N_KEYS] > 0.5).reshape(len(roll), -1)
    distinct = len({row.tobytes() for row in np.packbits(onset, axis=1)})
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(onset), max_pairs)
    j = rng.integers(0, len(onset), max_pairs)
    keep = i != j
    inter = (onset[i[keep]] & onset[j[keep]]).sum(1)
    union = (onset[i[keep]] | onset[j[keep]]).sum(1)
    jaccard = np.where(union > 0, 1.0 - inter / np.maximum(union, 1), 0.0)
    return {"distinct_fraction": distinct / len(onset), "mean_jaccard_distance": float(jaccard.mean())}


# The quadrants (Q1..Q4: happy, tense, sad, calm) with positive valence / high arousal.
VALENCE_POSITIVE = np.array([to_valence_arousal(np.eye(4)[q])[0] > 0 for q in range(4)])
AROUSAL_POSITIVE = np.array([to_valence_arousal(np.eye(4)[q])[1] > 0 for q in range(4)])


def swap_response(probs: np.ndarray) -> dict[str, float]:
    """How the classifier's answer moves when only the requested emotion changes.

    ``probs[r, i, c]``: P(class c) for latent i decoded under requested quadrant r (one-hot). Each
    latent is its own control, so what z alone decides cancels out; a decoder that ignored the
    emotion scores 0 on every figure but the ``*_z_spread`` ones.
    - ``all_four_follow``: share of latents whose answer is the request under all four requests.
    - ``answer_changes``: share of latents whose answer is not the same under all four.
    - ``p_lift``: P(c | request c) minus P(c | another request), averaged over c and latents.
    - ``valence_shift`` (``arousal_shift``): P(positive side | a positive request) minus P(positive
      side | a negative request), mean over latents; ``*_shift_positive``: share of latents where
      that difference is above 0; ``*_z_spread``: the standard deviation over latents of
      P(positive side) averaged over the four requests, what z alone decides, in the same units.
    """
    n_req = probs.shape[0]
    answer = probs.argmax(2)  # [request, latent]
    own = probs[np.arange(n_req), :, np.arange(n_req)]  # [request, latent]: P(request | request)
    others = (probs.sum(0)[:, :n_req].T - own) / (n_req - 1)  # P(c | the other requests)
    figures = {"all_four_follow": float((answer == np.arange(n_req)[:, None]).all(0).mean()),
               "answer_changes": float((answer != answer[:1]).any(0).mean()),
               "p_lift": float((own - others).mean())}
    for axis, positive in (("valence", VALENCE_POSITIVE), ("arousal", AROUSAL_POSITIVE)):
        p_side = probs[..., positive].sum(2)  # [request, latent]: P(positive side)
        shift = p_side[positive].mean(0) - p_side[~positive].mean(0)
        figures[f"{axis}_shift"] = float(shift.mean())
        figures[f"{axis}_shift_positive"] = float((shift > 0).mean())
        figures[f"{axis}_z_spread"] = float(p_side.mean(0).std())
    return figures
