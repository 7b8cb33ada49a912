"""OpenVINO as a runtime (issue 11): the extension built beside libopkit_ops.so from the same spec and
kernel, `verify/test/export/run --runtime openvino`, a wrong kernel and a crashing kernel inside
OpenVINO, and the build-time message for a signature OpenVINO cannot carry.

The end-to-end tests need the openvino package (`pip install 'opkit[openvino]'`): without it they are
skipped (reported as skips). They share builds: the repository's workspace (conftest's repo_build_dir,
whose `opkit build` makes the OpenVINO extension too when openvino is installed) and one small
workspace with a 1%-off ScaledGelu and a crashing kernel, built once for this module."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import NULL_DEREF_MODEL, REPO, make_one_percent_off, new_workspace, run_opkit

ov = pytest.importorskip("openvino", reason="the openvino package is not installed (pip install 'opkit[openvino]')")


# -- fast: no build --------------------------------------------------------------------------------

def test_a_signature_openvino_cannot_carry_is_a_build_time_error_naming_the_op(monkeypatch) -> None:
    from opkit.build import runtimes
    from opkit.build.specs import import_ops
    from opkit.build.workspace import Workspace
    from opkit.codegen import openvino as ovgen
    from opkit.codegen.render import op_view
    from opkit.errors import BuildError

    spec = import_ops(Workspace(REPO))["scaled_gelu"].spec
    monkeypatch.setattr(ovgen, "OV_ELEMENT", {k: v for k, v in ovgen.OV_ELEMENT.items() if k != "float64"})
    with pytest.raises(BuildError) as e:
        runtimes.check_supported(["openvino"], [spec])
    text = e.value.render()
    assert "OpenVINO cannot carry" in text and spec.qualname in text and "float64" in text
    runtimes.check_supported(["ort"], [spec])  # ONNX Runtime alone: fine
    # left out (with a note) when every installed runtime is built rather than openvino by name
    assert any(spec.qualname in line for line in runtimes.left_out(["ort", "openvino"], [spec]))
    files = ovgen.render_openvino([spec], [op_view(spec)], {"ops": []})
    assert not any(k.endswith(".ov.cc") for k in files)


# -- end to end --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def repo_env(repo_build_dir: Path) -> dict:
    assert (repo_build_dir / "release" / "lib" / "libopkit_openvino.so").is_file(), \
        "`opkit build` did not make the OpenVINO extension although openvino is installed"
    return {"OPKIT_BUILD_DIR": str(repo_build_dir)}


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("example", ["gelu_mlp", "ranking_head"])
def test_examples_verify_in_openvino_python_and_cpp(example: str, repo_env: dict, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    p = run_opkit("verify", f"examples/{example}.py", "--runtime", "openvino", "--runtime", "openvino-cpp",
                  "--json", str(out), cwd=REPO, env=repo_env)
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads(out.read_text())
    assert [r["name"] for r in report["runtimes"]] == ["openvino", "openvino-cpp"]
    assert all(r["ok"] and len(r["runs"]) >= 2 for r in report["runtimes"])  # the dynamic sizes too
    assert "== OpenVINO (Python API, CPU)" in p.stdout and "== OpenVINO C++ API (opkit-ov-runner" in p.stdout
    assert any("max abs diff from the openvino run" in n for n in report["notes"])


@pytest.mark.e2e
@pytest.mark.slow
def test_bundled_ops_pass_their_cases_in_openvino(repo_env: dict, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    # variadic inputs + float16/bfloat16 (WeightedSum), int64 ids (SegmentSum), data-dependent sizes
    # and two outputs (UniqueConsecutive), a list attribute and an absent optional input (LinearAct)
    p = run_opkit("test", "WeightedSum", "SegmentSum", "UniqueConsecutive", "LinearAct", "--runtime", "openvino",
                  "--json", str(out), cwd=REPO, env=repo_env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["runtimes"] == ["openvino"]
    for o in report["ops"]:
        assert o["runtime"] == "openvino" and o["ok"] and o["passed"] > o["skipped"], o
    assert "case(s) run in OpenVINO" in p.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_export_to_ir_then_run_it_in_the_openvino_cpp_runner(repo_env: dict, tmp_path: Path) -> None:
    xml = tmp_path / "mlp.xml"
    p = run_opkit("export", "examples/gelu_mlp.py", "--runtime", "openvino", "-o", str(xml), cwd=REPO, env=repo_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert "ScaledGelu" in xml.read_text() and "libopkit_openvino.so" in p.stdout
    x = np.random.default_rng(0).standard_normal((5, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    runs = {}
    for runtime in ("openvino", "onnxruntime"):
        model = xml if runtime == "openvino" else tmp_path / "mlp.onnx"
        if runtime == "onnxruntime":
            e = run_opkit("export", "examples/gelu_mlp.py", "-o", str(model), cwd=REPO, env=repo_env)
            assert e.returncode == 0, e.stderr
        r = run_opkit("run", str(model), "--runtime", runtime, "--input", f"x={tmp_path / 'x.npy'}",
                      "--output-dir", str(tmp_path / runtime), cwd=REPO, env=repo_env)
        assert r.returncode == 0, r.stdout + r.stderr
        (out,) = sorted((tmp_path / runtime).glob("*.npy"))
        runs[runtime] = np.load(out)
    np.testing.assert_allclose(runs["openvino"], runs["onnxruntime"], rtol=1e-5, atol=1e-6)


@pytest.mark.e2e
def test_bench_in_openvino_times_the_models_not_the_copy_of_their_outputs(repo_env: dict, tmp_path: Path) -> None:
    """`opkit bench --runtime openvino` measures (a), (b) and (d) inside OpenVINO, and the timed call
    hands back OpenVINO's own output memory: the Python API's default copies every output into a new
    numpy array per call, which at 4M floats costs as much as the op itself."""
    out = tmp_path / "b.json"
    p = run_opkit("bench", "ScaledGelu", "--runtime", "openvino", "--sizes", "8K", "--dtype", "float32",
                  "--threads", "1", "--budget", "0.3", "--no-eager", "--json", str(out), cwd=REPO, env=repo_env)
    assert p.returncode == 0, p.stdout + p.stderr
    data = json.loads(out.read_text())
    assert data["runtime"] == "openvino" and data["env"]["openvino"] == ov.get_version().split("-")[0]
    (row,) = data["rows"]
    assert not row["errors"], row["errors"]
    med = {c: row["stats"][c]["median_s"] for c in ("native", "onnx", "builtin")}
    assert all(0 < v < 1e-2 for v in med.values()), med
    assert row["ratios"]["native/onnx"] == pytest.approx(med["native"] / med["onnx"])

    import onnx
    from onnx import TensorProto, helper

    from opkit.runtimes.openvino import OpenVino

    lib = Path(repo_env["OPKIT_BUILD_DIR"]) / "release" / "lib" / "libopkit_openvino.so"
    dims = ["rows", "cols"]
    graph = helper.make_graph(
        [helper.make_node("ScaledGelu", ["x"], ["y"], domain="opkit.examples", alpha=2.0)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)])
    model = tmp_path / "scaled_gelu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20),
                                                      helper.make_opsetid("opkit.examples", 1)]), str(model))
    session = OpenVino().open(str(model), [str(lib)], {"threads": 1})
    arrays = [np.random.default_rng(0).standard_normal((3, 40)).astype(np.float32)]
    expected = session.run(arrays)
    call = session.bind(arrays)
    result = call()
    shared = session.request.get_output_tensor(0).data
    np.testing.assert_array_equal(result[0], expected[0])
    assert np.shares_memory(result[0], shared), "the timed call copied its output"


@pytest.fixture(scope="module")
def bad_ws(tmp_path_factory) -> Path:
    """A workspace with a ScaledGelu whose kernel is 1% off and a kernel that crashes on large inputs."""
    ws = new_workspace(tmp_path_factory.mktemp("ov-bad"), "Starter", "test.ov")
    shutil.rmtree(ws / "ops" / "starter")
    shutil.copytree(REPO / "ops" / "scaled_gelu", ws / "ops" / "scaled_gelu")
    kernel = ws / "ops" / "scaled_gelu" / "scaled_gelu.cc"
    make_one_percent_off(kernel)
    shutil.copytree(REPO / "tests" / "fixtures" / "broken" / "null_deref", ws / "ops" / "null_deref")
    (ws / "model.py").write_text(NULL_DEREF_MODEL)
    p = run_opkit("build", cwd=ws)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (ws / "build" / "release" / "lib" / "libopkit_openvino.so").is_file()
    return ws


@pytest.mark.e2e
@pytest.mark.slow
def test_a_kernel_one_percent_off_fails_in_openvino_as_in_onnxruntime(bad_ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    p = run_opkit("test", "ScaledGelu", "--runtime", "onnxruntime", "--runtime", "openvino", "--json", str(out),
                  cwd=bad_ws)
    assert p.returncode == 1, p.stdout + p.stderr
    report = json.loads(out.read_text())
    by_runtime = {o["runtime"]: o for o in report["ops"]}
    assert set(by_runtime) == {"onnxruntime", "openvino"}
    for o in by_runtime.values():
        assert not o["ok"] and o["failed"] > 0 and {f["kind"] for f in o["failures"]} == {"values"}
    assert "FAIL ScaledGelu in openvino case" in p.stdout and "--runtime openvino" in p.stdout  # the rerun command


@pytest.mark.e2e
@pytest.mark.slow
def test_a_crashing_kernel_in_openvino_names_the_op_and_opkit_survives(bad_ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    p = run_opkit("test", "NullDeref", "--runtime", "openvino", "--json", str(out), cwd=bad_ws)
    assert p.returncode == 1 and "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr
    (o,) = json.loads(out.read_text())["ops"]
    crashes = [f for f in o["failures"] if f["kind"] == "crash"]
    assert crashes and all("test.broken::NullDeref" in f["problem"] and "openvino" in f["problem"] for f in crashes)
    assert o["passed"] > 0  # a fresh child went on with the cases after each crash
    v = run_opkit("verify", "model.py", "--runtime", "openvino", cwd=bad_ws)
    assert v.returncode == 1 and "Traceback" not in v.stdout + v.stderr, v.stdout + v.stderr
    assert "OpenVINO" in v.stderr and "process died" in v.stderr and "test.broken::NullDeref" in v.stderr
