"""Speed of the transformer ops (RmsNorm, RotaryEmbedding, LinearAct) against their decompositions.

For each case two ONNX models of the same torch module are run in ONNX Runtime with the same
thread count: (a) exported by opkit, the op one custom node run by the native kernel of the op
library; (b) the op's reference (its torch maths) exported by torch.onnx without opkit, i.e. the
standard ONNX ops a user would have without opkit (ORT applies its usual graph optimisations and
fusions to both). Weights are module parameters (initializers) in both, as in a real model.
Timings are interleaved (a, b, a, b, ...) to share the machine's noise; the table shows medians.

    opkit build                                   # or OPKIT_BUILD_DIR=... opkit build
    python benchmarks/ops_h2.py [--threads 2] [--workspace DIR] [--lib PATH] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def default_lib() -> Path:
    build = Path(os.environ.get("OPKIT_BUILD_DIR") or REPO / "build")
    return build / "release" / "lib" / "libopkit_ops.so"


def export_pair(module, inputs, op, folder: Path, name: str):
    """(opkit model path, decomposed model path) for one module whose forward calls `op`."""
    import torch

    from opkit.export.driver import export

    native = folder / f"{name}.opkit.onnx"
    export(module, inputs, native, [op])
    module.use_reference = True
    decomposed = folder / f"{name}.decomposed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, inputs, dynamo=True, optimize=True, verbose=False, report=False)
    program.save(str(decomposed), external_data=False)
    module.use_reference = False
    return native, decomposed


def session(path: Path, threads: int, lib: Path | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    if lib is not None:
        so.register_custom_ops_library(str(lib))
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def bench_pair(sa, sb, feeds: dict, budget: float) -> tuple[list[float], list[float]]:
    """Interleaved timings (seconds) of two sessions on the same feeds, after a warm-up."""
    names_a = {i.name for i in sa.get_inputs()}
    names_b = {i.name for i in sb.get_inputs()}
    fa = {k: v for k, v in feeds.items() if k in names_a}
    fb = {k: v for k, v in feeds.items() if k in names_b}
    for _ in range(3):
        sa.run(None, fa)
        sb.run(None, fb)
    ta: list[float] = []
    tb: list[float] = []
    end = time.perf_counter() + budget
    while (len(ta) < 10 or time.perf_counter() < end) and len(ta) < 2000:
        t0 = time.perf_counter()
        sa.run(None, fa)
        t1 = time.perf_counter()
        sb.run(None, fb)
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return ta, tb


def cases(quick: bool):
    """(name, module, example inputs as a dict name -> tensor, opkit op)."""
    import torch

    from ops.linear_act.spec import linear_act
    from ops.rms_norm.spec import rms_norm
    from ops.rotary_embedding.spec import rotary_embedding

    class RmsNormM(torch.nn.Module):
        def __init__(self, d, dtype):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(d, dtype=dtype))
            self.use_reference = False

        def forward(self, x):
            f = rms_norm.reference if self.use_reference else rms_norm
            return f(x, self.weight, 1e-6)

    class RopeM(torch.nn.Module):
        def __init__(self, interleaved):
            super().__init__()
            self.interleaved = interleaved
            self.use_reference = False

        def forward(self, x, positions):
            f = rotary_embedding.reference if self.use_reference else rotary_embedding
            return f(x, positions, 10000.0, self.interleaved)

    class LinearActM(torch.nn.Module):
        def __init__(self, k, n, act, bias=True):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(n, k) / k ** 0.5)
            self.bias = torch.nn.Parameter(torch.randn(n)) if bias else None
            self.act = act
            self.use_reference = False

        def forward(self, x):
            f = linear_act.reference if self.use_reference else linear_act
            return f(x, self.weight, self.bias, self.act)

    g = torch.Generator().manual_seed(0)
    out = []
    for rows, d in ([(1024, 4096)] if quick else [(1024, 4096), (16, 4096), (1, 1024)]):
        for dt in ([torch.float32] if quick else [torch.float32, torch.float16]):
            x = torch.randn(rows, d, generator=g).to(dt)
            out.append((f"RmsNorm {str(dt)[6:]} [{rows}, {d}]", RmsNormM(d, dt), {"x": x}, rms_norm))
    for inter in (False, True):
        x = torch.randn(4, 32, 512, 64, generator=g)
        pos = torch.arange(512)
        out.append((f"RotaryEmbedding float32 [4, 32, 512, 64] interleaved={inter}", RopeM(inter),
                    {"x": x, "positions": pos}, rotary_embedding))
    lin = [(512, 1024, 1024, "gelu"), (2048, 768, 3072, "gelu")]
    if not quick:
        lin += [(512, 1024, 1024, "relu"), (512, 1024, 1024, "silu"), (512, 1024, 1024, "none"),
                (64, 4096, 4096, "gelu"), (8, 1024, 1024, "gelu")]
    for m, k, n, act in lin:
        x = torch.randn(m, k, generator=g)
        out.append((f"LinearAct float32 M={m} K={k} N={n} {act}", LinearActM(k, n, act), {"x": x}, linear_act))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workspace", type=Path, default=REPO, help="the workspace whose ops/ to import (default: repo)")
    ap.add_argument("--lib", type=Path, default=None, help="the op library (default: the build folder's)")
    ap.add_argument("--budget", type=float, default=1.5, help="seconds of timing per case")
    ap.add_argument("--quick", action="store_true", help="only the 4M-element / main cases")
    ap.add_argument("--only", default="", help="run only the cases whose name contains this text")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(args.workspace.resolve()))
    lib = args.lib or default_lib()
    if not lib.is_file():
        print(f"no op library at {lib}: run `opkit build` first (or pass --lib)", file=sys.stderr)
        return 2

    import logging

    import onnxruntime as ort
    import torch

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    torch.manual_seed(0)
    rows = []
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}, intra-op threads {args.threads}, "
          f"library {lib}")
    print(f"{'case':<58} {'opkit ms':>9} {'decomp ms':>10} {'ratio':>6}")
    with tempfile.TemporaryDirectory(prefix="opkit-bench-") as tmp:
        for name, module, feeds, op in cases(args.quick):
            if args.only not in name:
                continue
            module.eval()
            with torch.no_grad():
                native, decomposed = export_pair(module, tuple(feeds.values()), op, Path(tmp),
                                                 name.split()[0] + str(len(rows)))
            sa = session(native, args.threads, lib)
            sb = session(decomposed, args.threads, None)
            np_feeds = {k: v.numpy() for k, v in feeds.items()}
            ta, tb = bench_pair(sa, sb, np_feeds, args.budget)
            a, b = statistics.median(ta) * 1e3, statistics.median(tb) * 1e3
            rows.append({"case": name, "opkit_ms": a, "decomposed_ms": b, "ratio": a / b, "samples": len(ta)})
            print(f"{name:<58} {a:>9.3f} {b:>10.3f} {a / b:>6.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "ort": ort.__version__, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
