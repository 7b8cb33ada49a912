"""opkit build: generate the glue and build the op library."""

from __future__ import annotations

import argparse

from opkit import ui


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", metavar="DIR", help="the workspace (default: nearest folder with ops/)")
    p.add_argument("--sanitize", action="store_true", help="build with AddressSanitizer + UBSan (build/asan/)")
    p.add_argument("--native", action="store_true", help="tune for this CPU (-march=native); not portable")
    p.add_argument("--torch", action="store_true",
                   help="also build the PyTorch op library (build/<variant>/lib/libopkit_torch.so), its schemas library "
                        "for C++ "
                        "programs and opkit-torch-runner (the torch runtimes build what they need themselves)")
    p.add_argument("-v", "--verbose", action="store_true", help="show every compiler command and message")
    p.add_argument("--runtime", action="append", metavar="NAME",
                   help="build the library of this runtime only: onnxruntime (libopkit_ops.so), openvino "
                        "(libopkit_openvino.so) or executorch (libopkit_executorch.so); repeatable (default: "
                        "every installed runtime's, except ExecuTorch's, which is built only when named)")


def run(args: argparse.Namespace) -> int:
    from opkit.build.driver import build
    from opkit.build.workspace import find_workspace

    ws = find_workspace(explicit=args.workspace)
    ui.info(f"building the op library of {ws.root}")
    kinds = None
    if args.runtime:
        from opkit.runtimes import get

        kinds = list(dict.fromkeys(get(r).library for r in args.runtime if get(r).library))
    if args.torch:  # the torch libraries build only when asked (opkit/build/torchlib.py)
        from opkit.build import runtimes as rt_libs

        kinds = rt_libs.kinds(kinds) + ["torch-cpp"]
    result = build(ws, sanitize=args.sanitize, native_arch=args.native, verbose=args.verbose, runtimes=kinds)
    state = "built" if result.compiled else "up to date"
    ops = ", ".join(s.qualname for s in result.specs)
    ui.info(f"{state} in {result.seconds:.2f} s: {len(result.specs)} op(s): {ops}")
    for kind, path in result.extra.items():
        if kind != "torch-cpp":  # the same file as "torch"
            ui.info(f"{kind} extension: {path}")
    print(result.library)
    if args.torch:
        print(result.library_for("torch"))
    return 0
