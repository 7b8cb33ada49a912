"""Renderers of the HTML reports (templates/report/): a verify Report or a TestReport in, one self-contained
HTML page out (inline CSS, JS and SVG; no network). Pure: they return text; the caller writes it.

The view models built here hold every number already formatted and every bar already sized, so the templates
only print."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from opkit.codegen.env import render

HIST_W, HIST_H, HIST_BAR = 40, 90, 30  # px: one histogram bin's slot, the tallest bar, a bar's width


def fmt(x: float | None) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def _shape(s: Sequence[int]) -> str:
    return "x".join(map(str, s)) or "scalar"


def _bin_label(lo: float, hi: float | None) -> str:
    if hi is None:
        return f">{lo:g}"
    return "0" if hi == 0 else f"\u2264{hi:g}"


def histogram_view(bins: list[Any]) -> dict[str, Any]:
    """Bars of |got - expected| / tolerance, heights on a log scale (the exact bin often dwarfs the rest)."""
    top = max((b.count for b in bins), default=0)
    bars = []
    for k, b in enumerate(bins):
        h = 0.0 if not b.count else max(2.0, HIST_H * math.log1p(b.count) / math.log1p(top))
        bars.append({"x": k * HIST_W + (HIST_W - HIST_BAR) / 2, "cx": k * HIST_W + HIST_W / 2, "y": HIST_H + 16 - h,
                     "w": HIST_BAR, "h": h, "count": b.count, "label": _bin_label(b.lo, b.hi),
                     "passing": b.hi is not None and b.hi <= 1.0})
    return {"bars": bars, "width": len(bins) * HIST_W, "height": HIST_H + 34, "base": HIST_H + 16,
            "total": sum(b.count for b in bins)}


def _comparison_view(c: Any) -> dict[str, Any]:
    return {
        "name": c.display, "shape": _shape(c.shape), "dtype": c.dtype, "ok": c.ok, "problem": c.problem or "",
        "max_abs": fmt(c.max_abs), "max_rel": fmt(c.max_rel), "tolerance": f"rtol {c.rtol:g}, atol {c.atol:g}",
        "histogram": histogram_view(c.histogram) if c.histogram else None,
        "worst": [{"index": "[" + ", ".join(map(str, e.index)) + "]", "got": fmt(e.got), "expected": fmt(e.expected),
                   "abs_err": fmt(e.abs_err), "ratio": fmt(e.ratio), "ok": e.ratio <= 1.0} for e in c.worst],
    }


def _bars(items: list[tuple[str, float]]) -> list[dict[str, Any]]:
    top = max((v for _, v in items), default=0.0) or 1.0
    return [{"name": k, "seconds": f"{v:.2f} s", "pct": f"{100.0 * v / top:.1f}"} for k, v in items]


def verify_view(report: Any, graph: Any) -> dict[str, Any]:
    runtimes: dict[str, list[dict[str, Any]]] = {}
    versions: dict[str, str] = {}
    known = {rt.get("name"): rt for rt in getattr(report, "runtimes", [])}  # {"name", "label", "version"}
    for r in report.runs:  # one section per runtime, in the order the runs happened
        runtimes.setdefault(r.where, []).append({
            "label": r.label, "ok": r.ok, "inputs": " ".join(_shape(s) for s in r.input_shapes) or "none",
            "outputs": [_comparison_view(c) for c in r.comparisons]})
        rt = known.get(getattr(r, "runtime", None))
        if rt:
            versions[r.where] = f"{rt['name']} {rt.get('version') or ''}".strip()
    sections = [{"where": w, "version": versions.get(w, ""), "ok": all(run["ok"] for run in runs), "runs": runs,
                 "anchor": f"runtime-{k}"} for k, (w, runs) in enumerate(runtimes.items())]
    total = sum(report.timings.values())
    return {
        "ok": report.ok, "model": report.model, "exporter": report.exporter, "opset": report.opset,
        "ops": report.ops, "library": report.library or "", "backend": report.backend, "cached": report.cached,
        "artifacts": report.artifacts, "notes": report.all_notes, "failures": report.failures, "sections": sections,
        "timings": _bars(list(report.timings.items())), "total_time": f"{total:.2f} s",
        "graph": graph,
    }


def render_verify_report(report: Any, graph: Any) -> str:
    """The HTML page of an `opkit verify` Report; `graph` is its exported model's GraphView (or None)."""
    return render("report/verify.html.j2", r=verify_view(report, graph), by="opkit verify",
                  source="the model, its exported graph and the run results")


def test_view(report: Any) -> dict[str, Any]:
    ops = []
    for o in report.ops:
        status = o.result()  # ok, ok (incomplete: ...), FAIL, NO CASES RAN, ...
        n = max(o.cases, 1)
        ops.append({
            "name": o.name, "qualname": o.qualname, "runtime": getattr(o, "runtime", ""),
            "several": len({getattr(x, "runtime", "") for x in report.ops}) > 1,
            "ok": o.ok, "status": status, "cases": o.cases,
            "passed": o.passed, "failed": o.failed, "skipped": o.skipped, "anchor": f"op-{len(ops)}",
            "pct": {"passed": f"{100.0 * o.passed / n:.1f}", "failed": f"{100.0 * o.failed / n:.1f}",
                    "skipped": f"{100.0 * o.skipped / n:.1f}"},
            "worst_abs": fmt(o.worst_abs), "worst_rel": fmt(o.worst_rel), "worst_case": o.worst_case or "",
            "results": [{"case": c.case, "label": c.label, "inputs": c.inputs, "status": c.status,
                         "max_abs": fmt(c.max_abs)} for c in o.results],
            "failures": [{"case": f.case, "label": f.label, "inputs": f.inputs, "kind": f.kind, "problem": f.problem,
                          "repro": f.repro, "where": f.where or "", "log": f.log} for f in o.failures],
            "skips": o.skips, "holes": o.holes,
        })
    return {"ok": report.ok, "strict": report.strict, "complete": report.complete, "seed": report.seed, "sanitize": report.sanitize, "library": report.library,
            "seconds": f"{report.seconds:.1f} s", "ops": ops,
            "cases": sum(o.cases for o in report.ops), "failed": sum(o.failed for o in report.ops)}


def render_test_report(report: Any) -> str:
    """The HTML page of an `opkit test` TestReport."""
    return render("report/test.html.j2", r=test_view(report), by="opkit test", source="the test results")
