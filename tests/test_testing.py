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
OPS = ["off_by_one", "null_deref", "infinite_loop", "wrong_shape", "abort_on_empty", "first_row", "crash_without_bias"]
TABLE_LOOKUP = REPO / "tests" / "fixtures" / "table_lookup"  # the op of issue 10, with a correct kernel


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


# ---- the element budget, valid= retries and coverage (issue 10's op, no compiler) -----------------------

@pytest.fixture(scope="module")
def table_lookup():
    import importlib.util

    s = importlib.util.spec_from_file_location("issue10_table_lookup_spec", TABLE_LOOKUP / "spec.py")
    mod = importlib.util.module_from_spec(s)
    s.loader.exec_module(mod)
    return mod.table_lookup


def _sizes(case) -> list[int]:
    import torch

    return [t.numel() for v in case.args.values() for t in (v if isinstance(v, list) else [v])
            if isinstance(t, torch.Tensor)]


def test_the_element_budget_shrinks_shapes_before_anything_is_made(table_lookup) -> None:
    import dataclasses

    import opkit.testing
    from opkit.errors import SpecError
    from opkit.testing.cases import fit_shapes, plan_cases
    from opkit.testing.constraints import MAX_CASE_ELEMENTS, MAX_ELEMENTS

    assert MAX_ELEMENTS == 4 * 2**20
    cfg = table_lookup.test_config
    plans = plan_cases(table_lookup)
    large = next(p for p in plans if p.label == "large")
    # without a budget, the large template goes into both table and index: 270 million elements per extra
    unbounded = dataclasses.replace(cfg, max_elements=10**12, max_case_elements=10**12)
    shapes, shrunk = fit_shapes(table_lookup.spec, unbounded, large, large.attrs)
    assert not shrunk and shapes["extras"] == (257 * 1031, 1031)
    t0 = time.perf_counter()
    cases = opkit.testing.generate_cases(table_lookup)
    assert time.perf_counter() - t0 < 20
    big = next(c for c in cases if c.label.startswith("large"))
    assert "shrunk to the element budget" in big.label and big.skipped is None
    for c in cases:
        assert max(_sizes(c), default=0) <= MAX_ELEMENTS and sum(_sizes(c)) <= MAX_CASE_ELEMENTS, c.label
    assert max(_sizes(big)) > MAX_ELEMENTS // 4  # shrunk to fit, not to nothing
    # configurable per op
    try:
        table_lookup.constrain(max_elements=1000, max_case_elements=2500)
        for c in opkit.testing.generate_cases(table_lookup):
            assert max(_sizes(c), default=0) <= 1000 and sum(_sizes(c)) <= 2500, c.label
    finally:
        table_lookup.test_config = cfg
    with pytest.raises(SpecError, match="max_elements"):
        table_lookup.constrain(max_elements=0)


def test_valid_tries_the_other_listed_attribute_values_and_the_report_names_holes(table_lookup) -> None:
    import dataclasses

    import opkit.testing
    from opkit.testing.cases import plan_cases
    from opkit.testing.coverage import coverage
    from opkit.testing.report import OpResult

    def result(cases) -> OpResult:
        ran = {c.extra["id"] for c in cases if not c.skipped}
        return OpResult("TableLookup", "test.issue10::TableLookup", cases=len(cases), passed=len(ran),
                        skipped=len(cases) - len(ran), coverage=coverage(table_lookup, plan_cases(table_lookup),
                                                                         cases, ran))

    cases = opkit.testing.generate_cases(table_lookup)
    absent = [c for c in cases if c.args["bias"] is None]
    assert absent and all(c.skipped is None for c in absent)  # the first listed weights did not fit: others did
    assert all(c.args["weights"] == [0.5, -2.0] for c in absent)
    made = [c for c in cases if not c.skipped]
    assert all(len(c.args["weights"]) == len(c.args["extras"]) for c in made)
    assert {len(c.args["extras"]) for c in made} == {1, 2, 3}
    for c in made:
        table_lookup(**c.args)  # valid for the reference
    full = result(cases)
    skipped = sum(1 for c in cases if c.skipped)
    assert full.holes == [] and full.result() == f"ok ({skipped} of {len(cases)} case(s) skipped by valid=)"

    # with only one listed weights value, most cases are skipped by valid=: the report says what never ran
    cfg = table_lookup.test_config
    try:
        table_lookup.test_config = dataclasses.replace(cfg, attrs={**cfg.attrs, "weights": [[1.5]]})
        holes = result(opkit.testing.generate_cases(table_lookup))
    finally:
        table_lookup.test_config = cfg
    assert holes.holes == ["bias never absent", "extras never with 2 or 3 tensor(s)", "reduce='mean' never run",
                           "NaN/Inf case never run"]
    assert holes.ok and not holes.complete
    assert holes.result().startswith("ok (incomplete: bias never absent, extras never with 2 or 3 tensor(s), ")
    assert holes.result().endswith(f"{holes.coverage.skipped_by_valid} of {holes.cases} case(s) skipped by valid=)")


# ---- end to end: the broken kernels ---------------------------------------------------------------

