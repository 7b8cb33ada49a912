"""Per-call overhead of an opkit op at small sizes: ScaledGelu (native kernel) against one-node
built-in ONNX ops of the same size (Relu, Mul, Gelu, and Gelu followed by Mul), in one process.

On a shared machine wall time at ~5 us a call is mostly scheduling noise, so this measures the CPU
time of the calling thread (time.thread_time) with intra_op_num_threads=1 (nothing runs on other
threads), interleaved, median of 15 rounds of 2000 calls. Native code runs here, in this script's own
process: this is a benchmark script, not opkit.

    opkit build && python benchmarks/call_overhead.py [LIBRARY] [--sizes 1024,4096]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto as TP
    from onnx import helper as h

    ap = argparse.ArgumentParser()
    ap.add_argument("library", nargs="?", default=str(Path(os.environ.get("OPKIT_BUILD_DIR") or REPO / "build")
                                                      / "release" / "lib" / "libopkit_ops.so"))
    ap.add_argument("--sizes", default="1024")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()

    def sess(nodes):
        g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", TP.FLOAT, None)],
                         [h.make_tensor_value_info("y", TP.FLOAT, None)],
                         initializer=[h.make_tensor("a", TP.FLOAT, [], [1.0])])
        m = h.make_model(g, opset_imports=[h.make_opsetid("", 20), h.make_opsetid("opkit.examples", 1)])
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        so.register_custom_ops_library(args.library)
        return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])

    sessions = {
        "ScaledGelu (native)": sess([h.make_node("ScaledGelu", ["x"], ["y"], domain="opkit.examples", alpha=1.0)]),
        "Relu": sess([h.make_node("Relu", ["x"], ["y"])]),
        "Mul": sess([h.make_node("Mul", ["x", "a"], ["y"])]),
        "Gelu": sess([h.make_node("Gelu", ["x"], ["y"])]),
        "Gelu+Mul": sess([h.make_node("Gelu", ["x"], ["g"]), h.make_node("Mul", ["g", "a"], ["y"])]),
    }
    print(f"thread CPU time per call, 1 thread, median of {args.rounds} rounds x 2000 calls; "
          f"load average {os.getloadavg()[0]:.2f}")
    for n in (int(s) for s in args.sizes.split(",")):
        feeds = {"x": np.random.default_rng(0).standard_normal(n).astype(np.float32)}
        times = {k: [] for k in sessions}
        for _ in range(args.rounds):
            for k, s in sessions.items():
                t0 = time.thread_time()
                for _ in range(2000):
                    s.run(None, feeds)
                times[k].append((time.thread_time() - t0) / 2000)
        med = {k: statistics.median(v) for k, v in times.items()}
        native = med["ScaledGelu (native)"]
        print(f"{n} elements: " + ", ".join(f"{k} {v * 1e6:.2f} us" for k, v in med.items()))
        print("  ScaledGelu / " + ", ".join(f"{k} {native / v:.2f}x" for k, v in med.items() if "native" not in k))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
