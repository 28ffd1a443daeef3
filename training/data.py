"""Datasets on disk -> labelled clips (their notes: :mod:`training.notes`).

Layouts understood (every path is an argument; the defaults are the layout of ../shared/data):

- EMOPIA: ``<root>/midis/Q<n>_<song>_<clip>.mid``; quadrant from ``label.csv`` (columns ``ID``,
  ``4Q``), else from the file-name prefix; song-level splits from ``train_clip.csv`` /
  ``val_clip.csv`` (column ``clip_name``).
- VGMIDI labelled: a CSV with ``midi`` (path relative to the vgmidi folder), ``valence``,
  ``arousal`` in {-1, 1} (or [-1, 1]) -> quadrant.
- Generic: a folder and a CSV with ``path`` (relative to the folder) and either ``emotion``
  (any name of :mod:`emolive.emotions`) or ``valence`` and ``arousal``.
- Unlabelled: every ``.mid``/``.midi`` under a folder (POP909, VGMIDI unlabelled).

Unreadable, empty or unlabelled files are skipped and recorded in a :class:`LoadReport` with the
reason; nothing here raises for a bad file.
"""

from __future__ import annotations

import csv
import hashlib
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import emolive
from emolive.emotions import QUADRANTS, from_valence_arousal, quadrant_of

#: In a checkout, the data beside it (../shared/data, this project's layout); installed (the
#: package's emolive/training/), a folder "data" in the current one: give --data.
_CHECKOUT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (_CHECKOUT.parent / "shared" / "data" if (_CHECKOUT / "pyproject.toml").is_file()
                else Path("data"))
#: The model the package ships (emolive.engine.DEFAULT_MODEL_DIR, without loading the engine).
BUNDLED_MODEL = Path(emolive.__file__).resolve().parent / "models" / "default"


@dataclass
class Clip:
    path: Path
    song: str  # clips of one song never straddle train and validation
    dataset: str
    quadrant: int | None  # 0..3 (Q1..Q4), None when unlabelled
    split: str  # "train" or "val"


#: The labelled layouts --datasets names: folders of these names under --data.
LABELLED_DATASETS = ("emopia", "vgmidi")


class DataError(ValueError):
    """The data the config points at cannot be used (missing folder, no clips, a CSV that
    cannot be read)."""


#: Skipped files a load report (and train's list of files dropped while reading their notes)
#: names one by one; the rest are counted.
MAX_SKIPS_LISTED = 20


@dataclass
class LoadReport:
    dataset: str
    clips: list[Clip] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    unlisted: int = 0  # MIDI files in a generic folder that no CSV row names (not used)
    moved: list[str] = field(default_factory=list)  # songs whose clips the splits gave both sides
    warnings: list[str] = field(default_factory=list)  # doubts about the labels as a whole

    def skip(self, path: Path | str, reason: str) -> None:
        self.skipped.append((str(path), reason))

    def summary(self) -> str:
        by_q = Counter(QUADRANTS[c.quadrant] if c.quadrant is not None else "none"
                       for c in self.clips)
        by_split = Counter(c.split for c in self.clips)
        lines = [f"{self.dataset}: {len(self.clips)} clips {dict(sorted(by_q.items()))} "
                 f"{dict(sorted(by_split.items()))}, {len(self.skipped)} skipped"]
        shown = self.skipped[:MAX_SKIPS_LISTED]  # a half-extracted EMOPIA skips 982 files
        lines += [f"  skipped {p}: {r}" for p, r in shown]
        if len(self.skipped) > len(shown):
            reasons = Counter(r for _p, r in self.skipped[len(shown):])
            lines += [f"  ... and {n} more skipped: {r}" for r, n in reasons.most_common()]
        if self.unlisted:
            lines.append(f"  {self.unlisted} MIDI file{'s' if self.unlisted > 1 else ''} in the "
                         "folder with no row in the CSV (not used)")
        lines += [f"  {text}" for text in self.moved]
        lines += [f"warning: {text}" for text in self.warnings]
        return "\n".join(lines)


def _hash_split(song: str, val_fraction: float) -> str:
    """Deterministic song-level split: a song hashes to val with probability val_fraction."""
    digest = int(hashlib.sha1(song.encode("utf-8")).hexdigest()[:8], 16)
    return "val" if digest / 0xFFFFFFFF < val_fraction else "train"


