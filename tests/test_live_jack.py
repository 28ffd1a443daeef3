"""Live MIDI through a real (dummy-driver) JACK server: the engine's RtMidi output into a
python-rtmidi input port, as a DAW would receive it."""

from __future__ import annotations

import gc
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from emolive import Engine, PortError, find_port, list_ports
from tests.midi_sink import Sink

rtmidi = pytest.importorskip("rtmidi")
pytestmark = pytest.mark.jack


@pytest.fixture()
def receiver(jack_server: str) -> Iterator[Sink]:
    sink = Sink("emolive-test-receiver")
    yield sink
    sink.close()


def wait_for(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def note_balance(messages: list[bytes], channel: int) -> tuple[int, Counter]:
    ons, balance = 0, Counter()
    for m in messages:
        if m[0] == 0x90 | channel and m[2] > 0:
            ons += 1
            balance[m[1]] += 1
        elif m[0] == 0x80 | channel or (m[0] == 0x90 | channel and m[2] == 0):
            balance[m[1]] -= 1
    return ons, balance


def test_live_notes_reach_a_jack_input_and_stop_pairs_every_note_on(
        receiver: Sink, tiny_model_dir: Path) -> None:
    assert any("emolive-test-receiver" in name for name in list_ports())
    with Engine(model=tiny_model_dir, port="TEST-RECEIVER", bpm=400, seed=1, channel=2) as engine:
        engine.play("happy")
        wait_for(lambda: engine.stats()["step"] >= 24)
        engine.stop()
        stats = engine.stats()
    time.sleep(0.2)  # JACK delivers once per period (1.33 ms here); leave ample time
    messages = receiver.snapshot()
    ons, balance = note_balance(messages, channel=1)
    assert ons > 0
    assert ons == stats["notes_sent"]
    assert all(v == 0 for v in balance.values()), f"unpaired notes: {+balance}"
    assert messages[-3:] == [bytes([0xB1, 64, 0]), bytes([0xB1, 123, 0]), bytes([0xB1, 120, 0])]
    assert stats["port_error"] is None


SIGNAL_MASK_CHILD = r"""
import signal, subprocess, sys
from emolive import Engine
from emolive.input_port import input_port_names

def sigpipe_blocked():
    return signal.SIGPIPE in signal.pthread_sigmask(signal.SIG_BLOCK, [])

signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGPIPE])  # as inherited from pytest: its own clients
assert not sigpipe_blocked()

if sys.argv[2] == "default":  # as a C++ host: SIGPIPE would kill, and libjack's block stays
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)

with Engine(model=sys.argv[1], port="emolive-test-receiver") as engine:
    engine.play("calm")
    during = sigpipe_blocked()
virtual = Engine(model=sys.argv[1], virtual="emolive-mask-check")
virtual.close()
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGPIPE])  # the inputs' own rule, alone
input_port_names()  # python-rtmidi's own libjack
pipe = subprocess.run(["bash", "-c", "yes | head -1 > /dev/null; echo ${PIPESTATUS[0]}"], capture_output=True, text=True)
print(during, sigpipe_blocked(), pipe.stdout.strip())
"""


@pytest.mark.parametrize("sigpipe", ["ignored", "default"])
def test_opening_jack_clients_leaves_the_callers_signal_mask_alone(receiver: Sink, tiny_model_dir: Path,
                                                                  sigpipe: str) -> None:
    """libjack blocks SIGPIPE on the thread that opens its first client: a host's thread kept it
    blocked after Engine(), and programs it started inherited it (`yes | head -1` ended with
    status 1 and "Broken pipe", not 141; helper-63). Where SIGPIPE would kill the process
    (its default action), libjack's block is its guard for writes to a dead server, and stays.
    In a child, which starts with SIGPIPE unblocked: this process's own inputs (the receiver)
    have blocked it here, and a child inherits the mask (it passed alone, failed in CI)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", SIGNAL_MASK_CHILD, str(tiny_model_dir), sigpipe],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    want = ["False", "False", "141"] if sigpipe == "ignored" else ["True", "True", "1"]
    assert result.stdout.split() == want, (result.stdout, result.stderr[-1000:])


def test_deleting_a_playing_engine_silences_it(receiver: Sink, tiny_model_dir: Path) -> None:
    engine = Engine(model=tiny_model_dir, port="emolive-test-receiver", bpm=400, seed=2)
    engine.play("tense")
    wait_for(lambda: engine.stats()["notes_sent"] > 20)
    del engine
    gc.collect()
    time.sleep(0.2)
    ons, balance = note_balance(receiver.snapshot(), channel=0)
    assert ons > 0
    assert all(v == 0 for v in balance.values())


EXIT_WITH_A_DAEMON_THREAD = """
import sys, threading, time
from emolive import Engine
engine = Engine(model=sys.argv[1], port="emolive-test-receiver", bpm=400, seed=3)
engine.play("happy")
def wait_for_controllers():  # a function of the script: its thread holds the script's globals
    time.sleep(100)
threading.Thread(target=wait_for_controllers, daemon=True).start()
while engine.stats()["notes_sent"] < 20:
    time.sleep(0.01)
print("leaving", flush=True)
"""


def test_a_program_ending_with_a_daemon_thread_alive_still_silences_its_engine(
        receiver: Sink, tiny_model_dir: Path) -> None:
    """CPython runs no destructor of a module global while a daemon thread is alive at exit:
    the engine was never closed and the notes then sounding stayed on (52 on, 45 off)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", EXIT_WITH_A_DAEMON_THREAD, str(tiny_model_dir)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "leaving" in done.stdout, done.stderr
    wait_for(lambda: bytes([0xB0, 123, 0]) in receiver.snapshot())
    ons, balance = note_balance(receiver.snapshot(), channel=0)
    assert ons >= 20 and all(v == 0 for v in balance.values()), f"left sounding: {+balance}"


def test_virtual_output_port(jack_server: str, tiny_model_dir: Path) -> None:
    receiver = None
    try:
        with Engine(model=tiny_model_dir, virtual="emolive-virtual-out", bpm=400, seed=3) as engine:
            receiver = Sink("emolive-test-virtual-reader", source="emolive-virtual-out")
            engine.play("calm")
            wait_for(lambda: engine.stats()["step"] >= 16)
            engine.stop()
        time.sleep(0.2)
        ons, balance = note_balance(receiver.snapshot(), channel=0)
        assert ons > 0
        assert all(v == 0 for v in balance.values())
    finally:
        if receiver is not None:
            receiver.close()


def test_a_second_virtual_port_of_the_same_name_is_refused(jack_server: str, tiny_model_dir: Path) -> None:
    """Within one program the Engine that holds the name is named, and how to free it: a
    notebook's cell `engine = Engine(virtual=...)` run again met 'already open (another emolive,
    or another program)', with its own first engine playing on."""
    with Engine(model=tiny_model_dir, virtual="emolive-twice") as first:
        with pytest.raises(PortError, match=r"this program's <emolive.Engine .* port='emolive-twice' .*> has the "
                                            r"virtual port 'emolive-twice' open: close\(\) it first"):
            Engine(model=tiny_model_dir, virtual=" emolive-twice ")
        with Engine(model=tiny_model_dir, virtual="emolive-twice-2") as other:  # a longer name is another
            assert other.port_name == "emolive-twice-2"
        assert first.port_name == "emolive-twice"
    with Engine(model=tiny_model_dir, virtual="emolive-twice") as again:  # free once closed
        assert again.port_name == "emolive-twice"


def test_a_virtual_port_another_process_has_open_is_refused(jack_server: str, tiny_model_dir: Path) -> None:
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import sys; from emolive import Engine; "
                               "e = Engine(model=sys.argv[1], virtual='emolive-elsewhere'); print('open', flush=True); "
                               "sys.stdin.read(); e.close()", str(tiny_model_dir)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(PortError, match=r"a MIDI port named 'emolive-elsewhere' is already open \(another "
                                            r"emolive, or another program\)"):
            Engine(model=tiny_model_dir, virtual="emolive-elsewhere")
    finally:
        holder.communicate("", timeout=30)


def test_a_virtual_port_named_like_another_programs_jack_client_is_refused(
        jack_server: str, tiny_model_dir: Path) -> None:
    """JACK would have named emolive's client 'emolive-synth-01', and the port a DAW sees
    'emolive-synth-01:emolive-synth', not the one the banner names."""
    other = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="emolive-synth")  # a synth's client
    other.open_virtual_port("input")  # emolive-synth:input
    try:
        with pytest.raises(PortError, match="a JACK client named 'emolive-synth' is already open"):
            Engine(model=tiny_model_dir, virtual="emolive-synth")
        with Engine(model=tiny_model_dir, virtual="emolive-synth-2") as free:
            assert free.port_name == "emolive-synth-2"
    finally:
        other.delete()


