"""`emolive generate`: the engine's offline generation written to MIDI, WAV and PNG files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import mido

from emolive import files
from emolive.cli_options import UsageError, check_key, open_engine, start_emotion
from emolive.emotions import Weights, describe


def run_generate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Generate ``--bars`` bars and write every file asked for; returns the exit status."""
    if not (args.output or args.render or args.plot):
        raise UsageError("nothing to write: give -o FILE.mid, --render FILE.wav and/or --plot FILE.png")
    check_key(args, parser)
    emotion = start_emotion(args, parser)
    for path in (args.output, args.render, args.plot):
        if path and not Path(path).parent.is_dir():
            raise UsageError(f"folder {str(Path(path).parent)!r} does not exist (for {path!r})")
        if path and Path(path).is_dir():
            raise UsageError(f"{path!r} is a folder; give a file name such as {path.rstrip('/')}/out.mid")
    if args.morph_to is not None and args.morph_bars is not None and args.morph_bars > args.bars:
        raise UsageError(f"--morph-bars ({args.morph_bars}) is longer than --bars ({args.bars})")

    engine = open_engine(args)
    try:
        if args.key:
            engine.set_key(args.key, args.scale)
        midi = generate_midi(engine, args, emotion)
    finally:
        engine.close()
    notes = len(files.note_spans(midi))
    label = describe(emotion) + (f" -> {describe(args.morph_to)}" if args.morph_to is not None else "")
    print(f"generated {args.bars} bars of {label}: {notes} notes, {midi.length:.1f} s")
    if args.output:
        print(f"wrote {files.write_midi(midi, args.output)}")
    if args.render:
        print(f"wrote {files.render_wav(midi, args.render, soundfont=args.soundfont)}")
    if args.plot:
        print(f"wrote {files.plot_piano_roll(midi, args.plot, title=f'emolive: {label}')}")
    return 0


def generate_midi(engine: Any, args: argparse.Namespace, emotion: Weights) -> mido.MidiFile:
    """The engine's offline generation; with --morph-to the emotion glides over --morph-bars
    (default: the whole file)."""
    if args.morph_to is None:
        return engine.generate(args.bars, emotion=emotion, seed=args.seed)
    return engine.generate(args.bars, emotion=emotion, seed=args.seed,
                           morph_to=args.morph_to, morph_bars=args.morph_bars)
