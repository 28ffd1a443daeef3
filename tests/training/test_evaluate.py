"""The evaluation command on a tiny model and tiny data: report, figures, card update."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from emolive.training import evaluate
from emolive.training.metrics import active_units, onset_f1_interval, onset_prf_per_bar, overlap_area, swap_response
from emolive.training.onnx_runner import OnnxCVAE, Sampling

pytestmark = pytest.mark.training


def test_onset_prf_per_bar_counts_exact_matches() -> None:
    true = np.zeros((1, 32, 88), dtype=bool)
    true[0, 0, 40] = true[0, 4, 44] = true[0, 20, 50] = True
    pred = true.copy()
    pred[0, 4, 44] = False
    pred[0, 5, 44] = True  # one step late: wrong
    m = onset_prf_per_bar(pred, true)
    # bar 1: 1 of 2 right (P = R = F1 = 0.5); bar 2: perfect.
    assert m["precision"] == pytest.approx(0.75) and m["f1"] == pytest.approx(0.75)
    assert m["bars"] == 2
    assert m["f1_pooled"] == pytest.approx(2 / 3)  # 2 of 3 onsets right on either side


def test_onset_prf_tolerance_accepts_near_misses_only_within_it() -> None:
    true = np.zeros((1, 16, 88), dtype=bool)
    true[0, 4, 44] = true[0, 10, 50] = True
    pred = np.zeros_like(true)
    pred[0, 5, 44] = True  # one step late
    pred[0, 12, 50] = True  # two steps late
    assert onset_prf_per_bar(pred, true)["f1"] == 0.0
    one = onset_prf_per_bar(pred, true, tolerance=1)
    assert one["precision"] == pytest.approx(0.5) and one["recall"] == pytest.approx(0.5)
    assert one["f1"] == pytest.approx(0.5)
    assert onset_prf_per_bar(pred, true, tolerance=2)["f1"] == pytest.approx(1.0)
    other_key = np.zeros_like(true)
    other_key[0, 4, 45] = True  # right step, wrong key: never a hit
    assert onset_prf_per_bar(other_key, true, tolerance=2)["f1"] == 0.0


def test_onset_prf_tolerance_matches_onsets_one_to_one() -> None:
    """One predicted onset between two true ones of its key finds one of them, not both (as
    mir_eval matches; it scored 1.0, helper-92), and a match across a bar line counts in each
    onset's own bar."""
    true = np.zeros((1, 32, 88), dtype=bool)
    pred = np.zeros_like(true)
    true[0, 4, 0] = true[0, 6, 0] = True
    pred[0, 5, 0] = True
    one = onset_prf_per_bar(pred, true, tolerance=1)
    assert one["precision"] == pytest.approx(1.0) and one["recall"] == pytest.approx(0.5)
    assert one["f1"] == pytest.approx(2 / 3)
    across = np.zeros_like(true)
    across[0, 15, 9] = True  # the last step of bar 1
    late = np.zeros_like(true)
    late[0, 16, 9] = True  # the first of bar 2
    bars = onset_prf_per_bar(late, across, tolerance=1)
    assert bars["bars"] == 2 and bars["precision"] == pytest.approx(0.5) and bars["recall"] == pytest.approx(0.5)


def test_the_f1_interval_draws_whole_clips_and_holds_the_point_estimate() -> None:
    """The report said "met by 0.004" of 0.85 from one number; over 111 validation clips the
    bootstrap interval is about +-0.02 (helper-81). Clips, not segments, are drawn: a clip's
    segments are no independent draws."""
    rng = np.random.default_rng(0)
    true = rng.random((40, 32, 88)) < 0.02
    pred = true & (rng.random(true.shape) < 0.8) | (rng.random(true.shape) < 0.004)
    clips = np.repeat(np.arange(10), 4)
    low, high = onset_f1_interval(pred, true, clips, rounds=500)
    point = onset_prf_per_bar(pred, true)["f1"]
    assert low < point < high and high - low < 0.2
    same = onset_f1_interval(pred, true, np.zeros(40, dtype=int), rounds=50)  # one clip: nothing to draw
    assert same[0] == pytest.approx(point) and same[1] == pytest.approx(point)
    perfect = onset_f1_interval(true, true, clips, rounds=50)
    assert perfect == [pytest.approx(1.0), pytest.approx(1.0)]


def test_the_report_judges_a_target_inside_the_interval_met_by_the_point_estimate_only() -> None:
    from emolive.training.report_text import _f1_against_target

    assert _f1_against_target("teacher-forced", 0.854, [0.836, 0.871]) == (
        "teacher-forced 0.854 (95% interval 0.836-0.871; met by the point estimate only)")
    assert _f1_against_target("x", 0.9, [0.86, 0.93]).endswith("; met)")
    assert _f1_against_target("x", 0.726, [0.70, 0.75]).endswith("; **missed**)")
    assert _f1_against_target("x", 0.86, None) == "x 0.860 (met)"  # a report from before


