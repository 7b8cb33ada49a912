"""The native kernels inside PyTorch: load the PyTorch op library (libopkit_torch.so).

After ``opkit.load_native(...)`` a call to an opkit op on CPU tensors, in eager mode or under
torch.compile (where the op stays one call), runs the user's C++ kernel through torch's dispatcher
(the CPU key); ``op.reference(...)`` still runs the spec's Python body, the oracle every check compares
against. The library is refused when it was built for another torch version (torch's C++ ABI changes
between versions), with both versions named.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from opkit.errors import LibraryVersionError, OpkitError, UsageError

MARKER = b"OPKIT_TORCH_INFO{"

_lock = threading.Lock()
_loaded: dict[str, dict[str, Any]] = {}  # resolved path -> its record, for every library loaded in this process


def read_torch_info(path: Path | str) -> dict[str, Any]:
    """The record libopkit_torch.so embeds (torch version, ops), read from the file without loading it."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such file: {path}", fix="`opkit build --torch` prints the path of the PyTorch op library")
    data = path.read_bytes()
    start = data.find(MARKER) if data.startswith(b"\x7fELF") else -1
    if start >= 0:
        end = data.find(b"\0", start)
        try:
            info = json.loads(data[start + len(MARKER) - 1: end].decode("utf-8"))
            if isinstance(info, dict) and "torch_version" in info:
                return info
        except (UnicodeDecodeError, ValueError):
            pass
    raise OpkitError(f"{path} is not a PyTorch op library built by opkit",
                     expected="libopkit_torch.so from `opkit build --torch` (it embeds OPKIT_TORCH_INFO{...})",
                     got="a file without that record" if data.startswith(b"\x7fELF") else "not a shared library",
                     fix="pass the workspace folder (opkit builds the library) or the libopkit_torch.so it built")


def check_torch_version(path: Path, info: dict[str, Any]) -> None:
    import torch

    built = info.get("torch_version")
    if built != torch.__version__:
        raise LibraryVersionError(
            f"{path} was built for torch {built}, but this process runs torch {torch.__version__}",
            expected=f"a library built against torch {torch.__version__} (torch's C++ ABI is not stable across "
                     "versions, so opkit never loads it into another one)",
            got=f"built for torch {built}",
            fix="rebuild it with this torch: `opkit build --torch` in the workspace (or opkit.load_native(workspace))")


def load_library(path: Path | str) -> dict[str, Any]:
    """Load a built libopkit_torch.so into this process (once); returns its record."""
    import torch

    path = Path(path).resolve()
    with _lock:
        if str(path) in _loaded:
            return _loaded[str(path)]
        info = read_torch_info(path)
        check_torch_version(path, info)
        torch.ops.load_library(str(path))
        _loaded[str(path)] = info
        return info


def load_native(target: Path | str | None = None, *, sanitize: bool = False) -> Path:
    """Make calls to opkit ops run their native kernels in PyTorch (CPU tensors).

    target: a workspace folder (default: the nearest one above the current directory): its specs are
    imported and its PyTorch op library is built if needed (`opkit build --torch`) and loaded; or the
    path of a built libopkit_torch.so (the ops' specs must be imported by the caller, e.g. by the model).
    Returns the library's path. Loading cannot be undone in a process; ``op.reference(...)`` always runs
    the Python reference.
    """
    if target is not None and Path(target).is_file():
        path = Path(target)
        load_library(path)
        return path
    from opkit.build.driver import build
    from opkit.build.specs import import_ops
    from opkit.build.workspace import find_workspace

    ws = find_workspace(explicit=target) if target is not None else find_workspace()
    import_ops(ws)  # defines every op's schema (torch.library.custom_op) before its kernels load
    lib = build(ws, sanitize=sanitize, runtimes=("torch",)).library_for("torch")
    load_library(lib)
    return lib


def loaded_libraries() -> list[Path]:
    return [Path(p) for p in _loaded]
