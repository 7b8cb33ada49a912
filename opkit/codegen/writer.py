"""The one writer of generated files (after torchgen's FileManager).

Writes only when the content changed (so ninja rebuilds nothing), atomically (temp file +
rename), refuses to write one path twice in a run, refuses to touch the user's files, and
supports a dry run. ``written``/``unchanged`` tell what happened.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class FileManager:
    def __init__(self, root: Path, *, dry_run: bool = False, protected: tuple[Path, ...] = ()) -> None:
        self.root = Path(root)
        self.dry_run = dry_run
        self.protected = tuple(Path(p).resolve() for p in protected)
        self.seen: set[Path] = set()
        self.written: list[Path] = []
        self.unchanged: list[Path] = []

    def write(self, rel: str | Path, text: str) -> Path:
        path = (self.root / rel).resolve()
        if path in self.seen:
            raise RuntimeError(f"opkit internal error: {path} generated twice in one run")
        if any(path == p or p in path.parents for p in self.protected):
            raise RuntimeError(f"opkit internal error: refusing to write the user's file {path}")
        self.seen.add(path)
        try:
            if path.read_text(encoding="utf-8") == text:
                self.unchanged.append(path)
                return path
        except (FileNotFoundError, UnicodeDecodeError, IsADirectoryError):
            pass
        if not self.dry_run:
            write_atomic(path, text)
        self.written.append(path)
        return path

    def remove_stale(self, under: str | Path, keep_suffixes: tuple[str, ...]) -> list[Path]:
        """Delete generated files under `under` that this run did not produce (a removed op)."""
        base = (self.root / under).resolve()
        removed = []
        if base.is_dir():
            for p in base.rglob("*"):
                if p.is_file() and p.suffix in keep_suffixes and p.resolve() not in self.seen:
                    if not self.dry_run:
                        p.unlink()
                    removed.append(p)
        return removed


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def create_new(path: Path, text: str) -> None:
    """Create a user file that must not exist yet (O_EXCL): never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as f:
        f.write(text)
