"""Shared fixtures: dummy JACK servers, a tiny random-weight model in the ONNX contract, and an
Engine on it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

from tests.jackd import JackdError, dummy_server, start_dummy_jackd, stop_jackd

if TYPE_CHECKING:
    from emolive import Engine


def _skip_or_fail(err: JackdError) -> NoReturn:
    if "not installed" in str(err):
        pytest.skip(str(err))
    pytest.fail(str(err))


def start_jackd(name: str, synchronous: bool = True) -> subprocess.Popen:
    """Start a dummy JACK server `name` (tests/jackd.py) and wait until a client can connect.
    Skips the test if jackd is not installed; fails it if the server does not come up. Stop it
    with stop_jackd() (SIGTERM; SIGKILL would leak a registry slot until the next start)."""
    try:
        return start_dummy_jackd(name, synchronous)
    except JackdError as err:
        _skip_or_fail(err)


@pytest.fixture(scope="session")
def jack_server() -> Iterator[str]:
    """A dummy JACK server under a private name for the whole session; yields the name.

    The name is exported as JACK_DEFAULT_SERVER for this process (RtMidi, python-rtmidi) and so
    for subprocesses started by the tests.
    """
    server = dummy_server("emolive-test")
    try:
        name = server.__enter__()
    except JackdError as err:
        _skip_or_fail(err)
    try:
        yield name
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def private_jack_server() -> Iterator[Callable[[str], subprocess.Popen]]:
    """A factory for extra JACK servers a test may stop itself (server-loss tests).

    Call it with a server name; the server is stopped at the end of the test if still running.
    """
    started: list[subprocess.Popen] = []

    def start(name: str, synchronous: bool = True) -> subprocess.Popen:
        proc = start_jackd(name, synchronous)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_jackd(proc)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model with random weights, exported in the contract of docs/model-contract.md.

    Needs torch (the `train` extra): tests that use it are skipped without torch.
    """
    pytest.importorskip("torch")
    from emolive.training.export import export_random_model

    out = tmp_path_factory.mktemp("tiny_model")
    export_random_model(out, z_dim=16, hidden=32, layers=1, seed=0)
    return out


@pytest.fixture()
def engine(tiny_model_dir: Path) -> Iterator[Engine]:
    """An Engine on the tiny model, seed 11, no live output; closed after the test."""
    from emolive import Engine

    with Engine(model=tiny_model_dir, seed=11) as e:
        yield e


@pytest.fixture()
def unwritable_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder that refuses new files: a read-only folder for a user; for root, whom permission
    bits do not stop, /sys (sysfs refuses new files even to root)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not Path("/sys/kernel").is_dir():
        pytest.skip("running as root without /sys: no folder here refuses root's writes")
    yield Path("/sys")
