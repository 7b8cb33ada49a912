"""Converts an ONNX model to OpenVINO IR with opkit's extension, in a child process of opkit
(`opkit export --runtime openvino`): the extension is native code. Usage: python -m
opkit.runtimes.openvino.save JOB.json (model, libraries, xml); result.json beside the job."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    result: dict = {"error": None}
    out = Path(job_path).with_name("result.json")
    try:
        import openvino as ov

        core = ov.Core()
        for lib in job["libraries"]:
            core.add_extension(lib)
        model = core.read_model(job["model"])
        ov.save_model(model, job["xml"], compress_to_fp16=False)
        standard = ("opset", "extension")
        result["custom"] = sorted({f"{op.get_type_info().version_id}::{op.get_type_name()}"
                                   for op in model.get_ops()
                                   if not str(op.get_type_info().version_id).startswith(standard)})
    except Exception as exc:  # OpenVINO's error: reported to the parent, never a traceback
        result["error"] = f"{type(exc).__name__}: {exc}"
        out.write_text(json.dumps(result))
        return 3
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
