"""A run's folder and checkpoints: where a run may write, saving without leaving a torn file,
resuming with the run's own settings, and stopping cleanly on Ctrl-C.

Invariants: ``<out>/ckpt.pt`` and ``<out>/best.pt`` are always whole checkpoints (each is written
beside itself and renamed over the old one); a resumed run trains with the settings its
checkpoint was trained with, only how long and where from may change (RESUME_MAY_CHANGE).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from emolive.cli_options import stop_signals_to_catch
from emolive.safe_write import WriteError, replaced_on_success, space_left

from .config import TrainConfig, check_out_folder, config_from_values
from .data import DataError
from .model import read_checkpoint

#: What a resumed run may set anew: how long it runs, with how many threads, how often it is
#: evaluated, and where its data and cache are (the same data moved elsewhere).
#: Settings a resumed run may change: where its data lies, how long and how it runs (the last
#: two, resume and out, are how a run is resumed, not settings to name in messages).
RESUME_MAY_CHANGE = ("max_steps", "max_minutes", "eval_every", "threads", "data", "cache_dir",
                     "generic_folder", "generic_csv", "resume", "out")
#: Files whose presence says a folder holds a run, which a new run must not overwrite.
RUN_FILES = ("ckpt.pt", "best.pt", "metrics.jsonl")


class TrainingStopped(Exception):
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP, ...) stopped the run after a whole step; its checkpoint was
    saved. ``exit_status`` is 128 + the signal's number."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class TrainingDiverged(Exception):
    """A loss stopped being finite; the last checkpoint saved (if any) was kept."""


def check_run_folder(out: Path, resume: bool) -> None:
    """DataError before any work when ``out`` cannot take this run: not a folder that can be
    made, a folder holding another run (without ``resume``), or no run to resume."""
    try:
        check_out_folder(out, "--out")
    except ValueError as err:
        raise DataError(str(err)) from None
    # An empty metrics.jsonl is what a run that failed before its first evaluation leaves
    # (diverged at step 2, say): no run, or the folder refused both a new run and --resume.
    held = [name for name in RUN_FILES if (out / name).exists()
            and not (name == "metrics.jsonl" and (out / name).stat().st_size == 0)]
    if resume and not (out / "ckpt.pt").is_file():
        raise DataError(f"--resume true: {out} holds no run to go on with (no ckpt.pt); give the "
                        "run's folder, or leave --resume out to start a new run")
    if held == ["metrics.jsonl"] and not resume:
        raise DataError(f"{out} holds the metrics of a run that saved no checkpoint (it ended "
                        f"before its first): remove {out / 'metrics.jsonl'} to start a new run "
                        "there, or give another --out")
    if held and not resume:
        raise DataError(f"{out} already holds a run ({', '.join(held)}): give --resume true to go "
                        "on with it, or another --out for a new run")


#: The staging folders of checkpoint saves (save_atomic), which a run's lock may sweep.
CHECKPOINT_STAGING = ".emolive-checkpoint-"


class RunFolderLock:
    """An exclusive lock on a run's folder for as long as the run writes into it (``flock`` on
    the folder itself, so no lock file is left; the system drops it when the process ends,
    however). Two runs started at once on one new ``--out`` both trained into it, their
    metrics interleaved, the config of one beside the checkpoints of the other (helper-84).
    Taken as soon as the folder exists (before a resume reads its checkpoint, so that a run
    still saving cannot be gone on from a step before its last), then the folder is checked
    again under it. Where the system has no ``flock`` (Windows) or the file system refuses it
    on a folder (NFS may: helper-87), nothing is locked and ``log`` says so."""

    def __init__(self, out: Path, resume: bool, log: Callable[[str], object] = print) -> None:
        self.out, self.resume, self.log = out, resume, log
        self.descriptor: int | None = None

    def __enter__(self) -> RunFolderLock:
        try:
            import fcntl
        except ImportError:
            return self
        self.descriptor = os.open(self.out, os.O_RDONLY)
        try:
            fcntl.flock(self.descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.__exit__()
            raise DataError(f"another run is training in {self.out} now; wait for it to end, or "
                            "give another --out") from None
        except OSError as error:  # no locks on this file system: train unlocked, as on Windows
            self.__exit__()
            self.log(f"{self.out} cannot be locked ({error.strerror}); do not start a second run into it")
            return self
        try:
            check_run_folder(self.out, self.resume)  # what a run that just ended left there
            self._remove_stale_checkpoint_staging()
        except BaseException:  # the lock is not kept by a refused run (nor by Ctrl-C here)
            self.__exit__()
            raise
        return self

    def _remove_stale_checkpoint_staging(self) -> None:
        """Checkpoints a killed run was writing (``.emolive-checkpoint-*/``, beside the run's
        own): no other run writes here while the lock is held, so they are stale. A SIGKILL
        mid-save left one checkpoint's worth of hidden disk each time (helper-84). Other
        programs' staging (``.emolive-*``: a `generate -o RUN/x.mid` meanwhile) is left alone."""
        for staging in self.out.glob(f"{CHECKPOINT_STAGING}*"):
            if staging.is_dir() and not staging.is_symlink():
                shutil.rmtree(staging, ignore_errors=True)

    def __exit__(self, *_exc: object) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)  # the lock goes with it
            self.descriptor = None


