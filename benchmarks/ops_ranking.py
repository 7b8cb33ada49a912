"""Speed of the ranking ops (WeightedSum, SegmentSum, TopKLastAxis, UniqueConsecutive) as one-node models in
ONNX Runtime (2 intra-op threads), against the built-in ONNX equivalent where there is one and torch eager
(2 threads). Best of 10 runs after a warm-up.

    opkit build                         # or OPKIT_BUILD_DIR=... opkit build
    python benchmarks/ops_ranking.py [LIBRARY]
"""

import os
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto as TP
from onnx import helper

REPO = Path(__file__).resolve().parent.parent
LIB = sys.argv[1] if len(sys.argv) > 1 else str(
    Path(os.environ.get("OPKIT_BUILD_DIR") or REPO / "build") / "release" / "lib" / "libopkit_ops.so")
torch.set_num_threads(2)
def sess(nodes, ins, outs, custom=True):
    g = helper.make_graph(nodes, "g", ins, outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("opkit.examples", 1)])
    so = ort.SessionOptions(); so.intra_op_num_threads = 2
    if custom: so.register_custom_ops_library(LIB)
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
def t(fn, reps=10):
    fn(); best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t0)
    return best * 1e3
def vi(n, t, s):
    return helper.make_tensor_value_info(n, t, s)


# WeightedSum: 4 x 4M float32
xs = [np.random.randn(4_000_000).astype(np.float32) for _ in range(4)]
w = [0.4, 0.3, 0.2, 0.1]
s = sess([helper.make_node("WeightedSum", [f"x{i}" for i in range(4)], ["y"], domain="opkit.examples", weights=w)],
         [vi(f"x{i}", TP.FLOAT, [4_000_000]) for i in range(4)], [vi("y", TP.FLOAT, None)])
feeds = {f"x{i}": xs[i] for i in range(4)}
nodes = []
for i in range(4):
    nodes.append(helper.make_node("Mul", [f"x{i}", f"w{i}"], [f"m{i}"]))
nodes += [helper.make_node("Sum", [f"m{i}" for i in range(4)], ["y"])]
inits = [helper.make_tensor(f"w{i}", TP.FLOAT, [], [w[i]]) for i in range(4)]
g = helper.make_graph(nodes, "g", [vi(f"x{i}", TP.FLOAT, [4_000_000]) for i in range(4)], [vi("y", TP.FLOAT, None)], initializer=inits)
so = ort.SessionOptions(); so.intra_op_num_threads = 2
s2 = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(), so)
txs = [torch.from_numpy(x) for x in xs]
print(f"WeightedSum 4x4M f32: custom {t(lambda: s.run(None, feeds)):.2f} ms, ONNX Mul+Sum {t(lambda: s2.run(None, feeds)):.2f} ms, torch eager {t(lambda: sum(wi*x for wi, x in zip(w, txs))):.2f} ms")
# SegmentSum 1M x 16, 1000 segments; and 4M x 1, 100 segments
for rows, width, segs in ((1_000_000, 16, 1000), (4_000_000, 1, 100), (20_000, 512, 64)):
    d = np.random.randn(rows, width).astype(np.float32); ids = np.random.randint(0, segs, rows).astype(np.int64)
    s = sess([helper.make_node("SegmentSum", ["d", "i"], ["y"], domain="opkit.examples", num_segments=segs)],
             [vi("d", TP.FLOAT, [rows, width]), vi("i", TP.INT64, [rows])], [vi("y", TP.FLOAT, None)])
    td, ti = torch.from_numpy(d), torch.from_numpy(ids)
    ref = lambda: torch.zeros(segs, width).index_add_(0, ti, td)
    print(f"SegmentSum {rows}x{width} -> {segs}: custom {t(lambda: s.run(None, {'d': d, 'i': ids})):.2f} ms, torch index_add_ {t(ref):.2f} ms")
# TopK
for rows, n, k in ((4096, 1000, 10), (256, 32768, 100), (4096, 1000, 500)):
    x = np.random.randn(rows, n).astype(np.float32)
    s = sess([helper.make_node("TopKLastAxis", ["x"], ["v", "i"], domain="opkit.examples", k=k)],
             [vi("x", TP.FLOAT, [rows, n])], [vi("v", TP.FLOAT, None), vi("i", TP.INT64, None)])
    g = helper.make_graph([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1)], "g", [vi("x", TP.FLOAT, [rows, n])],
                          [vi("v", TP.FLOAT, None), vi("i", TP.INT64, None)], initializer=[helper.make_tensor("k", TP.INT64, [1], [k])])
    s2 = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(), so)
    tx = torch.from_numpy(x)
    print(f"TopKLastAxis {rows}x{n} k={k}: custom {t(lambda: s.run(None, {'x': x})):.2f} ms, ONNX TopK {t(lambda: s2.run(None, {'x': x})):.2f} ms, torch.topk {t(lambda: torch.topk(tx, k)):.2f} ms")
# UniqueConsecutive 10M
x = np.repeat(np.random.randint(0, 1000, 4_000_000), np.random.randint(1, 4, 4_000_000)).astype(np.int64)
s = sess([helper.make_node("UniqueConsecutive", ["x"], ["v", "c"], domain="opkit.examples")], [vi("x", TP.INT64, [len(x)])],
         [vi("v", TP.INT64, None), vi("c", TP.INT64, None)])
tx = torch.from_numpy(x)
print(f"UniqueConsecutive {len(x)/1e6:.1f}M int64: custom {t(lambda: s.run(None, {'x': x})):.2f} ms, torch.unique_consecutive {t(lambda: torch.unique_consecutive(tx, return_counts=True)):.2f} ms")
