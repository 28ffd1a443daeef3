"""`emolive generate`: the engine's offline generation written to MIDI, WAV and PNG files."""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import mido

from emolive import files
from emolive.arguments import STEPS_PER_BAR, STEPS_PER_BEAT
from emolive.cli_options import (FILLED_STANDARD_DESCRIPTORS, MAX_CLI_SEED, UsageError, check_key, open_engine,
                                 nan_onsets_warning, silence, start_emotion, stoppable)
from emolive.emotions import Weights, describe_as_asked
from emolive.engine import MAX_GENERATE_BARS
from emolive.ports import shown  # control characters escaped (-o $'x\e[2J.mid' cleared the screen)
from emolive.safe_write import replaced_together

if TYPE_CHECKING:
    from emolive.engine import Engine

SUFFIXES = {"-o": ".mid", "--render": ".wav", "--plot": ".png"}  # for messages
#: The file name suffixes -o and --render take (files.misnamed's rule); --plot's come from matplotlib.
WRITTEN_AS = {"-o": files.MIDI_SUFFIXES, "--render": files.WAV_SUFFIXES}


def _as_asked(emotion: Weights) -> str:
    """An emotion for the summary line: an alias as given, with its quadrant (``excited (happy)``)."""
    return describe_as_asked(getattr(emotion, "asked", ""), emotion)


def run_generate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Generate ``--count`` pieces of ``--bars`` bars and write every file asked for (numbered
    when there are several); returns the exit status (128 + N when signal N ended it)."""
    return stoppable(lambda: _generate_and_write(args, parser))


def _generate_and_write(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not (args.output or args.render or args.plot):
        raise UsageError("nothing to write: give -o FILE.mid, --render FILE.wav and/or --plot FILE.png")
    _dash_is_standard_output(args)
    _check_soundfont_option(args)
    args.seed = _first_seed(args.seed, args.count)
    check_key(args, parser)
    emotion = start_emotion(args, parser)
    check_outputs(args)
    if args.morph_to is not None and args.morph_bars is not None and args.morph_bars > args.bars:
        raise UsageError(f"--morph-bars ({args.morph_bars}) is longer than --bars ({args.bars})")
    if args.count * args.bars > MAX_GENERATE_BARS:
        raise UsageError(f"--count x --bars is {args.count * args.bars} bars; at most "
                         f"{MAX_GENERATE_BARS} bars in all per run")
    if args.render:
        beats = args.bars * STEPS_PER_BAR / STEPS_PER_BEAT
        files.check_wav_fits(beats * 60.0 / args.bpm)  # 10,000 bars below 99.1 BPM do not
        files.find_renderer(args.soundfont)  # a missing FluidSynth or a bad soundfont, before generating

    engine = open_engine(args)
    try:
        if args.key:
            engine.set_key(args.key, args.scale)
        pieces = generate_midi(engine, args, emotion)
        stats = engine.stats()
        nonfinite = stats["nonfinite_steps"]
    finally:
        engine.close()
    if nonfinite:  # a broken model's silence was said nowhere (helper-65)
        print(nan_onsets_warning(nonfinite), file=sys.stderr)
    label = _as_asked(emotion) + (f" -> {_as_asked(args.morph_to)}" if args.morph_to is not None else "")
    say = Messages(args.output, args.render, args.plot)
    for index, midi in enumerate(pieces):
        notes = len(files.note_spans(midi))
        bars = f"{args.bars} bar{'s' if args.bars != 1 else ''}"
        # The temperature too: the card's default changed once (1.3 -> 1.4), and a seed of the
        # day before then gave other notes with nothing saying why (helper-83).
        say(f"generated {bars} of {label}: {notes} notes, {midi.length:.1f} s, seed {args.seed + index}, "
            f"temperature {stats['temperature']:g}")
        output, render, plot = (numbered(path, index, len(pieces))
                                for path in (args.output, args.render, args.plot))
        written: list[Path] = []
        with replaced_together():  # a take's files all or none (a full disk at the WAV: helper-84)
            if output:
                written.append(files.write_midi(midi, output))
            if render:
                written.append(files.render_wav(midi, render, soundfont=args.soundfont))
            if plot:
                written.append(files.plot_piano_roll(midi, plot, title=f"emolive: {label}"))
        for path in written:
            say(f"wrote {shown(str(path))}")
    return 0


def _dash_is_standard_output(args: argparse.Namespace) -> None:
    """``-o -`` (and ``--render -``, ``--plot -``) write to standard output, as the Unix
    convention has it (before, a file named "-" was written); not to a terminal."""
    for option in ("output", "render", "plot"):
        if getattr(args, option) == "-":
            flag = "-o" if option == "output" else f"--{option}"
            if 1 in FILLED_STANDARD_DESCRIPTORS or not os.path.exists("/dev/stdout"):
                raise UsageError(f"{flag} -: standard output is closed or this system has no "
                                 "/dev/stdout; give a file name")
            if _is_a_terminal(1):  # binary bytes would garble it (gzip refuses the same; helper-73)
                raise UsageError(f"{flag} -: standard output is a terminal, which would show the "
                                 f"file's bytes; redirect it (> take{SUFFIXES[flag]}), pipe it, "
                                 "or give a file name")
            setattr(args, option, "/dev/stdout")


def _is_a_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _check_soundfont_option(args: argparse.Namespace) -> None:
    """--soundfont only with --render, and naming something (an empty name was taken for none)."""
    if args.soundfont is None:
        return
    if not args.render:
        raise UsageError("--soundfont is for --render: give --render FILE.wav too, or leave --soundfont out")
    if not args.soundfont.strip():
        raise UsageError("--soundfont is an empty name; give a soundfont file (.sf2), or leave it out "
                         "for $EMOLIVE_SOUNDFONT or the system's General MIDI one")


def _first_seed(seed: int | None, count: int) -> int:
    """Piece i's seed is this + i, all within --seed's range, so that any piece can be made
    again alone (``--seed`` is printed with each). None: a random one that leaves room."""
    last_allowed = MAX_CLI_SEED - (count - 1)
    if seed is None:
        return random.SystemRandom().randint(0, last_allowed)
    if seed > last_allowed:
        raise UsageError(f"--seed {seed} with --count {count} would give piece {count} the seed "
                         f"{seed + count - 1}, over the largest, {MAX_CLI_SEED}; give --seed {last_allowed} or less")
    return seed


class Messages:
    """The command's progress lines: on stdout, or on stderr when stdout is one of the files
    written (``-o /dev/stdout | ...``); none when both are (they would go into the music). A
    reader that goes away (``| head -1``), or a full disk under a log file, ends the lines, not
    the command: every file is still written."""

    def __init__(self, *outputs: str | None) -> None:
        written = [path for path in outputs if path]
        free = [stream for stream in (sys.stdout, sys.stderr) if not any(_is_stream(path, stream) for path in written)]
        self.stream = free[0] if free else None
        self.closed = self.stream is None

    def __call__(self, line: str) -> None:
        if self.closed:
            return
        assert self.stream is not None
        try:
            print(line, file=self.stream, flush=True)
        except OSError:  # its reader went away, or its file's disk is full: the files come first
            self.closed = True
            silence(self.stream)


def _is_stream(path: str, stream: Any) -> bool:
    """Whether ``path`` names the file ``stream`` (sys.stdout, sys.stderr) writes to."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(stream.fileno()))
    except (OSError, ValueError, AttributeError):  # no such file yet, or no such stream
        return False


