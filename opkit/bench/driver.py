"""The bench pipeline: build -> import the op (or model) -> make inputs -> export the native model and
the reference as standard ONNX ops -> measure in a child process -> report."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opkit import ui
from opkit.build.workspace import Workspace
from opkit.errors import ExportError, UsageError
from opkit.runtimes.child import ChildResult, crash_error

DEFAULT_SIZES = "1K,64K,4M"
ROW_LEN = 4096  # free inputs are (n / 4096, 4096) from 4096 elements up, (1, n) below
VARIANTS = ("native", "onnx", "eager", "builtin", "against")
TITLES = {"native": "native (a)", "onnx": "ONNX ops (b)", "eager": "torch eager (c)", "builtin": "built-in (d)",
          "against": "--against (e)"}


def parse_sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)\s*", part)
        if not m or int(m.group(1)) <= 0:
            raise UsageError(f"bad size {part.strip()!r} in --sizes {text!r}", expected="positive counts of elements "
                             "like 1024, 64K or 4M, separated by commas", fix="e.g. --sizes 1K,64K,4M")
        mult = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
        out.append(int(m.group(1)) * mult)
    return out


def size_label(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)}M"
    if n % 1024 == 0:
        return f"{n // 1024}K"
    return str(n)


def fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


@dataclass
class Row:
    label: str
    size: int | None
    dtype: str
    shapes: str
    stats: dict[str, dict] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    work: dict[str, float] = field(default_factory=dict)  # flops / bytes of one call (spec's flops=, bytes=)
    size_text: str = ""  # the size column, when not a size in elements ("case 2" of the spec's bench shapes)

    def median(self, v: str) -> float | None:
        s = self.stats.get(v)
        return s["median_s"] if s else None

    def rates(self, v: str) -> dict[str, float]:
        """GFLOP/s and GB/s of variant v (where the spec states the work)."""
        t = self.median(v)
        if not t or v == "builtin":  # the built-in Relu does other work
            return {}
        return {k: self.work[w] / t / 1e9 for k, w in (("gflops", "flops"), ("gbps", "bytes")) if w in self.work}

    def ratio(self, a: str, b: str) -> float | None:
        x, y = self.median(a), self.median(b)
        return x / y if x and y else None

    def to_dict(self) -> dict:
        rates = {v: self.rates(v) for v in self.stats}
        return {"label": self.label, "elements": self.size, "dtype": self.dtype, "shapes": self.shapes,
                "work": self.work, "rates": rates, "stats": self.stats, "errors": self.errors, "notes": self.notes,
                "ratios": {"native/onnx": self.ratio("native", "onnx"), "native/eager": self.ratio("native", "eager"),
                           "native/builtin": self.ratio("native", "builtin"),
                           "native/against": self.ratio("native", "against")}}


@dataclass
class BenchReport:
    target: str
    kind: str  # "op" | "model"
    threads: int
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)
    runtime: str = "onnxruntime"  # where (a), (b) and (d) run (opkit/runtimes/)
    reference: str = "as standard ONNX ops"  # how (b) runs the reference there

    def to_dict(self) -> dict:
        return {"target": self.target, "kind": self.kind, "runtime": self.runtime, "threads": self.threads,
                "env": self.env,
                "notes": self.notes, "rows": [r.to_dict() for r in self.rows],
                "columns": {v: TITLES[v] for v in VARIANTS}}

    def render(self) -> str:
        what = "op" if self.kind == "op" else "model"
        rt = self.runtime
        lines = [f"{what}: {self.target}   runtime: {rt} {self.env.get(rt, '?')}",
                 f"threads: {self.threads} ({rt}'s threads, torch.set_num_threads); "
                 f"onnxruntime {self.env.get('onnxruntime', '?')}, torch {self.env.get('torch', '?')}; "
                 f"load average {self.env.get('load_before', 0):.2f} -> {self.env.get('load_after', 0):.2f} "
                 f"on {self.env.get('cpus', '?')} CPUs; onnxruntime idle threads "
                 f"{'spin' if self.env.get('ort_spinning') else 'do not spin (--spin to allow)'}",
                 self.env.get("legend") or
                 (f"(a) native kernel in {rt}  (b) the reference {self.reference} in {rt}  "
                  "(c) the reference in torch eager" +
                  ("  (d) a one-node built-in op (Relu) of the same size" if self.reference == BenchReport.reference
                   else "")
                  if self.kind == "op" else
                  f"(a) the model in {rt} with the op library  (b) the model decomposed (each op's reference "
                  f"{self.reference}) in {rt}  (c) the model in torch eager"),
                 "times: median per call over interleaved rounds, +- the interquartile spread", ""]
        cols = [v for v in VARIANTS if any(v in r.stats or v in r.errors for r in self.rows)]
        titles = dict(TITLES, onnx="ONNX ops (b)" if self.reference == BenchReport.reference else "reference (b)") | \
            self.env.get("titles", {})
        head = ["size", "dtype", "shapes"] + [titles[v] for v in cols] + \
               [h for h, v in (("a/b", "onnx"), ("a/c", "eager"), ("a/d", "builtin"), ("a/e", "against")) if v in cols]
        table = [head]
        for r in self.rows:
            cells = [r.size_text or (size_label(r.size) if r.size else "example"), r.dtype, r.shapes]
            for v in cols:
                s = r.stats.get(v)
                rate = r.rates(v)
                extra = "".join(f" {rate[k]:.3g} {u}" for k, u in (("gflops", "GFLOP/s"), ("gbps", "GB/s"))
                                if k in rate)
                cells.append(f"{fmt_time(s['median_s'])} +-{100 * s['spread']:.0f}%{extra}" if s else
                             ("error" if v in r.errors else "-"))
            for v in ("onnx", "eager", "builtin", "against"):
                if v in cols:
                    q = r.ratio("native", v)
                    cells.append(("-" if q is None else f"{q:.2f}" if q >= 0.095 else f"{q:.2g}"))
            table.append(cells)
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        for row in table:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        for r in self.rows:
            for v, e in r.errors.items():
                lines.append(f"error: {r.dtype} {size_label(r.size) if r.size else 'example'} {TITLES[v]}: {e}")
        for n in self.notes:
            lines.append(f"note: {n}")
        return "\n".join(lines)


# ---- inputs --------------------------------------------------------------------------------------

def template_shape(n: int, row: int = ROW_LEN) -> tuple[int, ...]:
    return (n // row, row) if n >= row and n % row == 0 else (1, n)


def make_args(op: Any, combo: dict[str, str], n: int, seed: int = 0, row: int = ROW_LEN,
              fixed: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
    """The op's arguments (param name -> tensor / list / None / attribute value) at about n elements:
    opkit test's input generator (the spec's constraints) with a bench-sized shape template. fixed: input
    shapes of a case from the spec's bench(shapes=...), which replace those inputs' constraints."""
    try:
        import dataclasses
        import types

        from opkit.testing.cases import Plan, config_of, materialize
        from opkit.testing.constraints import DimRef

        # The sizes are the user's choice (--sizes, bench(shapes=...)): opkit test's element budget, which keeps
        # generated test cases small, does not apply.
        cfg = dataclasses.replace(config_of(op), max_elements=1 << 62, max_case_elements=1 << 62)
        if fixed:
            shapes = dict(cfg.shapes) | {k: tuple(DimRef("const", value=d) for d in v) for k, v in fixed.items()}
            cfg = dataclasses.replace(cfg, shapes=shapes)
        op = types.SimpleNamespace(spec=op.spec, test_config=cfg, bind=op.bind)
        if not cfg.generate:
            raise UsageError(f"{op.spec.name} makes its test inputs only with a custom generator "
                             "(@op.samples with generate=False)", expected="inputs opkit can size",
                             fix="bench it inside a model: `opkit bench model.py`")
        from opkit.testing.cases import _default_attr

        attrs = {a.name: _default_attr(a, cfg) for a in op.spec.attrs}
        present = {i.name: True for i in op.spec.inputs if i.optional}
        plan = Plan(dict(combo), attrs, ("bench", template_shape(n, row)), present, 2, False, "bench")
        case = materialize(op, [plan], 0, seed)[0]
        if case.skipped:
            raise UsageError(f"cannot make inputs of {n} elements for {op.spec.name}: {case.skipped}",
                             fix="check the op's constrain(...) rules")
        return dict(case.args)
    except ImportError:  # opkit.testing missing: plain random tensors of the template shape
        import torch

        from opkit.spec.dtypes import DTYPES, torch_dtype

        g = torch.Generator().manual_seed(seed)
        args: dict[str, Any] = {}
        for name in op.spec.param_order:
            if any(a.name == name for a in op.spec.attrs):
                a = op.spec.attr(name)
                args[name] = a.default
                continue
            i = op.spec.input(name)
            dt = op.spec.resolve(i.type, combo)
            shape = template_shape(n, row)
            if i.type.rank is not None:
                shape = (shape + (1,) * 8)[:i.type.rank]
            t = (torch.randn(shape, generator=g, dtype=torch.float64) if DTYPES[dt].is_float
                 else torch.randint(0, 8, shape, generator=g)).to(torch_dtype(dt))
            args[name] = [t, t.clone()] if i.variadic else t
        return args


def layout_of(op: Any, args: dict[str, Any]) -> tuple[list, list, dict]:
    """(layout [(name, kind, count)], flat tensors in order, attributes). An input the spec declares
    constant is kind "const": held by the module, so that it is an initializer in both exported models."""
    attr_names = {a.name for a in op.spec.attrs}
    constant = {i.name for i in op.spec.constant_inputs}
    layout, flat, attrs = [], [], {}
    for name in op.spec.param_order:
        v = args.get(name)
        if name in attr_names:
            attrs[name] = v
        elif v is None:
            layout.append((name, "none", 0))
        elif name in constant:
            layout.append((name, "const", 1))
        elif isinstance(v, (list, tuple)):
            layout.append((name, "list", len(v)))
            flat.extend(v)
        else:
            layout.append((name, "tensor", 1))
            flat.append(v)
    return layout, flat, attrs


def constants_of(layout: list, args: dict[str, Any]) -> dict[str, Any]:
    return {name: args[name] for name, kind, _ in layout if kind == "const"}


def _module(op: Any, layout: list, attrs: dict, consts: dict[str, Any] | None = None) -> Any:
    import torch

    class OneOp(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, t in (consts or {}).items():  # exported as initializers
                self.register_buffer(name, t)

        def forward(self, *flat: Any) -> Any:
            args: dict[str, Any] = {}
            k = 0
            for name, kind, count in layout:
                if kind == "const":
                    args[name] = getattr(self, name)
                elif kind == "tensor":
                    args[name] = flat[k]
                    k += 1
                elif kind == "list":
                    args[name] = list(flat[k:k + count])
                    k += count
                else:
                    args[name] = None
            return op(**args, **attrs)

    return OneOp().eval()


def _fits(model_path: Path, shapes: list[tuple[int, ...]]) -> bool:
    """Whether an exported model's graph inputs accept these shapes (fixed dims must match)."""
    import onnx

    m = onnx.load(str(model_path), load_external_data=False)
    inputs = [i for i in m.graph.input]
    if len(inputs) != len(shapes):
        return False
    for vi, shape in zip(inputs, shapes):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            return False
        for d, s in zip(dims, shape):
            if d.HasField("dim_value") and d.dim_value != s:
                return False
    return True


