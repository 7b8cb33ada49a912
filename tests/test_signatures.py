"""Every signature kind end to end, as a new user would write it: spec -> torch op (eager, fake, export)
-> ONNX node -> generated glue -> kernel -> ORT -> `opkit verify`; and a clear message for what the
spec language cannot express.

One temp workspace, built once for the module, holds three ops:
  Mix        two type variables (T data, I indices), a rank-checked input, an optional input in the
             middle (no default: a variadic follows), a variadic input, attributes of every kind
             (float, int, bool, str, list[float], list[int], list[str]; required and defaulted),
             two outputs of different dtypes, one shaped from an attribute (k)
  Flip       one kernel for each of the 10 dtypes
  Positives  data-dependent output size (fake via new_dynamic_size, kernel out.allocate)
"""

from __future__ import annotations

import os
import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import new_workspace, run_opkit

MIX_SPEC = '''
import numpy
import torch

import opkit
from opkit import Tensor


@opkit.op("Mix", domain="test.sig", types={"T": ("float32", "float64"), "I": ("int32", "int64")},
          outputs=("y", "picked"), shapes={"y": "x", "picked": ("ids[0]", "k")})
def mix(x: Tensor["T"], ids: Tensor["I", 2], bias: Tensor["T"] | None, xs: list[Tensor["T"]],
        weights: list[float], scale: float = 1.0, k: int = 2, negate: bool = False, mode: str = "sum",
        offsets: list[int] = [0], tags: list[str] = ["ab", "c"]) -> tuple[Tensor["T"], Tensor["I"]]:
    """y = scale*x (+ bias) combined with weights[i]*xs[i] by mode ("sum" or "max"), negated if negate;
    picked[r, j] = ids[r, j % cols] + offsets[j % len(offsets)] + the total length of the tags."""
    if len(weights) != len(xs):
        raise ValueError(f"Mix: {len(xs)} xs but {len(weights)} weights")
    w = [float(numpy.float32(v)) for v in weights]  # ONNX float attributes are float32
    y = x * float(numpy.float32(scale))
    if bias is not None:
        y = y + bias
    for wi, t in zip(w, xs):
        y = y + wi * t if mode == "sum" else torch.maximum(y, wi * t)
    if negate:
        y = -y
    cols = torch.arange(k) % ids.shape[1]
    offs = torch.tensor(offsets, dtype=ids.dtype)[torch.arange(k) % len(offsets)]
    return y, ids[:, cols] + offs + sum(len(t) for t in tags)
'''

MIX_CC = '''
#include "mix.opkit.h"

#include <algorithm>
#include <string>

namespace opkit::ops {

template <typename T, typename I>
void Mix::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<T>& x, const opkit::Input<I>& ids,
                  const opkit::Optional<T>& bias, const opkit::Variadic<T>& xs, opkit::Output<T>& y,
                  opkit::Output<I>& picked) {
  if (attrs.weights.size() != xs.size())
    throw opkit::Error(std::to_string(xs.size()) + " xs but " + std::to_string(attrs.weights.size()) + " weights");
  if (attrs.mode != "sum" && attrs.mode != "max") throw opkit::Error("mode must be sum or max, got " + attrs.mode);
  for (const auto& t : xs)
    if (t.shape() != x.shape()) throw opkit::Error("every xs[i] must have the shape of x");
  if (bias && bias->shape() != x.shape()) throw opkit::Error("bias must have the shape of x");
  const bool sum = attrs.mode == "sum";
  const T scale = static_cast<T>(attrs.scale);
  T* out = y.data();
  ctx.parallel_for(x.size(), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T v = x[i] * scale;
      if (bias) v += (*bias)[i];
      for (size_t j = 0; j < xs.size(); ++j) {
        const T w = static_cast<T>(attrs.weights[j]) * xs[j][i];
        v = sum ? v + w : std::max(v, w);
      }
      out[i] = attrs.negate ? -v : v;
    }
  });
  const int64_t rows = ids.dim(0), cols = ids.dim(1), k = attrs.k;
  if (cols == 0 && k > 0) throw opkit::Error("ids has no columns");
  if (attrs.offsets.empty()) throw opkit::Error("offsets must not be empty");
  int64_t tag_len = 0;
  for (const std::string& t : attrs.tags) tag_len += static_cast<int64_t>(t.size());
  const int64_t n_off = static_cast<int64_t>(attrs.offsets.size());
  I* p = picked.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j)
      p[r * k + j] = static_cast<I>(ids[r * cols + j % cols] + attrs.offsets[static_cast<size_t>(j % n_off)] + tag_len);
}

}  // namespace opkit::ops
'''

