"""The verify report: a short table for people, the same data as JSON for tools."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opkit.verify.compare import Comparison


# How each kind of run is shown in the table.
_RUN_WHERE = {"native": "onnxruntime + op library", "python": "onnxruntime + Python references",
              "openvino": "openvino + extension"}


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
    runtimes: list[dict] = field(default_factory=list)  # {"name", "label", "version"} of each runtime, in order

    @property
    def ok(self) -> bool:
        return not self.failures and bool(self.runs) and all(r.ok for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "model": self.model, "backend": self.backend, "library": self.library,
            "exporter": self.exporter, "cached": self.cached,
            "opset": self.opset, "ops": self.ops, "notes": self.notes, "failures": self.failures,
            "artifacts": self.artifacts, "timings_seconds": {k: round(v, 4) for k, v in self.timings.items()},
            "runs": [self._run_dict(r) for r in self.runs],
            "runtimes": [dict(rt, ok=all(r.ok for r in self.runs if r.runtime == rt["name"]),
                              runs=[self._run_dict(r) for r in self.runs if r.runtime == rt["name"]])
                         for rt in self.runtimes],
        }

    @staticmethod
    def _run_dict(r: Run) -> dict[str, Any]:
        return {"label": r.label, "runtime": r.runtime, "backend": r.backend, "ok": r.ok,
                "input_shapes": r.input_shapes, "outputs": [c.to_dict() for c in r.comparisons]}

    def render(self) -> str:
        lines = [f"model:    {self.model}",
                 f"exporter: torch.onnx {self.exporter}, opset {self.opset}",
                 f"ops:      {', '.join(self.ops) or 'none'}"]
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
        for n in self.notes:
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
        where = _RUN_WHERE.get(r.backend, r.backend)
        lines.append(f"{r.label} [{where}] (inputs {shapes}):")
        rows = [("output", "shape", "dtype", "max abs err", "max rel err", "tolerance", "result")]
        for c in r.comparisons:
            rows.append((c.name, "x".join(map(str, c.shape)) or "scalar", c.dtype, f"{c.max_abs:.3g}",
                         f"{c.max_rel:.3g}", f"rtol {c.rtol:g} atol {c.atol:g}",
                         "ok" if c.ok else "FAIL" + (f" ({c.problem})" if c.problem else "")))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[-1])