def test_port_matching_and_errors(receiver: Sink) -> None:
    names = list_ports()
    index = next(i for i, n in enumerate(names) if "emolive-test-receiver" in n)
    assert find_port(names[index]) == index  # exact
    assert find_port("EMOLIVE-TEST-RECEIVER") == index  # case-insensitive substring
    assert find_port(index) == index  # index
    with pytest.raises(PortError) as err:
        find_port("no-such-port-anywhere")
    assert "emolive-test-receiver" in str(err.value)  # lists the available ports
    assert "IAC Driver" in str(err.value) and "loopMIDI" in str(err.value)
    with pytest.raises(PortError):
        find_port(len(names) + 5)


def test_a_second_engine_of_the_program_on_one_port_is_warned_of(receiver: Sink, tiny_model_dir: Path) -> None:
    """A notebook cell `e = Engine(port=...); e.play(); e` run again left the first engine
    playing into the same synth (Out[] held it; helper-80): both play, as layering wants, and a
    warning names the other."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the first engine on the port: no warning
        first = Engine(model=tiny_model_dir, port="emolive-test-receiver")
    try:
        with pytest.warns(UserWarning, match=r"<emolive.Engine .*> of this program sends to '.*emolive-test-receiver"
                                             r".*' too, and both play"):
            second = Engine(model=tiny_model_dir, port="emolive-test-receiver")
        second.close()
        first.close()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # closed: no longer warned of
            Engine(model=tiny_model_dir, port="emolive-test-receiver").close()
    finally:
        first.close()


def test_engine_names_the_port_it_matched_and_checks_the_port_before_the_model(
        receiver: Sink, tiny_model_dir: Path, tmp_path: Path) -> None:
    with Engine(model=tiny_model_dir, port="EMOLIVE-TEST-RECEIVER", seed=1) as engine:
        assert engine.port_name in list_ports() and "emolive-test-receiver" in engine.port_name
    with Engine(model=tiny_model_dir, seed=1) as engine:
        assert engine.port_name is None
    with pytest.raises(PortError):  # not ModelError: the port is matched before the model loads
        Engine(model=tmp_path / "no-model-here", port="no-such-port-anywhere")


SERVER_LOSS_SCRIPT = """
import json, sys, time
import rtmidi
from emolive import Engine
deadline = time.monotonic() + 15.0
while True:  # the private server may take a while to come up on a loaded machine
    try:
        receiver = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name="emolive-test-doomed")
        break
    except Exception:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
