"""The build pipeline: load specs -> check -> render -> write -> configure -> ninja."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from opkit import ui
from opkit.build import cmake
from opkit.build.headers import ensure_headers
from opkit.build.libraries import cmake_defs as library_defs
from opkit.build.libraries import libraries_of
from opkit.build.lock import build_lock, library_lock
from opkit.build.specs import cache_payload, load_specs
from opkit.build.workspace import Workspace
from opkit.codegen.executorch import render_executorch
from opkit.codegen.executorch import unsupported as executorch_unsupported
from opkit.codegen.render import kernel_signature, render_kernel_file, render_library
from opkit.codegen.writer import FileManager
from opkit.errors import BuildError, WorkspaceError
from opkit.spec.model import OpSpec


@dataclass
class BuildResult:
    library: Path
    specs: list[OpSpec]
    generated_changed: list[Path]
    specs_from_cache: bool
    compiled: bool
    seconds: float
    variant: str
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Path] = field(default_factory=dict)  # other runtimes' libraries: kind -> file

    def library_for(self, kind: str) -> Path:
        """The library a runtime loads: "ort" (libopkit_ops.so) or another runtime's (e.g. "openvino")."""
        return self.library if kind == "ort" else self.extra[kind]


def variant_name(sanitize: bool) -> str:
    return "asan" if sanitize else "release"


def generate(ws: Workspace, specs: list[OpSpec], hashes: dict[str, str], *, dry_run: bool = False) -> FileManager:
    files = render_library(specs)
    files |= render_executorch([s for s in specs if not executorch_unsupported(s)])
    protected = tuple(ws.ops_dir / s.folder for s in specs)
    fm = FileManager(ws.generated_dir, dry_run=dry_run, protected=protected)
    for rel, text in sorted(files.items()):
        fm.write(rel, text)
    for s in specs:  # a fresh skeleton beside the user's kernel, for when the spec changed
        fm.write(f"skeletons/{s.folder}.cc", render_kernel_file(s))
    fm.write("specs.json", cache_payload(specs, hashes))
    fm.remove_stale("src", (".cc",))
    fm.remove_stale("include", (".h",))
    fm.remove_stale("openvino", (".cc",))
    fm.remove_stale("skeletons", (".cc",))
    fm.remove_stale("executorch/src", (".cc",))
    return fm


def build(ws: Workspace, *, sanitize: bool = False, native_arch: bool = False, verbose: bool = False,
          force_import: bool = False, runtimes: list[str] | tuple[str, ...] | None = ("ort",),
          hold: contextlib.ExitStack | None = None) -> BuildResult:
    """Generate the glue and build the libraries of `runtimes` (library kinds: "ort" = libopkit_ops.so,
    "openvino" = the OpenVINO extension, "torch" = the PyTorch op library, "torch-cpp" = that plus its schemas
    library and C++ runner); None: every library whose runtime is installed (`opkit build`), except the torch
    ones, which build only when asked (a CMake project of their own: opkit.build.torchlib).
    With `hold` (opkit test / verify), the library is held for the caller (a shared library_lock entered on
    `hold` before the build lock is released): a later build that would rewrite it waits until the caller's
    ExitStack closes. Do not call it again while holding."""
    from opkit.build import runtimes as rt_libs

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    variant = variant_name(sanitize)
    if not ws.op_folders():
        raise WorkspaceError(f"no ops in {ws.ops_dir}", expected="ops/<op>/spec.py and ops/<op>/<op>.cc",
                             fix="run `opkit new MyOp`")
    with build_lock(ws.build_dir):
        t = time.perf_counter()
        specs, hashes, from_cache = load_specs(ws, force_import=force_import)
        timings["specs"] = time.perf_counter() - t
        if not (ws.root / "CMakeLists.txt").is_file():
            raise WorkspaceError("the workspace has no CMakeLists.txt", where=str(ws.root),
                                 fix="run `opkit new` once in this workspace, or restore CMakeLists.txt from git")
        t = time.perf_counter()
        fm = generate(ws, specs, hashes)
        timings["generate"] = time.perf_counter() - t
        if fm.written:
            ui.info(f"generated {len(fm.written)} file(s) in {ws.rel(ws.generated_dir)}")
        missing = [s for s in specs if not ws.kernel_file(s.folder).is_file()]
        if missing:
            s = missing[0]
            raise BuildError(f"the kernel file of {s.name} is missing", where=ws.rel(ws.kernel_file(s.folder)),
                             expected=kernel_signature(s),
                             fix=f"copy the skeleton from {ws.rel(ws.generated_dir / 'skeletons' / (s.folder + '.cc'))}"
                                 " (written now) and fill in the maths")
        kinds = rt_libs.kinds(runtimes)
        if runtimes is not None:  # asked for: an op the runtime cannot carry is an error
            rt_libs.check_supported(kinds, specs)
        else:  # every installed runtime: such an op is left out of that runtime's library, with a note
            for line in rt_libs.left_out(kinds, specs):
                ui.info(line)
        tools = cmake.find_tools()
        headers = ensure_headers()
        libraries = libraries_of(specs)
        defs = {
            "OPKIT_GENERATED_DIR:PATH": str(ws.generated_dir),
            "OPKIT_ORT_INCLUDE_DIR:PATH": str(headers.include_dir),
            "OPKIT_WORKSPACE:PATH": str(ws.root),
            "OPKIT_LIBRARY_DIR:PATH": str(ws.library_path(variant).parent),
            "OPKIT_SANITIZE:BOOL": "ON" if sanitize else "OFF",
            "OPKIT_NATIVE_ARCH:BOOL": "ON" if native_arch else "OFF",
        } | rt_libs.cmake_defs() | library_defs(libraries)
        t = time.perf_counter()
        cmake.configure(tools, ws.root, ws.variant_dir(variant), defs)
        timings["configure"] = time.perf_counter() - t
        t = time.perf_counter()
        with contextlib.ExitStack() as rewriting:
            # The ONNX Runtime library is also built for the torch kinds: it compiles fast and reports a kernel's
            # compile errors before the torch glue (about 4.5 s per op, after a precompiled header) does.
            targets = rt_libs.targets(kinds) or rt_libs.targets(["ort"])
            if not cmake.up_to_date(tools, ws.variant_dir(variant), targets):  # wait for runs using the library
                rewriting.enter_context(library_lock(ws.build_dir, shared=False))
            ok, out, diags = cmake.build(tools, ws.variant_dir(variant), verbose=verbose, targets=targets)
        timings["compile"] = time.perf_counter() - t
        if not ok:
            raise _compile_error(ws, specs, out, diags, _last_built(ws, variant))
        compiled = "no work to do" not in out
        extra = {k: rt_libs.library_path(ws, variant, k) for k in kinds if k != "ort"}
        if "torch-cpp" in extra:  # the same op library as "torch"
            extra["torch"] = extra["torch-cpp"]
        torch_kinds = [k for k in kinds if k in rt_libs.TORCH_KINDS]
        if torch_kinds:
            from opkit.build.torchlib import build_torch_library

            lib, out, diags, ok = build_torch_library(
                ws, specs, variant, tools, sanitize=sanitize, native_arch=native_arch, verbose=verbose,
                timings=timings, cpp_runner="torch-cpp" in torch_kinds)
            if not ok:
                raise _compile_error(ws, specs, out, diags, _last_built(ws, variant), what="the PyTorch op library")
            compiled = compiled or "no work to do" not in out
        _record_built(ws, variant, specs)
        if hold is not None:
            hold.enter_context(library_lock(ws.build_dir, shared=True))
    return BuildResult(ws.library_path(variant), specs, fm.written, from_cache, compiled,
                       time.perf_counter() - t0, variant, timings, extra)


