"""A model as a file for the C++ runners: TorchScript (.pt, torch.jit.trace; torch.jit.script where tracing
cannot) and an AOTInductor package (.pt2, torch.export + aoti_compile_and_package, cached by content).

Both record each opkit op as one call of its torch op (``ns::op``), which the runner resolves through
torch's dispatcher to the native kernel of libopkit_torch.so. torch.jit is deprecated upstream (no new
features; torch.export + AOTInductor is its successor): TorchScript is kept for existing deployments.
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path
from typing import Any

from opkit import ui
from opkit.errors import ExportError


def export_torchscript(module: Any, example_inputs: tuple, path: Path) -> str:
    """Trace `module` (script it when tracing fails) and save it to `path`. Returns "trace" or "script"."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    how = "trace"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation and tracer warnings: the report notes both
        try:
            with torch.no_grad():
                saved = torch.jit.trace(module, example_inputs, check_trace=False)
        except Exception as trace_exc:
            how = "script"
            try:
                saved = torch.jit.script(module)
            except Exception as script_exc:
                raise ExportError(
                    "TorchScript export failed: torch.jit.trace and torch.jit.script both refused the model",
                    details=f"trace: {trace_exc}\nscript: {script_exc}",
                    fix="use the aoti runtime (torch.export + AOTInductor), TorchScript's successor") from None
    tmp = path.with_suffix(".pt.tmp")
    saved.save(str(tmp))
    tmp.replace(path)
    return how


def export_program(module: Any, example_inputs: tuple, dynamic_shapes: Any) -> Any:
    import torch

    try:
        return torch.export.export(module.eval(), example_inputs, dynamic_shapes=dynamic_shapes)
    except Exception as exc:
        raise ExportError(f"torch.export failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                          details=str(exc)[-2000:],
                          fix="make the model exportable (torch.export's message above names the line)") from None


def program_key(program: Any) -> str:
    """A content hash of an ExportedProgram (its graph code, signature, dynamic ranges, weights and constants)
    and of the tools that compile it. (torch.export.save's bytes are not stable across processes.)"""
    import torch

    from opkit import __version__

    h = hashlib.sha256(f"torch {torch.__version__} opkit {__version__}\n".encode())
    h.update(program.graph_module.code.encode())
    h.update(str(program.graph_signature).encode())
    h.update(str(sorted((str(k), str(v)) for k, v in program.range_constraints.items())).encode())
    for name, t in sorted({**program.state_dict, **program.constants}.items()):
        h.update(name.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(t).encode())
    return h.hexdigest()[:20]


def export_aoti(module: Any, example_inputs: tuple, dynamic_shapes: Any, path: Path, cache_dir: Path) -> bool:
    """torch.export then an AOTInductor package at `path`; a package compiled before for the same program
    (cache_dir/aoti-<hash>.pt2) is reused (compiling takes tens of seconds). Returns True when cached."""
    import torch

    program = export_program(module, example_inputs, dynamic_shapes)
    cached = cache_dir / f"aoti-{program_key(program)}.pt2"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cached.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp.pt2")
        with ui.step("compiling an AOTInductor package (torch._inductor.aoti_compile_and_package; ~30 s)"):
            try:
                torch._inductor.aoti_compile_and_package(program, package_path=str(tmp))
            except Exception as exc:
                raise ExportError(f"AOTInductor compilation failed: {type(exc).__name__}",
                                  details=str(exc)[-2000:], fix="see torch's message above") from None
        tmp.replace(cached)
        fresh = True
    else:
        fresh = False
    if path.resolve() != cached.resolve():
        shutil.copyfile(cached, path)
    return not fresh
