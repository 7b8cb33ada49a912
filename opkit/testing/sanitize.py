"""Running the sanitized library (build/asan/) inside Python's ONNX Runtime, and reading its reports.

The library is built with -fsanitize=address,undefined; Python is not, so the ASan runtime must
be loaded first: LD_PRELOAD the compiler's own libasan (``c++ -print-file-name=libasan.so``).
Leak checking is off (the interpreter "leaks" by design); UBSan stops at the first error so that
the case in flight is the one reported.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from opkit.errors import ToolMissingError

ASAN_OPTIONS = "detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:allocator_may_return_null=1"
UBSAN_OPTIONS = "halt_on_error=1:print_stacktrace=1:exitcode=87"


def _compiler(cxx: str | None) -> str:
    if cxx is not None:
        return cxx
    from opkit.build.cmake import find_tools

    return find_tools().cxx


def _compiler_file(cxx: str, name: str) -> str | None:
    """The file `cxx -print-file-name=NAME` names, resolved; None when it names no existing file."""
    try:
        out = subprocess.run([cxx, f"-print-file-name={name}"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return os.path.realpath(out) if out and os.path.isabs(out) and os.path.exists(out) else None


def runtime_library(cxx: str | None = None) -> str:
    """The path of the compiler's ASan runtime (the one the sanitized library was linked against)."""
    cxx = _compiler(cxx)
    for name in ("libasan.so", "libclang_rt.asan-x86_64.so"):
        found = _compiler_file(cxx, name)
        if found is not None:
            return found
    raise ToolMissingError(f"the AddressSanitizer runtime of {cxx} was not found",
                           expected=f"`{cxx} -print-file-name=libasan.so` to print an existing file",
                           got="no such file", fix="install it (Debian: apt-get install libasan8, or the gcc "
                           "package of your compiler version)")


def sanitizer_env(base: dict | None = None, cxx: str | None = None) -> dict:
    """The environment for a child process that loads the sanitized library.

    Besides libasan, libstdc++ is preloaded: Python does not link it, and ASan's interceptor of
    __cxa_throw resolves the real one when it starts, so the first C++ exception thrown in a process
    that loaded libstdc++ later (OpenVINO throws and catches some while it reads a model) would stop
    it with "CHECK failed ... real___cxa_throw". TBB_ENABLE_SANITIZERS=1 is oneTBB's documented
    setting that makes it load libtbbbind without RTLD_DEEPBIND, which ASan refuses (OpenVINO)."""
    env = dict(os.environ if base is None else base)
    cxx = _compiler(cxx)
    libs = [runtime_library(cxx)]
    stdcxx = _compiler_file(cxx, "libstdc++.so.6")  # None for a toolchain without it (libc++)
    if stdcxx is not None:
        libs.append(stdcxx)
    preload = [p for p in env.get("LD_PRELOAD", "").split(":") if p and p not in libs]
    env["LD_PRELOAD"] = ":".join(libs + preload)
    env["TBB_ENABLE_SANITIZERS"] = "1"
    env["ASAN_OPTIONS"] = ASAN_OPTIONS + (":" + env["ASAN_OPTIONS"] if env.get("ASAN_OPTIONS") else "")
    env["UBSAN_OPTIONS"] = UBSAN_OPTIONS + (":" + env["UBSAN_OPTIONS"] if env.get("UBSAN_OPTIONS") else "")
    return env


@dataclass(frozen=True)
class SanitizerReport:
    summary: str  # "AddressSanitizer: heap-buffer-overflow (WRITE of size 4)"
    where: str | None  # "ops/oob_write/oob_write.cc:12", the first frame in the user's code when possible
    text: str  # the report itself


_ASAN = re.compile(r"ERROR: AddressSanitizer: (?P<kind>[\w-]+)")
_ACCESS = re.compile(r"^(?P<rw>READ|WRITE) of size (?P<n>\d+)", re.M)
_FRAME = re.compile(r"^\s*#\d+ 0x[0-9a-f]+ in (?P<fn>.*?) (?P<file>/[^\s:]+):(?P<line>\d+)(?::\d+)?\s*$", re.M)
_UBSAN = re.compile(r"^(?P<file>/?[^\s:]+):(?P<line>\d+):(?P<col>\d+): runtime error: (?P<msg>.*)$", re.M)


def parse_report(text: str, workspace: Path | None = None) -> SanitizerReport | None:
    """The first AddressSanitizer or UBSan report in a child's stderr, if any."""
    m = _ASAN.search(text)
    if m:
        block = text[m.start():]
        acc = _ACCESS.search(block[:2000])
        summary = f"AddressSanitizer: {m.group('kind')}" + (f" ({acc.group('rw')} of size {acc.group('n')})"
                                                             if acc else "")
        frames = [(f.group("file"), int(f.group("line"))) for f in _FRAME.finditer(block)]
        where = _pick(frames, workspace)
        end = block.find("==ABORTING")
        return SanitizerReport(summary, where, block[: end if end > 0 else 4000])
    m = _UBSAN.search(text)
    if m:
        where = _rel(m.group("file"), workspace) + f":{m.group('line')}"
        return SanitizerReport(f"UndefinedBehaviorSanitizer: {m.group('msg')}", where, text[m.start():m.start() + 3000])
    return None


def _rel(path: str, workspace: Path | None) -> str:
    if workspace is not None:
        try:
            return str(Path(path).resolve().relative_to(Path(workspace).resolve()))
        except ValueError:
            pass
    return path


def _pick(frames: list[tuple[str, int]], workspace: Path | None) -> str | None:
    """The first frame in the user's kernel files (ops/), else in the workspace, else the first frame."""
    if not frames:
        return None
    for pred in (lambda r: r.startswith("ops/"), lambda r: not r.startswith("/")):
        for f, line in frames:
            r = _rel(f, workspace)
            if pred(r):
                return f"{r}:{line}"
    return f"{frames[0][0]}:{frames[0][1]}"
