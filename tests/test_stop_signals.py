"""`emolive`'s stop handler (emolive.live_signals.StopSignals) is safe to run wherever the main thread is.

Python runs a signal handler in the main thread between two of its bytecodes. A handler that
takes a lock the main thread may hold at that point deadlocks the process: `emolive` once hung
on SIGTERM in CI so (its handler set a threading.Event while the main loop, inside that Event's
wait(), held the Event's lock). A real signal lands in such a window rarely, so here the handler
is run at *every* bytecode that the main loop's wait executes (a trace function), in a
subprocess so that a deadlock shows as a timeout instead of a hung test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

INJECT_AT_EVERY_BYTECODE = textwrap.dedent("""
    import signal, sys
    from emolive.live_signals import StopSignals

    stop = StopSignals()
    injected = 0

    def trace(frame, event, arg):
        # Code run inside a trace function is not traced, so the handler runs untraced.
        global injected
        frame.f_trace_opcodes = True
        if event == "opcode":
            stop._handle(signal.SIGTERM, None)
            assert stop.requested
            stop.received = None  # as if the signal had not come: the next bytecode gets one too
            injected += 1
        return trace

    with stop:
        sys.settrace(trace)
        for _ in range(3):
            stop.wait(0.001)
        sys.settrace(None)
    print(injected)
""")


def test_the_stop_handler_can_run_at_every_bytecode_of_the_main_loops_wait() -> None:
    try:
        result = subprocess.run([sys.executable, "-c", INJECT_AT_EVERY_BYTECODE],
                                capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("the stop handler deadlocked inside the main loop's wait") from None
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0, "the trace ran the handler nowhere: the test tests nothing"


REPEATS_AND_NOHUP = textwrap.dedent("""
    import os, signal, time
    from emolive import live_signals
    from emolive.live_signals import StopSignals

    live_signals.REPEAT_GRACE_S = 0.2

    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as `nohup emolive ...` starts it
    with StopSignals() as stop:
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.05)
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # at its default, this one ended the process
        time.sleep(0.05)
        assert stop.received == "SIGTERM"
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(live_signals.REPEAT_GRACE_S + 0.05)
        try:  # a second Ctrl-C, once the stop had time, gets Python's KeyboardInterrupt back
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        except KeyboardInterrupt:
            print("interrupted", stop.received)
""")


def test_a_repeated_stop_signal_does_not_kill_and_nohup_stays_ignored() -> None:
    """A terminal that hung up while its output was held sent SIGHUP twice; the second one, at
    its default again, killed emolive with notes sounding. `nohup emolive` stopped on SIGHUP."""
    result = subprocess.run([sys.executable, "-c", REPEATS_AND_NOHUP], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert result.stdout.strip() == "interrupted SIGTERM"


OTHER_STOP_SIGNALS = textwrap.dedent("""
    import os, signal, sys, time
    from emolive import live_signals
    from emolive.live_signals import StopSignals

    live_signals.REPEAT_GRACE_S = 0.3
    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # a supervisor's choice: stays ignored
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGALRM)
        time.sleep(0.05)
        assert not stop.requested and signal.getsignal(signal.SIGALRM) is signal.SIG_IGN
        for _ in range(2):  # at its default, each of these ended the process with notes sounding
            os.kill(os.getpid(), signal.SIGUSR1)
            os.kill(os.getpid(), signal.SIGUSR2)
            os.kill(os.getpid(), signal.SIGXCPU)  # a soft CPU-time limit reached (helper-59)
            time.sleep(0.05)
        assert stop.received == "SIGUSR1", stop.received
        stop.received = None
        os.kill(os.getpid(), signal.SIGQUIT)  # Ctrl-\\: a stop like Ctrl-C's
        time.sleep(0.05)
        print(stop.received, stop.status_while_starting, flush=True)
        os.kill(os.getpid(), signal.SIGQUIT)  # at once again: the same request (a double-tap)
        time.sleep(0.05)
        print("double-tap kept", flush=True)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGQUIT)  # later again: the default's, the way out of a hang
        time.sleep(0.5)
    print("not killed")
""")


def test_the_other_stop_signals_stop_once_and_a_second_ctrl_backslash_kills() -> None:
    """SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM and SIGXCPU killed `emolive` with notes sounding; they now stop
    it as SIGTERM does. One inherited ignored stays ignored."""
    import resource
    import signal

    def no_core_file() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    result = subprocess.run([sys.executable, "-c", OTHER_STOP_SIGNALS], capture_output=True, text=True,
                            timeout=30, preexec_fn=no_core_file)
    assert result.stdout.split() == ["SIGQUIT", str(128 + signal.SIGQUIT), "double-tap", "kept"], result.stderr
    assert result.returncode == -signal.SIGQUIT, result.stderr


DOUBLE_TAP = textwrap.dedent("""
    import os, signal, time
    from emolive import live_signals
    from emolive.live_signals import StopSignals

    live_signals.REPEAT_GRACE_S = 0.5
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)  # a performer's panic double-tap, 0.1 s on
        time.sleep(0.1)
        print("kept", stop.received, flush=True)
        time.sleep(0.5)
        try:
            os.kill(os.getpid(), signal.SIGINT)  # again once the stop had time: it hangs
            time.sleep(0.5)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
""")


def test_ctrl_c_twice_in_a_moment_is_one_stop_and_later_the_way_out() -> None:
    """Ctrl-C twice 0.1 s apart exited 130 without the last line: the second had Python's
    KeyboardInterrupt back while the stop it doubled was still ending the notes (helper-70)."""
    result = subprocess.run([sys.executable, "-c", DOUBLE_TAP], capture_output=True, text=True, timeout=30)
    assert result.stdout.split() == ["kept", "SIGINT", "interrupted"], (result.stdout, result.stderr)
