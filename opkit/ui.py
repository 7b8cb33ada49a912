"""Progress output: what opkit is doing while it runs, on stderr."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

_quiet = False


def set_quiet(value: bool) -> None:
    global _quiet
    _quiet = value


def info(msg: str) -> None:
    if not _quiet:
        print(f"opkit: {msg}", file=sys.stderr, flush=True)


def detail(msg: str) -> None:
    if not _quiet:
        print(f"  {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(msg: str, timings: dict[str, float] | None = None, key: str | None = None) -> Iterator[None]:
    """Announce a step, and record how long it took."""
    info(msg + " ...")
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[key or msg] = time.perf_counter() - t0
