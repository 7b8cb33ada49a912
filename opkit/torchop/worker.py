"""Runs a model in PyTorch with the native kernels (libopkit_torch.so), in a child process of opkit.

A kernel that crashes takes down only this process. Usage: python -m opkit.torchop.worker JOB.json.
The job names the model file, its workspace, the PyTorch op library and the input sets (a folder of
<k>.npy inputs and a folder for the outputs each); "mode" is "eager" or "compile" (torch.compile, the
op staying one call). result.json beside the job says what ran, or the error (naming the op).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path


def to_torch(a):  # noqa: ANN001, ANN201 - numpy in, torch out
    import numpy as np
    import torch

    if a.dtype.name == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a))


def load_inputs(folder: Path) -> list:
    from opkit.verify.arrays import load_npy

    arrays, k = [], 0
    while (folder / f"{k}.npy").is_file():
        arrays.append(to_torch(load_npy(folder / f"{k}.npy")))
        k += 1
    return arrays


def main(job_path: str) -> int:
    import numpy as np
    import torch

    job = json.loads(Path(job_path).read_text())
    out_path = Path(job_path).with_name("result.json")
    result: dict = {"runs": [], "error": None, "torch_version": torch.__version__}
    try:
        from opkit.build.specs import add_to_path
        from opkit.build.workspace import Workspace
        from opkit.torchop.native import load_library
        from opkit.verify.driver import flatten_outputs, to_numpy
        from opkit.verify.modelfile import load_model_file

        ws = Workspace(Path(job["workspace"]))
        add_to_path(ws)
        mf = load_model_file(Path(job["model_file"]), ws.root)
        for lib in job["libraries"]:
            load_library(lib)
        model = mf.model.eval()
        if job.get("mode") == "compile":
            model = torch.compile(model, fullgraph=False, dynamic=None)
        if job.get("threads"):
            torch.set_num_threads(int(job["threads"]))
        for run in job["runs"]:
            inputs = load_inputs(Path(run["inputs"]))
            t = time.perf_counter()
            with torch.no_grad():
                outs = flatten_outputs(model(*inputs))
            seconds = time.perf_counter() - t
            folder = Path(run["outputs"])
            folder.mkdir(parents=True, exist_ok=True)
            for k, o in enumerate(outs):
                np.save(folder / f"{k}.npy", to_numpy(o), allow_pickle=False)
            result["runs"].append({"label": run["label"], "outputs": len(outs), "seconds": seconds})
    except Exception as exc:  # the model or a kernel failed; the process lives to say so
        from opkit.errors import OpkitError

        result["error"] = exc.render() if isinstance(exc, OpkitError) else f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        out_path.write_text(json.dumps(result, indent=1))
        return 1
    out_path.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
