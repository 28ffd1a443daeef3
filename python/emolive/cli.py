"""The `emolive` command: parses the command line and dispatches; the work is in other modules.

    emolive [--port P | --virtual [NAME]] --emotion E ...   live, until Ctrl-C  (emolive.live)
    emolive generate --emotion E --bars N -o x.mid ...      files               (emolive.cli_generate)
    emolive train|export|evaluate|calibrate|recover ...     training extra      (emolive.training)

Exit status: 0 done, 1 a failure while running (e.g. the MIDI port went away), 2 a usage
mistake (bad value, unknown port or emotion, bad model directory, missing optional package).
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import os
import re
import signal
import sys
import textwrap
from collections.abc import Sequence

from emolive import __version__, input_port, ports
from emolive._startup import TORCH_HINT, end_of_startup, no_onnx_runtime_device_id
from emolive.cli_options import (FILLED_STANDARD_DESCRIPTORS, STOP_SIGNALS, emotion_listing, generate_parser,
                                 live_parser, silence)

TRAINING_COMMANDS = ("train", "export", "evaluate", "calibrate", "recover")


#: What the native module links (README, "plain install"): a wheel moved to a machine without
#: them said only "librtmidi.so.6: cannot open shared object file" (helper-64).
NATIVE_LIBRARIES_HINT = ("on Debian/Ubuntu, sudo apt-get install librtmidi6 libjack-jackd2-0; on macOS, "
                         "brew install rtmidi; or build emolive on this machine, pip install . (README)")


class CommandError(Exception):
    """An error to print as ``emolive: error: ...`` with an exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    _fill_closed_standard_descriptors()
    _raise_a_low_open_files_limit()
    _escape_what_cannot_be_shown()
    _unblock_stop_signals()
    no_onnx_runtime_device_id()  # again: a link to the script under another name (helper-88)
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:  # Ctrl-C while an error is being reported (its imports, say)
        return 130


def _fill_closed_standard_descriptors() -> None:
    """Descriptors 0-2 that a service left closed (`>&-`) are opened on /dev/null, as daemons
    do. Python made sys.stdout None, so the first status line raised AttributeError (a
    traceback, no note played), and the next file or socket opened would have taken the number
    and received whatever C code prints (helper-54, 2026-12-07)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free number: fd itself
            FILLED_STANDARD_DESCRIPTORS.add(fd)
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


def _unblock_stop_signals() -> None:
    """The stop signals unblocked in the main thread: a process started from a thread that
    blocked them (a supervisor's worker) inherits the mask, and Ctrl-C and SIGTERM then never
    arrived; only SIGKILL ended live play, with notes sounding (helper-85). An inherited
    *ignored* signal is another matter (cli_options.stop_signals_to_catch)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        return
    numbers = {getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, numbers)


#: Open files the command needs at most: JACK clients (a socket and shared memory each), ONNX
#: Runtime's files, the terminal. Under `ulimit -n 20` a JACK probe failed for want of one and
#: the run said "the JACK server stopped" and went silent (helper-54).
WANTED_OPEN_FILES = 1024


def _raise_a_low_open_files_limit() -> None:
    """The soft limit on open files raised towards the hard one (which a process may do) when
    it is below ``WANTED_OPEN_FILES``; a hard limit below it is left, and said if it is tiny."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= WANTED_OPEN_FILES:
        return
    wanted = WANTED_OPEN_FILES if hard == resource.RLIM_INFINITY else min(WANTED_OPEN_FILES, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        pass
    if wanted < 64:
        print(f"emolive: warning: at most {wanted} open files (ulimit -n): MIDI clients may fail to "
              "open for want of them (below about 36 the port watch does, and a lost port goes "
              "unnoticed); allow 64 or more", file=sys.stderr)


def _escape_what_cannot_be_shown() -> None:
    """Text the terminal's encoding cannot hold (a port named in Japanese under an ASCII or
    cp1252 stdout) is printed as backslash escapes: it raised UnicodeEncodeError, which ended
    `generate` half-way (one file written, the next not) and emptied `--list-ports`."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or unusual stream: left as it is
                pass


