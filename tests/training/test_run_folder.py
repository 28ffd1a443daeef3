"""A run's folder and checkpoints: what a new run refuses to overwrite, resuming with the run's
own settings, checkpoints that are never torn, Ctrl-C, and a run that diverges."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from emolive.training import checkpoints, train
from tiny_run import TINY, tiny_args

pytestmark = pytest.mark.training


def _config(run: Path) -> dict:
    return torch.load(run / "ckpt.pt", weights_only=False)["config"]


def test_resuming_keeps_the_runs_own_settings(labelled_folder, tmp_path: Path) -> None:
    """`--out RUN --resume true` alone goes on with the settings the run was trained with."""
    folder, csv_path = labelled_folder
    first = tiny_args(folder, csv_path, tmp_path, 5) + ["--silent-start", "1.0",
                                                       "--key-normalise", "true", "--transpose", "0"]
    assert train.main(first) == 0
    run = tmp_path / "run"
    assert train.main(["--out", str(run), "--resume", "true", "--max-steps", "10",
                       "--cache-dir", str(tmp_path / "cache")]) == 0
    config = _config(run)
    assert torch.load(run / "ckpt.pt", weights_only=False)["iter_num"] == 10
    assert (config["silent_start"], config["key_normalise"], config["transpose"]) == (1.0, True, 0)
    assert config["hidden"] == 24 and config["generic_csv"] == str(csv_path)
    assert json.loads((run / "config.json").read_text())["max_steps"] == 10


@pytest.mark.parametrize("change,named", [
    (["--hidden", "32"], "hidden 24 -> 32"),
    (["--silent-start", "0.5"], "silent_start 0.0 -> 0.5"),
    (["--lr", "0.01"], "lr 0.002 -> 0.01"),
])
def test_resuming_refuses_other_settings_before_any_work(labelled_folder, tmp_path: Path, capsys,
                                                         change: list[str], named: str) -> None:
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 5)) == 0
    run = tmp_path / "run"
    config_before = (run / "config.json").read_text()
    capsys.readouterr()
    argv = tiny_args(folder, csv_path, tmp_path, 10) + ["--resume", "true", *change,
                                                        "--data", str(tmp_path / "no-data")]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert named in err and "keeps the settings it was trained with" in err and "--init-from" in err
    assert "Traceback" not in err and "dataset" not in err  # refused before the data was read
    assert (run / "config.json").read_text() == config_before


def test_resume_without_a_run_is_refused(tmp_path: Path, capsys) -> None:
    """A mistyped --out with --resume true does not quietly start a new run from step 0."""
    assert train.main(["--out", str(tmp_path / "typo"), "--resume", "true",
                       "--data", str(tmp_path / "no-data")]) == 2
    assert "holds no run to go on with (no ckpt.pt)" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("files", [["best.pt"], ["ckpt.pt"], ["best.pt", "metrics.jsonl"]])
def test_a_folder_with_any_run_file_is_not_overwritten(tmp_path: Path, capsys, files) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in files:
        (run / name).write_text("an earlier run's")
    assert train.main(["--out", str(run), "--data", str(tmp_path / "no-data")]) == 2
    assert f"already holds a run ({', '.join(files)})" in capsys.readouterr().err
    assert all((run / name).read_text() == "an earlier run's" for name in files)


@pytest.mark.parametrize("out,message", [
    ("", "--out is empty"),
    ("{tmp}/afile/run", "afile is a file"),
    ("{tmp}/afile", "is a file; give a folder"),
])
def test_an_out_that_cannot_be_a_folder_is_refused_before_any_work(tmp_path: Path, capsys,
                                                                   out: str, message: str) -> None:
    (tmp_path / "afile").write_text("")
    assert train.main(["--out", out.format(tmp=tmp_path), "--data", str(tmp_path / "no-data")]) == 2
    err = capsys.readouterr().err
    assert message in err and "dataset" not in err


@pytest.mark.parametrize("argv,message", [
    (["--threads", "1000"], "threads must be from 1 to 256"),
    (["--seed", "18446744073709551616"], "seed must be from 0 to 4294967295"),
])
def test_bounds_of_threads_and_seed(tmp_path: Path, capsys, argv, message) -> None:
    assert train.main(argv + ["--out", str(tmp_path / "r"), "--data", str(tmp_path / "no-data")]) == 2
    assert message in capsys.readouterr().err


def test_a_checkpoint_is_replaced_whole_or_not_at_all(tmp_path: Path, monkeypatch) -> None:
    """A save cut short (a kill, a full disk) leaves the checkpoint before it."""
    path = tmp_path / "ckpt.pt"
    checkpoints.save_atomic({"iter_num": 1}, path)

    def cut_short(obj, target) -> None:
        Path(target).write_bytes(b"PK\x03\x04 the first bytes of a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", cut_short)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_atomic({"iter_num": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"iter_num": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_a_checkpoint_that_cannot_be_written_is_a_write_error_not_a_traceback(tmp_path: Path, monkeypatch) -> None:
    """torch.save on a full disk raises RuntimeError ("unexpected pos ..."), which the
    command took for a bug: a traceback."""
    from emolive.files import WriteError

    path = tmp_path / "ckpt.pt"
    checkpoints.save_atomic({"iter_num": 1}, path)

    def disk_full(obj, target) -> None:
        Path(target).write_bytes(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 358464 vs 358352")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(WriteError, match=r"could not write .*ckpt.pt.*unexpected pos.*the disk may be full"):
        checkpoints.save_atomic({"iter_num": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"iter_num": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_a_resumed_run_drops_the_records_of_checkpoints_never_saved(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps({"step": s, "val": {}}) + "\n" for s in (5, 10, 15)))
    assert checkpoints.drop_records_after(log, 10) == 1
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [5, 10]
    assert checkpoints.drop_records_after(log, 10) == 0 and checkpoints.drop_records_after(tmp_path / "none", 1) == 0


@pytest.mark.parametrize("sig,status,said", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM"),
                                              (signal.SIGHUP, 129, "SIGHUP"), (signal.SIGUSR1, 138, "SIGUSR1")])
def test_a_stop_signal_saves_the_step_and_the_run_resumes(labelled_folder, tmp_path: Path, sig: int,
                                                          status: int, said: str) -> None:
    """SIGINT (Ctrl-C), SIGTERM (a job scheduler's stop) or SIGHUP (a closed terminal) stops
    after a whole step with ckpt.pt saved (exit 128 + the signal, no traceback); a second command
    goes on from that step. SIGTERM and SIGHUP used to end the run at once, losing the steps
    since the last checkpoint; SIGUSR1 (Slurm's warning of a job's end) killed it so."""
    folder, csv_path = labelled_folder
    argv = tiny_args(folder, csv_path, tmp_path, 100_000) + ["--eval-every", "100000"]
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "emolive.training.train", *argv],
                                stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    while not re.search(r"\| *[1-9][0-9]*/100000", log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)  # tqdm's bar shows a step taken
    proc.send_signal(sig)
    proc.wait(timeout=60)
    err = log.read_text()
    assert proc.returncode == status, err[-2000:]
    assert f"stopped by {said} at step" in err and "Traceback" not in err
    ckpt = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)
    stopped = ckpt["iter_num"]
    assert stopped >= 1 and f"at step {stopped}," in err
    assert train.main(tiny_args(folder, csv_path, tmp_path, stopped + 2) + [
        "--eval-every", "100000", "--resume", "true"]) == 0
    assert torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)["iter_num"] == stopped + 2


NOHUP_RUN = """
import os, signal, time
from emolive.training.checkpoints import StopOnInterrupt

signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as `nohup python -m emolive.training.train ...` starts
with StopOnInterrupt() as stop:
    os.kill(os.getpid(), signal.SIGHUP)  # the terminal closed
    time.sleep(0.05)
    print(stop.requested, signal.getsignal(signal.SIGHUP) is signal.SIG_IGN)
    os.kill(os.getpid(), signal.SIGUSR2)
    time.sleep(0.05)
    print(stop.requested, stop.exit_status)
"""


def test_a_nohup_run_goes_on_when_its_terminal_closes() -> None:
    """A closed terminal stopped a training started under nohup: the stop handler replaced the
    SIGHUP that nohup had set ignored."""
    result = subprocess.run([sys.executable, "-c", NOHUP_RUN], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", str(128 + signal.SIGUSR2)]


def test_a_diverging_run_stops_and_keeps_its_last_finite_checkpoint(labelled_folder, tmp_path: Path,
                                                                     capsys) -> None:
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 60) + ["--lr", "1e30"]) == 1
    err = capsys.readouterr().err
    assert "loss is not finite at step" in err and "diverged" in err and "--lr" in err
    run = tmp_path / "run"
    if (run / "ckpt.pt").exists():  # kept from before the divergence: finite weights
        ckpt = torch.load(run / "ckpt.pt", weights_only=False)
        assert f"keeps step {ckpt['iter_num']}" in err
        assert all(torch.isfinite(w).all() for w in ckpt["model"].values() if w.is_floating_point())
    else:
        assert "no checkpoint was saved" in err
    for line in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in metrics.jsonl"))


def test_a_csv_that_puts_every_clip_in_train_says_there_are_no_val_clips(labelled_folder, tmp_path: Path,
                                                                         capsys) -> None:
    """It said "no val segments with at least 4 onsets", blaming the notes (helper-57)."""
    folder, csv_path = labelled_folder
    csv_path.write_text(csv_path.read_text().replace(",val", ",train"))
    assert train.main(tiny_args(folder, csv_path, tmp_path, 5)) == 2
    err = capsys.readouterr().err
    assert "no val clips: every clip is in the other split" in err and "onsets" not in err, err


def test_a_run_without_segments_leaves_no_folder(labelled_folder, tmp_path: Path, capsys) -> None:
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 5) + ["--min-onsets", "100000"]) == 2
    assert "segments with at least 100000 onsets" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_run_that_ended_before_its_first_checkpoint_leaves_the_folder_for_a_new_one(
        labelled_folder, tmp_path: Path, capsys) -> None:
    """A run that diverged at once left config.json and an empty metrics.jsonl: a new run was
    refused ("already holds a run") and so was --resume ("no ckpt.pt")."""
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 60) + ["--lr", "1e30", "--eval-every", "100000"]) == 1
    run = tmp_path / "run"
    if (run / "ckpt.pt").exists():
        pytest.skip("this lr did not diverge before the first checkpoint here")
    assert (run / "metrics.jsonl").stat().st_size == 0
    capsys.readouterr()
    assert train.main(tiny_args(folder, csv_path, tmp_path, 2)) == 0
    assert torch.load(run / "ckpt.pt", weights_only=False)["iter_num"] == 2


def test_metrics_of_a_run_without_a_checkpoint_are_named_not_taken_for_a_run(labelled_folder, tmp_path: Path,
                                                                              capsys) -> None:
    folder, csv_path = labelled_folder
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 10}\n')
    assert train.main(tiny_args(folder, csv_path, tmp_path, 2)) == 2
    err = capsys.readouterr().err
    assert "saved no checkpoint" in err and "metrics.jsonl" in err


@pytest.mark.parametrize("flags,message", [(["--lr", "1e300"], "lr must be at most 1e+30"),
                                           (["--batch-size", "1000000"], "batch_size must be at most 4096"),
                                           (["--segment-bars", "1000"], "segment_bars must be at most 64")])
def test_values_beyond_any_use_are_refused_before_the_data(tmp_path: Path, capsys, flags, message) -> None:
    """They failed with a traceback after the data loaded (the optimiser could not hold lr 1e300;
    a million-segment batch asked for 31 GiB), or ran 600 times slower."""
    argv = ["--datasets", "--generic-folder", str(tmp_path / "none"), "--generic-csv", str(tmp_path / "none.csv"),
            "--out", str(tmp_path / "run"), *flags]
    assert train.main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_out_folder_that_cannot_be_written_is_refused_before_the_data(tmp_path: Path, capsys) -> None:
    """A PermissionError traceback after all the data was read (minutes on POP909)."""
    argv = ["--datasets", "--generic-folder", str(tmp_path / "none"), "--generic-csv", str(tmp_path / "none.csv"),
            "--out", "/proc/emolive-run"]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot write into /proc" in err and "Traceback" not in err


def test_a_metrics_line_a_kill_cut_short_is_dropped_on_resume(labelled_folder, tmp_path: Path) -> None:
    folder, csv_path = labelled_folder
    argv = tiny_args(folder, csv_path, tmp_path, 4) + ["--eval-every", "2"]
    assert train.main(argv) == 0
    metrics = tmp_path / "run" / "metrics.jsonl"
    whole = metrics.read_text()
    metrics.write_text(whole[: len(whole) - 10])  # the last record cut off
    assert train.main(tiny_args(folder, csv_path, tmp_path, 6) + ["--eval-every", "2", "--resume", "true"]) == 0
    records = [json.loads(line) for line in metrics.read_text().splitlines()]  # every line whole
    assert records[-1]["step"] == 6


def test_a_second_run_into_a_folder_being_trained_in_is_refused(labelled_folder, tmp_path: Path,
                                                                 capsys) -> None:
    """Two runs started at once on one new --out both trained into it: metrics interleaved, the
    config of one beside the checkpoints of the other (helper-84). The folder is held here as
    a run holds it (flock on the folder); the second run is refused and writes nothing."""
    import fcntl
    import os

    folder, csv_path = labelled_folder
    run = tmp_path / "run"
    run.mkdir()
    holder = os.open(run, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert train.main(tiny_args(folder, csv_path, tmp_path, 2)) == 2
        assert f"another run is training in {run} now" in capsys.readouterr().err
        assert list(run.iterdir()) == []
    finally:
        os.close(holder)
    assert train.main(tiny_args(folder, csv_path, tmp_path, 2)) == 0  # released: it trains


def test_a_checkpoint_a_killed_run_was_writing_is_removed_when_the_run_goes_on(labelled_folder,
                                                                               tmp_path: Path) -> None:
    """SIGKILL during a save left `.emolive-XXXX/ckpt.pt` in the run folder for good, one
    checkpoint's worth of hidden disk per kill (helper-84)."""
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 2)) == 0
    staging = tmp_path / "run" / ".emolive-checkpoint-k1ll3d"
    staging.mkdir()
    (staging / "ckpt.pt").write_bytes(b"half a checkpoint")
    others = tmp_path / "run" / ".emolive-a1b2c3"  # another program's write into the folder meanwhile
    others.mkdir()
    assert train.main(tiny_args(folder, csv_path, tmp_path, 4) + ["--resume", "true"]) == 0
    assert not staging.exists() and others.is_dir()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".emolive-a1b2c3", "best.pt", "ckpt.pt",
                                                                    "config.json", "metrics.jsonl"]


