"""Clips -> cached piano rolls -> fixed-length segments.

The cache is one ``.npz`` per (feature settings, file list) in ``cache_dir``, keyed by a hash of
both (paths, file contents, labels, splits), so changing data or settings rebuilds, and the same
data with new modification times in the same place (a fresh checkout) does not; the same data
at another path builds a cache of its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emolive.emotions import QUADRANT_NAMES, QUADRANTS
from emolive.safe_write import replaced_on_success

from .data import MAX_SKIPS_LISTED, LoadReport
from .notes import MidiReadError, read_notes
from .features import N_KEYS, note_steps, notes_to_roll, onset_error_s

STEPS_PER_BAR = 16


@dataclass
class FeatureConfig:
    grid_emopia: str = "tracked"  # EMOPIA has no beat information: beats tracked from onsets
    grid_vgmidi: str = "tracked"  # VGMIDI's beats do not fit its notes (measured: see docs)
    # Other files: their own beats where the notes sit on them (quantised files), else beats
    # tracked from the onsets (performed files such as POP909's, whose tempo map is fixed).
    grid_other: str = "auto"
    sustain: bool = True  # extend notes held by the damper pedal
    version: int = 1  # bump when feature code changes meaning

    def grid_for(self, dataset: str) -> str:
        return {"EMOPIA": self.grid_emopia, "VGMIDI": self.grid_vgmidi}.get(dataset,
                                                                           self.grid_other)


@dataclass
class Prepared:
    rolls: list[np.ndarray]  # uint8 [T_i, 264] per clip
    quadrant: np.ndarray  # int [N], 0..3, -1 when unlabelled
    split: np.ndarray  # str [N], "train" / "val"
    song: list[str]
    path: list[str]
    dataset: list[str]
    onset_error: dict[str, dict[str, float]] = field(default_factory=dict)  # per dataset, ms
    skipped: list[tuple[str, str]] = field(default_factory=list)
    fingerprint: str = ""  # what the data is, wherever it lies (set by prepare; checked on resume)

    def indices(self, split: str, labelled: bool = True) -> np.ndarray:
        ok = self.split == split
        if labelled:
            ok &= self.quadrant >= 0
        return np.nonzero(ok)[0]


def _content_digest(path: Path) -> str:
    """The file's bytes hashed; an unreadable file hashes as such (the build skips it)."""
    try:
        return hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def _clip_rows(reports: list[LoadReport]) -> list[tuple[str, str]]:
    """Per clip: (its path, the rest of what identifies it: contents, label, split, song and
    dataset). Each file is read and hashed once, for both the cache key and the fingerprint."""
    return [(str(clip.path), f"{_content_digest(clip.path)}|{clip.quadrant}|{clip.split}|{clip.song}|{clip.dataset}")
            for report in reports for clip in report.clips]


def _fingerprint(rows: list[tuple[str, str]]) -> str:
    """What a run trains on, wherever it lies: every clip's contents, label, split, song and
    dataset, not its path (a moved or copied data folder gives the same fingerprint; an added,
    removed, edited or relabelled file another)."""
    return hashlib.sha1("\n".join(sorted(identity for _, identity in rows)).encode()).hexdigest()[:16]


#: Bumped when reading or featurising changes what the same file and settings give, so that
#: caches of the older code are not reused. 2 (2026-12-06): a repeated note written note-on
#: before note-off is kept; a clip's dataset (which picks its grid) is in the key. 3: a file
#: with a tempo faster than 1,000 BPM is skipped.
FEATURES_VERSION = 3


def _cache_key(rows: list[tuple[str, str]], cfg: FeatureConfig) -> str:
    digest = hashlib.sha1(json.dumps(asdict(cfg), sort_keys=True).encode())
    digest.update(f"features {FEATURES_VERSION}".encode())
    for path, identity in rows:
        digest.update(f"{path}|{identity}".encode())
    return digest.hexdigest()[:16]


def _loader_skips(reports: list[LoadReport]) -> list[tuple[str, str]]:
    """What the loaders skipped (a missing file, a bad label): this run's, never cached."""
    return [s for r in reports for s in r.skipped]