FLIP_SPEC = '''
import opkit
from opkit import Tensor

ALL = ("float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool")


@opkit.op("Flip", domain="test.sig", types={"T": ALL}, shapes={"y": "x"})
def flip(x: Tensor["T"]) -> Tensor["T"]:
    """x reversed along its last axis."""
    return x.flip(-1)
'''

FLIP_CC = '''
#include "flip.opkit.h"

namespace opkit::ops {

template <typename T>
void Flip::compute(opkit::Context& ctx, const Attrs&, const opkit::Input<T>& x, opkit::Output<T>& y) {
  const int64_t n = x.rank() ? x.dim(-1) : 1;
  const int64_t rows = n ? x.size() / n : 0;
  T* out = y.data();
  ctx.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t i = 0; i < n; ++i) out[r * n + i] = x[r * n + n - 1 - i];
  }, static_cast<double>(n));
}

}  // namespace opkit::ops
'''

POSITIVES_SPEC = '''
import torch

import opkit
from opkit import Tensor


@opkit.op("Positives", domain="test.sig", types={"T": ("float32", "int32")}, outputs=("values", "positions"),
          shapes={"values": (None,), "positions": (None,)})
def positives(x: Tensor["T", 1]) -> tuple[Tensor["T"], Tensor["int64"]]:
    """The entries > 0 of x and their positions: as many as the data has."""
    mask = x > 0
    return x[mask], torch.nonzero(mask).reshape(-1)


@positives.register_fake
def _(x):
    n = torch.library.get_ctx().new_dynamic_size()
    return x.new_empty(n), x.new_empty(n, dtype=torch.int64)
'''

POSITIVES_CC = '''
#include "positives.opkit.h"

namespace opkit::ops {

template <typename T>
void Positives::compute(opkit::Context&, const Attrs&, const opkit::Input<T>& x, opkit::Output<T>& values,
                        opkit::Output<int64_t>& positions) {
  int64_t n = 0;
  for (T v : x) n += v > T(0);
  T* v_out = values.allocate({n});
  int64_t* p_out = positions.allocate({n});
  for (int64_t i = 0, j = 0; i < x.size(); ++i)
    if (x[i] > T(0)) {
      v_out[j] = x[i];
      p_out[j++] = i;
    }
}

}  // namespace opkit::ops
'''

