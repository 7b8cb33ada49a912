"""The Python backend: each op's reference inside ONNX Runtime (onnxruntime-extensions), no library built."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as h

from conftest import REPO, new_workspace, run_opkit

BOOM_SPEC = '''
import os
import torch
import opkit
from opkit import Tensor


@opkit.op("Boom", domain="com.h5test", types={"T": ("float16", "float32", "float64")}, shapes={"y": "x"})
def boom(x: Tensor["T"], bias: Tensor["T"] | None = None, ks: list[int] = [1, 2], flag: bool = True) -> Tensor["T"]:
    if os.environ.get("OPKIT_H5_BOOM"):
        raise ValueError("boom only in the child")
    y = x * len(ks) if flag else x
    return y if bias is None else y + bias
'''


@pytest.fixture(scope="module")
def boom_ws(tmp_path_factory):
    ws = tmp_path_factory.mktemp("pyws")
    (ws / "ops" / "boom").mkdir(parents=True)
    (ws / "ops" / "boom" / "spec.py").write_text(BOOM_SPEC)
    from opkit.build.specs import import_ops
    from opkit.build.workspace import Workspace

    return Workspace(ws), import_ops(Workspace(ws))["boom"]


def one_node(elem: int, inputs=("x",), **attrs) -> onnx.ModelProto:
    node = h.make_node("Boom", list(inputs), ["y"], name="boom0", domain="com.h5test", **attrs)
    g = h.make_graph([node], "g", [h.make_tensor_value_info(n, elem, [2, 3]) for n in inputs if n],
                     [h.make_tensor_value_info("y", elem, [2, 3])])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("com.h5test", 1)])


def run_child(ws, op, model, tmp: Path, feeds: list[np.ndarray], env: dict | None = None):
    from opkit.verify.native import run_worker
    from opkit.verify.pyops import python_job

    (tmp / "in").mkdir(parents=True, exist_ok=True)
    for k, a in enumerate(feeds):
        np.save(tmp / "in" / f"{k}.npy", a)
    job = python_job(model, [op], ws.root, tmp, [{"label": "t", "inputs": str(tmp / "in"),
                                                 "outputs": str(tmp / "out")}])
    return run_worker(job, tmp, timeout=120, env=dict(os.environ, **(env or {})))


def test_defaults_absent_optional_and_list_attributes_run_in_ort(boom_ws, tmp_path):
    ws, op = boom_ws
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    # no attribute written (defaults ks=[1, 2], flag=True are filled in), bias absent
    child = run_child(ws, op, one_node(TP.DOUBLE), tmp_path / "a", [x])
    assert child.ok, (child.error, child.crashed, child.stderr[-2000:])
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "out" / "0.npy"), x * 2)
    # the optional input present, a list attribute and a bool given
    m = one_node(TP.FLOAT, ("x", "b"), ks=[1, 2, 3], flag=1)
    xf, b = x.astype(np.float32), np.ones((2, 3), np.float32)
    child = run_child(ws, op, m, tmp_path / "b", [xf, b])
    assert child.ok, (child.error, child.crashed)
    got = np.load(tmp_path / "b" / "out" / "0.npy")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, xf * 3 + 1)


def test_a_reference_that_raises_is_reported_not_a_crash(boom_ws, tmp_path):
    from opkit.verify.pyops import python_error

    ws, op = boom_ws
    child = run_child(ws, op, one_node(TP.FLOAT), tmp_path, [np.ones((2, 3), np.float32)], {"OPKIT_H5_BOOM": "1"})
    assert not child.crashed and child.error
    err = python_error(child.error)
    assert "a reference raised" in err.what and "ValueError: boom only in the child" in err.details


def test_float16_nodes_are_refused_naming_the_node_and_the_native_backend(boom_ws, tmp_path):
    from opkit.errors import BackendUnsupportedError
    from opkit.verify.pyops import prepare_model, unsupported

    ws, op = boom_ws
    assert unsupported(op.spec) == []  # float32/float64 nodes of this op can run
    with pytest.raises(BackendUnsupportedError) as e:
        prepare_model(one_node(TP.FLOAT16), [op.spec], tmp_path / "m.onnx")
    assert "node boom0 (com.h5test::Boom) runs on float16" in e.value.details
    assert "native backend" in e.value.fix


@pytest.mark.e2e
def test_bundled_example_passes_without_a_library(tmp_path):
    p = run_opkit("verify", "examples/gelu_mlp.py", "--backend", "python", cwd=REPO,
                  env={"OPKIT_BUILD_DIR": str(tmp_path)})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "backend:  python" in p.stdout and "[onnxruntime + Python references]" in p.stdout and p.stdout.rstrip().endswith("PASS")
    assert not (tmp_path / "release").exists()  # nothing was built


@pytest.mark.e2e
def test_skeleton_kernel_is_reported_and_the_python_backend_passes(tmp_path):
    from opkit.codegen.render import render_kernel_file
    from opkit.spec.model import Attr, Dim, Input, OpSpec, Output, ShapeRule, TensorType, TypeVar

    ws = new_workspace(tmp_path, "Swish", "com.mycompany")
    spec = OpSpec(name="Swish", domain="com.mycompany", version=1, py_name="swish",
                  typevars=(TypeVar("T", ("float32", "float64")),), inputs=(Input("x", TensorType(typevar="T")),),
                  attrs=(Attr("scale", "float", 1.0, required=False),),
                  outputs=(Output("y", TensorType(typevar="T"), ShapeRule("'x'", (Dim("dims", input="x"),))),),
                  param_order=("x", "scale"), folder="swish")
    kernel = render_kernel_file(spec)
    assert "throw opkit::NotImplemented" in kernel
    (ws / "ops" / "swish" / "swish.cc").write_text(kernel)
    (ws / "model.py").write_text(
        "import torch\nfrom ops.swish.spec import swish\n\n"
        "class Net(torch.nn.Module):\n    def forward(self, x):\n        return swish(x * 2, scale=1.5)\n\n"
        "model = Net().eval()\nexample_inputs = (torch.randn(4, 16),)\n")
    p = run_opkit("verify", "model.py", "--no-native", cwd=ws)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "the kernel of com.mycompany::Swish is not written yet" in p.stderr
    assert "ops/swish/swish.cc" in p.stderr and "--backend python" in p.stderr
    assert "Traceback" not in p.stderr and "died" not in p.stderr and "FAIL" not in p.stdout
    p = run_opkit("verify", "model.py", "--backend", "python", cwd=ws)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "[onnxruntime + Python references]" in p.stdout and p.stdout.rstrip().endswith("PASS")


def test_opkit_test_python_backend_runs_references_in_ort_without_a_build(tmp_path):
    """`opkit test --backend python`: the same cases, the references as Python ops in ORT, no library built."""
    from conftest import REPO, run_opkit

    build = tmp_path / "build"
    p = run_opkit("test", "ScaledGelu", "RmsNorm", "--backend", "python", "--json", str(tmp_path / "r.json"),
                  cwd=REPO, env={"OPKIT_BUILD_DIR": str(build)})
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    by_name = {o["name"]: o for o in report["ops"]}
    assert by_name["ScaledGelu"]["passed"] == by_name["ScaledGelu"]["cases"] > 10
    # float16 cannot go through onnxruntime-extensions: RmsNorm's float16 cases are skipped, and say why
    rms = by_name["RmsNorm"]
    assert rms["failed"] == 0 and rms["skipped"] > 0 and rms["passed"] == rms["cases"] - rms["skipped"]
    assert any("float16" in s for s in rms["skips"])
    assert not (build / "release" / "lib" / "libopkit_ops.so").exists()  # nothing was built
