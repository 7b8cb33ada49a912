"""Drive CMake and Ninja (the PyPI packages): find them, configure only when inputs changed,
build with live output, and turn a failure into a BuildError pointing at the user's file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from opkit import ui
from opkit.build.lock import inherited_fds
from opkit.errors import BuildError, ToolMissingError

MIN_CMAKE = (3, 18)


@dataclass(frozen=True)
class Tools:
    cmake: str
    ninja: str
    cxx: str | None


def _pypi_bin(module: str, attr: str, exe: str) -> str | None:
    try:
        mod = __import__(module)
        path = Path(getattr(mod, attr)) / exe
        return str(path) if path.is_file() else None
    except Exception:
        return None


def find_tools() -> Tools:
    cmake = _pypi_bin("cmake", "CMAKE_BIN_DIR", "cmake") or shutil.which("cmake")
    ninja = _pypi_bin("ninja", "BIN_DIR", "ninja") or shutil.which("ninja")
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not cmake:
        raise ToolMissingError("cmake was not found", fix="pip install 'cmake>=3.25'")
    if not ninja:
        raise ToolMissingError("ninja was not found", fix="pip install ninja")
    if not cxx:
        raise ToolMissingError("no C++ compiler was found (c++, g++ or clang++; or $CXX)",
                               fix="install one, e.g. `apt-get install g++`")
    return Tools(cmake, ninja, cxx)


def tool_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
        return out.splitlines()[0].strip() if out else "?"
    except Exception:
        return "?"


def cmake_version(exe: str) -> tuple[int, ...]:
    m = re.search(r"(\d+)\.(\d+)", tool_version(exe))
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def configure(tools: Tools, source: Path, build: Path, defs: dict[str, str]) -> bool:
    """Configure when never configured or when the -D inputs changed. Returns True if it ran."""
    stamp = build / "opkit-configure.json"
    key = json.dumps({"defs": defs, "cmake": tools.cmake, "ninja": tools.ninja, "cxx": tools.cxx,
                      "source": str(source)}, sort_keys=True)
    if (build / "build.ninja").is_file() and (build / "CMakeCache.txt").is_file() and \
            stamp.is_file() and stamp.read_text() == key:
        return False
    if cmake_version(tools.cmake) < MIN_CMAKE:
        raise ToolMissingError(f"cmake is too old: {tool_version(tools.cmake)}",
                               expected=">= " + ".".join(map(str, MIN_CMAKE)), fix="pip install -U cmake")
    build.mkdir(parents=True, exist_ok=True)
    cmd = [tools.cmake, "-S", str(source), "-B", str(build), "-G", "Ninja",
           f"-DCMAKE_MAKE_PROGRAM:FILEPATH={tools.ninja}", "-DCMAKE_BUILD_TYPE:STRING=Release",
           f"-DCMAKE_CXX_COMPILER:FILEPATH={tools.cxx}"]
    cmd += [f"-D{k}={v}" for k, v in sorted(defs.items())]
    ui.detail("cmake configure")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        stamp.unlink(missing_ok=True)
        raise BuildError("cmake configure failed", where=str(source / "CMakeLists.txt"),
                         details=_tail(proc.stdout + proc.stderr, 40),
                         fix="check the workspace's CMakeLists.txt; delete the build folder to start clean")
    stamp.write_text(key)
    return True


_DIAG = re.compile(r"^(?P<file>[^:\s][^:]*):(?P<line>\d+):(?P<col>\d+): (?P<kind>fatal error|error): (?P<msg>.*)$")


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    col: int
    message: str


def up_to_date(tools: Tools, build_dir: Path, targets: list[str] | None = None) -> bool:
    """Whether ninja has nothing to do for `targets` (default: every target); a dry run: nothing is built."""
    proc = subprocess.run([tools.ninja, "-C", str(build_dir), "-n", *(targets or [])], capture_output=True, text=True)
    return proc.returncode == 0 and "no work to do" in proc.stdout


def build(tools: Tools, build_dir: Path, *, verbose: bool = False,
          targets: list[str] | None = None) -> tuple[bool, str, list[Diagnostic]]:
    """Run ninja (every target, or only `targets`); stream its progress. Returns (ok, output, compiler errors)."""
    proc = subprocess.Popen([tools.ninja, "-C", str(build_dir), *(targets or [])], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", pass_fds=inherited_fds())
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if verbose:
            sys.stderr.write("  " + line)
        elif line.startswith("[") and "Building" in line or "Linking" in line:
            ui.detail(line.strip())
    rc = proc.wait()
    out = "".join(lines)
    diags = [Diagnostic(m["file"], int(m["line"]), int(m["col"]), m["msg"])
             for m in map(_DIAG.match, out.splitlines()) if m]
    return rc == 0, out, diags


def _tail(text: str, n: int) -> str:
    lines = text.rstrip().splitlines()
    return "\n".join(lines[-n:])
