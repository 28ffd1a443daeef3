"""Files written beside a folder, then moved into it all or none: what the export and a card
update do, so that a failure (a checker error, a full disk, Ctrl-C, a file that cannot be
replaced) leaves the model folder as it was."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def moved_in_on_success(out: Path, remove: tuple[str, ...] = (), folders: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``out`` to write files into; when the block ends without an
    exception each is moved into ``out`` (made if missing) by one rename, replacing a file or
    link of its name there, never writing through a link, and the files named in ``remove``
    go; else ``out`` stays as it was.

    All or nothing: the files there are first moved aside (renamed into the temporary
    folder), so that when a rename fails (a file that cannot be replaced: an immutable one,
    a folder of that name) the files already moved in go and those moved aside come back,
    and the OSError is raised with ``out`` as it was. A model folder half replaced held
    ONNX files whose cards disagreed with model_card.json.

    With ``folders`` (the evaluation's report and its samples/), a folder written replaces the
    folder of its name whole; without, a folder in ``out`` where a file is written is refused."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        yield Path(tmp)
        written = sorted(Path(tmp).iterdir())
        for path in written:
            if not folders and (out / path.name).is_dir() and not (out / path.name).is_symlink():
                raise IsADirectoryError(f"{out / path.name} is a folder; the export writes a file there")
        aside = Path(tmp) / ".replaced"
        aside.mkdir()
        out.mkdir(exist_ok=True)
        moved_aside: list[str] = []
        moved_in: list[str] = []
        try:
            for name in [path.name for path in written] + list(remove):
                if (out / name).exists() or (out / name).is_symlink():
                    os.rename(out / name, aside / name)
                    moved_aside.append(name)
            for path in written:
                os.rename(path, out / path.name)
                moved_in.append(path.name)
        except OSError:
            for name in moved_in:
                if (out / name).is_dir() and not (out / name).is_symlink():
                    shutil.rmtree(out / name)
                else:
                    (out / name).unlink()
            for name in moved_aside:
                os.rename(aside / name, out / name)
            raise


def failed_to_write(prog: str, folder: str | Path, err: OSError) -> int:
    """Say that writing into the model folder failed and that it was left as it was; status 1
    (the machine's failure, not the command's)."""
    print(f"{prog}: error: could not write into {folder}, which is left as it was: "
          f"{err.strerror or err}{f' ({err.filename})' if err.filename else ''}", file=sys.stderr)
    return 1
