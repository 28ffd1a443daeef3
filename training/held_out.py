"""The emotion figures again, judged by listeners that never heard the CVAE's training music.

The evaluation's classifier (``classifier.py``) learns from EMOPIA's training songs, the songs the
CVAE learned from: generated music imitates them, so that classifier may favour it. Here the
validation songs are cut into folds (whole songs, so that no song is both heard and judged); a
listener trained on the other folds judges one fold's real segments and every generated segment.
Real accuracy is over each segment's out-of-fold answer; generated accuracy pools every fold's
answers. The listeners hear less music than the main classifier (only validation songs), so their
accuracies are lower; what matters is generated against real under the same listeners.
"""

from __future__ import annotations

import numpy as np

from .classifier import predict_proba, train_classifier
from .metrics import confusion, group_bootstrap_means


#: The fewest validation songs, and generated latents, a bootstrap interval is drawn from: with
#: one to a few songs every draw is (nearly) the same music, and a "95% interval" one song
#: wide decided verdicts by itself (helper-88).
MIN_SONGS = 10
MIN_LATENTS = 10


def compared(real_right: np.ndarray, label: np.ndarray, songs: np.ndarray, generated_right: np.ndarray,
             seed: int) -> dict:
    """The interval of generated minus real accuracy with what it rests on, or why there is none:
    validation music without one of the four quadrants (generated accuracy is over four requests,
    real accuracy over what validation holds), too few songs or latents."""
    n_songs, missing = len(np.unique(songs)), sorted(set(range(4)) - set(label.tolist()))
    if missing:
        return {"interval_not_measured": "the validation segments hold no "
                                         + ", ".join(f"Q{q + 1}" for q in missing)}
    if n_songs < MIN_SONGS:
        return {"interval_not_measured": f"{n_songs} validation song(s) (an interval needs {MIN_SONGS})"}
    if len(generated_right) < MIN_LATENTS:
        return {"interval_not_measured": f"{len(generated_right)} generated latent(s) (an interval needs "
                                         f"{MIN_LATENTS})"}
    return {"generated_minus_real_interval": difference_interval(real_right, songs, generated_right, seed),
            "level": 0.95, "real_drawn_by": "song", "songs": n_songs, "latents": len(generated_right)}


def song_folds(songs: np.ndarray, label: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each segment's fold ``0..folds-1``: whole songs dealt round-robin, in a seeded order
    grouped by each song's commonest quadrant, so that every fold's listener hears every
    quadrant that more than one song has (dealt in plain order, a fold could take all of one)."""
    distinct = np.random.default_rng(seed).permutation(np.unique(songs))
    commonest = [np.bincount(label[songs == song], minlength=4).argmax() for song in distinct]
    order = distinct[np.argsort(commonest, kind="stable")]
    fold_of = {song: i % folds for i, song in enumerate(order)}
    return np.array([fold_of[song] for song in songs], dtype=np.int64)


def difference_interval(real_right: np.ndarray, songs: np.ndarray, generated_right: np.ndarray,
                        seed: int, rounds: int = 2000, level: float = 0.95) -> list[float]:
    """The ``level`` bootstrap interval of generated minus real accuracy: real segments drawn by
    whole songs (a song's clips share its label and style: drawn by clip the interval was too
    narrow; helper-87), generated ones by latent (``generated_right`` ``[latents, answers]``:
    every answer on one latent's segments, each request under each listener). The listeners'
    own training randomness is not in it."""
    rng = np.random.default_rng(seed)
    real = group_bootstrap_means(real_right.astype(float), songs, rounds, rng)
    per_latent = generated_right.mean(1)
    generated = per_latent[rng.integers(0, len(per_latent), size=(rounds, len(per_latent)))].mean(1)
    low, high = np.quantile(generated - real, [(1 - level) / 2, (1 + level) / 2])
    return [float(low), float(high)]


def held_out_listeners(real: np.ndarray, label: np.ndarray, songs: np.ndarray,
                       generated: np.ndarray, folds: int, steps: int, seed: int,
                       log=print) -> dict:
    """``real`` ``[N, T, 264]`` validation segments with quadrant ``label`` and ``songs`` (one
    name per segment); ``generated`` ``[4, M, T, 264]`` per requested quadrant, the same M
    latents under each. ``skipped`` names why there are none: fewer than two songs, or a
    listener that would not hear every quadrant; ``interval_not_measured`` why the figures
    come without an interval (:func:`compared`)."""
    k = min(folds, len(np.unique(songs)))
    if k < 2:
        return {"skipped": f"{len(np.unique(songs))} validation song(s): no two folds"}
    fold = song_folds(songs, label, k, seed)
    unheard = [f for f in range(k) if set(label[fold != f].tolist()) != set(range(4))]
    if unheard:  # a listener that never heard a quadrant answers it wrong by construction (helper-88)
        return {"skipped": f"with {len(np.unique(songs))} validation song(s) in {k} folds, a listener would "
                           "not hear every quadrant (each needs at least two songs)"}
    real_pred = np.zeros(len(real), dtype=np.int64)
    gen_conf = np.zeros((4, 4), dtype=int)
    per_fold = []
    generated_right = np.zeros((generated.shape[1], 0), dtype=bool)  # [latent, answers]
    flat_gen = generated.reshape(-1, *generated.shape[2:])
    gen_label = np.repeat(np.arange(4), generated.shape[1])
    for f in range(k):
        heard = fold != f
        log(f"held-out listener {f + 1}/{k}: trained on {heard.sum()} segments of "
            f"{len(np.unique(songs[heard]))} validation songs")
        listener = train_classifier(real[heard], label[heard], steps=steps, seed=seed + f,
                                    log=lambda _: None)
        real_pred[~heard] = predict_proba(listener, real[~heard]).argmax(1)
        gen_pred = predict_proba(listener, flat_gen).argmax(1)
        gen_conf += confusion(gen_label, gen_pred)
        generated_right = np.hstack([generated_right, (gen_pred == gen_label).reshape(4, -1).T])
        per_fold.append({"songs_judged": int(len(np.unique(songs[~heard]))),
                         "real_accuracy": float((real_pred[~heard] == label[~heard]).mean()),
                         "generated_accuracy": float((gen_pred == gen_label).mean())})
    real_conf = confusion(label, real_pred)
    return {"folds": k, "steps": steps, "songs": int(len(np.unique(songs))),
            "real_val_accuracy": float(np.trace(real_conf) / real_conf.sum()),
            "generated_accuracy": float(np.trace(gen_conf) / gen_conf.sum()),
            "generated_accuracy_per_emotion": (np.diag(gen_conf) / gen_conf.sum(1)).tolist(),
            "real_val_confusion": real_conf.tolist(), "generated_confusion": gen_conf.tolist(),
            **compared(real_pred == label, label, songs, generated_right, seed), "per_fold": per_fold}
