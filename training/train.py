"""Train the emotion-conditioned VAE.

    python -m emolive.training.train [--config file.json] [--data DIR] [--out runs/NAME] [flags]

Writes ``<out>/ckpt.pt`` (latest, resumable with ``--resume true``), ``<out>/best.pt`` (lowest
validation loss), ``<out>/metrics.jsonl`` (one JSON object per evaluation) and
``<out>/config.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emolive._startup import INTERRUPTED_STATUS
from emolive.cli_options import Terminated, error_line
from emolive.safe_write import replaced_on_success
from emolive.scales import nearer_shift

from .card import checkpoint_data
from .checkpoints import (RunFolderLock, StopOnInterrupt, TrainingDiverged, TrainingStopped, check_run_folder,
                          drop_partial_line, drop_records_after, read_for_training, read_run, resumed_config,
                          save_atomic)
from .config import TrainConfig, add_config_flags, config_from_values, given_values
from .data import (LABELLED_DATASETS, MAX_SKIPS_LISTED, DataError, LoadReport, load_emopia, load_generic, load_unlabelled,
                   load_vgmidi, song_for_validation)
from .features import to_float, transpose_segments
from .losses import EmotionHeads, compute_losses
from .metrics import estimate_key, pitch_class_hist
from .model import CVAE, N_EMOTIONS, ModelConfig
from .prepare import Prepared, describe_segments, gather_segments, prepare, segment_starts


def _refuse_repeats(flag: str, names: list[str], identity) -> None:
    """DataError when two of ``names`` are one source (``identity``: the same dataset, or the
    same folder however written): its clips were read and trained twice, silently."""
    first_index: dict = {}  # identity -> the index of the first name given for it
    for index, name in enumerate(names):
        first = first_index.setdefault(identity(name), index)
        if first != index:
            raise DataError(f"{flag} names {names[first]!r} and {name!r}, which are one source: its clips "
                            "would be trained twice; give it once")


def _shown_path(path: str) -> str:
    """``path``, and where it points when relative (read from the folder the command runs in)."""
    return path if os.path.isabs(path) else f"{path} ({os.path.abspath(path)})"


def _refuse_unlabelled_validation_music(cfg: TrainConfig, root: Path) -> None:
    """DataError for an unlabelled folder that holds or lies in a labelled dataset's folder: it
    is read whole (subfolders too), so the run would train on that dataset's validation music.
    VGMIDI's unlabelled pieces lie in its folder, and its labelled phrases are excerpts of them
    (helper-81: 19 validation phrase / unlabelled piece pairs, e.g. 'A Prayer to Zeus' in
    'Battle_of_Olympus_APrayertoZeus.mid'); `--unlabelled .` held every dataset (helper-82)."""
    labelled = [(f"--datasets {name}", (root / name).resolve()) for name in cfg.datasets]
    if cfg.generic_folder:
        labelled.append(("--generic-folder", Path(cfg.generic_folder).resolve()))
    for name in cfg.unlabelled:
        folder = (root / name).resolve()
        for option, dataset in labelled:
            if folder == dataset or dataset in folder.parents or folder in dataset.parents:
                raise DataError(f"--unlabelled {name} with {option}: the unlabelled folder "
                                f"{'holds' if folder in dataset.parents else 'is part of'} the labelled "
                                "dataset's folder (VGMIDI's unlabelled pieces also hold its labelled phrases, "
                                "which are excerpts of them), so the run would train on its own validation "
                                "music; leave one of them out")


def load_reports(cfg: TrainConfig) -> list[LoadReport]:
    root = Path(cfg.data)
    reports = []
    unknown = sorted(set(cfg.datasets) - set(LABELLED_DATASETS))
    if unknown:  # train's config refuses them too; calibrate and evaluate read through here only
        raise DataError(f"unknown datasets {unknown}; known: {', '.join(LABELLED_DATASETS)} (or "
                        "--generic-folder with --generic-csv)")
    _refuse_repeats("--datasets", cfg.datasets, lambda name: name)
    _refuse_repeats("--unlabelled", cfg.unlabelled, lambda name: (root / name).resolve())
    _refuse_unlabelled_validation_music(cfg, root)
    for name in cfg.datasets:
        folder = root / name
        if not folder.is_dir():
            raise DataError(f"dataset folder {folder} not found (--data points at {root})")
        reports.append(load_emopia(folder) if name == "emopia" else load_vgmidi(folder))
    if cfg.generic_csv:
        if not Path(cfg.generic_csv).is_file():
            raise DataError(f"CSV {_shown_path(cfg.generic_csv)} not found" if not Path(cfg.generic_csv).exists()
                            else f"CSV {_shown_path(cfg.generic_csv)} is not a file")
        reports.append(load_generic(cfg.generic_folder, cfg.generic_csv))
    for name in cfg.unlabelled:
        folder = root / name  # an absolute name replaces the root
        if not folder.is_dir():
            raise DataError(f"unlabelled folder {folder} not found (--data points at {root})")
        reports.append(load_unlabelled(folder, name))
    return reports


def load_data(cfg: TrainConfig, log=print) -> Prepared:
    reports = load_reports(cfg)
    for report in reports:
        log(report.summary())
    prep = prepare(reports, cache_dir=cfg.cache_dir, log=log)
    listed = {skip for report in reports for skip in report.skipped}
    unreadable = [skip for skip in prep.skipped if skip not in listed]
    if unreadable:  # files the loaders listed but whose notes could not be used
        log(f"{len(unreadable)} more skipped while reading their notes:")
        for path, reason in unreadable[:MAX_SKIPS_LISTED]:
            log(f"  skipped {path}: {reason}")
        if len(unreadable) > MAX_SKIPS_LISTED:
            log(f"  ... and {len(unreadable) - MAX_SKIPS_LISTED} more")
    _replace_unreadable_validation(reports, prep, log)
    for name, err in prep.onset_error.items():
        log(f"{name}: grid {err['grid']}, onset error from quantising to 16ths: mean "
            f"{err['mean_ms']:.1f} ms, median {err['median_ms']:.1f} ms, p95 {err['p95_ms']:.1f} ms")
    labelled = not cfg.unlabelled
    if len(prep.indices("train", labelled=labelled)) == 0:
        kind = "labelled " if labelled else ""
        in_val = len(prep.indices("val", labelled=labelled))
        raise DataError(f"no readable {kind}training clips" + (
            f": all {in_val} readable clips are in validation (give more songs, or mark rows "
            "split=train in the CSV)" if in_val else ""))
    return prep


def _replace_unreadable_validation(reports: list[LoadReport], prep: Prepared, log=print) -> None:
    """A dataset whose loader put songs in validation, none of them readable, gets one of its
    readable songs there instead (song_for_validation, as the loaders choose), so that a collection
    of two or more songs keeps a validation split when its validation files are broken. A
    dataset with no validation songs from its loader (every row split=train) is left so."""
    for report in reports:
        if not any(clip.split == "val" for clip in report.clips):
            continue
        rows = [i for i, name in enumerate(prep.dataset) if name == report.dataset]
        chosen = song_for_validation(prep.song[i] for i in rows)
        if chosen is None or any(prep.split[i] == "val" for i in rows):
            continue
        for i in rows:
            if prep.song[i] == chosen:
                prep.split[i] = "val"
        log(f"{report.dataset}: no validation clip could be read; song {chosen!r} goes to "
            "validation instead")


def tonic_shifts(prep: Prepared) -> np.ndarray:
    """Per clip, the shift in semitones (-5..6) that moves its estimated tonic to C."""
    tonic, _ = estimate_key(np.concatenate([pitch_class_hist(r[None]) for r in prep.rolls]))
    return np.array([nearer_shift(-int(t)) for t in tonic], dtype=np.int64)


class SegmentBatches:
    """Random segments with random transposition (a numpy Generator, seeded); with
    ``cfg.key_normalise`` every segment is moved by its clip's tonic shift instead.

    Labelled clips only, unless ``cfg.unlabelled`` names folders: then training draws from
    every clip, and validation keeps to the labelled ones where there are any (so that its
    figures stay comparable with runs on labelled data alone)."""

    def __init__(self, prep: Prepared, split: str, cfg: TrainConfig, seed: int) -> None:
        self.prep = prep
        self.steps = cfg.segment_steps
        labelled = not cfg.unlabelled or (split != "train" and len(prep.indices(split)) > 0)
        self.split, self.clips, self.min_onsets = split, prep.indices(split, labelled), cfg.min_onsets
        self.starts = segment_starts(prep, self.clips, self.steps, cfg.hop_bars * 16, cfg.min_onsets)
        if len(self.starts) == 0:
            if not len(prep.indices(split, labelled)):  # every clip on the other side (a CSV's split column)
                raise DataError(f"no {split} clips: every clip is in the other split; give some "
                                f"{split} rows (or leave the split column out for a split by song)")
            raise DataError(f"no {split} segments with at least {cfg.min_onsets} onsets")
        self.labels = prep.quadrant[self.starts[:, 0]]
        self.transpose = cfg.transpose
        self.octaves = cfg.octaves
        self.key_shift = (tonic_shifts(prep)[self.starts[:, 0]] if cfg.key_normalise
                          else None)  # [S] semitones, per segment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.starts)

    def describe(self) -> list[str]:
        """Log lines: the segments per quadrant, the clips that gave none, a missing emotion."""
        return describe_segments(self.prep, self.split, self.clips, self.starts, self.min_onsets)

    def tensors(self, rows: np.ndarray, shifts: np.ndarray | None = None):
        """(roll [B,T,264] float, emotion weights [B,4], label [B]) for segment rows."""
        rolls = gather_segments(self.prep, self.starts[rows], self.steps)
        if self.key_shift is not None:
            shifts = self.key_shift[rows] + (0 if shifts is None else shifts)
        if shifts is not None:
            rolls = transpose_segments(rolls, shifts)
        labels = torch.from_numpy(self.labels[rows])
        return torch.from_numpy(to_float(rolls)), emotion_weights(labels), labels

    def sample(self, batch_size: int):
        rows = self.rng.integers(0, len(self.starts), batch_size)
        shifts = self.rng.integers(-self.transpose, self.transpose + 1, batch_size)
        if self.octaves:  # drawn only then, so runs without it keep their random stream
            shifts = shifts + 12 * self.rng.integers(-self.octaves, self.octaves + 1, batch_size)
        return self.tensors(rows, shifts if self.transpose or self.octaves else None)


def emotion_weights(labels: torch.Tensor) -> torch.Tensor:
    """``[B, 4]``: one-hot for a quadrant label 0..3, the even blend for -1 (unlabelled)."""
    weights = torch.full((len(labels), N_EMOTIONS), 1.0 / N_EMOTIONS)
    known = labels >= 0
    weights[known] = torch.nn.functional.one_hot(labels[known], N_EMOTIONS).float()
    return weights


def read_init_from(cfg: TrainConfig) -> dict:
    """The checkpoint ``cfg.init_from`` names, whose model sizes must be the config's."""
    ckpt = read_for_training(cfg.init_from)
    # Through ModelConfig, so that a checkpoint written before a field existed gets its default.
    theirs = ModelConfig(**ckpt.get("model_args", {})).to_dict()
    ours = cfg.model_config().to_dict()
    if theirs != ours:
        flags = " ".join(f"--{name.replace('_', '-')} {json.dumps(value)}"
                         for name, value in theirs.items() if value != ours[name])
        raise DataError(f"init_from checkpoint {cfg.init_from} has other model sizes than this "
                        f"config: give the same model flags ({flags})")
    return ckpt


