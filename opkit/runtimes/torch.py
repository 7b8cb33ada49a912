"""PyTorch itself with the native kernels (libopkit_torch.so): eager, torch.compile, TorchScript and
AOTInductor. The same kernel file as every other runtime; the op's schema is the spec's
(torch.library.custom_op), the library registers the CPU kernel (opkit/build/torchlib.py).

- torch: the model file run eagerly in a child process after opkit.load_native; compared with the eager
  run on the references (verify's own). `opkit test` calls the op on every case (+ torch.library.opcheck),
  `opkit bench` times the native call against the reference.
- torch-compile: the same under torch.compile (the op stays one call: opaque to the compiler).
- torchscript: torch.jit.trace (script where tracing fails) -> .pt, run by opkit-torch-runner (libtorch,
  no Python). torch.jit is deprecated upstream: torch.export + AOTInductor (aoti) is its successor.
- aoti: torch.export -> AOTInductor package (.pt2, cached by content: compiling takes ~30 s), run by
  opkit-torch-runner through torch's AOTIModelPackageLoader, dynamic sizes as in the model file.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opkit.runtimes.base import Job, Outcome, Prepare, Runtime, Session

TORCH_INSTALL = "pip install torch==2.13.0"


def _to_torch(a: Any) -> Any:
    import numpy as np
    import torch

    a = np.ascontiguousarray(a)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _flatten(out: Any) -> list:
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _flatten(o)]
    raise TypeError(f"the model returned {type(out).__name__}, expected tensors")


def _numpy(outs: list) -> list:
    from opkit.verify.arrays import to_numpy

    return [to_numpy(t) for t in outs]


class ModelSession(Session):
    """A model file's module (eager or torch.compile'd) with the native kernels loaded."""

    def __init__(self, fn: Callable, n_inputs: int) -> None:
        self.fn = fn
        self.input_names = [f"input{k}" for k in range(n_inputs)]
        self.output_names = []  # verify names the outputs from the exported graph

    def run(self, arrays: list) -> list:
        import torch

        with torch.no_grad():
            return _numpy(_flatten(self.fn(*[_to_torch(a) for a in arrays])))

    def bind(self, arrays: list) -> Callable[[], Any]:
        import torch

        args, fn = [_to_torch(a) for a in arrays], self.fn

        def call() -> Any:
            with torch.no_grad():
                return fn(*args)

        return call


class CaseSession(Session):
    """One `opkit test` case: the torch op called on the case's arguments (args.pt), native kernel loaded.
    The first case of each op also runs torch.library.opcheck (schema, fake tensors, AOT dispatch)."""

    _opchecked: set[str] = set()

    def __init__(self, op: Any, args: list) -> None:
        self.op, self.args = op, args
        self.input_names, self.output_names = [], []

    def run(self, arrays: list) -> list:
        import torch

        overload = self.op.torch_op._opoverload
        spec = self.op.spec
        if spec.qualname not in self._opchecked:
            self._opchecked.add(spec.qualname)
            checks = ["test_schema", "test_faketensor"]
            if all(o.shape is not None and o.shape.static for o in spec.outputs):
                checks.append("test_aot_dispatch_static")  # not for sizes that depend on the data
            res = torch.library.opcheck(overload, tuple(self.args), test_utils=tuple(checks))
            bad = {k: v for k, v in res.items() if v != "SUCCESS"}
            if bad:
                raise RuntimeError(f"torch.library.opcheck failed for {self.op.spec.qualname}: {bad}")
        with torch.no_grad():
            outs = _flatten(overload(*self.args))
        # as the ONNX case models give them (a Cast after the op; exact): opkit test reads bfloat16 as float32
        return _numpy([t.float() if t.dtype == torch.bfloat16 else t for t in outs])


class TorchEager(Runtime):
    name = "torch"
    label = "PyTorch eager + libopkit_torch.so"
    short = "PyTorch"
    artifact = "torch"
    requires = ("torch",)
    install = TORCH_INSTALL
    library = "torch"
    sanitize = False  # the torch library is not built with the sanitizers
    no_sanitize_why = ("its op library is not built with the sanitizers; run --sanitize with onnxruntime or "
                       "openvino, which run the same kernel")
    mode = "eager"

    def version(self) -> str:
        from importlib import metadata

        return metadata.version("torch")

    def prepare(self, ctx: Prepare) -> Path:
        """The model file itself: the child imports it (with the workspace on sys.path) and runs it."""
        if ctx.model_file is None:
            raise NotImplementedError(f"{self.name}: no model file")
        ctx.options["workspace"] = str(ctx.workspace)
        return Path(ctx.model_file)

    def open(self, model: str, libraries: list[str], options: dict[str, Any]) -> Session:
        import torch

        from opkit.build.specs import add_to_path
        from opkit.build.workspace import Workspace
        from opkit.torchop.native import load_library
        from opkit.verify.modelfile import load_model_file

        if options.get("threads"):
            torch.set_num_threads(int(options["threads"]))
        ws = Workspace(Path(options["workspace"]))
        if model.endswith(".pt"):  # an `opkit test` case (args.pt): the op itself
            from opkit.build.specs import import_ops

            op = import_ops(ws)[options["op"]]
            for lib in libraries:
                load_library(lib)
            return CaseSession(op, torch.load(model, weights_only=True))
        add_to_path(ws)
        mf = load_model_file(Path(model), ws.root)
        for lib in libraries:
            load_library(lib)
        module = mf.model.eval()
        fn = torch.compile(module) if self.mode == "compile" else module
        return ModelSession(fn, len(mf.example_inputs))

    def prepare_cases(self, spec: Any, cases: list[tuple[str, Path]], ws_root: Path, op: Any
                      ) -> tuple[list[tuple[str, Path]], list[tuple[str, str]], dict[str, Any], str]:
        return cases, [], {"workspace": str(ws_root), "op": spec.folder}, "args.pt"


class TorchCompile(TorchEager):
    name = "torch-compile"
    label = "PyTorch torch.compile + libopkit_torch.so"
    short = "torch.compile"
    cases = False
    bench = False
    mode = "compile"


class _TorchCpp(TorchEager):
    """A model file run by opkit-torch-runner (libtorch, no Python in the process)."""

    library = "torch-cpp"
    cpp = True
    compare_with = "torch"
    cases = False
    bench = False
    suffix = ""

    def run(self, job: Job) -> Outcome:
        from opkit.build.torchlib import runner_and_libraries
        from opkit.runtimes.child import DEFAULT_TIMEOUT, signal_name

        runner, libraries = runner_and_libraries(Path(job.libraries[0]))
        cmd = [str(runner)] + [a for lib in libraries for a in ("--library", str(lib))] + ["--model", str(job.model)]
        if job.threads:
            cmd += ["--threads", str(job.threads)]
        for r in job.runs:
            cmd += ["--run", str(r.inputs), str(r.outputs)]
        result: dict = {"runs": [], "version": self.version()}
        timeout = job.timeout or DEFAULT_TIMEOUT
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, errors="replace")
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            return Outcome(False, None, result, f"timeout after {timeout:g} s", err)
        result["runs"] = [{"label": r.label} for r, line in zip(job.runs, proc.stdout.splitlines())
                          if line.startswith("ran ")]
        result["seconds"] = time.perf_counter() - t0
        if proc.returncode < 0:
            return Outcome(False, None, result, signal_name(proc.returncode), proc.stderr)
        if proc.returncode != 0:
            msg = proc.stderr.strip().splitlines()
            error = next((ln.split("error: ", 1)[1] for ln in msg if "opkit-torch-runner: error: " in ln), None)
            if error is None:
                return Outcome(False, None, result, f"exit code {proc.returncode}", proc.stderr)
            return Outcome(False, error, result, None, proc.stderr)
        return Outcome(True, None, result, None, proc.stderr)


    def run_files(self, build_dir: Path | None, model: Path, *, libraries: list[Path], inputs: dict[str, Path],
                  output_dir: Path, threads: int | None = None, repeat: int = 1) -> object:
        """`opkit run FILE.pt|FILE.pt2 --runtime torchscript|aoti`: the inputs in the order given (the model's
        positional inputs), outputs as <output_dir>/<k>.npy. A RunnerResult; never raises for the run."""
        import shutil
        import tempfile

        from opkit.native.runner import RunnerResult
        from opkit.runtimes.base import RunSpec
        from opkit.runtimes.child import DEFAULT_TIMEOUT

        if not libraries:
            return RunnerResult(1, "", "opkit-torch-runner needs the PyTorch op library (a workspace or --library "
                                       "libopkit_torch.so)")
        with tempfile.TemporaryDirectory(prefix="opkit-run-") as tmp:
            folder = Path(tmp) / "inputs"
            folder.mkdir()
            for k, path in enumerate(inputs.values()):
                shutil.copyfile(path, folder / f"{k}.npy")
            outcome = self.run(Job(model=model, libraries=list(libraries), work=Path(tmp), threads=threads,
                                   runs=[RunSpec("inputs", folder, output_dir)] * max(1, repeat),
                                   timeout=DEFAULT_TIMEOUT))
        rc = 0 if outcome.ok else (1 if outcome.error else -1)
        return RunnerResult(rc, f"wrote {output_dir}/<k>.npy ({'; '.join(r['label'] for r in outcome.result['runs'])})",
                            outcome.error or outcome.stderr, outcome.result, outcome.crashed)


class TorchScript(_TorchCpp):
    name = "torchscript"
    label = "TorchScript (.pt, torch.jit.trace) in opkit-torch-runner (libtorch, no Python) + libopkit_torch.so"
    short = "TorchScript"
    artifact = "torchscript"
    report_backend = "TorchScript runner"

    def prepare(self, ctx: Prepare) -> Path:
        from opkit import ui
        from opkit.torchop.export import export_torchscript

        path = Path(ctx.art) / "model.pt"
        with ui.step("exporting to TorchScript (torch.jit.trace; deprecated upstream, see torch.export)"):
            how = export_torchscript(ctx.module, ctx.example_inputs, path)
        ui.detail(f"torch.jit.{how}: {path}")
        return path


class Aoti(_TorchCpp):
    name = "aoti"
    label = "AOTInductor package (.pt2, torch.export) in opkit-torch-runner (libtorch, no Python) + libopkit_torch.so"
    short = "AOTInductor"
    artifact = "aoti"
    report_backend = "AOTInductor runner"

    def prepare(self, ctx: Prepare) -> Path:
        from opkit import ui
        from opkit.build.workspace import Workspace
        from opkit.torchop.export import export_aoti

        path = Path(ctx.art) / "model.pt2"
        cache = Workspace(Path(ctx.workspace)).build_dir / "torch-cache"
        with ui.step("exporting with torch.export and AOTInductor"):
            cached = export_aoti(ctx.module, ctx.example_inputs, ctx.dynamic_shapes, path, cache)
        ui.detail(f"{'cached' if cached else 'compiled'}: {path}")
        return path
