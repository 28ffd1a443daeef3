"""Loaders and their edge cases, on MIDI files written here with known content."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import mido
import numpy as np
import pytest

from emolive.training.data import DataError, load_emopia, load_generic, load_unlabelled, load_vgmidi
from emolive.training.notes import MidiReadError, read_notes
from emolive.training.features import note_steps, onset_error_s
from emolive.training.prepare import prepare

from midi_factory import scale_notes, write_csv, write_midi

pytestmark = pytest.mark.training


def _emopia(tmp_path: Path) -> Path:
    root = tmp_path / "emopia"
    midis = root / "midis"
    write_midi(midis / "Q1_songA_0.mid", scale_notes(60, False))
    write_midi(midis / "Q1_songA_1.mid", scale_notes(62, False))
    write_midi(midis / "Q3_songB_0.mid", scale_notes(57, True))
    write_midi(midis / "Q4_songD_0.mid", [])  # an empty track: no notes
    (midis / "Q2_songC_0.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage-not-midi")
    write_midi(midis / "nolabel_0.mid", scale_notes(60, False))
    write_csv(root / "label.csv", [{"ID": "Q1_songA_0", "4Q": "1", "annotator": "x"},
                                   {"ID": "Q3_songB_0", "4Q": "4", "annotator": "x"}])
    write_csv(root / "train_clip.csv", [{"clip_name": "Q1_songA_0.mid"},
                                        {"clip_name": "Q1_songA_1.mid"}])
    write_csv(root / "val_clip.csv", [{"clip_name": "Q3_songB_0.mid"}])
    return root


def test_emopia_labels_splits_and_skips(tmp_path: Path) -> None:
    report = load_emopia(_emopia(tmp_path))
    by_name = {c.path.name: c for c in report.clips}
    # label.csv wins over the file-name prefix (Q3_songB_0 is labelled 4 there).
    assert by_name["Q3_songB_0.mid"].quadrant == 3
    assert by_name["Q1_songA_1.mid"].quadrant == 0  # not in label.csv: prefix
    assert by_name["Q1_songA_0.mid"].song == by_name["Q1_songA_1.mid"].song == "songA"
    assert by_name["Q1_songA_0.mid"].split == "train" and by_name["Q3_songB_0.mid"].split == "val"
    assert [Path(p).name for p, _ in report.skipped] == ["nolabel_0.mid"]
    assert "no quadrant" in report.skipped[0][1]
    prep = prepare([report])
    skipped = {Path(p).name: reason for p, reason in prep.skipped}
    assert "unreadable MIDI" in skipped["Q2_songC_0.mid"]
    assert skipped["Q4_songD_0.mid"] == "no notes"
    assert len(prep.rolls) == 3
    assert "3 skipped" not in report.summary() and "1 skipped" in report.summary()


def test_emopia_clips_that_transcribe_a_training_clip_again_are_left_out(tmp_path: Path) -> None:
    """Validation clips of song Ie5koh4qvJc hold parts of training clips (the same audio
    transcribed twice): scored as validation they scored training music. Only where the
    training clip is there too."""
    root = _emopia(tmp_path)
    write_midi(root / "midis" / "Q4_Ie5koh4qvJc_16.mid", scale_notes(60, True))
    write_midi(root / "midis" / "Q4_Ie5koh4qvJc_17.mid", scale_notes(61, True))
    write_midi(root / "midis" / "Q4_FoTXpYZXxJs_0.mid", scale_notes(60, True))
    report = load_emopia(root)
    names = {c.path.name for c in report.clips}
    assert "Q4_Ie5koh4qvJc_16.mid" not in names and {"Q4_Ie5koh4qvJc_17.mid", "Q4_FoTXpYZXxJs_0.mid"} <= names
    assert [reason for p, reason in report.skipped if Path(p).name == "Q4_Ie5koh4qvJc_16.mid"] == [
        "part of it is training clip Q4_FoTXpYZXxJs_0 transcribed again (EMOPIA holds that performance "
        "twice, across its split)"]


def test_song_never_straddles_splits(tmp_path: Path) -> None:
    root = _emopia(tmp_path)
    write_csv(root / "val_clip.csv", [{"clip_name": "Q3_songB_0.mid"},
                                      {"clip_name": "Q1_songA_1.mid"}])
    write_csv(root / "train_clip.csv", [{"clip_name": "Q1_songA_0.mid"}])
    write_midi(root / "midis" / "Q1_songA_2.mid", scale_notes(64, False))
    report = load_emopia(root)
    splits = {c.split for c in report.clips if c.song == "songA"}
    assert len(splits) == 1
    # ... and the move is said (it was silent)
    assert report.moved == ["song 'songA' had clips in both splits: its 1 val clip moved to train "
                            "(its 2 others)"]
    assert report.moved[0] in report.summary()


def test_a_generic_csv_giving_one_song_both_splits_is_told_which_won(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    _songs(folder, ["a1.mid", "a2.mid", "b.mid"])
    rows = [{"path": "a1.mid", "song": "a", "emotion": "calm", "split": "train"},
            {"path": "a2.mid", "song": "a", "emotion": "calm", "split": "val"},
            {"path": "b.mid", "song": "b", "emotion": "calm", "split": "val"}]
    report = load_generic(folder, write_csv(tmp_path / "s.csv", rows))
    assert {c.split for c in report.clips if c.song == "a"} == {"train"}  # a tie: the first clip's
    assert "song 'a' had clips in both splits: its 1 val clip moved to train (its 1 other)" in report.summary()


def test_vgmidi_valence_arousal_to_quadrant(tmp_path: Path) -> None:
    root = tmp_path / "vgmidi"
    for i in range(4):
        write_midi(root / "labelled" / "phrases" / f"p{i}.mid", scale_notes(60, i % 2 == 1))
    rows = [{"game": "g", "piece": f"p{i}", "midi": f"labelled/phrases/p{i}.mid",
             "valence": v, "arousal": a}
            for i, (v, a) in enumerate([("1", "1"), ("-1", "1"), ("-1", "-1"), ("1", "-1")])]
    rows.append({"game": "g", "piece": "x", "midi": "labelled/phrases/p1.mid", "valence": "-1",
                 "arousal": "-1"})  # listed again with another label: once, with the first
    rows.append({"game": "g", "piece": "z", "midi": "labelled/phrases/p4.mid", "valence": "",
                 "arousal": "1"})
    rows.append({"game": "g", "piece": "y", "midi": "labelled/phrases/missing.mid",
                 "valence": "1", "arousal": "1"})
    write_csv(root / "vgmidi_labelled.csv", rows)
    report = load_vgmidi(root)
    assert [c.quadrant for c in report.clips] == [0, 1, 2, 3]
    reasons = [r for _, r in report.skipped]
    assert len(reasons) == 3 and "listed again on line 6 (first on line 3)" in reasons[0]
    assert "bad label" in reasons[1] and "not found" in reasons[2]


def test_generic_csv_names_and_missing_labels(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    write_midi(folder / "a.mid", scale_notes(60, False))
    write_midi(folder / "b.mid", scale_notes(60, True))
    write_midi(folder / "c.mid", scale_notes(60, True))
    csv_path = write_csv(tmp_path / "labels.csv", [
        {"path": "a.mid", "emotion": "joyful"}, {"path": "b.mid", "emotion": "melancholic"},
        {"path": "c.mid", "emotion": "grumpy"}, {"path": "d.mid", "emotion": ""}])
    report = load_generic(folder, csv_path)
    assert [(c.path.name, c.quadrant) for c in report.clips] == [("a.mid", 0), ("b.mid", 2)]
    reasons = dict(report.skipped)
    assert "unknown emotion 'grumpy'" in reasons[str(folder / "c.mid")]
    assert "missing or bad label" in reasons[str(folder / "d.mid")]


def test_generic_split_column_and_a_validation_song_by_default(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    for name in ("a", "b", "c"):
        write_midi(folder / f"{name}.mid", scale_notes(60, False))
    rows = [{"path": "a.mid", "emotion": "calm", "split": "val"},
            {"path": "b.mid", "emotion": "calm", "split": "test"},
            {"path": "c.mid", "emotion": "calm", "split": ""}]
    report = load_generic(folder, write_csv(tmp_path / "s.csv", rows))
    assert {c.path.name: c.split for c in report.clips} == {"a.mid": "val", "c.mid": "train"}
    assert "split must be 'train' or 'val'" in report.skipped[0][1]
    # Without a split column, two songs still give a validation song.
    rows = [{"path": "a.mid", "emotion": "sad"}, {"path": "b.mid", "emotion": "sad"}]
    report = load_generic(folder, write_csv(tmp_path / "t.csv", rows))
    assert sorted(c.split for c in report.clips) == ["train", "val"]


def test_unlabelled_folder_is_recursive(tmp_path: Path) -> None:
    write_midi(tmp_path / "pop" / "001" / "001.mid", scale_notes(60, False))
    write_midi(tmp_path / "pop" / "002" / "002.MID", scale_notes(60, False))
    report = load_unlabelled(tmp_path / "pop", name="POP909")
    assert len(report.clips) == 2 and all(c.quadrant is None for c in report.clips)


def test_tempo_changes_map_beats_to_seconds(tmp_path: Path) -> None:
    """120 BPM for 4 beats, then 60 BPM: beats stay on the grid, seconds follow the tempo map."""
    notes = [(60, 90, float(b), b + 0.5) for b in range(8)]
    path = write_midi(tmp_path / "tempo.mid", notes, tempi=[(0, 120), (4, 60)])
    read = read_notes(path)
    assert read.tempo_changes == 2
    np.testing.assert_allclose(read.start_beat, np.arange(8))
    np.testing.assert_allclose(read.start_s, [0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0], atol=1e-6)
    start, _, step_s = note_steps(read, "beats")
    np.testing.assert_allclose(start, np.arange(8) * 4)
    np.testing.assert_allclose(step_s, [0.125] * 4 + [0.25] * 4)
    assert onset_error_s(start, step_s).max() < 1e-9


def test_onset_error_measures_off_grid_notes(tmp_path: Path) -> None:
    # A note 1/16 beat (31.25 ms) late at 120 BPM (step = 125 ms).
    path = write_midi(tmp_path / "late.mid", [(60, 90, 0.0625, 1.0), (62, 90, 1.0, 2.0)])
    start, _, step_s = note_steps(read_notes(path), "beats")
    np.testing.assert_allclose(onset_error_s(start, step_s), [0.03125, 0.0], atol=1e-9)


def test_sustain_pedal_extends_notes(tmp_path: Path) -> None:
    pedal = [(0.0, mido.Message("control_change", control=64, value=127)),
             (3.0, mido.Message("control_change", control=64, value=0))]
    path = write_midi(tmp_path / "pedal.mid", [(60, 90, 0.0, 1.0), (64, 90, 3.5, 4.0)],
                      extra=pedal)
    read = read_notes(path)
    np.testing.assert_allclose(read.end_beat, [3.0, 4.0])
    np.testing.assert_allclose(read_notes(path, sustain=False).end_beat, [1.0, 4.0])


@pytest.mark.parametrize("pedal", [False, True])
def test_a_repeated_note_written_on_before_off_keeps_every_note(tmp_path: Path, pedal: bool) -> None:
    """8 repeated eighths of one key, each new note-on written before the old note-off at the
    same tick (23 of VGMIDI's unlabelled files do this): the note-off is the old note's, and
    the new note sounds on (it was closed at length 0 and dropped: 1 note read of 8)."""
    track = mido.MidiTrack()
    if pedal:
        track.append(mido.Message("control_change", control=64, value=127))
    for i in range(8):
        track.append(mido.Message("note_on", note=64, velocity=80, time=0 if i == 0 else 0))
        if i > 0:
            track.append(mido.Message("note_off", note=64, velocity=0, time=0))
        track.append(mido.Message("note_on", note=30, velocity=0, time=240))  # time passes
    track.append(mido.Message("note_off", note=64, velocity=0, time=0))
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    path = tmp_path / "repeated.mid"
    midi.save(str(path))
    read = read_notes(path)
    np.testing.assert_allclose(read.start_beat, np.arange(8) * 0.5)
    np.testing.assert_allclose(read.end_beat, np.arange(1, 9) * 0.5)


def test_corrupt_data_bytes_are_rejected(tmp_path: Path) -> None:
    path = write_midi(tmp_path / "ok.mid", [(60, 90, 0.0, 1.0)])
    data = bytearray(path.read_bytes())
    data[data.index(bytes([0x90, 60, 90])) + 2] = 0xC8  # velocity byte over 127
    bad = tmp_path / "bad.mid"
    bad.write_bytes(bytes(data))
    with pytest.raises(MidiReadError):
        read_notes(bad)
    with pytest.raises(MidiReadError, match="unreadable"):
        read_notes(tmp_path / "does-not-exist.mid")


def test_two_runs_writing_one_cache_at_once_both_succeed(tmp_path: Path, monkeypatch) -> None:
    """Two trainings started together prepare the same cache file: the second finishes its
    write while the first is between writing and renaming (what happened to two sweep runs
    started at once: FileNotFoundError for a shared temporary name)."""
    from emolive.training import prepare as prepare_module

    report = load_emopia(_emopia(tmp_path))
    cache = tmp_path / "cache"
    real_savez = np.savez_compressed
    calls = []

    def savez_then_the_other_run(file, **arrays):
        real_savez(file, **arrays)
        calls.append(file)
        if len(calls) == 1:  # the other run writes and renames before this one renames
            prepare_module.prepare([report], cache_dir=cache)

    monkeypatch.setattr(prepare_module.np, "savez_compressed", savez_then_the_other_run)
    first = prepare_module.prepare([report], cache_dir=cache)
    monkeypatch.undo()
    assert len(calls) == 2
    left = [p.name for p in cache.iterdir()]
    assert len(left) == 1 and ".tmp" not in left[0], left  # the cache, no temporary file
    cached = prepare([report], cache_dir=cache)
    assert len(cached.rolls) == len(first.rolls) == 3


def test_the_cache_follows_file_contents_not_modification_times(tmp_path: Path, monkeypatch) -> None:
    """A copied data folder (new mtimes, same bytes) reuses the cache; an edit that keeps the
    size and the mtime still rebuilds it."""
    import os

    from emolive.training import prepare as prepare_module

    root = _emopia(tmp_path)
    cache = tmp_path / "cache"
    first = prepare([load_emopia(root)], cache_dir=cache)
    clip = root / "midis" / "Q1_songA_0.mid"
    for path in (root / "midis").iterdir():
        os.utime(path, ns=(10**18, 10**18))
    builds = []
    real_build = prepare_module._build
    monkeypatch.setattr(prepare_module, "_build", lambda *a: builds.append(1) or real_build(*a))
    again = prepare_module.prepare([load_emopia(root)], cache_dir=cache)
    assert builds == [] and len(again.rolls) == len(first.rolls)

    stat = clip.stat()
    write_midi(clip, scale_notes(61, False))  # the same size: one pitch a semitone up
    assert clip.stat().st_size == stat.st_size
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    edited = prepare_module.prepare([load_emopia(root)], cache_dir=cache)
    assert builds == [1]
    index = edited.path.index(str(clip))
    assert not np.array_equal(edited.rolls[index], first.rolls[first.path.index(str(clip))])


def test_auto_grid_keeps_a_quantised_files_beats_and_tracks_a_performed_one(tmp_path: Path) -> None:
    """POP909's case: performed at about 100 BPM in a file whose tempo map says 120."""
    quantised = read_notes(write_midi(tmp_path / "q.mid",
                                      [(60 + b % 5, 90, b / 2, b / 2 + 0.4) for b in range(64)]))
    start, _, step_s = note_steps(quantised, "auto")
    np.testing.assert_allclose(start, np.arange(64) * 2)  # its own 8th notes, untouched

    # 8th notes at 100 BPM, written as beats of a 120 BPM file: 1.2 file beats per real beat.
    performed = read_notes(write_midi(tmp_path / "p.mid",
                                      [(60 + b % 5, 90 + 20 * (b % 2 == 0), b * 0.6, b * 0.6 + 0.5)
                                       for b in range(64)]))
    on_file_beats = onset_error_s(*note_steps(performed, "beats")[::2]).mean()
    start, _, step_s = note_steps(performed, "auto")
    assert on_file_beats > 0.02  # seconds: snapping to the file's grid moves onsets
    assert onset_error_s(start, step_s).mean() < 0.25 * on_file_beats


def _songs(folder: Path, names: Sequence[str]) -> None:
    for name in names:
        write_midi(folder / name, scale_notes(60, False))


def test_a_csv_from_excel_with_spaces_and_a_byte_order_mark_reads(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    _songs(folder, ["a.mid", "b.mid"])
    text = "path, emotion\r\n a.mid , happy\r\nb.mid,sad\r\n"
    (tmp_path / "labels.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    report = load_generic(folder, tmp_path / "labels.csv")
    assert sorted((c.path.name, c.quadrant) for c in report.clips) == [("a.mid", 0), ("b.mid", 2)]
    assert report.skipped == []


@pytest.mark.parametrize("content,message", [
    (b"path,emotion\na.mid,happy\nb\xefve.mid,sad\n", "is not UTF-8 text (line 3, byte 0xef)"),  # was "byte 24"
    (b"\xef\xbb\xbfpath,emotion\n" + b"a.mid,happy\n" * 2000 + b"\xe9.mid,sad\n", "(line 2002, byte 0xe9)"),
    (b"Path,path,emotion\na.mid,b.mid,happy\n", "names the column 'path' more than once (in any case)"),
    (b"path,emotion\ra.mid,happy\rb.mid,sad\rc\xe9.mid,sad\r", "(line 4, byte 0xe9)"),  # CR alone: Excel for Mac
    (b'path,emotion\n"a.mid,happy\nb.mid,sad\n', "runs over several lines (an unclosed quote?)"),
    (b"file,emotion\na.mid,happy\n", "needs a 'path' column"),
    (b"path,mood\na.mid,happy\n", "an 'emotion' column or 'valence' and 'arousal' columns"),
    # DictReader kept the last 'path': every label went with another row's file.
    (b"path,emotion,path\na.mid,happy,b.mid\nb.mid,sad,a.mid\n", "names the column 'path' more than once"),
    # The line the quote opens on, not the end of the file.
    (b'path,emotion\na.mid,happy\nb.mid,"sad\n' + b"a.mid,calm\n" * 40,
     'labels.csv line 3: a cell runs over several lines'),
])
def test_a_csv_that_cannot_be_read_as_labels_is_a_data_error(tmp_path: Path, content: bytes,
                                                             message: str) -> None:
    from emolive.training.data import DataError

    _songs(tmp_path / "mine", ["a.mid", "b.mid"])
    (tmp_path / "labels.csv").write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)):
        load_generic(tmp_path / "mine", tmp_path / "labels.csv")


def test_a_spreadsheets_capitalised_column_names_read(tmp_path: Path) -> None:
    """`Path,Song,Emotion` was refused ("needs a 'path' column")."""
    _songs(tmp_path / "mine", ["a.mid", "b.mid"])
    (tmp_path / "labels.csv").write_text("Path,SONG,Emotion\na.mid,one,happy\nb.mid,two,sad\n")
    report = load_generic(tmp_path / "mine", tmp_path / "labels.csv")
    assert sorted((c.path.name, c.quadrant, c.song) for c in report.clips) == [("a.mid", 0, "one"), ("b.mid", 2, "two")]


def test_a_generic_folder_that_is_a_file_is_said_to_be_one(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("path,emotion\na.mid,happy\n")
    with pytest.raises(DataError, match="labels.csv \\(--generic-folder\\) is not a folder"):
        load_generic(tmp_path / "labels.csv", tmp_path / "labels.csv")


def test_unreadable_and_drum_only_files_say_why(tmp_path: Path) -> None:
    """A truncated file said "unreadable MIDI: EOFError: " and nothing more; a drum track "no notes"."""
    good = write_midi(tmp_path / "good.mid", scale_notes(60, False))
    (tmp_path / "cut.mid").write_bytes(good.read_bytes()[:30])
    (tmp_path / "empty.mid").write_bytes(b"")
    drums = write_midi(tmp_path / "drums.mid", [])
    midi = mido.MidiFile(drums)
    midi.tracks[1][-1:-1] = [mido.Message("note_on", channel=9, note=36, velocity=100),
                             mido.Message("note_off", channel=9, note=36, time=240)]
    midi.save(drums)
    for name, reason in (("cut.mid", "the file ends early"), ("empty.mid", "the file ends early"),
                         ("drums.mid", "no notes but 1 drum note (channel 10, not read)")):
        with pytest.raises(MidiReadError, match=re.escape(reason)):
            read_notes(tmp_path / name)


def test_a_file_of_notes_all_of_length_zero_says_so(tmp_path: Path) -> None:
    """Note-offs on their note-ons' ticks (some trackers write drums so) said "no notes"."""
    track = mido.MidiTrack()
    for i in range(5):
        track += [mido.Message("note_on", note=60 + i, velocity=90, time=480), mido.Message("note_off", note=60 + i)]
    path = tmp_path / "ticks.mid"
    mido.MidiFile(type=0, tracks=[track]).save(path)
    with pytest.raises(MidiReadError, match=re.escape("5 notes, all of length 0")):
        read_notes(path)


def test_valence_and_arousal_never_below_zero_are_warned_of(tmp_path: Path) -> None:
    """Ratings on 0..1 made every clip happy without a word (helper-61)."""
    folder = tmp_path / "mine"
    for name in ("a", "b"):
        write_midi(folder / f"{name}.mid", scale_notes(60, False))
    rated = write_csv(tmp_path / "rated.csv", [{"path": "a.mid", "valence": "0.9", "arousal": "0.8"},
                                               {"path": "b.mid", "valence": "0.1", "arousal": "0.2"}])
    report = load_generic(folder, rated)
    assert [c.quadrant for c in report.clips] == [0, 0]
    assert "warning: no valence or arousal in" in report.summary() and "-1..1 scale" in report.summary()
    signed = write_csv(tmp_path / "signed.csv", [{"path": "a.mid", "valence": "0.9", "arousal": "0.8"},
                                                 {"path": "b.mid", "valence": "-0.8", "arousal": "-0.6"}])
    assert "warning" not in load_generic(folder, signed).summary()
    named = write_csv(tmp_path / "named.csv", [{"path": "a.mid", "emotion": "happy"}])
    assert "warning" not in load_generic(folder, named).summary()


def test_a_csv_path_written_otherwise_than_the_file_is_found_or_told_why(tmp_path: Path) -> None:
    """A Mac's decomposed name matched against a composed CSV, a Windows '\\', another case: each
    was a bare "file listed in CSV not found" (helper-61)."""
    folder = tmp_path / "mine"
    decomposed = unicodedata.normalize("NFD", "crème.mid")
    write_midi(folder / "sub" / decomposed, scale_notes(60, False))
    write_midi(folder / "sub" / "Loud.mid", scale_notes(62, False))
    csv_path = write_csv(tmp_path / "labels.csv", [{"path": "sub/crème.mid", "emotion": "happy"},
                                                   {"path": "sub\\Loud.mid", "emotion": "sad"},
                                                   {"path": "sub/loud.mid", "emotion": "sad"}])
    report = load_generic(folder, csv_path)
    assert [c.path.name for c in report.clips] == [decomposed] and report.unlisted == 1
    reasons = [reason for _path, reason in report.skipped]
    assert reasons == ["file listed in CSV not found (its path holds a '\\': write folders with '/')",
                       "file listed in CSV not found ('Loud.mid' is there: names are matched with their case)"]


def test_an_unclosed_quote_in_a_long_csv_is_a_data_error_not_a_csv_traceback(tmp_path: Path) -> None:
    from emolive.training.data import DataError

    rows = "".join(f"song{i}.mid,happy\n" for i in range(9000))  # past csv's field size limit
    (tmp_path / "labels.csv").write_text('path,emotion\n"song0.mid,happy\n' + rows)
    with pytest.raises(DataError, match=r"labels.csv line \d+: .*unclosed quote"):
        load_generic(tmp_path, tmp_path / "labels.csv")


def test_a_split_given_for_every_row_is_kept(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    _songs(folder, ["a.mid", "b.mid", "c.mid"])
    rows = [{"path": n, "emotion": "calm", "split": "train"} for n in ("a.mid", "b.mid", "c.mid")]
    report = load_generic(folder, write_csv(tmp_path / "s.csv", rows))
    assert [c.split for c in report.clips] == ["train"] * 3  # no song moved to validation


def test_the_cache_tells_datasets_apart_and_keeps_no_stale_skips(tmp_path: Path) -> None:
    """The same files read as EMOPIA (tracked grid) and as a generic folder (auto grid) share no
    cached rolls; a loader's skip of an earlier run (a CSV row since removed) is not reported
    again from the cache."""
    import dataclasses

    from emolive.training.data import LoadReport

    report = load_emopia(_emopia(tmp_path))
    cache = tmp_path / "cache"
    prepare([report], cache_dir=cache)
    generic = LoadReport("generic", [dataclasses.replace(c, dataset="generic") for c in report.clips])
    prepare([generic], cache_dir=cache)
    assert len(list(cache.iterdir())) == 2  # one cache per dataset: the grid differs

    with_missing = LoadReport("generic", list(generic.clips), [("gone.mid", "file listed in CSV not found")])
    assert ("gone.mid", "file listed in CSV not found") in prepare([with_missing], cache_dir=cache).skipped
    again = prepare([generic], cache_dir=cache)  # the same clips, the row gone: the same cache
    assert len(list(cache.iterdir())) == 2
    assert all(path != "gone.mid" for path, _ in again.skipped)
    assert any("garbage" in reason or "unreadable" in reason for _, reason in again.skipped)  # kept


def test_a_cache_file_gets_a_new_files_mode_for_others_sharing_the_cache(tmp_path: Path) -> None:
    """Cache files came out 0600 (mkstemp's), unreadable to another user of the same --cache-dir."""
    import os

    before = os.umask(0o022)
    try:
        prepare([load_emopia(_emopia(tmp_path))], cache_dir=tmp_path / "cache")
    finally:
        os.umask(before)
    (cached,) = (tmp_path / "cache").iterdir()
    assert cached.stat().st_mode & 0o777 == 0o644


def test_a_cache_is_written_where_os_has_no_fchmod(tmp_path: Path, monkeypatch) -> None:
    """Windows has os.fchmod from Python 3.13 only: 3.10-3.12 failed to write any cache (helper-67)."""
    import os

    monkeypatch.delattr(os, "fchmod")
    prepare([load_emopia(_emopia(tmp_path))], cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_an_unreadable_cache_file_is_built_again_and_said(tmp_path: Path) -> None:
    report = load_emopia(_emopia(tmp_path))
    cache = tmp_path / "cache"
    first = prepare([report], cache_dir=cache)
    (file,) = cache.iterdir()
    for damage in (file.read_bytes()[: file.stat().st_size // 2], b"", b"not a cache"):
        file.write_bytes(damage)
        said: list[str] = []
        again = prepare([report], cache_dir=cache, log=said.append)
        assert len(again.rolls) == len(first.rolls)
        assert said and "cannot be read" in said[0] and "reading the MIDI files again" in said[0]
        assert len(prepare([report], cache_dir=cache, log=said.append).rolls) == len(first.rolls)
        assert len(said) == 1  # the rebuilt cache is read without complaint


def test_a_cache_folder_that_cannot_hold_the_cache_leaves_the_run_uncached(tmp_path: Path) -> None:
    report = load_emopia(_emopia(tmp_path))
    (tmp_path / "a-file").write_text("mine")
    said: list[str] = []
    prep = prepare([report], cache_dir=tmp_path / "a-file", log=said.append)
    assert len(prep.rolls) == 3 and (tmp_path / "a-file").read_text() == "mine"
    assert said and "the features are not cached: --cache-dir" in said[0] and "(it is a file)" in said[0]


def test_files_dropped_while_reading_notes_are_listed_with_their_reasons(labelled_folder,
                                                                        tmp_path: Path) -> None:
    from emolive.training.config import TrainConfig
    from emolive.training.train import load_data

    folder, csv_path = labelled_folder
    drums = mido.MidiFile()
    track = mido.MidiTrack([mido.Message("note_on", note=36, velocity=100, channel=9),
                            mido.Message("note_off", note=36, channel=9, time=240)])
    drums.tracks.append(track)
    drums.save(folder / "drums.mid")
    write_midi(folder / "low.mid", [(12, 90, 0.0, 0.5)])  # below the piano's 88 keys
    with csv_path.open("a", encoding="utf-8") as handle:
        handle.write("drums.mid,happy,drums,train\nlow.mid,sad,low,train\n")
    said: list[str] = []
    cfg = TrainConfig(datasets=[], generic_folder=str(folder), generic_csv=str(csv_path),
                      cache_dir=str(tmp_path / "cache"), min_onsets=1, segment_bars=1)
    load_data(cfg, said.append)
    text = "\n".join(said)
    assert "2 more skipped while reading their notes:" in text
    assert f"skipped {folder / 'drums.mid'}:" in text and f"skipped {folder / 'low.mid'}:" in text
    said.clear()
    load_data(cfg, said.append)  # from the cache: the same list
    assert "2 more skipped while reading their notes:" in "\n".join(said)


def test_a_file_listed_twice_is_used_once_and_the_second_row_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    _songs(folder, ["a.mid", "b.mid"])
    rows = [{"path": "a.mid", "emotion": "happy"}, {"path": "b.mid", "emotion": "calm"},
            {"path": "a.mid", "emotion": "sad"}, {"path": "./a.mid", "emotion": "happy"}]
    report = load_generic(folder, write_csv(tmp_path / "labels.csv", rows))
    assert sorted((c.path.name, c.quadrant) for c in report.clips) == [("a.mid", 0), ("b.mid", 3)]
    reasons = [reason for _, reason in report.skipped]
    assert reasons == ["listed again on line 4 (first on line 2); the first row is used",
                       "listed again on line 5 (first on line 2); the first row is used"]


def test_emopia_keeps_a_clips_first_label_and_counts_clips_missing_from_midis(tmp_path: Path) -> None:
    """A repeated ID's last row won silently (over the first and the file's prefix), and clips
    the CSVs list but midis/ lacks (a half-extracted EMOPIA) were not counted at all."""
    root = _emopia(tmp_path)
    write_csv(root / "label.csv", [{"ID": "Q1_songA_0", "4Q": "1", "annotator": "x"},
                                   {"ID": "Q1_songA_0", "4Q": "3", "annotator": "y"},
                                   *[{"ID": f"Q2_gone{i}_0", "4Q": "2", "annotator": "x"}
                                     for i in range(25)]])
    report = load_emopia(root)
    assert {c.path.name: c.quadrant for c in report.clips}["Q1_songA_0.mid"] == 0
    assert (f"{root / 'label.csv'} line 3", "Q1_songA_0 listed again (first on line 2); the first "
                                            "row is used") in report.skipped
    missing = [p for p, r in report.skipped if r == "listed in the CSVs but missing from midis/"]
    assert len(missing) == 25 and Path(missing[0]).name == "Q2_gone0_0.mid"
    summary = report.summary()
    assert "27 skipped" in summary  # the repeated row, the 25 missing clips, nolabel_0
    assert summary.count("\n  skipped ") == 20  # the first 20 by name, the rest counted by reason
    assert "... and 6 more skipped: listed in the CSVs but missing from midis/" in summary
    assert "... and 1 more skipped: no quadrant" in summary


def test_emopia_reads_upper_case_suffixes_and_names_bad_label_rows(tmp_path: Path) -> None:
    root = _emopia(tmp_path)
    (root / "midis" / "Q3_songB_0.mid").rename(root / "midis" / "Q3_songB_0.MID")
    write_csv(root / "label.csv", [{"ID": "Q1_songA_0", "4Q": "", "annotator": "x"},
                                   {"ID": "Q3_songB_0", "4Q": "4", "annotator": "x"}])
    report = load_emopia(root)
    quadrant = {c.path.name: c.quadrant for c in report.clips}
    assert quadrant["Q3_songB_0.MID"] == 3  # label.csv's 4Q (was silently left out)
    assert quadrant["Q1_songA_0.mid"] == 0  # a blank 4Q: the file-name prefix (was a crash)
    assert any("label.csv line 2" in path and "4Q must be 1..4" in reason
               for path, reason in report.skipped)
    write_csv(root / "label.csv", [{"ID": "Q1_songA_0", "quadrant": "1"}])
    with pytest.raises(DataError, match=r"label.csv needs columns 'ID' and '4Q'"):
        load_emopia(root)


def test_a_label_row_without_an_id_is_named_as_skipped(tmp_path: Path) -> None:
    root = _emopia(tmp_path)
    write_csv(root / "label.csv", [{"ID": "", "4Q": "2", "annotator": "x"},
                                   {"ID": "Q3_songB_0", "4Q": "4", "annotator": "x"}])
    report = load_emopia(root)
    assert any(path.endswith("label.csv line 2") and "ID given" in reason
               for path, reason in report.skipped), report.skipped
    assert {c.path.name: c.quadrant for c in report.clips}["Q3_songB_0.mid"] == 3


@pytest.mark.parametrize(("valence", "arousal"), [("0", "1"), ("1", "0"), ("-0.5", "0"), ("0", "0")])
def test_a_point_on_an_axis_has_no_quadrant(valence: str, arousal: str) -> None:
    from emolive.training.data import quadrant_from_va

    with pytest.raises(ValueError, match="lies on an axis"):
        quadrant_from_va(valence, arousal)


def test_a_one_song_collection_keeps_its_song_for_training() -> None:
    """Validation takes a song only where another is left to train on."""
    from emolive.training.data import song_for_validation

    assert song_for_validation(["a"]) is None
    assert song_for_validation(["a", "a", "a"]) is None  # three clips of one song
    assert song_for_validation(["a", "b"]) in ("a", "b")


def test_generic_rows_are_named_by_their_file_line_and_the_first_usable_row_decides(tmp_path: Path) -> None:
    """A file whose first row had a bad label was dropped with its corrected second row, and
    the report said of the refused row that it was used."""
    folder = tmp_path / "mine"
    _songs(folder, ["a.mid", "b.mid", "x/intro.mid", "y/intro.mid"])
    text = ("path,emotion,split\n\na.mid,joyous,\n\nb.mid,sad,Train\na.mid,sad,\n"
            "x/intro.mid,calm,\ny/intro.mid,calm,\nb.mid,happy,\n,calm,\nx/intro.mid,,\n")
    (tmp_path / "labels.csv").write_text(text)
    report = load_generic(folder, tmp_path / "labels.csv")
    reasons = [reason for path, reason in report.skipped if Path(path).name == "a.mid"]
    assert reasons == ["line 3: missing or bad label: unknown emotion 'joyous' (one name a row, as "
                       "`emolive --list-emotions` lists them)"]  # not the 17 names on every such row
    assert [c.quadrant for c in report.clips if c.path.name == "a.mid"] == [2]  # line 6: sad
    assert sum("listed again on line 9 (first on line 5)" in r for _, r in report.skipped) == 1
    assert (f"{tmp_path / 'labels.csv'} line 10", "no path given (an empty cell)") in report.skipped
    assert any("line 11: missing or bad label: no emotion given" in r for _, r in report.skipped)
    assert [(c.path.name, c.split) for c in report.clips if c.path.name == "b.mid"] == [("b.mid", "train")]
    assert report.unlisted == 0
    _songs(folder, ["not-in-csv.mid", "deep/also-not.MIDI"])
    again = load_generic(folder, tmp_path / "labels.csv")
    assert again.unlisted == 2 and "2 MIDI files in the folder with no row in the CSV" in again.summary()
    songs = {str(c.path.relative_to(folder)): c.song for c in report.clips}
    assert songs["x/intro.mid"] != songs["y/intro.mid"]  # two files of one stem: two songs
    with pytest.raises(DataError, match="does not exist"):
        load_generic(tmp_path / "no-such-folder", tmp_path / "labels.csv")


def test_validation_files_that_cannot_be_read_give_way_to_a_readable_song(tmp_path: Path) -> None:
    """The loader's validation song was an unreadable file: training failed with "no val
    segments" though three readable songs were there."""
    from emolive.training.config import TrainConfig
    from emolive.training.train import load_data

    folder = tmp_path / "mine"
    _songs(folder, ["a.mid", "b.mid", "c.mid"])
    (folder / "broken.mid").write_bytes(b"not a MIDI file")
    csv_path = write_csv(tmp_path / "labels.csv", [
        {"path": "a.mid", "emotion": "happy", "split": ""}, {"path": "b.mid", "emotion": "sad", "split": ""},
        {"path": "c.mid", "emotion": "calm", "split": ""}, {"path": "broken.mid", "emotion": "tense", "split": "val"}])
    said: list[str] = []
    cfg = TrainConfig(datasets=[], generic_folder=str(folder), generic_csv=str(csv_path),
                      cache_dir=str(tmp_path / "cache"), min_onsets=1, segment_bars=1)
    prep = load_data(cfg, said.append)
    assert len(prep.indices("val")) == 1 and len(prep.indices("train")) == 2
    assert any("no validation clip could be read" in line for line in said)