MODEL = '''
import torch
from ops.flip.spec import flip
from ops.mix.spec import mix
from ops.positives.spec import positives


class Net(torch.nn.Module):
    def forward(self, x, ids, b, x64, ids64, f16, f64, i8, u8, i16, i64, flags):
        # float32/int32 kernel: bias absent, two variadic tensors, every attribute given
        y1, p1 = mix(x, ids, None, [x * 2, b], [0.5, -1.25], scale=3.0, k=3, negate=False, mode="sum",
                     offsets=[1, 2], tags=["hello", "", "xyz"])
        # same kernel: bias present, one variadic tensor, the defaults (k=2, tags=["ab", "c"], ...)
        y2, p2 = mix(y1, p1, b, [x], [2.0], mode="max", negate=True)
        # float64/int64 kernel
        y3, p3 = mix(x64, ids64, x64, [x64, x64, x64], [1.0, 2.0, 3.0], k=1)
        # one Flip kernel per dtype; bfloat16 inside the model (ORT's Python API cannot feed it)
        flips = [flip(t) for t in (f16, x, f64, i8, u8, i16, ids, i64, flags)]
        flips.append(flip(x.to(torch.bfloat16)).float())
        # data-dependent output sizes
        pos = [*positives(x.reshape(-1)), *positives(ids.reshape(-1))]
        return (y1, p1, y2, p2, y3, p3, *flips, *pos)


B = torch.export.Dim("batch")
C = torch.export.Dim("rows64")
g = torch.Generator().manual_seed(0)
example_inputs = (torch.randn(4, 5, generator=g), torch.randint(-100, 100, (4, 2), generator=g, dtype=torch.int32),
                  torch.randn(4, 5, generator=g), torch.randn(3, 2, generator=g, dtype=torch.float64),
                  torch.randint(-9, 9, (3, 4), generator=g),
                  torch.randn(4, 3, generator=g).half(), torch.randn(4, 3, generator=g, dtype=torch.float64),
                  torch.randint(-128, 128, (4, 3), generator=g, dtype=torch.int8),
                  torch.randint(0, 256, (4, 3), generator=g, dtype=torch.uint8),
                  torch.randint(-999, 999, (4, 3), generator=g, dtype=torch.int16),
                  torch.randint(-2**40, 2**40, (4, 3), generator=g), torch.rand(4, 3, generator=g) > 0.5)
model = Net().eval()
dynamic_shapes = ({0: B}, {0: B}, {0: B}, {0: C}, {0: C}, *({0: B} for _ in range(7)))
'''


@pytest.fixture(scope="module")
def sig_ws(tmp_path_factory) -> Path:
    ws = new_workspace(tmp_path_factory.mktemp("signatures"), "Mix", "test.sig")
    for folder, spec, cc in (("mix", MIX_SPEC, MIX_CC), ("flip", FLIP_SPEC, FLIP_CC),
                             ("positives", POSITIVES_SPEC, POSITIVES_CC)):
        (ws / "ops" / folder).mkdir(exist_ok=True)
        (ws / "ops" / folder / "spec.py").write_text(spec.lstrip())
        (ws / "ops" / folder / f"{folder}.cc").write_text(cc.lstrip())
    (ws / "model.py").write_text(MODEL.lstrip())
    p = run_opkit("build", "--verbose", cwd=ws)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "warning:" not in p.stdout + p.stderr, "the generated glue or the kernels warn:\n" + p.stdout
    return ws


@pytest.fixture(scope="module")
def verified(sig_ws):
    """`opkit verify model.py` once (without the C++ runner pass: tests/test_native covers it)."""
    import onnx

    p = run_opkit("verify", "--no-native", "model.py", cwd=sig_ws)
    path = sig_ws / "build" / "verify" / "model" / "model.onnx"
    return p, (onnx.load(str(path)) if path.exists() else None)


def _nodes(model, op_type: str) -> list:
    return [n for n in model.graph.node if n.domain == "test.sig" and n.op_type == op_type]


