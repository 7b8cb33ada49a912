"""The PyTorch op library (libopkit_torch.so): render its glue, configure it against the torch wheel's
CMake config, build it. A CMake project of its own (generated/torch/CMakeLists.txt, built in
<build>/<variant>/torch/), made only when a torch runtime or `opkit build --torch` asks for it:
find_package(Torch) and torch's headers (precompiled once, then about 4.5 s per op to compile) never slow
down a plain build.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from opkit import ui
from opkit.build import cmake
from opkit.build.libraries import cmake_defs, libraries_of
from opkit.build.workspace import Workspace
from opkit.codegen.writer import FileManager
from opkit.errors import ToolMissingError
from opkit.spec.model import OpSpec

TORCH_INSTALL = "pip install torch==2.13.0 (a wheel from pytorch.org or PyPI: they carry the C++ headers and CMake config)"


def library_path(ws: Workspace, variant: str) -> Path:
    from opkit.codegen.torch import LIBRARY_TARGET

    return ws.library_path(variant).parent / f"lib{LIBRARY_TARGET}.so"


def torch_cmake_dir() -> Path:
    """torch's CMake prefix (TorchConfig.cmake below it), checked together with its C++ headers."""
    try:
        import torch
        import torch.utils
    except ImportError as exc:
        raise ToolMissingError("the PyTorch op library needs torch, which is not importable",
                               got=str(exc), fix=TORCH_INSTALL) from None
    prefix = Path(torch.utils.cmake_prefix_path)
    include = Path(torch.__file__).parent / "include"
    missing = [str(p) for p in (prefix / "Torch" / "TorchConfig.cmake", include / "torch" / "library.h",
                                include / "ATen" / "Parallel.h") if not p.is_file()]
    if missing:
        raise ToolMissingError(f"this torch {torch.__version__} has no C++ headers or CMake config",
                               where=str(Path(torch.__file__).parent),
                               expected="TorchConfig.cmake and the headers torch/library.h, ATen/Parallel.h",
                               got="missing: " + ", ".join(missing),
                               fix="install a torch wheel that ships them (" + TORCH_INSTALL + "); builds such as "
                                   "some distribution packages leave them out")
    return prefix


def runner_and_libraries(library: Path) -> tuple[Path, list[Path]]:
    """opkit-torch-runner and the libraries it loads (schemas first), beside a built libopkit_torch.so."""
    from opkit.codegen.torch import RUNNER_TARGET, SCHEMAS_TARGET

    return (library.parent.parent / "bin" / RUNNER_TARGET,
            [library.parent / f"lib{SCHEMAS_TARGET}.so", library])


def _alias_order(spec: OpSpec, target: Any) -> tuple[int, ...] | str:
    """For each of the spec's parameters, the index of the original op's argument it takes; or why the
    runners cannot hand the original's calls to the adopted op."""
    from opkit.errors import OpkitError
    from opkit.export.translate import adoption_binding

    if target is None:
        return f"no module imported by the specs defines {spec.adopts}"
    try:
        bound = adoption_binding(spec, target)
    except OpkitError as exc:
        return exc.what
    if None in bound:
        return "the spec leaves some of its arguments at their defaults"
    if len(target._schema.returns) != len(spec.outputs):
        return f"{spec.adopts} returns {len(target._schema.returns)} value(s), {spec.qualname} {len(spec.outputs)}"
    return tuple(bound.index(p) for p in spec.param_order)


def adopted_aliases(specs: list[OpSpec], ws: Workspace | None = None) -> list:
    """The TorchAlias of each op that a spec adopts from outside libtorch (a third-party op), for the C++
    runners: their schemas library defines it and runs it with the adopted op's kernel. It needs the original
    op's schema, so the module that defines it must be imported: an adopted spec imports it, and with `ws` the
    workspace's spec modules are imported when it is not yet (specs from the build's cache import nothing)."""
    from opkit.codegen.torch import TorchAlias
    from opkit.export.translate import adopted_target
    from opkit.spec.adopts import LIBTORCH_NAMESPACES

    foreign = [s for s in specs if s.adopts and s.adopts.split("::")[0] not in LIBTORCH_NAMESPACES]
    if ws is not None and any(adopted_target(s) is None for s in foreign):
        from opkit.build.specs import import_ops

        import_ops(ws)
    aliases = []
    for spec in foreign:
        target = adopted_target(spec)
        order = _alias_order(spec, target)
        if isinstance(order, str):
            ui.detail(f"the C++ runners will not run {spec.adopts} with {spec.qualname}'s kernel: {order}")
            continue
        sch = target._schema
        ns, name = sch.name.split("::", 1)
        aliases.append(TorchAlias(namespace=ns, schema=str(sch).split("::", 1)[1],
                                  name=name + (f".{sch.overload_name}" if sch.overload_name else ""),
                                  original=spec.adopts, target=spec.torch_qualname, order=order))
    return aliases


def build_torch_library(ws: Workspace, specs: list[OpSpec], variant: str, tools: cmake.Tools, *,
                        sanitize: bool, native_arch: bool, verbose: bool, timings: dict[str, float],
                        cpp_runner: bool = False) -> tuple[Path, str, list[cmake.Diagnostic], bool]:
    """Generate, configure and build the library (with `cpp_runner`, also the schemas library and
    opkit-torch-runner, for TorchScript and AOTInductor). Returns (library, ninja output, diagnostics, ok)."""
    import torch

    from opkit.codegen.torch import LIBRARY_TARGET, RUNNER_TARGET, SCHEMAS_TARGET, render_torch_library

    prefix = torch_cmake_dir()
    t = time.perf_counter()
    fm = FileManager(ws.generated_dir)
    aliases = adopted_aliases(specs, ws) if cpp_runner else []
    for rel, text in sorted(render_torch_library(specs, torch.__version__, aliases).items()):
        fm.write(rel, text)
    fm.remove_stale("torch", (".cc", ".h"))
    timings["generate torch"] = time.perf_counter() - t
    lib = library_path(ws, variant)
    defs = {
        "OPKIT_GENERATED_DIR:PATH": str(ws.generated_dir),
        "OPKIT_WORKSPACE:PATH": str(ws.root),
        "OPKIT_LIBRARY_DIR:PATH": str(lib.parent),
        "OPKIT_SANITIZE:BOOL": "ON" if sanitize else "OFF",
        "OPKIT_NATIVE_ARCH:BOOL": "ON" if native_arch else "OFF",
        "CMAKE_PREFIX_PATH:PATH": str(prefix),
    } | cmake_defs(libraries_of(specs))
    t = time.perf_counter()
    cmake.configure(tools, ws.generated_dir / "torch", ws.variant_dir(variant) / "torch", defs)
    timings["configure torch"] = time.perf_counter() - t
    t = time.perf_counter()
    targets = [LIBRARY_TARGET] + ([SCHEMAS_TARGET, RUNNER_TARGET] if cpp_runner else [])
    with ui.step("building the PyTorch op library" + (" and its C++ runner" if cpp_runner else "")):
        ok, out, diags = cmake.build(tools, ws.variant_dir(variant) / "torch", verbose=verbose, targets=targets)
    timings["compile torch"] = time.perf_counter() - t
    return lib, out, diags, ok
