"""Command-line options of `emolive`: parsers, and value types that say what is allowed.

Every value is checked here, so a bad one ends in argparse's usage error (exit status 2) with a
message naming the allowed range, never in a traceback from deep inside the engine.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from emolive.arguments import BPM_RANGE, TEMPERATURE_RANGE  # noqa: F401 (the CLI's, from the API's)
from emolive.emotions import QUADRANT_NAMES, QUADRANTS, Weights, known_emotions, parse_emotion
from emolive.ports import shown

#: Signals that stop the command cleanly rather than kill it: live play ends every note (the
#: signals whose default would kill with notes sounding), `generate` gives its files up. SIGINT
#: and SIGQUIT come from the keyboard (Ctrl-C, Ctrl-\); a second one of those is not caught.
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGXCPU",
                "SIGBREAK")  # Windows' Ctrl-Break (the POSIX ones it lacks are skipped; helper-67)
#: Of STOP_SIGNALS, those a second time gets the handler from before back (Python's
#: KeyboardInterrupt, the default core dump): the user's way out of a stop that does not end.
KEYBOARD_STOP_SIGNALS = ("SIGINT", "SIGQUIT", "SIGBREAK")


#: Standard descriptors (0-2) the command found closed (``>&-``) and opened on /dev/null; a
#: ``-o -`` then has no standard output to write to, though /dev/stdout exists.
FILLED_STANDARD_DESCRIPTORS: set[int] = set()


def stop_signals_to_catch() -> list[signal.Signals]:
    """STOP_SIGNALS this platform has, less those inherited ignored (``nohup emolive`` ignores
    SIGHUP; a supervisor may ignore others): those stay ignored. SIGINT and SIGTERM are caught
    even so (a script's background job inherits SIGINT ignored, and must still stop on it)."""
    caught = []
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)  # no SIGHUP, SIGQUIT, ... on Windows
        if number is None:
            continue
        if name not in ("SIGINT", "SIGTERM") and signal.getsignal(number) is signal.SIG_IGN:
            continue
        caught.append(number)
    return caught


class Terminated(BaseException):
    """A stop signal other than Ctrl-C's (SIGTERM, SIGHUP when the terminal closes, SIGQUIT,
    SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU: ``STOP_SIGNALS``) while a command that writes files runs
    (`emolive generate`, the training commands), raised in the main thread as Ctrl-C's
    KeyboardInterrupt is, so that a file being written or rendered is given up cleanly (its
    temporary folder removed, FluidSynth stopped: subprocess.run kills its child on any
    exception). ``status`` is 128 + the signal's number, as shells report it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.status = 128 + signum


@contextmanager
def _stopped_by_termination() -> Iterator[None]:
    """The stop signals but SIGINT (KeyboardInterrupt) raise Terminated while the block runs (main
    thread only). One inherited ignored (``nohup``) stays ignored, SIGTERM's excepted."""

    def stop(signum: int, _frame: Any) -> None:
        raise Terminated(signum)

    before = {}
    for number in stop_signals_to_catch():
        if number == signal.SIGINT:
            continue
        try:
            before[number] = signal.signal(number, stop)
        except ValueError:  # not the main thread: signals stay as they are
            break
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def stoppable(work: Callable[[], int]) -> int:
    """``work()``'s exit status, or 128 + N when stop signal N (Ctrl-C's excepted: that is
    KeyboardInterrupt) ended it; files being written are given up as on Ctrl-C (helper-84:
    SIGTERM killed `evaluate` and `export` outright, leaving their temporary folders and an
    orphaned FluidSynth)."""
    try:
        with _stopped_by_termination():
            return work()
    except Terminated as stopped:
        return stopped.status


MAX_CLI_SEED = 2**63 - 1  # --seed's range: 0..2**63-1 (a signed 64-bit integer, as other tools take)

