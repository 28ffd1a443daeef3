"""Shared pieces of the benchmark scripts: statistics, the machine and its load, model
directories to compare, results files.

Every figure is printed and also written as JSON under ``benchmarks/results/`` so that
docs/benchmarks.md can quote the run it came from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emolive.cli_options import BPM_RANGE, integer_in, number_in  # argparse types
from emolive.files import check_writable, replaced_on_success

REPO = Path(__file__).resolve().parents[1]
# Where results JSON goes; tests point it elsewhere so that a smoke run never overwrites the
# figures docs/benchmarks.md quotes. Set, it also takes the plot (benchmarks.plot).
# An empty value (an unset variable expanded) counts as not set: it named the current folder,
# which is the repository's top when the commands are run as documented.
RESULTS_ELSEWHERE = bool(os.environ.get("EMOLIVE_BENCH_RESULTS"))
RESULTS = Path(os.environ["EMOLIVE_BENCH_RESULTS"]) if RESULTS_ELSEWHERE else REPO / "benchmarks" / "results"
DEFAULT_MODEL = REPO / "python" / "emolive" / "models" / "default"
STEPS_PER_BAR = 16


class _BenchmarkParser(argparse.ArgumentParser):
    """Parses a benchmark's options, then refuses (exit 2) a results folder it could not write
    into, before the minutes of measuring rather than after."""

    def parse_args(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        parsed = super().parse_args(*args, **kwargs)
        try:
            RESULTS.mkdir(parents=True, exist_ok=True)
            check_writable(RESULTS / "results.json")
        except OSError as err:
            self.error(f"cannot write the results into {RESULTS} (EMOLIVE_BENCH_RESULTS): "
                       f"{err.strerror or err}")
        return parsed


def parser_for(doc: str | None, writes_results: bool = True) -> argparse.ArgumentParser:
    """An argument parser whose --help describes a benchmark by its docstring's first paragraph,
    joined into one sentence (a paragraph leading into a list or a command ended in ":"); for
    a benchmark that ``writes_results``, it also checks the results folder."""
    first = " ".join((doc or "").split("\n\n")[0].split())
    kind = _BenchmarkParser if writes_results else argparse.ArgumentParser
    return kind(description=first[:-1] + "." if first.endswith(":") else first)


def count_option(what: str, low: int = 1) -> Any:
    """An argparse type: a whole number >= ``low`` (a bad one is a usage error, exit 2)."""
    return integer_in(low, None, what)


def bpm_option(what: str = "--bpm") -> Any:
    """An argparse type: a tempo the engine takes (BPM_RANGE)."""
    return number_in(*BPM_RANGE, what)


def summary_us(samples_us: np.ndarray | list[float]) -> dict[str, float]:
    """median, p99, max and mean of samples in microseconds."""
    a = np.asarray(samples_us, dtype=np.float64)
    return {"n": int(a.size), "median_us": float(np.median(a)),
            "p99_us": float(np.percentile(a, 99)), "max_us": float(a.max()),
            "mean_us": float(a.mean())}


def bars_from_steps(step_us: np.ndarray) -> np.ndarray:
    """Per-bar times: sums of consecutive, non-overlapping runs of 16 step times."""
    a = np.asarray(step_us, dtype=np.float64)
    whole = (a.size // STEPS_PER_BAR) * STEPS_PER_BAR
    return a[:whole].reshape(-1, STEPS_PER_BAR).sum(axis=1)


def _cpu_ticks() -> dict[int, tuple[int, str]]:
    """Every process's user + system CPU time so far (clock ticks) and its command line."""
    ticks: dict[int, tuple[int, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            args = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            args = args.strip() or f"[{(stat.parent / 'comm').read_text().strip()}]"  # a kernel thread
        except (OSError, IndexError):
            continue  # gone meanwhile
        ticks[int(stat.parent.name)] = (int(fields[11]) + int(fields[12]), args.strip())
    return ticks


def busy_processes(window_s: float = 1.0) -> list[str]:
    """Other processes above 20% of a core over the last ``window_s`` (e.g. a training run), as
    'pid cpu% command'. Measured over the window from /proc (Linux; elsewhere none): ps's %CPU is
    the average over a process's whole life, so a process that had just gone idle read as
    busy, and one that had just begun as idle."""
    before = _cpu_ticks()
    if not before:
        return []
    time.sleep(window_s)
    hertz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (ticks, args) in _cpu_ticks().items():
        if pid == os.getpid() or pid not in before:
            continue
        percent = 100.0 * (ticks - before[pid][0]) / hertz / window_s
        if percent > 20.0:
            busy.append(f"{pid} {percent:.0f}% {args[:100]}")
    return busy


def machine() -> dict[str, Any]:
    """CPU model, core count, OS, load average and competing processes at this moment."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    busy = busy_processes()
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(),
            "python": platform.python_version(), "loadavg": list(os.getloadavg()),
            "busy_processes": busy, "under_load": bool(busy),
            "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}


def print_machine(info: dict[str, Any]) -> None:
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['os']}, "
          f"load {info['loadavg'][0]:.2f} at {info['time_utc']} UTC")
    if info["under_load"]:
        print("WARNING: measured UNDER LOAD; other busy processes:")
        for line in info["busy_processes"]:
            print(f"  {line}")


@dataclass
class ModelDir:
    label: str
    path: Path
    torch_source: str  # how the PyTorch eager twin was made (same weights, or same shapes)


RANDOM_MODELS = (("tiny z16 h32 L1", 16, 32, "float32"),
                 ("random z128 h512 L1", 128, 512, "float32"),
                 ("random z128 h512 L1 int8", 128, 512, "int8"))


def _random_model(work: Path, label: str, z: int, hidden: int, precision: str) -> ModelDir:
    """export_random_model (seed 0) into ``work``, once."""
    from emolive.training.export import export_random_model

    out = work / label.replace(" ", "_")
    if not (out / "model_card.json").is_file():
        export_random_model(out, z_dim=z, hidden=hidden, layers=1, seed=0,
                            decoder_precision=precision)
    return ModelDir(label, out, "same weights (export_random_model, seed 0)")


def _shipped_model() -> ModelDir | None:
    if not (DEFAULT_MODEL / "model_card.json").is_file():
        return None
    return ModelDir("shipped default", DEFAULT_MODEL,
                    "weights read back from its ONNX files (emolive.training.recover; the int8 "
                    "step's dequantised)")


def prepare_models(work: Path, include_default: bool = True) -> list[ModelDir]:
    """The models compared: the tests' tiny model, a random model of the default size (z 128,
    hidden 512, 1 layer) with a float32 and with an int8 decoder_step, and the shipped default
    model when it exists."""
    models = [_random_model(work, *spec) for spec in RANDOM_MODELS]
    shipped = _shipped_model() if include_default else None
    return models + ([shipped] if shipped else [])


def main_model(work: Path) -> ModelDir:
    """The one model of the single-model benchmarks: the shipped default, else a random one of
    the default size (exported into ``work``)."""
    return _shipped_model() or _random_model(work, *RANDOM_MODELS[1])


def torch_model(model: ModelDir) -> Any:
    """A PyTorch eager CVAE for ``model``: the very weights for random models (same seed and
    config as export_random_model), the weights read back from the ONNX files for the shipped
    one (emolive.training.recover, with its velocity calibration), else the card's
    architecture (timing depends on shapes, not on weight values)."""
    import torch

    from emolive.training.model import CVAE, ModelConfig

    if model.torch_source.startswith("weights read back"):
        from emolive.training.recover import recover_model

        return recover_model(model.path)[0]
    card = json.loads((model.path / "model_card.json").read_text())
    cfg = ModelConfig(**card["model"]) if "model" in card else ModelConfig(
        z_dim=card["sizes"]["z"], hidden=card["sizes"]["hidden"], layers=card["sizes"]["layers"])
    if model.torch_source.startswith("same weights"):
        torch.manual_seed(0)
        s = card["sizes"]
        cfg = ModelConfig(z_dim=s["z"], hidden=s["hidden"], layers=s["layers"],
                          enc_hidden=s["hidden"], emb_dim=8, frame_proj=s["hidden"])
    return CVAE(cfg).eval()


def write_results(name: str, data: dict[str, Any]) -> Path:
    """``RESULTS/<name>.json``, replaced whole or not at all. When it cannot be written (a full
    disk) the results go to stderr instead, and the benchmark exits 1: measured, not lost."""
    path = RESULTS / f"{name}.json"
    text = json.dumps(data, indent=2) + "\n"
    try:
        RESULTS.mkdir(parents=True, exist_ok=True)
        with replaced_on_success(path) as written:
            written.write_text(text)
    except OSError as err:
        sys.stderr.write(text)
        raise SystemExit(f"could not write {path} ({err.strerror or err}); the results are "
                         "above, on stderr") from None
    print(f"results written to {path}")
    return path


def verdict(value: float, target: float, lower_is_better: bool = True) -> str:
    ok = value <= target if lower_is_better else value >= target
    return "MET" if ok else "MISSED"


@contextmanager
def one_model_run(parser: argparse.ArgumentParser,
                  argv: list[str] | None) -> Iterator[tuple[argparse.Namespace, dict[str, Any],
                                                           ModelDir]]:
    """The start of a single-model benchmark: parse ``argv``, print the machine, and yield
    (arguments, machine info, main_model()) with a scratch folder for a random model."""
    args = parser.parse_args(argv)
    info = machine()
    print_machine(info)
    with tempfile.TemporaryDirectory() as tmp:
        yield args, info, main_model(Path(tmp))
