"""opkit bench OP | model.py: the native kernel in ONNX Runtime vs the same maths as standard ONNX ops
in ONNX Runtime vs torch eager; medians, spread and ratios."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from opkit import jsonio, ui
from opkit.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="an op of the workspace (name, domain::name or folder), or a model.py")
    p.add_argument("--workspace", metavar="DIR", help="the workspace (default: nearest folder with ops/)")
    p.add_argument("--sizes", default=None, metavar="LIST",
                   help="input sizes in elements, e.g. 1K,64K,4M (op only; default: the spec's bench(shapes=...) "
                        "cases, else 1K,64K,4M)")
    p.add_argument("--row", type=int, default=4096, metavar="N",
                   help="free inputs are (size / N, N) from N elements up, (1, size) below (default %(default)s)")
    p.add_argument("--dtype", action="append", metavar="DTYPE",
                   help="only the kernels of this dtype (repeatable; default: every dtype of the op)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads for onnxruntime (intra_op_num_threads) and torch (default: the CPU count)")
    p.add_argument("--budget", type=float, default=2.0, metavar="S",
                   help="time limit per case once the minimum of 5 rounds is done (default %(default)s s)")
    p.add_argument("--spread", type=float, default=0.05, metavar="F",
                   help="stop a case early when every interquartile spread is below F (default %(default)s)")
    p.add_argument("--no-eager", action="store_true", help="skip the torch eager column")
    p.add_argument("--against", metavar="MODEL.onnx",
                   help="also time this ONNX model (standard ops, the op's inputs in order) as column (e)")
    p.add_argument("--spin", action="store_true",
                   help="let onnxruntime's idle threads spin (its default; noisy with several sessions in one process)")
    p.add_argument("--runtime", action="append", metavar="NAME",
                   help="where (a), (b) and (d) run: onnxruntime (default), openvino, or all (every installed one "
                        "with a Python API); repeatable: one table per runtime")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")


def run(args: argparse.Namespace) -> int:
    threads = args.threads or os.cpu_count() or 1
    if threads < 1:
        raise UsageError(f"--threads {args.threads} must be at least 1")
    if args.row < 1:
        raise UsageError(f"--row {args.row} must be at least 1")
    if args.budget <= 0:
        raise UsageError(f"--budget {args.budget} must be positive")
    from opkit.runtimes import choose

    reports = []
    for rt in choose(args.runtime or ["onnxruntime"], need="bench"):
        reports.append(_bench(args, threads, rt.name))
        print(("\n" if len(reports) > 1 else "") + reports[-1].render())
    if args.json:
        data = reports[0].to_dict() if len(reports) == 1 else {"runtimes": [r.to_dict() for r in reports]}
        Path(args.json).write_text(jsonio.dumps(data))
        ui.info(f"wrote {args.json}")
    return 0


def _bench(args: argparse.Namespace, threads: int, runtime: str):  # noqa: ANN202 - a BenchReport
    from opkit.bench.driver import bench_model, bench_op, parse_sizes
    from opkit.build.workspace import find_workspace

    target = args.target
    if target.endswith(".py"):
        model = Path(target)
        if not model.is_file():
            raise UsageError(f"no such model file: {model}", fix="pass a model.py defining `model` and "
                             "`example_inputs`, or an op name")
        if runtime == "torch":
            raise UsageError("opkit bench model.py --runtime torch is not supported: the torch bench times one op",
                             expected="opkit bench OP --runtime torch",
                             fix="bench the op (`opkit bench ScaledGelu --runtime torch`), or time the model with "
                                 "--runtime onnxruntime")
        ws = find_workspace(start=model.resolve().parent, explicit=args.workspace)
        return bench_model(ws, model, threads=threads, budget=args.budget, spread=args.spread,
                           eager=not args.no_eager, spin=args.spin, runtime=runtime)
    sizes = parse_sizes(args.sizes) if args.sizes is not None else None
    if args.against and not Path(args.against).is_file():
        raise UsageError(f"no such model: {args.against}", fix="pass an .onnx file for --against")
    ws = find_workspace(explicit=args.workspace)
    if runtime == "torch":  # inside PyTorch: native vs reference vs torch's own ops (opkit/bench/torch.py)
        from opkit.bench.torch import bench_op_torch

        return bench_op_torch(ws, target, sizes=sizes, dtypes=args.dtype, threads=threads, budget=args.budget,
                              spread=args.spread, row=args.row)
    return bench_op(ws, target, sizes=sizes, dtypes=args.dtype, threads=threads, budget=args.budget,
                    spread=args.spread, eager=not args.no_eager,
                    against=Path(args.against) if args.against else None, spin=args.spin,
                    row=args.row, runtime=runtime)