receiver.open_virtual_port("in")
engine = Engine(model=sys.argv[1], port="emolive-test-doomed", bpm=120, seed=8)
engine.play("excited")
while engine.stats()["notes_sent"] < 20:
    time.sleep(0.01)
print("playing", flush=True)
sys.stdin.readline()  # the JACK server is stopped now
deadline = time.monotonic() + 3.0
while engine.stats()["port_error"] is None and time.monotonic() < deadline:  # probe: 1 per s
    time.sleep(0.05)
stats = engine.stats()
started = time.monotonic()
engine.close()
print(json.dumps({"port_error": stats["port_error"], "sounding": engine.stats()["sounding"],
                  "close_s": time.monotonic() - started}), flush=True)
"""


def test_jack_server_loss_is_reported_and_close_does_not_crash(
    tiny_model_dir: Path, tmp_path: Path, private_jack_server
) -> None:
    """In a subprocess with its own JACK server, which is stopped while the engine plays."""
    import json
    import os
    import subprocess
    import sys
    import uuid

    name = f"emolive-test-server-loss-{uuid.uuid4().hex[:8]}"
    server = private_jack_server(name)
    try:
        errors = tmp_path / "child-stderr.txt"
        with errors.open("w") as err_file:
            child = subprocess.Popen([sys.executable, "-c", SERVER_LOSS_SCRIPT, str(tiny_model_dir)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err_file,
                                     text=True, env=dict(os.environ, JACK_DEFAULT_SERVER=name))
        assert child.stdout is not None and child.stdin is not None
        first = child.stdout.readline().strip()
        assert first == "playing", errors.read_text()[-3000:]
        server.terminate()
        server.wait(timeout=10)
        try:
            out, _ = child.communicate("go\n", timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            pytest.fail("the engine hung after the JACK server went away")
        assert child.returncode == 0, "the process crashed after the server went away"
        report = json.loads(out.strip().splitlines()[-1])
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)
    assert report["port_error"] and "disappeared" in report["port_error"]
    assert report["sounding"] == 0
    assert report["close_s"] < 2.0


def test_opening_and_closing_a_port_leaves_the_threads_signal_mask_as_it_was(receiver: Sink,
                                                                          tiny_model_dir: Path) -> None:
    """With the stop signals held around the whole port opening, libjack later left SIGINT,
    SIGTERM and SIGHUP blocked on the thread that closed the engine (Python's main thread: its
    Ctrl-C did nothing, nor in the programs it started; 20 CLI tests failed in CI)."""
    import signal

    from emolive.cli_options import STOP_SIGNALS

    stop = {getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)}  # (not SIGPIPE: below)
    assert not stop & signal.pthread_sigmask(signal.SIG_BLOCK, [])
    for kwargs in ({"port": "TEST-RECEIVER"}, {"virtual": f"mask-{os.getpid()}"}):
        engine = Engine(model=tiny_model_dir, **kwargs)
        engine.play("happy")
        time.sleep(0.3)
        engine.close()
        assert not stop & signal.pthread_sigmask(signal.SIG_BLOCK, []), kwargs


def test_each_engine_names_its_own_source_port_where_jack_renamed_its_client(
        jack_server: str, tiny_model_dir: Path) -> None:
    """JACK names a second client 'emolive' 'emolive-01', and RtMidi does not say: a follower
    could only guess which 'emolive*:out' carried an engine's clock (helper-71)."""
    from emolive import _core

    squatter = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="emolive")  # another program's client
    squatter.open_virtual_port("x")
    first, second = Sink("emolive-src-a"), Sink("emolive-src-b")
    try:
        with Engine(model=tiny_model_dir, port="emolive-src-a") as a, \
                Engine(model=tiny_model_dir, port="emolive-src-b") as b:
            assert {a.source_port, b.source_port} == {"emolive-01:out", "emolive-02:out"}
            connections = _core.JackConnections()
            assert connections.of(a.source_port) == ["emolive-src-a:emolive-src-a"]
            assert connections.of(b.source_port) == ["emolive-src-b:emolive-src-b"]
        with Engine(model=tiny_model_dir, virtual="emolive-src-v") as v:
            assert v.source_port == "emolive-src-v:emolive-src-v"
        with Engine(model=tiny_model_dir) as silent:
            assert silent.source_port is None
    finally:
        squatter.delete()
        first.close()
        second.close()


