"""opkit verify model.py: export the whole model, run it in each chosen runtime with the library, compare."""

from __future__ import annotations

import argparse
from pathlib import Path

from opkit import jsonio, ui
from opkit.cli._files import output_path, write_output
from opkit.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a Python file defining `model`, `example_inputs` and optionally `dynamic_shapes`")
    p.add_argument("--workspace", metavar="DIR", help="the workspace (default: nearest folder with ops/ above the model)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    p.add_argument("--html", metavar="FILE", help="also write the report as one self-contained HTML page to FILE "
                                                   "(it is always in the artifacts folder as report.html)")
    p.add_argument("--sanitize", action="store_true", help="use the AddressSanitizer/UBSan build of the library")
    p.add_argument("--timeout", type=float, metavar="S", help="limit for the ONNX Runtime run (default 300 s)")
    p.add_argument("--opset", type=int, help="the ONNX opset to export to (default: the exporter's)")
    p.add_argument("--fresh", action="store_true",
                   help="export and run eagerly again even if only kernels changed since the last verify")
    p.add_argument("--backend", choices=("native", "python"), default="native",
                   help="native: the built op library (default); python: each op's reference inside ONNX Runtime "
                        "via onnxruntime-extensions, no library built (kernels may be unwritten); "
                        "the same as --runtime python")
    p.add_argument("--exporter", choices=("dynamo", "legacy"), default="dynamo",
                   help="dynamo: torch.export-based (default); legacy: the TorchScript exporter (dynamo=False)")
    p.add_argument("--no-native", action="store_true",
                   help="skip the C++ runners (opkit-runner and the other runtimes' C++ runners: no Python in the "
                        "process)")
    from opkit.runtimes import add_runtime_argument

    add_runtime_argument(p)


def run(args: argparse.Namespace) -> int:
    from opkit.build.workspace import find_workspace

    model = Path(args.model)
    if not model.is_file():
        raise UsageError(f"no such model file: {model}", fix="pass the path of a Python file defining `model` and "
                         "`example_inputs`")
    html = output_path(args.html, "--html") if args.html else None
    ws = find_workspace(start=model.resolve().parent, explicit=args.workspace)
    from opkit.verify.driver import verify

    from opkit.runtimes import runtime_names

    report = verify(model, ws, sanitize=args.sanitize, timeout=args.timeout, opset=args.opset,
                    native=not args.no_native, fresh=args.fresh, exporter=args.exporter,
                    runtimes=runtime_names(args.runtime, args.backend))
    print(report.render())
    if args.json:
        Path(args.json).write_text(jsonio.dumps(report.to_dict()))
        ui.info(f"wrote {args.json}")
    if html:  # the page verify wrote into the artifacts folder
        write_output(html, (Path(report.artifacts) / "report.html").read_text(encoding="utf-8"))
    return 0 if report.ok else 1