def song_for_validation(songs: Iterable[str]) -> str | None:
    """The song that goes to validation when none hashed there: the lowest hash of two or more
    songs (None for fewer)."""
    distinct = set(songs)
    if len(distinct) < 2:
        return None
    return min(distinct, key=lambda song: hashlib.sha1(song.encode("utf-8")).hexdigest())


def _ensure_val_song(report: LoadReport) -> None:
    """With two or more songs and none hashed to validation, song_for_validation goes there,
    so that small collections still get a validation split (whole songs only)."""
    chosen = song_for_validation(c.song for c in report.clips)
    if chosen is None or any(c.split == "val" for c in report.clips):
        return
    for clip in report.clips:
        if clip.song == chosen:
            clip.split = "val"


def _read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file, column names and cells stripped of spaces. A UTF-8 byte-order
    mark (Excel's "CSV UTF-8") is allowed. DataError naming the file for text that is not UTF-8,
    a line the csv module cannot read, or a cell running over several lines (an unclosed quote,
    which would swallow the rows after it)."""
    return _read_table(path)[1]


def _read_table(path: Path, fold_case: bool = False) -> tuple[list[str], list[dict[str, str]], list[int]]:
    """``(column names, rows, each row's line number in the file)`` of a CSV file, as
    :func:`_read_csv` reads it; blank lines, which the csv module skips, are counted. With
    ``fold_case`` the column names are lower-cased (a generic CSV's: a spreadsheet's
    ``Path,Emotion`` header was refused), and a name repeated in any case is refused."""
    lines: list[int] = []
    if not path.is_file():
        raise DataError(f"{path} not found" if not path.exists() else f"{path} is not a file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            def column(name: str | None) -> str:
                name = (name or "").strip()
                return name.lower() if fold_case else name

            columns = [column(name) for name in reader.fieldnames or []]
            repeated = sorted({name for name in columns if columns.count(name) > 1})
            if repeated:  # DictReader keeps the last: labels went with another column's files
                raise DataError(f"{path} names the column{'s' if len(repeated) > 1 else ''} "
                                f"{', '.join(map(repr, repeated))} more than once"
                                f"{' (in any case)' if fold_case else ''}; keep one")
            rows = []
            ended = reader.line_num  # the line the previous row (here the header) ended on
            for row in reader:
                rows.append({column(key): value.strip() if isinstance(value, str) else value
                             for key, value in row.items()})
                # The line the row starts on: line_num is where it ends, later by the line
                # breaks inside its quoted cells (one more for a quote left open at the end of
                # the file), and after the blank lines the csv module skips.
                breaks = sum(cell.count("\n") for cell in row.values() if isinstance(cell, str))
                lines.append(max(ended + 1, reader.line_num - breaks))
                ended = reader.line_num
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text ({_first_bad_byte(path)}); save it as UTF-8") from None
    except csv.Error as err:
        raise DataError(f"{path} line {reader.line_num}: {err} (an unclosed quote?)") from None
    for number, row in zip(lines, rows):
        if any(isinstance(cell, str) and "\n" in cell for cell in row.values()):
            raise DataError(f"{path} line {number}: a cell runs over several lines (an unclosed "
                            "quote?); the rows after it would be lost")
    return columns, rows, lines


def _first_bad_byte(path: Path) -> str:
    """Where ``path``'s first byte that is not UTF-8 is, as a user finds it: "line 8, byte 0xe9"
    (the reader's own error counts from the start of a buffered chunk, not of the file)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        start = err.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        before = data[:start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")  # CR alone: old Mac CSV
        line = before.count(b"\n") + 1
        return f"line {line}, byte 0x{data[start]:02x}"
    return "a byte that is not UTF-8"


#: EMOPIA validation clips that hold a second transcription of part of a training clip (the same
#: audio: the same pitches for 18-42 notes in a row, onsets within 5 ms; song Ie5koh4qvJc is a
#: compilation), so that scoring on them scored training music (helper-52, 2026-12-07;
#: docs/evaluation/discussion.md, "The same music on both sides of EMOPIA's split"). Each is
#: left out where its training clip is in the data too.
EMOPIA_REPEATS = {"Q4_Ie5koh4qvJc_16": "Q4_FoTXpYZXxJs_0", "Q4_Ie5koh4qvJc_17": "Q4_FoTXpYZXxJs_1",
                  "Q4_Ie5koh4qvJc_28": "Q4_jO2zX6Ul8GM_2"}


def load_emopia(root: Path | str | None = None) -> LoadReport:
    root = Path(root) if root else DEFAULT_DATA / "emopia"
    report = LoadReport("EMOPIA")
    labels = _emopia_labels(root / "label.csv", report) if (root / "label.csv").is_file() else {}
    split_of: dict[str, str] = {}
    for split in ("train", "val"):
        csv_path = root / f"{split}_clip.csv"
        if csv_path.is_file():
            split_of.update({Path(r["clip_name"]).stem: split for r in _read_csv(csv_path)})
    files = _midi_files(root / "midis")
    present = {path.stem for path in files}
    for clip_id in sorted((set(labels) | set(split_of)) - present):  # a half-extracted EMOPIA
        report.skip(root / "midis" / f"{clip_id}.mid", "listed in the CSVs but missing from midis/")
    for path in files:
        stem = path.stem
        if EMOPIA_REPEATS.get(stem) in present:
            report.skip(path, f"part of it is training clip {EMOPIA_REPEATS[stem]} transcribed again "
                              "(EMOPIA holds that performance twice, across its split)")
            continue
        parts = stem.split("_")
        prefix_q = int(parts[0][1]) - 1 if parts[0] in QUADRANTS else None
        quadrant = labels.get(stem, prefix_q)
        if quadrant is None or not 0 <= quadrant < 4:
            report.skip(path, "no quadrant in label.csv or file-name prefix")
            continue
        song = "_".join(parts[1:-1]) if len(parts) >= 3 else stem
        split = split_of.get(stem) or _hash_split(song, 0.12)
        report.clips.append(Clip(path, song, "EMOPIA", quadrant, split))
    _check_song_splits(report)
    return report


def _midi_files(folder: Path) -> list[Path]:
    """The MIDI files directly in ``folder`` (.mid or .midi, any case), sorted."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".mid", ".midi") and p.is_file())


def _emopia_labels(path: Path, report: LoadReport) -> dict[str, int]:
    """EMOPIA's label.csv: clip ID -> quadrant index. A row whose 4Q is not 1..4 is skipped
    (named with its line; the clip's file-name prefix then decides); DataError without the
    ID and 4Q columns."""
    columns, rows, lines = _read_table(path)
    if not {"ID", "4Q"} <= set(columns):
        raise DataError(f"{path} needs columns 'ID' and '4Q'; its columns are {columns}")
    labels: dict[str, int] = {}
    first_line: dict[str, int] = {}
    for number, row in zip(lines, rows):
        quadrant = row.get("4Q") or ""
        if quadrant not in ("1", "2", "3", "4") or not row.get("ID"):
            report.skip(f"{path} line {number}", f"4Q must be 1..4 and ID given, got {quadrant!r}; "
                                                 "the clip's file-name prefix is used instead")
            continue
        if row["ID"] in labels:  # the last row won, silently, over the first and the prefix
            report.skip(f"{path} line {number}", f"{row['ID']} listed again (first on line "
                                                 f"{first_line[row['ID']]}); the first row is used")
            continue
        labels[row["ID"]] = int(quadrant) - 1
        first_line[row["ID"]] = number
    return labels


def _check_song_splits(report: LoadReport) -> None:
    """Move clips so that no song straddles splits (the song's majority split wins; a tie goes
    to the split of its first clip), each move said in the report."""
    votes: dict[str, Counter] = {}
    for clip in report.clips:
        votes.setdefault(clip.song, Counter())[clip.split] += 1
    for song, count in votes.items():
        if len(count) > 1:
            winner, won = count.most_common(1)[0]
            loser = next(split for split in count if split != winner)
            report.moved.append(f"song {song!r} had clips in both splits: its {count[loser]} "
                                f"{loser} clip{'s' if count[loser] > 1 else ''} moved to {winner} "
                                f"(its {won} other{'s' if won > 1 else ''})")
    for clip in report.clips:
        clip.split = votes[clip.song].most_common(1)[0][0]


def quadrant_from_va(valence: str, arousal: str) -> int:
    """Quadrant index of a (valence, arousal) pair; ValueError if not numbers in [-1, 1] or 0."""
    v, a = float(valence), float(arousal)
    if v == 0.0 or a == 0.0:
        raise ValueError(f"valence/arousal ({v}, {a}) lies on an axis: no quadrant")
    weights = from_valence_arousal(v, a)
    return int(np.argmax(weights))


def _listed_again(report: LoadReport, first_row: dict[Path, int], path: Path, number: int) -> bool:
    """Whether CSV line ``number`` names a file an earlier usable row named (then skipped, named
    with both lines: a file is used once, with its first usable row; twice would weigh it
    double or teach it two emotions); else records this as its row. Called once a row's label
    and file are known to be good, so a file whose first row was refused is used with a later
    one (the report said "the first row is used" of a row that was not)."""
    first = first_row.setdefault(path.resolve(), number)
    if first != number:
        report.skip(path, f"listed again on line {number} (first on line {first}); the first "
                          "row is used")
    return first != number


def _generic_quadrant(row: dict[str, str]) -> int:
    """The quadrant index of a generic CSV row: its emotion name, else valence and arousal;
    ValueError saying what is missing or wrong."""
    if row.get("emotion"):
        try:
            return QUADRANTS.index(quadrant_of(row["emotion"]))
        except ValueError:  # not the 17 known names on every such row: `--list-emotions` has them
            raise ValueError(f"unknown emotion {row['emotion']!r} (one name a row, as "
                             "`emolive --list-emotions` lists them)") from None
    if row.get("valence") and row.get("arousal"):
        return quadrant_from_va(row["valence"], row["arousal"])
    raise ValueError("no emotion given (an empty cell)" if "emotion" in row else
                     "valence and arousal must both be given")


def load_vgmidi(root: Path | str | None = None, csv_name: str = "vgmidi_labelled.csv",
                val_fraction: float = 0.12) -> LoadReport:
    root = Path(root) if root else DEFAULT_DATA / "vgmidi"
    report = LoadReport("VGMIDI")
    columns, rows, lines = _read_table(root / csv_name)
    first_row: dict[Path, int] = {}
    for number, row in zip(lines, rows):
        path = root / row.get("midi", "")
        try:
            quadrant = quadrant_from_va(row["valence"], row["arousal"])
        except (KeyError, TypeError, ValueError) as err:
            report.skip(path, f"bad label: {err}")
            continue
        if not row.get("midi") or not path.is_file():
            report.skip(f"{root / csv_name} line {number}" if not row.get("midi") else path,
                        "file listed in CSV not found")
            continue
        if _listed_again(report, first_row, path, number):
            continue
        song = f"{row.get('game', '')}/{row.get('piece', path.stem)}"
        report.clips.append(Clip(path, song, "VGMIDI", quadrant, _hash_split(song, val_fraction)))
    _ensure_val_song(report)
    return report


def load_generic(folder: Path | str, csv_path: Path | str, val_fraction: float = 0.12,
                 name: str = "generic") -> LoadReport:
    """A folder plus a CSV (``path`` and ``emotion`` or ``valence``/``arousal``; optional
    ``song`` for song-level splits, else each file is its own song (:func:`_file_song`);
    optional ``split``, ``train`` or ``val`` in any case, else songs are split by a hash of
    their name)."""
    folder, csv_path = Path(folder), Path(csv_path)
    if not folder.is_dir():
        raise DataError(f"the folder {folder} (--generic-folder) "
                        + ("is not a folder" if folder.exists() else "does not exist"))
    report = LoadReport(name)
    columns, rows, lines = _read_table(csv_path, fold_case=True)
    if "path" not in columns or not ("emotion" in columns or {"valence", "arousal"} <= set(columns)):
        raise DataError(f"{csv_path} needs a 'path' column and an 'emotion' column or 'valence' and "
                        f"'arousal' columns; its columns are {columns}")
    first_row: dict[Path, int] = {}  # a file's first usable row (CSV line numbers, header = 1)
    rated: list[tuple[float, float]] = []  # (valence, arousal) of the clips labelled by them
    named = {(folder / row["path"]).resolve() for row in rows if row.get("path")}
    for number, row in zip(lines, rows):
        if not row.get("path"):
            report.skip(f"{csv_path} line {number}", "no path given (an empty cell)")
            continue
        path = folder / row["path"]
        try:
            quadrant = _generic_quadrant(row)
        except (TypeError, ValueError) as err:
            report.skip(path, f"line {number}: missing or bad label: {err}")
            continue
        if not path.is_file():
            found, hint = _same_name_differently_written(path)
            if found is None:
                report.skip(path, f"file listed in CSV not found{hint}")
                continue
            path = found
        if _listed_again(report, first_row, path, number):
            continue
        song = row.get("song") or _file_song(path, folder)
        split = (row.get("split") or "").lower() or _hash_split(song, val_fraction)
        if split not in ("train", "val"):
            report.skip(path, f"split must be 'train' or 'val', got {row.get('split')!r}")
            continue
        report.clips.append(Clip(path, song, name, quadrant, split))
        if not row.get("emotion"):
            rated.append((float(row["valence"]), float(row["arousal"])))
    _warn_of_a_positive_scale(report, rated, csv_path)
    _check_song_splits(report)
    if not all(row.get("split") for row in rows):  # a split given for every row is the user's
        _ensure_val_song(report)
    named |= {clip.path.resolve() for clip in report.clips}  # found under another normalisation
    report.unlisted = sum(1 for path in folder.rglob("*") if path.suffix.lower() in (".mid", ".midi")
                          and path.is_file() and path.resolve() not in named)
    return report


def _same_name_differently_written(path: Path) -> tuple[Path | None, str]:
    """For a CSV path that names no file: the file its folder holds under the same name in
    another Unicode normalisation (a Mac writes names decomposed, a CSV typed elsewhere
    composed); else None and the likely cause to add to "not found" (a Windows ``\\``, a file
    whose name differs in case), "" when none is seen. A Windows-made CSV lost every row to a
    bare "not found" (helper-61)."""
    if "\\" in str(path):
        return None, " (its path holds a '\\': write folders with '/')"
    wanted = unicodedata.normalize("NFC", path.name)
    try:
        names = [entry.name for entry in path.parent.iterdir()] if path.parent.is_dir() else []
    except OSError:
        names = []
    same = [name for name in names if unicodedata.normalize("NFC", name) == wanted]
    if len(same) == 1 and (path.parent / same[0]).is_file():
        return path.parent / same[0], ""
    cased = [name for name in names if unicodedata.normalize("NFC", name).casefold() == wanted.casefold()]
    if cased:
        return None, f" ({cased[0]!r} is there: names are matched with their case)"
    return None, ""


def _warn_of_a_positive_scale(report: LoadReport, rated: list[tuple[float, float]], csv_path: Path) -> None:
    """A warning when no clip labelled by valence and arousal has either below 0: the columns
    are read on -1..1, the signs choosing the quadrant, so ratings on 0..1 (or 1..9, whose rows
    above 1 are refused one by one) made every clip Q1 (happy) without a word (helper-61)."""
    if rated and min(min(pair) for pair in rated) > 0:
        report.warnings.append(
            f"no valence or arousal in {csv_path} is below 0, so all {len(rated)} clips labelled by them "
            "are Q1 (happy): the columns are read on a -1..1 scale, their signs choosing the quadrant; "
            "ratings on 0..1 or 1..9 must be moved to -1..1 first (e.g. 2 * v - 1, or (v - 5) / 4)")


def _file_song(path: Path, folder: Path) -> str:
    """The song of a file without a ``song`` column: the file itself, by its path in the folder
    without the suffix (``a/intro`` and ``b/intro`` are two songs), as unlabelled folders name
    theirs. So clips of one song in several files need a ``song`` column to stay together."""
    try:
        return str(path.resolve().relative_to(folder.resolve()).with_suffix(""))
    except ValueError:  # a row that names a file outside the folder
        return str(path.resolve().with_suffix(""))


def load_unlabelled(folder: Path | str, name: str = "unlabelled",
                    val_fraction: float = 0.05) -> LoadReport:
    folder = Path(folder)
    report = LoadReport(name)
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    for path in paths:
        song = str(path.relative_to(folder).with_suffix(""))
        report.clips.append(Clip(path, song, name, None, _hash_split(song, val_fraction)))
    _ensure_val_song(report)
    return report