def _run(args: list[str]) -> int:
    try:
        end_of_startup()  # Ctrl-C raises KeyboardInterrupt again (emolive._startup)
        return _dispatch(args)
    except CommandError as exc:
        _print_error(str(exc))
        return exc.status
    except KeyboardInterrupt:  # Ctrl-C outside live play (live play handles SIGINT itself)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`emolive --list-ports | head -1`)
        silence(sys.stdout)
        return 128 + 13  # as a tool ended by SIGPIPE; no message: nothing went wrong here
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2, message printed)
        if exc.code == 0:
            return _help_written()
        return exc.code if isinstance(exc.code, int) else 2
    except Exception as exc:  # noqa: BLE001 - mapped to a message and a status, never a traceback
        if (refused := _memory_refused(exc)) is not None:
            _print_error(refused)
            return 1
        if _native_module_lacks_a_library(exc):
            _print_error(f"emolive's native module cannot load: {exc} (a library it was built against is "
                         f"missing here: {NATIVE_LIBRARIES_HINT})")
            return 2
        if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG and exc.filename is not None:
            # A name the user gave, theirs to shorten: a 300-byte `train --data` exited 1 (helper-78).
            _print_error(f"{exc.filename!r}: the name is too long for the file system")
            return 2
        if isinstance(exc, FileNotFoundError) and exc.filename is None and _current_folder_is_gone():
            # "[Errno 2] No such file or directory", naming nothing (helper-85)
            _print_error("the current folder no longer exists (removed while a shell was in it): cd into "
                         "a folder, or give absolute paths")
            return 2
        status = _status_of(exc)
        if status is None:
            raise
        _print_error(str(exc))
        return status


def _current_folder_is_gone() -> bool:
    try:
        os.getcwd()
    except FileNotFoundError:
        return True
    return False


def _dispatch(args: list[str]) -> int:
    if args and args[0] == "generate":
        from emolive.cli_generate import run_generate

        parser = generate_parser()
        return run_generate(parser.parse_args(args[1:]), parser)
    if args and args[0] in TRAINING_COMMANDS:
        return _run_training(args[0], args[1:])
    parser = live_parser()
    options = parser.parse_args(args)
    if options.version:
        return _print_listing(f"emolive {__version__}")
    if options.list_emotions:
        return _print_listing(emotion_listing())
    if options.list_ports:
        return _print_listing(_port_listing())
    from emolive.cli_options import check_key
    from emolive.live import run_live

    check_key(options, parser)
    return run_live(options, parser)


def _no_outputs_why() -> str:
    """--list-ports' line for no output ports: the reason where one is known (a server name
    libjack refuses, a MIDI system EMOLIVE_MIDI_API chose that does not open), else the hint."""
    from emolive import _core
    from emolive.outputs import midi_system_opens, why_no_midi_system

    if refused := _core.jack_server_name_refused():
        return f"(none: {refused})"
    opens = midi_system_opens()
    chosen = os.environ.get("EMOLIVE_MIDI_API", "").strip().lower() not in ("", "jack")
    if not opens and (chosen or "JACK_DEFAULT_SERVER" in os.environ):  # a stale server name was told
        return f"(none: {why_no_midi_system()})"  # to start JACK, with the default server running
    return f"(none; {ports.platform_hint(midi_system_runs=opens)})"


def _help_written() -> int:
    """0 once what --help printed is on standard output; argparse passes over a failed write
    (`--help > /dev/full` exited 0, saying nothing; helper-85)."""
    try:
        return _print_listing("", end="")
    except CommandError as failed:
        _print_error(str(failed))
        return failed.status
    except BrokenPipeError:
        silence(sys.stdout)
        return 128 + 13


def _print_listing(text: str, end: str = "\n") -> int:
    """``text`` on standard output, all of it; a failed write is said as such (`> /dev/full`
    said only "[Errno 28] No space left on device", helper-59)."""
    try:
        print(text, end=end)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away: _run's silent 141
        raise
    except OSError as exc:
        raise CommandError(f"could not write to standard output: {exc.strerror or exc}", 1) from None
    return 0


def _run_training(command: str, args: list[str]) -> int:
    """`emolive train|export|evaluate|calibrate|recover ARGS` -> ``emolive.training.<command>.main(ARGS)``."""
    if importlib.util.find_spec("torch") is None:
        raise CommandError(f"`emolive {command}` {TORCH_HINT}", 2)
    try:
        module = importlib.import_module(f"emolive.training.{command}")
    except ModuleNotFoundError as exc:
        raise CommandError(f"`emolive {command}` is unavailable ({exc}); {TORCH_HINT}", 2) from None
    from emolive.cli_options import stoppable  # SIGTERM, SIGHUP, ... as Ctrl-C: files given up cleanly

    return int(stoppable(lambda: module.main(args)) or 0)


