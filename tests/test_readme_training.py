"""The README's "Training your own model" commands run as written, in order, on the real data.

Each line is run verbatim from a scratch folder laid out like the README assumes (the repository
as the working directory, `../shared/data` beside it), with flags appended that make the run
small: argparse lets a later flag win, so the commands are the README's own, only shorter.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from tests.process_lines import read_until

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
pytestmark = pytest.mark.training

#: Appended per command (by its first word after `emolive`) to keep the run to a minute or two.
SMALL = {
    "train": ["--max-steps", "4", "--eval-every", "2", "--val-segments", "16", "--batch-size", "8"],
    "export": [],
    "recover": [],
    "evaluate": ["--samples", "4", "--val-segments", "16", "--classifier-segments", "64",
                 "--classifier-steps", "5", "--held-out-steps", "2", "--wav", "false"],
}


def readme_training_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Training your own model\n"):]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "README has no bash block under '## Training your own model'"
    return [line for line in match.group(1).splitlines() if line.strip()]


def scratch_checkout(tmp_path: Path) -> Path:
    """``tmp/repo`` with the paths the commands use linked to the real ones, ``tmp/shared``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in (".venv", "training"):
        (repo / name).symlink_to(ROOT / name)
    (tmp_path / "shared").symlink_to(SHARED)
    return repo


@pytest.mark.skipif(not (SHARED / "data" / "emopia").is_dir(),
                    reason=f"the training data is not at {SHARED / 'data'}")
def test_readme_training_commands_run_in_order(private_jack_server, tmp_path: Path) -> None:
    commands = readme_training_commands()
    assert [shlex.split(c)[1] for c in commands[:3]] == ["train", "export", "evaluate"]
    repo = scratch_checkout(tmp_path)
    for command in commands[:3]:
        argv = shlex.split(command)
        result = subprocess.run(argv + SMALL[argv[1]], cwd=repo, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr
    assert (repo / "models" / "mine" / "model_card.json").is_file()
    assert (repo / "reports" / "mine" / "README.md").is_file()

    generate = shlex.split(commands[3])  # the exported model as a file
    assert generate[1:3] == ["generate", "--model"]
    result = subprocess.run(generate, cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (repo / "mine.mid").stat().st_size > 0

    # Plays the new model into a virtual port until Ctrl-C, on a JACK server of its own (no other
    # test's clients); waits for its status line however slow the start-up, not a fixed time.
    server = f"emolive-readme-{os.getpid()}"
    private_jack_server(server)
    play = shlex.split(commands[4])
    process = subprocess.Popen(play, cwd=repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, JACK_DEFAULT_SERVER=server))
    seen: list[str] = []
    try:
        if not read_until(process, "playing", 120, seen):
            process.kill()
            err = process.communicate()[1]
            pytest.fail(f"{commands[4]} did not start playing: {seen} {err[-3000:]}")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    assert "emolive: stopped" in out

    assert [shlex.split(c)[1] for c in commands[5:]] == ["recover", "train"]
    for command in commands[5:]:  # fine-tune the bundled model from its recovered weights
        argv = shlex.split(command)
        result = subprocess.run(argv + SMALL[argv[1]], cwd=repo, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr
    assert "weights from runs/bundled/ckpt.pt" in result.stderr
    assert (repo / "runs" / "bundled-tuned" / "ckpt.pt").is_file()
