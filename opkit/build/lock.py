"""Advisory file locks of a workspace's build folder, released when the process dies.

- `build_lock`: one `opkit build` at a time per workspace.
- `library_lock`: `opkit test` and `opkit verify` hold it shared while they run the op library they built;
  a build that would rewrite the library waits for them (so a run never reports another build's kernels).
- `run_lock`: one `opkit verify` of a model (or one `opkit test`) at a time, since they share artifact folders.
Whoever waits says so, and for whom.

The build lock is inherited by the build's tools (`inherited_fds`): ninja starts each compiler in a process
group of its own, so when opkit and ninja are killed (kill -9, the OOM killer) the compilers live on and
write their objects later; they hold the lock until they exit, and the next build waits for them instead of
racing them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from opkit import ui

_INHERITED: set[int] = set()  # fds of the build locks this process holds, handed to the build's tools


def inherited_fds() -> tuple[int, ...]:
    """The lock fds a build tool started now should inherit (subprocess `pass_fds`)."""
    return tuple(sorted(_INHERITED))


@contextlib.contextmanager
def file_lock(path: Path, waiting: str, *, shared: bool = False, inherit: bool = False) -> Iterator[None]:
    """Hold an flock on `path`. When it is taken, print `waiting` (its "{pid}" is the holder's, for an
    exclusive holder) and wait. Exclusive holders write their pid into the file. With `inherit`, the build
    tools started while it is held inherit the lock (see the module's docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            ui.info(waiting.format(pid=holder))
            fcntl.flock(f, mode)
        if not shared:
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
        if inherit:
            _INHERITED.add(f.fileno())
        try:
            yield
        finally:
            _INHERITED.discard(f.fileno())
            if not shared:
                f.seek(0)
                f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def build_lock(build_dir: Path) -> contextlib.AbstractContextManager[None]:
    return file_lock(build_dir / ".opkit.lock",
                     "waiting for another opkit build in this workspace to finish (pid {pid}) ...", inherit=True)


def library_lock(build_dir: Path, *, shared: bool) -> contextlib.AbstractContextManager[None]:
    """Shared: a run uses the op library. Exclusive: a build is about to rewrite it."""
    return file_lock(build_dir / ".opkit-library.lock",
                     "waiting for opkit build (pid {pid}) to finish rewriting the op library ..." if shared else
                     "waiting for a running opkit test / opkit verify in this workspace to finish with the op "
                     "library before rewriting it ...", shared=shared)


def run_lock(path: Path, what: str) -> contextlib.AbstractContextManager[None]:
    """One run at a time over the artifacts at `path` (e.g. build/verify/model.lock); `what` names the run."""
    return file_lock(path, f"waiting for another {what} in this workspace to finish (pid {{pid}}) ...")