def _built_record(ws: Workspace, variant: str) -> Path:
    return ws.variant_dir(variant) / "opkit-built-signatures.json"


def _last_built(ws: Workspace, variant: str) -> dict[str, str]:
    """Each op's signature at the last build that compiled (to say what changed in a spec)."""
    import json

    try:
        return dict(json.loads(_built_record(ws, variant).read_text()))
    except (OSError, ValueError):
        return {}


def _record_built(ws: Workspace, variant: str, specs: list[OpSpec]) -> None:
    import json

    from opkit.codegen.writer import write_atomic

    text = json.dumps({s.folder: s.signature for s in specs}, indent=1, sort_keys=True)
    path = _built_record(ws, variant)
    if not path.is_file() or path.read_text() != text:
        write_atomic(path, text)


def _compile_error(ws: Workspace, specs: list[OpSpec], out: str, diags: list[cmake.Diagnostic],
                   last_built: dict[str, str] | None = None, what: str = "the op library") -> BuildError:
    if not diags:
        return BuildError(f"building {what} failed", details=cmake._tail(out, 40),
                          fix="see the output above; `opkit build -v` shows every command")
    kernels = {str(ws.kernel_file(s.folder).resolve()): s for s in specs}
    first = next((d for d in diags if str(Path(d.file).resolve()) in kernels), diags[0])
    spec = kernels.get(str(Path(first.file).resolve()))
    lines = [f"{ws.rel(d.file)}:{d.line}:{d.col}: {d.message}" for d in diags[:8]]
    details = "compiler errors:\n" + "\n".join("  " + ln for ln in lines)
    fix = "fix the kernel and run `opkit build` again (`opkit build -v` shows the full compiler output)"
    if spec is not None:
        before = (last_built or {}).get(spec.folder)
        if before and before != spec.signature:
            details += (f"\nthe spec of {spec.name} changed since the last build that compiled:\n"
                        f"  was: {before}\n  now: {spec.signature}")
        details += (f"\n{spec.name}'s kernel must define (from its spec):\n  " +
                    kernel_signature(spec).replace("\n", "\n  "))
        fix = (f"if the spec changed, update the kernel's signature; a fresh skeleton is in "
               f"{ws.rel(ws.generated_dir / 'skeletons' / (spec.folder + '.cc'))}")
    return BuildError(f"compiling {what} failed in {ws.rel(first.file)}",
                      where=f"{ws.rel(first.file)}:{first.line}:{first.col}", details=details, fix=fix)
