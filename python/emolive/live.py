"""`emolive` live: play into a MIDI port until a signal, steered by keys, controllers and a clock.

Every way out (Ctrl-C = SIGINT, SIGTERM, SIGHUP when the terminal closes, the other stop
signals of ``StopSignals``, `q`, a lost virtual port) ends in ``engine.close()``, which sends a
note-off for every sounding note, then sustain off, all notes off and all sound off: nothing is
left sounding. A lost named port is waited
for: the engine reconnects when a port of that name is back.
"""

from __future__ import annotations

import argparse
import functools
from collections import deque
import os
import threading
import time
from contextlib import ExitStack
from typing import Any

from emolive import _core, input_port, ports
from emolive.cli_options import LIVE_MORPH_BARS, UsageError, nan_onsets_warning, open_engine, start_emotion
from emolive.emotions import Weights, describe
from emolive.live_keys import HELP, KeyCommands
from emolive.live_signals import StopSignals, SuspendSignal
from emolive.midi_control import CcMap, CcSteering
from emolive.clock_follower import MAX_BPM, MIN_BPM, STOP
from emolive.sync import ClockSync, MessageClock
from emolive.terminal import Keyboard, StatusLine

POLL_S = 0.05  # how often the main loop looks at keys, controllers, clock and stats (seconds)
#: How long a suspend waits after the notes are ended before the process stops: JACK delivers
#: queued messages in its next process cycle, whose thread is this process's and stops with it
#: (5 notes kept sounding through a Ctrl-Z without it). A few periods (43 ms at 2048 frames / 48
#: kHz) and a margin, as the engine's own close waits.
DELIVERY_WAIT_S = 0.1
MISSED_STEPS_SAID = 4  # missed steps (decoded too late to play) from which the model's slowness is said
BEYOND_RANGE_SETTLE_S = 1.0  # a master beyond 20..400 BPM is said once its reading stays beyond this long


def output_choice(args: argparse.Namespace) -> dict[str, Any]:
    """Engine keyword arguments for the output: --virtual, --port, or $EMOLIVE_PORT."""
    if args.virtual is not None:
        if not ports.virtual_ports_supported():
            raise UsageError("this platform has no virtual MIDI ports; " + ports.platform_hint())
        return {"virtual": args.virtual}
    if args.port is not None and not args.port.strip():
        raise UsageError("--port is empty; name an output port (emolive --list-ports lists them)")
    query = args.port or os.environ.get("EMOLIVE_PORT", "").strip()
    if not query:
        names = _output_names_or_empty()
        raise UsageError("say where the notes go: --port NAME, --virtual [NAME], or set EMOLIVE_PORT; "
                         + ports.describe_ports(names) + "; "
                         + ports.platform_hint(midi_system_runs=bool(names) or _midi_system_opens()))
    return {"port": query}


def output_label(output: dict[str, Any], engine: Any) -> str:
    """``MIDI port 'IAC Driver Bus 1'`` or ``virtual MIDI port 'emolive'``, for the banner. The
    name is the one the engine matched (listing the ports again would open another MIDI client
    before the first note)."""
    kind = "virtual MIDI port" if "virtual" in output else "MIDI port"
    return f"{kind} {engine.port_name!r}"  # a virtual one's as Engine opened it


def _midi_system_opens() -> bool:
    try:
        from emolive.outputs import midi_system_opens

        return midi_system_opens()
    except Exception:  # noqa: BLE001 - no engine or no backend: no MIDI system to speak of
        return False


def _output_names_or_empty() -> list[str]:
    try:
        return ports.output_port_names()
    except Exception:  # noqa: BLE001 - no backend: there are simply no ports to list
        return []


