"""The `opkit test` pipeline: build -> import specs -> plan and make cases -> reference + fake (here)
-> native kernel in ORT (child processes) -> compare values, shapes, dtypes -> report."""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from opkit import ui
from opkit.build.workspace import Workspace
from opkit.errors import UsageError
from opkit.spec.dtypes import DTYPES
from opkit.testing.cases import Case, config_of, materialize, plan_cases
from opkit.testing.coverage import coverage
from opkit.testing.report import CaseResult, Failure, OpResult, TestReport

DEFAULT_TIMEOUT = 60.0


def to_numpy(t: Any) -> np.ndarray:
    import torch

    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _outputs(out: Any) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def select_ops(ops: dict[str, Any], names: list[str] | None) -> list[Any]:
    """Ops by name (ScaledGelu), folder (scaled_gelu) or qualname (domain::ScaledGelu)."""
    if not names:
        return [ops[f] for f in sorted(ops)]
    chosen = []
    for n in names:
        hit = [op for f, op in sorted(ops.items()) if n in (op.spec.name, f, op.spec.qualname)]
        if not hit:
            raise UsageError(f"no op named {n!r} in this workspace",
                             expected="one of " + ", ".join(op.spec.name for op in ops.values()), got=n,
                             fix="run `opkit test` without names to test every op")
        chosen += [h for h in hit if h not in chosen]
    return chosen


def repro_command(ws: Workspace, op: Any, case: str, seed: int, sanitize: bool, timeout: float,
                  runtime: str | None = None) -> str:
    cmd = ["opkit", "test", op.spec.name, "--case", case, "--seed", str(seed)]
    if runtime:
        cmd += ["--runtime", runtime]
    if sanitize:
        cmd.append("--sanitize")
    if timeout != DEFAULT_TIMEOUT:
        cmd += ["--timeout", f"{timeout:g}"]
    try:
        Path.cwd().resolve().relative_to(ws.root.resolve())
    except ValueError:
        cmd += ["--workspace", str(ws.root)]
    return shlex.join(cmd)


def make_cases(op: Any, seed: int, only: str | None = None) -> list[Case]:
    """All cases of an op (or only the one with id `only`), in order, with their ids set."""
    plans = plan_cases(op)
    if only is not None:
        head = only.split(".")[0]
        if not head.isdigit() or int(head) >= len(plans):
            raise UsageError(f"{op.spec.name} has no case {only!r}", expected=f"a case id from 0 to {len(plans) - 1}"
                             " (as printed by a failing case's rerun command)", got=only,
                             fix="run `opkit test` without --case; the seed must be the same as before")
        indices = [int(head)]
    else:
        indices = list(range(len(plans)))
    out: list[Case] = []
    for i in indices:
        made = materialize(op, plans, i, seed)
        for k, c in enumerate(made):
            cid = f"{i}.{k}" if plans[i].custom is not None else str(i)
            c.extra["id"] = cid
            if only is None or only == cid or (only == str(i) and plans[i].custom is None):
                out.append(c)
    if only is not None and not out:
        raise UsageError(f"{op.spec.name} has no case {only!r}", fix="use the id a failing case printed")
    return out


