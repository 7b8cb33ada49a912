"""ExecuTorch (the successor of PyTorch Mobile) through its Python runtime, with opkit's ExecuTorch
kernel library (libopkit_executorch.so) loaded: the eager model is exported to a .pte in which each
opkit op is one custom call (its out variant), and the same kernel file runs there.

prepare() makes the .pte (opkit.runtimes.executorch.pte); open() runs in the child process
(opkit.runtimes.executorch.session). The C++ runner is opkit.runtimes.executorch.cpp.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opkit.build.runtimes import EXECUTORCH_INSTALL
from opkit.runtimes.base import Prepare, Runtime, Session

PTE_NAME = "model.pte"
# (id of the module, folder) -> the .pte made for it in this process: the Python runtime and the C++
# runner of one verify share one export.
_exported: dict[tuple[int, str], Path] = {}


class ExecuTorch(Runtime):
    name = "executorch"
    label = "ExecuTorch (Python runtime) + libopkit_executorch.so"
    short = "ExecuTorch"
    artifact = "executorch"
    requires = ("executorch",)
    install = EXECUTORCH_INSTALL
    library = "executorch"
    sanitize = False  # the ExecuTorch kernel library is not built with the sanitizers
    no_sanitize_why = ("its kernel library is not built with the sanitizers; run --sanitize with onnxruntime or "
                       "openvino, which run the same kernel")
    in_all = True
    report_backend = "executorch"

    def version(self) -> str:
        from opkit.runtimes.executorch.runner import version

        return version()

    def prepare(self, ctx: Prepare) -> Path:
        """Export the eager model to <art>/model.pte (once per verify, shared with the C++ runner)."""
        if ctx.module is None:
            raise NotImplementedError(f"{self.name}: needs the eager model (not the cached ONNX file)")
        art = Path(ctx.art) if ctx.art else Path(".")
        key = (id(ctx.module), str(art))
        path = _exported.get(key)
        if path is None or not path.is_file():
            from opkit import ui
            from opkit.runtimes.executorch.pte import export_program
            from opkit.spec.decorator import registered_ops

            with ui.step("exporting to ExecuTorch (torch.export -> edge -> .pte)"):
                program = export_program(ctx.module, ctx.example_inputs, art / PTE_NAME, registered_ops(),
                                         dynamic_shapes=ctx.dynamic_shapes)
            ui.detail(f"{program.path}: {len(program.custom)} opkit op call(s) "
                      f"({', '.join(program.custom) or 'none'}) in {program.seconds:.1f} s")
            path = _exported[key] = program.path
        if ctx.onnx_path is not None:  # report the outputs by the names the other runtimes use
            from opkit.verify.driver import graph_ports

            ctx.options["input_names"], ctx.options["output_names"] = graph_ports(ctx.onnx_path)
        return path

    def prepare_cases(self, spec: Any, cases: list[tuple[str, Path]], ws_root: Path, op: Any
                      ) -> tuple[list[tuple[str, Path]], list[tuple[str, str]], dict[str, Any], str]:
        """opkit test: each case's one-node model as a .pte (the op with the case's attributes, static
        shapes); a case ExecuTorch cannot export is skipped with ExecuTorch's reason."""
        import json

        import numpy as np
        import onnx
        import torch

        from opkit.codegen.executorch import unsupported
        from opkit.errors import ExportError
        from opkit.runtimes.executorch.pte import case_module, export_program

        why = unsupported(spec)
        if why:
            return [], [(cid, f"ExecuTorch: {'; '.join(why)}") for cid, _ in cases], {}, PTE_NAME
        run, skips = [], []
        for cid, folder in cases:
            names = [n for n, _ in json.loads((folder / "meta.json").read_text())["inputs"]]
            inputs = tuple(torch.from_numpy(np.load(folder / f"in_{k}.npy", allow_pickle=False))
                           for k in range(len(names)))
            module = case_module(spec, op, onnx.load(str(folder / "model.onnx")), names)
            try:
                export_program(module, inputs, folder / PTE_NAME, [op])
            except ExportError as exc:
                skips.append((cid, f"ExecuTorch could not export this case: {exc.what}"))
                continue
            run.append((cid, folder))
        return run, skips, {}, PTE_NAME

    def bench_models(self, op: Any, make_module: Any, flat: list, folder: Path, stem: str
                     ) -> tuple[Path, Path | None, str | None]:
        """opkit bench: the op as one custom call (a), and its reference lowered to ExecuTorch's own CPU
        kernels (b), as .pte programs of these static shapes; (b) is None + why when it does not export.
        make_module(fn): a module whose forward(*flat) calls fn with the op's arguments."""
        from opkit.errors import ExportError
        from opkit.runtimes.executorch.pte import export_program

        native = export_program(make_module(op), tuple(flat), folder / f"{stem}.native.pte", [op]).path
        try:
            ref = export_program(make_module(op.reference), tuple(flat), folder / f"{stem}.reference.pte", [op])
        except ExportError as exc:
            return native, None, f"the reference did not lower to ExecuTorch: {exc.what}"
        if ref.custom:
            return native, None, "the reference calls opkit ops itself: " + ", ".join(ref.custom)
        return native, ref.path, None

    def bench_model_programs(self, mf: Any, ops: list, folder: Path) -> tuple[Path, Path | None, str | None]:
        """opkit bench model.py: the model as a .pte with the kernels (a), and with every opkit op replaced
        by its reference, lowered to ExecuTorch's own kernels (b; None + why when that does not export)."""
        from opkit.errors import ExportError
        from opkit.runtimes.executorch.pte import export_program, references_inlined

        native = export_program(mf.model, mf.example_inputs, folder / "model.native.pte", ops,
                                dynamic_shapes=mf.dynamic_shapes).path
        try:
            with references_inlined(ops):
                ref = export_program(mf.model, mf.example_inputs, folder / "model.reference.pte", ops,
                                     dynamic_shapes=mf.dynamic_shapes)
        except ExportError as exc:
            return native, None, f"the references did not lower to ExecuTorch: {exc.what}"
        return native, ref.path, None

    def open(self, model: str, libraries: list[str], options: dict[str, Any]) -> Session:
        from opkit.runtimes.executorch.session import EtSession

        return EtSession(model, libraries, options)  # type: ignore[return-value]

    def error_text(self, message: str) -> str:
        return message.removeprefix("KernelError: ")