class Session:
    """The main loop of one live run; ``run`` returns the exit status."""

    def __init__(self, engine: Any, args: argparse.Namespace, emotion: Weights) -> None:
        self.engine = engine
        self.args = args
        self.emotion = emotion
        self.status = StatusLine(quiet=args.quiet)
        self.steering = CcSteering(CcMap(args.valence_cc, args.arousal_cc, args.control_channel), start=emotion)
        self.commands = KeyCommands(engine, args.glide_bars, transport_is_external=args.sync is not None,
                                    on_emotion=self.steering.aim)
        self.sync = ClockSync(engine, self._start_synced)
        self._sync_clock = MessageClock()  # the --sync port's time (seconds)
        self._input_names: dict[str, str] = {}  # query -> the port it opened
        self.notices: deque[str] = deque()  # lines from the input threads, shown by the main loop
        self._controllers_applied = threading.Lock()  # apply_controllers: main loop, sync thread
        self._told_beyond_range = False  # said that the master's tempo is beyond 20..400 BPM
        self._beyond_range_since: float | None = None  # monotonic time it went beyond
        self.port_error: str | None = None  # why the output is lost; None while it plays
        self.said_short_of_files = False  # while it is lost: that clients are refused for want of files
        self.said_missed_steps = 0  # missed steps when the model's slowness was last said (0: never)
        self.said_nonfinite = False  # said that the model gave NaN onsets
        self.said_clock_source: str | None = None  # the port --clock-out was last said to leave from

    def open_inputs(self, stack: ExitStack) -> None:
        """Open --control-port and --sync (one port when both name the same one)."""
        wanted: dict[str, list[input_port.MessageCallback]] = {}
        if self.args.control_port:
            wanted.setdefault(self.args.control_port, []).append(lambda msg, _delta: self.steering.feed(msg))
        if self.args.sync:
            clock = self._sync_clock  # only this port's callback advances it
            wanted.setdefault(self.args.sync, []).append(
                lambda msg, delta: self.sync.feed(msg, clock.advance(delta)))
        for query, sinks in wanted.items():
            def deliver(message: bytes, delta_s: float, sinks: list[input_port.MessageCallback] = sinks) -> None:
                for sink in sinks:
                    sink(message, delta_s)
            syncs = query == self.args.sync
            port = stack.enter_context(input_port.InputPort(
                query, deliver, client_name="emolive-in",
                on_connection=functools.partial(self.input_changed, query, syncs=syncs)))
            self._input_names[query] = port.name
            self.status.message(f"listening on MIDI input {port.name!r}")

    def input_changed(self, query: str, back: bool, syncs: bool) -> None:
        """On an input's thread: its source port went or is back. A lost clock master stops the
        engine as its Stop would (it can no longer send one); its next Start or Continue plays."""
        name = self._input_names.get(query, query)
        if back:
            self.notices.append(f"emolive: MIDI input {name!r} is back")
            return
        was_running = syncs and self.sync.follower.running
        if syncs:  # also while waiting for the master's bar line: its next Start starts afresh
            self.sync.feed(bytes([STOP]), self._sync_clock.now_s)
        if was_running:
            self.notices.append(f"emolive: MIDI input {name!r} lost: the clock master is gone, so "
                                "playing stopped; waiting for it to come back")
        else:
            self.notices.append(f"emolive: MIDI input {name!r} lost; waiting for it to come back")

    def set_starting_emotion(self) -> None:
        """The starting emotion (or --morph-to's glide from it), set in the stopped engine before
        anything else can change it: what a key, `/` or a controller sets while --sync waits for
        the master's Start then stands, and the status line shows it meanwhile. (Set at the
        start, it overwrote those choices after confirming them, and the waiting status line
        showed the engine's calm.)"""
        self.engine.set_emotion(self.emotion)
        if self.args.morph_to is not None:
            bars = self.args.morph_bars if self.args.morph_bars is not None else LIVE_MORPH_BARS
            self.engine.set_emotion(self.args.morph_to, bars=bars)
            self.steering.aim(self.args.morph_to)

    def start(self) -> None:
        """Play; under --sync at the master's bar, and when the master starts again, on from
        where its Stop left the music. Controller values not yet applied go first."""
        self.apply_controllers()
        self.engine.resume(bar=self.sync.follower.start_bar if self.args.sync else 0)

    def run(self, stop: StopSignals) -> int:
        keyboard = None
        self.set_starting_emotion()
        with ExitStack() as stack:
            suspend = stack.enter_context(SuspendSignal())
            try:
                self.open_inputs(stack)
            except Exception:
                # A Ctrl-C while libjack opens the input's client interrupts its socket reads
                # (EINTR) and the open fails ("JACK server not running?"): that is the stop asked
                # for, not an error (seen in 7 of 250 runs with SIGINT 0-0.4 s after the banner).
                if stop.requested:
                    return stop.status_while_starting  # still starting: nothing played
                raise
            if not self.args.no_keys and Keyboard.available():
                keyboard = stack.enter_context(Keyboard())
                self.status.message(HELP)
            if stop.requested:  # while the inputs opened: still starting, nothing played
                return stop.status_while_starting
            if self.args.sync:
                self.status.message(f"waiting for MIDI Start on {self.args.sync!r}")
            else:
                self.start()
            while not stop.requested and not self.commands.quit_requested:
                if suspend.requested:
                    self.suspend(suspend, keyboard)
                try:
                    key = keyboard.read(POLL_S) if keyboard else stop.wait(POLL_S)
                except (EOFError, OSError):  # the terminal went away (its SIGHUP may follow)
                    stop.received = stop.received or "terminal closed"
                    break
                if key is not None:
                    self.commands.press(key)
                self.apply_controllers()
                stats = self.engine.stats()
                if self.port_gone_for_good(stats):
                    return 1
                if stats.get("generator_error"):  # the engine has already ended its notes
                    self.status.message("emolive: error: the model failed while playing: "
                                        f"{stats['generator_error']}")
                    return 1
                self.say_when_the_model_falls_behind(stats)
                self.say_when_the_model_gives_nan(stats)
                self.say_where_the_clock_goes()
                self.show(stats)
        return 0

    def say_when_the_model_gives_nan(self, stats: dict[str, Any]) -> None:
        """Said once: a model whose decoder step gives NaN onsets for some input (its load check,
        at one silent input, passed) plays nothing on those keys (helper-65: silence, no word)."""
        if stats.get("nonfinite_steps") and not self.said_nonfinite:
            self.said_nonfinite = True
            self.status.message(nan_onsets_warning(stats["nonfinite_steps"]))

    def say_when_the_model_falls_behind(self, stats: dict[str, Any]) -> None:
        """Steps the model did not decode in time play nothing: said at MISSED_STEPS_SAID, and
        again at each tenfold (a model too slow for the tempo lost most of its notes, and the
        status line said "late 0", helper-65; said at each doubling it made 7 lines in 5 s,
        helper-66). One missed step of a loaded machine is not worth a line."""
        missed = stats.get("missed_steps", 0)
        if missed >= max(MISSED_STEPS_SAID, 10 * self.said_missed_steps):
            step_ms = 60_000.0 / (stats["bpm"] * 4) if stats["bpm"] else 0.0
            steps = f"{missed} step{'s' if missed != 1 else ''} not decoded in time played nothing"
            timing = f"a 16th note lasts {step_ms:.0f} ms at {stats['bpm']:.1f} BPM"
            if busy := machine_busy():
                self.status.message(f"emolive: the machine is too busy for the model: {steps} ({timing}; {busy}); "
                                    "free the CPU, lower the tempo, or use a faster model")
            else:
                self.status.message(f"emolive: the model cannot keep up: {steps} ({timing}); lower the tempo, "
                                    "or use a faster model")
            self.said_missed_steps = missed

    def suspend(self, suspend: SuspendSignal, keyboard: Keyboard | None) -> None:
        """Ctrl-Z: every note ended and the terminal's mode given back, then the process stops as
        Ctrl-Z stops any program. Continued (`fg`, or `bg`: it plays in the background, keys
        unread there), it plays on at the next bar line if it was playing; under --sync the
        master's next Start or Continue plays, as after its Stop (its clock went on meanwhile)."""
        was_playing = self.engine.is_playing
        self.engine.stop()
        if self.args.sync:
            self.sync.feed(bytes([STOP]), self._sync_clock.now_s)
        self.status.message("emolive: suspended (Ctrl-Z): every note ended; fg plays on")
        if keyboard is not None:
            keyboard.release()
        time.sleep(DELIVERY_WAIT_S)
        suspend.stop_here()
        if self.args.sync:
            self.status.message("emolive: continued; waiting for the clock master's Start or Continue")
        elif was_playing:
            self.engine.resume()  # a glide under way goes on to its target
            self.status.message("emolive: continued")

    def say_where_the_clock_goes(self) -> None:
        """With --clock-out: the port a follower's --sync names, at the start and again when a
        restarted JACK server gave the client another name (another emolive had taken it).
        Looked at in every turn of the main loop (a string read under a lock): after a restart
        the name is found a check or two after the output's failure clears, and a look only at
        that moment read the old one, or none (helper-75)."""
        source = self.engine.source_port if self.args.clock_out else None
        if source and source != self.said_clock_source:
            now = " now" if self.said_clock_source else ""
            self.status.message(f"emolive: MIDI clock out{now} from {source!r}")
            self.said_clock_source = source

    def port_gone_for_good(self, stats: dict[str, Any]) -> bool:
        """A lost output: a virtual port ends the run (it has nothing to come back to) unless
        it may still return (a stalled JACK server); otherwise say so and play on silently: the
        engine reconnects when the port is back."""
        error = stats.get("port_error")
        if error and self.args.virtual is not None and not stats.get("port_may_return"):
            self.status.message(f"emolive: error: MIDI output failed: {error}")
            return True
        if error and not self.port_error:
            self.status.message(f"emolive: MIDI output lost: {error}; waiting for it to come "
                                "back (Ctrl-C quits)")
        elif error and error != self.port_error:  # e.g. a stalled server runs again, the port gone
            self.status.message(f"emolive: MIDI output still lost: {error}")
        elif self.port_error and not error:
            self.status.message("emolive: MIDI output is back; playing into it again")
        if not error:
            self.said_short_of_files = False
        elif not self.said_short_of_files and _core.descriptors_were_short():
            # Silent otherwise: a JACK server's restart leaves the old clients (never closed) holding
            # their files, and new ones were refused for ever at ulimit -n 40 (helper-60).
            self.status.message(f"emolive: no MIDI client can open again: {_core.TOO_FEW_DESCRIPTORS}")
            self.said_short_of_files = True
        self.port_error = error or None
        return False

    def apply_controllers(self) -> None:
        """The controllers' newest point to the engine. Called by the main loop and, under
        --sync, by the master's Start on the input thread: one at a time, so that a point taken
        earlier is never applied after a later one (which then waited for the next CC)."""
        with self._controllers_applied:
            weights = self.steering.take()
            if weights is not None:
                self.engine.set_emotion(weights, bars=0)  # controllers move smoothly by themselves

    def _start_synced(self) -> float:
        """The master started: play (on the MIDI input thread); the tempo the engine plays at."""
        self.start()
        return float(self.engine.stats()["bpm"])

    def show(self, stats: dict[str, Any]) -> None:
        while self.notices:
            self.status.message(self.notices.popleft())
        for text in self.commands.messages:
            self.status.message(text)
        self.commands.messages.clear()
        prompt = self.commands.prompt()
        if prompt is not None:
            self.status.show(prompt, keep_end=True)
        else:
            playing = self.engine.is_playing
            follower = self.sync.follower
            waiting = not playing and follower.waiting_for_bar_line
            master = follower.measured_bpm
            note = self._beyond_range_note(master)
            if master is not None:  # synced: the master's tempo, not the phase lock's nudge of it
                stats = dict(stats, bpm=master)
            self.status.show(status_text(stats, playing, waiting_for_bar_line=waiting, tempo_note=note))

    def _beyond_range_note(self, master_bpm: float | None) -> str:
        """For a master beyond the engine's 20..400 BPM: the status line's note (emolive plays at
        the nearest tempo it can and drifts from the master), and once a message; else ""."""
        if master_bpm is None or MIN_BPM - 0.5 <= master_bpm <= MAX_BPM + 0.5:
            self._beyond_range_since = None
            self._told_beyond_range = False
            return ""
        nearest = MAX_BPM if master_bpm > MAX_BPM else MIN_BPM
        now = time.monotonic()
        if self._beyond_range_since is None:
            self._beyond_range_since = now
        # Said once the reading has stayed beyond for a second: the first readings of a change
        # are still settling (a steady 450 BPM master was announced as 416.1).
        if not self._told_beyond_range and now - self._beyond_range_since >= BEYOND_RANGE_SETTLE_S:
            self._told_beyond_range = True
            self.status.message(f"emolive: the master's tempo, {master_bpm:.1f} BPM, is beyond the "
                                f"{MIN_BPM:g}..{MAX_BPM:g} BPM emolive plays: it plays at {nearest:g} "
                                "BPM and drifts from the master's beat")
        return f" (emolive at {nearest:g})"


