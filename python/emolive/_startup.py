"""A Ctrl-C while the `emolive` command is still starting ends it quietly with status 130.

The console script (``emolive = emolive.cli:main``), ``python -m emolive`` and
``python -m emolive.training.train`` (and the other training commands) import the package
before ``main()`` runs, and nothing of ours catches a ``KeyboardInterrupt`` raised during those
imports: Python would print a traceback. So ``emolive/__init__.py`` calls
:func:`quiet_interrupt_while_starting` first thing; when this process *is* the command it makes
SIGINT raise ``SystemExit(130)`` (no traceback, status 130, as a Ctrl-C later gives), and
:func:`end_of_startup` (the first thing ``main()`` does) puts Python's usual handler back, so
``main()`` and live play handle Ctrl-C as before. A program that merely imports emolive keeps
its own SIGINT handling. Only the standard library's ``sys``/``os`` are used before the check.

Not covered: an interrupt during Python's own start-up (before the package's first line runs;
about 10 ms, mostly ``site``), which Python reports itself.
"""

from __future__ import annotations

import sys
from typing import Any

#: Exit status of a command ended by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED_STATUS = 130

#: Module names that are the command under ``python -m``: the `emolive` command, and the
#: training commands (``python -m emolive.training.train``, ...; their ``__main__`` blocks run
#: ``emolive.cli.main``, which calls :func:`end_of_startup`).
_COMMAND_MODULES = ("emolive", "emolive.cli", "emolive.__main__", "emolive.training.train",
                    "emolive.training.evaluate", "emolive.training.export", "emolive.training.calibrate",
                    "emolive.training.recover")
#: Of those, the training commands: they need torch (the `train` extra).
_TRAINING_MODULES = tuple(name for name in _COMMAND_MODULES if name.startswith("emolive.training."))
#: How to get what they need. PyPI's own torch is a CUDA build of several GB (helper-64: the
#: hint said `pip install torch==2.13.0`, which takes it on Linux).
TORCH_HINT = ("needs PyTorch and the training extra: pip install torch==2.13.0 --index-url "
              "https://download.pytorch.org/whl/cpu (the CPU build; install it first: PyPI's own torch "
              "is a CUDA build of several GB), then pip install 'emolive[train]'")


def _exit_quietly(_signum: int, _frame: Any) -> None:
    raise SystemExit(INTERRUPTED_STATUS)


def is_the_command(argv: list[str], orig_argv: list[str]) -> bool:
    """True when the process runs the `emolive` console script or ``python -m emolive[.cli]``.

    ``argv`` is ``sys.argv`` while the package is imported (``argv[0]`` is ``"-m"`` under
    ``python -m``, the script's path otherwise); ``orig_argv`` is ``sys.orig_argv``.
    """
    first = argv[0] if argv else ""
    if first == "-m":
        return _module_run_by_m(orig_argv) in _COMMAND_MODULES
    name = first.replace("\\", "/").rsplit("/", 1)[-1]  # either separator, whatever the platform
    for suffix in (".exe", "-script.pyw", "-script.py"):  # Windows launchers
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name == "emolive"


def _module_run_by_m(orig_argv: list[str]) -> str | None:
    for i, arg in enumerate(orig_argv[1:], start=1):
        if arg == "-m":
            return orig_argv[i + 1] if i + 1 < len(orig_argv) else None
        if arg.startswith("-m"):
            return arg[2:]
    return None


def refuse_a_training_command_without_torch() -> None:
    """``python -m emolive.training.train`` (or another training command) without torch: one
    line and status 2, as `emolive train` says it; it was a traceback from the module's first
    import (helper-64). Called by ``emolive.training`` first thing; nothing happens on import."""
    if sys.argv[:1] != ["-m"] or _module_run_by_m(getattr(sys, "orig_argv", [])) not in _TRAINING_MODULES:
        return
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        print(f"python -m {_module_run_by_m(sys.orig_argv)}: error: {TORCH_HINT}", file=sys.stderr)
        raise SystemExit(2)


def quiet_interrupt_while_starting() -> None:
    """In the command's process only: SIGINT raises ``SystemExit(130)`` until :func:`end_of_startup`."""
    if not is_the_command(sys.argv, getattr(sys, "orig_argv", [])):
        return
    import signal

    # Before any import of ONNX Runtime: `python -m emolive.training.evaluate` imports it before
    # main() (helper-87).
    no_onnx_runtime_device_id()

    try:
        # Python's own handler, not a caller's; or SIGINT inherited as ignored (a background
        # job of a script): the command acts on SIGINT all the same, from here on (live play
        # caught it only once playing, and a `kill -INT` in its first 0.15 s was lost).
        if signal.getsignal(signal.SIGINT) in (signal.default_int_handler, signal.SIG_IGN):
            signal.signal(signal.SIGINT, _exit_quietly)
    except ValueError:  # not the main thread: leave signals alone
        pass


def no_onnx_runtime_device_id() -> None:
    """ONNX Runtime writes a device id and a database under ~/.cache/Microsoft when it is
    imported or starts, unless ``ORT_DISABLE_TELEMETRY`` says no (helper-86); a user's own
    setting stands. For the command's process only, called while it has one thread (no engine
    or library reads the environment yet): at the package's start and in ``cli.main``."""
    import os

    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def end_of_startup() -> None:
    """Python's usual SIGINT handler (``KeyboardInterrupt``) back, if the start-up one is set."""
    import signal

    if signal.getsignal(signal.SIGINT) is _exit_quietly:
        signal.signal(signal.SIGINT, signal.default_int_handler)