def _builtin_model(path: Path, dtype: str, rank: int | None = None) -> Path | None:
    """One Relu node (Neg for integers) on the first input: the per-call cost of a built-in op. `rank`:
    the input's rank, as symbolic dims (OpenVINO's CPU plugin refuses an input of unknown rank)."""
    import onnx
    from onnx import helper

    from opkit.spec.dtypes import DTYPES

    from opkit.spec.dtypes import numpy_dtype

    d = DTYPES[dtype]
    if not d.is_float and not dtype.startswith("int"):
        return None
    try:
        elem = helper.np_dtype_to_tensor_dtype(numpy_dtype(dtype))
    except Exception:
        return None
    node = helper.make_node("Relu" if d.is_float else "Neg", ["x"], ["y"])
    shape = None if rank is None else [f"d{k}" for k in range(rank)]
    g = helper.make_graph([node], "builtin", [helper.make_tensor_value_info("x", elem, shape)],
                          [helper.make_tensor_value_info("y", elem, shape)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _accepts(model_path: Path, flat: list) -> bool:
    """Whether an ONNX model takes these tensors: same count and element types."""
    import onnx
    from onnx import helper

    m = onnx.load(str(model_path), load_external_data=False)
    types = [vi.type.tensor_type.elem_type for vi in m.graph.input]
    try:
        got = [helper.np_dtype_to_tensor_dtype(t.numpy().dtype) for t in flat]
    except Exception:
        return False
    return types == got


def _save_inputs(flat: list, folder: Path) -> None:
    from opkit.verify.driver import save_inputs

    save_inputs(flat, folder)


def _shapes_text(layout: list, flat: list, consts: dict[str, Any] | None = None) -> str:
    parts, k = [], 0
    for name, kind, count in layout:
        if kind == "const":
            parts.append(f"{name}={'x'.join(map(str, consts[name].shape)) or 'scalar'}(const)")
        elif kind == "tensor":
            parts.append(f"{name}={'x'.join(map(str, flat[k].shape)) or 'scalar'}")
            k += 1
        elif kind == "list":
            parts.append(f"{name}={count}x[{'x'.join(map(str, flat[k].shape))}]")
            k += count
    return " ".join(parts)


def _export_case(op: Any, module: Any, flat: list, folder: Path, stem: str) -> tuple[Path, Path | None, str | None]:
    """The one-node model with the custom op, and the reference as standard ONNX ops (None + why, if
    the reference does not export). Dims are dynamic (Dim.AUTO) where torch.export allows."""
    import torch

    from opkit.export.decompose import decompose_export
    from opkit.export.driver import export

    # forward(*flat): the varargs are one tuple argument for torch.export
    dyn = (tuple({i: torch.export.Dim.AUTO for i in range(t.dim())} for t in flat),)
    import logging

    shapes_log = logging.getLogger("torch.fx.experimental.symbolic_shapes")  # "Unable to find user code ..."
    level = shapes_log.level
    shapes_log.setLevel(logging.ERROR)
    try:
        native = export(module, tuple(flat), folder / f"{stem}.native.onnx", [op], dynamic_shapes=dyn).path
        try:
            dec = decompose_export(module, tuple(flat), folder / f"{stem}.onnx_ops.onnx", [op], dynamic_shapes=dyn)
        except ExportError as exc:
            return native, None, exc.what
    finally:
        shapes_log.setLevel(level)
    if not dec.complete:
        why = "; ".join(f"{q}: {w.splitlines()[0]}" for q, w in dec.failed.items()) or \
            f"custom nodes remain: {', '.join(dec.remaining)}"
        return native, None, f"the reference did not export to standard ONNX ops ({why})"
    return native, dec.path, None


def _save_consts(consts: dict[str, Any], folder: Path) -> None:
    """The constant inputs, for torch eager (the ONNX models hold them as initializers)."""
    from opkit.verify.driver import save_inputs

    for name, t in consts.items():
        save_inputs([t], folder / f"const_{name}")


def work_of(op: Any, args: dict[str, Any]) -> dict[str, float]:
    """flops and bytes of one call: the spec's flops= / bytes= on these shapes; bytes defaults to what the
    inputs and outputs occupy (every tensor read or written once)."""
    from opkit.spec.work import Dims, evaluate

    spec = op.spec
    tensors = {i.name: (None if args.get(i.name) is None else
                        Dims(args[i.name].shape, args[i.name].element_size()))
               for i in spec.inputs if not i.variadic}
    attrs = {a.name: args[a.name] for a in spec.attrs}
    out: dict[str, float] = {}
    if spec.flops:
        out["flops"] = evaluate(spec.flops, tensors, attrs)
    if spec.bytes:
        out["bytes"] = evaluate(spec.bytes, tensors, attrs)
    elif spec.flops:
        import torch

        with torch.no_grad():
            res = op.reference(**args)
        outs = res if isinstance(res, (tuple, list)) else (res,)
        total = 0
        for v in args.values():
            for t in (v if isinstance(v, (list, tuple)) else (v,)):
                if isinstance(t, torch.Tensor):
                    total += t.numel() * t.element_size()
        out["bytes"] = float(total + sum(t.numel() * t.element_size() for t in outs))
    return out


# ---- the child -----------------------------------------------------------------------------------

def child_env() -> dict[str, str]:
    """torch's OpenMP threads and onnxruntime's pool spin-wait after parallel work; interleaved in one
    process on few cores they starve each other (torch eager 10-100x slower). Passive OpenMP waiting
    keeps torch sane without touching onnxruntime's defaults. A value the user set is kept."""
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def run_child(job: dict, job_dir: Path, timeout: float) -> ChildResult:
    from opkit.runtimes.child import run_worker

    return run_worker(job, job_dir, timeout=timeout, env=child_env(), module="opkit.bench.worker")


def _versions(runtime: Any = None) -> dict[str, Any]:
    import onnxruntime
    import torch
    extra = {runtime.name: runtime.version()} if runtime is not None and runtime.name != "onnxruntime" else {}
    return extra | {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "cpus": os.cpu_count(),
            "python": sys.version.split()[0], "OMP_WAIT_POLICY": child_env()["OMP_WAIT_POLICY"]}


def _finish(report: BenchReport, rows: list[Row], child: ChildResult, what: str, ops: list[str]) -> BenchReport:
    res = child.result
    for row, got in zip(rows, res.get("cases", [])):
        row.stats = got.get("stats", {})
        row.errors.update(got.get("errors", {}))
    report.rows = rows
    report.env.update(load_before=res.get("load_before", 0.0), load_after=res.get("load_after", 0.0))
    if res.get("eager_error"):
        report.notes.append(f"torch eager could not run: {res['eager_error']}")
    if not child.ok:
        measured = len(res.get("cases", []))
        if measured == 0:
            raise crash_error(what, child, ops)
        report.rows = rows[:measured]
        report.notes.append(f"the measuring process died ({child.crashed or child.error}) after {measured} of {len(rows)} cases")
    return report


def _find_op(ws: Workspace, ops: dict[str, Any], name: str) -> Any:
    for folder, op in ops.items():
        if name in (folder, op.spec.name, op.spec.qualname):
            return op
    raise UsageError(f"no op {name!r} in {ws.root}", expected="an op name, its domain::name or its folder",
                     got=", ".join(sorted(op.spec.name for op in ops.values())) or "no ops",
                     fix="`opkit bench ScaledGelu`, or `opkit bench model.py` for a whole model")


def _runtime(name: str) -> Any:
    from opkit.runtimes import choose

    return choose([name], need="bench")[0]


def _build_for(ws: Workspace, rt: Any) -> list[str]:
    from opkit.build.driver import build

    with ui.step("building the op library" + (f" ({rt.library})" if rt.library != "ort" else "")):
        built = build(ws, runtimes=[rt.library] if rt.library else [])
    return [str(built.library_for(rt.library))] if rt.library else []


def bench_op(ws: Workspace, name: str, *, sizes: list[int] | None, dtypes: list[str] | None = None, threads: int,
             budget: float = 2.0, spread: float = 0.05, timeout: float = 600.0, eager: bool = True,
             against: Path | None = None, spin: bool = False, row: int = ROW_LEN,
             runtime: str = "onnxruntime") -> BenchReport:
    """against: an ONNX model of standard ops taking the op's inputs in order (e.g. Gelu then Mul for
    ScaledGelu), timed as column (e). spin: leave ONNX Runtime's idle threads spinning (its default);
    off by default here, since the idle pools of the other sessions in the process then steal the cores
    from the one being timed (spreads of 100-500 % instead of 1-5 % at 64K elements on 2 cores)."""
    rt = _runtime(runtime)
    libraries = _build_for(ws, rt)
    with ui.step("importing torch and the specs"):
        import torch  # noqa: F401

        from opkit.build.specs import add_to_path, import_ops

        add_to_path(ws)
        ops = import_ops(ws)
    op = _find_op(ws, ops, name)
    folder = op.spec.folder
    art = ws.build_dir / "bench" / folder
    art.mkdir(parents=True, exist_ok=True)
    combos = op.spec.kernel_combos or [{}]
    if dtypes:
        label_of = {tuple(c.values()): c for c in combos}
        wanted = [c for c in combos if any(d in c.values() for d in dtypes)]
        if not wanted:
            raise UsageError(f"{op.spec.name} has no kernel for dtype {', '.join(dtypes)}",
                             got=", ".join("/".join(k) for k in label_of) or "fixed dtypes")
        combos = wanted
    report = BenchReport(op.spec.qualname, "op", threads, env=_versions(rt) | {"ort_spinning": spin},
                         runtime=rt.name)
    if rt.artifact != "onnx":
        report.reference = f"lowered to {rt.short}'s own kernels"
    use_shapes = sizes is None and bool(getattr(op, "bench_shapes", None))
    sizes = sizes or parse_sizes(DEFAULT_SIZES)
    if op.spec.constant_inputs:
        report.notes.append("constant inputs (" + ", ".join(i.name for i in op.spec.constant_inputs) +
                            ") are initializers in both models and held by the module in torch eager")
    rows: list[Row] = []
    cases: list[dict] = []
    skipped_against: set[str] = set()
    what = "as standard ONNX ops" if rt.artifact == "onnx" else f"lowered to {rt.short}'s own kernels"
    with ui.step(f"exporting {op.spec.name}: one-node model and its reference {what}"):
        for ci, combo in enumerate(combos):
            dlabel = ",".join(combo.values()) or ",".join(
                sorted({op.spec.resolve(i.type, combo) for i in op.spec.inputs})) or "-"
            exported: tuple[Path, Path | None, str | None] | None = None
            first_dtype = None
            if use_shapes:  # the spec's bench(shapes=...), in its order
                items = [(k, fixed) for k, fixed in enumerate(op.bench_shapes)]
            else:  # export from a size with no dim of 1
                items = [(n, None) for n in sorted(sizes, key=lambda s: (s < row * 2, -s))]
            for n, fixed in items:
                args = make_args(op, combo, n if fixed is None else 1, row=row, fixed=fixed)
                layout, flat, attrs = layout_of(op, args)
                consts = constants_of(layout, args)
                shapes = [tuple(t.shape) for t in flat]
                stem = f"c{ci}"
                if rt.artifact != "onnx":  # e.g. ExecuTorch: a program per size (its buffers are planned ahead)
                    exported = rt.bench_models(op, lambda fn, la=layout, at=attrs, c=consts: _module(fn, la, at, c),
                                               flat, art, f"c{ci}_{n}")
                elif exported is None or consts or not _fits(exported[0], shapes) or \
                        (exported[1] is not None and not _fits(exported[1], shapes)):
                    stem = f"c{ci}_{n}" if exported is not None else stem
                    exported = _export_case(op, _module(op, layout, attrs, consts), flat, art, stem)
                native, onnx_ops, why = exported
                inputs = art / f"c{ci}_{n}" / "inputs"
                _save_inputs(flat, inputs)
                _save_consts(consts, inputs)
                first_dtype = first_dtype or (str(flat[0].dtype).replace("torch.", "") if flat else None)
                variants = {"native": str(native)}
                size = n if fixed is None else (flat[0].numel() if flat else 0)
                label = size_label(n) if fixed is None else f"case {n}"
                case_row = Row(f"{dlabel} {label}", size, dlabel, _shapes_text(layout, flat, consts))
                case_row.work = work_of(op, args)
                case_row.size_text = "" if fixed is None else label
                if onnx_ops is not None:
                    variants["onnx"] = str(onnx_ops)
                else:
                    case_row.errors["onnx"] = why or "the reference did not export"
                if against is not None and _accepts(against, flat):
                    variants["against"] = str(Path(against).resolve())
                elif against is not None:
                    skipped_against.add(dlabel)
                if flat and first_dtype and rt.artifact == "onnx":
                    b = _builtin_model(art / f"builtin_{first_dtype}_{flat[0].dim()}d.onnx", first_dtype,
                                       flat[0].dim())
                    if b is not None:
                        variants["builtin"] = str(b)
                rows.append(case_row)
                cases.append({"label": case_row.label, "inputs": str(inputs), "count": len(flat), "layout": layout,
                              "consts": sorted(consts),
                              "attrs": attrs, "variants": variants,
                              "dtypes": [str(t.dtype).replace("torch.", "") for t in flat]})
        order = sorted(range(len(rows)), key=lambda k: (rows[k].dtype, 0 if use_shapes else rows[k].size))
        rows = [rows[k] for k in order]
        cases = [cases[k] for k in order]
    if skipped_against:
        report.notes.append(f"--against {against} was not timed for {', '.join(sorted(skipped_against))}: "
                            "its inputs have other dtypes or count")
    job = {"runtime": rt.name, "threads": threads, "libraries": libraries, "budget": budget, "spread": spread,
           "spin": spin, "cases": cases,
           "eager": {"kind": "op", "workspace": str(ws.root), "folder": folder} if eager else None}
    with ui.step(f"measuring {len(cases)} case(s) in a child process ({threads} thread(s), up to {budget:g} s each)"):
        child = run_child(job, art / "job", timeout)
    return _finish(report, rows, child, f"benchmarking {op.spec.qualname}", [op.spec.qualname])


def bench_model(ws: Workspace, model_path: Path, *, threads: int, budget: float = 2.0, spread: float = 0.05,
                timeout: float = 600.0, eager: bool = True, spin: bool = False,
                runtime: str = "onnxruntime") -> BenchReport:
    rt = _runtime(runtime)
    libraries = _build_for(ws, rt)
    with ui.step("importing torch and the model"):
        from opkit.build.specs import add_to_path, import_ops
        from opkit.spec.decorator import record_calls, registered_ops
        from opkit.verify.modelfile import load_model_file

        add_to_path(ws)
        mf = load_model_file(model_path, ws.root)
        import_ops(ws)
    art = ws.build_dir / "bench" / f"model_{model_path.stem}"
    art.mkdir(parents=True, exist_ok=True)
    import torch

    with torch.no_grad(), record_calls() as calls:
        mf.model.eval()(*mf.example_inputs)
    if rt.artifact != "onnx":  # e.g. ExecuTorch: its own programs of the model and of the references
        return _bench_model_programs(ws, rt, mf, model_path, art, sorted(calls), libraries=libraries,
                                     threads=threads, budget=budget, spread=spread, timeout=timeout, eager=eager)
    with ui.step("exporting the model with the op library, and decomposed (references as standard ONNX ops)"):
        from opkit.export.decompose import decompose_export
        from opkit.export.driver import export

        native = export(mf.model, mf.example_inputs, art / "model.native.onnx", registered_ops(),
                        dynamic_shapes=mf.dynamic_shapes).path
        row = Row("example inputs", None, ",".join(sorted({str(t.dtype).replace("torch.", "")
                                                           for t in mf.example_inputs})),
                  " ".join("x".join(map(str, t.shape)) for t in mf.example_inputs))
        variants = {"native": str(native)}
        try:
            dec = decompose_export(mf.model, mf.example_inputs, art / "model.onnx_ops.onnx", registered_ops(),
                                   dynamic_shapes=mf.dynamic_shapes)
            if dec.remaining:
                row.notes.append(f"custom nodes remain in the decomposed model: {', '.join(dec.remaining)}")
                row.errors["onnx"] = "the references of " + ", ".join(dec.failed or dec.remaining) + \
                    " did not export to standard ONNX ops"
            else:
                variants["onnx"] = str(dec.path)
        except ExportError as exc:
            row.errors["onnx"] = exc.what
        _save_inputs(list(mf.example_inputs), art / "inputs")
    report = BenchReport(str(model_path), "model", threads, env=_versions(rt) | {"ort_spinning": spin},
                         runtime=rt.name)
    report.notes.append("ops in the model: " + (", ".join(sorted(calls)) or "none"))
    job = {"runtime": rt.name, "threads": threads, "libraries": libraries, "budget": budget, "spread": spread,
           "spin": spin,
           "cases": [{"label": row.label, "inputs": str(art / "inputs"), "count": len(mf.example_inputs),
                      "layout": [], "attrs": {}, "variants": variants,
                      "dtypes": [str(t.dtype).replace("torch.", "") for t in mf.example_inputs]}],
           "eager": {"kind": "model", "workspace": str(ws.root), "model": str(model_path.resolve())} if eager else None}
    with ui.step(f"measuring in a child process ({threads} thread(s), up to {budget:g} s)"):
        child = run_child(job, art / "job", timeout)
    return _finish(report, [row], child, f"benchmarking {model_path}", sorted(calls))


def _bench_model_programs(ws: Workspace, rt: Any, mf: Any, model_path: Path, art: Path, calls: list[str], *,
                          libraries: list[str], threads: int, budget: float, spread: float, timeout: float,
                          eager: bool) -> BenchReport:
    """`opkit bench model.py` in a runtime that runs its own program format (rt.bench_model_programs)."""
    from opkit.spec.decorator import registered_ops

    row = Row("example inputs", None, ",".join(sorted({str(t.dtype).replace("torch.", "")
                                                       for t in mf.example_inputs})),
              " ".join("x".join(map(str, t.shape)) for t in mf.example_inputs))
    with ui.step(f"exporting the model for {rt.short}, with the kernels and with the references"):
        native, ref, why = rt.bench_model_programs(mf, registered_ops(), art)
        variants = {"native": str(native)}
        if ref is not None:
            variants["onnx"] = str(ref)
        else:
            row.errors["onnx"] = why or "the references did not export"
        _save_inputs(list(mf.example_inputs), art / "inputs")
    report = BenchReport(str(model_path), "model", threads, env=_versions(rt), runtime=rt.name,
                         reference=f"lowered to {rt.short}'s own kernels")
    report.notes.append("ops in the model: " + (", ".join(calls) or "none"))
    job = {"runtime": rt.name, "threads": threads, "libraries": libraries, "budget": budget, "spread": spread,
           "cases": [{"label": row.label, "inputs": str(art / "inputs"), "count": len(mf.example_inputs),
                      "layout": [], "attrs": {}, "variants": variants,
                      "dtypes": [str(t.dtype).replace("torch.", "") for t in mf.example_inputs]}],
           "eager": {"kind": "model", "workspace": str(ws.root), "model": str(model_path.resolve())} if eager else None}
    with ui.step(f"measuring in a child process ({threads} thread(s), up to {budget:g} s)"):
        child = run_child(job, art / "job", timeout)
    return _finish(report, [row], child, f"benchmarking {model_path}", calls)
