"""The README's Python example runs as written (on the bundled model, into a dummy JACK server)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import mido

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python_example() -> str:
    """The first ```python block after the README's '## Python' heading."""
    text = README.read_text()
    section = text[text.index("\n## Python\n"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README has no Python example under '## Python'"
    return match.group(1)


def test_readme_python_example_runs(jack_server: str, tmp_path: Path) -> None:
    code = readme_python_example()
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env=dict(os.environ, JACK_DEFAULT_SERVER=jack_server))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    ports = ast.literal_eval(lines[0])
    assert isinstance(ports, list)
    stats = ast.literal_eval(lines[-1])
    assert stats["notes_sent"] > 0 and stats["port_error"] is None and stats["bpm"] == 132.0
    midi = mido.MidiFile(tmp_path / "blend.mid")
    assert any(m.type == "note_on" and m.velocity > 0 for track in midi.tracks for m in track)