SIGTERM_WHILE_CACHING = """
import os, signal, sys
import numpy as np
from emolive.cli import main

write = np.savez_compressed

def signalled_while_writing(*args, **kwargs):
    write(*args, **kwargs)  # the file is on the disk, not yet renamed: the signal comes now
    os.kill(os.getpid(), signal.SIGTERM)

np.savez_compressed = signalled_while_writing
sys.exit(main(["train", *sys.argv[1:]]))
"""


def test_sigterm_while_the_feature_cache_is_written_leaves_no_file(labelled_folder, tmp_path: Path) -> None:
    """A stop signal before the first step (the data loading) left `rolls-KEY.RAND.tmp.npz` in
    the cache folder for good (helper-84): it ends the run as Ctrl-C does, nothing left."""
    folder, csv_path = labelled_folder
    result = subprocess.run([sys.executable, "-c", SIGTERM_WHILE_CACHING, *tiny_args(folder, csv_path, tmp_path, 2)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert "stopped by SIGTERM" in result.stderr and "Traceback" not in result.stderr
    assert list((tmp_path / "cache").iterdir()) == []  # no partial cache, no staging folder
    assert not (tmp_path / "run").exists()


def _hold(folder: Path) -> int:
    """An exclusive flock on ``folder``, as a training run holds its folder; close it to let go."""
    import fcntl
    import os

    holder = os.open(folder, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return holder


def test_a_resume_waits_for_no_run_and_reads_no_checkpoint_while_one_trains(labelled_folder, tmp_path: Path,
                                                                              capsys) -> None:
    """A resume read the checkpoint before the lock, then loaded the data: a run still saving
    its last steps meanwhile was gone on from a step before them, and its later metrics were
    dropped (helper-87). The lock comes first; the resume is refused before the data."""
    import os

    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 2)) == 0
    holder = _hold(tmp_path / "run")
    try:
        missing = tmp_path / "moved.csv"  # read, the data would fail: the refusal comes first
        argv = tiny_args(folder, missing, tmp_path, 4) + ["--resume", "true"]
        assert train.main(argv) == 2
        err = capsys.readouterr().err
        assert "another run is training in" in err and "moved.csv" not in err, err
    finally:
        os.close(holder)


def test_a_refused_lock_check_lets_the_folder_go(tmp_path: Path) -> None:
    """A check that failed under the lock kept it (``__exit__`` never ran): the same program's
    next run into the folder was refused for good (helper-87)."""
    import os

    run = tmp_path / "run"
    run.mkdir()
    (run / "ckpt.pt").write_bytes(b"a run")
    with pytest.raises(train.DataError, match="already holds a run"):
        with checkpoints.RunFolderLock(run, resume=False):
            pass
    os.close(_hold(run))  # free again


def test_a_file_system_without_folder_locks_trains_unlocked_and_says_so(tmp_path: Path, monkeypatch) -> None:
    import errno
    import fcntl

    def refused(*_args) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refused)  # NFS may refuse a lock on a folder
    said = []
    with checkpoints.RunFolderLock(tmp_path, resume=False, log=said.append) as lock:
        assert lock.descriptor is None
    assert said == [f"{tmp_path} cannot be locked (No locks available); do not start a second run into it"]


