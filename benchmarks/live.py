"""Live figures through a real (dummy) JACK server and an independent receiver:

- start of the `emolive` process to the first note-on arriving at the receiver, and the
  process's resident memory while playing (targets: <= 0.5 s, <= 150 MB);
- end-to-end delivery: for every message, arrival at the receiver minus the moment the engine
  sent it (the engine records with record=True while also sending to the port; both clocks are
  CLOCK_MONOTONIC); and arrival minus the message's ideal time on the beat grid.

    .venv/bin/python -m benchmarks.live [--runs 10] [--seconds 20] [--without-memlock]

Resident memory is split by mapping (/proc/PID/smaps): JACK's shared memory is mapped once per
process whatever its number of JACK clients, is sized by the server (102.4 MB for a default
`jackd`: --port-max 2048) and is locked into memory by libjack where RLIMIT_MEMLOCK allows
(root, or the audio group's unlimited limit), so all of it counts in VmRSS; its Pss (the share
charged to this process) is smaller because the server and the receiver map it too.
``--without-memlock`` runs `emolive` as an account whose limit refuses that lock (as a desktop
account without JACK's realtime limits: RLIMIT_MEMLOCK 8 MB): as root, without CAP_IPC_LOCK
(util-linux `setpriv`); libjack then says "Cannot lock down ... memory area" and maps the
segment without locking it, so only the pages it touches are resident. Results go to
``live_without_memlock.json``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (bpm_option, count_option, one_model_run, parser_for, summary_us, verdict,
                               write_results)
from benchmarks.jack_io import PERIOD_FRAMES, RATE_HZ, Receiver, jack_server
from emolive.cli_options import number_in

START_TARGET_S = 0.5
RSS_TARGET_MB = 150.0


def proc_rss_mb(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM (peak) and the parts of RSS (anonymous, file-backed, shared memory such
    as JACK's buffers in /dev/shm) of a process, in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            values[key] = int(line.split()[1]) / 1024.0
    return values


def rss_by_mapping_mb(pid: int) -> dict[str, float]:
    """Resident memory of a process by what is mapped, in MB: JACK's shared memory (its Rss
    and Pss), ONNX Runtime's library, other files (Python, numpy, libjack, libc...) and
    anonymous memory (heaps: Python objects, ONNX Runtime's sessions and arenas; stacks)."""
    parts = dict.fromkeys(("jack_shm", "jack_shm_pss", "onnxruntime_lib", "other_files",
                           "anonymous"), 0.0)
    where = "anonymous"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
            path = fields[5] if len(fields) > 5 else ""
            if path.startswith("/dev/shm/jack"):
                where = "jack_shm"
            elif "libonnxruntime" in path:
                where = "onnxruntime_lib"
            elif path.startswith("/") and fields[4] != "0":  # a file (inode != 0)
                where = "other_files"
            else:  # [heap], [stack], unnamed
                where = "anonymous"
        elif fields[0] == "Rss:":
            parts[where] += int(fields[1]) / 1024.0
        elif fields[0] == "Pss:" and where == "jack_shm":
            parts["jack_shm_pss"] += int(fields[1]) / 1024.0
    return parts


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def without_memlock() -> list[str]:
    """A command prefix (util-linux) that runs a program held to an 8 MB RLIMIT_MEMLOCK, a
    desktop account's default; as root also without CAP_IPC_LOCK (which overrides the limit):
    dropped from the bounding and inheritable sets, the exec'd program keeps root's uid only."""
    prefix = ["prlimit", "--memlock=8388608:8388608"]
    if os.geteuid() == 0:
        prefix += ["setpriv", "--bounding-set", "-ipc_lock", "--inh-caps", "-ipc_lock"]
    return prefix


def _first_note_or_exit(proc: subprocess.Popen, receiver: Receiver, timeout_s: float) -> bool:
    """Whether a note-on reached ``receiver`` within ``timeout_s``; RuntimeError with emolive's
    own message when it exits first (a failed start was reported, after 30 s, as an empty
    sequence in the memory figures)."""
    deadline = time.monotonic() + timeout_s
    while not receiver.first_note_on.wait(timeout=0.05):
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise RuntimeError(f"emolive exited with status {proc.returncode} before its first "
                               f"note: {err or '(nothing on stderr)'}")
        if time.monotonic() > deadline:
            return False
    return True


def start_to_first_note(model: Path, receiver: Receiver, runs: int,
                        prefix: list[str] | None = None) -> dict[str, Any]:
    emolive = Path(sys.executable).with_name("emolive")
    times, rss, hwm, cpu, parts = [], [], [], [], []
    for _ in range(runs):
        receiver.clear()
        started = time.monotonic()
        proc = subprocess.Popen([*(prefix or []), str(emolive), "--port", receiver.name,
                                 "--model", str(model), "--emotion", "happy", "--bpm", "120",
                                 "--no-keys"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        got = _first_note_or_exit(proc, receiver, timeout_s=30.0)
        first = next((t for t, m in receiver.timed()
                      if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0), None)
        if got and first is not None:
            times.append(first - started)
        time.sleep(1.0)
        if proc.poll() is None:
            cpu0, wall0 = proc_cpu_s(proc.pid), time.monotonic()
            time.sleep(2.0)  # playing steadily: measure its CPU share and memory
            cpu.append(100.0 * (proc_cpu_s(proc.pid) - cpu0) / (time.monotonic() - wall0))
            mem = proc_rss_mb(proc.pid)
            mem.update(rss_by_mapping_mb(proc.pid))
            rss.append(mem["VmRSS"])
            hwm.append(mem["VmHWM"])
            parts.append(mem)
        proc.terminate()
        proc.wait(timeout=15)
    if not times or not parts:
        raise RuntimeError(f"emolive played no note within 30 s in any of {runs} runs")
    own = max(m["VmRSS"] - m.get("RssShmem", 0.0) for m in parts)
    return {"runs": runs, "first_note_s": times, "median_s": float(np.median(times)),
            "max_s": float(np.max(times)),
            "over_target": int(sum(t > START_TARGET_S for t in times)), "rss_mb": rss, "hwm_mb": hwm, "cpu_percent": cpu,
            "rss_parts_mb": parts,
            "targets": {
                f"start to first note-on median {np.median(times):.3f} s <= {START_TARGET_S} s":
                    verdict(float(np.median(times)), START_TARGET_S),
                f"resident memory (peak VmRSS) {max(hwm):.1f} MB <= {RSS_TARGET_MB:.0f} MB":
                    verdict(max(hwm), RSS_TARGET_MB),
                f"own memory (VmRSS minus JACK's shared memory) {own:.1f} MB <= "
                f"{RSS_TARGET_MB:.0f} MB": verdict(own, RSS_TARGET_MB)}}


def delivery(model: Path, receiver: Receiver, seconds: float, bpm: float) -> dict[str, Any]:
    from emolive import Engine

    receiver.clear()
    with Engine(model=model, port=receiver.name, record=True, bpm=bpm, seed=3,
                clock_out=True) as engine:
        time.sleep(0.2)  # past the port's connection settle, so play() does not wait for it
        before = time.monotonic()
        engine.play("happy")
        after = time.monotonic()
        time.sleep(seconds)
        engine.stop()
        time.sleep(0.3)
        sent = engine.recorded()
    received = receiver.timed()
    origin = (before + after) / 2  # the engine's play() instant, within +-(after-before)/2
    n = min(len(sent), len(received))
    same_order = all(sent[i][1] == received[i][1] for i in range(n))
    latency_us = np.array([(received[i][0] - origin - sent[i][0]) * 1e6 for i in range(n)])
    # Clock ticks: 24 per quarter; tick k is due at k * 60 / bpm / 24 after the first tick.
    ticks = [t for t, m in received if m == b"\xf8"]
    tick_s = 60.0 / bpm / 24.0
    grid_error_us = (np.array(ticks) - ticks[0] - np.arange(len(ticks)) * tick_s) * 1e6
    return {"seconds": seconds, "bpm": bpm, "sent": len(sent), "received": len(received),
            "same_order": same_order, "origin_uncertainty_us": (after - before) * 1e6 / 2,
            "jack_period_us": PERIOD_FRAMES / RATE_HZ * 1e6,
            "send_to_arrival": summary_us(latency_us),
            "clock_tick_grid_error": summary_us(np.abs(grid_error_us - np.median(grid_error_us)))}


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--runs", type=count_option("--runs"), default=10,
                        help="emolive processes started for the start-up figures (default: %(default)s)")
    parser.add_argument("--seconds", type=number_in(1.0, 86400.0, "--seconds"), default=20.0,
                        help="seconds of the delivery run")
    parser.add_argument("--bpm", type=bpm_option(), default=120.0, help="tempo (default: %(default)s)")
    parser.add_argument("--without-memlock", action="store_true",
                        help="run emolive without the right to lock JACK's shared memory")
    with one_model_run(parser, argv) as (args, info, model), jack_server():
        receiver = Receiver(f"EMOLIVE-BENCH-{os.getpid()}")
        prefix = without_memlock() if args.without_memlock else None
        try:
            start = start_to_first_note(model.path, receiver, args.runs, prefix)
            deliv = delivery(model.path, receiver, args.seconds, args.bpm)
        except RuntimeError as err:  # emolive did not start: its own message, no figures
            print(f"benchmarks.live: error: {err}", file=sys.stderr)
            return 1
        finally:
            receiver.close()
    print(f"\n== `emolive` process start -> first note-on at a JACK receiver ({model.label}), "
          f"{args.runs} runs: " + ", ".join(f"{t:.3f}" for t in start["first_note_s"]) + " s")
    print(f"median {start['median_s']:.3f} s, max {start['max_s']:.3f} s, "
          f"{start['over_target']} of {len(start['first_note_s'])} over {START_TARGET_S} s")
    print(f"resident memory while playing: {max(start['rss_mb']):.1f} MB (peak "
          f"{max(start['hwm_mb']):.1f} MB); CPU while playing at 120 BPM: "
          + ", ".join(f"{c:.0f}%" for c in start["cpu_percent"]))
    last = start["rss_parts_mb"][-1]
    print(f"  RSS parts (last run): anonymous {last.get('RssAnon', 0):.1f} MB, files "
          f"{last.get('RssFile', 0):.1f} MB, shared memory (JACK) {last.get('RssShmem', 0):.1f} MB")
    print(f"  by mapping: JACK shared memory {last['jack_shm']:.1f} MB (Pss "
          f"{last['jack_shm_pss']:.1f} MB), ONNX Runtime library {last['onnxruntime_lib']:.1f} MB, "
          f"other files {last['other_files']:.1f} MB, anonymous {last['anonymous']:.1f} MB")
    for text, ok in start["targets"].items():
        print(f"  target {ok:6s} {text}")
    s, g = deliv["send_to_arrival"], deliv["clock_tick_grid_error"]
    print(f"\n== end-to-end JACK delivery, {args.seconds:g} s at {args.bpm:g} BPM: "
          f"{deliv['sent']} sent, {deliv['received']} received, same order: "
          f"{deliv['same_order']}; JACK period {deliv['jack_period_us']:.0f} us")
    print(f"send -> arrival: median {s['median_us']:.0f} us, p99 {s['p99_us']:.0f} us, max "
          f"{s['max_us']:.0f} us (origin +-{deliv['origin_uncertainty_us']:.0f} us)")
    print(f"clock ticks at the receiver vs the ideal grid: median |error| "
          f"{g['median_us']:.0f} us, p99 {g['p99_us']:.0f} us, max {g['max_us']:.0f} us")
    if prefix:
        print(f"  (emolive ran as: {' '.join(prefix)})")
    write_results("live_without_memlock" if args.without_memlock else "live",
                  {"machine": info, "model": model.label, "startup": start, "delivery": deliv,
                   "memlock": "denied" if args.without_memlock else "as the account allows"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
