"""opkit-ov-runner: a small C++ program (OpenVINO's C++ API) that reads a model with opkit's OpenVINO
extension, reads inputs from .npy files, runs on the CPU and writes .npy outputs; the same flags as
opkit-runner (opkit/native/runner.py), whose .npy reader it shares.

Its sources are rendered from templates/openvino/runner/ by the one writer and built with cmake +
ninja against the OpenVINO runtime that the openvino wheel ships. opkit only runs it as a child process.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from opkit import __version__
from opkit.errors import BuildError

EXE_NAME = "opkit-ov-runner"


@dataclass(frozen=True)
class OvRunner:
    exe: Path
    ov_version: str
    compiled: bool
    seconds: float


def render_runner() -> dict[str, str]:
    """Every source file of the runner, relative to its source folder. Pure."""
    from opkit.codegen.env import render
    from opkit.codegen.openvino import OV_ELEMENT
    from opkit.native.runner import render_runner as render_ort_runner
    from opkit.spec.dtypes import DTYPES

    rows = [{"onnx": d.onnx, "ov": OV_ELEMENT[d.name]} for d in DTYPES.values() if d.name in OV_ELEMENT]
    return {"npy.h": render_ort_runner("0")["npy.h"],
            "main.cc": render("openvino/runner/main.cc.j2", dtypes=rows),
            "CMakeLists.txt": render("openvino/runner/CMakeLists.txt.j2")}


def runner_dir(build_dir: Path | None) -> Path:
    """<build>/ov-runner, or $OPKIT_RUNNER_DIR/ov-runner, else a per-user cache."""
    from opkit.native.runner import ENV_DIR

    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]) / "ov-runner"
    if build_dir is not None:
        return Path(build_dir) / "ov-runner"
    from opkit.build.headers import cache_root

    return cache_root() / f"ov-runner-{__version__}-ov{_ov_version()}"


def _ov_version() -> str:
    from importlib import metadata

    return metadata.version("openvino")


def ensure_runner(build_dir: Path | None = None, *, verbose: bool = False) -> OvRunner:
    """Render, configure and build the runner (a no-op when up to date)."""
    from opkit.build import cmake
    from opkit.build.lock import build_lock
    from opkit.build.runtimes import cmake_defs
    from opkit.codegen.writer import FileManager

    t0 = time.perf_counter()
    root = runner_dir(build_dir)
    with build_lock(root):
        fm = FileManager(root / "src")
        for rel, text in sorted(render_runner().items()):
            fm.write(rel, text)
        tools = cmake.find_tools()
        defs = cmake_defs() | {"OPKIT_RUNNER_BIN_DIR:PATH": str(root / "bin")}
        cmake.configure(tools, root / "src", root / "build", defs)
        ok, out, _ = cmake.build(tools, root / "build", verbose=verbose)
        if not ok:
            raise BuildError("building opkit-ov-runner failed", where=str(root / "src"), details=cmake._tail(out, 30),
                             fix="this is a bug in opkit's runner templates or a broken compiler; "
                                 "`opkit doctor` shows the tools")
    return OvRunner(root / "bin" / EXE_NAME, _ov_version(), "no work to do" not in out, time.perf_counter() - t0)


def run_runner(runner: OvRunner, model: Path, **kwargs: object) -> object:
    """Run the runner once (a child process): the same flags and result as opkit-runner's."""
    from opkit.native.runner import run_runner as run_any

    return run_any(runner, model, **kwargs)  # type: ignore[arg-type]