def _no_file_may_grow() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_a_config_that_cannot_be_written_keeps_the_one_there(labelled_folder, tmp_path: Path) -> None:
    """`python -m emolive.training.train` on a full disk ended in a traceback, and its
    config.json, rewritten in place, was left empty (helper-84): the message names the file and
    the run's files stay as they were."""
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 2)) == 0
    run = tmp_path / "run"
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    result = subprocess.run([sys.executable, "-m", "emolive.training.train", "--out", str(run), "--resume", "true",
                             "--max-steps", "4", "--cache-dir", str(tmp_path / "cache")],
                            capture_output=True, text=True, timeout=300, preexec_fn=_no_file_may_grow)
    assert result.returncode == 1, result.stderr
    assert f"could not write {str(run / 'config.json')!r}: File too large" in result.stderr
    assert "Traceback" not in result.stderr
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before


def test_a_resume_may_find_a_generic_folder_moved(labelled_folder, tmp_path: Path) -> None:
    import shutil

    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 2)) == 0
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)
    shutil.copy(csv_path, moved / "labels.csv")
    assert train.main(tiny_args(moved, moved / "labels.csv", tmp_path, 4) + ["--resume", "true"]) == 0


def test_a_run_given_relative_paths_resumes_from_another_folder(labelled_folder, tmp_path: Path,
                                                                monkeypatch) -> None:
    """It said "CSV data/labels.csv not found": the run's relative paths were read from wherever
    the resume ran. They are the run's command's folder's; the card keeps them as written."""
    folder, csv_path = labelled_folder
    monkeypatch.chdir(folder.parent)
    relative = [str(Path(p).relative_to(folder.parent)) if p.startswith(str(folder.parent)) else p
                for p in tiny_args(folder, csv_path, tmp_path, 2)]
    assert train.main(relative) == 0
    assert _config(tmp_path / "run")["generic_csv"] == str(csv_path.relative_to(folder.parent))
    monkeypatch.chdir(tmp_path / "run")
    assert train.main(["--out", str(tmp_path / "run"), "--resume", "true", "--max-steps", "4"]) == 0
    assert torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)["iter_num"] == 4
    assert not (tmp_path / "run" / "cache").exists()  # the run's own cache, found again
    assert _config(tmp_path / "run")["generic_csv"] == "../labels.csv"  # relative: no absolute path in a card


