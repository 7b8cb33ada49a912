"""The verify report: a short table for people, the same data as JSON for tools."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opkit.verify.compare import Comparison


# How each kind of run is shown in the table.
_RUN_WHERE = {"native": "onnxruntime + op library", "python": "onnxruntime + Python references",
              "openvino": "openvino + extension"}
NO_OPKIT_OPS = ("the model calls no opkit op: no kernel of the op library ran (only the export and ONNX Runtime's "
                "own ops were checked)")


@dataclass
class Run:
    label: str
    comparisons: list[Comparison]
    backend: str = "native"
    input_shapes: list[list[int]] = field(default_factory=list)
    runtime: str = "onnxruntime"  # the runtime's name (opkit/runtimes/)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)

    @property
    def where(self) -> str:
        """The runtime this run went through, as reports group runs: "onnxruntime + op library", "C++ runner", ..."""
        return _RUN_WHERE.get(self.backend, self.backend)


@dataclass
class Report:
    model: str
    library: str | None
    exporter: str
    opset: int
    ops: list[str]
    runs: list[Run] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    artifacts: str = ""
    backend: str = "native"  # "native" (the op library) or "python" (the references, opkit/verify/pyops.py)
    cached: list[str] = field(default_factory=list)  # parts reused from the verify cache (opkit/verify/cache.py)
    onnx_model: str = ""  # the exported model that ran (its graph is drawn in the HTML report)
    runtimes: list[dict] = field(default_factory=list)  # {"name", "label", "version"} of each runtime, in order
    outputs: list[str] = field(default_factory=list)  # each output as the model returns it: output[0], logits, ...

    def label_outputs(self) -> None:
        """Give every comparison the model's name of its output (by position), beside its ONNX name."""
        for r in self.runs:
            for j, c in enumerate(r.comparisons):
                if j < len(self.outputs):
                    c.label = self.outputs[j]

    @property
    def all_notes(self) -> list[str]:
        return ([NO_OPKIT_OPS] if not self.ops else []) + self.notes

    @property
    def ok(self) -> bool:
        return not self.failures and bool(self.runs) and all(r.ok for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "model": self.model, "backend": self.backend, "library": self.library,
            "exporter": self.exporter, "cached": self.cached,
            "opset": self.opset, "ops": self.ops, "calls_opkit_ops": bool(self.ops), "outputs": self.outputs,
            "notes": self.all_notes, "failures": self.failures,
            "artifacts": self.artifacts, "onnx_model": self.onnx_model,
            "timings_seconds": {k: round(v, 4) for k, v in self.timings.items()},
            "runs": [self._run_dict(r) for r in self.runs],
            "runtimes": [dict(rt, ok=all(r.ok for r in self.runs if r.runtime == rt["name"]),
                              runs=[self._run_dict(r) for r in self.runs if r.runtime == rt["name"]])
                         for rt in self.runtimes],
        }

    @staticmethod
    def _run_dict(r: Run) -> dict[str, Any]:
        return {"label": r.label, "runtime": r.runtime, "backend": r.backend, "where": r.where, "ok": r.ok,
                "input_shapes": r.input_shapes, "outputs": [c.to_dict() for c in r.comparisons]}

    def html(self, graph_cache: Path | None = None) -> str:
        """The self-contained HTML report (templates/report/verify.html.j2), with the exported graph drawn
        (its layout reused from `graph_cache` when the model is unchanged, see opkit.verify.graph.load_graph)."""
        from opkit.codegen.html import render_verify_report
        from opkit.verify.graph import load_graph

        return render_verify_report(self, load_graph(self.onnx_model, self.ops, graph_cache))

    def render(self) -> str:
        lines = [f"model:    {self.model}",
                 f"exporter: torch.onnx {self.exporter}, opset {self.opset}",
                 f"ops:      {', '.join(self.ops) or 'none (the model calls no opkit op)'}"]
        if self.library:
            lines.append(f"library:  {self.library}")
        if self.cached:
            lines.append(f"cached:   {', '.join(self.cached)} (opkit verify --fresh re-exports)")
        if self.backend == "python":
            from opkit.verify.pyops import BACKEND_LABEL

            lines.append(f"backend:  {BACKEND_LABEL}")
        for rt in self.runtimes:
            lines.append("")
            lines.append(f"== {rt['label']} ({rt['name']} {rt.get('version') or '?'}) ==")
            for r in self.runs:
                if r.runtime == rt["name"]:
                    self._render_run(r, lines)
        for r in self.runs:  # runs of a runtime not listed (older callers)
            if not any(r.runtime == rt["name"] for rt in self.runtimes):
                self._render_run(r, lines)
        if self.timings:
            lines.append("")
            lines.append("time: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))
        for n in self.all_notes:
            lines.append(f"note: {n}")
        for f in self.failures:
            lines.append(f"FAIL: {f}")
        lines.append("")
        lines.append("PASS" if self.ok else "FAIL")
        return "\n".join(lines)

    @staticmethod
    def _render_run(r: Run, lines: list[str]) -> None:
        shapes = " ".join("x".join(map(str, s)) or "scalar" for s in r.input_shapes)
        lines.append("")
        lines.append(f"{r.label} [{r.where}] (inputs {shapes}):")
        rows = [("output", "shape", "dtype", "max abs err", "max rel err", "tolerance", "result")]
        for c in r.comparisons:
            rows.append((c.display, "x".join(map(str, c.shape)) or "scalar", c.dtype, f"{c.max_abs:.3g}",
                         f"{c.max_rel:.3g}", f"rtol {c.rtol:g} atol {c.atol:g}",
                         "ok" if c.ok else "FAIL" + (f" ({c.problem})" if c.problem else "")))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[-1])
