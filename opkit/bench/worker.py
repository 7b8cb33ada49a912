"""Measures in a child process of opkit: sessions of one runtime (with its op library) and torch eager.

Usage: python -m opkit.bench.worker JOB.json; writes result.json beside the job after every case,
so a crash leaves what was measured. A kernel that crashes takes down only this process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from opkit.bench.measure import measure


def _session(rt: Any, model: str, threads: int, libraries: list[str], spin: bool = True) -> Any:
    return rt.open(model, libraries, {"threads": threads, "spin": spin, "sequential": True})


def _load_inputs(folder: str, count: int, dtypes: list[str] | None = None) -> list:
    import numpy as np

    arrays = [np.load(Path(folder) / f"{k}.npy", allow_pickle=False) for k in range(count)]
    for k, dt in enumerate(dtypes or []):
        if dt == "bfloat16" and arrays[k].dtype.kind == "V":  # .npy keeps bfloat16 as raw 2-byte records
            import ml_dtypes

            arrays[k] = arrays[k].view(ml_dtypes.bfloat16)
    return arrays


def _to_torch(torch: Any, a: Any) -> Any:
    import numpy as np

    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


class _Eager:
    """The torch side: an op's reference, or a whole model, called on the case's inputs."""

    def __init__(self, spec: dict, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.kind = spec["kind"]
        sys.path.insert(0, spec["workspace"])
        if self.kind == "op":
            from opkit.build.specs import import_ops
            from opkit.build.workspace import Workspace

            self.op = import_ops(Workspace(Path(spec["workspace"])))[spec["folder"]]
        else:
            from opkit.verify.modelfile import load_model_file

            self.model = load_model_file(Path(spec["model"]), Path(spec["workspace"])).model.eval()

    def callable(self, case: dict, arrays: list) -> Any:
        torch = self.torch
        tensors = [_to_torch(torch, a) for a in arrays]
        if self.kind == "model":
            model = self.model

            def run_model() -> Any:
                with torch.no_grad():
                    return model(*tensors)
            return run_model
        args: dict[str, Any] = {}
        it = iter(tensors)
        for name, kind, count in case["layout"]:
            if kind == "const":  # the constant inputs, loaded once (the models hold them as initializers)
                args[name] = _to_torch(torch, _load_inputs(str(Path(case["inputs"]) / f"const_{name}"), 1)[0])
            elif kind == "tensor":
                args[name] = next(it)
            elif kind == "list":
                args[name] = [next(it) for _ in range(count)]
            else:
                args[name] = None
        args.update(case["attrs"])
        ref = self.op.reference

        def run_ref() -> Any:
            with torch.no_grad():
                return ref(**args)
        return run_ref


def main(job_path: str) -> int:
    from opkit.runtimes import get

    job = json.loads(Path(job_path).read_text())
    rt = get(job.get("runtime", "onnxruntime"))
    threads = int(job["threads"])
    out_path = Path(job_path).with_name("result.json")
    result: dict[str, Any] = {"cases": [], "runtime": rt.name, "version": rt.version(), "threads": threads,
                              "error": None,
                              "load_before": os.getloadavg()[0]}

    def save() -> None:
        out_path.write_text(json.dumps(result, indent=1))

    eager = None
    if job.get("eager"):
        try:
            eager = _Eager(job["eager"], threads)
            result["torch_threads"] = eager.torch.get_num_threads()
        except Exception as exc:  # the reference cannot run here: measure the rest
            result["eager_error"] = f"{type(exc).__name__}: {exc}"
    sessions: dict[str, Any] = {}
    for case in job["cases"]:
        arrays = _load_inputs(case["inputs"], case["count"], case.get("dtypes"))
        row: dict[str, Any] = {"label": case["label"], "stats": {}, "errors": {}}
        fns = {}
        for name, model in case["variants"].items():
            try:
                key = f"{name}:{model}"
                if key not in sessions:
                    sessions[key] = _session(rt, model, threads, job["libraries"] if name != "builtin" else [],
                                             spin=bool(job.get("spin", True)))
                sess = sessions[key]
                fn = sess.bind(arrays)
                fn()  # fails here rather than inside the timing loop
                fns[name] = fn
            except Exception as exc:
                row["errors"][name] = f"{type(exc).__name__}: {str(exc).strip()[:500]}"
        if eager is not None and case.get("eager", True):
            try:
                fn = eager.callable(case, arrays)
                fn()
                fns["eager"] = fn
            except Exception as exc:
                row["errors"]["eager"] = f"{type(exc).__name__}: {str(exc).strip()[:500]}"
        t0 = time.perf_counter()
        stats = measure(fns, budget_s=float(job.get("budget", 2.0)), target_spread=float(job.get("spread", 0.05)),
                        min_rounds=int(job.get("min_rounds", 5)))
        row["seconds"] = time.perf_counter() - t0
        row["stats"] = {k: v.to_dict() for k, v in stats.items()}
        result["cases"].append(row)
        save()
    result["load_after"] = os.getloadavg()[0]
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