@pytest.fixture(scope="module")
def broken_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = new_workspace(tmp_path_factory.mktemp("broken"), "Placeholder", "test.broken")
    shutil.rmtree(ws / "ops" / "placeholder")
    for name in OPS:
        shutil.copytree(BROKEN / name, ws / "ops" / name)
    p = run_opkit("build", "-v", "--runtime", "onnxruntime", cwd=ws)  # what opkit test runs (ORT only)
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

    # a crash only when the optional bias is absent, behind a valid= that rejects the first listed weights:
    # caught by default (valid= made the generator try the other weights, so bias-absent cases ran)
    cwb = _op(report, "CrashWithoutBias")
    assert cwb["failures"] and all(f["label"].startswith("bias absent") for f in cwb["failures"])
    assert all(f["kind"] == "crash" and "SIGSEGV" in f["problem"] for f in cwb["failures"])
    assert "bias=absent" in cwb["failures"][0]["inputs"] and not cwb["ok"]
    assert "OffByOne" in p.stdout and "FAIL" in p.stdout and "rerun: opkit test OffByOne --case" in p.stdout


@pytest.mark.e2e
def test_the_html_report_lists_every_case_and_each_failure_with_its_inputs_and_rerun(broken_ws: Path,
                                                                                     broken_report) -> None:
    from markupsafe import escape  # as the page's templates escape

    _, report = broken_report
    page = (broken_ws / "report.html").read_text()
    assert page == (broken_ws / "build" / "test" / "report.html").read_text()  # also kept in build/test/
    for op in report["ops"]:
        assert f'<span class="mono">{op["name"]}</span>' in page
        for f in op["failures"]:
            assert str(escape(f["repro"])) in page and str(escape(f["inputs"])) in page
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
        proc = subprocess.Popen([sys.executable, "-m", "opkit", "build", "--runtime", "onnxruntime"], cwd=broken_ws,
                                stdout=subprocess.PIPE,
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
def test_sanitize_finds_the_same_write_inside_openvino(oob_ws: Path) -> None:
    """--sanitize runs in OpenVINO too: its TBB must not load libtbbbind with RTLD_DEEPBIND (ASan refuses it;
    TBB_ENABLE_SANITIZERS=1) and libstdc++ is preloaded with libasan (Python does not link it, and the first
    exception OpenVINO throws would stop ASan's __cxa_throw interceptor)."""
    pytest.importorskip("openvino", reason="the openvino package is not installed (pip install 'opkit[openvino]')")
    p = run_opkit("test", "--sanitize", "--runtime", "openvino", "--json", "asan-ov.json", cwd=oob_ws)
    assert p.returncode == 1, p.stdout + p.stderr
    assert (oob_ws / "build" / "asan" / "lib" / "libopkit_openvino.so").is_file()
    op = json.loads((oob_ws / "asan-ov.json").read_text())["ops"][0]
    assert op["runtime"] == "openvino" and op["passed"] > 0  # n == 0 cases pass, in a fresh child after each death
    assert {f["kind"] for f in op["failures"]} == {"sanitizer"}
    f = op["failures"][0]
    assert "in openvino" in f["problem"] and "AddressSanitizer: heap-buffer-overflow (WRITE of size 4)" in f["problem"]
    assert f["where"] == "ops/oob_write/oob_write.cc:14" and "--runtime openvino --sanitize" in f["repro"]


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


# ---- issue 10's op with a correct kernel: seconds, complete; holes, --strict; concurrent runs ------------

ISSUE_MODEL = """\
import torch
from ops.table_lookup.spec import table_lookup


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)

    def forward(self, table, index, e1, e2):
        rows = table_lookup(self.fc(table), index, None, [e1, e2], [0.5, -2.0], "sum")
        return {"rows": rows, "pair": (rows * 2, rows.sum(1))}


torch.manual_seed(0)
model = Net().eval()
example_inputs = (torch.randn(5, 6), torch.tensor([0, 4, 2]), torch.randn(3, 6), torch.randn(3, 6))
"""

NO_OP_MODEL = """\
import torch

model = torch.nn.Linear(4, 2).eval()
example_inputs = (torch.randn(3, 4),)
"""


@pytest.fixture(scope="module")
def issue_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = new_workspace(tmp_path_factory.mktemp("issue10"), "Placeholder", "test.issue10")
    shutil.rmtree(ws / "ops" / "placeholder")
    shutil.copytree(TABLE_LOOKUP, ws / "ops" / "table_lookup")
    (ws / "model.py").write_text(ISSUE_MODEL)
    (ws / "no_op_model.py").write_text(NO_OP_MODEL)
    p = run_opkit("build", "-v", "--runtime", "onnxruntime", cwd=ws)  # what these tests run (ORT only)
    assert p.returncode == 0, p.stderr
    assert "warning:" not in p.stderr  # the fixture compiles cleanly at -Wall -Wextra
    return ws


@pytest.mark.e2e
def test_issue_op_tests_in_seconds_and_strict_fails_on_coverage_holes(issue_ws: Path) -> None:
    ws = issue_ws
    p = run_opkit("test", "--json", "r.json", cwd=ws)
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads((ws / "r.json").read_text())
    (op,) = report["ops"]
    assert op["ok"] and op["complete"] and op["holes"] == [] and report["complete"]
    assert op["failed"] == 0 and op["passed"] == op["cases"] - op["skipped"] >= 15
    assert report["seconds"] < 60, report["seconds"]  # 85 s for 12 cases before the element budget
    assert "TableLookup" in p.stdout and p.stdout.rstrip().endswith("PASS")

    # only one weights value listed: valid= rejects most cases; ok, but incomplete, and --strict fails
    spec = ws / "ops" / "table_lookup" / "spec.py"
    original = spec.read_text()
    try:
        spec.write_text(original + '\ntable_lookup.constrain(attrs={"weights": [[1.5]]})\n')
        p = run_opkit("test", "--json", "r.json", cwd=ws)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "ok (incomplete: bias never absent, extras never with 2 or 3 tensor(s)" in p.stdout
        assert "PASS (incomplete: 1 op(s)" in p.stdout
        report = json.loads((ws / "r.json").read_text())
        assert report["ok"] and not report["complete"] and not report["strict"]
        assert "bias never absent" in report["ops"][0]["holes"] and report["ops"][0]["skipped_by_valid"] > 0
        p = run_opkit("test", "--strict", "--json", "r.json", cwd=ws)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "FAIL (--strict: 1 op(s) incomplete)" in p.stdout and "Traceback" not in p.stderr
        report = json.loads((ws / "r.json").read_text())
        assert not report["ok"] and report["strict"] and report["ops"][0]["holes"]
    finally:
        spec.write_text(original)


def _opkit_popen(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "opkit", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.e2e
@pytest.mark.slow
def test_concurrent_runs_wait_for_each_other_and_keep_their_own_numbers(issue_ws: Path) -> None:
    ws = issue_ws
    # two verify runs of one model at once: one waits (they share build/verify/model/), both report their run
    runs = [_opkit_popen("verify", "model.py", "--no-native", "--json", f"v{k}.json", cwd=ws) for k in (0, 1)]
    outs = [r.communicate(timeout=600) for r in runs]
    for r, (out, err) in zip(runs, outs):
        assert r.returncode == 0, out + err
    assert sum("waiting for another opkit verify of model.py in this workspace to finish (pid" in err
               for _, err in outs) == 1, [err for _, err in outs]
    reports = [json.loads((ws / f"v{k}.json").read_text()) for k in (0, 1)]
    assert all(r["ok"] for r in reports)
    assert [[(o["label"], o["max_abs"]) for o in run["outputs"]] for run in reports[0]["runs"]] == \
        [[(o["label"], o["max_abs"]) for o in run["outputs"]] for run in reports[1]["runs"]]
    # outputs named as the model returns them, the ONNX name beside
    assert reports[0]["outputs"] == ["rows", "pair[0]", "pair[1]"]
    first = reports[0]["runs"][0]["outputs"]
    assert [o["label"] for o in first] == ["rows", "pair[0]", "pair[1]"] and all(o["name"] for o in first)
    assert f"rows ({first[0]['name']})" in outs[0][0] + outs[1][0]

    # a build that would rewrite the library waits until the running opkit test is done with it
    kernel = ws / "ops" / "table_lookup" / "table_lookup.cc"
    good = kernel.read_text()
    test = _opkit_popen("test", "--json", "t.json", cwd=ws)
    seen = ""
    while "case(s)" not in seen:  # the test has built (or found) its library and holds it
        line = test.stderr.readline()
        assert line, seen
        seen += line
    kernel.write_text(kernel.read_text() + "// touched: the next build recompiles\n")
    build = run_opkit("build", "--runtime", "onnxruntime", cwd=ws)  # the library the test holds
    out, err = test.communicate(timeout=600)
    assert build.returncode == 0 and test.returncode == 0, build.stderr + out + err
    assert "waiting for a running opkit test / opkit verify in this workspace to finish with the op library" \
        in build.stderr  # it waited for the shared lock the test holds until it is done
    assert json.loads((ws / "t.json").read_text())["ops"][0]["failed"] == 0

    # a wrong kernel: the failure names the output as the model returns it, and its ONNX name
    try:
        kernel.write_text(good.replace("out[i * d + j] = v;", "out[i * d + j] = v + T(0.5);"))
        p = run_opkit("verify", "model.py", "--no-native", cwd=ws)
        assert p.returncode == 1, p.stdout + p.stderr
        assert f"output 'rows' (ONNX '{first[0]['name']}', example inputs, onnxruntime) differs from PyTorch; " \
               "ops involved: " \
               "test.issue10::TableLookup" in p.stdout, p.stdout
    finally:
        kernel.write_text(good)

    # a model that calls no opkit op passes, and says so
    p = run_opkit("verify", "no_op_model.py", "--no-native", "--json", "n.json", cwd=ws)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "the model calls no opkit op" in p.stdout
    report = json.loads((ws / "n.json").read_text())
    assert report["ok"] and report["calls_opkit_ops"] is False and report["ops"] == []
    assert any("calls no opkit op" in n for n in report["notes"]) and report["outputs"] == ["output"]
