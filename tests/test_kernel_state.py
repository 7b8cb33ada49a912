"""The prepare stage and scratch memory (docs/kernel-state.md).

- spec: constant= / libraries= / flops= / bench(shapes=) are checked when the spec is parsed;
- C++ with no runtime: StateCache prepares once under concurrent first calls and again for a new key;
  the default Host's scratch is aligned and freed with the Host (LeakSanitizer watches);
- ONNX Runtime (e2e): the probe op Shift (tests/fixtures/state_ws) counts its prepare calls. With w and b
  initializers, prepare runs once per session, at creation; with w or b a graph input it runs in every
  call, with that call's values; scratch memory comes back (the process does not grow over many calls).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import opkit
from conftest import run_opkit
from opkit import Tensor
from opkit.codegen.render import render_library
from opkit.errors import SpecError

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "state_ws"
CXX = shutil.which("c++") or shutil.which("g++")


# ---- spec ------------------------------------------------------------------------------------

_count = [0]


def _op(**kw):
    _count[0] += 1

    def linear(x: Tensor["T"], weight: Tensor["T"], bias: Tensor["T"] | None = None,
               act: str = "relu") -> Tensor["T"]:
        return x

    return opkit.op(f"Lin{_count[0]}", domain="com.test.state", types={"T": ("float32",)}, **kw)(linear)


def test_constant_inputs_are_marked_in_the_spec():
    op = _op(constant=("weight", "bias"), flops="2 * x.numel() * weight[0]")
    assert [i.name for i in op.spec.constant_inputs] == ["weight", "bias"] and op.spec.has_prepare
    assert not op.spec.input("x").constant
    again = type(op.spec).from_dict(json.loads(json.dumps(op.spec.to_dict())))
    assert again == op.spec and again.flops == op.spec.flops
    assert not _op().spec.has_prepare


@pytest.mark.parametrize("kw, what", [
    ({"constant": ("wieght",)}, "constant= names 'wieght', which is not a tensor input"),
    ({"constant": ("x", "weight", "bias")}, "constant= names every tensor input"),
    ({"constant": ("weight", "weight")}, "constant= lists an input twice"),
    ({"libraries": ("openblass",)}, "libraries= names an unknown library 'openblass'"),
    ({"flops": "2 * x.numel() * wieght[0]"}, "flops= uses 'wieght', which is not an input or attribute"),
    ({"flops": "__import__('os')"}, "flops= uses '__import__'"),
    ({"bytes": "x.data_ptr()"}, "bytes=: unknown property .data_ptr"),
])
def test_spec_errors(kw, what):
    with pytest.raises(SpecError) as e:
        _op(**kw)
    assert what in e.value.what, e.value.render()


def test_bench_shapes_are_checked():
    op = _op(constant=("weight",))
    op.bench(shapes=[{"x": (1, 8), "weight": (4, 8)}])
    assert op.bench_shapes == [{"x": (1, 8), "weight": (4, 8)}]
    with pytest.raises(SpecError, match="'w' is not a tensor input"):
        op.bench(shapes=[{"w": (4, 8)}])
    with pytest.raises(SpecError, match="must be a tuple of ints"):
        op.bench(shapes=[{"x": (1, -8)}])


def test_work_expression():
    from opkit.spec.work import Dims, evaluate

    assert evaluate("2 * x.numel() * weight[0]", {"x": Dims((3, 8), 4), "weight": Dims((5, 8), 4)}, {}) == 240
    assert evaluate("x.nbytes + b.nbytes", {"x": Dims((2, 2), 8), "b": None}, {}) == 32


def test_prepare_in_the_generated_declaration():
    from opkit.build.specs import import_ops
    from opkit.build.workspace import Workspace

    spec = import_ops(Workspace(FIXTURE))["shift"].spec
    files = render_library([spec])
    head = files["include/shift.opkit.h"]
    assert "struct State;" in head
    assert "static State<T> prepare(const Attrs& attrs, const opkit::Input<T>& w, const opkit::Optional<T>& b);" in head
    assert "const State<T>& state, const opkit::Input<T>& x" in head
    glue = files["src/shift.glue.cc"]
    assert "KernelInfoGetConstantInput_tensor" not in glue  # lives in glue.h's ConstIo, once
    assert "cio.required<T>(1, \"w\", -1)" in glue and "cio.optional<T>(2, \"b\", -1)" in glue


# ---- C++, no runtime ---------------------------------------------------------------------------

PROGRAM = r'''
#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "opkit/kernel.h"

class TestHost final : public opkit::detail::Host {  // scratch: the base class's default
 public:
  void* allocate_output(size_t, const opkit::Shape&) override { return nullptr; }
  void run_parallel(size_t n, void (*task)(void*, size_t), void* arg) override {
    std::vector<std::thread> pool;
    for (size_t i = 0; i < n; ++i) pool.emplace_back(task, arg, i);
    for (auto& t : pool) t.join();
  }
  int num_threads() const override { return 4; }
};

struct State { int value; };

int main() {
  std::atomic<int> prepares{0};
  opkit::detail::StateCache<State> cache;
  std::vector<int64_t> key;
  opkit::detail::append_key(key, reinterpret_cast<const float*>(0x1000), opkit::Shape{4, 8});
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t)
    callers.emplace_back([&] {
      auto s = cache.get_or_prepare(key, [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return State{++prepares};
      });
      if (s->value != 1) ++wrong;
    });
  for (auto& c : callers) c.join();
  std::printf("first-call %d %d\n", prepares.load(), wrong.load());
  std::vector<int64_t> other;
  opkit::detail::append_key(other, reinterpret_cast<const float*>(0x2000), opkit::Shape{4, 8});
  auto s2 = cache.get_or_prepare(other, [&] { return State{++prepares}; });
  auto s3 = cache.get_or_prepare(other, [&] { return State{++prepares}; });
  std::printf("new-key %d %d %d\n", prepares.load(), s2->value, s3->value);
  opkit::detail::StateCache<State> fixed;
  fixed.set(State{42});
  auto s4 = fixed.get_or_prepare(key, [&] { return State{++prepares}; });
  std::printf("fixed %d %d %d\n", fixed.fixed() ? 1 : 0, fixed.get().value, s4->value);

  // One entry per layer (PyTorch's glue): up to `capacity`, the oldest dropped beyond that.
  opkit::detail::StateCache<State> table(2);
  int made = 0;
  auto key_of = [](uintptr_t a) {
    std::vector<int64_t> k;
    opkit::detail::append_key(k, reinterpret_cast<const void*>(a), opkit::Shape{3});
    return k;
  };
  for (uintptr_t a : {0x10, 0x20, 0x10, 0x20, 0x30, 0x20, 0x10})
    table.get_or_prepare(key_of(a), [&] { return State{++made}; });
  std::printf("table %d %zu\n", made, table.size());

  size_t misaligned = 0;
  {
    TestHost host;
    opkit::Context ctx(host, "test::Scratch");
    std::atomic<size_t> bad{0};
    ctx.parallel_for(1 << 16, [&](int64_t b, int64_t e) {
      float* p = ctx.scratch<float>(e - b + 3);
      if (reinterpret_cast<uintptr_t>(p) % 64) ++bad;
      for (int64_t i = b; i < e; ++i) p[i - b] = 1.0f;
    }, 100.0);
    misaligned = bad.load();
    double* big = ctx.scratch<double>(1 << 20);
    big[(1 << 20) - 1] = 1.0;
  }  // the Host frees every block here; LeakSanitizer reports any left at exit
  std::printf("scratch %zu\n", misaligned);

  // State memory: 64-byte aligned; 2 MB aligned from 2 MB up; moves hand the memory over; freed once.
  opkit::Buffer<float> none;
  opkit::Buffer<float> small(100), large((4 << 20) / sizeof(float) + 1);
  for (int64_t i = 0; i < large.size(); ++i) large[i] = static_cast<float>(i);
  const float* at = large.data();
  opkit::Buffer<float> moved(std::move(large));
  small = std::move(moved);  // frees the small block
  std::printf("buffer %d %d %d %d %lld %.0f %d\n", none ? 1 : 0,
              static_cast<int>(reinterpret_cast<uintptr_t>(opkit::Buffer<double>(3).data()) % 64),
              static_cast<int>(reinterpret_cast<uintptr_t>(at) % (2 << 20)), small.data() == at ? 1 : 0,
              static_cast<long long>(small.size()), small[small.size() - 1], large || moved ? 1 : 0);
  try {
    opkit::Buffer<float> bad(-1);
  } catch (const opkit::Error& e) {
    std::printf("%s\n", e.what());
  }
  return 0;
}
'''


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_state_cache_and_default_scratch(tmp_path):
    files = render_library([])
    for rel in ("include/opkit/kernel.h", "include/opkit/math.h"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(files[rel])
    (tmp_path / "t.cc").write_text(PROGRAM)
    exe = tmp_path / "t"
    flags = ["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread", "-fsanitize=address"]
    p = subprocess.run([CXX, *flags, f"-I{tmp_path / 'include'}", str(tmp_path / "t.cc"), "-o", str(exe)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60,
                         env={"ASAN_OPTIONS": "detect_leaks=1"})
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.split("\n")
    assert lines[0] == "first-call 1 0"  # eight concurrent first calls, one prepare, all see it
    assert lines[1] == "new-key 2 2 2"  # another key prepares again, once
    assert lines[2] == "fixed 1 42 42"  # prepared at load time: never again
    assert lines[3] == "table 4 2"  # 0x10, 0x20 once each; 0x30 drops 0x10, which is prepared again
    assert lines[4] == "scratch 0"
    n = (4 << 20) // 4 + 1  # a 4 MB + 4 byte buffer: 2 MB aligned, handed over by the moves, values kept
    assert lines[5] == f"buffer 0 0 0 1 {n} {n - 1} 0"
    assert lines[6] == "opkit::Buffer: negative count -1"


# ---- ONNX Runtime ------------------------------------------------------------------------------

_CHILD = r"""
import json, resource, sys
import numpy as np
import onnxruntime as ort
job = json.load(open(sys.argv[1]))
so = ort.SessionOptions()
so.log_severity_level = 3
so.intra_op_num_threads = 2
so.register_custom_ops_library(job["library"])
out = {}
for name, case in job["cases"].items():
    sess = ort.InferenceSession(case["model"], so, providers=["CPUExecutionProvider"])
    runs = []
    for feeds in case["runs"]:
        y, prepares = sess.run(None, {k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()})
        runs.append({"y": y.tolist(), "prepares": int(prepares[0])})
    out[name] = runs
