"""opkit-runner: a small C++ program (ONNX Runtime's C++ API) that loads a model, registers op
libraries, reads inputs from .npy files, runs and writes .npy outputs.

Its sources are rendered from templates/runner/ into the build folder by the one writer, and
built with the workspace's cmake + ninja against the libonnxruntime.so.1.x.y that the installed
onnxruntime wheel ships (a libonnxruntime.so.1 symlink, an IMPORTED target, rpath to it).
The runner is native code: opkit only ever runs it as a child process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from opkit import __version__, ui
from opkit.errors import BuildError, NativeRunError, ToolMissingError, UsageError

EXE_NAME = "opkit-runner"
ENV_DIR = "OPKIT_RUNNER_DIR"  # build the runner here instead (shared between workspaces, e.g. by tests)


def ort_library() -> Path:
    """The libonnxruntime.so.1.x.y inside the installed onnxruntime wheel (found without importing it)."""
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise ToolMissingError("the onnxruntime package is not installed", fix="pip install 'onnxruntime>=1.21'")
    capi = Path(list(spec.submodule_search_locations)[0]) / "capi"
    libs = sorted(capi.glob("libonnxruntime.so.1.*"), key=lambda p: [int(x) if x.isdigit() else 0
                                                                       for x in p.name.split(".")[2:]])
    if not libs:
        raise ToolMissingError(f"the onnxruntime wheel has no libonnxruntime.so.1.* in {capi}",
                               expected="the shared library that onnxruntime wheels ship",
                               fix="reinstall onnxruntime from PyPI (pip install --force-reinstall onnxruntime)")
    return libs[-1]


def ort_version_of(lib: Path) -> str:
    m = re.search(r"libonnxruntime\.so\.(\d+\.\d+\.\d+)", lib.name)
    return m.group(1) if m else "?"


def runner_dir(build_dir: Path | None) -> Path:
    """Where the runner is built: $OPKIT_RUNNER_DIR, else <build>/runner, else a per-user cache."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    if build_dir is not None:
        return Path(build_dir) / "runner"
    from opkit.build.headers import cache_root

    return cache_root() / f"runner-{__version__}-ort{ort_version_of(ort_library())}"


def render_runner(ort_version: str) -> dict[str, str]:
    """Every source file of the runner, relative to its source folder. Pure."""
    from opkit.codegen.env import render
    from opkit.spec.dtypes import DTYPES, numpy_dtype

    rows = []
    for d in DTYPES.values():
        try:
            descr = numpy_dtype(d.name).str
        except ImportError:  # ml_dtypes missing: bfloat16 is what NumPy writes for it
            descr = "<V2"
        if descr[0] == "|" and descr[1:] not in ("i1", "u1", "b1"):
            descr = "<" + descr[1:]
        rows.append({"name": d.name, "descr": descr, "itemsize": int(descr[2:]), "onnx": d.onnx})
    return {
        "npy.h": render("runner/npy.h.j2", dtypes=rows),
        "main.cc": render("runner/main.cc.j2", ort_version=ort_version, opkit_version=__version__,
                          dtype_names=", ".join(DTYPES)),
        "CMakeLists.txt": render("runner/CMakeLists.txt.j2"),
    }


@dataclass(frozen=True)
class Runner:
    exe: Path
    ort_library: Path
    ort_version: str
    compiled: bool
    seconds: float