def machine_busy() -> str:
    """"load 3.4 on 2 cores" when the last minute's load average is at least one more than the
    cores this process may run on (other programs take the CPU the model needs: a slow model
    was blamed for a busy machine; the one more is emolive's own generator, busy all the time
    with a model too slow alone), else "" (also where the load cannot be read). In a container
    held to some of a host's cores the load is the host's: a busy host is named so too."""
    try:
        load = os.getloadavg()[0]
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    except OSError:
        return ""
    return f"load {load:.1f} on {cores} core{'s' if cores != 1 else ''}" if load >= cores + 1 else ""


def status_text(stats: dict[str, Any], playing: bool, waiting_for_bar_line: bool = False,
                tempo_note: str = "") -> str:
    """``playing | happy:0.70,calm:0.30 | bar 12 | 120.0 BPM | temperature 1.00 | notes 345 | late 0``;
    the first field is ``waiting for the master's bar line`` while --sync waits to start."""
    late = f"late {stats['late_notes']}"
    if stats["late_notes"]:
        late += f" (max {stats['max_lateness_us'] / 1000.0:.1f} ms)"
    if missed := stats.get("missed_steps"):
        late += f" | missed {missed} step{'s' if missed != 1 else ''}"
    return " | ".join([
        _transport(playing, waiting_for_bar_line), _blend(stats["emotion"]), f"bar {stats['bar']}",
        f"{stats['bpm']:.1f} BPM{tempo_note}", f"temperature {stats['temperature']:.2f}",
        f"notes {stats['notes_sent']}", late])


