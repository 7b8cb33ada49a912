"""Natively, outside Python (issue 5): opkit-runner and `opkit run`, the runner in `opkit verify`,
`opkit info`, the old-runtime error path, the C++ example application, `opkit package` installed in a
fresh venv, and `opkit export --decompose` run in a stock onnxruntime.

Everything heavy is built once per module: the repo's op library (conftest's repo_build_dir), the
runner (one OPKIT_RUNNER_DIR for the module) and examples/gelu_mlp.py's exported model."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, make_venv, run_opkit

pytestmark = pytest.mark.e2e
ALL_DTYPES = ["float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"]


@pytest.fixture(scope="module")
def runner_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runner")


@pytest.fixture(scope="module")
def env(repo_build_dir, runner_dir) -> dict:
    return {"OPKIT_BUILD_DIR": str(repo_build_dir), "OPKIT_RUNNER_DIR": str(runner_dir)}


@pytest.fixture(scope="module")
def runner(env, monkeypatch_module=None):
    from opkit.native.runner import ensure_runner

    old = os.environ.get("OPKIT_RUNNER_DIR")
    os.environ["OPKIT_RUNNER_DIR"] = env["OPKIT_RUNNER_DIR"]
    try:
        r = ensure_runner()
    finally:
        if old is None:
            os.environ.pop("OPKIT_RUNNER_DIR", None)
        else:
            os.environ["OPKIT_RUNNER_DIR"] = old
    assert r.exe.is_file()
    return r


@pytest.fixture(scope="module")
def library(repo_build_dir) -> Path:
    lib = repo_build_dir / "release" / "lib" / "libopkit_ops.so"
    assert lib.is_file()
    return lib


@pytest.fixture(scope="module")
def gelu(tmp_path_factory):
    """examples/gelu_mlp.py: exported by `opkit export`, plus its torch model for the reference."""
    d = tmp_path_factory.mktemp("gelu")
    p = run_opkit("export", "examples/gelu_mlp.py", "-o", str(d / "model.onnx"), cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert "custom: opkit.examples::ScaledGelu" in p.stdout
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    spec = importlib.util.spec_from_file_location("h4_gelu_mlp", REPO / "examples" / "gelu_mlp.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return d / "model.onnx", mod.model


def _torch_out(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


# -- the runner's .npy reader/writer and input checks, on an Identity model of every dtype ------------

@pytest.fixture(scope="module")
def identity_model(tmp_path_factory) -> Path:
    import onnx
    from onnx import TensorProto, helper

    from opkit.spec.dtypes import DTYPES

    ins = [helper.make_tensor_value_info(f"in_{d}", DTYPES[d].onnx, ["n", 3]) for d in ALL_DTYPES]
    ins.append(helper.make_tensor_value_info("scalar", TensorProto.FLOAT, []))
    outs = [helper.make_tensor_value_info(f"out/{d}", DTYPES[d].onnx, None) for d in ALL_DTYPES]
    outs.append(helper.make_tensor_value_info("scalar_out", TensorProto.FLOAT, None))
    nodes = [helper.make_node("Identity", [i.name], [o.name]) for i, o in zip(ins, outs)]
    m = helper.make_model(helper.make_graph(nodes, "ids", ins, outs), opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path_factory.mktemp("identity") / "identity.onnx"
    onnx.save(m, path)
    return path


def _arrays(n: int) -> dict[str, np.ndarray]:
    from opkit.spec.dtypes import numpy_dtype

    rng = np.random.default_rng(0)
    out = {}
    for d in ALL_DTYPES:
        raw = rng.standard_normal((n, 3)) * 50
        out[f"in_{d}"] = (raw > 0) if d == "bool" else raw.astype(np.float32).astype(numpy_dtype(d))
    out["scalar"] = np.array(3.25, dtype=np.float32)
    return out


def _run(runner, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(runner.exe), *args], capture_output=True, text=True, timeout=120)


def test_runner_npy_round_trip_every_dtype(runner, identity_model, tmp_path):
    from opkit.verify.arrays import load_npy

    for n in (4, 0):  # a normal and an empty batch
        arrays = _arrays(n)
        args = ["--model", str(identity_model), "--output-dir", str(tmp_path / f"out{n}"),
                "--json", str(tmp_path / f"r{n}.json")]
        for name, a in arrays.items():
            np.save(tmp_path / f"{name}.npy", a)
            args += ["--input", f"{name}={tmp_path / f'{name}.npy'}"]
        p = _run(runner, *args)
        assert p.returncode == 0, p.stderr
        result = json.loads((tmp_path / f"r{n}.json").read_text())
        by_name = {o["name"]: o for o in result["outputs"]}
        for d in ALL_DTYPES:
            meta = by_name[f"out/{d}"]
            assert meta["dtype"] == d and meta["shape"] == [n, 3]
            assert Path(meta["file"]).name == f"out_{d}.npy"  # '/' made safe
            got = load_npy(meta["file"])
            want = arrays[f"in_{d}"]
            assert got.dtype == want.dtype and got.shape == want.shape
            assert got.tobytes() == want.tobytes(), d
        scalar = np.load(by_name["scalar_out"]["file"])
        assert scalar.shape == () and scalar == np.float32(3.25)


def test_runner_input_errors_exit_2(runner, identity_model, tmp_path):
    arrays = _arrays(2)
    good = []
    for name, a in arrays.items():
        np.save(tmp_path / f"{name}.npy", a)
        good += ["--input", f"{name}={tmp_path / f'{name}.npy'}"]
    base = ["--model", str(identity_model), "--output-dir", str(tmp_path / "o")]
    np.save(tmp_path / "f64.npy", np.zeros((2, 3)))
    np.save(tmp_path / "fortran.npy", np.asfortranarray(np.zeros((2, 3), np.float32)))
    np.save(tmp_path / "big.npy", np.zeros((2, 3), ">f4"))
    np.save(tmp_path / "rank3.npy", np.zeros((2, 3, 1), np.float32))
    np.save(tmp_path / "cplx.npy", np.zeros((2, 3), np.complex64))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    swap = lambda f: [a if not a.startswith("in_float32=") else f"in_float32={tmp_path / f}" for a in good]  # noqa
    cases = {
        "missing input(s): in_float32": [a for a in good if "in_float32=" not in a and a != "--input"] and
        sum((["--input", a] for a in good[1::2] if not a.startswith("in_float32=")), []),
        "the model has no input 'nope'": good + ["--input", f"nope={tmp_path / 'f64.npy'}"],
        "is float64, the model expects float32": swap("f64.npy"),
        "Fortran order": swap("fortran.npy"),
        "big-endian": swap("big.npy"),
        "has shape [2,3,1], the model expects [n,3]": swap("rank3.npy"),
        "unsupported dtype '<c8'": swap("cplx.npy"),
        "not a .npy file": swap("junk.npy"),
        "is given twice": good + ["--input", f"in_float32={tmp_path / 'in_float32.npy'}"],
    }
    for message, args in cases.items():
        p = _run(runner, *base, *args)
        assert p.returncode == 2, (message, p.stderr)
        assert message in p.stderr, (message, p.stderr)
    assert _run(runner, *base, *good).returncode == 0
    h = _run(runner, "--help")
    assert h.returncode == 0 and "--input NAME=FILE" in h.stdout and "exit codes" in h.stdout


def test_opkit_run_matches_pytorch(gelu, library, env, tmp_path):
    model_path, model = gelu
    x = np.random.default_rng(1).standard_normal((5, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    p = run_opkit("run", str(model_path), "--input", f"x={tmp_path / 'x.npy'}", "--output-dir",
                  str(tmp_path / "out"), "--library", str(library), cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    (out,) = [f for f in (tmp_path / "out").glob("*.npy")]
    np.testing.assert_allclose(np.load(out), _torch_out(model, x), rtol=1e-4, atol=1e-5)
    # inputs by name: a wrong name, or no library for a model with custom nodes
    bad = run_opkit("run", str(model_path), "--input", f"y={tmp_path / 'x.npy'}", "--library", str(library),
                    cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "the model has no input 'y'; its inputs: x (float32 [batch,64])" in bad.stderr
    assert "Traceback" not in bad.stderr
    nolib = run_opkit("run", str(model_path), "--input", f"x={tmp_path / 'x.npy'}", "--no-library",
                      cwd=tmp_path, env=env)
    assert nolib.returncode == 1 and "ScaledGelu" in nolib.stderr and "is not a registered" in nolib.stderr


def test_verify_runs_the_cpp_runner(env, tmp_path):
    p = run_opkit("verify", "examples/gelu_mlp.py", "--json", str(tmp_path / "r.json"), cwd=REPO, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    backends = [r["backend"] for r in report["runs"]]
    assert backends.count("C++ runner") == backends.count("native") >= 2
    assert all(r["ok"] for r in report["runs"])
    assert any("C++ runner" in n and "max abs diff from the Python ORT run" in n for n in report["notes"])
    assert "[C++ runner]" in p.stdout
    skipped = run_opkit("verify", "examples/gelu_mlp.py", "--no-native", "--json", str(tmp_path / "s.json"),
                        cwd=REPO, env=env)
    assert skipped.returncode == 0, skipped.stderr
    rep = json.loads((tmp_path / "s.json").read_text())
    assert {r["backend"] for r in rep["runs"]} == {"native"}
    assert "the C++ runner was skipped (--no-native)" in skipped.stdout


# -- the library's record, and the old-runtime error path ---------------------------------------------

def test_opkit_info_reads_the_record_without_loading(library, runner):
    p = run_opkit("info", str(library), "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["ort_api_version"] == 21 and info["opkit_version"]
    from opkit.build.specs import load_specs
    from opkit.build.workspace import Workspace

    specs = load_specs(Workspace(REPO))[0]
    assert sorted((o["domain"], o["name"]) for o in info["ops"]) == sorted((s.domain, s.name) for s in specs)
    gelu = next(o for o in info["ops"] if o["name"] == "ScaledGelu")
    assert gelu["kernels"] == ["T=float32", "T=float64"]
    text = run_opkit("info", str(library)).stdout
    assert "scaled_gelu(x: Tensor['T'], alpha: float = 1.0)" in text and "onnxruntime >= 1.21" in text
    other = run_opkit("info", str(runner.exe))  # an ELF file without the record
    assert other.returncode == 1 and "holds no opkit record" in other.stderr


def test_old_onnxruntime_gets_an_error_not_a_crash(library, tmp_path):
    """RegisterCustomOps called as an onnxruntime 1.20 would (GetApi(21) == NULL) returns an ORT status."""
    from opkit.build.headers import ensure_headers
    from opkit.native.runner import ort_library

    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "probe"
    subprocess.run([cc, "-Wall", "-Wextra", "-Werror", "-I", str(ensure_headers().include_dir),
                    str(REPO / "tests" / "native" / "old_ort_probe.c"), "-o", str(exe), "-ldl"], check=True)
    p = subprocess.run([str(exe), str(ort_library()), str(library), "20", "1.20.1"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "built by opkit against ONNX Runtime API 21" in p.stdout
    assert "the loaded onnxruntime 1.20.1 is older" in p.stdout


# -- examples/cpp: a user's own C++ program ------------------------------------------------------------

def test_cpp_example_app_matches_pytorch(gelu, library, tmp_path):
    from opkit.build.cmake import find_tools

    tools = find_tools()
    model_path, model = gelu
    cmake_args = run_opkit("info", "--cmake").stdout.split()
    build = tmp_path / "app"
    subprocess.run([tools.cmake, "-S", str(REPO / "examples" / "cpp"), "-B", str(build), "-G", "Ninja",
                    f"-DCMAKE_MAKE_PROGRAM={tools.ninja}", f"-DCMAKE_CXX_COMPILER={tools.cxx}", *cmake_args],
                   check=True, capture_output=True)
    b = subprocess.run([tools.cmake, "--build", str(build)], capture_output=True, text=True)
    assert b.returncode == 0, b.stdout + b.stderr
    assert "warning" not in b.stdout.lower()
    exe = build / "gelu_mlp_app"
    needed = subprocess.run(["readelf", "-d", str(exe)], capture_output=True, text=True).stdout
    assert "libonnxruntime.so.1" in needed and "python" not in needed.lower()
    p = subprocess.run([str(exe), str(model_path), str(library), "6"], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin"})  # a bare environment: no Python anywhere
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0] == "shape 6 32"
    got = np.array([float(v) for v in lines[1:] if v], dtype=np.float32).reshape(6, 32)
    x = np.sin(np.float32(0.01) * np.arange(6 * 64, dtype=np.float32)).reshape(6, 64)
    np.testing.assert_allclose(got, _torch_out(model, x), rtol=1e-4, atol=1e-5)
    bad = subprocess.run([str(exe), str(model_path), str(tmp_path / "missing.so")], capture_output=True, text=True)
    assert bad.returncode == 1 and "onnxruntime error" in bad.stderr


# -- opkit package: a wheel installed in a fresh venv --------------------------------------------------

def test_package_wheel_in_a_fresh_venv(gelu, env, tmp_path):
    model_path, model = gelu
    p = run_opkit("package", "--name", "h4-test-ops", "--version", "1.2.3", "-o", str(tmp_path / "dist"),
                  cwd=REPO, env=env)
    assert p.returncode == 0, p.stderr
    wheel = Path(p.stdout.strip().splitlines()[-1])
    assert wheel.name == "h4_test_ops-1.2.3-py3-none-linux_x86_64.whl"
    venv = tmp_path / "venv"
    py = make_venv(venv)
    inst = subprocess.run([str(py), "-m", "pip", "install", "--no-index", "--no-deps", "-q", str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr
    x = np.random.default_rng(2).standard_normal((3, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np, onnxruntime as ort
        import h4_test_ops
        assert h4_test_ops.__file__.startswith({str(venv)!r}), h4_test_ops.__file__
        so = ort.SessionOptions()
        lib_path = h4_test_ops.get_library_path()  # loads OpenBLAS (LinearAct links it) from its package
        assert any("libscipy_openblas" in line for line in open("/proc/self/maps")), "OpenBLAS not preloaded"
        so.register_custom_ops_library(lib_path)
        sess = ort.InferenceSession({str(model_path)!r}, so, providers=["CPUExecutionProvider"])
        y = sess.run(None, {{"x": np.load({str(tmp_path / 'x.npy')!r})}})[0]
        np.save({str(tmp_path / 'y.npy')!r}, y)
        assert "torch" not in sys.modules  # the ORT part needs no torch
        import torch
        from h4_test_ops import scaled_gelu
        t = torch.linspace(-3, 3, 7)
        print(json.dumps({{"info": h4_test_ops.info(), "docs": h4_test_ops.docs(),
                          "torch": (scaled_gelu(t, alpha=2.0) - torch.nn.functional.gelu(t) * 2).abs().max().item(),
                          "op": scaled_gelu.spec.qualname}}))
    """)
    # opkit from this checkout: the venv's system site-packages may hold another (older) one
    run = subprocess.run([str(py), "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), _torch_out(model, x), rtol=1e-4, atol=1e-5)
    assert out["op"] == "opkit.examples::ScaledGelu" and out["torch"] < 1e-5
    assert out["info"]["ort_api_version"] == 21
    import zipfile

    import scipy_openblas32

    with zipfile.ZipFile(wheel) as z:  # LinearAct links OpenBLAS: the wheel requires its package
        meta = z.read("h4_test_ops-1.2.3.dist-info/METADATA").decode()
    assert f"Requires-Dist: scipy-openblas32>={scipy_openblas32.__version__}" in meta.splitlines(), meta[:800]
    docs = out["docs"]
    assert "## opkit.examples::ScaledGelu" in docs and "GELU(x) * alpha, exact (erf) form." in docs
    assert "| `alpha` | `float` | `1.0` |" in docs and "float32, float64" in docs
    uninst = subprocess.run([str(py), "-m", "pip", "uninstall", "-y", "h4_test_ops"], capture_output=True, text=True)
    assert uninst.returncode == 0, uninst.stderr  # pip checked the RECORD
    assert not list((venv / "lib").glob("python*/site-packages/h4_test_ops"))


# -- opkit export --decompose ---------------------------------------------------------------------------

def test_decomposed_export_runs_in_stock_onnxruntime(gelu, tmp_path):
    import onnx
    import onnxruntime as ort

    _, model = gelu
    p = run_opkit("export", "examples/gelu_mlp.py", "--decompose", "-o", str(tmp_path / "dec.onnx"), cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert "decomposed: opkit.examples::ScaledGelu" in p.stdout and "PASS" in p.stdout
    m = onnx.load(tmp_path / "dec.onnx")
    assert {n.domain for n in m.graph.node} <= {"", "ai.onnx"}
    assert not (tmp_path / "dec.onnx.data").exists()  # external data folded in
    sess = ort.InferenceSession(str(tmp_path / "dec.onnx"), providers=["CPUExecutionProvider"])  # no library
    x = np.random.default_rng(3).standard_normal((13, 64)).astype(np.float32)  # another batch size
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], _torch_out(model, x), rtol=1e-4, atol=1e-5)


def test_decompose_names_the_op_whose_reference_does_not_export(tmp_path):
    ws = tmp_path / "ws"
    (ws / "ops" / "np_tanh").mkdir(parents=True)
    shutil.copytree(REPO / "ops" / "scaled_gelu", ws / "ops" / "scaled_gelu")
    (ws / "ops" / "np_tanh" / "spec.py").write_text(textwrap.dedent('''
        import math
        import torch
        import opkit
        from opkit import Tensor

        @opkit.op("NpTanh", domain="com.h4test", shapes={"y": "x"})
        def np_tanh(x: Tensor["float32"]) -> Tensor["float32"]:
            """tanh through Python floats: runs eagerly, cannot be traced (data leaves the tensor)."""
            return torch.tensor([math.tanh(v) for v in x.flatten().tolist()]).reshape(x.shape)

        @np_tanh.register_fake
        def _(x):
            return torch.empty_like(x)
    '''))
    (ws / "model.py").write_text(textwrap.dedent('''
        import torch
        from ops.np_tanh.spec import np_tanh
        from ops.scaled_gelu.spec import scaled_gelu

        class M(torch.nn.Module):
            def forward(self, x):
                return np_tanh(scaled_gelu(x, alpha=2.0))

        model = M()
        example_inputs = (torch.randn(4, 8),)
    '''))
    p = run_opkit("export", "model.py", "--decompose", "-o", str(tmp_path / "m.onnx"), cwd=ws)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "decomposed: opkit.examples::ScaledGelu" in p.stdout
    assert "NOT decomposed: com.h4test::NpTanh: its reference does not export" in p.stdout
    assert "still has custom nodes: com.h4test::NpTanh" in p.stderr and "Traceback (most" not in p.stderr
