"""Run one file through the training loaders exactly as training does, and classify the result.

The path under test is `emolive.training.prepare.prepare` (read_notes -> note_steps ->
notes_to_roll, with skips recorded in `Prepared.skipped`): a bad file must come out as one
skip with a non-empty reason, a good one as one roll; nothing may raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Longest roll the loaders may build from one file: 2 hours of 16ths at 300 BPM. A file that
# claims more (a note 2^28 ticks long) must be skipped, not turned into gigabytes of roll.
MAX_ROLL_STEPS = 2 * 60 * 300 * 4

# One dataset per grid the loaders use: EMOPIA (and VGMIDI) are beat-tracked from onset times
# (seconds); other datasets ("generic", unlabelled folders) use the file's own beats
# (ticks / ticks_per_beat). See FeatureConfig.grid_for.
DATASETS = ("EMOPIA", "generic")


@dataclass
class Outcome:
    accepted: bool
    reason: str  # skip reason, "" when accepted
    steps: int  # roll length in 16th steps, 0 when skipped


def load_one(path: Path, dataset: str) -> Outcome:
    """Prepare a one-clip report; raises only if the loaders let an exception escape."""
    from emolive.training.data import Clip, LoadReport
    from emolive.training.prepare import FeatureConfig, prepare

    report = LoadReport(dataset)
    report.clips.append(Clip(Path(path), "fuzz-song", dataset, 0, "train"))
    prep = prepare([report], FeatureConfig(), cache_dir=None)
    assert len(prep.rolls) + len(prep.skipped) == 1, "a file must be kept or skipped, once"
    if prep.skipped:
        return Outcome(False, prep.skipped[0][1], 0)
    return Outcome(True, "", int(prep.rolls[0].shape[0]))