def _port_listing() -> str:
    from emolive.outputs import NO_RTMIDI, rtmidi_available

    if not rtmidi_available():
        return f"no MIDI ports: {NO_RTMIDI}"
    lines = ["MIDI outputs (--port, or $EMOLIVE_PORT):"]
    try:
        outputs = ports.output_port_names()
        lines += [f"  {i}: {ports.shown(name)}" for i, name in enumerate(outputs)] or [f"  {_no_outputs_why()}"]
    except Exception as exc:  # noqa: BLE001 - no backend (or no engine): say why there are none
        if os.environ.get("EMOLIVE_MIDI_API", "").strip():  # the API chosen does not open: an error
            raise
        lines.append(f"  (none: {exc})")
    lines.append("MIDI inputs (--control-port, --sync):")
    inputs = input_port.input_port_names()
    lines += [f"  {i}: {ports.shown(name)}" for i, name in enumerate(inputs)] or ["  (none)"]
    return "\n".join(lines)


def _status_of(exc: Exception) -> int | None:
    """Exit status for an exception: 2 for a user's mistake, 1 for a runtime failure, None: a bug.
    Imports nothing: an error class whose module was never loaded cannot be ``exc``'s, and an
    import here failed into a traceback where memory was short (helper-59)."""
    engine, audio = sys.modules.get("emolive.engine"), sys.modules.get("emolive.audio")
    if engine is not None and isinstance(exc, (engine.ModelError, engine.PortError)):
        return 2
    if isinstance(exc, (ValueError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
                        ImportError)) or (audio is not None and isinstance(exc, audio.RenderError)):
        return 2
    if isinstance(exc, OSError) or (engine is not None and isinstance(exc, engine.EngineError)):
        return 1
    return None


#: What a failed allocation says: numpy's import under `ulimit -v` ("failed to map segment from
#: shared object", after a page of install advice), C++ (`std::bad_alloc`), ONNX Runtime.
_MEMORY_SIGNS = ("failed to map segment", "Cannot allocate memory", "bad_alloc", "bad allocation",
                 "Failed to allocate")


def _memory_refused(exc: Exception) -> str | None:
    """The message for an error that memory refused (MemoryError, ENOMEM, a library that could
    not be mapped), naming the address-space limit where one is set; None for other errors.
    Such errors blamed the install, the model or the MIDI system (helper-59)."""
    text = str(exc)
    if not (isinstance(exc, MemoryError) or getattr(exc, "errno", None) == 12  # ENOMEM
            or any(sign in text for sign in _MEMORY_SIGNS)):
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # numpy's own reason is its last line; a long one is cut at a word (it ended "No s; allow")
    detail = f": {textwrap.shorten(lines[-1], 300, placeholder=' ...')}" if lines else ""
    asked = re.search(r"requested buffer of size (\d+)", text)  # ONNX Runtime's words
    machine = _physical_memory_bytes()
    if asked and machine and int(asked.group(1)) > machine:  # no limit would let it through
        return (f"a model step asked for {int(asked.group(1)) / 2**30:,.0f} GiB at once, more than this "
                f"machine's {machine / 2**30:,.0f} GiB: the model is broken or made for another machine"
                f"{detail}")
    limit_mb = _address_space_limit_mb()
    if limit_mb is None:
        return f"out of memory{detail}"
    return (f"out of memory under the address-space limit of {limit_mb} MB (ulimit -v){detail}; "
            "allow more (ulimit -v unlimited)")


def _physical_memory_bytes() -> int | None:
    """The machine's memory in bytes, or None where the system does not say (Windows)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _address_space_limit_mb() -> int | None:
    """The soft limit on address space (``ulimit -v``) in MiB, or None where none is set."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    return None if limit == resource.RLIM_INFINITY else limit // 2**20


#: How each loader says a library is missing: Linux, macOS (after `brew upgrade rtmidi` moved it
#: on, say), Windows (helper-67).
_MISSING_LIBRARY_SIGNS = ("cannot open shared object file", "Library not loaded", "DLL load failed")


def _native_module_lacks_a_library(exc: Exception) -> bool:
    """Whether ``exc`` is emolive's own native module failing to load a system library (not
    another package's: a CUDA library missing for torch got the RtMidi advice; helper-66)."""
    if not isinstance(exc, ImportError) or not any(sign in str(exc) for sign in _MISSING_LIBRARY_SIGNS):
        return False
    where = os.path.normpath(exc.path or "").split(os.sep)  # the loader names it "_core", by its file
    return exc.name == "emolive._core" or (len(where) > 1 and where[-2] == "emolive" and where[-1].startswith("_core."))


def _print_error(message: str) -> None:
    """Control characters escaped: a message may quote a model card or an ONNX file from
    elsewhere, whose escape sequences would otherwise retitle or clear the terminal."""
    try:
        print(f"emolive: error: {ports.shown(message)}", file=sys.stderr)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