def _error_summary(errors_s: np.ndarray, grid: str, files: int) -> dict[str, float]:
    ms = errors_s * 1000.0
    return {"grid": grid, "files": files, "notes": int(len(ms)), "mean_ms": float(ms.mean()),
            "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95))}


def _build(reports: list[LoadReport], cfg: FeatureConfig) -> Prepared:
    rolls, quadrant, split, song, path, dataset = [], [], [], [], [], []
    skipped = _loader_skips(reports)
    errors: dict[str, list[np.ndarray]] = {}
    clips = [c for r in reports for c in r.clips]
    for clip in tqdm(clips, desc="features", unit="file"):
        grid = cfg.grid_for(clip.dataset)
        try:
            notes = read_notes(clip.path, sustain=cfg.sustain)
            start, end, step_s = note_steps(notes, grid)
            roll = notes_to_roll(notes.pitch, notes.velocity, start, end)
        except MidiReadError as err:
            skipped.append((str(clip.path), str(err)))
            continue
        if roll[:, :N_KEYS].sum() == 0:
            skipped.append((str(clip.path), "no notes on the 88 piano keys"))
            continue
        errors.setdefault(clip.dataset, []).append(onset_error_s(start, step_s))
        rolls.append(roll)
        quadrant.append(-1 if clip.quadrant is None else clip.quadrant)
        split.append(clip.split)
        song.append(clip.song)
        path.append(str(clip.path))
        dataset.append(clip.dataset)
    onset_error = {name: _error_summary(np.concatenate(errs), cfg.grid_for(name), len(errs))
                   for name, errs in errors.items()}
    return Prepared(rolls, np.array(quadrant, dtype=np.int64), np.array(split), song, path,
                    dataset, onset_error, skipped)


def _save(prep: Prepared, file: Path, reports: list[LoadReport]) -> None:
    lengths = np.array([len(r) for r in prep.rolls], dtype=np.int64)
    listed = set(_loader_skips(reports))
    meta = {"song": prep.song, "path": prep.path, "dataset": prep.dataset,
            "onset_error": prep.onset_error,
            "unreadable": [s for s in prep.skipped if s not in listed]}  # the clips' own
    # Written beside the cache file and renamed over it (emolive's own safe write): two runs
    # preparing the same cache at once each write their own file and the last rename wins (both
    # hold the same arrays); a full disk or a stop signal leaves no partial or temporary file.
    # The file gets a new file's mode (mkstemp's 0600 kept another user sharing --cache-dir out;
    # helper-57).
    with replaced_on_success(file) as written:
        np.savez_compressed(written, rolls=np.concatenate(prep.rolls), lengths=lengths,
                            quadrant=prep.quadrant, split=prep.split, meta=json.dumps(meta))


def _load(file: Path, reports: list[LoadReport]) -> Prepared:
    with np.load(file) as npz:
        offsets = np.concatenate([[0], np.cumsum(npz["lengths"])])
        flat = npz["rolls"]
        rolls = [flat[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
        meta = json.loads(str(npz["meta"]))
        return Prepared(rolls, npz["quadrant"], npz["split"], meta["song"], meta["path"],
                        meta["dataset"], meta["onset_error"],
                        _loader_skips(reports) + [tuple(s) for s in meta["unreadable"]])


def prepare(reports: list[LoadReport], cfg: FeatureConfig | None = None,
            cache_dir: str | Path | None = None, log: Callable[[str], None] = print) -> Prepared:
    """Rolls for every readable clip of ``reports`` (cached in ``cache_dir`` when given).

    The cache only saves time: a cache file that cannot be read (truncated, corrupt, from
    another program) is built again, and a folder that cannot hold it (a file, no permission)
    leaves the run uncached; ``log`` says which."""
    cfg = cfg or FeatureConfig()
    rows = _clip_rows(reports)
    prep = _built_or_cached(reports, cfg, rows, cache_dir, log)
    prep.fingerprint = _fingerprint(rows)
    return prep


def _built_or_cached(reports: list[LoadReport], cfg: FeatureConfig, rows: list[tuple[str, str]],
                     cache_dir: str | Path | None, log: Callable[[str], None]) -> Prepared:
    if cache_dir is None:
        return _build(reports, cfg)
    file = Path(cache_dir) / f"rolls-{_cache_key(rows, cfg)}.npz"
    if file.is_file():
        try:
            return _load(file, reports)
        except Exception as err:  # noqa: BLE001 - zip, pickle, key and EOF errors: not our cache
            log(f"cache file {file} cannot be read ({type(err).__name__}: {err}); reading the "
                "MIDI files again")
    prep = _build(reports, cfg)
    if prep.rolls:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            _save(prep, file, reports)
        except OSError as err:
            why = "it is a file" if Path(cache_dir).is_file() else err.strerror or err
            log(f"the features are not cached: --cache-dir {cache_dir} cannot hold them ({why})")
    return prep


def segment_starts(prep: Prepared, clips: np.ndarray, segment_steps: int, hop_steps: int,
                   min_onsets: int = 4) -> np.ndarray:
    """``[S, 2]`` (clip index, start step) of every segment with at least ``min_onsets`` onsets.

    A clip shorter than one segment gives one segment padded with silence at the end."""
    out = []
    for clip in clips:
        onsets_per_step = prep.rolls[clip][:, :N_KEYS].sum(axis=1)
        last = max(len(onsets_per_step) - segment_steps, 0)
        for start in range(0, last + 1, hop_steps):
            if onsets_per_step[start:start + segment_steps].sum() >= min_onsets:
                out.append((clip, start))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def gather_segments(prep: Prepared, starts: np.ndarray, segment_steps: int) -> np.ndarray:
    """uint8 ``[S, segment_steps, 264]`` for the (clip, start) rows of ``starts``."""
    out = np.zeros((len(starts), segment_steps, 3 * N_KEYS), dtype=np.uint8)
    for row, (clip, start) in enumerate(starts):
        piece = prep.rolls[clip][start:start + segment_steps]
        out[row, :len(piece)] = piece
    return out


def describe_segments(prep: Prepared, split: str, clips: np.ndarray, starts: np.ndarray,
                      min_onsets: int) -> list[str]:
    """Log lines for ``split``'s segments (``starts`` of :func:`segment_starts` over ``clips``):
    their count per quadrant, the clips that gave none (named, the first MAX_SKIPS_LISTED),
    and for training a warning naming each quadrant without a segment where others have some.
    Counted before from the loaders alone, a quadrant whose files were all unreadable or too
    sparse was trained without a word (helper-61)."""
    labels = prep.quadrant[starts[:, 0]]
    counts = {quadrant: int((labels == index).sum()) for index, quadrant in enumerate(QUADRANTS)}
    parts = [f"{quadrant} {count}" for quadrant, count in counts.items()]
    if (unlabelled := int((labels < 0).sum())):
        parts.append(f"unlabelled {unlabelled}")
    lines = [f"{split} segments: {len(starts)} ({', '.join(parts)})"]
    used = set(starts[:, 0].tolist())
    barren = [int(clip) for clip in clips if int(clip) not in used]
    if barren:
        lines.append(f"  {len(barren)} {split} clip{'s' if len(barren) > 1 else ''} gave no segment "
                     f"(fewer than {min_onsets} onsets in every segment; --min-onsets):")
        lines += [f"    {prep.path[clip]}" for clip in barren[:MAX_SKIPS_LISTED]]
        if len(barren) > MAX_SKIPS_LISTED:
            lines.append(f"    ... and {len(barren) - MAX_SKIPS_LISTED} more")
    missing = [f"{quadrant} ({QUADRANT_NAMES[quadrant][0]})" for quadrant, count in counts.items() if not count]
    if split == "train" and missing and any(counts.values()):
        lines.append(f"warning: no training segment of {', '.join(missing)}: nothing is learnt of "
                     f"{'that emotion' if len(missing) == 1 else 'those emotions'} (its clips are missing, "
                     "unreadable or too sparse: see above)")
    return lines
