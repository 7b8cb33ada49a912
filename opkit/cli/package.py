"""opkit package: a wheel of the workspace's ops (library, get_library_path(), specs, Markdown docs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from opkit import ui


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", metavar="DIR", help="the workspace (default: nearest folder with ops/)")
    p.add_argument("--name", help="the package name (default: <workspace folder>_ops)")
    p.add_argument("--version", default="0.1.0", help="the package version (default: 0.1.0)")
    p.add_argument("--torch", action="store_true",
                   help="also ship the PyTorch op library (native kernels in eager PyTorch when an op is taken from "
                        "the package); it ties the wheel's torch extra to this torch version")
    p.add_argument("--runtime", action="append", metavar="NAME",
                   help="also ship the library this runtime loads (executorch: libopkit_executorch.so, "
                        "get_executorch_library_path()); repeatable (default: every installed runtime's but "
                        "ExecuTorch's)")
    p.add_argument("-o", "--out-dir", default="dist", metavar="DIR", help="where to write the wheel (default: dist)")


def run(args: argparse.Namespace) -> int:
    from opkit.build import runtimes as rt_libs
    from opkit.build.driver import build
    from opkit.build.workspace import find_workspace
    from opkit.native.package import build_wheel

    ws = find_workspace(explicit=args.workspace)
    kinds = None  # every installed runtime's library (the OpenVINO extension too)
    if getattr(args, "runtime", None):  # ExecuTorch's kernels only when named (they take long to compile)
        from opkit.runtimes import get

        kinds = list(dict.fromkeys(rt_libs.kinds(None) + [get(n).library for n in args.runtime if get(n).library]))
    with ui.step(f"building the op library of {ws.root}"):
        if args.torch:
            kinds = rt_libs.kinds(kinds) + ["torch"]
        built = build(ws, runtimes=kinds)
    with ui.step("writing the wheel"):
        wheel = build_wheel(ws, built.library, built.specs, Path(args.out_dir), name=args.name, version=args.version,
                            openvino_extension=built.extra.get("openvino"), torch_library=built.extra.get("torch"),
                            executorch_library=built.extra.get("executorch"))
    ui.detail(f"{len(built.specs)} op(s): {', '.join(s.qualname for s in built.specs)}; {len(wheel.files)} files")
    ui.info(f"install it with `pip install {wheel.path}`; then `import {wheel.package}; "
            f"{wheel.package}.get_library_path()`" +
            (f" (OpenVINO: {wheel.package}.get_openvino_extension_path())" if "openvino" in built.extra else ""))
    print(wheel.path)
    return 0
