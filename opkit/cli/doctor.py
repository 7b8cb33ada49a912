"""opkit doctor: what opkit found and uses, and the command that fixes what is missing."""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from importlib import metadata


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", metavar="DIR", help="also check this workspace's built library")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def run(args: argparse.Namespace) -> int:
    from opkit import __version__
    from opkit.build import cmake
    from opkit.build.headers import ENV_VAR, ensure_headers
    from opkit.codegen.render import ORT_API_VERSION
    from opkit.errors import OpkitError

    problems = 0
    rows: list[tuple[str, str, str]] = []

    def row(name: str, value: str | None, fix: str = "", required: bool = True) -> None:
        nonlocal problems
        ok = value is not None
        if not ok and required:
            problems += 1
        rows.append((("ok  " if ok else "MISSING " if required else "--  ") + name, value or "not found",
                     "" if ok else fix))

    row("opkit", __version__)
    row("python", f"{platform.python_version()} ({sys.executable})")
    row("torch", _version("torch"), "pip install torch==2.13.0  (the CPU wheel; before opkit)")
    row("onnx", _version("onnx"), "pip install onnx")
    row("onnxscript", _version("onnxscript"), "pip install onnxscript")
    ort_v = _version("onnxruntime")
    row("onnxruntime", ort_v, "pip install onnxruntime")
    row("onnxruntime-extensions", _version("onnxruntime-extensions"),
        "pip install onnxruntime-extensions  (only for --backend python)", required=False)
    try:
        tools = cmake.find_tools()
        row("cmake", f"{cmake.tool_version(tools.cmake)} ({tools.cmake})")
        row("ninja", f"{cmake.tool_version(tools.ninja)} ({tools.ninja})")
        row("c++ compiler", f"{cmake.tool_version(tools.cxx)} ({tools.cxx})" if tools.cxx else None,
            "apt-get install g++")
    except OpkitError as exc:
        row("build tools", None, exc.fix or exc.what)
    try:
        h = ensure_headers(download=False)
        row("ORT headers", f"API {h.api_version}, {h.source}: {h.include_dir}")
        if ort_v:
            runtime_api = int(ort_v.split(".")[1])
            if h.api_version > runtime_api:
                problems += 1
                rows.append(("MISMATCH ORT API", f"headers API {h.api_version} > runtime {ort_v}",
                             f"pip install 'onnxruntime>=1.{h.api_version}', or use older headers via ${ENV_VAR}"))
            else:
                rows.append(("ok  library loads", f"libraries built against API {h.api_version} load in "
                             f"onnxruntime {ort_v} (API {runtime_api})", ""))
        if h.api_version != ORT_API_VERSION:
            rows.append(("note", f"opkit targets ORT API {ORT_API_VERSION}; these headers are API {h.api_version}",
                         "libraries will need onnxruntime >= 1." + str(h.api_version)))
    except OpkitError:
        rows.append(("--  ORT headers", "not cached yet", "`opkit build` downloads them (Debian's "
                     "libonnxruntime-dev 1.21), or set " + ENV_VAR))
    from opkit.runtimes import DEFAULT, KNOWN, get

    for name in KNOWN:  # each runtime: installed or not, its version, what a build for it needs
        rt = get(name)
        why = rt.missing()
        needs = {"ort": "builds libopkit_ops.so (ORT headers + a C++ compiler)",
                 "openvino": "builds libopkit_openvino.so (the openvino wheel's headers + CMake config)",
                 "executorch": "builds libopkit_executorch.so (the executorch wheel's headers + CMake config; "
                               "cmake >= 3.28) when named",
                 None: "builds nothing"}.get(rt.library, f"builds its {rt.library} library")
        if rt.cpp:
            needs += "; and its C++ runner"
        rows.append((("ok  " if why is None else "--  ") + f"runtime {name}",
                     (f"{rt.version()}: " if why is None else f"not installed ({why}): ") + rt.label + "; " + needs +
                     (" [default]" if name in DEFAULT else ""),
                     "" if why is None else rt.install))
    if args.workspace or _has_workspace():
        from opkit.build.workspace import find_workspace

        try:
            ws = find_workspace(explicit=args.workspace)
            lib = ws.library_path()
            if lib.is_file():
                code = ("import onnxruntime as o,sys; so=o.SessionOptions(); "
                        "so.register_custom_ops_library(sys.argv[1]); print('ok')")
                p = subprocess.run([sys.executable, "-c", code, str(lib)], capture_output=True, text=True, timeout=120)
                if p.returncode == 0:
                    rows.append(("ok  built library", f"{lib} registers in onnxruntime {ort_v}", ""))
                else:
                    problems += 1
                    rows.append(("FAIL built library", f"{lib} does not register: "
                                 f"{(p.stderr.strip().splitlines() or ['crashed'])[-1][:200]}", "opkit build"))
            else:
                rows.append(("--  built library", f"not built yet in {ws.root}", "opkit build"))
        except OpkitError:
            pass
    w = max(len(r[0]) for r in rows)
    for name, value, fix in rows:
        print(f"{name.ljust(w)}  {value}" + (f"\n{' ' * w}  fix: {fix}" if fix else ""))
    print("\nall good" if not problems else f"\n{problems} problem(s): see the fixes above")
    return 1 if problems else 0


def _has_workspace() -> bool:
    from pathlib import Path

    return any((d / "ops").is_dir() for d in (Path.cwd(), *Path.cwd().parents))
