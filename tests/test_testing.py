"""opkit test: case generation and constraints (fast), and end-to-end on deliberately broken kernels
(tests/fixtures/broken/), each caught by the right mechanism; crash isolation, sanitizers, the
reproduction command, the glue's rank checks, the build lock and an interrupted build."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, new_workspace, run_opkit

BROKEN = REPO / "tests" / "fixtures" / "broken"
OPS = ["off_by_one", "null_deref", "infinite_loop", "wrong_shape", "abort_on_empty", "first_row"]


# ---- fast: generation and constraints -----------------------------------------------------------

def _spec_module(tmp_path: Path, body: str):
    import importlib.util

    f = tmp_path / f"spec_{abs(hash(body))}.py"
    f.write_text("import torch\nimport opkit\nfrom opkit import Tensor\n" + body)
    s = importlib.util.spec_from_file_location(f.stem, f)
    mod = importlib.util.module_from_spec(s)
    s.loader.exec_module(mod)
    return mod


SEGMENT = '''
@opkit.op("SegSumT", domain="test.h3", types={"T": ("float32", "float64")}, shapes={"y": ("num_segments", "data[1:]")})
def seg_sum_t(data: Tensor["T"], ids: Tensor["int64"], bias: Tensor["T"] | None = None, num_segments: int = 4,
              scale: float = 1.0) -> Tensor["T"]:
    out = torch.zeros((num_segments, *data.shape[1:]), dtype=data.dtype).index_add_(0, ids, data) * scale
    return out if bias is None else out + bias

seg_sum_t.constrain(shapes={"ids": ("data[0]",), "bias": ("num_segments", "data[1:]")},
                    values={"ids": (0, "num_segments")}, sorted=("ids",), attrs={"num_segments": [4, 1, 9]},
                    ranks={"data": (1, 3)})
'''


def test_generated_cases_follow_the_constraints_and_the_seed(tmp_path: Path) -> None:
    import torch

    import opkit.testing

    op = _spec_module(tmp_path, SEGMENT).seg_sum_t
    cases = opkit.testing.generate_cases(op, seed=3)
    labels = {c.label for c in cases}
    assert {"empty", "zero-size dim", "large", "bias absent", "num_segments=9", "NaN/+Inf/-Inf"} <= labels
    assert {tuple(sorted(c.combo.items())) for c in cases} == {(("T", "float32"),), (("T", "float64"),)}
    for c in cases:
        assert c.skipped is None, (c.label, c.skipped)
        data, ids, n = c.args["data"], c.args["ids"], c.args["num_segments"]
        assert 1 <= data.dim() <= 3
        assert ids.shape == (data.shape[0],) and ids.dtype == torch.int64
        assert ids.numel() == 0 or (0 <= int(ids.min()) and int(ids.max()) < n)
        assert torch.equal(ids, torch.sort(ids).values)
        if c.args["bias"] is not None:
            assert c.args["bias"].shape == (n, *data.shape[1:])
        op(**c.args)  # valid for the reference
    again = opkit.testing.generate_cases(op, seed=3)
    assert len(again) == len(cases)
    assert all(torch.allclose(a.args["data"], b.args["data"], rtol=0, atol=0, equal_nan=True)
               for a, b in zip(cases, again))
    other = opkit.testing.generate_cases(op, seed=4)
    assert not torch.equal(cases[3].args["data"], other[3].args["data"])
    nan = next(c for c in cases if c.label == "NaN/+Inf/-Inf")
    assert bool(torch.isnan(nan.args["data"]).any()) and bool(torch.isinf(nan.args["data"]).any())


def test_constraint_errors_point_at_the_spec(tmp_path: Path) -> None:
    from opkit.errors import SpecError

    body = '''
@opkit.op("BadC", domain="test.h3", types={"T": ("float32",)}, shapes={"y": "x"})
def bad_c(x: Tensor["T"]) -> Tensor["T"]:
    return x * 2

bad_c.constrain(shapes={"w": ("x[0]",)})
'''
    with pytest.raises(SpecError) as e:
        _spec_module(tmp_path, body)
    assert "'w' is not a tensor input of BadC" in str(e.value) and ".py:" in str(e.value)


def test_custom_samples_and_sanitizer_report_parsing(tmp_path: Path) -> None:
    import opkit.testing
    from opkit.testing.sanitize import parse_report

    body = '''
@opkit.op("Uniq", domain="test.h3", types={"T": ("int64",)})
def uniq(x: Tensor["T"]) -> Tensor["T"]:
    return torch.unique_consecutive(x)

@uniq.samples
def _(s):
    for n in (0, 1, 9):
        yield s.sample(s.randint((n,), 0, 3, "T"), label=f"n={n}")

uniq.constrain(generate=False)
'''
    op = _spec_module(tmp_path, body).uniq
    cases = opkit.testing.generate_cases(op)
    assert [c.label for c in cases] == ["custom sample 0: n=0", "custom sample 1: n=1", "custom sample 2: n=9"]
    assert [c.extra["id"] for c in cases] == ["0.0", "0.1", "0.2"]
    text = ("==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x1\nWRITE of size 4 at 0x1 thread T0\n"
            "    #0 0x7f in void f<float>() /ws/ops/k/k.cc:14\n    #1 0x7f in g() /ws/build/generated/src/k.glue.cc:86\n")
    r = parse_report(text, Path("/ws"))
    assert r.summary == "AddressSanitizer: heap-buffer-overflow (WRITE of size 4)" and r.where == "ops/k/k.cc:14"
    assert parse_report("all fine", None) is None


# ---- end to end: the broken kernels ---------------------------------------------------------------

@pytest.fixture(scope="module")
def broken_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = new_workspace(tmp_path_factory.mktemp("broken"), "Placeholder", "test.broken")
    shutil.rmtree(ws / "ops" / "placeholder")
    for name in OPS:
        shutil.copytree(BROKEN / name, ws / "ops" / name)
    p = run_opkit("build", "-v", cwd=ws)
    assert p.returncode == 0, p.stderr
    assert "warning:" not in p.stderr  # the fixtures compile cleanly at -Wall -Wextra
    return ws


@pytest.fixture(scope="module")
def broken_report(broken_ws: Path) -> tuple[subprocess.CompletedProcess, dict]:
    p = run_opkit("test", "--timeout", "2", "--json", "report.json", "--html", "report.html", cwd=broken_ws)
    return p, json.loads((broken_ws / "report.json").read_text())


def _op(report: dict, name: str) -> dict:
    return next(o for o in report["ops"] if o["name"] == name)


@pytest.mark.e2e
def test_each_broken_kernel_is_caught_by_the_right_mechanism(broken_report) -> None:
    p, report = broken_report
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    assert "case(s) run in ONNX Runtime" in p.stderr  # progress

    off = _op(report, "OffByOne")
    assert {f["kind"] for f in off["failures"]} == {"values"}
    failed = {f["label"] for f in off["failures"]}
    assert {"one element", "rank 1", "primes"} <= failed  # sizes 1, 7, 221: not multiples of 4
    assert not failed & {"empty", "highest rank"}  # sizes 0 and 120 pass
    one = next(f for f in off["failures"] if f["label"] == "rank 1")
    assert "worst at index [6] (flat 6 of 7)" in one["problem"]

    shape = _op(report, "WrongShape")
    assert {f["kind"] for f in shape["failures"]} == {"shape"}
    assert any("the kernel made shape [30], the fake implementation says [2, 3, 5]" in f["problem"]
               for f in shape["failures"])
    assert {f["label"] for f in shape["failures"]}.isdisjoint({"rank 1", "one element", "empty"})

    null = _op(report, "NullDeref")
    assert [(f["label"], f["kind"]) for f in null["failures"]] == [("large", "crash")]
    assert "SIGSEGV" in null["failures"][0]["problem"] and null["passed"] == null["cases"] - 1

    loop = _op(report, "InfiniteLoop")
    assert {f["label"] for f in loop["failures"]} == {"one element", "one element, high rank"}
    assert all(f["kind"] == "timeout" and "after 2 s" in f["problem"] for f in loop["failures"])

    abort = _op(report, "AbortOnEmpty")
    assert {f["label"] for f in abort["failures"]} == {"empty", "zero-size dim"}
    assert all("SIGABRT" in f["problem"] for f in abort["failures"])

    assert _op(report, "FirstRow")["ok"]
    assert "OffByOne" in p.stdout and "FAIL" in p.stdout and "rerun: opkit test OffByOne --case" in p.stdout


@pytest.mark.e2e
def test_the_html_report_lists_every_case_and_each_failure_with_its_inputs_and_rerun(broken_ws: Path,
                                                                                     broken_report) -> None:
    import html

    _, report = broken_report
    page = (broken_ws / "report.html").read_text()
    assert page == (broken_ws / "build" / "test" / "report.html").read_text()  # also kept in build/test/
    for op in report["ops"]:
        assert f'<span class="mono">{op["name"]}</span>' in page
        for f in op["failures"]:
            assert html.escape(f["repro"]) in page and html.escape(f["inputs"]) in page
    assert page.count('<tr class="case ') == sum(op["cases"] for op in report["ops"])
    assert page.count('<tr class="case failed">') == sum(op["failed"] for op in report["ops"])
    from browser import find_chromium
    from test_report_html import check_in_browser_no_graph

    if find_chromium() is None:
        pytest.skip("no chromium on PATH: the report was written and checked, but not rendered in a browser")
    assert check_in_browser_no_graph(broken_ws / "report.html", "tr.case.failed") == \
        sum(op["failed"] for op in report["ops"])


@pytest.mark.e2e
def test_the_rerun_command_reproduces_exactly_that_case(broken_ws: Path, broken_report) -> None:
    _, report = broken_report
    f = next(f for f in _op(report, "OffByOne")["failures"] if f["label"] == "primes")
    argv = shlex.split(f["repro"])
    assert argv[:2] == ["opkit", "test"]
    p = run_opkit(*argv[1:], "--json", "one.json", cwd=broken_ws)
    assert p.returncode == 1
    again = json.loads((broken_ws / "one.json").read_text())["ops"][0]
    assert again["cases"] == 1 and again["failures"][0]["problem"] == f["problem"]
    assert again["failures"][0]["inputs"] == f["inputs"] == "T=float32 x=13x17"


@pytest.mark.e2e
def test_the_glue_refuses_a_model_input_of_too_small_rank(broken_ws: Path) -> None:
    lib = broken_ws / "build" / "release" / "lib" / "libopkit_ops.so"
    code = f'''
import numpy as np, onnxruntime as ort
from onnx import helper, TensorProto
node = helper.make_node("FirstRow", ["x"], ["y"], domain="test.broken")
g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("test.broken", 1)],
                      ir_version=10)
so = ort.SessionOptions(); so.log_severity_level = 4; so.register_custom_ops_library({str(lib)!r})
s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
for shape in ([5], []):
    try:
        s.run(None, {{"x": np.ones(shape, np.float32)}})
        print("ran")
    except Exception as e:
        print("error:", str(e).split("Status Message: ")[-1])
'''
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "error: test.broken::FirstRow: input 'x' has rank 1; the output shape needs its dim 1",
        "error: test.broken::FirstRow: input 'x' has rank 0; the output shape needs its dim 1"]


@pytest.mark.e2e
def test_build_lock_waits_with_a_message(broken_ws: Path) -> None:
    from opkit.build.lock import build_lock

    with build_lock(broken_ws / "build"):
        proc = subprocess.Popen([sys.executable, "-m", "opkit", "build"], cwd=broken_ws, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert proc.poll() is None  # blocked while this process holds the lock
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "waiting for another opkit build in this workspace to finish (pid" in err


# ---- sanitizers, an interrupted build, user files ---------------------------------------------------

@pytest.fixture(scope="module")
def oob_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = new_workspace(tmp_path_factory.mktemp("oob"), "Placeholder", "test.broken")
    shutil.rmtree(ws / "ops" / "placeholder")
    shutil.copytree(BROKEN / "oob_write", ws / "ops" / "oob_write")
    return ws


@pytest.mark.e2e
def test_sanitize_reports_the_out_of_bounds_write_with_file_and_line(oob_ws: Path) -> None:
    p = run_opkit("test", "--sanitize", "--json", "asan.json", cwd=oob_ws)
    assert p.returncode == 1, p.stderr
    assert (oob_ws / "build" / "asan" / "lib" / "libopkit_ops.so").is_file()
    op = json.loads((oob_ws / "asan.json").read_text())["ops"][0]
    kinds = {f["kind"] for f in op["failures"]}
    assert kinds == {"sanitizer"}
    f = op["failures"][0]
    assert "AddressSanitizer: heap-buffer-overflow (WRITE of size 4)" in f["problem"]
    assert f["where"] == "ops/oob_write/oob_write.cc:14"
    assert "--sanitize" in f["repro"]
    assert {f["label"] for f in op["failures"]}.isdisjoint({"empty", "zero-size dim"})  # n == 0 writes nothing
    assert "at: ops/oob_write/oob_write.cc:14" in p.stdout


@pytest.mark.e2e
def test_a_killed_build_is_repaired_by_the_next_and_user_files_survive(oob_ws: Path) -> None:
    kernel = oob_ws / "ops" / "oob_write" / "oob_write.cc"
    before = kernel.read_bytes(), (oob_ws / "ops" / "oob_write" / "spec.py").read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "opkit", "build", "-v"], cwd=oob_ws, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "Building CXX object" in line or not line:
            break
    os.killpg(proc.pid, signal.SIGKILL)  # the build and its compilers, mid-compile
    proc.wait()
    assert "Building CXX object" in seen, seen
    assert not (oob_ws / "build" / "release" / "lib" / "libopkit_ops.so").exists()
    p = run_opkit("build", cwd=oob_ws)
    assert p.returncode == 0, p.stderr
    assert (oob_ws / "build" / "release" / "lib" / "libopkit_ops.so").is_file()
    assert not list((oob_ws / "build" / "generated").rglob("*.tmp"))
    again = run_opkit("build", cwd=oob_ws)
    assert again.returncode == 0 and "up to date" in again.stderr
    # `opkit new` never overwrites: the op exists, so it refuses and leaves both files as they were
    p = run_opkit("new", "OobWrite", "--domain", "test.broken", cwd=oob_ws)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert (kernel.read_bytes(), (oob_ws / "ops" / "oob_write" / "spec.py").read_bytes()) == before
