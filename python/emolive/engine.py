"""The Python face of the native engine: ``Engine``, and the model it loads.

Arguments are checked first (:mod:`emolive.arguments`: wrong type -> ``TypeError``, bad value
-> ``ValueError``) so that users get plain messages; the C++ engine (``emolive._core``) checks
again. Output ports are matched and opened by :mod:`emolive.outputs` (``list_ports`` and
``find_port`` are re-exported here), MIDI files are made by :mod:`emolive.midi_notes`. Long calls
release the GIL. See docs/engine.md for threads, timing and the streaming policy.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emolive import _core, open_engines
from emolive import arguments as check
from emolive.arguments import MAX_BAR, MAX_GENERATE_BARS, MAX_GENERATE_COUNT, STEPS_PER_BAR, Whole
from emolive.emotions import EmotionLike, Real, Weights, parse_emotion
from emolive.outputs import PortError, checked_virtual_name, find_port, list_ports, open_output
from emolive.safe_write import name_too_long
from emolive.scales import ALL_PITCH_CLASSES, key_signature, scale_mask, transposition

if TYPE_CHECKING:  # mido and numpy are imported where used: live play loads neither
    import mido
    import numpy as np

EngineError = _core.EngineError
ModelError = _core.ModelError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "default"
#: The most characters of a card's name shown or written into a file's track name.
MAX_MODEL_NAME = 100
__all__ = ["Engine", "EngineError", "ModelError", "PortError", "find_port", "list_ports", "load_model",
           "onnxruntime_library", "DEFAULT_MODEL_DIR", "MAX_GENERATE_BARS", "MAX_GENERATE_COUNT"]


# --- ONNX Runtime and models -----------------------------------------------------------------

def onnxruntime_library() -> str:
    """Path of the shared library inside the installed ``onnxruntime`` package ('' if none).

    The package is located without importing it. ``EMOLIVE_ONNXRUNTIME_LIB`` (read by the
    engine) takes precedence over this path.
    """
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return ""
    capi = Path(next(iter(spec.submodule_search_locations))) / "capi"
    for pattern in ("libonnxruntime.so*", "libonnxruntime*.dylib", "onnxruntime.dll"):
        found = sorted(capi.glob(pattern))
        if found:
            return str(found[0])
    return ""


def load_model(model: str | os.PathLike[str] | None) -> Any:
    """A loaded ``_core.Model``; ``None`` is the bundled default model."""
    if model is None:
        if not (DEFAULT_MODEL_DIR / "model_card.json").is_file():
            raise ModelError(
                f"the bundled default model is missing ({DEFAULT_MODEL_DIR} has no model_card.json); "
                "pass model=<directory> with a model exported by `emolive export`")
        path = DEFAULT_MODEL_DIR
    elif isinstance(model, (str, os.PathLike)):
        if not os.fspath(model).strip():  # Path("") would be the current folder
            raise ModelError("the model directory is an empty name; give a folder (or none for the bundled model)")
        path = Path(model)
        if not _is_model_dir(path):  # --model=~/m and Python strings reach here with the ~ unexpanded
            path = Path(os.path.expanduser(path))
    else:
        raise TypeError(f"model must be a directory path or None, not {type(model).__name__}")
    if not _is_model_dir(path):
        raise ModelError(f"model directory {str(path)!r} does not exist or is not a directory")
    # Absolute: the encoder loads again at the first encode(), which after an os.chdir read
    # another folder's file (or none) for a relative path.
    package_library = onnxruntime_library()
    try:
        return _core.Model(os.path.abspath(path), package_library)  # refuses NaN weights too
    except ModelError as err:
        if package_library or not str(err).startswith("could not load the ONNX Runtime library ("):
            raise
        raise ModelError(f"{err}; or install the onnxruntime Python package (pip install onnxruntime), "
                         "whose library emolive loads") from None


def _is_model_dir(path: Path) -> bool:
    """``path.is_dir()``; ModelError for a name too long for the file system (is_dir raised
    OSError)."""
    if name_too_long(path):
        raise ModelError(f"model directory {str(path)!r}: the name is too long for the file system")
    return path.is_dir()


def _numpy_loaded() -> None:
    """Import numpy here, in Python, before a call whose result the native module returns as
    numpy arrays. Else its first such call imports numpy from C++ with the GIL let go, and a
    program that exits meanwhile, this call being on a daemon thread, is aborted instead
    (CPython ends the thread by unwinding through C++ frames that cannot be unwound)."""
    import numpy  # noqa: F401  (live play never loads numpy; offline generation needs it)


def _return_freed_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere
    nothing). Loading a model frees the ONNX files' bytes and the graph optimiser's scratch
    memory but leaves them resident: about 4 MB of a live process. Takes well under a
    millisecond; called once the model has loaded, before the output opens (a second call once
    the engine was built changed the playing RSS by nothing measurable), never from the clock
    thread."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError, TypeError):  # not glibc (macOS, musl) or not POSIX
        pass


# --- the engine ------------------------------------------------------------------------------

def _open_engine_on(port_name: str | None, virtual: bool) -> Engine | None:
    """This program's open engine on the port ``port_name`` (a virtual one, or a named port it
    sends to): a notebook's cell run again finds the engine it made before, still playing
    (helper-80)."""
    return open_engines.find(lambda e: e._virtual == virtual and e._port_name == port_name and not e._closed())


class Engine:
    """Emotion-conditioned music, live into a MIDI port or offline into a ``mido.MidiFile``.

    ``port`` (name, substring or index) or ``virtual`` (a name for a new virtual port) choose
    the live output; with neither, notes go nowhere (use ``record=True`` to keep them).
    ``channel`` is 1..16; ``program`` 1..128 is sent at each ``play()``. ``seed`` makes the
    notes reproducible (None: a random seed, fixed for this engine). ``temperature`` None takes
    the model card's sampling default. ``port_name`` is the name of the port ``port`` matched
    (the ``virtual`` name for a virtual port; None without a port).
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, port: str | Whole | None = None,
                 virtual: str | None = None, bpm: Real = 120.0, channel: Whole = 1,
                 seed: Whole | None = None, program: Whole | None = None, temperature: Real | None = None,
                 clock_out: bool = False, record: bool = False) -> None:
        self._core: Any = None
        bpm = check.number("bpm", bpm, *check.BPM_RANGE)
        channel = check.integer("channel", channel, 1, 16)
        if program is not None:
            program = check.integer("program", program, 1, 128)
        if temperature is not None:
            temperature = check.number("temperature", temperature, *check.TEMPERATURE_RANGE)
        for flag_name, flag in (("clock_out", clock_out), ("record", record)):
            if not isinstance(flag, bool):  # numpy's bool is named "bool" too: its module is said
                kind = type(flag)
                named = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
                raise TypeError(f"{flag_name} must be True or False (a Python bool), not {named}")
        if port is not None and virtual is not None:
            raise ValueError("give either port or virtual, not both")
        if virtual is not None:
            virtual = checked_virtual_name(virtual)
            if (holder := _open_engine_on(virtual, virtual=True)) is not None:
                raise PortError(f"this program's {holder!r} has the virtual port {virtual!r} open: close() it "
                                "first (or make engines with `with Engine(...) as engine:`), or give another name")
        self._seed = check.seed_or_random(seed)
        if port is not None:
            find_port(port)  # a wrong port is reported before the model loads
        # The model loads before the output opens: with a JACK client already open while ONNX
        # Runtime loaded, the engine's port checks later stalled now and then (a vanished
        # receiver went unnoticed in 3 of 6 runs; docs/reliability.md, "Connection settle").
        self._model = load_model(model)
        # Before the output maps JACK's segment (102 MB where it is locked), so that the peak
        # RSS does not hold both it and the heap freed by loading (4 MB).
        _return_freed_heap()
        output, self._port_name = open_output(port, virtual)
        self._card: dict[str, Any] = json.loads(self._model.card_json)
        if temperature is None:  # the model card's sampling default (1.0 when it has none)
            temperature = float(self._model.default_temperature)
        self._core = _core.Engine(
            self._model, output, bpm=bpm, channel=channel - 1, seed=self._seed,
            program=-1 if program is None else program - 1, temperature=temperature,
            clock_out=clock_out, record=record)
        self._channel = channel
        self._program = program
        self._record = record
        self._key: tuple[str, str] | None = None
        self._virtual = virtual is not None
        if port is not None and (other := _open_engine_on(self._port_name, virtual=False)) is not None:
            warnings.warn(f"{other!r} of this program sends to {self._port_name!r} too, and both play; close() "
                          "the one not wanted (a notebook's Out[] keeps an engine it showed open)", stacklevel=2)
        open_engines.register(self)

    # Read-only: the live engine was made with them, so assigning one changed only what
    # generate() wrote (a channel, program or seed the live notes did not have).
    @property
    def seed(self) -> int:
        """The seed the engine was made with (offline runs default to it)."""
        return self._seed

    @property
    def channel(self) -> int:
        """The MIDI channel, 1..16."""
        return self._channel

    @property
    def program(self) -> int | None:
        """The General MIDI program sent at each play(), 1..128, or None."""
        return self._program

    @property
    def port_name(self) -> str | None:
        """The port ``port`` matched (the ``virtual`` name for a virtual port; None without)."""
        return self._port_name

    @property
    def source_port(self) -> str | None:
        """This engine's own MIDI port as other programs see it, to connect as an input (its
        clock, with ``clock_out``): ``'emolive:out'``, or ``'emolive-01:out'`` where another
        program had that name first; a virtual port's ``'NAME:NAME'`` on JACK. As it is now: a
        JACK server's restart may give the client another name. None where not known (no
        port, a MIDI system other than JACK, a closed engine, or another emolive's port of those
        names sending to the same destination)."""
        core = self._core
        return (core.source_name or None) if core is not None and not core.is_closed else None

    def __copy__(self) -> Engine:
        raise TypeError("an Engine cannot be copied (a copy would share its live engine, and "
                        "closing one would close both); make another Engine")

    def __deepcopy__(self, memo: dict[int, Any]) -> Engine:
        return self.__copy__()

    def __repr__(self) -> str:
        core = self._core
        state = "closed" if core is None or core.is_closed else ("playing" if core.is_playing else "stopped")
        name = (self._model_name() or "unnamed") if hasattr(self, "_card") else "?"
        port_name = getattr(self, "_port_name", None)
        port = f"port={port_name!r}" if port_name else "no port"
        return (f"<emolive.Engine {name!r} {port} channel={getattr(self, '_channel', '?')} "
                f"seed={getattr(self, '_seed', '?')} {state}>")

    # live control
    def play(self, emotion: EmotionLike = "calm") -> None:
        """Start playing (non-blocking) at bar 0, with ``clock_out`` sending MIDI Start; if
        already playing, jump to ``emotion``."""
        self._core.play(parse_emotion(emotion))

    def resume(self, bar: Whole | None = None) -> None:
        """Start playing again with the emotion as :meth:`stop` left it: a glide (``set_emotion``
        with ``bars``, ``morph``) under way goes on from where it stopped to its target, over
        what was left of it. Does nothing while playing. (``play`` jumps to the emotion it is
        given, ending a glide.)

        The music goes on at a bar line: ``bar`` (0..2**40), by default the first bar line at
        or after where :meth:`stop` came, so ``stats()["bar"]`` counts on. With ``clock_out`` a
        receiver gets Song Position Pointer and Continue (Start for bar 0): a DAW following the
        clock goes on at that bar instead of starting again from its beginning."""
        self._core.resume(-1 if bar is None else check.integer("bar", bar, 0, MAX_BAR))

    def set_emotion(self, emotion: EmotionLike, bars: Real = 0) -> None:
        """Jump to ``emotion`` (bars=0) or glide there linearly over ``bars`` bars."""
        self._core.set_emotion(parse_emotion(emotion), check.bars_to_steps(bars))

    def morph(self, a: EmotionLike, b: EmotionLike, bars: Real = 4) -> None:
        """Set ``a`` now and glide to ``b`` over ``bars`` bars; starts playing if stopped."""
        self._core.morph(parse_emotion(a), parse_emotion(b), check.bars_to_steps(bars))

    def set_bpm(self, bpm: Real) -> None:
        """Tempo in beats per minute, 20..400; applies from the next 16th step."""
        self._core.set_bpm(check.number("bpm", bpm, *check.BPM_RANGE))

    def set_temperature(self, temperature: Real) -> None:
        """Onset sampling temperature, 0.05..5 (low: fewer, surer notes; high: more random)."""
        self._core.set_temperature(check.number("temperature", temperature, *check.TEMPERATURE_RANGE))

    def set_key(self, key: str | None, scale: str | None = None) -> None:
        """Play in ``key`` (e.g. ``"A"``); ``key=None`` goes back to no key and no lock.

        A model trained in one tonic (its card's ``tonic``; the bundled model is trained in C)
        is transposed to ``key``, and without ``scale`` keeps the mode the emotion gives it. A
        model trained in every key cannot be moved: without ``scale`` it is locked to the major
        scale of ``key``. With ``scale`` (``"minor"``, ``"dorian"``, ...) only notes of that
        scale start, on either kind of model."""
        if key is None and scale is not None:
            raise ValueError(f"a scale needs a key: set_key('C', {scale!r}), say (key=None undoes both)")
        if scale is None:
            scale = "chromatic" if self._card.get("tonic") is not None else "major"
        mask = scale_mask(key, scale)
        self._core.set_key(mask, transposition(key, self._card.get("tonic")))
        self._key = None if mask == ALL_PITCH_CLASSES and key is None else (str(key), scale)

    def set_walk_rate(self, bars: Real) -> None:
        """How fast the latent walk moves: ``bars`` bars from one prior sample to the next
        (default 2; smaller changes the material faster). At least one 16th step."""
        steps = round(check.number("bars", bars, 1 / STEPS_PER_BAR, check.MAX_LIVE_BARS) * STEPS_PER_BAR)
        self._core.set_walk_rate(steps)  # at least one 16th step

    def stop(self) -> None:
        """Stop: a note-off for every sounding note, then CC64 0, CC123, CC120. Idempotent."""
        if self._core is not None:
            self._core.stop()

    def _closed(self) -> bool:
        return self._core is None or self._core.is_closed

    def close(self) -> None:
        """Stop and close the port. Idempotent; also done by ``with``, the destructor and, for an
        engine still open, the interpreter's exit."""
        if self._core is not None:
            self._core.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a destructor
            pass

    # state
    @property
    def is_playing(self) -> bool:
        """Whether the engine plays live now (after ``play()``/``resume()``/``morph()``, until
        ``stop()`` or ``close()``)."""
        return bool(self._core.is_playing)

    @property
    def emotion(self) -> Weights:
        """Current quadrant weights (Q1..Q4) of the condition being decoded."""
        return tuple(float(x) for x in self._core.emotion)  # type: ignore[return-value]

    @property
    def model_card(self) -> dict[str, Any]:
        """The model's card (a copy: editing it changed the engine's transposition and the
        track name generate() writes)."""
        return copy.deepcopy(self._card)

    @property
    def key(self) -> tuple[str, str] | None:
        """``(key, scale)`` as ``set_key`` was last given them (``("D", "dorian")``), or None
        when no key is set."""
        return self._key

    def stats(self) -> dict[str, Any]:
        """step, bar, bpm, temperature, emotion, notes_sent, sounding, owed_note_offs (note-offs a
        failed output has not taken yet: sent once it is back), late_notes (note-ons sent
        more than 1 ms after their deadline), max_lateness_us, missed_steps (steps not decoded
        in time, which played nothing: the model is too slow for the tempo) and dropped_notes
        (the note-ons of their blocks, come too late), nonfinite_steps (decoded steps, live and in
        generate, whose onset logits held a NaN: a model broken for some input), port_error (str or None; cleared
        when a lost port comes back and is reconnected), port_may_return (with port_error: the
        engine may still reconnect by itself), port_reconnects, generator_error, ...
        (docs/engine.md)."""
        stats: dict[str, Any] = self._core.stats()
        stats["bar"] = stats["step"] // STEPS_PER_BAR
        stats["emotion"] = tuple(float(x) for x in stats["emotion"])
        # Kept as float32 by the engine: 0.8 read back 0.800000011920929.
        stats["temperature"] = float(f"{stats['temperature']:.6g}")
        return stats

    def recorded(self) -> list[tuple[float, bytes]]:
        """(seconds since playing last started, raw MIDI bytes) of every message sent since:
        ``play()``, and ``resume()`` or ``morph()`` when stopped, start it again."""
        if not self._record:
            raise EngineError("nothing is recorded: create the Engine with record=True")
        return list(self._core.recorded())

    def lateness_us(self) -> np.ndarray:
        """Per step since the last ``play()``: send time minus deadline, in microseconds."""
        import numpy as np

        return np.asarray(self._core.lateness_us(), dtype=np.float32)

    # offline
    def generate(self, bars: Whole, emotion: EmotionLike = "calm", seed: Whole | None = None,
                 morph_to: EmotionLike | None = None, morph_bars: Real | None = None) -> mido.MidiFile:
        """``bars`` bars through the same generator and sampler as live play, as fast as the
        model runs (decoding through the model's batch step where it has one; docs/engine.md).
        ``seed`` None uses the engine's seed (so repeated calls agree). With ``morph_to`` the
        emotion glides there over ``morph_bars`` bars (default: all of them)."""
        bars, weights, target, glide = check.offline_arguments(bars, emotion, morph_to, morph_bars)
        run_seed = self.seed if seed is None else check.integer("seed", seed, 0, check.MAX_SEED)
        _numpy_loaded()
        events = self._core.generate(bars * STEPS_PER_BAR, weights, run_seed, target, glide)
        return self._to_midi(events, bars)

    def generate_many(self, count: Whole, bars: Whole, emotion: EmotionLike = "calm",
                      seeds: Sequence[Whole] | np.ndarray | None = None, morph_to: EmotionLike | None = None,
                      morph_bars: Real | None = None) -> list[mido.MidiFile]:
        """``count`` independent pieces of ``bars`` bars each, decoded together in batches of
        up to 64 streams over the machine's cores: more bars per second than ``generate``
        called ``count`` times (docs/benchmarks.md). Piece i is what ``generate(bars, emotion,
        seed=seeds[i], morph_to=..., morph_bars=...)`` gives: bit for bit for a model with a
        batch step (the bundled one), else up to the float rounding of batched matrix products
        (docs/engine.md). ``seeds`` None: ``engine.seed + i`` for piece i, so piece 0 is
        ``generate(bars, emotion)``. ``count * bars`` is at most 100,000."""
        count = check.integer("count", count, 1, MAX_GENERATE_COUNT)
        bars, weights, target, glide = check.offline_arguments(bars, emotion, morph_to, morph_bars)
        if count * bars > MAX_GENERATE_BARS:
            raise ValueError(f"count x bars must be at most {MAX_GENERATE_BARS} bars in all, got "
                             f"{count} x {bars} = {count * bars}; split the work over several calls")
        run_seeds = check.seed_list(seeds, count, self.seed)
        _numpy_loaded()
        pieces = self._core.generate_many(bars * STEPS_PER_BAR, weights, run_seeds, target, glide)
        return [self._to_midi(events, bars) for events in pieces]

    def _to_midi(self, events: np.ndarray, bars: int) -> mido.MidiFile:
        from emolive.midi_notes import midi_from_events

        signature = key_signature(*self._key) if self._key is not None else None
        return midi_from_events(events.tolist(), bars * STEPS_PER_BAR, float(self._core.stats()["bpm"]),
                                self.channel, self.program, self._model_name(), signature)

    def _model_name(self) -> str:
        """The card's ``name`` as it may be shown and written into files: its printable
        characters, at most ``MAX_MODEL_NAME`` of them; "" when it has none or it is not text. (A
        card from elsewhere put escape sequences into the MIDI track name, and a 1 MB name made
        a file mido refuses to read back.)"""
        name = self._card.get("name")
        if not isinstance(name, str):
            return ""
        return "".join(c for c in name if c.isprintable())[:MAX_MODEL_NAME]