def _transport(playing: bool, waiting_for_bar_line: bool) -> str:
    if playing:
        return "playing"
    return "waiting for the master's bar line" if waiting_for_bar_line else "stopped"


def _cleaned(weights: Any) -> list[float]:
    """Weights read back from the engine, float noise of a glide (a weight of -1e-9) removed."""
    return [max(0.0, float(w)) for w in weights]


def _blend(weights: Any) -> str:
    cleaned = _cleaned(weights)
    return describe(cleaned) if sum(cleaned) > 0.0 else "?"


def check_inputs(args: argparse.Namespace) -> None:
    """InputPortError (listing the inputs) now, before the model loads and the output opens,
    when --control-port or --sync names no input port; UsageError when one is empty (it was
    ignored: `--sync "$MASTER"` with the variable unset played free-running and said nothing)."""
    for flag, query in (("--control-port", args.control_port), ("--sync", args.sync)):
        if query is not None and not query.strip():
            raise UsageError(f"{flag} is empty; name an input port (emolive --list-ports lists them)")
    queries = [query for query in (args.control_port, args.sync) if query]
    if queries:
        names = input_port.input_port_names()
        for query in queries:
            ports.match_input_port(names, query)


def run_live(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Play until a signal or `q`; returns the exit status."""
    emotion = start_emotion(args, parser)
    CcMap(args.valence_cc, args.arousal_cc, args.control_channel)  # refused now, before the model loads
    output = output_choice(args)
    ports.quiet_libjack()
    check_inputs(args)
    from emolive import PortError

    # Signals are caught from here on: a Ctrl-C while the model loads ends the run cleanly too.
    with StopSignals() as stop:
        try:
            engine = open_engine(args, clock_out=args.clock_out, **output)
        except PortError as exc:
            # A Ctrl-C while libjack registers the port interrupts it ("JACK error creating
            # virtual port"): the stop asked for while still starting, not an error.
            if stop.requested:
                return stop.status_while_starting
            if output.get("port") is not None and not args.port:
                raise PortError(f"EMOLIVE_PORT={output['port']!r}: {exc}") from None
            raise
        if stop.requested:  # while the model loaded: it ends before a note (it played one, exit 0)
            engine.close()
            return stop.status_while_starting
        session = Session(engine, args, emotion)
        session.status.message(
            f"emolive: model {engine._model_name() or '?'!r} -> {output_label(output, engine)}, channel "
            f"{args.channel} (MIDI only: the sound comes from the instrument listening there)")
        session.say_where_the_clock_goes()
        try:
            if args.key:
                engine.set_key(args.key, args.scale)
            code = session.run(stop)
        finally:
            engine.close()
            session.status.finish()
    stats = engine.stats()
    reason = f" ({stop.received})" if stop.received else ""
    count = stats["missed_steps"]
    missed = f"{count} step{'s' if count != 1 else ''} missed, " if count else ""
    sent = f"{stats['notes_sent']} note{'s' if stats['notes_sent'] != 1 else ''}"
    owed = stats["owed_note_offs"]
    unsent = (f"; {owed} note-off{'s' if owed != 1 else ''} could not be sent (the MIDI output was "
              "down): the instrument may hold those notes" if owed else "")
    session.status.message(f"emolive: stopped{reason}: {sent}, {stats['late_notes']} late, "
                           f"{missed}{stats['sounding']} left sounding{unsent}")
    return code
