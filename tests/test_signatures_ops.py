"""The bundled ops WeightedSum, SegmentSum, TopKLastAxis and UniqueConsecutive against their references,
across their dtypes, with ties, NaN, empty and large inputs (the parallel paths) and their error cases.

Each case is a one-node ONNX model built from the op's spec (bfloat16 is fed and read as float32
through Cast nodes: onnxruntime's Python API has no bfloat16 numpy type). All cases run in ONE
child process with the repository's library (built once per session by `repo_build_dir`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import REPO, run_models_in_ort

pytestmark = pytest.mark.e2e

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from opkit.export.translate import onnx_attr_value  # noqa: E402
from opkit.spec.dtypes import DTYPES, torch_dtype  # noqa: E402
from ops.segment_sum.spec import segment_sum  # noqa: E402
from ops.top_k_last_axis.spec import top_k_last_axis  # noqa: E402
from ops.unique_consecutive.spec import unique_consecutive  # noqa: E402
from ops.weighted_sum.spec import weighted_sum  # noqa: E402

@dataclass
class Case:
    op: Any  # the opkit Op
    args: dict[str, Any]  # parameter name -> tensor / list of tensors / None / attribute value
    label: str
    error: str | None = None  # expected: the kernel fails with a message containing this
    got: list = field(default_factory=list)
    failure: str | None = None


def one_node_model(case: Case, path: Path, in_dir: Path) -> dict[str, str]:
    """A model with one node of the op; returns {graph input name: .npy path}."""
    from onnx import TensorProto, helper

    spec = case.op.spec
    nodes, graph_in, graph_out, feeds, node_in = [], [], [], {}, []
    for inp in spec.inputs:
        v = case.args[inp.name]
        tensors = v if inp.variadic else [v]
        if v is None:
            node_in.append("")
            continue
        for j, t in enumerate(tensors):
            name = f"{inp.name}{j}" if inp.variadic else inp.name
            dt = DTYPES[str(t.dtype).removeprefix("torch.")]
            if dt.name == "bfloat16":
                graph_in.append(helper.make_tensor_value_info(name + "_f32", TensorProto.FLOAT, list(t.shape)))
                nodes.append(helper.make_node("Cast", [name + "_f32"], [name], to=TensorProto.BFLOAT16))
                arr = t.float().numpy()
                feed = name + "_f32"
            else:
                graph_in.append(helper.make_tensor_value_info(name, dt.onnx, list(t.shape)))
                arr = t.numpy()
                feed = name
            np.save(in_dir / f"{feed}.npy", arr, allow_pickle=False)
            feeds[feed] = str(in_dir / f"{feed}.npy")
            node_in.append(name)
    attrs = {a.name: onnx_attr_value(a.kind, case.args[a.name], a.name) for a in spec.attrs
             if case.args.get(a.name) is not None}
    outs = [o.name for o in spec.outputs]
    nodes.append(helper.make_node(spec.name, node_in, outs, domain=spec.domain, **attrs))
    combo = {}
    for inp in spec.inputs:
        v = case.args[inp.name]
        if v is not None and inp.type.typevar:
            combo[inp.type.typevar] = str((v[0] if inp.variadic else v).dtype).removeprefix("torch.")
    for o in spec.outputs:
        dt = spec.resolve(o.type, combo)
        if dt == "bfloat16":
            nodes.append(helper.make_node("Cast", [o.name], [o.name + "_f32"], to=TensorProto.FLOAT))
            graph_out.append(helper.make_tensor_value_info(o.name + "_f32", TensorProto.FLOAT, None))
        else:
            graph_out.append(helper.make_tensor_value_info(o.name, DTYPES[dt].onnx, None))
    graph = helper.make_graph(nodes, "one_node", graph_in, graph_out)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(spec.domain, spec.version)])
    onnx.save(model, str(path))
    return feeds


def run_cases(cases: list[Case], library: Path, tmp: Path) -> None:
    jobs = []
    for k, c in enumerate(cases):
        d = tmp / f"case{k}"
        d.mkdir()
        feeds = one_node_model(c, d / "model.onnx", d)
        jobs.append({"model": str(d / "model.onnx"), "runs": [feeds], "out": str(d / "out")})
    results = run_models_in_ort(library, jobs, tmp)
    for k, (c, err) in enumerate(zip(cases, results)):
        if err is not None:
            c.failure = err
            continue
        n = len(c.op.spec.outputs)
        c.got = [np.load(tmp / f"case{k}" / f"out_0_{j}.npy") for j in range(n)]


def check(case: Case) -> str | None:
    """None when the native result matches the reference (or the expected error); else why not."""
    if case.error is not None:
        if case.failure is None:
            return f"expected an error containing {case.error!r}, but the kernel succeeded"
        if case.error not in case.failure or case.op.spec.qualname not in case.failure:
            return f"expected an error naming {case.op.spec.qualname} with {case.error!r}, got: {case.failure}"
        return None
    if case.failure is not None:
        return f"ORT failed: {case.failure}"
    with torch.no_grad():
        want = case.op(**case.args)
    want = list(want) if isinstance(want, tuple) else [want]
    for o, w, g in zip(case.op.spec.outputs, want, case.got):
        dt = DTYPES[str(w.dtype).removeprefix("torch.")]
        w_np = w.float().numpy() if dt.name == "bfloat16" else w.numpy()
        if tuple(g.shape) != tuple(w_np.shape):
            return f"output {o.name}: shape {g.shape} != reference {w_np.shape}"
        if dt.is_float:
            if not np.allclose(g.astype(np.float64), w_np.astype(np.float64), rtol=dt.rtol, atol=dt.atol,
                               equal_nan=True):
                diff = np.nanmax(np.abs(g.astype(np.float64) - w_np.astype(np.float64))) if g.size else 0
                return f"output {o.name} ({dt.name}): max abs diff {diff:.3g} beyond rtol {dt.rtol} atol {dt.atol}"
        elif not np.array_equal(g, w_np):
            bad = np.argwhere(g != w_np)[:3].tolist()
            return f"output {o.name} ({dt.name}): differs at {bad}"
    return None


def _rand(shape, dtype: str, g, lo: int = -50, hi: int = 50):
    if DTYPES[dtype].is_float:
        return torch.randn(shape, generator=g).to(torch_dtype(dtype))
    return torch.randint(lo, hi, shape, generator=g).to(torch_dtype(dtype))


def weighted_sum_cases(g) -> list[Case]:
    cases = []
    for dt in weighted_sum.spec.typevars[0].dtypes:
        xs = [_rand((5, 7), dt, g) for _ in range(3)]
        cases.append(Case(weighted_sum, {"xs": xs, "weights": [0.5, -1.25, 0.1]}, f"{dt} 3 inputs"))
    cases.append(Case(weighted_sum, {"xs": [_rand((3,), "float64", g)], "weights": [0.1]}, "float64 one input"))
    big = [_rand((257, 1031), "float32", g) for _ in range(2)]
    cases.append(Case(weighted_sum, {"xs": big, "weights": [2.0, 0.3]}, "float32 large (parallel)"))
    cases.append(Case(weighted_sum, {"xs": [_rand((0, 4), "float32", g)] * 2, "weights": [1.0, 2.0]}, "empty"))
    cases.append(Case(weighted_sum, {"xs": [_rand((4,), "float32", g)] * 2, "weights": [1.0]}, "count mismatch",
                      error="2 tensor(s) in xs but 1 weight(s)"))
    cases.append(Case(weighted_sum, {"xs": [_rand((4,), "float32", g), _rand((5,), "float32", g)],
                                     "weights": [1.0, 1.0]}, "shape mismatch", error="no broadcasting"))
    return cases


def segment_sum_cases(g) -> list[Case]:
    cases = []
    ids = torch.randint(0, 5, (9,), generator=g)
    for dt in segment_sum.spec.typevars[0].dtypes:  # segment 5 of 6 stays empty: zeros
        cases.append(Case(segment_sum, {"data": _rand((9, 4), dt, g), "segment_ids": ids, "num_segments": 6},
                          f"{dt} 9x4"))
    cases.append(Case(segment_sum, {"data": _rand((6, 2, 3), "float32", g),
                                    "segment_ids": torch.tensor([2, 0, 2, 1, 0, 2]), "num_segments": 3}, "rank 3"))
    cases.append(Case(segment_sum, {"data": _rand((300, 100), "float32", g),
                                    "segment_ids": torch.randint(0, 7, (300,), generator=g), "num_segments": 7},
                      "small (one task)"))
    many = torch.randint(0, 4000, (5000,), generator=g)
    cases.append(Case(segment_sum, {"data": _rand((5000, 64), "int64", g), "segment_ids": many,
                                    "num_segments": 4000}, "many segments, wide rows int64 (column-parallel, exact)"))
    cases.append(Case(segment_sum, {"data": _rand((5000, 1), "float32", g), "segment_ids": many,
                                    "num_segments": 4000}, "many segments, narrow rows (serial)"))
    narrow_ids = torch.randint(0, 10, (200_000,), generator=g)
    cases.append(Case(segment_sum, {"data": _rand((200_000, 1), "int64", g), "segment_ids": narrow_ids,
                                    "num_segments": 10}, "int64 (row blocks, exact)"))
    cases.append(Case(segment_sum, {"data": _rand((200_000, 3), "float64", g), "segment_ids": narrow_ids,
                                    "num_segments": 10}, "float64 (row blocks)"))
    cases.append(Case(segment_sum, {"data": _rand((0, 3), "float32", g), "segment_ids": torch.zeros(0, dtype=torch.int64),
                                    "num_segments": 2}, "no rows"))
    cases.append(Case(segment_sum, {"data": _rand((3, 2), "float32", g), "segment_ids": torch.tensor([0, 3, 1]),
                                    "num_segments": 3}, "id too large", error="segment_ids[1] = 3 is outside [0, num_segments=3)"))
    cases.append(Case(segment_sum, {"data": _rand((3, 2), "float32", g), "segment_ids": torch.tensor([0, -1, 1]),
                                    "num_segments": 3}, "negative id", error="segment_ids[1] = -1 is outside"))
    return cases


def top_k_cases(g) -> list[Case]:
    cases = []
    for dt in top_k_last_axis.spec.typevars[0].dtypes:
        x = torch.randint(0, 4, (4, 10), generator=g).to(torch_dtype(dt))  # many ties
        if DTYPES[dt].is_float:
            x[1, 3] = x[1, 7] = float("nan")
            x[2, 0] = float("-inf")
            x[3, 5] = -0.0
        for largest in (True, False):
            cases.append(Case(top_k_last_axis, {"x": x, "k": 3, "largest": largest}, f"{dt} ties largest={largest}"))
        cases.append(Case(top_k_last_axis, {"x": x, "k": 10, "largest": True}, f"{dt} k = n"))
    x = torch.randn(64, 5000, generator=g)
    cases.append(Case(top_k_last_axis, {"x": x, "k": 5, "largest": True}, "large, small k (partial sort)"))
    cases.append(Case(top_k_last_axis, {"x": x, "k": 4000, "largest": False}, "large, big k (nth_element)"))
    cases.append(Case(top_k_last_axis, {"x": torch.randn(2, 3, 6, generator=g), "k": 2, "largest": True}, "rank 3"))
    cases.append(Case(top_k_last_axis, {"x": torch.randn(3, 6, generator=g), "k": 0, "largest": True}, "k = 0"))
    cases.append(Case(top_k_last_axis, {"x": torch.randn(3, 4, generator=g), "k": 5, "largest": True}, "k > n",
                      error="k=5 is larger than the last axis of x (4)"))
    return cases


def unique_cases(g) -> list[Case]:
    def case(x, label):
        return Case(unique_consecutive, {"x": x}, label)

    runs = torch.randint(-3, 3, (300_000,), generator=g)
    runs = torch.repeat_interleave(runs, torch.randint(1, 4, (300_000,), generator=g))  # runs of 1-3
    return [
        case(torch.zeros(0, dtype=torch.int64), "empty"),
        case(torch.tensor([7]), "one element"),
        case(torch.full((1000,), 5), "one run"),
        case(torch.tensor([1, 1, 2, 2, 2, 1, 3, 3, -4, -4]), "small"),
        case(torch.randint(0, 3, (57,), generator=g), "random"),
        case(runs, "large (parallel blocks)"),
    ]


@pytest.mark.parametrize("make", [weighted_sum_cases, segment_sum_cases, top_k_cases, unique_cases],
                         ids=["WeightedSum", "SegmentSum", "TopKLastAxis", "UniqueConsecutive"])
def test_op_matches_its_reference(make, repo_build_dir, tmp_path):
    cases = make(torch.Generator().manual_seed(0))
    run_cases(cases, repo_build_dir / "release" / "lib" / "libopkit_ops.so", tmp_path)
    problems = [f"{c.label}: {msg}" for c in cases if (msg := check(c)) is not None]
    assert not problems, "\n".join(problems)


def test_reference_rejects_what_the_kernel_rejects():
    """Out-of-range segment ids, k beyond the axis and mismatched weights fail in PyTorch too (never silently)."""
    with pytest.raises(ValueError, match=r"segment ids must lie in \[0, 3\)"):
        segment_sum(torch.ones(2, 2), torch.tensor([0, 3]), num_segments=3)
    with pytest.raises(ValueError, match="larger than the last axis"):
        top_k_last_axis(torch.ones(2, 3), k=4)
    with pytest.raises(ValueError, match="one weight per tensor"):
        weighted_sum([torch.ones(2)] * 2, weights=[1.0])


def test_top_k_order_is_documented_one():
    """Ties by lower index, NaN largest: the reference is torch.sort(stable=True), not torch.topk's order."""
    x = torch.tensor([[1.0, float("nan"), 3.0, 3.0, -0.0, 0.0, float("nan")]])
    v, i = top_k_last_axis(x, k=7)
    assert i.tolist() == [[1, 6, 2, 3, 0, 4, 5]]
    v, i = top_k_last_axis(x, k=7, largest=False)
    assert i.tolist() == [[4, 5, 0, 2, 3, 1, 6]]
