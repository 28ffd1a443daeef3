"""The command line of a tiny training run (seconds on one thread), for the training tests."""

from __future__ import annotations

from pathlib import Path

TINY = ["--z-dim", "8", "--hidden", "24", "--enc-hidden", "16", "--frame-proj", "16",
        "--emb-dim", "4", "--batch-size", "8", "--eval-every", "5", "--val-segments", "8",
        "--threads", "1", "--warmup-steps", "2", "--beta-warmup-steps", "10", "--min-onsets", "1"]


def tiny_args(folder: Path, csv_path: Path, tmp_path: Path, steps: int) -> list[str]:
    """`emolive train` flags: ``steps`` steps on the labelled folder, into ``tmp_path/run``."""
    return ["--datasets", "--generic-folder", str(folder), "--generic-csv", str(csv_path),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
            "--max-steps", str(steps), *TINY]
