"""opkit-et-runner: a small C++ program that runs a .pte on ExecuTorch's C++ runtime from the
executorch wheel (Program / Method API), with opkit's ExecuTorch kernel library loaded.

Its sources are rendered from templates/executorch/runner/ by the one writer and built with cmake +
ninja against the wheel's CMake config. opkit only ever runs it as a child process.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from opkit import __version__
from opkit.errors import BuildError, ToolMissingError

EXE_NAME = "opkit-et-runner"


def executorch_root() -> Path:
    """The installed executorch package folder (found without importing it)."""
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        from opkit.runtimes.executorch.pte import INSTALL

        raise ToolMissingError("the executorch package is not installed", fix=INSTALL)
    return Path(list(spec.submodule_search_locations)[0])


def cmake_dir() -> Path:
    """The wheel's CMake config folder (executorch-config.cmake)."""
    d = executorch_root() / "lib" / "cmake" / "executorch"
    if not (d / "executorch-config.cmake").is_file():
        raise ToolMissingError(f"the executorch wheel has no CMake config in {d}",
                               expected="executorch >= 1.5.1 from PyPI (it ships headers, libexecutorch.so and "
                                        "lib/cmake/executorch)", fix="pip install -U 'executorch>=1.5.1,<1.6'")
    return d


def version() -> str:
    try:
        from importlib.metadata import version as v

        return v("executorch")
    except Exception:
        return "?"


def render_runner() -> dict[str, str]:
    """Every source file of the runner, relative to its source folder. Pure."""
    from opkit.codegen.env import render
    from opkit.codegen.executorch import SCALAR_TYPES
    from opkit.native.runner import render_runner as render_ort_runner

    return {
        "npy.h": render_ort_runner("-")["npy.h"],  # the same .npy reader/writer as opkit-runner
        "main.cc": render("executorch/runner/main.cc.j2", opkit_version=__version__,
                          scalar_types=list(SCALAR_TYPES.items())),
        "CMakeLists.txt": render("executorch/runner/CMakeLists.txt.j2"),
    }


@dataclass(frozen=True)
class Runner:
    exe: Path
    compiled: bool
    seconds: float


def ensure_runner(root: Path, *, verbose: bool = False) -> Runner:
    """Render, configure and build the runner under `root` (a no-op when up to date)."""
    from opkit.build import cmake
    from opkit.build.lock import build_lock
    from opkit.codegen.writer import FileManager

    t0 = time.perf_counter()
    with build_lock(root):
        fm = FileManager(root / "src")
        for rel, text in sorted(render_runner().items()):
            fm.write(rel, text)
        tools = cmake.find_tools()
        defs = {"OPKIT_EXECUTORCH_DIR:PATH": str(cmake_dir()), "OPKIT_RUNNER_BIN_DIR:PATH": str(root / "bin"),
                "OPKIT_EXECUTORCH_VERSION:STRING": version()}
        cmake.configure(tools, root / "src", root / "build", defs)
        ok, out, _ = cmake.build(tools, root / "build", verbose=verbose)
        if not ok:
            raise BuildError(f"building {EXE_NAME} failed", where=str(root / "src"), details=cmake._tail(out, 30),
                             fix="this is a bug in opkit's runner templates or a broken compiler; "
                                 "`opkit doctor` shows the tools")
    return Runner(root / "bin" / EXE_NAME, "no work to do" not in out, time.perf_counter() - t0)


@dataclass
class RunnerResult:
    returncode: int
    stdout: str
    stderr: str
    result: dict = field(default_factory=dict)  # the --json output when it succeeded
    crashed: str | None = None

    @property
    def message(self) -> str:
        from opkit.runtimes.executorch.pte import missing_kernel_message, missing_operators_in_log

        missing = missing_operators_in_log(self.stderr)
        if missing:
            return missing_kernel_message(missing, None)
        lines = [ln.split(": ", 1)[1] for ln in self.stderr.strip().splitlines()
                 if ln.startswith(EXE_NAME + ":") and ": " in ln]
        return "\n".join(lines) or self.stderr.strip()[-2000:] or f"exit code {self.returncode}"


def run_runner(runner: Runner, model: Path, *, libraries: list[Path] | tuple = (), inputs: list[Path],
               output_dir: Path, repeat: int = 1, timeout: float = 300.0,
               env: dict[str, str] | None = None) -> RunnerResult:
    """Run the runner once (a child process). Never raises for a failing run: see RunnerResult."""
    from opkit.verify.native import signal_name

    output_dir.mkdir(parents=True, exist_ok=True)
    json_path = output_dir / "runner.json"
    json_path.unlink(missing_ok=True)
    cmd = [str(runner.exe), "--model", str(model), "--output-dir", str(output_dir), "--json", str(json_path)]
    for lib in libraries:
        cmd += ["--library", str(lib)]
    for path in inputs:
        cmd += ["--input", str(path)]
    if repeat > 1:
        cmd += ["--repeat", str(repeat)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return RunnerResult(-1, "", "", {}, f"timeout after {timeout:g} s")
    crashed = signal_name(proc.returncode) if proc.returncode < 0 else None
    result = {}
    if proc.returncode == 0:
        try:
            result = json.loads(json_path.read_text())
        except (OSError, ValueError):
            crashed = "no --json result"
    return RunnerResult(proc.returncode, proc.stdout, proc.stderr, result, crashed)