def read_for_training(path: str | Path) -> dict:
    """model.read_checkpoint, its errors as DataError (a mistake in the command, status 2)."""
    try:
        return read_checkpoint(path)
    except ValueError as err:
        raise DataError(str(err)) from None


def read_run(out: Path) -> dict:
    """The checkpoint to resume from, ``<out>/ckpt.pt``; DataError when it is not one or holds
    no training state (read back from ONNX files by emolive.training.recover)."""
    ckpt = read_for_training(out / "ckpt.pt")
    if ckpt.get("optimizer") is None or not isinstance(ckpt.get("config"), dict):
        raise DataError(f"{out / 'ckpt.pt'} holds no training state to resume (it was read back "
                        "from ONNX files): start a run from it with --init-from")
    return ckpt


def _saved_values(saved: dict) -> dict:
    """A checkpoint's settings, as TrainConfig fields (a setting newer than the checkpoint gets
    its default; one since removed is dropped)."""
    known = TrainConfig().to_dict()
    return {name: value for name, value in saved.items() if name in known}


def changed_settings(saved: dict, given: dict) -> list[str]:
    """'name: run's value -> given value' for each setting in ``given`` that a resumed run may
    not change and that differs from the run's (defaults for settings the run did not save)."""
    run = {**TrainConfig().to_dict(), **_saved_values(saved)}
    return [f"{name} {run[name]!r} -> {value!r}" for name, value in given.items()
            if name not in RESUME_MAY_CHANGE and name in run and run[name] != value]


#: Settings that are paths, relative to the folder the run's command ran in (``work_dir``).
PATH_SETTINGS = ("data", "generic_folder", "generic_csv", "cache_dir")


def resumed_config(saved: dict, given: dict, work_dir: str | None = None) -> TrainConfig:
    """The run's own settings (``saved``, its checkpoint's config) with what ``given`` (a
    command's file and flags) may change; ValueError naming any other setting it changes.
    ``work_dir``: the folder the command that saved the checkpoint ran in (since 2026-12-07).
    A relative data or cache path that ``given`` does not replace is read from the folder this
    command runs in, as before; only where nothing lies there but something lies under
    ``work_dir`` is it taken from there, written relative to this folder (no absolute path goes
    into the card). So a run resumes from another folder (it said "CSV data/labels.csv not
    found"), and a moved or copied project resumes on its own data, not the old place's."""
    changed = changed_settings(saved, given)
    if changed:
        raise ValueError("a resumed run keeps the settings it was trained with; this command "
                         f"changes {'; '.join(changed)} (only {', '.join(RESUME_MAY_CHANGE[:8])} "
                         "may change): leave them out, or start a new run with --init-from")
    values = {**_saved_values(saved), **{k: v for k, v in given.items() if k in RESUME_MAY_CHANGE}}
    for key in PATH_SETTINGS:
        if key not in given and values.get(key):
            values[key] = _path_from_here(values[key], work_dir)
    return config_from_values(values)