DEFAULT_EMOTION = "calm"
#: MIDI channels are 1..16 on command lines (0..15 only inside messages).
CHANNELS = (1, 16)
#: General MIDI programs are 1..128 on command lines ("1 Acoustic Grand Piano").
PROGRAMS = (1, 128)
MAX_BARS = 10_000
MAX_COUNT = 1_000  # emolive generate --count
LIVE_MORPH_BARS = 4  # --morph-bars when live and not given


class UsageError(ValueError):
    """A command line that cannot work as given; the CLI prints it and exits with status 2."""


def nan_onsets_warning(steps: int) -> str:
    """What the live command and `generate` say of a model whose decoder gave NaN onsets in
    ``steps`` steps (``stats()["nonfinite_steps"]``): those keys played nothing (helper-65)."""
    return (f"emolive: warning: the model gave NaN onset probabilities in {steps} step(s), whose keys "
            "play nothing: it is broken for some input (emotion, key or latent point)")


def error_line(prog: str, message: object) -> int:
    """Print ``PROG: error: MESSAGE`` to stderr, worded as argparse words its own errors (its
    control characters escaped, as the ``emolive`` command's), and return the status of a
    command-line mistake (2)."""
    print(f"{prog}: error: {shown(str(message))}", file=sys.stderr)
    return 2


def silence(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at the null device, after its reader went away
    (BrokenPipeError): what is still printed, and Python's flush at exit, go nowhere."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, stream.fileno())
    os.close(null)


def number_in(low: float, high: float, what: str) -> Callable[[str], float]:
    """An argparse type: a finite float in [low, high]."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number from {low:g} to {high:g}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be from {low:g} to {high:g}, got {text}")
        return value
    return parse


def integer_in(low: int, high: int | None, what: str) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high] (``high`` None: at least ``low``)."""
    allowed = f"from {low} to {high}" if high is not None else f"at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number {allowed}, "
                                             f"got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{what} must be {allowed}, got {value}")
        return value
    return parse


class AskedEmotion(tuple):  # type: ignore[type-arg]
    """Quadrant weights (a Weights tuple) that keep the text asked for, ``asked``, so that a
    summary names an alias as given: ``excited (happy)`` (emotions.describe_as_asked)."""

    asked: str

    def __new__(cls, weights: Weights, asked: str) -> AskedEmotion:
        made = super().__new__(cls, weights)
        made.asked = asked
        return made


