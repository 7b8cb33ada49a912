"""The verify pipeline: build -> eager -> export -> graph check -> each chosen runtime (child process)
-> compare with eager -> other sizes. The runtimes (opkit/runtimes/) are iterated; none is special."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from opkit import jsonio, ui
from opkit.build.workspace import Workspace
from opkit.errors import ExportError, NativeRunError, UsageError
from opkit.verify.arrays import load_npy, to_numpy
from opkit.verify.compare import compare
from opkit.runtimes.child import crash_error
from opkit.runtimes.base import Job, Outcome, Prepare, Runtime, RunSpec
from opkit.verify.report import Report, Run


def flatten_outputs(out: Any) -> list:
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flatten_outputs(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in flatten_outputs(o)]
    raise ExportError(f"the model returned {type(out).__name__}", expected="a tensor or a tuple of tensors")


def output_labels(out: Any, path: str = "output") -> list[str]:
    """The model's name of each output, in flatten_outputs' order: "output" for a single tensor, "output[1]"
    for a tuple or list item, the key for a dict item ("logits"), nested as "output[1]['h']"."""
    import torch

    if isinstance(out, torch.Tensor):
        return [path]
    if isinstance(out, (tuple, list)):
        return [n for i, o in enumerate(out) for n in output_labels(o, f"{path}[{i}]")]
    if isinstance(out, dict):
        return [n for k, o in out.items() for n in output_labels(o, str(k) if path == "output" else f"{path}[{k!r}]")]
    return [path]


def graph_nodes(model: Any) -> set[tuple[str, str]]:
    from opkit.check.nodes import graphs

    found = {(n.domain, n.op_type) for g in graphs(model.graph) for n in g.node}  # with torch.cond branches
    for f in model.functions:
        found |= {(n.domain, n.op_type) for n in f.node}
    return found


def ops_behind(model: Any, output: str, custom: set[tuple[str, str]]) -> list[str]:
    """The custom ops that the given graph output depends on."""
    producer = {o: n for n in model.graph.node for o in n.output}
    seen, stack, found = set(), [output], []
    while stack:
        name = stack.pop()
        node = producer.get(name)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if (node.domain, node.op_type) in custom:
            found.append(f"{node.domain}::{node.op_type} (node {node.name})")
        stack.extend(i for i in node.input if i)
    return sorted(set(found))


def save_inputs(tensors: list, folder: Path) -> list[list[int]]:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for k, t in enumerate(tensors):
        np.save(folder / f"{k}.npy", to_numpy(t), allow_pickle=False)
    return [list(t.shape) for t in tensors]


def _dims_of(dynamic_shapes: Any, example_inputs: tuple, model: Any) -> list[list[tuple[int, Any]]]:
    """For each input, [(axis, Dim or hint)] from a torch.export-style dynamic_shapes."""
    import inspect

    n = len(example_inputs)
    if dynamic_shapes is None:
        return [[] for _ in range(n)]
    if isinstance(dynamic_shapes, dict):
        params = list(inspect.signature(model.forward).parameters)
        per_input = [dynamic_shapes.get(p) for p in params[:n]]
    else:
        per_input = list(dynamic_shapes) + [None] * (n - len(dynamic_shapes))
    out = []
    for spec in per_input:
        if spec is None:
            out.append([])
        elif isinstance(spec, dict):
            out.append(sorted(spec.items()))
        else:
            out.append([(ax, d) for ax, d in enumerate(spec) if d is not None])
    return out


def other_sizes(example_inputs: tuple, dynamic_shapes: Any, model: Any, count: int = 2) -> list[tuple[str, list]]:
    """New inputs at other sizes of the dynamic dimensions (dims sharing a Dim change together)."""
    import torch

    dims = _dims_of(dynamic_shapes, example_inputs, model)
    groups: dict[str, tuple[int, int, int]] = {}  # key -> (original size, min, max)
    keys: list[list[tuple[int, str]]] = []
    for i, axes in enumerate(dims):
        row = []
        for ax, d in axes:
            key = getattr(d, "__name__", None) or f"input{i}.dim{ax}"
            size = example_inputs[i].shape[ax]
            lo = getattr(d, "min", 2) or 2
            hi = getattr(d, "max", None)
            hi = hi if isinstance(hi, int) and hi < 2**31 else 4 * size + 8
            groups.setdefault(key, (size, max(2, lo), hi))
            row.append((ax, key))
        keys.append(row)
    if not groups:
        return []
    variants = []
    g = torch.Generator().manual_seed(1234)
    for v in range(count):
        sizes = {}
        for key, (size, lo, hi) in groups.items():
            want = size + 3 if v == 0 else 2 * size + 1
            if want > hi:
                want = max(lo, size - 1) if v == 0 else hi
            sizes[key] = min(max(want, lo), hi)
        tensors = []
        for i, t in enumerate(example_inputs):
            shape = list(t.shape)
            for ax, key in keys[i]:
                shape[ax] = sizes[key]
            tensors.append(_like(t, shape, g))
        label = "other sizes: " + ", ".join(f"{k}={s}" for k, s in sizes.items())
        variants.append((label, tensors))
    return variants


def _like(t: Any, shape: list[int], g: Any) -> Any:
    import torch

    if t.dtype.is_floating_point:
        return torch.randn(shape, generator=g, dtype=torch.float32).to(t.dtype)
    if t.dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    lo = int(t.min()) if t.numel() else 0
    hi = int(t.max()) if t.numel() else 1
    return torch.randint(lo, hi + 1, shape, generator=g, dtype=torch.int64).to(t.dtype)


def choose_runtimes(names: list[str] | None, *, native: bool, sanitize: bool,
                    notes: list[str]) -> list[Runtime]:
    """The runtimes to verify in; what --no-native / --sanitize leave out goes to `notes`."""
    from opkit.runtimes import choose

    chosen = choose(names)
    kept = []
    for rt in chosen:
        if rt.cpp and not native:
            notes.append(f"the {rt.backend} was skipped (--no-native)" if rt.backend.endswith("runner")
                         else f"{rt.name} was skipped (--no-native)")
        elif sanitize and not rt.sanitize:
            notes.append(f"the {rt.backend} was skipped (--sanitize)" if rt.backend.endswith("runner")
                         else f"{rt.name} was skipped (--sanitize: {rt.no_sanitize_why})")
        else:
            kept.append(rt)
    if not kept:
        raise UsageError("no runtime is left to verify in", got=", ".join(rt.name for rt in chosen),
                         details="\n".join(notes),
                         fix="drop --no-native / --sanitize, or choose another --runtime")
    return kept


def verify(model_path: Path, ws: Workspace, **options: Any) -> Report:
    """Verify a model file (options: those of _verify). The libraries it builds stay as built until it is done
    (a concurrent build waits), and one verify of a model runs at a time (its artifacts are shared)."""
    with contextlib.ExitStack() as held:
        return _verify(model_path, ws, held=held, **options)


def _verify(model_path: Path, ws: Workspace, *, held: contextlib.ExitStack, sanitize: bool = False,
            timeout: float | None = None, opset: int | None = None, native: bool = True, backend: str = "native",
            exporter: str = "dynamo", fresh: bool = False, runtimes: list[str] | None = None) -> Report:
    """`runtimes`: names as --runtime takes them (None: the default set; `backend="python"` is the older
    spelling of runtimes=["python"])."""
    from opkit.build.driver import build
    from opkit.build.lock import run_lock

    if runtimes is None and backend == "python":
        runtimes = ["python"]
    notes: list[str] = []
    chosen = choose_runtimes(runtimes, native=native, sanitize=sanitize, notes=notes)
    timings: dict[str, float] = {}
    built = None
    kinds = list(dict.fromkeys(rt.library for rt in chosen if rt.library))
    if kinds:
        with ui.step("building the op librar" + ("y" if kinds == ["ort"] else "ies (" + ", ".join(kinds) + ")"),
                     timings, "build"):
            built = build(ws, sanitize=sanitize, runtimes=kinds, hold=held)
        ui.detail(f"{'built' if built.compiled else 'up to date'}: " +
                  ", ".join(str(built.library_for(k)) for k in kinds))
    if any(rt.library is None for rt in chosen):  # the Python references need no library: kernels may be unwritten
        ui.info("python backend: each op's reference runs inside ONNX Runtime (no op library needed)")
    from opkit.verify import cache as vcache  # incremental verify: no torch when only kernels changed

    art = ws.build_dir / "verify" / model_path.stem  # artifacts, and the verify cache
    held.enter_context(run_lock(art.parent / f"{model_path.stem}.lock", f"opkit verify of {model_path.name}"))
    cache_key = vcache.cache_key(model_path, ws, {"exporter": exporter, "opset": opset})
    cacheable = built is not None and all(rt.library and rt.artifact == "onnx" for rt in chosen)
    if cacheable and not fresh:
        entry, why = vcache.lookup(art, cache_key)
        if entry is not None:
            return vcache.verify_cached(entry, model_path, ws, built, sanitize=sanitize, timeout=timeout,
                                        runtimes=chosen, notes=notes, timings=timings)
        ui.detail(f"verify cache: {why}: exporting again")
    elif fresh:
        ui.detail("verify cache: --fresh: exporting again")
    vcache.invalidate(art)

    with ui.step("importing torch and the model", timings, "load"):
        import torch

        from opkit.build.specs import add_to_path, import_ops
        from opkit.spec.decorator import record_calls, registered_ops
        from opkit.verify.modelfile import load_model_file

        add_to_path(ws)
        mf = load_model_file(model_path, ws.root)
        import_ops(ws)  # the translation table covers every op of the workspace
    art.mkdir(parents=True, exist_ok=True)

    with ui.step("running the model eagerly", timings, "eager"):
        mf.model.eval()
        with torch.no_grad(), record_calls() as calls:
            returned = mf.model(*mf.example_inputs)
        eager = flatten_outputs(returned)

    with ui.step(f"exporting to ONNX (torch.onnx, {exporter})", timings, "export"):
        from opkit.export.legacy import export_model

        exported = export_model(mf.model, mf.example_inputs, art / "model.onnx", registered_ops(),
                                exporter=exporter, dynamic_shapes=mf.dynamic_shapes, opset=opset)
    # The model calls an adopted op's original (aten::cummax), not the opkit op: it is used when its node is there.
    nodes = graph_nodes(exported.model)
    calls |= {op.spec.qualname for op in registered_ops() if op.spec.adopts and (op.spec.domain, op.spec.name) in nodes}
    ops_called = sorted(calls)
    report = Report(model=str(model_path), library=str(built.library) if built else None,
                    exporter=exported.exporter, opset=exported.opset, ops=ops_called, timings=timings,
                    artifacts=str(art), backend=chosen[0].backend, notes=notes, outputs=output_labels(returned),
                    onnx_model=str(exported.path))

    with ui.step("checking the exported graph", timings, "check"):
        import onnx

        for q in ops_called:
            domain, name = q.split("::")
            if (domain, name) not in nodes:
                raise ExportError(f"{q} was called by the model but is not a node of the exported graph",
                                  expected=f"a node {name} of domain {domain}",
                                  got="the op was decomposed or dropped by the exporter",
                                  fix="call the op through its opkit function (not its reference) in the model")
        from opkit.check.nodes import check_model, findings_error  # opkit check, before ORT sees the model

        checked = check_model(exported.model, [op.spec for op in registered_ops()])
        if not checked.ok:
            raise findings_error(checked, str(exported.path))
        try:
            onnx.checker.check_model(exported.model, full_check=True)
        except Exception as exc:
            raise ExportError(f"onnx.checker rejected the exported model: {exc}", where=str(exported.path)) from None

    runs: list[tuple[str, list]] = [("example inputs", list(mf.example_inputs))]
    runs += other_sizes(mf.example_inputs, mf.dynamic_shapes, mf.model)
    eager_by_run, shapes_by_run = [eager], []
    with ui.step("running the model eagerly at other sizes" if len(runs) > 1 else "preparing inputs", timings,
                 "eager (other sizes)"):
        for k, (label, tensors) in enumerate(runs):
            shapes_by_run.append(save_inputs(tensors, art / f"run{k}" / "inputs"))
            if k:
                with torch.no_grad():
                    eager_by_run.append(flatten_outputs(mf.model(*tensors)))
    ctx = Prepare(onnx_path=exported.path, onnx_model=exported.model,
                  ops=[op for op in registered_ops() if op.spec.qualname in calls], workspace=ws.root, art=art,
                  module=mf.model, model_file=model_path.resolve(), example_inputs=tuple(mf.example_inputs), dynamic_shapes=mf.dynamic_shapes)
    run_and_compare(report, chosen, ctx, ws=ws, model_path=model_path, built=built,
                    labels=[label for label, _ in runs], eager_by_run=eager_by_run, shapes_by_run=shapes_by_run,
                    rtol=mf.rtol, atol=mf.atol, sanitize=sanitize, timeout=timeout, timings=timings, art=art)
    if len(runs) == 1 and mf.dynamic_shapes is None:
        report.notes.append("no dynamic_shapes in the model file: verified at the example sizes only")
    vcache.store(art, cache_key, vcache.meta_of(report, runs, shapes_by_run, eager_by_run, mf.rtol, mf.atol),
                 eager_by_run)
    write_artifacts(report, art)
    return report


def write_artifacts(report: Report, art: Path) -> None:
    """The report in the artifacts folder: report.json for tools, report.html for people."""
    from opkit.codegen.writer import write_atomic

    (art / "report.json").write_text(jsonio.dumps(report.to_dict()))
    write_atomic(art / "report.html", report.html(graph_cache=art / "graph.json"))
    ui.detail(f"report: {art / 'report.html'}")


def graph_ports(model_file: Path) -> tuple[list[str], list[str]]:
    """The graph's input names (without initializers) and output names, in order."""
    import onnx

    m = onnx.load(str(model_file), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    return [i.name for i in m.graph.input if i.name not in inits], [o.name for o in m.graph.output]


def run_and_compare(report: Report, runtimes: list[Runtime], ctx: Prepare, *, ws: Workspace, model_path: Path,
                    built: Any, labels: list[str], eager_by_run: list[list], shapes_by_run: list,
                    rtol: float | None, atol: float | None, sanitize: bool, timeout: float | None,
                    timings: dict[str, float], art: Path, compare_label: str = "comparing with PyTorch") -> None:
    """The second half of verify, shared with the cached path: every runtime runs the input sets
    (<art>/run<k>/inputs) in a child process; each output is compared with the eager one (and, for a
    runtime with compare_with, with that runtime's); the ops behind a mismatch are named.
    `built` is the build result (None when no runtime loads a library); eager outputs are tensors or
    numpy arrays."""
    ops = report.ops
    input_names, output_names = graph_ports(ctx.onnx_path)
    env = _sanitizer_env() if sanitize else None
    outputs: dict[str, list[Path]] = {}
    for rt in runtimes:
        rt_art = art / rt.name
        ctx.art, ctx.options = art, {}
        model_file = rt.prepare(ctx)
        job = Job(model=model_file, libraries=[built.library_for(rt.library)] if rt.library else [],
                  runs=[RunSpec(label, art / f"run{k}" / "inputs", art / f"run{k}" / rt.name)
                        for k, label in enumerate(labels)],
                  work=rt_art, input_names=input_names, output_names=output_names, timeout=timeout,
                  sanitize=sanitize, env=env, options=dict(ctx.options, build_dir=str(ws.build_dir)))
        with ui.step(f"running in {rt.name}: {rt.label} ({len(labels)} input set(s), child process)", timings,
                     rt.name):
            child = rt.run(job)
        _raise_for(rt, child, model_path, ops, labels, ws, outputs)
        names = child.result.get("outputs") or output_names
        report.runtimes.append({"name": rt.name, "label": rt.label, "version": child.result.get("version")
                                or rt.version()})
        with ui.step(f"{compare_label} ({rt.name})", timings, f"compare ({rt.name})"):
            worst = 0.0
            narrowed: set[str] = set()
            other = outputs.get(rt.compare_with or "")
            for k, run in enumerate(job.runs):
                comps = []
                for j, want in enumerate(eager_by_run[k]):
                    got = load_npy(run.outputs / f"{j}.npy")
                    name = names[j] if j < len(names) else f"output{j}"
                    want = to_numpy(want)
                    r_tol, a_tol = _tolerances(rt, want, rtol, atol, narrowed)
                    comps.append(compare(name, got, want, r_tol, a_tol))
                    if other is not None:
                        vs = compare(name, got, load_npy(other[k] / f"{j}.npy"), rtol, atol)
                        worst = max(worst, vs.max_abs)
                        if not vs.ok:
                            report.failures.append(
                                f"output {name!r} ({run.label}): the {rt.backend} and the {rt.compare_with} run "
                                f"disagree (max abs diff {vs.max_abs:.3g}{'; ' + vs.problem if vs.problem else ''})")
                report.runs.append(Run(run.label, comps, rt.backend, shapes_by_run[k], runtime=rt.name))
            if narrowed:
                report.notes.append(f"{rt.name} computes {', '.join(sorted(narrowed))}: those outputs were compared "
                                    "at the narrower dtype's tolerance")
            if other is not None:
                what = "the Python ORT run" if rt.compare_with == "onnxruntime" else f"the {rt.compare_with} run"
                report.notes.append(f"{rt.backend} ({rt.label}): {len(job.runs)} input set(s), max abs diff from "
                                    f"{what} {worst:.3g}")
        outputs[rt.name] = [run.outputs for run in job.runs]
    report.label_outputs()
    bad = [(r, c) for r in report.runs for c in r.comparisons if not c.ok]
    if bad:
        import onnx

        proto = onnx.load(str(ctx.onnx_path), load_external_data=False)
        custom = {tuple(q.split("::")) for q in ops}
        for r, c in bad:
            behind = ops_behind(proto, c.name, custom)
            named = c.label and c.label not in (c.name, "output")  # "output": the model returns one tensor
            what = (f"{c.label!r} (ONNX {c.name!r}, {r.label}, {r.runtime})" if named
                    else f"{c.name!r} ({r.label}, {r.runtime})")
            report.failures.append(f"output {what} differs from PyTorch; ops involved: "
                                   f"{', '.join(behind) or 'none (a standard ONNX op?)'}")


def _tolerances(rt: Runtime, want: np.ndarray, rtol: float | None, atol: float | None,
                narrowed: set[str]) -> tuple[float | None, float | None]:
    """The model's tolerances, or, for a dtype the runtime computes in a narrower one (OpenVINO's float64),
    at least the narrower dtype's defaults; `narrowed` collects "float64 as float32" for the report."""
    from opkit.spec.dtypes import BY_NUMPY, DTYPES

    d = BY_NUMPY.get(want.dtype.name)
    into = rt.narrows.get(d.name) if d else None
    if not into:
        return rtol, atol
    narrowed.add(f"{d.name} as {into}")
    return (max(rtol if rtol is not None else d.rtol, DTYPES[into].rtol),
            max(atol if atol is not None else d.atol, DTYPES[into].atol))


def _raise_for(rt: Runtime, child: Outcome, model_path: Path, ops: list[str], labels: list[str], ws: Workspace,
               done: dict[str, list[Path]]) -> None:
    """A runtime's crash or error as one opkit error naming the runtime (and the op, when known)."""
    if child.crashed:
        if rt.compare_with and rt.compare_with in done:
            raise NativeRunError(
                f"the {rt.compare_with} run passed, but the {rt.backend} died running {model_path} ({child.crashed})",
                details=f"{rt.label}\n{child.stderr.strip()[-2000:]}",
                fix=f"this is specific to the C++ runtime ({rt.label}); rerun with --no-native to skip it, "
                    "and report it")
        raise crash_error(f"running {model_path} in {rt.label}", child, ops, runs=labels, workspace=ws.root,
                          runtime=rt.label)
    if child.error and rt.name == "python":
        from opkit.verify.pyops import python_error

        raise python_error(child.error)
    if child.error:
        raise runtime_error(rt, child.error, ops, ws)
    if not child.ok:
        raise NativeRunError(f"{rt.label} did not finish running {model_path}", details=child.stderr[-2000:])


def _sanitizer_env() -> dict:
    from opkit.testing.sanitize import sanitizer_env

    return sanitizer_env()  # LD_PRELOAD the compiler's libasan, ASAN_OPTIONS/UBSAN_OPTIONS


def runtime_error(rt: Runtime, message: str, ops: list[str], ws: Workspace) -> NativeRunError:
    if "OPKIT_NOT_IMPLEMENTED" in message:
        op = next((o for o in ops if o.split("::")[1] in message), None)
        from opkit.spec.decorator import registered_ops

        folder = next((o.spec.folder for o in registered_ops() if o.spec.qualname == op and o.spec.folder), None)
        kernel = ws.rel(ws.kernel_file(folder)) if folder else "ops/<op>/<op>.cc"
        return NativeRunError(f"the kernel of {op or 'an op'} is not written yet (it is still opkit's skeleton)",
                              details=message.replace("OPKIT_NOT_IMPLEMENTED: ", ""),
                              fix=f"write its maths in {kernel}; meanwhile `opkit verify <model> --backend python` "
                                  "runs each op's reference inside ONNX Runtime, with no kernel needed")
    named = next((o for o in ops if o in message), None)
    return NativeRunError(f"{rt.label} failed to run the exported model" +
                          (f" ({named} reported the error)" if named else ""),
                          details=message.strip()[:2000], fix="the message names the op and what it expected")
