"""The Python references inside ONNX Runtime (onnxruntime-extensions): each op's reference runs as a
Python op, so a model or the test setup can be checked before any C++ exists (`--backend python`).
No native library is built. The model-side work lives in opkit.verify.pyops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opkit.runtimes.base import Prepare, Session
from opkit.runtimes.onnxruntime_python import OnnxRuntime


class PythonReference(OnnxRuntime):
    name = "python"
    label = "Python references inside ONNX Runtime (onnxruntime-extensions; no native library)"
    short = "ONNX Runtime (Python references)"
    requires = ("onnxruntime", "onnxruntime_extensions", "torch")
    install = "pip install onnxruntime-extensions"
    library = None
    in_all = False  # a check of the spec and the model, not a kernel runtime: chosen by name only
    sanitize = False
    no_sanitize_why = "it runs no native kernel (each op's Python reference)"
    default = False
    report_backend = "python"

    def version(self) -> str:
        from importlib import metadata

        try:
            return metadata.version("onnxruntime-extensions")
        except metadata.PackageNotFoundError:
            return "not installed"

    def prepare(self, ctx: Prepare) -> Path:
        """Checks what the backend can run, writes its copy of the model; open() registers the ops."""
        from opkit.verify.pyops import ensure_supported, job_entry, prepare_model

        ensure_supported([op.spec for op in ctx.ops])
        path, variants = prepare_model(ctx.onnx_model, [op.spec for op in ctx.ops], ctx.art / "model.python.onnx")
        ctx.options["python_ops"] = job_entry(ctx.workspace, ctx.ops, variants, ctx.model_file)
        return path

    def open(self, model: str, libraries: list[str], options: dict[str, Any]) -> Session:
        from opkit.verify.pyops import register_python_ops

        # Registered once per process (ORT refuses a second kernel of the same op), before the
        # SessionOptions exist; a child process runs one job, so one set of ops.
        lib = getattr(self, "_registered", None)
        if lib is None:
            on_error = options.get("on_error") or (lambda msg: None)
            lib = self._registered = register_python_ops(options["python_ops"], on_error)
        return super().open(model, list(libraries) + [lib], options)

    def prepare_cases(self, spec: Any, cases: list[tuple[str, Path]], ws_root: Path, op: Any
                      ) -> tuple[list[tuple[str, Path]], list[tuple[str, str]], dict[str, Any], str]:
        import onnx

        from opkit.errors import BackendUnsupportedError
        from opkit.verify.pyops import job_entry, prepare_model, unsupported

        why = unsupported(spec)
        if why:
            return [], [(cid, f"Python backend: {'; '.join(why)}") for cid, _ in cases], {}, "model.python.onnx"
        run, skips, variants = [], [], {}
        for cid, folder in cases:
            try:
                _, vs = prepare_model(onnx.load(str(folder / "model.onnx")), [spec], folder / "model.python.onnx")
            except BackendUnsupportedError as exc:
                skips.append((cid, f"Python backend: {exc.details or exc.what}"))
                continue
            for v in vs:
                variants[(v["op_type"], tuple(sorted(v["combo"].items())))] = v
            run.append((cid, folder))
        return run, skips, {"python_ops": job_entry(ws_root, [op], list(variants.values()))}, "model.python.onnx"
