"""Runs an ONNX model in ONNX Runtime with an op library, in a child process of opkit.

A kernel that crashes takes down only this process. It imports no torch, except for the
Python backend (job key `python_ops`, see opkit.verify.pyops), which runs the specs' references.
Usage: python -m opkit.verify.worker JOB.json. The job names the model, the library and a
list of runs (an input folder and an output folder each, tensors as .npy). The result
(`result.json` beside the job) says what ran and any ONNX Runtime error.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


_BFLOAT16 = 16  # onnx.TensorProto.BFLOAT16


def _run(sess, input_names: list[str], arrays: list) -> list:
    """sess.run, except that bfloat16 tensors (which ORT's numpy interface cannot carry) go through
    OrtValues: fed from their 16-bit patterns, fetched by copying the output's bytes."""
    import numpy as np
    import onnxruntime as ort

    in_types = [i.type for i in sess.get_inputs()]
    out_types = [o.type for o in sess.get_outputs()]
    if "tensor(bfloat16)" not in in_types + out_types:
        return sess.run(None, dict(zip(input_names, arrays)))
    import ctypes

    import ml_dtypes

    feeds = {}
    for name, t, a in zip(input_names, in_types, arrays):
        if t == "tensor(bfloat16)":
            bits = np.ascontiguousarray(a).view(np.uint16)
            feeds[name] = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(bits, _BFLOAT16)
        else:
            feeds[name] = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a))
    outs = []
    for v in sess.run_with_ort_values([o.name for o in sess.get_outputs()], feeds):
        if v.data_type() == "tensor(bfloat16)":
            n = v.tensor_size_in_bytes()
            raw = bytes((ctypes.c_char * n).from_address(v.data_ptr())) if n else b""
            outs.append(np.frombuffer(raw, dtype=np.uint16).reshape(v.shape()).view(ml_dtypes.bfloat16))
        else:
            outs.append(v.numpy())
    return outs


def main(job_path: str) -> int:
    import numpy as np
    import onnxruntime as ort

    job = json.loads(Path(job_path).read_text())
    result: dict = {"runs": [], "error": None, "ort_version": ort.__version__}
    out_path = Path(job_path).with_name("result.json")

    def save() -> None:
        out_path.write_text(json.dumps(result, indent=1))

    try:
        if job.get("python_ops"):  # the Python backend: register the references before the session exists
            from opkit.verify.pyops import register_job

            register_job(job["python_ops"], job, result, save)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if job.get("threads"):
            so.intra_op_num_threads = int(job["threads"])
        if job.get("no_arena"):
            so.enable_cpu_mem_arena = False  # so that AddressSanitizer sees each tensor's bounds
        for lib in job.get("libraries", []):
            so.register_custom_ops_library(lib)
        for lib in job.get("python_ops_libraries", []):
            so.register_custom_ops_library(lib)
        t0 = time.perf_counter()
        sess = ort.InferenceSession(job["model"], so, providers=["CPUExecutionProvider"])
        result["session_seconds"] = time.perf_counter() - t0
        input_names = [i.name for i in sess.get_inputs()]
        output_names = [o.name for o in sess.get_outputs()]
        result["inputs"], result["outputs"] = input_names, output_names
        for run in job["runs"]:
            arrays = [np.load(Path(run["inputs"]) / f"{k}.npy", allow_pickle=False) for k in range(len(input_names))]
            t0 = time.perf_counter()
            outs = _run(sess, input_names, arrays)
            seconds = time.perf_counter() - t0
            od = Path(run["outputs"])
            od.mkdir(parents=True, exist_ok=True)
            for k, o in enumerate(outs):
                np.save(od / f"{k}.npy", np.asarray(o), allow_pickle=False)
            result["runs"].append({"label": run["label"], "seconds": seconds})
            save()
    except Exception as exc:  # an ORT error: reported to the parent, never a traceback
        result["error"] = f"{type(exc).__name__}: {exc}"
        save()
        return 3
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