def test_a_port_opens_only_once_no_other_emolive_is_opening_one(jack_server: str,
                                                                tiny_model_dir: Path) -> None:
    """Two `emolive --virtual` started together both saw no port 'emolive:emolive' and both
    opened one; the one JACK named 'emolive-01' said 'emolive' (helper-71). Opening waits for
    the lock another emolive process holds while it opens its port."""
    import fcntl
    import threading

    from emolive import _core

    path = _core.port_open_lock_path()
    held = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)  # as another emolive opening its port
    opened: list[Engine] = []
    opening = threading.Thread(target=lambda: opened.append(
        Engine(model=tiny_model_dir, virtual="emolive-after-the-lock")))
    try:
        opening.start()
        time.sleep(1.0)
        assert not opened and opening.is_alive()
    finally:
        os.unlink(path)
        os.close(held)  # the other process's open is done
        opening.join(timeout=30)
    assert opened and opened[0].port_name == "emolive-after-the-lock"
    opened[0].close()
    assert not os.path.exists(path)  # there only while held


RESTART_SCRIPT = """
import json, sys, time
from emolive import Engine, _core
a = Engine(model=sys.argv[1], port="emolive-restart-a", clock_out=True)
b = Engine(model=sys.argv[1], port="emolive-restart-b", clock_out=True)
a.play("calm"); b.play("calm")
print(json.dumps([a.source_port, b.source_port]), flush=True)
sys.stdin.readline()  # the server was restarted, and b's receiver came back before a's
deadline = time.monotonic() + 40
while (a.stats()["port_reconnects"] < 1 or b.stats()["port_reconnects"] < 1 or a.source_port is None
       or b.source_port is None) and time.monotonic() < deadline:  # found a check or two after
    time.sleep(0.1)
connections = _core.JackConnections()
print(json.dumps({"a": [a.source_port, connections.of(a.source_port or "")],
                  "b": [b.source_port, connections.of(b.source_port or "")]}), flush=True)
a.close(); b.close()
"""