def test_active_units_and_overlap() -> None:
    mu = np.zeros((100, 3))
    mu[:, 0] = np.linspace(-1, 1, 100)
    assert active_units(mu).tolist() == [True, False, False]
    rng = np.random.default_rng(0)
    a = rng.normal(size=2000)
    assert overlap_area(a, a) == pytest.approx(1.0)
    assert overlap_area(a, a + 100) == pytest.approx(0.0)


def test_overlap_area_of_identical_constants_and_of_a_repeated_sample_is_one() -> None:
    """The histograms are compared as shares: a sample repeated twice is the same distribution."""
    assert overlap_area(np.full(5, 3.0), np.full(5, 3.0)) == 1.0  # no range to bin: identical
    a = np.array([0.0, 1.0, 2.0, 3.0])
    assert overlap_area(np.repeat(a, 2), a) == pytest.approx(1.0)
    assert overlap_area(a, np.repeat(a, 2)) == pytest.approx(1.0)


def test_onset_tolerance_matches_a_prediction_exactly_k_steps_early() -> None:
    true = np.zeros((1, 16, 88), dtype=bool)
    true[0, 5, 44] = True
    pred = np.zeros_like(true)
    pred[0, 3, 44] = True  # 2 steps early: inside a tolerance of 2
    m = onset_prf_per_bar(pred, true, tolerance=2)
    assert (m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0)


def test_onsets_in_the_part_bar_at_the_end_match_nothing() -> None:
    """The part bar after the last whole one is left out, its onsets too: a prediction there
    must not be matched with a true onset at the end of the last whole bar."""
    true = np.zeros((1, 20, 88), dtype=bool)  # one whole bar (16 steps) and 4 steps
    true[0, 15, 44] = True
    pred = np.zeros_like(true)
    pred[0, 17, 44] = True  # 2 steps after the true onset, in the part bar
    m = onset_prf_per_bar(pred, true, tolerance=2)
    assert m["bars"] == 1
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)