# scratch comes back: 200 calls that each take 2 x 16 MB of scratch leave the process about as large
sess = ort.InferenceSession(job["cases"]["initializers"]["model"], so, providers=["CPUExecutionProvider"])
x = np.ones(4 << 20, dtype=np.float32)
sess.run(None, {"x": x})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(200):
    sess.run(None, {"x": x})
out["rss_growth_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
json.dump(out, open(sys.argv[2], "w"))
"""


def _model(path: Path, *, w_init: bool, b: str) -> Path:
    """Shift(x, w, b) with w an initializer or a graph input, and b "init", "input" or "absent"."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])]
    inits = []
    w = np.array([1.0, 2.0], dtype=np.float32)
    bv = np.array([10.0], dtype=np.float32)
    if w_init:
        inits.append(numpy_helper.from_array(w, "w"))
    else:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [2]))
    if b == "init":
        inits.append(numpy_helper.from_array(bv, "b"))
    elif b == "input":
        inputs.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, [1]))
    node = helper.make_node("Shift", ["x", "w", "b" if b != "absent" else ""], ["y", "prepares"], domain="com.example")
    g = helper.make_graph([node], "shift", inputs,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None]),
                           helper.make_tensor_value_info("prepares", TensorProto.INT64, [1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    onnx.save(m, str(path))
    return path


def _built_fixture(tmp: Path, *build_args: str) -> tuple[Path, Path]:
    """The Shift fixture workspace copied to tmp/ws and built (`opkit build *build_args`) into tmp/build."""
    ws = tmp / "ws"
    shutil.copytree(FIXTURE, ws)
    build = tmp / "build"
    p = run_opkit("build", *build_args, cwd=ws, env={"OPKIT_BUILD_DIR": str(build)})
    assert p.returncode == 0, p.stderr
    return ws, build


@pytest.fixture(scope="module")
def shift_library(tmp_path_factory) -> Path:
    _, build = _built_fixture(tmp_path_factory.mktemp("state"), "--runtime", "onnxruntime")
    return build / "release" / "lib" / "libopkit_ops.so"


@pytest.mark.e2e
def test_prepare_once_per_session_and_per_call_when_not_constant(shift_library, tmp_path):
    x = [0.5, -1.0, 2.0]
    cases = {
        # w and b initializers: prepared once, when the session is created (before any run)
        "initializers": {"model": str(_model(tmp_path / "a.onnx", w_init=True, b="init")),
                         "runs": [{"x": x}] * 3},
        # w a graph input: prepared in every call, from that call's w
        "w_input": {"model": str(_model(tmp_path / "b.onnx", w_init=False, b="init")),
                    "runs": [{"x": x, "w": [1.0, 2.0]}, {"x": x, "w": [5.0, 5.0]}]},
        # the optional constant input absent: still prepared once
        "b_absent": {"model": str(_model(tmp_path / "c.onnx", w_init=True, b="absent")),
                     "runs": [{"x": x}] * 2},
        # b a graph input while w is an initializer: not all constant -> per call
        "b_input": {"model": str(_model(tmp_path / "d.onnx", w_init=True, b="input")),
                    "runs": [{"x": x, "b": [1.0]}, {"x": x, "b": [2.0]}]},
    }
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"library": str(shift_library), "cases": cases}))
    p = subprocess.run([sys.executable, "-c", _CHILD, str(job), str(tmp_path / "out.json")], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    xs = np.array(x)
    a = out["initializers"]
    assert [r["prepares"] for r in a] == [1, 1, 1]
    assert all(np.allclose(r["y"], xs + 13.0) for r in a)
    b = out["w_input"]
    assert [r["prepares"] for r in b] == [2, 3]
    assert np.allclose(b[0]["y"], xs + 13.0) and np.allclose(b[1]["y"], xs + 20.0)
    c = out["b_absent"]
    assert [r["prepares"] for r in c] == [4, 4] and np.allclose(c[0]["y"], xs + 3.0)
    d = out["b_input"]
    assert [r["prepares"] for r in d] == [5, 6]
    assert np.allclose(d[0]["y"], xs + 4.0) and np.allclose(d[1]["y"], xs + 5.0)
    # 200 calls x 32 MB of scratch would be 6 GB if kept; ORT's arena reuses the blocks
    assert out["rss_growth_kb"] < 200_000, out["rss_growth_kb"]


_TORCH_CHILD = r"""
import json, sys
import torch
import opkit
sys.path.insert(0, sys.argv[1])
opkit.load_native(sys.argv[2])
from ops.shift.spec import shift
x = torch.tensor([0.5, -1.0]); w = torch.tensor([1.0, 2.0]); b = torch.tensor([10.0])
out = {"same": [int(shift(x, w, b)[1]) for _ in range(3)], "y": shift(x, w, b)[0].tolist()}
w.add_(1.0)  # written in place: its version counter moves, the state is prepared again
out["inplace"] = [int(shift(x, w, b)[1]) for _ in range(2)]
out["y2"] = shift(x, w, b)[0].tolist()
other = torch.tensor([0.0, 0.0])  # another layer's weight
out["other"] = [int(shift(x, other, None)[1]) for _ in range(2)]
out["back"] = int(shift(x, w, b)[1])  # the first layer's state is still cached
json.dump(out, open(sys.argv[3], "w"))
"""


@pytest.mark.e2e
@pytest.mark.slow
def test_prepare_first_call_cache_in_pytorch(tmp_path):
    """PyTorch's dispatcher has no per-node object: the glue prepares on the first call with given constant
    inputs and keeps the state, keyed by address, shape and version counter."""
    ws, build = _built_fixture(tmp_path, "--runtime", "onnxruntime", "--torch")  # ORT: what --torch needs beside
    lib = build / "release" / "lib" / "libopkit_torch.so"
    p = subprocess.run([sys.executable, "-c", _TORCH_CHILD, str(ws), str(lib), str(tmp_path / "out.json")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["same"] == [1, 1, 1] and np.allclose(out["y"], [13.5, 12.0])
    assert out["inplace"] == [2, 2] and np.allclose(out["y2"], [15.5, 14.0])
    assert out["other"] == [3, 3] and out["back"] == 3


_OV_CHILD = r"""
import json, sys
import numpy as np
import openvino as ov
job = json.load(open(sys.argv[1]))
core = ov.Core()
core.add_extension(job["library"])
out = {}
for name, case in job["cases"].items():
    req = core.compile_model(core.read_model(case["model"]), "CPU").create_infer_request()
    runs = []
    for feeds in case["runs"]:
        r = list(req.infer({k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()}).values())
        runs.append({"y": np.asarray(r[0]).tolist(), "prepares": int(np.asarray(r[1])[0])})
    out[name] = runs
json.dump(out, open(sys.argv[2], "w"))
"""


@pytest.mark.e2e
@pytest.mark.slow
def test_prepare_in_openvino(tmp_path):
    """OpenVINO: prepared on a node's first evaluate when the declared-constant inputs come from Constant nodes
    (initializers), and before every evaluate when one is a model input."""
    pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install 'opkit[openvino]')")
    ws, build = _built_fixture(tmp_path, "--runtime", "openvino")
    x = [0.5, -1.0, 2.0]
    cases = {
        "initializers": {"model": str(_model(tmp_path / "a.onnx", w_init=True, b="init")), "runs": [{"x": x}] * 3},
        "w_input": {"model": str(_model(tmp_path / "b.onnx", w_init=False, b="init")),
                    "runs": [{"x": x, "w": [1.0, 2.0]}, {"x": x, "w": [5.0, 5.0]}]},
    }
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"library": str(build / "release" / "lib" / "libopkit_openvino.so"), "cases": cases}))
    p = subprocess.run([sys.executable, "-c", _OV_CHILD, str(job), str(tmp_path / "out.json")], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    xs = np.array(x)
    assert [r["prepares"] for r in out["initializers"]] == [1, 1, 1]
    assert all(np.allclose(r["y"], xs + 13.0) for r in out["initializers"])
    assert [r["prepares"] for r in out["w_input"]] == [2, 3]
    assert np.allclose(out["w_input"][1]["y"], xs + 20.0)


def test_bench_cases_of_linear_act_hold_the_weights_and_state_the_work():
    """opkit bench's default LinearAct cases: the spec's shapes, weight and bias held by the module (initializers
    once exported), flops from the spec and bytes of inputs and outputs -> GFLOP/s and GB/s."""
    from opkit.bench.driver import Row, constants_of, layout_of, make_args, work_of
    from opkit.build.specs import import_ops
    from opkit.build.workspace import Workspace

    op = import_ops(Workspace(HERE.parent))["linear_act"]
    assert {"x": (512, 4096), "weight": (4096, 4096)} in op.bench_shapes
    fixed = {"x": (64, 1024), "weight": (1024, 1024)}
    assert fixed in op.bench_shapes
    args = make_args(op, {"T": "float32"}, 1, fixed=fixed)
    layout, flat, _ = layout_of(op, args)
    assert [(n, k) for n, k, _ in layout] == [("x", "tensor"), ("weight", "const"), ("bias", "const")]
    assert [tuple(t.shape) for t in flat] == [(64, 1024)]
    assert tuple(constants_of(layout, args)["bias"].shape) == (1024,)
    work = work_of(op, args)
    assert work["flops"] == 2 * 64 * 1024 * 1024
    assert work["bytes"] == 4 * (64 * 1024 + 1024 * 1024 + 1024 + 64 * 1024)
    row = Row("x", 1, "float32", "", stats={"native": {"median_s": 1e-3}, "builtin": {"median_s": 1e-6}}, work=work)
    assert row.rates("native")["gflops"] == pytest.approx(work["flops"] / 1e-3 / 1e9)
    assert row.rates("builtin") == {}  # another op's time: no rate


_ET_CHILD = r"""
import json, sys
from pathlib import Path
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
from ops.shift.spec import shift
from opkit.runtimes.executorch.pte import export_program
from opkit.runtimes.executorch.session import EtSession
tmp = Path(sys.argv[3])

class Layer(torch.nn.Module):  # w and b: constants of the .pte
    def __init__(self):
        super().__init__()
        self.register_buffer("w", torch.tensor([1.0, 2.0]))
        self.register_buffer("b", torch.tensor([10.0]))
    def forward(self, x):
        return shift(x, self.w, self.b)

class Fed(torch.nn.Module):  # w fed by the caller: a planned buffer reused with other data
    def forward(self, x, w):
        return shift(x, w, None)

x = np.array([0.5, -1.0], dtype=np.float32)
export_program(Layer(), (torch.from_numpy(x),), tmp / "a.pte", [shift])
export_program(Fed(), (torch.from_numpy(x), torch.zeros(2)), tmp / "b.pte", [shift])
out = {}
s = EtSession(str(tmp / "a.pte"), [sys.argv[2]], {})
runs = [s.run([x]) for _ in range(3)]
out["const"] = [int(r[1][0]) for r in runs]
out["y"] = runs[0][0].tolist()
f = EtSession(str(tmp / "b.pte"), [sys.argv[2]], {})
fed = [f.run([x, np.array(w, dtype=np.float32)]) for w in ([1.0, 2.0], [1.0, 2.0], [5.0, 5.0])]
out["fed"] = [int(r[1][0]) for r in fed]
out["fed_y"] = [r[0].tolist() for r in fed]
out["back"] = int(s.run([x])[1][0])  # the constant layer's state is still cached
json.dump(out, open(tmp / "out.json", "w"))
"""


@pytest.mark.e2e
@pytest.mark.slow
def test_prepare_first_call_cache_in_executorch(tmp_path):
    """ExecuTorch: a first-call cache keyed by the constants' address, shape and a digest of their bytes. A .pte's
    constant weights prepare once; an input the caller feeds prepares again when its data changes."""
    pytest.importorskip("executorch", reason="ExecuTorch is not installed (pip install 'opkit[executorch]')")
    ws, build = _built_fixture(tmp_path, "--runtime", "executorch")
    lib = build / "release" / "lib" / "libopkit_executorch.so"
    p = subprocess.run([sys.executable, "-c", _ET_CHILD, str(ws), str(lib), str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["const"] == [1, 1, 1] and np.allclose(out["y"], [13.5, 12.0])
    assert out["fed"] == [2, 2, 3]
    assert np.allclose(out["fed_y"][0], [3.5, 2.0]) and np.allclose(out["fed_y"][2], [10.5, 9.0])
    assert out["back"] == 3
