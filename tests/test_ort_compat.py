"""The op library is built against ORT API 21, so it must load and run in onnxruntime 1.21 (the oldest
version pyproject allows) and fail with a clear message, not a crash, in an older one (1.20).
Each runtime is installed from the package index into a venv of its own."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_venv

pytestmark = pytest.mark.e2e

CHILD = r"""
import sys, numpy as np, onnxruntime as ort
so = ort.SessionOptions()
so.log_severity_level = 3
try:
    so.register_custom_ops_library(sys.argv[1])
except Exception as exc:
    print("REGISTER-ERROR", exc)
    sys.exit(0)
sess = ort.InferenceSession(sys.argv[2], so, providers=["CPUExecutionProvider"])
x = np.load(sys.argv[3])
np.save(sys.argv[4], sess.run(None, {"x": x})[0])
print("RAN", ort.__version__)
"""


def _venv_with(tmp: Path, requirement: str) -> Path:
    py = make_venv(tmp / "venv", see_running=False)  # its own onnxruntime, nothing of the running env
    p = subprocess.run([str(py), "-m", "pip", "install", "-q", requirement, "numpy"], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot install {requirement} from the package index: {p.stderr.strip()[-300:]}")
    return py


def _model(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("ScaledGelu", ["x"], ["y"], domain="opkit.examples", alpha=1.5)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 7])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("opkit.examples", 1)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.mark.parametrize("requirement, loads", [("onnxruntime==1.21.*", True), ("onnxruntime==1.20.*", False)])
def test_library_in_older_onnxruntime(tmp_path, repo_build_dir, requirement, loads):
    import math

    py = _venv_with(tmp_path, requirement)
    lib = repo_build_dir / "release" / "lib" / "libopkit_ops.so"
    _model(tmp_path / "m.onnx")
    x = np.linspace(-4, 4, 35, dtype=np.float32).reshape(5, 7)
    np.save(tmp_path / "x.npy", x)
    p = subprocess.run([str(py), "-c", CHILD, str(lib), str(tmp_path / "m.onnx"), str(tmp_path / "x.npy"),
                        str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr  # never a crash
    if loads:
        assert p.stdout.startswith("RAN 1.21"), p.stdout
        want = np.array([1.5 * 0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.ravel()]).reshape(5, 7)
        np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-5, atol=1e-6)
    else:
        assert "REGISTER-ERROR" in p.stdout
        assert "built by opkit against ONNX Runtime API 21" in p.stdout and "1.20" in p.stdout