@pytest.mark.e2e
@pytest.mark.slow
def test_every_signature_kind_verifies_in_openvino(sig_ws, tmp_path):
    """The same model through OpenVINO (Python API and opkit-ov-runner): optional and variadic inputs, every
    attribute kind with list[str], two outputs, every dtype, data-dependent sizes (issue 11)."""
    pytest.importorskip("openvino", reason="the openvino package is not installed (pip install 'opkit[openvino]')")
    out = tmp_path / "ov.json"
    p = run_opkit("verify", "model.py", "--runtime", "openvino", "--runtime", "openvino-cpp", "--json", str(out),
                  cwd=sig_ws)
    assert out.is_file(), p.stdout[-4000:] + p.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [r["name"] for r in report["runtimes"]] == ["openvino", "openvino-cpp"]
    assert any("float64 as float32" in n for n in report["notes"])  # said, not hidden
    # Two outputs differ, both limits of OpenVINO's CPU plugin documented in docs/runtimes.md: it carries int64
    # as int32 (the int64 Flip is fed values of +-2**40), and the bfloat16 made inside the graph
    # (x.to(torch.bfloat16) before Flip) comes out 1 bfloat16 ulp off PyTorch's rounding. All others match.
    bad = {o["name"] for r in report["runs"] for o in r["outputs"] if not o["ok"]}
    int64_flip = {o["name"] for r in report["runs"] for o in r["outputs"] if o["dtype"] == "int64"
                  and o["name"].startswith("flip")}
    assert bad - int64_flip <= {"_to_copy_1"}, bad
    bf16 = [o["max_rel"] for r in report["runs"] for o in r["outputs"] if o["name"] == "_to_copy_1"]
    assert len(bf16) == 6 and max(bf16) < 2 ** -6  # at most about one bfloat16 ulp
    assert len(report["runs"]) == 6 and sum(len(r["outputs"]) for r in report["runs"]) > 6 * 15


@pytest.mark.e2e
def test_an_op_with_every_signature_kind_verifies(verified):
    """The issue's "done": two type variables, optional + variadic inputs, list and str attributes, two outputs;
    also every dtype (Flip) and data-dependent sizes (Positives), at the example and two other sizes."""
    import onnx

    p, model = verified
    assert p.returncode == 0 and "PASS" in p.stdout, p.stdout + p.stderr
    assert "other sizes: batch=" in p.stdout  # the dynamic dims were exercised too
    for dt in ("float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"):
        assert f" {dt} " in p.stdout, dt
    n1, n2, n3 = _nodes(model, "Mix")
    assert n1.input[2] == "" and len(n1.input) == 5  # absent optional in the middle, then 2 variadic
    assert n2.input[2] != "" and len(n2.input) == 4
    assert len(n3.input) == 6
    attrs = {a.name: a for a in n1.attribute}
    assert onnx.helper.get_attribute_value(attrs["weights"]) == pytest.approx([0.5, -1.25])
    assert attrs["mode"].type == onnx.AttributeProto.STRING and attrs["negate"].i == 0 and attrs["k"].i == 3
    tags = attrs["tags"]  # list[str] travels as a 1-D string tensor attribute
    assert tags.type == onnx.AttributeProto.TENSOR and list(tags.t.string_data) == [b"hello", b"", b"xyz"]
    attrs2 = {a.name: a for a in n2.attribute}
    assert list(attrs2["tags"].t.string_data) == [b"ab", b"c"] and attrs2["k"].i == 2  # defaults written out


_SCHEMA_CHILD = r"""
import sys
import onnx, onnx.shape_inference, pytest
sys.path.insert(0, sys.argv[1])
from opkit.export.infer import register_schemas
from ops.mix.spec import mix
from test_signatures import _nodes

register_schemas([mix.spec])
model = onnx.load(sys.argv[2])
onnx.checker.check_model(model, full_check=True)
mix_outputs = [o for n in _nodes(model, "Mix") for o in n.output]
# Without the exporter's value_info, shape inference alone recovers dtypes and symbolic shapes.
stripped = onnx.ModelProto()
stripped.CopyFrom(model)
del stripped.graph.value_info[:]
for o in stripped.graph.output:
    o.type.tensor_type.Clear()
inferred = onnx.shape_inference.infer_shapes(stripped)
types = {v.name: onnx.helper.printable_type(v.type)
         for v in list(inferred.graph.output) + list(inferred.graph.value_info)}
y1, p1, _, _, y3, p3 = mix_outputs
assert types[y1] == "FLOAT, batchx5" and types[p1] == "INT32, batchx3", types
assert types[y3] == "DOUBLE, rows64x2" and types[p3] == "INT64, rows64x1", types
# The registered schema checks attribute kinds.
bad = onnx.ModelProto()
bad.CopyFrom(model)
node = _nodes(bad, "Mix")[0]
for a in node.attribute:
    if a.name == "k":
        a.CopyFrom(onnx.helper.make_attribute("k", 2.5))
with pytest.raises(onnx.checker.ValidationError, match="Mismatched attribute type.*k"):
    onnx.checker.check_model(bad)
print("ok")
"""