def _path_from_here(path: str, work_dir: str | None) -> str:
    """``path`` as this command reads it: itself when absolute or when it exists from here;
    else, when it exists relative to ``work_dir``, that path relative to here."""
    if os.path.isabs(path) or os.path.exists(path) or not work_dir:
        return path
    there = os.path.join(work_dir, path)
    return os.path.relpath(there) if os.path.exists(there) else path


def drop_partial_line(path: Path) -> None:
    """Cut a line that a kill left half-written at the end of ``path`` (a JSON-lines log), so
    that the next record starts a line of its own (appended to it, both were lost)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def read_metrics(path: Path) -> list[dict]:
    """The records of a run's metrics.jsonl, in order; a line cut short by a kill or a full
    disk, or one that is not a record, is passed over (``evaluate --run`` failed on one with
    "Expecting ',' delimiter", naming no file; helper-84)."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def drop_records_after(path: Path, step: int) -> int:
    """Remove from the JSON-lines log ``path`` the records of steps after ``step`` (those of
    evaluations whose checkpoint was never saved: a full disk or a kill between the two), so
    that a resumed run does not log them twice. Returns how many went; the log is replaced whole."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            record_step = json.loads(line).get("step")
        except (ValueError, AttributeError):  # not a record of ours: kept as it is
            record_step = None
        if isinstance(record_step, int) and record_step > step:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        with replaced_on_success(path) as rewritten:
            rewritten.write_text("".join(kept), encoding="utf-8")
    return dropped


def save_atomic(checkpoint: dict[str, Any], path: Path) -> None:
    """torch.save through emolive's replaced_on_success (beside ``path``, then renamed over it):
    a kill or a full disk while saving leaves the checkpoint before, never a torn one, and a
    write that fails is a WriteError naming ``path``, torch's short write ("unexpected pos", a
    RuntimeError) too."""
    with replaced_on_success(path, staging=CHECKPOINT_STAGING) as written:
        try:
            torch.save(checkpoint, written)
        except RuntimeError as error:
            raise WriteError(errno.EIO, f"{error}; {space_left(path)}", path) from error


class StopOnInterrupt:
    """While in use (in the main thread): the first stop signal (``emolive.cli_options.STOP_SIGNALS``:
    SIGINT from Ctrl-C, SIGTERM from a job scheduler or `kill`, SIGHUP from a closed terminal,
    SIGQUIT, SIGUSR1, SIGUSR2 or SIGALRM, which schedulers such as Slurm send ahead of a job's
    end, and SIGXCPU, a soft CPU-time limit reached) only sets ``requested`` and ``signal_name``, so the run stops after a whole step
    with its checkpoint saved; a second raises KeyboardInterrupt at once (SIGINT) or ends the
    process as the signal does by default. One inherited ignored stays ignored (``nohup``'s
    SIGHUP: a closed terminal stopped a nohup'd run), SIGINT's and SIGTERM's excepted.
    Elsewhere (another thread), signals are left as they are."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""  # the signal that asked, e.g. "SIGTERM"
        self._previous: dict[int, Any] = {}

    def _request(self, signum: int, _frame: Any) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        for number in self._previous:  # a second signal: at once
            signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + int(signal.Signals[self.signal_name]) if self.signal_name else 0

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._request) for number in stop_signals_to_catch()}
        return self

    def __exit__(self, *_exc: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