def ensure_runner(build_dir: Path | None = None, *, verbose: bool = False) -> Runner:
    """Render, configure and build the runner (a no-op when up to date). Returns where it is."""
    from opkit.build import cmake
    from opkit.build.headers import ensure_headers
    from opkit.build.lock import build_lock
    from opkit.codegen.writer import FileManager

    t0 = time.perf_counter()
    root = runner_dir(build_dir)
    lib = ort_library()
    version = ort_version_of(lib)
    with build_lock(root):
        fm = FileManager(root / "src")
        for rel, text in sorted(render_runner(version).items()):
            fm.write(rel, text)
        link_dir = root / "ort"
        link_dir.mkdir(parents=True, exist_ok=True)
        link = link_dir / "libonnxruntime.so.1"
        if not (link.is_symlink() and os.readlink(link) == str(lib)):
            tmp = link_dir / f".libonnxruntime.so.1.{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(lib)
            os.replace(tmp, link)
        tools = cmake.find_tools()
        headers = ensure_headers()
        defs = {"OPKIT_ORT_INCLUDE_DIR:PATH": str(headers.include_dir),
                "OPKIT_ORT_LINK_DIR:PATH": str(link_dir),
                "OPKIT_ORT_LIBRARY:FILEPATH": str(lib),  # a new onnxruntime re-configures and relinks
                "OPKIT_RUNNER_BIN_DIR:PATH": str(root / "bin")}
        cmake.configure(tools, root / "src", root / "build", defs)
        ok, out, diags = cmake.build(tools, root / "build", verbose=verbose)
        if not ok:
            raise BuildError("building opkit-runner failed", where=str(root / "src"),
                             details=cmake._tail(out, 30),
                             fix="this is a bug in opkit's runner templates or a broken compiler; "
                                 "`opkit doctor` shows the tools")
    return Runner(root / "bin" / EXE_NAME, lib, version, "no work to do" not in out, time.perf_counter() - t0)


@dataclass
class RunnerResult:
    returncode: int
    stdout: str
    stderr: str
    result: dict = field(default_factory=dict)  # the --json output when it succeeded
    crashed: str | None = None

    @property
    def message(self) -> str:
        lines = [ln.removeprefix("opkit-runner: ") for ln in self.stderr.strip().splitlines()
                 if ln.startswith("opkit-runner:")]
        return "\n".join(lines) or self.stderr.strip()[-2000:] or f"exit code {self.returncode}"


def run_runner(runner: Runner, model: Path, *, libraries: list[Path] | tuple = (), inputs: dict[str, Path],
               output_dir: Path, threads: int | None = None, repeat: int = 1,
               timeout: float | None = None) -> RunnerResult:
    """Run the runner once (a child process). Never raises for a failing run: see RunnerResult."""
    from opkit.runtimes.child import signal_name

    output_dir.mkdir(parents=True, exist_ok=True)
    json_path = output_dir / "runner.json"
    json_path.unlink(missing_ok=True)
    cmd = [str(runner.exe), "--model", str(model), "--output-dir", str(output_dir), "--json", str(json_path)]
    for lib in libraries:
        cmd += ["--library", str(lib)]
    for name, path in inputs.items():
        cmd += ["--input", f"{name}={path}"]
    if threads:
        cmd += ["--threads", str(threads)]
    if repeat > 1:
        cmd += ["--repeat", str(repeat)]
    from opkit.runtimes.child import DEFAULT_TIMEOUT

    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                              timeout=timeout or DEFAULT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return RunnerResult(-1, "", "", {}, f"timeout after {timeout or DEFAULT_TIMEOUT:g} s")
    crashed = signal_name(proc.returncode) if proc.returncode < 0 else None
    result = {}
    if proc.returncode == 0:
        try:
            result = json.loads(json_path.read_text())
        except (OSError, ValueError):
            crashed = "no --json result"
    return RunnerResult(proc.returncode, proc.stdout, proc.stderr, result, crashed)


def list_ports(runner: Runner, model: Path, libraries: list[Path] | tuple = ()) -> dict:
    """The model's inputs and outputs as the runner sees them ({"inputs": [...], "outputs": [...]})."""
    cmd = [str(runner.exe), "--model", str(model), "--list"]
    for lib in libraries:
        cmd += ["--library", str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=120)
    if proc.returncode != 0:
        res = RunnerResult(proc.returncode, proc.stdout, proc.stderr)
        cls = UsageError if proc.returncode == 2 else NativeRunError
        raise cls(f"opkit-runner could not load {model}", details=res.message,
                  fix="check the model file and the op library")
    return json.loads(proc.stdout)


def build_for_cli(build_dir: Path | None) -> Runner:
    with ui.step("building opkit-runner (C++, ONNX Runtime's C++ API)"):
        r = ensure_runner(build_dir)
    ui.detail(f"{'built' if r.compiled else 'up to date'}: {r.exe} (onnxruntime {r.ort_version}) in {r.seconds:.2f} s")
    return r