def check_outputs(args: argparse.Namespace) -> None:
    """Before generating: every file the command is to write (each numbered one with --count)
    can be written, no two of them are the same file, none is a file the command reads (the
    soundfont, the model's), and --plot's format can be drawn."""
    written_by: dict[str, str] = {}
    read = _files_read(args)
    for option, path in (("-o", args.output), ("--render", args.render), ("--plot", args.plot)):
        if not path:
            continue
        try:
            _check_output(option, path, args, read, written_by)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            raise UsageError(f"{option} {path!r}: the name is too long for the file system") from None
    if args.plot:
        files.check_plotting(args.plot)


def _check_output(option: str, path: str, args: argparse.Namespace,
                  read: dict[tuple[int, int] | None, str], written_by: dict[str, str]) -> None:
    """check_outputs' checks of one option's file(s); ``written_by`` collects the paths."""
    if not os.path.islink(path):  # a link's file: below, after the files this command reads
        _check_name(option, path)
    name = Path(path).name
    if re.fullmatch(r"\.+[^.]+", name) and not files.is_stream(path):
        # ".mid", "..mid": a hidden file, and numbered ".mid-1", which the MIDI writer then
        # refused as misnamed after generating (helper-73, helper-75)
        raise UsageError(f"{option} {path!r} is only a suffix; give a name before it, such as "
                         f"{str(Path(path).with_name('take.' + name.lstrip('.')))!r}")
    if Path(path).is_dir() or path.endswith(("/", os.sep)):  # with a name to use instead
        raise UsageError(f"{option} {path!r} is a folder; give a file name such as "
                         f"{path.rstrip('/' + os.sep)}/out{SUFFIXES[option]}")
    if args.count > 1 and files.is_stream(path):  # out.mid -> out-1.mid: a stream has no such name
        raise UsageError(f"{option} {path!r} is a stream (a device, a pipe, standard output), "
                         f"which cannot take {args.count} numbered files; give a file name "
                         f"such as take{SUFFIXES[option]} (written as take-1{SUFFIXES[option]}, ...)")
    for index in range(args.count):
        each = numbered(path, index, args.count)
        files.check_writable(each)  # a missing or unwritable folder fails now, not after generating
        if _identity(each) in read:
            raise UsageError(f"{option} {each!r} is {read[_identity(each)]}, which this command "
                             "reads; give another file")
        _check_name(option, each)  # a (numbered) name may be a link to a file of another format
        same = written_by.setdefault(os.path.realpath(each), option)
        if same != option:
            raise UsageError(f"{same} and {option} would both write {each!r}; give each its own file")


