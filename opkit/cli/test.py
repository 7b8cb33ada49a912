"""opkit test [OP ...]: every native kernel against its reference, over generated edge cases."""

from __future__ import annotations

import argparse
from pathlib import Path

from opkit import jsonio, ui
from opkit.cli._files import output_path, write_output


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ops", nargs="*", metavar="OP", help="ops to test (name, folder or domain::Name; default: all)")
    p.add_argument("--workspace", metavar="DIR", help="the workspace (default: nearest folder with ops/)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated inputs (default 0): same seed, same cases")
    p.add_argument("--case", metavar="ID", help="run only this case of the one named op (printed by a failing case)")
    p.add_argument("--sanitize", action="store_true",
                   help="build and run with AddressSanitizer + UBSan (build/asan/); reports the kernel's file:line")
    p.add_argument("--timeout", type=float, metavar="S", help="time limit per case in seconds (default 60)")
    p.add_argument("--backend", choices=("native", "python"), default="native",
                   help="native: the built kernels (default); python: the references inside ONNX Runtime "
                        "(onnxruntime-extensions), e.g. to check the test setup before the kernel exists; "
                        "the same as --runtime python")
    p.add_argument("--runtime", action="append", metavar="NAME",
                   help="the runtime(s) to run the cases in: onnxruntime (default), openvino, python, or all "
                        "(every installed one with a Python API); repeatable")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 1) when an op passed but left something untested: an optional input never "
                        "absent, a listed attribute value never run, ... (the report's `ok (incomplete: ...)`)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    p.add_argument("--html", metavar="FILE", help="also write the report as one self-contained HTML page to FILE: "
                                                   "the cases per op, failures with their inputs and rerun command")
    p.add_argument("-v", "--verbose", action="store_true", help="show every failing case, with the kernel's output")


def run(args: argparse.Namespace) -> int:
    from opkit.build.workspace import find_workspace
    from opkit.errors import UsageError
    from opkit.runtimes import runtime_names
    from opkit.testing.driver import DEFAULT_TIMEOUT, run_tests

    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be positive", got=str(args.timeout))
    html = output_path(args.html, "--html") if args.html else None
    ws = find_workspace(explicit=args.workspace)
    report = run_tests(ws, args.ops or None, seed=args.seed, sanitize=args.sanitize,
                       timeout=args.timeout or DEFAULT_TIMEOUT, case=args.case,
                       runtimes=runtime_names(args.runtime, args.backend), strict=args.strict)
    print(report.render(verbose=args.verbose or args.case is not None))
    if args.json:
        Path(args.json).write_text(jsonio.dumps(report.to_dict()))
        ui.info(f"wrote {args.json}")
    if html:
        write_output(html, report.html())
    return 0 if report.ok else 1
