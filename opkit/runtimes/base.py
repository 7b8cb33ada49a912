"""The runtime interface: one small class per place where a model runs with opkit's kernels.

A *runtime* is where an exported model (or a torch model) runs with the op library built from the
same spec and the same kernel: ONNX Runtime through its Python API, ONNX Runtime's C++ API
(opkit-runner), the Python references inside ONNX Runtime (onnxruntime-extensions), OpenVINO
(Python API, and its C++ runner), and next PyTorch eager with the native kernel, TorchScript,
AOTInductor, ExecuTorch, ORT's CUDA EP, TensorRT. `opkit verify`, `test`, `bench` and `run` take
`--runtime NAME` (repeatable, `all`) and loop over the chosen runtimes; none is special-cased.

Contract (read this before adding a runtime)
--------------------------------------------
1. One module (or package) per runtime under opkit/runtimes/, holding a `Runtime` subclass; one line
   in opkit/runtimes/__init__.py `KNOWN` (name -> "module:Class"). Nothing imports it until it is
   chosen (like an entry point). Templates of its native glue live under templates/<runtime>/.
2. Class attributes (what the commands read, without importing the runtime's package):
   - `name`: what `--runtime` takes ("onnxruntime", "openvino-cpp", ...); `label`: the report's title;
     `short`: the name in progress lines ("ONNX Runtime").
   - `artifact`: what it consumes. "onnx" (the exported .onnx file; prepare() may rewrite a copy) or,
     for the torch runtimes, "torch" (the eager nn.Module + example inputs, in the child),
     "torchscript" (.pt), "aoti" (.pt2), "executorch" (.pte): their prepare() makes the file from
     `Prepare.module` / `Prepare.example_inputs` / `Prepare.dynamic_shapes` (torch.export etc.).
   - `requires`: Python modules that must be importable (checked with find_spec, not imported);
     `install`: the command that installs them. `missing()` / `require()` turn that into one
     RuntimeMissingError (exit 2) with the install command.
   - `library`: which native library it loads: "ort" (libopkit_ops.so), "openvino" (the OpenVINO
     extension), a new kind for a new runtime, or None (no native code, e.g. the Python references).
     `build(ws, sanitize=)` builds it from the generated glue (opkit.build.driver.build with
     `runtimes=[kind]`) and returns the files to load.
   - `cpp`: True for a C++ runner (no Python in the process): `--no-native` drops these, and
     `compare_with` names the Python-API runtime whose outputs it must also match.
   - `cases` / `bench`: whether `opkit test` / `opkit bench` can run it (needs `open()`, below).
   - `in_all`: whether `--runtime all` takes it (the Python references are a check of the spec,
     not a kernel runtime: they are chosen by name only); `sanitize`: whether --sanitize runs it
     (`no_sanitize_why`: the message when it cannot).
   - `report_backend`: the value of a run's "backend" in verify's JSON (kept for older tools).
   - `narrows`: dtypes the runtime computes in a narrower one ({"float64": "float32"}): outputs of
     that dtype are compared at the narrower dtype's tolerance, and the report says so.
3. `version()` -> str; `prepare(ctx: Prepare) -> Path`: the file `run()` loads (default: the ONNX file);
   it may put options for open() into `ctx.options` (they travel as `Job.options`).
4. `run(job: Job) -> Outcome`, in opkit's process: run every input set of `job.runs` in a CHILD
   process (a crash, a hang or an error in native code never takes opkit down), writing output k
   of input set r as `<job.runs[r].outputs>/<k>.npy`. Never raises for what the model does: the
   Outcome carries `error` (the runtime's message, naming the op) or `crashed` ("SIGSEGV", "timeout
   after 300 s") with stderr, and `result["runs"]` for the input sets that finished. The default runs
   opkit.runtimes.worker, which calls `open()` in the child; a C++ runner overrides `run()`.
5. `open(model, libraries, options) -> Session`, in the CHILD only (Python-API runtimes): load the
   model with the libraries; `options` has "threads" (int|None), "sanitize" (no arena), "spin",
   and runtime-specific keys (e.g. "python_ops"). A Session has `input_names`, `output_names`,
   `run(arrays) -> list[np.ndarray]` (bfloat16 as ml_dtypes.bfloat16), `bind(arrays) -> callable`
   (the cheapest repeated call, for bench) and `inferred_shapes()` (per output: a list of
   int|str|None dims from the runtime's shape inference, or None).
6. Optional: `prepare_cases(...)` (opkit test's one-node models, see onnxruntime_python.py),
   `run_files(...)` (opkit run: a model on named .npy inputs, for C++ runners), `doctor_rows()`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from opkit.errors import RuntimeMissingError


@dataclass
class RunSpec:
    """One input set: inputs as <inputs>/<k>.npy (graph input order), outputs go to <outputs>/<k>.npy."""

    label: str
    inputs: Path
    outputs: Path

    def to_dict(self) -> dict[str, str]:
        return {"label": self.label, "inputs": str(self.inputs), "outputs": str(self.outputs)}


@dataclass
class Prepare:
    """What verify hands a runtime's prepare(): the exported ONNX model, and the torch side for the
    runtimes that consume a torch artifact."""

    onnx_path: Path | None  # the exported model (None if no ONNX export happened)
    onnx_model: Any = None  # the loaded onnx.ModelProto, when verify has it in memory
    ops: list[Any] = field(default_factory=list)  # the opkit ops the model calls (opkit.spec Op objects)
    workspace: Path | None = None
    art: Path | None = None  # the folder for this runtime's files (<build>/verify/<model>/)
    model_file: Path | None = None  # the user's model.py
    module: Any = None  # the eager torch.nn.Module (None on verify's cached path)
    example_inputs: tuple = ()
    dynamic_shapes: Any = None
    options: dict[str, Any] = field(default_factory=dict)  # prepare() may add options for open() (Job.options)


@dataclass
class Job:
    """What run() runs: a prepared model file, the libraries it loads, the input sets."""

    model: Path
    libraries: list[Path]
    runs: list[RunSpec]
    work: Path  # a folder for the job's own files (job.json, result.json, logs)
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    timeout: float | None = None
    sanitize: bool = False
    threads: int | None = None
    env: dict[str, str] | None = None
    options: dict[str, Any] = field(default_factory=dict)  # runtime-specific (e.g. "python_ops")


@dataclass
class Outcome:
    """What a child process did. `ok` only when every input set ran."""

    ok: bool
    error: str | None  # the runtime's error message (the model or a kernel failed; the process lived)
    result: dict  # result.json: "runs" (one entry per finished input set), "inputs", "outputs", ...
    crashed: str | None  # "SIGSEGV", "timeout after 300 s", "exit code 3", ...
    stderr: str


class Session:
    """The child-side handle on a loaded model (see the module docstring, point 5)."""

    input_names: list[str]
    output_names: list[str]

    def run(self, arrays: list) -> list:
        raise NotImplementedError

    def bind(self, arrays: list) -> Callable[[], Any]:
        return lambda: self.run(arrays)

    def inferred_shapes(self) -> list[list | None] | None:
        return None


class Runtime:
    """Base class of every runtime; the defaults fit a Python-API runtime that loads an ONNX file."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    short: ClassVar[str] = ""  # for progress lines: "ONNX Runtime", "OpenVINO"
    artifact: ClassVar[str] = "onnx"
    requires: ClassVar[tuple[str, ...]] = ()
    install: ClassVar[str] = ""
    library: ClassVar[str | None] = None
    cpp: ClassVar[bool] = False
    compare_with: ClassVar[str | None] = None
    cases: ClassVar[bool] = True
    bench: ClassVar[bool] = True
    in_all: ClassVar[bool] = True
    sanitize: ClassVar[bool] = True
    no_sanitize_why: ClassVar[str] = "it runs no sanitized native code"  # shown when --sanitize leaves it out
    default: ClassVar[bool] = False
    report_backend: ClassVar[str] = ""
    narrows: ClassVar[dict[str, str]] = {}  # dtypes it computes in a narrower one ({"float64": "float32"})
    worker_module: ClassVar[str] = "opkit.runtimes.worker"

    # -- availability ------------------------------------------------------------------------------
    def missing(self) -> str | None:
        """Why this runtime cannot run here (None when it can). Imports nothing."""
        absent = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if absent:
            return f"the Python package(s) {', '.join(absent)} are not installed"
        return None

    def require(self) -> None:
        why = self.missing()
        if why:
            raise RuntimeMissingError(f"the runtime {self.name!r} ({self.label}) is not available: {why}",
                                      fix=self.install or "install what it needs (`opkit doctor` lists it)")

    def version(self) -> str:
        return "?"

    @property
    def backend(self) -> str:
        return self.report_backend or self.name

    # -- building and preparing --------------------------------------------------------------------
    def build(self, ws: Any, *, sanitize: bool = False) -> list[Path]:
        """Build the native library this runtime loads (nothing by default)."""
        if self.library is None:
            return []
        from opkit.build.driver import build

        return [build(ws, sanitize=sanitize, runtimes=[self.library]).library_for(self.library)]

    def prepare(self, ctx: Prepare) -> Path:
        """The file run() loads: by default the exported ONNX model as it is."""
        if ctx.onnx_path is None:
            raise NotImplementedError(f"{self.name}: no ONNX model to run")
        return ctx.onnx_path

    # -- running -----------------------------------------------------------------------------------
    def run(self, job: Job) -> Outcome:
        """Every input set of `job` in a child process (opkit.runtimes.worker, which calls open())."""
        from opkit.runtimes.child import run_worker

        payload = {"runtime": self.name, "model": str(job.model), "libraries": [str(p) for p in job.libraries],
                   "runs": [r.to_dict() for r in job.runs], "threads": job.threads, "sanitize": job.sanitize,
                   "options": job.options}
        return run_worker(payload, job.work, timeout=job.timeout, env=job.env, module=self.worker_module)

    def open(self, model: str, libraries: list[str], options: dict[str, Any]) -> Session:
        """Child side: load `model` with `libraries`. Python-API runtimes implement it."""
        raise NotImplementedError(f"the runtime {self.name} has no Python API session")

    def prepare_cases(self, spec: Any, cases: list[tuple[str, Path]], ws_root: Path, op: Any
                      ) -> tuple[list[tuple[str, Path]], list[tuple[str, str]], dict[str, Any], str]:
        """opkit test: which case folders to run, (case id, why) skipped, options for open(), and the
        model file name inside each case folder."""
        return cases, [], {}, "model.onnx"

    def error_text(self, message: str) -> str:
        """The runtime's error as shown to the user (a Python runtime may prefix the exception type)."""
        return message

    def __repr__(self) -> str:
        return f"<runtime {self.name}>"