def _check_name(option: str, path: str) -> None:
    """UsageError for a name the option's format does not take, or a link there to a file
    named for another format (take.mid -> song.wav; a plot's too: --plot pr.png -> song.wav
    wrote a PNG into the WAV; helper-73, helper-75)."""
    if option in WRITTEN_AS:
        kind = "MIDI files are" if option == "-o" else "audio is"
        try:
            files.check_suffix(path, WRITTEN_AS[option], kind)
        except ValueError as err:
            raise UsageError(f"{option} {err}") from None
    elif (target := files.link_leads_elsewhere(path, (Path(path).suffix.lower(),))) is not None:
        raise UsageError(f"{option} {path!r} is a link to {target!r}, a file named for another "
                         "format; give another name, or remove the link")
    else:  # --plot: with no suffix, matplotlib draws a PNG
        try:
            files.check_no_other_data(path, (".png",))
        except ValueError as err:
            raise UsageError(f"{option} {err}") from None


def _identity(path: str | Path) -> tuple[int, int] | None:
    """The file ``path`` names (device and inode, links followed), None when there is none."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _files_read(args: argparse.Namespace) -> dict[tuple[int, int] | None, str]:
    """The files the command reads, by identity: the model folder's and, with --render, the
    soundfont (one the render check will refuse anyway is left out)."""
    from emolive.engine import DEFAULT_MODEL_DIR

    model = Path(args.model) if args.model else DEFAULT_MODEL_DIR
    read = {_identity(f): f"the model's {f.name}" for f in _model_files(model)}
    if args.render:
        try:
            read[_identity(files.find_soundfont(args.soundfont))] = "the soundfont"
        except files.RenderError:
            pass
    read.pop(None, None)
    return read


def _model_files(model: Path) -> list[Path]:
    """The files of the model folder; for a folder that may be entered but not listed, those
    its card names (listing it failed with a bare "[Errno 13] Permission denied")."""
    try:
        return list(model.iterdir()) if model.is_dir() else []
    except OSError:
        try:
            card = json.loads((model / "model_card.json").read_text(encoding="utf-8"))
            names = [name for name in card.get("files", {}).values() if isinstance(name, str)]
        except (OSError, ValueError, AttributeError):
            names = []
        return [model / name for name in ["model_card.json", *names]]


def generate_midi(engine: Engine, args: argparse.Namespace, emotion: Weights) -> list[mido.MidiFile]:
    """The engine's offline generation, ``--count`` pieces decoded together (piece i with the
    engine's seed + i); with --morph-to the emotion glides over --morph-bars (default: the
    whole file)."""
    if args.morph_to is None:
        return engine.generate_many(args.count, args.bars, emotion=emotion)
    return engine.generate_many(args.count, args.bars, emotion=emotion,
                                morph_to=args.morph_to, morph_bars=args.morph_bars)


@overload
def numbered(path: str, index: int, count: int) -> str: ...
@overload
def numbered(path: None, index: int, count: int) -> None: ...


def numbered(path: str | None, index: int, count: int) -> str | None:
    """``path`` for piece ``index`` (from 0) of ``count``: itself for a single piece, else
    numbered before the suffix (out.mid -> out-1.mid ... out-12.mid, padded: out-01.mid)."""
    if path is None or count == 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{index + 1:0{len(str(count))}d}{p.suffix}"))