def _two_songs_one_right_one_wrong(bars: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment 0 (song "a") predicted right in every bar (F1 1), segment 1 (song "b") wrong
    in every bar (F1 0)."""
    true = np.zeros((2, 16 * bars, 88), dtype=bool)
    pred = np.zeros_like(true)
    for bar in range(bars):
        true[:, 16 * bar, 40] = True
        pred[0, 16 * bar, 40] = True
        pred[1, 16 * bar, 41] = True
    return pred, true


def test_the_f1_interval_groups_each_segments_bars_under_its_song() -> None:
    # Drawing the two songs twice gives mean F1 0 (a, a: 1/4), 1/2 (1/2) or 1 (1/4): the 95 %
    # interval is [0, 1]. Had bars been given to songs in turn, every draw would be 1/2.
    pred, true = _two_songs_one_right_one_wrong(bars=2)
    assert onset_f1_interval(pred, true, np.array(["a", "b"]), rounds=400) == [0.0, 1.0]


def test_the_f1_interval_is_the_central_share_level_of_the_draws() -> None:
    # Means 0 (1/4 of the draws), 1/2 (1/2), 1 (1/4): the central 20 % (quantiles 0.4..0.6) are
    # all 1/2; the central 95 % reach 0 and 1.
    pred, true = _two_songs_one_right_one_wrong(bars=1)
    songs = np.array(["a", "b"])
    assert onset_f1_interval(pred, true, songs, rounds=2000, level=0.2) == [0.5, 0.5]
    assert onset_f1_interval(pred, true, songs, rounds=2000, level=0.95) == [0.0, 1.0]


def test_group_bootstrap_means_weigh_each_row_not_each_group() -> None:
    from emolive.training.metrics import group_bootstrap_means

    # Song a: 2 rows of 1; song b: 1 row of 0. Two songs drawn: a+a = 4/4 = 1, a+b = 2/3,
    # b+b = 0/2 = 0 (the mean of the drawn rows, not of the songs' means).
    means = group_bootstrap_means(np.array([1.0, 1.0, 0.0]), np.array(["a", "a", "b"]), 400,
                                  np.random.default_rng(0))
    assert sorted({round(float(m), 9) for m in means}) == [0.0, round(2 / 3, 9), 1.0]


def _roll(steps: int = 4, n: int = 1) -> np.ndarray:
    return np.zeros((n, steps, 3 * 88), dtype=np.float32)  # onset, hold, velocity blocks


def test_musical_stats_range_and_polyphony() -> None:
    from emolive.training.metrics import musical_stats

    roll = _roll(steps=4)
    c4, e4 = 60 - 21, 64 - 21  # key 0 is A0 (MIDI 21)
    roll[0, 0, 88 + c4] = roll[0, 0, 88 + e4] = 1.0  # both held at step 0 only
    stats = musical_stats(roll)
    assert stats["pitch_range"][0] == 4.0  # C4 to E4: 4 semitones
    assert stats["polyphony"][0] == 2.0  # 2 keys on the 1 step that sounds (not 2 / 4 steps)


def test_pitch_class_hist_counts_key_0_as_a() -> None:
    from emolive.training.metrics import pitch_class_hist

    roll = _roll(steps=2)
    roll[0, :, 88 + 60 - 21] = 1.0  # C4
    roll[0, 0, 88 + 0] = 1.0  # A0
    # 2 sounding steps of C (class 0) and 1 of A (class 9).
    expected = np.zeros(12)
    expected[0], expected[9] = 2 / 3, 1 / 3
    assert pitch_class_hist(roll)[0] == pytest.approx(expected)


def test_estimate_key_finds_c_minor_in_the_c_minor_profile() -> None:
    from emolive.training.metrics import estimate_key

    # Krumhansl-Kessler's minor profile from C (1982): it correlates perfectly with C minor.
    c_minor = np.array([[6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]])
    tonic, major = estimate_key(c_minor)
    assert (int(tonic[0]), bool(major[0])) == (0, False)


def test_diversity_of_two_disjoint_rolls_is_one() -> None:
    from emolive.training.metrics import diversity

    roll = _roll(steps=1, n=2)
    roll[0, 0, 10] = roll[1, 0, 20] = 1.0  # one onset each, on different keys
    figures = diversity(roll)
    # Pairs of a roll with itself are not pairs: each pair shares nothing, distance 1.
    assert figures == {"distinct_fraction": 1.0, "mean_jaccard_distance": 1.0}


def test_a_unit_is_active_above_the_threshold_only() -> None:
    mu = np.array([[-0.5], [0.5]])  # variance 0.25 exactly
    assert active_units(mu, threshold=0.25).tolist() == [False]  # Burda et al.: Var > threshold
    assert active_units(mu, threshold=0.24).tolist() == [True]


def test_kl_per_dim_by_hand() -> None:
    from emolive.training.metrics import kl_per_dim

    # 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2) with mu = 0, sigma^2 = 2.
    kl = kl_per_dim(np.zeros((3, 1)), np.full((3, 1), np.log(2.0)))
    assert kl[0] == pytest.approx(0.5 * (2.0 - 1.0 - np.log(2.0)))


def test_evaluate_writes_report_and_updates_card(tiny_model_dir: Path, labelled_folder,
                                                 tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    folder, csv_path = labelled_folder
    report = tmp_path / "report"
    report.mkdir()
    (report / "discussion.md").write_text("## What we learned\n\nA tiny test model.\n")
    argv = ["--model", str(model), "--datasets", "--generic-folder", str(folder),
            "--generic-csv", str(csv_path), "--cache-dir", str(tmp_path / "cache"),
            "--report", str(report), "--samples", "4", "--temperature-latents", "8",
            "--val-segments", "8", "--classifier-segments", "16", "--classifier-steps", "3",
            "--held-out-steps", "2", "--min-onsets", "1", "--update-card"]
    assert evaluate.main(argv) == 0
    text = (report / "README.md").read_text()
    assert "## Reconstruction" in text and "A tiny test model." in text
    for png in ("kl_per_dim.png", "statistics.png", "emotion.png", "samples/listening_rolls.png"):
        assert (report / png).stat().st_size > 1000
    for name in ("happy", "tense", "sad", "calm", "morph_sad_to_happy"):
        assert (report / "samples" / f"{name}.mid").is_file()
    if shutil.which("fluidsynth"):
        assert (report / "samples" / "happy.wav").stat().st_size > 10000
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["reconstruction"]["latent_dims"] == 16
    interval = metrics["reconstruction"]["f1_interval"]
    assert interval["level"] == 0.95 and interval["songs"] >= 1  # drawn by song: clips of a song are alike
    assert "validation songs, the songs drawn" in text
    assert interval["teacher_forced"][0] <= interval["teacher_forced"][1]
    assert "95% interval" in text
    assert "closest to the real training density" in metrics["sampling"]["why"]  # not validation's
    assert len(metrics["sampling"]["real_training_density"]) == 4  # the density it was fitted to
    assert 0.0 <= metrics["reconstruction"]["teacher_forced"]["0.3"]["f1_pooled"] <= 1.0
    card = json.loads((model / "model_card.json").read_text())
    assert card["sampling"]["temperature"] == metrics["sampling"]["temperature"]
    assert card["evaluation"]["report"] == f"{report.as_posix()}/README.md"  # where this report is
    settings = {"seed": 0, "samples": 4, "temperature_latents": 8, "val_segments": 8,
                "classifier_segments": 16, "classifier_steps": 3, "held_out_folds": 4,
                "held_out_steps": 2}  # what made these figures
    assert metrics["settings"] == settings and card["evaluation"]["settings"] == settings
    assert "`--seed 0 --samples 4 --temperature-latents 8 --val-segments 8" in text
    held = metrics["emotion"]["held_out"]  # listeners that never heard the training songs
    assert held.get("skipped") or ("by these listeners" in text and held["folds"] >= 2 and
                                   card["evaluation"]["held_out_listeners"]["folds"] == held["folds"])
    (report / "discussion.md").write_text("## Revised\n")
    assert evaluate.main(["--report", str(report), "--rewrite-readme"]) == 0
    assert "## Revised" in (report / "README.md").read_text()
    for name in card["files"].values():  # the ONNX metadata carries the same card
        props = {p.key: p.value for p in onnx.load(str(model / name)).metadata_props}
        assert json.loads(props["model_card"]) == card


def test_training_curves_pass_over_a_metrics_line_cut_short(tmp_path: Path) -> None:
    """`evaluate --run` on a run whose last metrics line a kill cut short failed after all its
    work with "Expecting ',' delimiter", naming no file (helper-84); train and export pass
    over such a line, and so does the report's curves."""
    from emolive.training.report import _training_curves

    run = tmp_path / "run"
    run.mkdir()
    records = [{"step": step, "train": {"recon": 1.0 / step, "kl": 2.0}, "val": {"recon": 1.1 / step, "kl": 2.1}}
               for step in (1, 2, 3)]
    text = "".join(json.dumps(record) + "\n" for record in records)
    (run / "metrics.jsonl").write_text(text + text[:40])  # a fourth record cut short
    (run / "config.json").write_text(json.dumps({"adv_weight": 0.0, "critic_weight": 0.0}))
    _training_curves(run, tmp_path)
    assert (tmp_path / "training_curves.png").stat().st_size > 1000


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_stop_signal_ends_the_evaluation_as_ctrl_c_does(tiny_model_dir: Path, labelled_folder,
                                                          tmp_path: Path, name: str) -> None:
    """SIGTERM and SIGHUP killed `evaluate` outright (exit 143 with no word), leaving its staging
    folder, the report folder it had made and, in a render, FluidSynth (helper-84). They end it
    as Ctrl-C does: status 128 + N, nothing left behind."""
    import signal
    import subprocess
    import sys

    folder, csv_path = labelled_folder
    report = tmp_path / "report"
    there = {p.name for p in tmp_path.iterdir()}  # the labelled data
    process = subprocess.Popen(
        [sys.executable, "-m", "emolive.training.evaluate", "--model", str(tiny_model_dir), "--datasets",
         "--generic-folder", str(folder), "--generic-csv", str(csv_path), "--cache-dir", str(tmp_path / "cache"),
         "--report", str(report), "--samples", "4", "--temperature-latents", "8", "--val-segments", "8",
         "--classifier-segments", "16", "--classifier-steps", "1000000", "--min-onsets", "1"],
        stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:  # the classifier trains for far longer than the test waits
            if line.startswith("training the emotion classifier"):
                break
        process.send_signal(getattr(signal, name))
        err = process.communicate(timeout=60)[1]
    finally:
        process.kill()
    assert process.returncode == 128 + getattr(signal, name), err
    assert "Traceback" not in err
    assert {p.name for p in tmp_path.iterdir()} - there == {"cache"}  # no report folder, no staging


def test_a_report_that_cannot_be_written_whole_leaves_the_one_before(
        tiny_model_dir: Path, labelled_folder, tmp_path: Path, monkeypatch, capsys) -> None:
    """The report was written in place: a full disk part-way cut README.md mid-word, or left
    the new pictures beside the old README and metrics."""
    from emolive.training import report as report_module

    folder, csv_path = labelled_folder
    report = tmp_path / "report"
    argv = ["--model", str(tiny_model_dir), "--datasets", "--generic-folder", str(folder),
            "--generic-csv", str(csv_path), "--cache-dir", str(tmp_path / "cache"),
            "--report", str(report), "--samples", "4", "--temperature-latents", "8",
            "--val-segments", "8", "--classifier-segments", "16", "--classifier-steps", "3",
            "--held-out-steps", "2", "--min-onsets", "1", "--wav", "false"]
    assert evaluate.main(argv) == 0
    before = {path.relative_to(report): path.read_bytes() for path in report.rglob("*") if path.is_file()}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_module, "_listening", disk_full)  # after the figures are drawn
    assert evaluate.main(argv + ["--seed", "3"]) == 1
    assert "could not write into" in capsys.readouterr().err
    after = {path.relative_to(report): path.read_bytes() for path in report.rglob("*") if path.is_file()}
    assert after == before  # every file as it was, none added
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_evaluate_refuses_a_folder_without_a_model(tmp_path: Path, capsys) -> None:
    assert evaluate.main(["--model", str(tmp_path), "--report", str(tmp_path / "report")]) == 2
    assert "no model_card.json" in capsys.readouterr().err


def test_evaluate_needs_a_report_folder_and_a_named_model_to_update(tiny_model_dir: Path, tmp_path: Path,
                                                                    capsys, monkeypatch) -> None:
    """Without --report it wrote into ./docs/evaluation of wherever it ran (the project's own
    report, run from the repository); --update-card without --model rewrote the installed
    package's bundled model card."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        evaluate.main(["--model", str(tiny_model_dir)])
    assert exited.value.code == 2 and "--report" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        evaluate.main(["--report", str(tmp_path / "r"), "--update-card"])
    assert exited.value.code == 2 and "name the model with --model" in capsys.readouterr().err
    # An unset shell variable: "" was the bundled model, and a report into ./ replaced ./README.md.
    for argv, said in ((["--report", str(tmp_path / "r"), "--update-card", "--model", ""], "--model is empty"),
                       (["--model", str(tiny_model_dir), "--report", ""], "--report is empty")):
        with pytest.raises(SystemExit) as exited:
            evaluate.main(argv)
        assert exited.value.code == 2 and said in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_report_folder_that_is_a_link_to_nothing_is_named_so(tiny_model_dir: Path, tmp_path: Path,
                                                                capsys) -> None:
    """It said "cannot make the report folder dangling: File exists" (helper-57), also for a
    link to nothing above the folder (dangling/report)."""
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    code = evaluate.main(["--model", str(tiny_model_dir), "--report", str(tmp_path / "dangling")])
    err = capsys.readouterr().err
    assert code == 2 and "is a link to" in err and "which does not exist" in err, err
    code = evaluate.main(["--model", str(tiny_model_dir), "--report", str(tmp_path / "dangling" / "report")])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot be made: {tmp_path / 'dangling'} is a link to" in err, err
    assert not (tmp_path / "nowhere").exists()


def test_evaluate_refuses_a_model_the_engine_refuses(tmp_path: Path, capsys) -> None:
    pytest.importorskip("emolive.engine", reason="the engine is not built: only the card is checked")
    (tmp_path / "model_card.json").write_text("{}")
    assert evaluate.main(["--model", str(tmp_path), "--report", str(tmp_path / "report")]) == 2
    assert "model_card.json" in capsys.readouterr().err  # the runtime's reason, no traceback


def test_evaluate_says_first_where_its_report_goes(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    assert evaluate.main(["--model", str(tiny_model_dir), "--data", str(tmp_path / "no-data"),
                          "--cache-dir", str(tmp_path / "cache"), "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"the report replaces what is in {tmp_path / 'r'}/" in err
    assert "error:" in err  # no data there
    assert not (tmp_path / "r").exists()  # the report folder it made is not left behind, empty


@pytest.mark.parametrize("command", ["calibrate", "evaluate"])
@pytest.mark.parametrize("datasets,message", [
    (["bogus"], "unknown datasets ['bogus']; known: emopia, vgmidi"),  # was "folder not found"
    (["vgmidi"], "vgmidi_labelled.csv not found"),  # was a FileNotFoundError traceback
])
def test_calibrate_and_evaluate_name_what_is_wrong_with_the_datasets(
        tiny_model_dir: Path, tmp_path: Path, capsys, command: str, datasets: list[str],
        message: str) -> None:
    from emolive.training import calibrate

    for name in ("bogus", "vgmidi"):  # folders of those names, without their CSV
        (tmp_path / "data" / name).mkdir(parents=True)
    main = {"calibrate": calibrate.main, "evaluate": evaluate.main}[command]
    argv = ["--model", str(tiny_model_dir), "--data", str(tmp_path / "data"),
            "--cache-dir", str(tmp_path / "cache"), "--datasets", *datasets]
    argv += ["--out", str(tmp_path / "v.json")] if command == "calibrate" else ["--report", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("text", ["{bad", "{}", "[1]"])
def test_rewrite_readme_refuses_a_metrics_file_it_did_not_write(tmp_path: Path, capsys, text: str) -> None:
    (tmp_path / "metrics.json").write_text(text)
    assert evaluate.main(["--report", str(tmp_path), "--rewrite-readme"]) == 2
    err = capsys.readouterr().err
    assert "is not the metrics.json an evaluation writes" in err and "Traceback" not in err
    assert not (tmp_path / "README.md").exists()


def _evaluate_argv(model: Path, tmp_path: Path) -> list[str]:
    return ["--model", str(model), "--data", str(tmp_path / "no-data"),
            "--cache-dir", str(tmp_path / "cache"), "--report", str(tmp_path / "r")]


@pytest.mark.parametrize("extra,message", [
    (["--samples", "0"], "--samples must be at least 1, got 0"),  # ONNX Runtime aborted at batch 0
    (["--val-segments", "-3"], "--val-segments must be at least 1"),
    (["--classifier-steps", "many"], "must be a whole number at least 1"),
    (["--held-out-folds", "-1"], "--held-out-folds must be at least 0"),
    (["--held-out-folds", "1"], "--held-out-folds must be 0 (none) or at least 2, got 1"),
])
def test_evaluate_refuses_bad_counts(tiny_model_dir: Path, tmp_path: Path, capsys,
                                     extra: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(_evaluate_argv(tiny_model_dir, tmp_path) + extra)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (["--report", "{tmp}/a-file"], "is a file; give a folder"),
    (["--run", "{tmp}/no-run"], "is not a training run folder"),
    (["--generic-csv", "{tmp}/a-file"], "--generic-csv and --generic-folder go together"),
])
def test_evaluate_refuses_unusable_folders_before_any_work(tiny_model_dir: Path, tmp_path: Path, capsys,
                                                           extra: list[str], message: str) -> None:
    (tmp_path / "a-file").write_text("mine")
    argv = _evaluate_argv(tiny_model_dir, tmp_path) + [arg.format(tmp=tmp_path) for arg in extra]
    assert evaluate.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "evaluating" not in err  # refused before the evaluation started
    assert (tmp_path / "a-file").read_text() == "mine"


def test_calibrate_refuses_bad_settings_before_measuring(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    from emolive.training import calibrate

    argv = ["--model", str(tiny_model_dir), "--data", str(tmp_path / "no-data"),
            "--cache-dir", str(tmp_path / "cache")]
    with pytest.raises(SystemExit) as exit_info:  # ONNX Runtime's GRU aborted the process at batch 0
        calibrate.main(argv + ["--out", str(tmp_path / "v.json"), "--samples", "0"])
    assert exit_info.value.code == 2
    assert calibrate.main(argv + ["--out", str(tmp_path / "missing" / "v.json")]) == 2
    assert calibrate.main(argv + ["--out", str(tmp_path / "v.json"), "--generic-folder", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "must be at least 1" in err and "does not exist" in err and "EMOPIA" not in err
    assert "--generic-csv and --generic-folder go together" in err


@pytest.mark.parametrize("command", ["calibrate", "evaluate"])
def test_a_negative_seed_is_refused_before_any_work(tiny_model_dir: Path, tmp_path: Path, capsys,
                                                    command: str) -> None:
    from emolive.training import calibrate

    main = {"calibrate": calibrate.main, "evaluate": evaluate.main}[command]
    argv = _evaluate_argv(tiny_model_dir, tmp_path)
    if command == "calibrate":  # its --out in place of evaluate's --report
        argv = argv[:-2] + ["--out", str(tmp_path / "v.json")]
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ["--seed", "-1"])
    assert exit_info.value.code == 2
    assert f"emolive {command}: error: argument --seed: --seed must be from 0" in capsys.readouterr().err


def test_calibrate_refuses_a_model_already_calibrated(tiny_model_dir: Path, tmp_path: Path,
                                                      capsys) -> None:
    from emolive.training import calibrate
    from emolive.training.export import update_card

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    update_card(model, {"velocity_calibration": {"gain": [1.2] * 4, "bias": [0.0] * 4}})
    assert calibrate.main(["--model", str(model), "--out", str(tmp_path / "v.json"),
                           "--data", str(tmp_path / "no-data")]) == 2
    assert "is already calibrated" in capsys.readouterr().err
    assert not (tmp_path / "v.json").exists()
    # The map taken out of model_card.json by hand: the files' own card still has it (it measured
    # through the map and wrote gains near 1).
    card = json.loads((model / "model_card.json").read_text())
    del card["velocity_calibration"]
    (model / "model_card.json").write_text(json.dumps(card))
    assert calibrate.main(["--model", str(model), "--out", str(tmp_path / "v.json"),
                           "--data", str(tmp_path / "no-data")]) == 2
    assert "its decoder_step file holds a velocity calibration" in capsys.readouterr().err


def test_the_report_text_follows_the_models_segment_length_and_the_wavs_written() -> None:
    from emolive.training.report_text import markdown

    results = json.loads((Path(__file__).parents[2] / "docs" / "evaluation" / "metrics.json").read_text())
    shipped = markdown(results, "")
    assert "segments of 2 bars" in shipped and "8 bars each, a new prior latent every 2 bars" in shipped
    assert "WAVs: FluidSynth" in shipped
    results["segment_bars"] = 1
    results["listening"] = {name: {"midi": files["midi"]} for name, files in results["listening"].items()}
    one_bar = markdown(results, "")
    assert "segments of 1 bar," in one_bar and "listens to 1-bar segments" in one_bar
    assert "4 bars each, a new prior latent every 1 bar" in one_bar
    assert "WAVs: FluidSynth" not in one_bar and "No WAVs" in one_bar


def test_calibrate_measures_against_ones_own_labelled_folder(tiny_model_dir: Path, labelled_folder,
                                                             tmp_path: Path) -> None:
    from emolive.training import calibrate

    folder, csv_path = labelled_folder
    out = tmp_path / "velocity.json"
    assert calibrate.main(["--model", str(tiny_model_dir), "--out", str(out), "--datasets",
                           "--generic-folder", str(folder), "--generic-csv", str(csv_path),
                           "--min-onsets", "1", "--samples", "4", "--data", str(tmp_path / "no-data"),
                           "--cache-dir", str(tmp_path / "cache")]) == 0
    assert len(json.loads(out.read_text())["gain"]) == 4


def test_a_calibration_that_cannot_be_written_whole_keeps_the_file_there(
        tiny_model_dir: Path, labelled_folder, tmp_path: Path, monkeypatch) -> None:
    """--out was written in place: a full disk left an empty or torn JSON file."""
    from emolive.files import WriteError
    from emolive.training import calibrate

    folder, csv_path = labelled_folder
    out = tmp_path / "velocity.json"
    out.write_text('{"gain": [1, 1, 1, 1]}\n')
    real_write_text = Path.write_text

    def half_then_full(self: Path, text: str, *args, **kwargs) -> int:
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_full)
    with pytest.raises(WriteError, match="could not write .*velocity.json.*No space left on device"):
        calibrate.main(["--model", str(tiny_model_dir), "--out", str(out), "--datasets",
                        "--generic-folder", str(folder), "--generic-csv", str(csv_path),
                        "--min-onsets", "1", "--samples", "4", "--data", str(tmp_path / "no-data"),
                        "--cache-dir", str(tmp_path / "cache")])
    monkeypatch.undo()
    assert out.read_text() == '{"gain": [1, 1, 1, 1]}\n'


def test_calibrate_says_which_emotions_it_could_not_measure(tiny_model_dir: Path, labelled_folder,
                                                            tmp_path: Path, capsys) -> None:
    """Data without tense and calm clips left Q2 and Q4 at gain 1 without a word."""
    from emolive.training import calibrate

    folder, csv_path = labelled_folder
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join([lines[0]] + [line for line in lines[1:]
                                                if "tense" not in line and "calm" not in line]) + "\n")
    out = tmp_path / "velocity.json"
    assert calibrate.main(["--model", str(tiny_model_dir), "--out", str(out), "--datasets",
                           "--generic-folder", str(folder), "--generic-csv", str(csv_path),
                           "--min-onsets", "1", "--samples", "4", "--data", str(tmp_path / "no-data"),
                           "--cache-dir", str(tmp_path / "cache")]) == 0
    written = json.loads(out.read_text())
    assert [row["quadrant"] for row in written["not_measured"]] == [1, 3]
    assert written["gain"][1] == written["gain"][3] == 1.0
    err = capsys.readouterr().err
    assert "Q2: not calibrated (gain 1, bias 0): 0 real" in err and "Q4: not calibrated" in err


def test_play_frame_caps_onsets_and_never_holds_a_silent_key() -> None:
    from emolive.training.onnx_runner import Sampling, play_frame

    logits = np.full((1, 88), 10.0, dtype=np.float32)  # every key nearly certain to start
    logits[0, 7] = 12.0
    hold = np.full((1, 88), 10.0, dtype=np.float32)
    vel = np.full((1, 88), 0.5, dtype=np.float32)
    prev = np.zeros((1, 264), dtype=np.float32)
    rng = np.random.default_rng(0)
    frame = play_frame(logits, hold, vel, prev, Sampling(max_onsets_per_step=5), rng)
    onset = frame[0, :88] > 0.5
    assert onset.sum() == 5 and onset[7]  # the most probable key is among those kept
    assert (frame[0, 88:176] > 0.5).sum() == 5  # hold only where a note started
    frame = play_frame(logits, hold, vel, prev, Sampling(max_onsets_per_step=0), rng)
    assert (frame[0, :88] > 0.5).sum() == 88


def test_calibrate_writes_gains_the_export_applies(tiny_model_dir: Path, labelled_folder,
                                                   tmp_path: Path) -> None:
    from emolive.training import calibrate

    folder, csv_path = labelled_folder
    out = tmp_path / "velocity.json"
    # the generic loader is reached through --datasets with no value and the cache of this test
    argv = ["--model", str(tiny_model_dir), "--out", str(out), "--datasets", "--samples", "8",
            "--cache-dir", str(tmp_path / "cache")]
    assert calibrate.main(argv + ["--data", str(tmp_path / "nowhere")]) == 2  # no clips at all
    real = [np.tile(_roll_with_velocity(v)[None], (4, 1, 1)) for v in (0.8, 0.7, 0.3, 0.4)]
    cal = calibrate.measure(calibrate.OnnxCVAE(tiny_model_dir), real, samples=16,
                            sampling=calibrate.Sampling(temperature=1.0), seed=0)
    assert len(cal["measured_midi_velocity"]) == 4
    for q, row in enumerate(cal["measured_midi_velocity"]):
        mapped = cal["gain"][q] * row["generated_mean"] / 127 + cal["bias"][q]
        assert mapped == pytest.approx(row["real_mean"] / 127, abs=1e-6)
        mapped_std = cal["gain"][q] * row["generated_std"]
        assert mapped_std == pytest.approx(row["real_std"], rel=1e-4)


def _roll_with_velocity(velocity: float) -> np.ndarray:
    roll = np.zeros((32, 264), dtype=np.float32)
    for step in range(0, 32, 2):
        key = 30 + step % 12
        roll[step, key] = roll[step, 88 + key] = 1.0
        roll[step, 176 + key] = velocity + 0.01 * (step % 3)
    return roll


def test_training_curves_plot_only_the_emotion_terms_the_run_used(tmp_path: Path) -> None:
    from emolive.training.report import _loss_terms_in_use

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"adv_weight": 0.3, "critic_weight": 0.0}))
    assert _loss_terms_in_use(config) == ["adv_ce"]
    config.write_text(json.dumps({"adv_weight": 0.0, "critic_weight": 1.0}))
    assert _loss_terms_in_use(config) == ["critic_fake"]
    assert _loss_terms_in_use(tmp_path / "missing.json") == ["adv_ce", "critic_fake"]


def test_swap_response_is_zero_for_a_decoder_deaf_to_the_emotion_and_one_for_a_perfect_one() -> None:
    rng = np.random.default_rng(0)
    per_latent = rng.dirichlet(np.ones(4), size=50)  # the answer set by z alone
    deaf = swap_response(np.stack([per_latent] * 4))
    figures = {k: v for k, v in deaf.items() if not k.endswith("_z_spread")}
    assert figures == pytest.approx({"all_four_follow": 0.0, "answer_changes": 0.0, "p_lift": 0.0,
                                     "valence_shift": 0.0, "valence_shift_positive": 0.0,
                                     "arousal_shift": 0.0, "arousal_shift_positive": 0.0})
    assert deaf["valence_z_spread"] == pytest.approx((per_latent[:, 0] + per_latent[:, 3]).std())
    perfect = swap_response(np.stack([np.tile(np.eye(4)[q], (50, 1)) for q in range(4)]))
    assert perfect == pytest.approx({"all_four_follow": 1.0, "answer_changes": 1.0, "p_lift": 1.0,
                                     "valence_shift": 1.0, "valence_shift_positive": 1.0,
                                     "arousal_shift": 1.0, "arousal_shift_positive": 1.0,
                                     "valence_z_spread": 0.0, "arousal_z_spread": 0.0})


def test_swap_response_separates_the_axis_the_emotion_steers_from_the_one_z_sets() -> None:
    # Arousal follows the request; valence is set by the latent (the first half positive).
    probs = np.zeros((4, 10, 4))
    for request, high_arousal in enumerate([True, True, False, False]):
        for latent in range(10):
            positive = latent < 5
            answer = {(True, True): 0, (False, True): 1, (False, False): 2, (True, False): 3}
            probs[request, latent, answer[(positive, high_arousal)]] = 1.0
    swap = swap_response(probs)
    assert swap["arousal_shift"] == 1.0 and swap["arousal_shift_positive"] == 1.0
    assert swap["valence_shift"] == 0.0 and swap["valence_shift_positive"] == 0.0
    assert swap["valence_z_spread"] == 0.5  # half the latents each way
    assert swap["arousal_z_spread"] == 0.0
    assert swap["all_four_follow"] == 0.0 and swap["answer_changes"] == 1.0
    assert swap["p_lift"] == pytest.approx(0.5 - 1 / 6)  # right for 2 of 4 requests, 1 of 3 others



def test_batch_step_figures_set_the_offline_step_beside_the_live_one(tiny_model_dir: Path,
                                                                     tmp_path: Path) -> None:
    from emolive.training.export import export_random_model
    from emolive.training.report_text import _batch_step

    rng = np.random.default_rng(0)
    roll = (rng.random((8, 32, 264)) < 0.05).astype(np.float32)
    label = np.arange(8) % 4
    z = rng.standard_normal((4, 16)).astype(np.float32)
    sampling = Sampling(0.5, 0.5, 1.0, max_onsets_per_step=7)

    def figures(model: Path) -> tuple[dict | None, dict]:
        live = OnnxCVAE(model)
        recon = evaluate.reconstruction(live, roll, label, 7)
        generated = evaluate.generate_per_emotion(live, z, 32, sampling, 1)
        return evaluate.batch_step_figures(live, roll, label, 7, recon, z, sampling, generated,
                                           32, 1), recon

    assert figures(tiny_model_dir)[0] is None  # float32: no batch step
    found, recon = figures(export_random_model(tmp_path / "int8", z_dim=16, hidden=32, seed=3,
                                               decoder_precision="int8", plan_steps=32))
    best = str(recon["best_threshold"])
    assert found["decoder_step"]["onset_f1_teacher_forced"] == recon["teacher_forced"][best]["f1"]
    batch = found["decoder_step_batch"]
    assert 0 <= batch["onset_f1_free_running"] <= 1 and len(batch["onset_density"]) == 4
    assert all(d > 0 for d in batch["onset_density"])
    text = "\n".join(_batch_step(found))
    assert "## The batch step" in text and "`decoder_step_batch`" in text



def test_the_runner_opens_only_the_contracts_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A card from elsewhere may name more files than the contract's: they are not opened
    (`../../etc/passwd` was parsed as a model, an absolute path loaded, a pipe blocked)."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    card = json.loads((model / "model_card.json").read_text())
    card["files"]["notes"] = str(tmp_path / "nowhere.onnx")
    card["files"]["more"] = "../../../../../../etc/passwd"
    (model / "model_card.json").write_text(json.dumps(card))
    runner = OnnxCVAE(model)
    assert set(runner.sessions) == {"encoder", "decoder_init", "decoder_step"} | (
        {"decoder_step_batch"} if "decoder_step_batch" in card["files"] else set())