def test_a_moved_project_resumes_on_its_own_data(labelled_folder, tmp_path: Path, monkeypatch) -> None:
    """With the run's folder recorded, a project moved elsewhere read the old place's data (or
    none: "CSV /old/place/labels.csv not found"); paths found from here come first."""
    import shutil

    folder, csv_path = labelled_folder
    project = tmp_path / "project"
    project.mkdir()
    shutil.move(folder, project / "mine")
    shutil.move(csv_path, project / "labels.csv")
    monkeypatch.chdir(project)
    args = ["--datasets", "--generic-folder", "mine", "--generic-csv", "labels.csv", "--cache-dir", "cache",
            "--out", "run", "--max-steps", "2", *TINY]
    assert train.main(args) == 0
    moved = tmp_path / "moved"
    shutil.move(project, moved)
    monkeypatch.chdir(moved)
    assert train.main(["--out", "run", "--resume", "true", "--max-steps", "4"]) == 0
    config = _config(moved / "run")
    assert (config["generic_csv"], config["generic_folder"], config["cache_dir"]) == ("labels.csv", "mine", "cache")


@pytest.mark.parametrize("change", ["relabel", "add"])
def test_a_resume_refuses_data_that_changed(labelled_folder, tmp_path: Path, capsys, change: str) -> None:
    """It went on silently with whatever --data held now: other songs, other labels."""
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 2)) == 0
    config_before = (tmp_path / "run" / "config.json").read_text()
    rows = csv_path.read_text().splitlines()
    if change == "relabel":  # song0 happy -> sad
        rows[1] = rows[1].replace("happy", "sad")
    else:  # one more song, a copy of song1 under a new name
        (folder / "song8.mid").write_bytes((folder / "song1.mid").read_bytes())
        rows.append(rows[2].replace("song1.mid", "song8.mid").replace(",s1,", ",s8,"))
    csv_path.write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    assert train.main(tiny_args(folder, csv_path, tmp_path, 4) + ["--resume", "true"]) == 2
    err = capsys.readouterr().err
    assert "the data is not what" in err and "Traceback" not in err
    assert "point --generic-folder/--generic-csv at the run's data" in err  # not --data: none is read
    assert (tmp_path / "run" / "config.json").read_text() == config_before
    assert torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)["iter_num"] == 2


