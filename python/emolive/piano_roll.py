"""Piano-roll pictures of MIDI files (matplotlib): beats across, pitch up, shade = velocity."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import mido

from emolive.midi_notes import NoteSpan, bar_beats, check_midi_file, length_beats, note_spans, time_signature
from emolive.safe_write import check_no_other_data, replaced_on_success


#: Beginnings of what matplotlib logs when it cannot make its config or cache folder (a
#: service's HOME that is not writable) and uses a temporary one instead: nothing is wrong
#: with the plot, and its advice (set MPLCONFIGDIR) was two lines of noise in `generate`.
_CACHE_FOLDER_NOTICES = ("mkdir -p failed for path", "Matplotlib created a temporary",
                         "%s is not a writable directory")  # a read-only MPLCONFIGDIR (helper-85)


def _not_a_cache_folder_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_CACHE_FOLDER_NOTICES)


def check_plotting(image_path: str | Path | None = None) -> None:
    """ImportError naming the extra to install when matplotlib, which plotting needs, is
    missing; ValueError when ``image_path``'s suffix names no image format it writes, or when it
    has none and is a file that holds no PNG."""
    logging.getLogger("matplotlib").addFilter(_not_a_cache_folder_notice)  # once: the same object
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'emolive[plot]'") from None
    except ValueError as err:  # matplotlib's import refuses an unknown backend in MPLBACKEND
        if "backend" not in str(err) or "MPLBACKEND" not in os.environ:
            raise
        raise ValueError(f"MPLBACKEND={os.environ['MPLBACKEND']!r} names no matplotlib backend, and "
                         "matplotlib will not load with it; unset it (emolive's plots need no "
                         "backend) or name one such as Agg") from None
    if image_path is not None:
        from matplotlib.backend_bases import FigureCanvasBase

        formats = FigureCanvasBase.get_supported_filetypes()
        if _image_format(image_path) not in formats:
            raise ValueError(f"{str(image_path)!r}: plots are written as "
                             + ", ".join(f".{kind}" for kind in sorted(formats)))
        _try_image_format(image_path)
        check_no_other_data(image_path, (".png",))  # no suffix: a PNG, over a PNG only


def _try_image_format(image_path: str | Path) -> None:
    """ValueError when matplotlib cannot write ``image_path``'s format here: some formats need
    programs of their own (.pgf needs LaTeX), which only saving tells. A blank figure is saved
    to memory (milliseconds), so that a run does not fail after generating."""
    import io

    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1))  # not pyplot: the host's backend and figures are left alone
    figure.text(0.5, 0.5, "emolive")  # text, as the plot has: .pgf measures it with LaTeX
    try:
        figure.savefig(io.BytesIO(), format=_image_format(image_path))
    except Exception as exc:  # noqa: BLE001 - whatever the format's writer needs and lacks
        raise ValueError(f"{str(image_path)!r}: matplotlib cannot write .{_image_format(image_path)} "
                         f"files here ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                         "give another format, such as .png") from None


def _image_format(path: str | Path) -> str:
    """The image format a file name asks for by its suffix (png without one)."""
    return Path(path).suffix.lower().removeprefix(".") or "png"


#: At most this many bar lines in a plot (a longer piece gets a line every few bars).
MAX_BAR_LINES = 256


def plot_extent(midi: mido.MidiFile, spans: list[NoteSpan] | None = None) -> tuple[float, int]:
    """What a plot of ``midi`` spans: its end in beats (the end of track, or a later note's end;
    one bar for an empty file) and the bars between two bar lines (1, or more for a piece
    longer than MAX_BAR_LINES bars), bars of its first time signature."""
    spans = note_spans(midi) if spans is None else spans
    bar = bar_beats(midi)
    end_beats = max([s.start_beats + s.length_beats for s in spans] + [length_beats(midi)]) or bar
    return end_beats, max(1, math.ceil(end_beats / (bar * MAX_BAR_LINES)))


def plot_piano_roll(midi: mido.MidiFile, png_path: str | Path, title: str | None = None) -> Path:
    """Draw ``midi`` as a piano roll (beats across, pitch up, shade = velocity) into a PNG
    (or the image format ``png_path``'s suffix names: .svg, .pdf, .jpg, ...)."""
    check_midi_file("plot_piano_roll", midi)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"plot_piano_roll's title must be text, not {type(title).__name__}")
    check_plotting(png_path)
    # A Figure of its own, not pyplot's: pyplot and matplotlib.use("Agg") switched a host's
    # backend for good (a notebook's inline display, a Tk or Qt app's windows; helper-63).
    from matplotlib import rc_context
    from matplotlib.collections import PatchCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    spans = note_spans(midi)
    end_beats, bars_per_line = plot_extent(midi, spans)
    figure = Figure(figsize=(min(24.0, 4.0 + end_beats / 4.0), 5.0), dpi=100)
    axes = figure.subplots()
    boxes = [Rectangle((s.start_beats, s.pitch - 0.4), s.length_beats, 0.8) for s in spans]
    collection = PatchCollection(boxes, cmap="viridis")
    collection.set_array([s.velocity for s in spans])
    collection.set_clim(0, 127)
    axes.add_collection(collection)
    line_beats = bar_beats(midi) * bars_per_line
    for line in range(int(end_beats / line_beats) + 1):
        axes.axvline(line * line_beats, color="0.85", linewidth=0.6, zorder=0)
    low = min((s.pitch for s in spans), default=60) - 2
    high = max((s.pitch for s in spans), default=72) + 2
    axes.set_xlim(0, max(end_beats, 1.0))
    axes.set_ylim(low, high)
    meter = "{}/{}".format(*time_signature(midi))
    every = f"{meter} bars" if bars_per_line == 1 else f"every {bars_per_line} bars of {meter}"
    axes.set_xlabel(f"beats (quarter notes; lines mark {every})")
    axes.set_ylabel("MIDI pitch")
    axes.set_title(title or f"{len(spans)} notes")
    figure.colorbar(collection, ax=axes, label="velocity")
    figure.tight_layout()
    kind = _image_format(png_path)
    with replaced_on_success(png_path) as written, rc_context({"svg.hashsalt": "emolive"}):
        if kind in _NO_DATE:  # the other formats' writers take no metadata= (pgf refuses it)
            figure.savefig(str(written), format=kind, metadata=_NO_DATE[kind])
        else:
            figure.savefig(str(written), format=kind)
    return Path(png_path)


#: What makes an SVG or PDF of the same notes the same bytes: no date stamped in it, and SVG's
#: clip-path ids hashed from a fixed salt, not from the process (helper-85). PNG was already.
_NO_DATE = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}
