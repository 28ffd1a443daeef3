"""emolive: emotion-conditioned live MIDI generation.

    import time
    from emolive import Engine
    with Engine(port="IAC Driver") as engine:
        engine.morph("sad", "excited", bars=8)   # returns at once; the engine plays on
        time.sleep(16)                           # 8 bars at 120 BPM, then a clean stop

The engine names are imported on first use, so ``import emolive`` (and the training
subpackage) does not load the native module until it is needed.
"""

from __future__ import annotations

from emolive._startup import quiet_interrupt_while_starting

quiet_interrupt_while_starting()  # first: a Ctrl-C while the command imports exits 130, quietly

from typing import TYPE_CHECKING, Any  # noqa: E402

from emolive.emotions import known_emotions, parse_emotion  # noqa: E402

if TYPE_CHECKING:  # "X as X": re-exported for type checkers (mypy --strict, --no-implicit-reexport)
    from emolive.engine import Engine as Engine
    from emolive.engine import EngineError as EngineError
    from emolive.engine import ModelError as ModelError
    from emolive.engine import PortError as PortError
    from emolive.engine import find_port as find_port
    from emolive.engine import list_ports as list_ports

_ENGINE_NAMES = ("Engine", "EngineError", "ModelError", "PortError", "find_port", "list_ports")

# Spelled out (not built from _ENGINE_NAMES) so that type checkers can read it.
__all__ = ["known_emotions", "parse_emotion", "Engine", "EngineError", "ModelError", "PortError",
           "find_port", "list_ports"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _ENGINE_NAMES:
        from emolive import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'emolive' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, the lazy ones too (tab completion showed no Engine before its first
    use, and offered Any, TYPE_CHECKING and a start-up helper; helper-80)."""
    import types

    modules = {name for name, value in globals().items()  # emolive.files, ... once imported
               if isinstance(value, types.ModuleType) and not name.startswith("_")}
    return sorted({*__all__, "__version__", *modules, *(name for name in globals() if name.startswith("__"))})