def start_from(model: CVAE, heads: EmotionHeads, ckpt: dict, cfg: TrainConfig, log) -> None:
    """Load the weights of checkpoint ``ckpt`` (read from ``cfg.init_from`` by read_init_from);
    say so when it was trained in one tonic and this run is not, or the other way round."""
    model.load_state_dict(ckpt["model"])
    heads.load_state_dict(ckpt["heads"])
    log(f"weights from {cfg.init_from} (step {ckpt.get('iter_num')}); new optimizer and schedule")
    theirs = (ckpt.get("config") or {}).get("key_normalise")
    if theirs is not None and theirs != cfg.key_normalise:
        keep = " (to keep every clip in C: --key-normalise true --transpose 0)" if theirs else ""
        log(f"note: {cfg.init_from} was trained with key_normalise {json.dumps(theirs)}, this run "
            f"with {json.dumps(cfg.key_normalise)}: its model card will say tonic "
            f"{'0' if cfg.key_normalise else 'null'}{keep}")


def lr_at(cfg: TrainConfig, step: int, elapsed_s: float = 0.0) -> float:
    """Linear warm-up, then cosine decay; progress is the larger of the step fraction and the
    wall-clock fraction of max_minutes, so the decay completes even when time runs out first."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, max((step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps),
                            elapsed_s / (cfg.max_minutes * 60)))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress)))


def beta_at(cfg: TrainConfig, step: int) -> float:
    return cfg.beta_max * min(1.0, step / max(1, cfg.beta_warmup_steps))


def _loss_args(cfg: TrainConfig, step: int) -> dict:
    return {"beta": beta_at(cfg, step), "free_bits": cfg.free_bits,
            "adv_weight": cfg.adv_weight, "critic_weight": cfg.critic_weight,
            "input_dropout": cfg.input_dropout, "hidden_dropout": cfg.hidden_dropout,
            "own_frames": cfg.own_frames, "free_run": cfg.free_run,
            "silent_start": cfg.silent_start, "missed_notes": cfg.missed_notes}


@torch.no_grad()
def evaluate_losses(model: CVAE, heads: EmotionHeads, val: SegmentBatches, cfg: TrainConfig,
                    step: int) -> dict[str, float]:
    """Mean loss terms over a fixed validation subset (posterior mean, no transposition)."""
    model.eval()
    rows = np.linspace(0, len(val) - 1, min(cfg.val_segments, len(val))).astype(np.int64)
    sums: dict[str, float] = {}
    for chunk in np.array_split(rows, max(1, len(rows) // 256)):
        roll, emotion, label = val.tensors(chunk)
        losses = compute_losses(model, heads, roll, emotion, label, **_loss_args(cfg, step))
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + float(value) * len(chunk)
    model.train()
    return {key: value / len(rows) for key, value in sums.items()}


def _checkpoint(model, heads, optimizer, cfg, step, best_val, elapsed_s, data_before, data,
                batches: SegmentBatches, resumed_at: list[int]) -> dict:
    """nanoGPT-style: everything to resume or export. ``data_before``: the card's data entries
    of the runs whose weights this one started from (init_from), for the exported card;
    ``data``: what this run trains on ({"fingerprint", "clips"}), checked on resume; ``rng``:
    the random streams as they stand after ``step`` (the batches' and torch's), so that a resumed
    run draws what the run would have drawn had it not stopped; ``resumed_at``: the steps the
    run was resumed at, oldest first."""
    return {"model": model.state_dict(), "heads": heads.state_dict(),
            "optimizer": optimizer.state_dict(), "model_args": model.cfg.to_dict(),
            "iter_num": step, "best_val_loss": best_val, "config": cfg.to_dict(),
            "elapsed_s": elapsed_s, "data_before": data_before, "data": data,
            "rng": {"batches": batches.rng.bit_generator.state, "torch": torch.get_rng_state()},
            "resumed_at": list(resumed_at),
            "work_dir": os.getcwd()}  # what the config's relative paths are relative to


def _restore_random_streams(resumed: dict, batches: SegmentBatches, seed: int, step: int,
                            log) -> None:
    """The random streams as the checkpoint left them. One saved before 2026-12-07 holds none:
    the batches are drawn from seed + step, torch's stream from the seed, and the run goes on
    as a run of its own, not as the run would have had it not stopped (said)."""
    saved = resumed.get("rng")
    if isinstance(saved, dict) and {"batches", "torch"} <= saved.keys():
        batches.rng.bit_generator.state = saved["batches"]
        torch.set_rng_state(saved["torch"])
        return
    batches.rng = np.random.default_rng(seed + step)
    log("its checkpoint holds no random state (saved before 2026-12-07): from here the run draws "
        "other batches than it would have without the stop")


def _check_same_data(resumed: dict, data: dict, out: Path, log=print, datasets: bool = True,
                     generic: bool = False) -> None:
    """A resumed run goes on with the data it was trained on; other data (files added, removed,
    edited or relabelled) is refused before the run's folder is touched. Checkpoints made
    before 2026-12-06 do not record their data: said, not checked."""
    before = resumed.get("data")
    if before is None:
        log(f"{out / 'ckpt.pt'} does not record the data it was trained on (made before "
            "2026-12-06): the data is not checked")
    elif before["fingerprint"] != data["fingerprint"]:
        where = " and ".join(flag for flag, used in (("--data", bool(datasets)),
                                                     ("--generic-folder/--generic-csv", generic))
                             if used) or "--data"
        raise DataError(f"--resume true: the data is not what {out} was trained on ({before['clips']} "
                        f"clips then, {data['clips']} now, or their files, labels or splits changed); "
                        f"point {where} at the run's data, or start a new run (another --out, "
                        "--init-from to start from its weights)")


def train(cfg: TrainConfig, log=print, given: dict | None = None) -> dict:
    """Run training; return the final checkpoint dict (also saved under ``cfg.out``). Resuming,
    the run trains with its checkpoint's settings and what ``given`` (a command's file and
    flags; default: all of ``cfg``) may change (checkpoints.RESUME_MAY_CHANGE)."""
    with contextlib.ExitStack() as held:  # the run folder's lock, once the folder is made
        return _train(cfg, log, given, held)


def _train(cfg: TrainConfig, log, given: dict | None, held: contextlib.ExitStack) -> dict:
    out = Path(cfg.out)
    check_run_folder(out, cfg.resume)
    locked = out.is_dir()  # locked before its checkpoint is read (helper-87); a new folder once made
    if locked:
        held.enter_context(RunFolderLock(out, cfg.resume, log))
    resumed = read_run(out) if cfg.resume else None  # read before any data, once
    if resumed is not None:
        cfg = _resumed_config(resumed, cfg.to_dict() if given is None else given)
        if resumed["iter_num"] >= cfg.max_steps:  # said before the data loads, nothing changed
            raise DataError(f"--resume true: {out} is at step {resumed['iter_num']} already, not "
                            f"below --max-steps {cfg.max_steps}: give a larger --max-steps to go on")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    init = read_init_from(cfg) if cfg.init_from and not cfg.resume else None  # resumed: its own
    prep = load_data(cfg, log)
    data = {"fingerprint": prep.fingerprint, "clips": len(prep.path)}
    if resumed is not None:
        _check_same_data(resumed, data, out, log, datasets=bool(cfg.datasets or cfg.unlabelled),
                         generic=bool(cfg.generic_csv))
    train_batches = SegmentBatches(prep, "train", cfg, cfg.seed)
    val_batches = SegmentBatches(prep, "val", cfg, cfg.seed + 1)
    # Only now, with the data read and cut: a run that fails before leaves the folder as it was.
    out.mkdir(parents=True, exist_ok=True)
    if not locked:  # no second run writes here meanwhile
        held.enter_context(RunFolderLock(out, cfg.resume, log))
    with replaced_on_success(out / "config.json") as written:  # a full disk left it empty
        written.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    for line in train_batches.describe() + val_batches.describe():
        log(line)
    model, heads = CVAE(cfg.model_config()), EmotionHeads(cfg.z_dim)
    params = list(model.parameters()) + list(heads.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    step, best_val, spent_s, resumed_at = 0, float("inf"), 0.0, []
    if init is not None:
        start_from(model, heads, init, cfg, log)
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        heads.load_state_dict(resumed["heads"])
        optimizer.load_state_dict(resumed["optimizer"])
        step, best_val, spent_s = (resumed["iter_num"], resumed["best_val_loss"],
                                   resumed["elapsed_s"])
        log(f"resumed from {out / 'ckpt.pt'} at step {step}")
        _restore_random_streams(resumed, train_batches, cfg.seed, step, log)
        resumed_at = [*resumed.get("resumed_at", []), step]
    data_before = (resumed.get("data_before", []) if resumed is not None
                   else checkpoint_data(init) if init is not None else [])
    start = time.monotonic() - spent_s
    model.train()

    def snapshot(at_step: int, elapsed_s: float) -> dict:  # best_val as it is at the call
        return _checkpoint(model, heads, optimizer, cfg, at_step, best_val, elapsed_s, data_before,
                           data, train_batches, resumed_at)

    ckpt = snapshot(step, spent_s)
    saved_step = step if resumed is not None else None  # the step ckpt.pt holds
    drop_partial_line(out / "metrics.jsonl")
    if resumed is not None and drop_records_after(out / "metrics.jsonl", step):
        log(f"metrics.jsonl: records after step {step}, whose checkpoint was not saved, removed")
    with open(out / "metrics.jsonl", "a", encoding="utf-8") as metrics, StopOnInterrupt() as stop, \
            tqdm(total=cfg.max_steps, initial=step, desc="train", unit="step") as bar:
        while step < cfg.max_steps:
            lr = lr_at(cfg, step, time.monotonic() - start)
            for group in optimizer.param_groups:
                group["lr"] = lr
            roll, emotion, label = train_batches.sample(cfg.batch_size)
            losses = compute_losses(model, heads, roll, emotion, label, **_loss_args(cfg, step))
            if not torch.isfinite(losses["total"]):
                raise TrainingDiverged(_diverged(out, step + 1, "training", saved_step))
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            step += 1
            bar.update(1)
            bar.set_postfix(recon=f"{losses['recon'].item():.3f}", kl=f"{losses['kl'].item():.1f}")
            elapsed = time.monotonic() - start
            out_of_time = elapsed > cfg.max_minutes * 60
            if step % cfg.eval_every == 0 or step == cfg.max_steps or out_of_time:
                val = evaluate_losses(model, heads, val_batches, cfg, step)
                if not all(math.isfinite(value) for value in val.values()):
                    raise TrainingDiverged(_diverged(out, step, "validation", saved_step))
                record = {"step": step, "elapsed_s": round(elapsed, 1), "lr": lr,
                          "beta": beta_at(cfg, step),
                          "train": {k: v.item() for k, v in losses.items()}, "val": val}
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
                val_loss = val["recon"] + val["kl"] / cfg.segment_steps
                if val_loss < best_val:
                    best_val = val_loss
                    ckpt = snapshot(step, elapsed)
                    save_atomic(ckpt, out / "best.pt")
                ckpt = snapshot(step, elapsed)
                save_atomic(ckpt, out / "ckpt.pt")
                saved_step = step
                log(f"step {step}: val recon {val['recon']:.4f} kl {val['kl']:.2f} "
                    f"critic(real) {val['critic_real']:.3f} adv {val['adv_ce']:.3f} "
                    f"({elapsed / 60:.1f} min)")
            if out_of_time:
                log(f"stopping at step {step}: max_minutes={cfg.max_minutes} reached")
                break
            if stop.requested:  # Ctrl-C, SIGTERM, SIGHUP, ...: this step is whole; keep it
                ckpt = snapshot(step, elapsed)
                save_atomic(ckpt, out / "ckpt.pt")
                asked = "Ctrl-C" if stop.signal_name == "SIGINT" else stop.signal_name
                raise TrainingStopped(f"stopped by {asked} at step {step}, saved in "
                                      f"{out / 'ckpt.pt'}: --resume true goes on from there", stop.exit_status)
    return ckpt


def _resumed_config(ckpt: dict, given: dict) -> TrainConfig:
    """checkpoints.resumed_config, its refusal as DataError (status 2)."""
    try:
        return resumed_config(ckpt["config"], given, ckpt.get("work_dir"))
    except ValueError as err:
        raise DataError(str(err)) from None


def _diverged(out: Path, step: int, which: str, saved_step: int | None) -> str:
    kept = (f"{out / 'ckpt.pt'} keeps step {saved_step}" if saved_step is not None
            else "no checkpoint was saved")
    return (f"the {which} loss is not finite at step {step}: the run diverged (a lower --lr may "
            f"help); {kept}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emolive train", description=__doc__.split("\n\n")[0])
    add_config_flags(parser)
    args = parser.parse_args(argv)
    try:
        given = given_values(args)
        cfg = config_from_values(given)
    except ValueError as err:
        return error_line(parser.prog, err)
    try:  # resuming, train() takes the run's own settings with what `given` may change
        train(cfg, log=lambda text: print(text, file=sys.stderr), given=given)
    except DataError as err:
        return error_line(parser.prog, err)
    except TrainingDiverged as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    except TrainingStopped as err:
        print(f"{parser.prog}: {err}", file=sys.stderr)
        return err.exit_status
    except (KeyboardInterrupt, Terminated) as stop:  # before training began, or a second Ctrl-C
        name = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else str(stop)
        print(f"{parser.prog}: stopped by {name}; {cfg.out}/ckpt.pt, if there is one, holds the "
              "last checkpoint saved", file=sys.stderr)
        return INTERRUPTED_STATUS if isinstance(stop, KeyboardInterrupt) else stop.status
    return 0


if __name__ == "__main__":  # as `emolive train ARGS`: its messages for errors, signals, statuses
    from emolive.cli import main as emolive

    raise SystemExit(emolive(["train", *sys.argv[1:]]))
