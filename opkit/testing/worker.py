"""Runs test cases (one-node models) in one runtime (opkit.runtimes) with its op library, in a child
process of opkit.

A kernel that crashes or hangs takes down only this process; the parent knows which case was
running from the journal. It imports no torch.
Usage: python -m opkit.testing.worker JOB.json. The job names the library and the case folders
(model.onnx, in_<k>.npy, meta.json each). Before each case the worker appends
{"start": id} to the journal, after it {"done": id, ...} with ORT's error, if any, the output
shapes from the runtime's shape inference, and the time; outputs go to out_<k>.npy.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _load(path: Path, dtype: str):
    import numpy as np

    a = np.load(path, allow_pickle=False)
    if dtype == "bfloat16":
        import ml_dtypes

        a = a.view(ml_dtypes.bfloat16)
    return a


def _save(path: Path, a) -> None:
    import numpy as np

    a = np.asarray(a)
    if a.dtype.name == "bfloat16":
        a = a.view(np.uint16)
    np.save(path, a, allow_pickle=False)


def main(job_path: str) -> int:
    from opkit.runtimes import get

    job = json.loads(Path(job_path).read_text())
    journal = open(job["journal"], "a", buffering=1)
    rt = get(job.get("runtime", "onnxruntime"))

    def log(rec: dict) -> None:
        journal.write(json.dumps(rec) + "\n")
        journal.flush()
        os.fsync(journal.fileno())

    current: dict = {"id": None}

    def on_error(msg: str) -> None:  # e.g. a Python reference raised: record it for the case in flight
        log({"done": current["id"], "error": msg, "inferred": None})

    options = dict(job.get("options") or {}, threads=int(job.get("threads") or 2),
                   sanitize=bool(job.get("sanitize")), on_error=on_error)
    model_name = job.get("model_name", "model.onnx")
    for case in job["cases"]:
        cid, folder = case["id"], Path(case["dir"])
        current["id"] = cid
        log({"start": cid, "t": time.time()})
        rec: dict = {"done": cid, "error": None, "inferred": None}
        try:
            meta = json.loads((folder / "meta.json").read_text())
            sess = rt.open(str(folder / model_name), job.get("libraries", []), options)
            rec["inferred"] = sess.inferred_shapes()
            arrays = [_load(folder / f"in_{k}.npy", dt) for k, (name, dt) in enumerate(meta["inputs"])]
            t0 = time.perf_counter()
            outs = sess.run(arrays)
            rec["seconds"] = time.perf_counter() - t0
            for k, o in enumerate(outs):
                _save(folder / f"out_{k}.npy", o)
        except Exception as exc:  # the runtime's error: reported to the parent, never a traceback
            rec["error"] = rt.error_text(f"{type(exc).__name__}: {exc}")
        log(rec)
    journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
