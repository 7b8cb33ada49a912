"""Runs test cases (one-node models) in ONNX Runtime with the op library, in a child process of opkit.

A kernel that crashes or hangs takes down only this process; the parent knows which case was
running from the journal. It imports no torch.
Usage: python -m opkit.testing.worker JOB.json. The job names the library and the case folders
(model.onnx, in_<k>.npy, meta.json each). Before each case the worker appends
{"start": id} to the journal, after it {"done": id, ...} with ORT's error, if any, the output
shapes from ONNX Runtime's shape inference, and the time; outputs go to out_<k>.npy.
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
    import onnxruntime as ort

    job = json.loads(Path(job_path).read_text())
    journal = open(job["journal"], "a", buffering=1)

    def log(rec: dict) -> None:
        journal.write(json.dumps(rec) + "\n")
        journal.flush()
        os.fsync(journal.fileno())

    library, model_name = job["library"], "model.onnx"
    current: dict = {"id": None}
    if job.get("python_ops"):  # the Python backend: the references as onnxruntime-extensions ops
        from opkit.verify.pyops import register_python_ops

        def on_error(msg: str) -> None:  # a reference raised: record it for the case in flight
            log({"done": current["id"], "error": msg, "inferred": None})

        library, model_name = register_python_ops(job["python_ops"], on_error), "model.python.onnx"
    for case in job["cases"]:
        cid, folder = case["id"], Path(case["dir"])
        current["id"] = cid
        log({"start": cid, "t": time.time()})
        rec: dict = {"done": cid, "error": None, "inferred": None}
        try:
            meta = json.loads((folder / "meta.json").read_text())
            so = ort.SessionOptions()
            so.log_severity_level = 3
            so.intra_op_num_threads = int(job.get("threads") or 2)
            if job.get("no_arena"):
                so.enable_cpu_mem_arena = False  # so that AddressSanitizer sees each tensor's bounds
            so.register_custom_ops_library(library)
            sess = ort.InferenceSession(str(folder / model_name), so, providers=["CPUExecutionProvider"])
            rec["inferred"] = [o.shape if isinstance(o.shape, list) else None for o in sess.get_outputs()]
            feeds = {name: _load(folder / f"in_{k}.npy", dt) for k, (name, dt) in enumerate(meta["inputs"])}
            t0 = time.perf_counter()
            outs = sess.run(None, feeds)
            rec["seconds"] = time.perf_counter() - t0
            for k, o in enumerate(outs):
                _save(folder / f"out_{k}.npy", o)
        except Exception as exc:  # an ORT error: reported to the parent, never a traceback
            rec["error"] = f"{type(exc).__name__}: {exc}"
        log(rec)
    journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
