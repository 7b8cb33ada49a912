"""One build at a time per workspace: an advisory file lock, released when the process dies."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from opkit import ui


@contextlib.contextmanager
def build_lock(build_dir: Path) -> Iterator[None]:
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / ".opkit.lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            ui.info(f"waiting for another opkit build in this workspace to finish (pid {holder}) ...")
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)