@pytest.mark.e2e
def test_the_op_schema_serves_onnx_checker_and_shape_inference(sig_ws, verified, tmp_path):
    # In a fresh process: the TorchScript exporter, used in-process by other tests, leaves onnx's
    # schema registry in a state where custom-domain inference functions are not called.
    import onnx

    if verified[1] is None:
        pytest.fail("opkit verify exported no model: " + verified[0].stderr)
    path = tmp_path / "mix.onnx"
    onnx.save(verified[1], str(path))
    p = subprocess.run([sys.executable, "-c", _SCHEMA_CHILD, str(sig_ws), str(path)], capture_output=True,
                       text=True, cwd=Path(__file__).parent, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)})
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stdout + p.stderr


@pytest.mark.e2e
def test_every_dtype_and_a_data_dependent_size_in_the_graph(verified):
    import onnx

    model = verified[1]
    assert model is not None, verified[0].stderr
    assert len(_nodes(model, "Flip")) == 10
    casts = {a.i for n in model.graph.node if n.op_type == "Cast" for a in n.attribute}
    assert onnx.TensorProto.BFLOAT16 in casts
    # the data-dependent outputs carry a symbolic dimension, not a number
    pos_outs = [o for n in _nodes(model, "Positives") for o in n.output]
    dims = {v.name: v.type.tensor_type.shape.dim[0] for v in list(model.graph.output) + list(model.graph.value_info)
            if v.type.tensor_type.shape.dim}
    assert pos_outs and all(o in dims for o in pos_outs)
    assert all(dims[o].dim_param and not dims[o].HasField("dim_value") for o in pos_outs)


_CHILD = r"""
import json, sys
import numpy as np
import onnxruntime as ort
job = json.load(open(sys.argv[1]))
so = ort.SessionOptions()
so.log_severity_level = 4
so.register_custom_ops_library(job["library"])
out = []
for path in job["models"]:
    try:
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feeds = {i.name: np.ones([d if isinstance(d, int) else 2 for d in i.shape],
                                 {"tensor(float)": np.float32, "tensor(int64)": np.int64}[i.type])
                 for i in s.get_inputs()}
        s.run(None, feeds)
        out.append("ok")
    except Exception as exc:
        out.append(str(exc))
json.dump(out, open(sys.argv[2], "w"))
"""


def _mix_node_model(tmp: Path, name: str, attrs: dict, n_xs: int = 1):
    """A one-node Mix model (float32/int64 kernel, bias absent) with exactly these attributes."""
    import onnx
    from onnx import TensorProto, helper

    xs = [f"xs{i}" for i in range(n_xs)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
              helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 2])]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in xs]
    node = helper.make_node("Mix", ["x", "ids", "", *xs], ["y", "picked"], domain="test.sig")
    node.attribute.extend(v if isinstance(v, onnx.AttributeProto) else helper.make_attribute(k, v)
                          for k, v in attrs.items())
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                                                    helper.make_tensor_value_info("picked", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("test.sig", 1)])
    path = tmp / f"{name}.onnx"
    onnx.save(model, str(path))
    return str(path)


