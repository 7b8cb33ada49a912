"""The user's unchanged kernels inside PyTorch (libopkit_torch.so): eager calls run the native kernel,
the reference stays the oracle; torch.compile keeps the op as one call; TorchScript and AOTInductor
files run in opkit-torch-runner (libtorch, no Python); a torch version mismatch is refused.

Heavy parts are built once per session: the repository's PyTorch op library and its C++ runner
(`torch_build`), into the session's shared build folder of the repository. Native code always runs in child
processes: a loaded op library cannot be unloaded, and the pytest process must keep running the references.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import REPO, broken_kernels_workspace, make_one_percent_off

FAKE_ELF = b"\x7fELF" + b"\0" * 60


def _child(script: str, tmp: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    import os

    path = tmp / "child.py"
    path.write_text(textwrap.dedent(script))
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(path)], cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def _native_child(script: str, torch_build: Path, tmp: Path) -> Any:
    """Run `script` (its {lib} is the repository's libopkit_torch.so from `torch_build`) in a child process;
    the JSON its last line prints."""
    lib = torch_build / "release" / "lib" / "libopkit_torch.so"
    p = _child(script.format(lib=str(lib)), tmp, env={"OPKIT_BUILD_DIR": str(torch_build)})
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---- fast: no compiler ---------------------------------------------------------------------------
def test_library_for_another_torch_version_is_refused(tmp_path):
    import torch

    from opkit.errors import LibraryVersionError
    from opkit.torchop.native import load_library

    lib = tmp_path / "libopkit_torch.so"
    record = {"opkit_version": "0.1.0", "torch_version": "2.9.1", "ops": []}
    lib.write_bytes(FAKE_ELF + b"OPKIT_TORCH_INFO" + json.dumps(record).encode() + b"\0")
    with pytest.raises(LibraryVersionError) as exc:
        load_library(lib)
    text = exc.value.render()
    assert "torch 2.9.1" in text and f"torch {torch.__version__}" in text
    assert "opkit build --torch" in text


def test_opkit_info_reads_the_torch_record_without_loading(tmp_path):
    lib = tmp_path / "libopkit_torch.so"
    record = {"opkit_version": "0.1.0", "torch_version": "2.9.1",
              "ops": [{"domain": "d", "name": "Op", "torch_op": "d::op", "signature": "op(x: Tensor) -> Tensor"}]}
    lib.write_bytes(FAKE_ELF + b"OPKIT_TORCH_INFO" + json.dumps(record).encode() + b"\0")
    p = subprocess.run([sys.executable, "-m", "opkit", "info", str(lib)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "torch:           2.9.1" in p.stdout and "d::Op (torch op d::op)" in p.stdout


def test_a_file_without_the_record_is_refused(tmp_path):
    from opkit.errors import OpkitError
    from opkit.torchop.native import load_library

    lib = tmp_path / "libother.so"
    lib.write_bytes(FAKE_ELF)
    with pytest.raises(OpkitError, match="not a PyTorch op library built by opkit"):
        load_library(lib)


def test_cpp_schemas_are_the_custom_ops_schemas():
    """The schemas library (for the C++ runners) defines exactly what torch.library.custom_op defines."""
    from opkit.build.specs import import_ops
    from opkit.build.workspace import Workspace
    from opkit.codegen.torch import render_torch_library

    ops = import_ops(Workspace(REPO))
    text = render_torch_library([op.spec for op in ops.values()], "2.13.0")["torch/schemas.cc"]
    for op in ops.values():
        schema = str(op.torch_op._opoverload._schema)  # "ns::name(Tensor x, ...) -> Tensor"
        assert f'm.def("{schema.split("::", 1)[1]}");' in text, schema


# ---- end to end: the repository's ops ----------------------------------------------------------
@pytest.fixture(scope="session")
def torch_build(repo_build_dir) -> Path:
    """The repo's workspace with its PyTorch op library, schemas library and C++ runner, built once, into the
    session's shared build folder (whose ONNX Runtime library, built for the torch kinds too, is up to date)."""
    build = repo_build_dir
    p = subprocess.run([sys.executable, "-c", "from pathlib import Path; from opkit.build.driver import build; "
                        "from opkit.build.workspace import Workspace; "
                        "print(build(Workspace(Path('.').resolve()), runtimes=['torch-cpp'], verbose=True).library_for('torch'))"],
                       cwd=REPO, env={**__import__("os").environ, "OPKIT_BUILD_DIR": str(build)},
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Building CXX object" in p.stderr  # verbose: the compiler's output is in stderr
    assert "warning:" not in p.stderr, p.stderr[-3000:]  # the generated glue and runner compile warning-free
    return build


EAGER_CHECK = """
    import json, sys, torch
    from pathlib import Path
    import opkit
    from opkit.build.specs import import_ops
    from opkit.build.workspace import Workspace
    from opkit.testing.driver import make_cases
    from opkit.spec.dtypes import DTYPES

    ops = import_ops(Workspace(Path('.').resolve()))
    opkit.load_native(sys.argv[1] if len(sys.argv) > 1 else {lib!r})
    report = {{}}
    for folder, op in sorted(ops.items()):
        rows = report.setdefault(op.spec.name, {{"cases": 0, "dtypes": set(), "bad": []}})
        for c in make_cases(op, seed=0):
            if c.skipped:
                continue
            args = [c.args[n] for n in op.spec.param_order]
            try:
                want = op.reference(**c.args)
            except Exception:
                continue  # inputs the reference refuses (opkit test reports those)
            try:
                got = op(**c.args)
            except Exception as exc:
                rows["bad"].append(f"{{c.label}}: {{exc}}")
                continue
            want = want if isinstance(want, tuple) else (want,)
            got = got if isinstance(got, tuple) else (got,)
            rows["cases"] += 1
            for w, g in zip(want, got):
                dt = DTYPES[str(w.dtype).removeprefix("torch.")]
                rows["dtypes"].add(dt.name)
                if g.dtype != w.dtype or g.shape != w.shape:
                    rows["bad"].append(f"{{c.label}}: {{g.dtype}}{{tuple(g.shape)}} vs {{w.dtype}}{{tuple(w.shape)}}")
                elif not torch.allclose(g.double(), w.double(), rtol=dt.rtol * 10, atol=dt.atol * 10, equal_nan=True):
                    rows["bad"].append(f"{{c.label}}: max diff {{(g.double() - w.double()).abs().max()}}")
    # the native kernel really runs: its own error for a dtype the spec does not allow
    sg = ops["scaled_gelu"]
    try:
        sg(torch.ones(3, dtype=torch.float16))
        native_error = None
    except RuntimeError as exc:
        native_error = str(exc)
    # torch.compile: the op stays one call in the graph
    graphs = []
    def backend(gm, example_inputs):
        graphs.append([str(n.target) for n in gm.graph.nodes if n.op == "call_function"])
        return gm.forward
    f = torch.compile(lambda x: sg(x, 1.5) * 2, backend=backend, fullgraph=True)
    x = torch.randn(64)
    compiled_ok = torch.allclose(f(x), sg.reference(x, 1.5) * 2, rtol=1e-5, atol=1e-6)
    # torch.library.opcheck with the native kernel registered
    opcheck = {{}}
    for folder in ("scaled_gelu", "weighted_sum", "top_k_last_axis", "linear_act"):
        op = ops[folder]
        c = next(c for c in make_cases(op, seed=0) if not c.skipped)
        res = torch.library.opcheck(op.torch_op._opoverload, tuple(c.args[n] for n in op.spec.param_order),
                                    test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_static"))
        opcheck[folder] = {{k: v for k, v in res.items()}}
    print(json.dumps({{"ops": {{k: {{**v, "dtypes": sorted(v["dtypes"])}} for k, v in report.items()}},
                      "native_error": native_error, "graphs": graphs, "compiled_ok": compiled_ok,
                      "opcheck": opcheck}}))
"""


@pytest.mark.e2e
@pytest.mark.slow
def test_bundled_ops_native_in_eager_match_their_references(torch_build, tmp_path):
    out = _native_child(EAGER_CHECK, torch_build, tmp_path)
    assert len(out["ops"]) == 8
    for name, rows in out["ops"].items():
        assert rows["cases"] >= 3, (name, rows)
        assert not rows["bad"], (name, rows["bad"][:5])
    # full signatures: 16-bit types, several outputs, data-dependent sizes, variadic, optional
    assert {"float16", "bfloat16"} <= set(out["ops"]["WeightedSum"]["dtypes"])
    assert "float16" in out["ops"]["RmsNorm"]["dtypes"]
    assert "int64" in out["ops"]["TopKLastAxis"]["dtypes"]
    assert "opkit.examples::ScaledGelu: no kernel for T=float16" in out["native_error"]
    assert out["compiled_ok"]
    (graph,) = out["graphs"]  # one graph (fullgraph=True) that calls the op once, not its reference's erf/mul
    assert [t for t in graph if "scaled_gelu" in t] == ["opkit_examples.scaled_gelu.default"], graph
    assert not any("erf" in t for t in graph), graph
    for folder, res in out["opcheck"].items():
        assert set(res.values()) == {"SUCCESS"}, (folder, res)


SAME_WEIGHT_OTHER_ATTRS = """
    import json, sys, torch
    from pathlib import Path
    import opkit
    from opkit.build.specs import import_ops
    from opkit.build.workspace import Workspace

    op = import_ops(Workspace(Path('.').resolve()))["linear_act"]
    opkit.load_native({lib!r})
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(s, generator=g) for s in ((4, 16), (8, 16), (8,)))
    errs = {{}}
    for act in ("relu", "gelu", "relu", "none"):  # one weight tensor: the prepared state must follow the attribute
        got, want = op(x, w, b, activation=act), op.reference(x, w, b, activation=act)
        errs[act] = max(errs.get(act, 0.0), float((got - want).abs().max()))
    print(json.dumps(errs))
"""


@pytest.mark.e2e
def test_prepared_state_follows_the_attributes_for_one_weight(torch_build, tmp_path):
    """The first-call prepare cache is keyed on the attributes too: LinearAct prepares its activation, so the
    same weight called with another activation must not reuse the first call's state."""
    errs = _native_child(SAME_WEIGHT_OTHER_ATTRS, torch_build, tmp_path)
    assert set(errs) == {"relu", "gelu", "none"} and all(e < 1e-4 for e in errs.values()), errs


DEVICE_CHECK = """
    import json, torch
    from pathlib import Path
    import opkit
    from opkit.build.specs import import_ops
    from opkit.build.workspace import Workspace

    import_ops(Workspace(Path('.').resolve()))
    opkit.load_native({lib!r})
    overload = torch.ops.opkit_examples.scaled_gelu.default
    errors = {{}}
    # No CUDA in this torch build: send CPU tensors to the kernel registered for CUDA, and a meta tensor to the
    # CPU kernel (what a tensor on another device would reach), through the dispatcher.
    for key, x in (("CUDA", torch.ones(3)), ("CPU", torch.ones(3, device="meta"))):
        try:
            overload.redispatch(torch._C.DispatchKeySet(getattr(torch._C.DispatchKey, key)), x, 1.0)
            errors[key] = None
        except RuntimeError as exc:
            errors[key] = str(exc)
    print(json.dumps(errors))
"""


@pytest.mark.e2e
def test_tensors_on_another_device_get_an_error_naming_the_op(torch_build, tmp_path):
    """The native kernels run on CPU tensors: a CUDA tensor (and any non-CPU tensor reaching the CPU kernel)
    gets an error that names the op, not a crash."""
    errors = _native_child(DEVICE_CHECK, torch_build, tmp_path)
    assert "opkit.examples::ScaledGelu: got CUDA tensors" in errors["CUDA"] and ".cpu()" in errors["CUDA"], errors
    assert "opkit.examples::ScaledGelu" in errors["CPU"] and "meta" in errors["CPU"], errors


PARALLEL_CHECK = """
    import json, os, time, torch
    from pathlib import Path
    import opkit
    from opkit.build.specs import import_ops
    from opkit.build.workspace import Workspace

    op = import_ops(Workspace(Path('.').resolve()))["linear_act"]
    opkit.load_native({lib!r})
    torch.set_num_threads(2)
    x, w, b = torch.randn(96, 2048), torch.randn(2048, 2048), torch.randn(2048)
    op(x, w, b)  # prepares (packs the weight) once
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(10):
        op(x, w, b)
    ratio = (time.process_time() - cpu) / (time.perf_counter() - wall)
    gomp = sorted({{line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line}})
    print(json.dumps({{"cpu_per_wall": ratio, "gomp": gomp, "torch_lib": os.path.dirname(torch.__file__)}}))
"""


@pytest.mark.e2e
@pytest.mark.skipif((__import__("os").cpu_count() or 1) < 2, reason="needs 2 CPUs")
def test_native_kernel_runs_on_torchs_intra_op_threads(torch_build, tmp_path):
    """ctx.parallel_for is at::parallel_for, which is inline OpenMP code: the library must be compiled with
    -fopenmp (else every kernel runs on one thread) and share torch's own libgomp (one OpenMP runtime)."""
    out = _native_child(PARALLEL_CHECK, torch_build, tmp_path)
    assert len(out["gomp"]) == 1 and out["gomp"][0].startswith(out["torch_lib"]), out
    assert out["cpu_per_wall"] > 1.4, out  # two threads busy (one thread: 1.0)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torchscript", "aoti"])
def test_cpp_runner_runs_the_model_file_with_the_native_kernel(torch_build, tmp_path, fmt):
    """gelu_mlp.py as .pt (torch.jit.trace) or .pt2 (AOTInductor, dynamic batch) in opkit-torch-runner,
    at the example batch and another one; equal to eager. Without the op library the runner fails,
    naming the op: the native kernel is what runs."""
    import torch

    from opkit.torchop.export import export_aoti, export_torchscript
    from opkit.verify.modelfile import load_model_file

    mf = load_model_file(REPO / "examples" / "gelu_mlp.py", REPO)
    path = tmp_path / ("model.pt" if fmt == "torchscript" else "model.pt2")
    if fmt == "torchscript":
        assert export_torchscript(mf.model, mf.example_inputs, path) == "trace"
    else:
        export_aoti(mf.model, mf.example_inputs, mf.dynamic_shapes, path, torch_build / "aoti-cache")
    runner = torch_build / "release" / "bin" / "opkit-torch-runner"
    libs = [torch_build / "release" / "lib" / n for n in ("libopkit_torch_schemas.so", "libopkit_torch.so")]
    cmd = [str(runner)] + [a for lib in libs for a in ("--library", str(lib))] + ["--model", str(path)]
    batches = [8, 3] if fmt == "aoti" else [8]
    for b in batches:
        (tmp_path / f"in{b}").mkdir()
        np.save(tmp_path / f"in{b}" / "0.npy", torch.randn(b, 64).numpy())
        cmd += ["--run", str(tmp_path / f"in{b}"), str(tmp_path / f"out{b}")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    for b in batches:
        x = torch.from_numpy(np.load(tmp_path / f"in{b}" / "0.npy"))
        with torch.no_grad():
            want = mf.model(x).numpy()
        got = np.load(tmp_path / f"out{b}" / "0.npy")
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # schemas only, no kernels: the dispatcher has nothing to run for the op
    bad = [str(runner), "--library", str(libs[0]), "--model", str(path), "--run", str(tmp_path / "in8"),
           str(tmp_path / "out_bad")]
    p = subprocess.run(bad, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "scaled_gelu" in p.stderr, p.stderr[-2000:]


# ---- the three runtimes catch a wrong kernel; a crash names the op -----------------------------
def _verify(root: Path, model: str, *runtimes: str, rc: int) -> tuple[subprocess.CompletedProcess, dict]:
    import os

    out = root / "report.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "opkit", "verify", model, "--json", str(out)]
    cmd += [a for r in runtimes for a in ("--runtime", r)]
    p = subprocess.run(cmd, cwd=root, env=dict(os.environ, OPKIT_BUILD_DIR=str(root / "build")),
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == rc, p.stdout[-3000:] + p.stderr[-3000:]
    return p, (json.loads(out.read_text()) if out.is_file() else {})


@pytest.mark.e2e
@pytest.mark.slow
def test_wrong_kernel_fails_under_each_torch_runtime_and_a_crash_names_the_op(tmp_path):
    root = broken_kernels_workspace(tmp_path / "ws")
    three = ("torch", "torchscript", "aoti")

    p, rep = _verify(root, "model.py", *three, rc=0)
    assert rep["ok"] and {r["name"] for r in rep["runtimes"]} == set(three)
    assert "compiled:" in p.stderr

    kernel = root / "ops" / "scaled_gelu" / "scaled_gelu.cc"
    make_one_percent_off(kernel)
    p, rep = _verify(root, "model.py", *three, rc=1)
    assert not rep["ok"]
    for rt in three:
        assert any(f"{rt})" in f and "opkit.examples::ScaledGelu" in f for f in rep["failures"]), (rt, rep["failures"])
    # the AOTInductor package is reused: the model did not change (the kernel lives in the library)
    assert "cached:" in p.stderr
    assert len(list((root / "build" / "torch-cache").glob("aoti-*.pt2"))) == 1

    for rt in ("torch", "torchscript"):
        p, _ = _verify(root, "crash.py", rt, rc=1)
        assert "Traceback" not in p.stderr
        assert "test.broken::NullDeref" in p.stderr and "SIGSEGV" in p.stderr, p.stderr[-3000:]


@pytest.mark.e2e
@pytest.mark.slow
def test_package_with_torch_library_runs_native_kernels(torch_build, tmp_path):
    """`opkit package --torch`: in a fresh venv, taking an op from the package loads libopkit_torch.so."""
    import os

    p = subprocess.run([sys.executable, "-m", "opkit", "package", "--torch", "--name", "t12-ops", "-o",
                        str(tmp_path / "dist")], cwd=REPO, env=dict(os.environ, OPKIT_BUILD_DIR=str(torch_build)),
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    wheel = Path(p.stdout.strip().splitlines()[-1])
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    inst = subprocess.run([str(py), "-m", "pip", "install", "--no-index", "--no-deps", "-q", str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr
    script = textwrap.dedent("""
        import torch
        from t12_ops import scaled_gelu
        x = torch.linspace(-3, 3, 101)
        assert (scaled_gelu(x, 2.0) - scaled_gelu.reference(x, 2.0)).abs().max() < 1e-5
        try:
            scaled_gelu(x.half())
        except RuntimeError as exc:
            print(exc)
    """)
    # opkit from this checkout (the venv's system site-packages may hold another one)
    run = subprocess.run([str(py), "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert run.returncode == 0, run.stderr
    assert "opkit.examples::ScaledGelu: no kernel for T=float16" in run.stdout  # the C++ glue answered


@pytest.mark.e2e
@pytest.mark.slow
def test_libtorch_example_app_runs_the_aoti_package(torch_build, tmp_path):
    """examples/cpp/libtorch: a user's own C++ program (AOTIModelPackageLoader + the op libraries)."""
    import torch
    import torch.utils

    from opkit.build.cmake import find_tools
    from opkit.torchop.export import export_aoti
    from opkit.verify.modelfile import load_model_file

    mf = load_model_file(REPO / "examples" / "gelu_mlp.py", REPO)
    pt2 = tmp_path / "gelu_mlp.pt2"
    export_aoti(mf.model, mf.example_inputs, mf.dynamic_shapes, pt2, torch_build / "aoti-cache")
    tools = find_tools()
    build = tmp_path / "app"
    c = subprocess.run([tools.cmake, "-S", str(REPO / "examples" / "cpp" / "libtorch"), "-B", str(build), "-G",
                        "Ninja", f"-DCMAKE_MAKE_PROGRAM={tools.ninja}", f"-DCMAKE_CXX_COMPILER={tools.cxx}",
                        f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"], capture_output=True, text=True)
    assert c.returncode == 0, c.stdout + c.stderr
    b = subprocess.run([tools.cmake, "--build", str(build)], capture_output=True, text=True)
    assert b.returncode == 0, b.stdout + b.stderr
    assert "warning" not in b.stdout.lower()
    exe = build / "gelu_mlp_aoti"
    lib_dir = torch_build / "release" / "lib"
    p = subprocess.run([str(exe), str(pt2), str(lib_dir), "5"], capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin"})  # a bare environment: no Python anywhere
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0] == "shape 5 32"
    got = np.array([float(v) for v in lines[1:] if v], dtype=np.float32).reshape(5, 32)
    x = torch.sin(torch.arange(5 * 64, dtype=torch.float32) * 0.01).reshape(5, 64)
    with torch.no_grad():
        want = mf.model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    bad = subprocess.run([str(exe), str(pt2), str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 1 and "cannot load" in bad.stderr


@pytest.mark.e2e
def test_opkit_test_runs_the_cases_on_the_native_kernel_in_torch(torch_build, tmp_path):
    """`opkit test --runtime torch`: the conformance cases (16-bit, variadic, empty tensors...) call the torch
    op on the native kernel, with torch.library.opcheck on each op's first case."""
    import os

    out = tmp_path / "report.json"
    p = subprocess.run([sys.executable, "-m", "opkit", "test", "WeightedSum", "UniqueConsecutive", "--runtime",
                        "torch", "--json", str(out)], cwd=REPO,
                       env=dict(os.environ, OPKIT_BUILD_DIR=str(torch_build)), capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rep = json.loads(out.read_text())
    ops = {o["name"]: o for o in rep["ops"]}
    assert set(ops) == {"WeightedSum", "UniqueConsecutive"}
    for o in ops.values():
        assert o["runtime"] == "torch" and o["failed"] == 0 and o["cases"] - o["skipped"] >= 5, o


@pytest.mark.e2e
def test_bench_in_torch_times_the_native_kernel_against_the_reference_and_the_baseline(torch_build, tmp_path):
    """`opkit bench --runtime torch`: the native kernel through torch's dispatcher, the reference and the spec's
    @baseline (LinearAct: F.linear + activation), each with the weights as constants, timed in one child."""
    import os

    out = tmp_path / "bench.json"
    p = subprocess.run([sys.executable, "-m", "opkit", "bench", "LinearAct", "--runtime", "torch", "--sizes", "8K",
                        "--dtype", "float32", "--threads", "1", "--budget", "0.3", "--json", str(out)], cwd=REPO,
                       env=dict(os.environ, OPKIT_BUILD_DIR=str(torch_build)), capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert rep["runtime"] == "torch"
    [row] = rep["rows"]
    assert "weight=5x4096(const)" in row["shapes"] and not row["errors"], row
    for col in ("native", "eager", "against"):
        assert row["stats"][col]["median_s"] > 0 and row["stats"][col]["rounds"] >= 5, row["stats"]
    assert set(row["ratios"]) >= {"native/eager", "native/against"}
