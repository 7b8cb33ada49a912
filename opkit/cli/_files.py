"""Files a command writes where the user asked (--json FILE, --html FILE)."""

from __future__ import annotations

from pathlib import Path

from opkit import ui
from opkit.errors import OpkitError, UsageError


def output_path(value: str, flag: str) -> Path:
    """Check before the work starts that `value` can be written: its folder exists and it is not a folder."""
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{flag} {value}: that is a folder", expected="a file name, e.g. report.html",
                         fix=f"pass a file path to {flag}")
    if not path.resolve().parent.is_dir():
        raise UsageError(f"{flag} {value}: the folder {path.parent} does not exist",
                         fix=f"create the folder first, or pass another path to {flag}")
    return path


def write_output(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OpkitError(f"could not write {path}: {exc.strerror or exc}", where=str(path),
                         fix="check that the folder is writable, or pass another path") from None
    ui.info(f"wrote {path}")
