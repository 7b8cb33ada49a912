"""Runs a model's input sets in one runtime, in a child process of opkit (any Python-API runtime).

A kernel that crashes takes down only this process. It imports no torch unless the runtime does
(the Python references). Usage: python -m opkit.runtimes.worker JOB.json. The job names the runtime,
the model, the libraries and the runs (an input folder and an output folder each, tensors as
.npy); result.json beside the job says what ran and the runtime's error, if any.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(job_path: str) -> int:
    import numpy as np

    from opkit.runtimes import get

    job = json.loads(Path(job_path).read_text())
    if "runtime" not in job:  # a job of the older verify worker
        job["runtime"] = "python" if job.get("python_ops") else "onnxruntime"
        job.setdefault("options", {})["python_ops"] = job.get("python_ops")
        job["sanitize"] = job.get("no_arena", False)
    rt = get(job["runtime"])
    result: dict = {"runs": [], "error": None, "runtime": rt.name}
    out_path = Path(job_path).with_name("result.json")

    def save() -> None:
        out_path.write_text(json.dumps(result, indent=1))

    try:
        result["version"] = rt.version()
        options = dict(job.get("options") or {}, threads=job.get("threads"), sanitize=job.get("sanitize", False))
        options["on_error"] = lambda msg: (result.__setitem__("error", msg), save())
        t0 = time.perf_counter()
        sess = rt.open(job["model"], job.get("libraries", []), options)
        result["session_seconds"] = time.perf_counter() - t0
        result["inputs"], result["outputs"] = sess.input_names, sess.output_names
        from opkit.verify.arrays import load_npy, save_npy

        for run in job["runs"]:
            arrays = [load_npy(Path(run["inputs"]) / f"{k}.npy") for k in range(len(sess.input_names))]
            t0 = time.perf_counter()
            outs = sess.run(arrays)
            seconds = time.perf_counter() - t0
            od = Path(run["outputs"])
            od.mkdir(parents=True, exist_ok=True)
            for k, o in enumerate(outs):
                save_npy(od / f"{k}.npy", np.asarray(o))
            result["runs"].append({"label": run["label"], "seconds": seconds})
            save()
    except Exception as exc:  # the runtime's error: reported to the parent, never a traceback
        result["error"] = rt.error_text(f"{type(exc).__name__}: {exc}")
        save()
        return 3
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
