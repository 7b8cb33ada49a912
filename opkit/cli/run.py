"""opkit run model.onnx --input x=x.npy --output-dir out/: run a model through a runtime's C++ runner
(opkit-runner for ONNX Runtime, the default; opkit-ov-runner for OpenVINO)."""

from __future__ import annotations

import argparse
from pathlib import Path

from opkit import ui
from opkit.errors import NativeRunError, UsageError, WorkspaceError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an .onnx model (e.g. written by `opkit export`)")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy",
                   help="a model input by name, from a .npy file (C order, little endian); one per model input")
    p.add_argument("--output-dir", "-o", default="out", metavar="DIR",
                   help="write each output as DIR/<output name>.npy (default: out)")
    p.add_argument("--library", action="append", default=[], metavar="LIB.so",
                   help="op library to register (default: the workspace's, built if needed); repeatable")
    p.add_argument("--no-library", action="store_true", help="register no op library (a decomposed model)")
    p.add_argument("--workspace", metavar="DIR", help="the workspace whose op library to use (default: the "
                                                       "nearest folder with ops/ above the current one)")
    p.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime intra-op threads")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="run N times and report the best time")
    p.add_argument("--runtime", default="onnxruntime", metavar="NAME",
                   help="whose C++ runner: onnxruntime (opkit-runner, default), openvino (opkit-ov-runner; "
                        "--library then names an OpenVINO extension) or executorch (opkit-et-runner: a .pte, "
                        "its inputs in the order given, outputs written as <k>.npy)")


def _known() -> dict[str, str]:
    from opkit.runtimes import KNOWN

    return KNOWN


def _inputs(items: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or not name or not file:
            raise UsageError(f"--input needs NAME=FILE.npy, got {item!r}", expected="e.g. --input x=x.npy",
                             fix="name each input as the model does (`opkit-runner --list` or Netron shows them)")
        if name in out:
            raise UsageError(f"input {name!r} is given twice")
        path = Path(file)
        if not path.is_file():
            raise UsageError(f"no such input file for {name!r}: {file}", fix="save it with numpy.save(path, array)")
        out[name] = path.resolve()
    return out


def run(args: argparse.Namespace) -> int:
    from opkit.build.workspace import find_workspace
    from opkit.runtimes import get

    rt = get(args.runtime if args.runtime.endswith("-cpp") else f"{args.runtime}-cpp") \
        if f"{args.runtime}-cpp" in _known() or args.runtime.endswith("-cpp") else get(args.runtime)
    if not rt.cpp:
        raise UsageError(f"the runtime {rt.name} has no C++ runner", expected="onnxruntime, openvino or executorch",
                         fix="`opkit verify --runtime NAME` runs a model in any runtime")
    rt.require()
    model = Path(args.model)
    if not model.is_file():
        raise UsageError(f"no such model file: {model}", fix="export one with `opkit export model.py -o model.onnx`")
    if args.threads is not None and args.threads < 1 or args.repeat < 1:
        raise UsageError("--threads and --repeat need a positive integer")
    inputs = _inputs(args.input)
    libraries = [Path(p) for p in args.library]
    for lib in libraries:
        if not lib.is_file():
            raise UsageError(f"no such library: {lib}", fix="`opkit build` prints the path of the workspace's library")
    ws = None
    try:
        ws = find_workspace(explicit=args.workspace)
    except WorkspaceError:
        if args.workspace:
            raise
    if not libraries and not args.no_library:
        if ws is None:
            ui.info("no workspace here and no --library: running without an op library")
        else:
            from opkit.build.driver import build

            with ui.step(f"building the op library of {ws.root}" + (f" ({rt.library})" if rt.library != "ort" else "")):
                libraries = [build(ws, runtimes=[rt.library]).library_for(rt.library)]
    out_dir = Path(args.output_dir)
    res = rt.run_files(ws.build_dir if ws else None, model.resolve(), libraries=[p.resolve() for p in libraries],
                       inputs=inputs, output_dir=out_dir, threads=args.threads, repeat=args.repeat)
    if res.crashed and res.returncode != 0:
        raise NativeRunError(f"{rt.label} died running {model} ({res.crashed})", details=res.message,
                             fix="a kernel crashed: `opkit verify --sanitize` finds out-of-bounds accesses")
    if res.returncode == 2:
        raise UsageError(f"{rt.label} refused the inputs of {model}", details=res.message,
                         fix="pass one --input NAME=FILE.npy per model input, with the dtype and shape it expects")
    if res.returncode != 0:
        raise NativeRunError(f"{rt.label} failed to run {model}", details=res.message,
                             fix="a model with custom nodes needs its op library (--library or a workspace)")
    print(res.stdout.rstrip())
    return 0