def test_resuming_to_a_step_already_reached_is_said_before_the_data(labelled_folder, tmp_path: Path, capsys) -> None:
    """It read all the data, trained nothing, exited 0 and rewrote config.json with the smaller
    max_steps, which no longer matched the checkpoint."""
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 4)) == 0
    config_before = (tmp_path / "run" / "config.json").read_text()
    capsys.readouterr()
    assert train.main(tiny_args(folder, csv_path, tmp_path, 3) + ["--resume", "true"]) == 2
    assert "at step 4 already" in capsys.readouterr().err
    assert (tmp_path / "run" / "config.json").read_text() == config_before


def test_a_run_stopped_and_resumed_ends_as_the_run_left_alone(labelled_folder, tmp_path: Path,
                                                              monkeypatch) -> None:
    """Ctrl-C at step 10 of 20, then --resume true: the same weights and metrics as 20 steps
    without a stop. The resumed run drew its batches from seed + step and torch's stream from
    the seed (the latent noise), so its weights went their own way from the first step after."""
    import os

    folder, csv_path = labelled_folder
    evaluate_losses = train.evaluate_losses

    def stop_at_step_10(*args, **kwargs):
        if args[-1] == 10:  # step: Ctrl-C arrives while step 10 is evaluated
            os.kill(os.getpid(), signal.SIGINT)
        return evaluate_losses(*args, **kwargs)

    assert train.main(tiny_args(folder, csv_path, tmp_path / "alone", 20)) == 0
    monkeypatch.setattr(train, "evaluate_losses", stop_at_step_10)
    assert train.main(tiny_args(folder, csv_path, tmp_path / "stopped", 20)) == 130
    monkeypatch.setattr(train, "evaluate_losses", evaluate_losses)
    assert train.main(tiny_args(folder, csv_path, tmp_path / "stopped", 20) + ["--resume", "true"]) == 0

    alone, resumed = (torch.load(tmp_path / run / "run" / "ckpt.pt", weights_only=False)
                      for run in ("alone", "stopped"))
    assert resumed["resumed_at"] == [10] and alone["resumed_at"] == []
    for name, tensor in alone["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name

    def records(run: str) -> list[dict]:
        lines = (tmp_path / run / "run" / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in lines]

    assert records("stopped") == records("alone")


def test_a_checkpoint_without_random_state_resumes_and_says_so(labelled_folder, tmp_path: Path, capsys) -> None:
    """Checkpoints saved before 2026-12-07 hold no random streams: the run goes on, saying that
    it is from then on a run of its own."""
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 5)) == 0
    ckpt = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)
    del ckpt["rng"], ckpt["resumed_at"]
    torch.save(ckpt, tmp_path / "run" / "ckpt.pt")
    capsys.readouterr()
    assert train.main(tiny_args(folder, csv_path, tmp_path, 10) + ["--resume", "true"]) == 0
    assert "holds no random state" in capsys.readouterr().err
    assert torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)["resumed_at"] == [5]