def emotion_type(text: str) -> Weights:
    """An argparse type: an emotion name or blend (``happy:0.7,calm:0.3``) -> quadrant weights
    (an AskedEmotion)."""
    try:
        return AskedEmotion(parse_emotion(text), text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (blends look like happy:0.7,calm:0.3; "
                                         "see emolive --list-emotions)") from None


def key_type(text: str) -> str:
    """An argparse type: a note name for --key (C, F#, Bb, ...)."""
    from emolive.scales import pitch_class

    try:
        pitch_class(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def scale_type(text: str) -> str:
    """An argparse type: a scale name for --scale (major, minor, dorian, ...)."""
    from emolive.scales import scale_mask

    try:
        scale_mask(None, text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def emotion_listing() -> str:
    """The text of `emolive --list-emotions`: each quadrant, its signs and its names."""
    signs = {"Q1": ("+", "+"), "Q2": ("-", "+"), "Q3": ("-", "-"), "Q4": ("+", "-")}
    lines = ["Emotions (quadrants of Russell's circumplex; names are case-insensitive):"]
    for quadrant in QUADRANTS:
        valence, arousal = signs[quadrant]
        lines.append(f"  {quadrant}  valence {valence} arousal {arousal}: "
                     + ", ".join(QUADRANT_NAMES[quadrant]))
    lines += ["Blend with weights: --emotion happy:0.7,calm:0.3 (weights are normalised).",
              "Or give a point: --valence V --arousal A, each from -1 to 1.",
              f"All names: {', '.join(known_emotions())}"]
    return "\n".join(lines)


def add_music_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by live play and `emolive generate`."""
    group = parser.add_argument_group("music")
    group.add_argument("--model", metavar="DIR", help="model directory (default: the bundled model)")
    group.add_argument("-e", "--emotion", type=emotion_type, metavar="E",
                       help=f"emotion name or blend, e.g. happy or happy:0.7,calm:0.3 "
                            f"(default {DEFAULT_EMOTION}; see --list-emotions)")
    group.add_argument("--valence", type=number_in(-1.0, 1.0, "valence"), metavar="V",
                       help="valence -1..1 (negative = sad/tense); instead of --emotion")
    group.add_argument("--arousal", type=number_in(-1.0, 1.0, "arousal"), metavar="A",
                       help="arousal -1..1 (negative = calm/sad); instead of --emotion")
    group.add_argument("--morph-to", type=emotion_type, metavar="E",
                       help="glide from the emotion to this one over --morph-bars bars")
    group.add_argument("--morph-bars", type=integer_in(1, MAX_BARS, "--morph-bars"), metavar="N",
                       help=f"bars the morph takes (default: {LIVE_MORPH_BARS} live, the whole file for generate)")
    group.add_argument("--bpm", type=number_in(*BPM_RANGE, "--bpm"), default=120.0,
                       help="tempo in beats per minute, 20..400 (default 120)")
    group.add_argument("--channel", type=integer_in(*CHANNELS, "--channel"), default=1, metavar="1-16",
                       help="MIDI channel 1..16 (default 1)")
    group.add_argument("--program", type=integer_in(*PROGRAMS, "--program"), metavar="1-128",
                       help="General MIDI program sent at start, 1..128 (1 = Acoustic Grand Piano)")
    group.add_argument("--temperature", type=number_in(*TEMPERATURE_RANGE, "--temperature"), default=None, metavar="T",
                       help="sampling temperature 0.05..5 (higher = more surprising; default: the model card's)")
    group.add_argument("--seed", type=integer_in(0, MAX_CLI_SEED, "--seed"),
                       help="random seed: the same seed and settings give the same notes")
    group.add_argument("--key", type=key_type, metavar="KEY",
                       help="play in a key, e.g. C, F#, Bb (the bundled model moves there and keeps "
                            "the mode the emotion gives)")
    group.add_argument("--scale", type=scale_type,
                       help="only start notes of this scale of --key: major, minor, dorian, "
                            "major_pentatonic, blues, ... (default: no lock; major for a model "
                            "trained in every key)")


def start_emotion(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Weights:
    """The emotion to start with, from --emotion or --valence/--arousal (not both)."""
    point_given = args.valence is not None or args.arousal is not None
    if point_given and args.emotion is not None:
        parser.error("give either --emotion or --valence/--arousal, not both")
    if point_given:
        return parse_emotion((args.valence or 0.0, args.arousal or 0.0))
    return args.emotion if args.emotion is not None else parse_emotion(DEFAULT_EMOTION)


def check_key(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """--scale without --key, or --morph-bars without --morph-to, mean nothing: say so."""
    if args.key is None and args.scale is not None:
        parser.error("--scale needs --key (e.g. --key A --scale minor)")
    if args.morph_bars is not None and args.morph_to is None:
        parser.error("--morph-bars needs --morph-to")


def open_engine(args: argparse.Namespace, **output: Any) -> Any:
    """An ``Engine`` with the music options of ``args`` and ``output`` (port, virtual, clock_out)."""
    from emolive import Engine, ModelError

    try:  # Engine matches the port before it loads the model: a wrong port is reported at once
        return Engine(model=args.model, bpm=args.bpm, channel=args.channel, seed=args.seed,
                      program=args.program, temperature=args.temperature, **output)
    except ModelError as exc:
        if args.model is None and "model=" in str(exc):  # the Python spelling of the advice
            raise ModelError(f"{exc} (on the command line: --model DIR)") from None
        raise


def live_parser() -> argparse.ArgumentParser:
    """`emolive [options]`: play live into a MIDI port until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="emolive",
        description="Play endless emotion-conditioned music into a MIDI port; steer it while it plays.",
        epilog="Other commands: emolive generate (write MIDI/WAV/PNG files), emolive train | export | "
               "evaluate | calibrate | recover (need the train extra). `emolive generate --help` for its options. "
               "Keys while playing: 1-4 emotions, / type an emotion, up/down tempo, left/right "
               "temperature, space pause, q quit, ? help.")
    out = parser.add_argument_group("output")
    where = out.add_mutually_exclusive_group()
    where.add_argument("-p", "--port", metavar="PORT",
                       help="MIDI output: exact name, case-insensitive substring, or index "
                            "(default: $EMOLIVE_PORT)")
    where.add_argument("--virtual", nargs="?", const="emolive", metavar="NAME",
                       help="open a virtual output port other programs connect to (default name emolive)")
    out.add_argument("--clock-out", action="store_true",
                     help="also send MIDI clock (24 per quarter note) with start and stop")
    add_music_options(parser)
    live = parser.add_argument_group("live control")
    live.add_argument("--glide-bars", type=integer_in(0, MAX_BARS, "--glide-bars"), default=2, metavar="N",
                      help="bars an emotion change from the keyboard glides over (0 = jump; default 2)")
    live.add_argument("--control-port", metavar="PORT",
                      help="MIDI input whose controllers steer valence and arousal")
    live.add_argument("--valence-cc", type=integer_in(0, 127, "--valence-cc"), default=20, metavar="CC",
                      help="controller for valence (default 20; 0..127 -> -1..1)")
    live.add_argument("--arousal-cc", type=integer_in(0, 127, "--arousal-cc"), default=21, metavar="CC",
                      help="controller for arousal (default 21; 0..127 -> -1..1)")
    live.add_argument("--control-channel", type=integer_in(*CHANNELS, "--control-channel"), metavar="1-16",
                      help="only listen to controllers on this channel (default: any)")
    live.add_argument("--sync", metavar="PORT",
                      help="follow the MIDI clock on this input: its tempo, start and stop")
    live.add_argument("--no-keys", action="store_true", help="no keyboard control even on a terminal")
    live.add_argument("--quiet", action="store_true",
                      help="no status line: only the banner, warnings, errors and the last line (for logs)")
    info = parser.add_argument_group("information")
    info.add_argument("--list-ports", action="store_true", help="list MIDI output and input ports, then exit")
    info.add_argument("--list-emotions", action="store_true", help="list emotion names by quadrant, then exit")
    info.add_argument("--version", action="store_true", help="print the version, then exit")
    return parser


def generate_parser() -> argparse.ArgumentParser:
    """`emolive generate`: write the music to files instead of a port."""
    parser = argparse.ArgumentParser(
        prog="emolive generate",
        description="Generate music offline (faster than real time) into MIDI, WAV and PNG files.",
        epilog="Example: emolive generate --emotion sad --bars 32 -o sad.mid --render sad.wav --plot sad.png")
    add_music_options(parser)
    files = parser.add_argument_group("files")
    files.add_argument("--bars", type=integer_in(1, MAX_BARS, "--bars"), default=16,
                       help=f"length in 4/4 bars, 1..{MAX_BARS} (default 16)")
    files.add_argument("--count", type=integer_in(1, MAX_COUNT, "--count"), default=1, metavar="N",
                       help=f"N pieces (seeds --seed, --seed+1, ...) decoded together, 1..{MAX_COUNT}; "
                            "files are numbered: out-1.mid, out-2.mid, ... (default 1)")
    files.add_argument("-o", "--output", metavar="FILE.mid", help="write a Standard MIDI File")
    files.add_argument("--render", metavar="FILE.wav",
                       help="render audio with FluidSynth and a General MIDI soundfont")
    files.add_argument("--soundfont", metavar="FILE.sf2",
                       help="soundfont for --render (default: $EMOLIVE_SOUNDFONT or the system GM one)")
    files.add_argument("--plot", metavar="FILE.png", help="draw a piano roll (needs emolive[plot])")
    return parser
