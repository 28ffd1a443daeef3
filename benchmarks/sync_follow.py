"""Following an external MIDI clock: how far `emolive --sync` runs behind its master, over time.

    .venv/bin/python -m benchmarks.sync_follow [--bpm 123] [--seconds 30] [--start-bpm 90] [--period 1024]

Starts a private dummy JACK server, a clock master (this process: Start, then 24 ticks per beat
on absolute deadlines), `emolive --sync master --clock-out --port sink` with a random tiny
model, and a sink in a separate process that stamps every message on arrival. For each tick the
engine sends, the master's position at that moment (from the master's tick times) gives the
phase. Prints the median and
spread of the engine's lag per stretch of the run, the tempo of the engine's ticks over each
4 beats as the sink stamped them, and the Start-to-first-note latency. The server is
synchronous with ``--period`` frames at 48 kHz, so that no tick is lost on the way and the
engine's tick k pairs with the master's tick k (the lag of each is their times' difference;
an earlier version unwrapped the phase within a tick, which a period near a tick interval
defeats).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.common import bpm_option, parser_for
from emolive.cli_options import number_in
from tests.jackd import dummy_server, stop_process


def sink_main(name: str, out_path: str, seconds: float) -> None:
    """Separate process: a JACK input stamping arrivals with the system-wide monotonic clock."""
    import rtmidi

    port = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name=name, queue_size_limit=1 << 16)
    port.ignore_types(sysex=True, timing=False, active_sense=True)
    port.open_virtual_port(name)
    print("ready", flush=True)
    received, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        event = port.get_message()
        if event is None:
            time.sleep(0.0002)
            continue
        received.append((time.perf_counter(), event[0]))
    with open(out_path, "w") as handle:
        json.dump(received, handle)


def send_clock(port: object, bpm: float, seconds: float) -> tuple[float, list[float]]:
    """Start, then ticks on absolute deadlines (sleep, then spin the last millisecond)."""
    interval = 60.0 / (bpm * 24)
    start = time.perf_counter()
    port.send_message([0xFA])  # type: ignore[attr-defined]
    sent = []
    for k in range(int(seconds / interval)):
        deadline = start + k * interval
        while (left := deadline - time.perf_counter()) > 0.002:
            time.sleep(left - 0.001)
        while time.perf_counter() < deadline:
            pass
        port.send_message([0xF8])  # type: ignore[attr-defined]
        sent.append(time.perf_counter())
    port.send_message([0xFC])  # type: ignore[attr-defined]
    return start, sent


def lag_ms(master: list[float], engine: list[float]) -> np.ndarray:
    """Engine tick k against master tick k (a synchronous server loses none on the way):
    positive, the engine is behind. Both count from their Start's first tick."""
    count = min(len(master), len(engine))
    return (np.array(engine[:count]) - np.array(master[:count])) * 1e3


def four_beat_tempos(ticks: np.ndarray) -> np.ndarray:
    """BPM from the span of each run of 4 x 24 consecutive engine ticks (stamp jitter / 2 s)."""
    span = 4 * 24
    if len(ticks) <= span:
        return np.array([])
    return 60.0 * 4 / (ticks[span:] - ticks[:-span])


def main() -> None:
    parser = parser_for(__doc__, writes_results=False)
    parser.add_argument("--bpm", type=bpm_option(), default=123.0, help="the master's tempo")
    parser.add_argument("--seconds", type=number_in(1.0, 3600.0, "--seconds"), default=30.0)
    parser.add_argument("--start-bpm", type=bpm_option("--start-bpm"), default=90.0,
                        help="emolive's --bpm before it hears the clock")
    parser.add_argument("--period", type=int, choices=[64, 128, 256, 512, 1024, 2048], default=1024,
                        help="the JACK period in frames at 48 kHz")
    options = parser.parse_args()

    with dummy_server("emolive-sync", synchronous=True, period_frames=options.period):
        run(options)


def run(options: argparse.Namespace) -> None:
    import rtmidi

    from emolive.training.export import export_random_model

    with tempfile.TemporaryDirectory(prefix="emolive-sync-model-") as model, \
            contextlib.ExitStack() as children:
        export_random_model(model, z_dim=16, hidden=32, layers=1, seed=0)
        out_path = os.path.join(model, "sink.json")
        sink = children.enter_context(subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sync_follow", "--sink", "sync-sink", out_path,
             str(options.seconds + 15)], stdout=subprocess.PIPE, text=True))
        children.callback(stop_process, sink)  # also when this run fails: no process left behind
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        master_port = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="sync-master")
        master_port.open_virtual_port("sync-master")
        command = children.enter_context(subprocess.Popen(
            [sys.executable, "-m", "emolive.cli", "--port", "sync-sink", "--sync", "sync-master",
             "--model", model, "--clock-out", "--bpm", str(options.start_bpm)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        children.callback(stop_process, command)
        time.sleep(4.0)  # model loaded, ports connected
        start, master = send_clock(master_port, options.bpm, options.seconds)
        time.sleep(0.5)
        command.send_signal(signal.SIGINT)
        command.communicate(timeout=30)
        sink.wait(timeout=60)
        with open(out_path) as handle:
            received = [(t, bytes(m)) for t, m in json.load(handle)]
    engine = [t for t, m in received if m == b"\xf8"]
    first = next(t for t, m in received if m == b"\xfa")
    lags = lag_ms(master, engine)
    since = np.array(engine[:len(lags)]) - start
    print(f"master {options.bpm} BPM for {options.seconds:.0f} s ({len(master)} ticks), JACK period "
          f"{options.period} frames; emolive started at --bpm {options.start_bpm}; sink got {len(engine)} of its ticks")
    print(f"master Start -> emolive's Start at the sink: {(first - start) * 1e3:.1f} ms")
    edges = [0, 2, 5, 10, 20, options.seconds]
    for low, high in zip(edges, edges[1:]):
        chosen = lags[(since >= low) & (since < high)]
        if chosen.size:
            tempo = four_beat_tempos(np.array(engine)[(since >= low) & (since < high)])
            tempo_text = f", tempo over 4 beats {tempo.min():.2f}..{tempo.max():.2f}" if tempo.size else ""
            print(f"  {low:4.0f}-{high:4.0f} s: lag median {np.median(chosen):+6.1f} ms, "
                  f"p5 {np.percentile(chosen, 5):+6.1f}, p95 {np.percentile(chosen, 95):+6.1f}{tempo_text}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--sink":
        sink_main(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        main()