def _fake_outputs(op: Any, args: dict[str, Any]) -> list[tuple[list, str]]:
    """(shape with None for data-dependent dims, dtype) of each output from the fake implementation."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    mode = FakeTensorMode(shape_env=ShapeEnv())

    def conv(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return mode.from_tensor(v, static_shapes=True)
        if isinstance(v, list) and v and isinstance(v[0], torch.Tensor):
            return [mode.from_tensor(t, static_shapes=True) for t in v]
        return v

    values = [conv(args[n]) for n in op.spec.param_order]
    with mode:
        out = _outputs(op.torch_op(*values))
    res = []
    for t in out:
        shape = [int(d) if isinstance(d, int) or (hasattr(d, "node") and d.node.is_constant()) else None
                 for d in t.shape]
        res.append((shape, str(t.dtype).removeprefix("torch.")))
    return res


def _save_case(folder: Path, op: Any, case: Case, output_ranks: list[int] | None = None) -> None:
    from opkit.testing.onnxmodel import feeds_and_model
    from opkit.testing.worker import _save

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    feeds, model = feeds_and_model(op.spec, case.combo, case.args)
    (folder / "model.onnx").write_bytes(model)
    meta = []
    for k, (name, t) in enumerate(feeds):
        a = to_numpy(t)
        _save(folder / f"in_{k}.npy", a)
        meta.append((name, str(t.dtype).removeprefix("torch.")))
    (folder / "meta.json").write_text(json.dumps({"inputs": meta, "label": case.label, "inputs_text": case.describe(),
                                                  "output_ranks": output_ranks or []}))
    # The call itself, for the runtimes that call the torch op rather than run the ONNX model (torch).
    import torch

    torch.save([case.args[n] for n in op.spec.param_order], folder / "args.pt")


def _load_out(path: Path, dtype: str) -> np.ndarray:
    a = np.load(path, allow_pickle=False)
    if dtype == "bfloat16":  # came out of the model as float32 (a Cast after the op): exact
        import ml_dtypes

        a = a.astype(ml_dtypes.bfloat16)
    return a


def _value_problem(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str:
    """Where the worst mismatch is: index, got, expected."""
    g = got.astype(np.float64) if got.dtype != np.bool_ else got.astype(np.float64)
    w = want.astype(np.float64) if want.dtype != np.bool_ else want.astype(np.float64)
    bad = ~((g == w) | (np.isnan(g) & np.isnan(w)) | (np.abs(g - w) <= atol + rtol * np.abs(w)))
    n_bad = int(np.sum(bad))
    if n_bad == 0:
        return "values differ"
    excess = np.where(bad, np.nan_to_num(np.abs(g - w), nan=np.inf, posinf=np.inf), -1.0)
    flat = int(np.argmax(excess))
    idx = np.unravel_index(flat, got.shape)
    where = "[" + ", ".join(str(int(i)) for i in idx) + "]"
    return (f"{n_bad} of {got.size} element(s) differ; worst at index {where} (flat {flat} of {got.size}): "
            f"got {g.reshape(-1)[flat]:.6g}, expected {w.reshape(-1)[flat]:.6g} (rtol {rtol:g}, atol {atol:g})")


def run_tests(ws: Workspace, names: list[str] | None = None, **options: Any) -> TestReport:
    """Run the ops' cases in each chosen runtime (opkit.runtimes, default ONNX Runtime): the native
    kernels, or (runtime "python", the older backend="python") the references registered as
    onnxruntime-extensions Python ops, which needs no build. Each op's report says what its cases never
    exercised (its coverage holes); with `strict`, an op with holes fails the run.
    The libraries it builds stay as built until it is done (a concurrent build waits), and one opkit test
    of a workspace runs at a time (build/test/ is shared)."""
    with contextlib.ExitStack() as held:
        return _run_tests(ws, names, held=held, **options)


def _run_tests(ws: Workspace, names: list[str] | None, *, held: contextlib.ExitStack, seed: int = 0,
               sanitize: bool = False, timeout: float = DEFAULT_TIMEOUT, case: str | None = None, threads: int = 2,
               backend: str = "native", strict: bool = False, runtimes: list[str] | None = None) -> TestReport:
    from opkit.build.driver import build
    from opkit.build.lock import run_lock
    from opkit.runtimes import choose
    from opkit.testing.runner import run_cases

    t_start = time.perf_counter()
    if runtimes is None:
        runtimes = ["python"] if backend == "python" else ["onnxruntime"]
    chosen = choose(runtimes, need="cases")
    for rt in chosen:
        if sanitize and not rt.sanitize:
            raise UsageError(f"--sanitize cannot run in the runtime {rt.name}: {rt.no_sanitize_why}",
                             fix=f"drop --sanitize or --runtime {rt.name}" +
                                 (" (--backend python)" if rt.name == "python" else ""))
    kinds = list(dict.fromkeys(rt.library for rt in chosen if rt.library))
    built = None
    if kinds:
        with ui.step("building the op librar" + ("y" if kinds == ["ort"] else "ies (" + ", ".join(kinds) + ")") +
                     (" (sanitizers)" if sanitize else "")):
            built = build(ws, sanitize=sanitize, runtimes=kinds, hold=held)
        ui.detail(f"{'built' if built.compiled else 'up to date'}: " +
                  ", ".join(str(built.library_for(k)) for k in kinds))
    held.enter_context(run_lock(ws.build_dir / "test.lock", "opkit test"))
    with ui.step("importing torch and the specs"):
        import torch

        from opkit.build.specs import import_ops

        ops = select_ops(import_ops(ws), names)
    if case is not None and len(ops) != 1:
        raise UsageError("--case needs exactly one op", expected="opkit test OP --case ID",
                         got=f"{len(ops)} ops", fix="name the op whose case to rerun")
    env = None
    if sanitize:
        from opkit.testing.sanitize import sanitizer_env

        env = sanitizer_env(cxx=None)
    library = ", ".join(str(built.library_for(k)) for k in kinds) if built else ""
    if any(rt.library is None for rt in chosen):
        library = ", ".join(filter(None, [library, "python backend (onnxruntime-extensions)"]))
    report = TestReport(seed=seed, sanitize=sanitize, library=library,
                        runtimes=[rt.name for rt in chosen], strict=strict)
    root = ws.build_dir / "test"
    for op in ops:
        spec = op.spec
        cfg = config_of(op)
        cases = make_cases(op, seed, case)
        combos = ", ".join(f"{t.name} in {'/'.join(t.dtypes)}" for t in spec.typevars)
        ui.info(f"{spec.name}: {len(cases)} case(s){' (' + combos + ')' if combos else ''}")
        op_dir = root / spec.folder
        if case is None and op_dir.exists():
            shutil.rmtree(op_dir)
        expected: dict[str, tuple[list, list]] = {}
        prepared: list[tuple[str, Path]] = []
        early: list[tuple[Case, str, str]] = []  # (case, kind, problem) failing before any runtime runs
        skips: list[str] = []
        skipped_ids: list[str] = []
        by_id: dict[str, Case] = {}
        for c in cases:
            cid = c.extra["id"]
            by_id[cid] = c
            if c.skipped:
                skips.append(f"case {cid} [{c.label}]: {c.skipped}")
                skipped_ids.append(cid)
                continue
            try:
                with torch.no_grad():
                    want = [to_numpy(t) for t in _outputs(op.torch_op(*[c.args[n] for n in spec.param_order]))]
            except Exception as exc:
                early.append((c, "reference", f"the reference raised {type(exc).__name__}: {str(exc).strip()[:300]} "
                              "(if these inputs are invalid for the op, constrain them in the spec: see "
                              "docs/testing.md, \"Constraining the generated inputs\")"))
                continue
            try:
                fake = _fake_outputs(op, c.args)
            except Exception as exc:
                early.append((c, "fake", f"the fake implementation raised {type(exc).__name__}: "
                              f"{str(exc).strip()[:300]} (an output whose size depends on the data needs "
                              "@op.register_fake)"))
                continue
            expected[cid] = (want, fake)
            folder = op_dir / f"case{cid}"
            _save_case(folder, op, c, [len(shape) for shape, _ in fake])
            prepared.append((cid, folder))

        for rt in chosen:
            res = OpResult(spec.name, spec.qualname, runtime=rt.name)
            report.ops.append(res)
            res.cases = len(cases)
            res.skipped = len(skips)
            res.skips = list(skips)
            res.results = [CaseResult(cid, by_id[cid].label, by_id[cid].describe(), "skipped") for cid in skipped_ids]

            def fail(c: Case, kind: str, problem: str, where: str | None = None, log: str = "",
                     res: OpResult = res, rt_name: str = rt.name, max_abs: float | None = None) -> None:
                res.failed += 1
                res.results.append(CaseResult(c.extra["id"], c.label, c.describe(), "failed", max_abs))
                res.failures.append(Failure(c.extra["id"], c.label, c.describe(), kind, problem,
                                            repro_command(ws, op, c.extra["id"], seed, sanitize, timeout,
                                                          rt_name if len(chosen) > 1 or rt_name != "onnxruntime"
                                                          else None), where, log))

            for c, kind, problem in early:
                fail(c, kind, problem)
            to_run, rt_skips, options, model_name = rt.prepare_cases(spec, prepared, ws.root, op)
            if rt.narrows:  # NaN/Inf do not survive the runtime's narrowing of these dtypes: not the kernel's doing
                lossy = {cid for cid, _ in to_run if _nonfinite_in(by_id[cid], set(rt.narrows))}
                rt_skips += [(cid, f"{rt.name} computes {'/'.join(sorted(rt.narrows))} in "
                                   f"{'/'.join(sorted(set(rt.narrows.values())))} and does not carry NaN/Inf "
                                   "through that conversion") for cid in sorted(lossy)]
                to_run = [(cid, f) for cid, f in to_run if cid not in lossy]
            for cid, why in rt_skips:
                res.skipped += 1
                res.skips.append(f"case {cid} [{by_id[cid].label}]: {why}")
                res.results.append(CaseResult(cid, by_id[cid].label, by_id[cid].describe(), "skipped"))
            last = [0.0, -1]

            def progress(done: int, total: int, last: list = last, rt_label: str = rt.short) -> None:
                now = time.monotonic()
                if done != last[1] and (done == total or now - last[0] > 2.0):
                    last[0], last[1] = now, done
                    ui.detail(f"{spec.name}: {done}/{total} case(s) run in {rt_label}")

            libraries = [str(built.library_for(rt.library))] if rt.library and built else []
            outcomes = run_cases(libraries, to_run, op_dir / f"_runs_{rt.name}", timeout=timeout, env=env,
                                 sanitize=sanitize, threads=threads, workspace=ws.root, progress=progress,
                                 runtime=rt.name, options=options, model_name=model_name) if to_run else {}
            _judge(spec, cfg, res, rt, to_run, outcomes, by_id, expected, fail)
            res.results.sort(key=lambda r: [int(p) if p.isdigit() else 0 for p in r.case.split(".")])
            if case is None:  # one rerun case says nothing about coverage
                res.coverage = coverage(op, plan_cases(op), cases, {cid for cid, _ in to_run})
    report.seconds = time.perf_counter() - t_start
    from opkit.codegen.writer import write_atomic

    write_atomic(root / "report.html", report.html())  # always; `opkit test --html FILE` copies it elsewhere too
    return report


def _nonfinite_in(case: Case, dtypes: set[str]) -> bool:
    """Whether a tensor argument of one of `dtypes` holds NaN or +-Inf."""
    import torch

    for v in case.args.values():
        for t in (v if isinstance(v, list) else [v]):
            if isinstance(t, torch.Tensor) and str(t.dtype).removeprefix("torch.") in dtypes and \
                    t.is_floating_point() and not bool(torch.isfinite(t).all()):
                return True
    return False


def _judge(spec: Any, cfg: Any, res: OpResult, rt: Any, to_run: list[tuple[str, Path]], outcomes: dict,
           by_id: dict[str, Case], expected: dict, fail: Any) -> None:
    """Compare each case's outputs (values, shapes, dtypes) with the reference and the fake."""
    from opkit.verify.compare import compare

    for cid, folder in to_run:
        c = by_id[cid]
        out = outcomes.get(cid)
        if out is None:
            fail(c, "crash", f"no result from the {rt.name} process")
            continue
        if out.crash:
            kind = "timeout" if out.crash.startswith("timeout") else \
                "sanitizer" if "Sanitizer" in out.crash else "crash"
            fail(c, kind, f"the kernel of {spec.qualname} {'hung' if kind == 'timeout' else 'crashed'} in "
                 f"{rt.name}: {out.crash}", out.where, out.log)
            continue
        if out.error:
            fail(c, f"{rt.name} error" if rt.name != "onnxruntime" else "ort error", out.error.strip()[:1000])
            continue
        want, fake = expected[cid]
        problems: list[tuple[str, str]] = []
        case_abs: float | None = None
        for j, o in enumerate(spec.outputs):
            dt = spec.resolve(o.type, c.combo)
            path = folder / f"out_{j}.npy"
            if not path.is_file():
                problems.append(("output", f"output {o.name!r} missing"))
                continue
            got = _load_out(path, dt)
            w = want[j]
            fshape, fdtype = fake[j]
            if len(fshape) != got.ndim or any(f is not None and f != g for f, g in zip(fshape, got.shape)):
                problems.append(("shape", f"output {o.name!r}: the kernel made shape {list(got.shape)}, the fake "
                                          f"implementation says {['?' if f is None else f for f in fshape]}"))
            if fdtype != DTYPES[dt].name:
                problems.append(("dtype", f"output {o.name!r}: the fake implementation says dtype {fdtype}, "
                                          f"the spec {dt}"))
            inferred = out.inferred[j] if out.inferred and j < len(out.inferred) else None
            if inferred and o.shape is not None and o.shape.static:
                if len(inferred) != got.ndim or any(isinstance(d, int) and d != g
                                                    for d, g in zip(inferred, got.shape)):
                    problems.append(("shape", f"output {o.name!r}: {rt.name}'s shape inference says "
                                              f"{inferred}, the kernel made {list(got.shape)}"))
            if got.shape != w.shape:
                problems.append(("shape", f"output {o.name!r}: shape {list(got.shape)}, the reference gives "
                                          f"{list(w.shape)}"))
                continue
            rtol, atol = cfg.rtol, cfg.atol
            narrowed = rt.narrows.get(dt)
            if narrowed:  # the runtime computes this dtype in a narrower one: compare at that one's tolerance
                rtol = max(rtol if rtol is not None else DTYPES[dt].rtol, DTYPES[narrowed].rtol)
                atol = max(atol if atol is not None else DTYPES[dt].atol, DTYPES[narrowed].atol)
                res.narrowed.add(f"{dt} as {narrowed}")
            cmp = compare(o.name, got, w, rtol, atol)
            case_abs = max(case_abs or 0.0, cmp.max_abs)
            if np.isfinite(cmp.max_abs) and cmp.max_abs > res.worst_abs:
                res.worst_abs, res.worst_case = cmp.max_abs, cid
            if np.isfinite(cmp.max_rel):
                res.worst_rel = max(res.worst_rel, cmp.max_rel)
            if not cmp.ok:
                detail = _value_problem(got, w, cmp.rtol, cmp.atol)
                problems.append(("values", f"output {o.name!r}: " + (f"{cmp.problem}; " if cmp.problem else "")
                                 + detail))
        if problems:
            fail(c, problems[0][0], "; ".join(p for _, p in problems), max_abs=case_abs)
        else:
            res.passed += 1
            res.results.append(CaseResult(cid, c.label, c.describe(), "passed", case_abs))