@pytest.mark.e2e
def test_attributes_are_validated_with_the_op_and_attribute_named(sig_ws, tmp_path):
    from onnx import AttributeProto, TensorProto, helper

    tags = helper.make_tensor("tags", TensorProto.STRING, [1], [b"abc"])
    INTS = AttributeProto.INTS
    cases = {  # name -> (attributes, number of variadic tensors, what the error must say)
        "good": ({"weights": [1.5]}, 1, "ok"),
        "missing_required": ({"k": 1}, 1, "required attribute 'weights' (list[float]) is missing"),
        "int_as_float": ({"weights": [1.0], "k": 2.5}, 1, "attribute 'k': expected int, got float"),
        "str_as_int": ({"weights": [1.0], "mode": 3}, 1, "attribute 'mode': expected str, got int"),
        "bool_not_01": ({"weights": [1.0], "negate": 2}, 1, "attribute 'negate': expected a bool (0 or 1), got 2"),
        "strs_as_list": ({"weights": [1.0], "tags": ["a", "b"]}, 1,
                         "attribute 'tags': expected list[str] (a 1-D string tensor attribute, as opkit exports it), "
                         "got an attribute of another kind"),
        "strs_tensor_ok": ({"weights": [1.0], "tags": tags}, 1, "ok"),
        "floats_as_ints": ({"weights": [1]}, 1, "attribute 'weights': expected list[float], got list[int]"),
        "ints_as_float": ({"weights": [1.0], "offsets": 2.0}, 1, "attribute 'offsets': expected list[int], got float"),
        "empty_ints_ok": ({"weights": [1.0], "offsets": helper.make_attribute("offsets", [], attr_type=INTS)}, 1, "offsets must not be empty"),  # read, then kernel
        "kernel_error": ({"weights": [1.0, 2.0]}, 1, "1 xs but 2 weights"),
    }
    models = [_mix_node_model(tmp_path, name, attrs, n) for name, (attrs, n, _) in cases.items()]
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"library": str(sig_ws / "build" / "release" / "lib" / "libopkit_ops.so"),
                               "models": models}))
    p = subprocess.run([sys.executable, "-c", _CHILD, str(job), str(tmp_path / "out.json")], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    results = dict(zip(cases, json.loads((tmp_path / "out.json").read_text())))
    for name, (_, _, want) in cases.items():
        got = results[name]
        if want == "ok":
            assert got == "ok", f"{name}: {got}"
        else:
            assert "test.sig::Mix" in got and want in got, f"{name}: expected {want!r}, got: {got}"


# -- what the spec language cannot express: one clear message each (no build) --------------------
_n = itertools.count()


def _spec_error(tmp_path: Path, body: str):
    import importlib.util

    from opkit.errors import SpecError

    src = "import torch\nimport opkit\nfrom opkit import Tensor\n\n" + textwrap.dedent(body).lstrip("\n")
    n = next(_n)
    path = tmp_path / f"sig_spec_{n}.py"
    path.write_text(src.replace("OPNAME", f"SigBad{n}"))
    spec = importlib.util.spec_from_file_location(f"opkit_sig_spec_{n}", path)
    mod = importlib.util.module_from_spec(spec)
    with pytest.raises(SpecError) as info:
        spec.loader.exec_module(mod)
    return info.value


@pytest.mark.parametrize("body, what, fix", [
    ('''
     @opkit.op("OPNAME", domain="a.b")
     def f(xs: list[Tensor["float32"]], ys: list[Tensor["float32"]]) -> Tensor["float32"]:
         return xs[0]
     ''', "a second variadic input 'ys'", "merge them into one list"),
    ('''
     @opkit.op("OPNAME", domain="a.b")
     def f(x: Tensor["float32"], *, y: Tensor["float32"]) -> Tensor["float32"]:
         return x
     ''', "tensor input 'y' is keyword-only", "move it before the '*'"),
    ('''
     @opkit.op("OPNAME", domain="a.b")
     def f(x: Tensor["float32"], b: Tensor["float32"] | None = 0) -> Tensor["float32"]:
         return x
     ''', "optional input 'b' must default to None", "'= None'"),
    ('''
     @opkit.op("OPNAME", domain="a.b", shapes={"y": ("xs[0]",)})
     def f(xs: list[Tensor["float32"]]) -> Tensor["float32"]:
         return xs[0]
     ''', "shape of output 'y': 'xs' is variadic; its dims cannot be referenced", None),
    ('''
     @opkit.op("OPNAME", domain="a.b", shapes={"y": "b"})
     def f(x: Tensor["float32"], b: Tensor["float32"] | None = None) -> Tensor["float32"]:
         return x
     ''', "shape of output 'y': 'b' is optional; its dims cannot be referenced", None),
    ('''
     @opkit.op("OPNAME", domain="a.b", shapes={"y": ("x[0]", "scale")})
     def f(x: Tensor["float32"], scale: float = 1.0) -> Tensor["float32"]:
         return x
     ''', "shape of output 'y': attribute 'scale' is float, only int attributes can be a dimension", None),
    ('''
     @opkit.op("OPNAME", domain="a.b", shapes={"y": ("x[2]",)})
     def f(x: Tensor["float32", 2]) -> Tensor["float32"]:
         return x
     ''', "shape of output 'y': 'x' has rank 2; it has no dim 2", None),
    ('''
     @opkit.op("OPNAME", domain="a.b", types={"float": ("float32",)})
     def f(x: Tensor["float"]) -> Tensor["float"]:
         return x
     ''', "type variable 'float' cannot be used as a C++ template parameter name", "rename it"),
    ('''
     @opkit.op("OPNAME", domain="a.b", types={"Spec": ("float32",)})
     def f(x: Tensor["Spec"]) -> Tensor["Spec"]:
         return x
     ''', "type variable 'Spec' cannot be used as a C++ template parameter name", "rename it"),
    ('''
     @opkit.op("OPNAME", domain="a.b", types={"x": ("float32",)})
     def f(x: Tensor["x"]) -> Tensor["x"]:
         return x
     ''', "type variable 'x' has the name of a parameter or output", "rename the type variable"),
    ('''
     @opkit.op("OPNAME", domain="a.b", types={"T": ("float32", "float64")})
     def f(x: Tensor["float32"], b: Tensor["T"] | None = None) -> Tensor["T"]:
         return x
     ''', "type variable 'T' is bound only by the optional input 'b'", "fixed dtype"),
    ('''
     @opkit.op("OPNAME", domain="a.b")
     def f(x: Tensor["float32"], k: int = 2**64) -> Tensor["float32"]:
         return x
     ''', "attribute 'k': default does not match its type", None),
    ('''
     @opkit.op("OPNAME", domain="a.b")
     def f(x: Tensor["float32"], mask: list[bool] = [True]) -> Tensor["float32"]:
         return x
     ''', "parameter 'mask': unsupported annotation", None),
    ('''
     @opkit.op("OPNAME", domain="a.b")
     def f(x: Tensor["float32"], k: int | None = None) -> Tensor["float32"]:
         return x
     ''', "parameter 'k': unsupported annotation", "give a default instead of '| None'"),
    ('''
     @opkit.op("OPNAME", domain="a.b")
     def f(xs: list[Tensor["float32"] | None]) -> Tensor["float32"]:
         return x
     ''', "parameter 'xs': unsupported annotation", None),
    ('''
     @opkit.op("OPNAME", domain="a.b")
     def f(x: Tensor["float32"]) -> list[Tensor["float32"]]:
         return [x]
     ''', "f: unsupported return annotation", None),
])
def test_unsupported_signature_is_rejected_clearly(tmp_path, body, what, fix):
    err = _spec_error(tmp_path, body)
    assert err.what.startswith(what), err.render()
    assert str(err.where).startswith(str(tmp_path)), err.render()
    if fix:
        assert fix in (err.fix or ""), err.render()
    assert "Traceback" not in err.render()