def test_after_a_server_restart_each_engine_names_its_own_port_again(tiny_model_dir: Path, tmp_path: Path,
                                                                    private_jack_server) -> None:
    """A restarted server names the clients as they come back: the engine whose receiver
    returned first took 'emolive', and each engine's source_port named the other's port
    (helper-72). Also, a segmentation fault there (a stall across the restart closed the dead
    server's cycle counter), and a listing client opened at the reconnection stalled the new
    server for good (the reconnection then never came). In a child with its own server."""
    import json
    import subprocess
    import sys
    import uuid

    from tests.jackd import stop_jackd

    name = f"emolive-restart-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=name)
    os.environ["JACK_DEFAULT_SERVER"], previous = name, os.environ.get("JACK_DEFAULT_SERVER")
    server = private_jack_server(name)
    sinks = [Sink("emolive-restart-a"), Sink("emolive-restart-b")]
    errors = tmp_path / "child-stderr.txt"
    with errors.open("w") as err_file:
        child = subprocess.Popen([sys.executable, "-c", RESTART_SCRIPT, str(tiny_model_dir)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err_file, text=True, env=env)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert json.loads(child.stdout.readline()) == ["emolive:out", "emolive-01:out"]
        for sink in sinks:
            sink.close()
        stop_jackd(server)
        server = private_jack_server(name)
        sinks = [Sink("emolive")]  # another program now has the client name "emolive"
        squatted = "emolive:emolive" in subprocess.run(["jack_lsp"], capture_output=True, text=True,
                                                        env=env).stdout.split()
        sinks += [Sink("emolive-restart-b"), Sink("emolive-restart-a")]
        out, _ = child.communicate("go\n", timeout=90)
        assert child.returncode == 0 and out.strip(), errors.read_text()[-3000:]
        report = json.loads(out.strip().splitlines()[-1])
    finally:
        if child.poll() is None:
            child.kill()
        for sink in sinks:
            sink.close()
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous
    assert report["a"][1] == ["emolive-restart-a:emolive-restart-a"], report
    assert report["b"][1] == ["emolive-restart-b:emolive-restart-b"], report
    assert report["a"][0] != report["b"][0]
    if squatted:  # neither may still say the name it had before: a's was emolive:out
        assert "emolive:out" not in (report["a"][0], report["b"][0]), report


def test_the_port_open_lock_is_in_tmp_whatever_xdg_runtime_dir_says() -> None:
    """With XDG_RUNTIME_DIR naming a missing folder the lock was skipped, and two processes
    that saw that variable differently (one under sudo) locked different files (helper-72)."""
    import subprocess
    import sys

    code = "from emolive import _core; print(_core.port_open_lock_path())"
    paths = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, XDG_RUNTIME_DIR=runtime)).stdout.strip()
             for runtime in ("/nonexistent", "/run/user/0", "")}
    assert len(paths) == 1 and paths.pop().startswith(f"/tmp/emolive-{os.getuid()}-ports-")
