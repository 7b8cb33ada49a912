"""opkit bench OP --runtime torch: the native kernel inside eager PyTorch (libopkit_torch.so) vs the
op's reference in eager PyTorch vs torch's own ops for the same maths, where the spec gives them
(``@op.torch_baseline``). Interleaved medians in a child process (opkit.bench.measure), as the
ONNX Runtime bench does. Usage of the child: python -m opkit.bench.torch JOB.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from opkit import ui
from opkit.bench.driver import (DEFAULT_SIZES, BenchReport, Row, _build_for, _finish, _find_op, _runtime,
                                _save_consts, _save_inputs, _versions, child_env, constants_of, layout_of, make_args,
                                parse_sizes, size_label, work_of)
from opkit.build.workspace import Workspace
from opkit.errors import UsageError

LEGEND = ("(a) native kernel in eager PyTorch (the op call, through torch's dispatcher)  "
          "(c) the op's reference in eager PyTorch  (e) torch's own ops for the same maths (@op.baseline)")


def bench_op_torch(ws: Workspace, name: str, *, sizes: list[int] | None, dtypes: list[str] | None = None, threads: int,
                   budget: float = 2.0, spread: float = 0.05, timeout: float = 600.0, row: int = 4096,
                   runtime: str = "torch") -> BenchReport:
    rt = _runtime(runtime)
    libraries = _build_for(ws, rt)
    with ui.step("importing torch and the specs"):
        from opkit.build.specs import add_to_path, import_ops

        add_to_path(ws)
        ops = import_ops(ws)
    op = _find_op(ws, ops, name)
    combos = op.spec.kernel_combos or [{}]
    if dtypes:
        combos = [c for c in combos if any(d in c.values() for d in dtypes)]
        if not combos:
            raise UsageError(f"{op.spec.name} has no kernel for dtype {', '.join(dtypes)}")
    art = ws.build_dir / "bench" / f"{op.spec.folder}.torch"
    report = BenchReport(op.spec.qualname, "op", threads, env=_versions(rt), runtime=rt.name)
    report.env["legend"] = LEGEND
    report.env["titles"] = {"native": "native (a)", "eager": "reference (c)", "against": "torch ops (e)"}
    if getattr(op, "torch_baseline", None) is None:
        report.notes.append(f"no torch baseline for {op.spec.name}: add one in its spec with @{op.spec.py_name}"
                            ".baseline (column e)")
    rows, cases = [], []
    use_shapes = sizes is None and bool(getattr(op, "bench_shapes", None))  # the spec's bench(shapes=...)
    items = list(enumerate(op.bench_shapes)) if use_shapes else [(n, None) for n in sizes or parse_sizes(DEFAULT_SIZES)]
    for ci, combo in enumerate(combos):
        dlabel = ",".join(combo.values()) or "-"
        for n, fixed in items:
            args = make_args(op, combo, n if fixed is None else 1, row=row, fixed=fixed)
            layout, flat, attrs = layout_of(op, args)
            consts = constants_of(layout, args)  # passed as the same tensors every call, as a module's weights
            inputs = art / f"c{ci}_{n}" / "inputs"
            _save_inputs(flat, inputs)
            _save_consts(consts, inputs)
            label = size_label(n) if fixed is None else f"case {n}"
            shapes = [f"{k}={'x'.join(map(str, v.shape))}(const)" for k, v in consts.items()]
            r = Row(f"{dlabel} {label}", n if fixed is None else (flat[0].numel() if flat else 0), dlabel,
                    ", ".join(["x".join(map(str, t.shape)) for t in flat] + shapes))
            r.work = work_of(op, args)
            r.size_text = "" if fixed is None else label
            rows.append(r)
            cases.append({"label": r.label, "inputs": str(inputs), "layout": layout, "attrs": attrs,
                          "dtypes": [str(t.dtype).replace("torch.", "") for t in flat]})
    job = {"threads": threads, "libraries": libraries, "budget": budget, "spread": spread, "cases": cases,
           "workspace": str(ws.root), "folder": op.spec.folder}
    from opkit.runtimes.child import run_worker

    with ui.step(f"measuring {len(cases)} case(s) in a child process ({threads} thread(s), up to {budget:g} s each)"):
        child = run_worker(job, art / "job", timeout=timeout, env=child_env(), module="opkit.bench.torch")
    return _finish(report, rows, child, f"benchmarking {op.spec.qualname} in PyTorch", [op.spec.qualname])


def main(job_path: str) -> int:  # the child
    import torch

    from opkit.bench.measure import measure
    from opkit.bench.worker import _load_inputs, _to_torch
    from opkit.build.specs import import_ops
    from opkit.torchop.native import load_library

    job = json.loads(Path(job_path).read_text())
    out_path = Path(job_path).with_name("result.json")
    torch.set_num_threads(int(job["threads"]))
    result: dict[str, Any] = {"cases": [], "error": None, "load_before": os.getloadavg()[0]}
    sys.path.insert(0, job["workspace"])
    op = import_ops(Workspace(Path(job["workspace"])))[job["folder"]]
    for lib in job["libraries"]:
        load_library(lib)
    for case in job["cases"]:
        tensors = iter([_to_torch(torch, a) for a in _load_inputs(case["inputs"], len(case["dtypes"]),
                                                                   case["dtypes"])])
        args: dict[str, Any] = {}
        for name, kind, count in case["layout"]:
            if kind == "const":  # loaded once: the same tensor in every call, like a module's weight
                args[name] = _to_torch(torch, _load_inputs(str(Path(case["inputs"]) / f"const_{name}"), 1)[0])
                continue
            args[name] = next(tensors) if kind == "tensor" else [next(tensors) for _ in range(count)] \
                if kind == "list" else None
        args.update(case["attrs"])
        calls = {"native": op, "eager": op.reference}
        if getattr(op, "torch_baseline", None) is not None:
            calls["against"] = op.torch_baseline
        fns, row = {}, {"label": case["label"], "stats": {}, "errors": {}}
        consts = {name for name, kind, _ in case["layout"] if kind == "const"}
        for key, f in calls.items():
            # positional, in spec order (how a model calls it); each column its own copy of the constant
            # inputs, as separate models have their own weights: none reads a weight that another column
            # has just brought into the caches
            ordered = [args[n].clone() if n in consts and args[n] is not None else args[n]
                       for n in op.spec.param_order]

            def call(f: Any = f, ordered: list = ordered) -> Any:
                with torch.no_grad():
                    return f(*ordered)
            try:
                call()
                fns[key] = call
            except Exception as exc:
                row["errors"][key] = f"{type(exc).__name__}: {str(exc).strip()[:500]}"
        t0 = time.perf_counter()
        stats = measure(fns, budget_s=float(job["budget"]), target_spread=float(job["spread"]), min_rounds=5)
        row["seconds"] = time.perf_counter() - t0
        row["stats"] = {k: v.to_dict() for k, v in stats.items()}
        result["cases"].append(row)
        result["load_after"] = os.getloadavg()[0]
        out_path.write_text(json.dumps(result, indent=1))
    out_path.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
