"""The `opkit test` report: a table per op for people, the same data as JSON for tools."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Failure:
    case: str  # the case id: "12", or "40.3" for the 4th sample of a custom generator
    label: str  # what the case is about: "empty", "alpha=0.5", "NaN/+Inf/-Inf"
    inputs: str  # the case's dtypes, shapes and attributes
    kind: str  # "values", "shape", "dtype", "crash", "timeout", "sanitizer", "ort error", "reference", "fake"
    problem: str
    repro: str  # the one-line command that runs exactly this case
    where: str | None = None  # file:line, for sanitizer reports
    log: str = ""


@dataclass
class OpResult:
    name: str
    qualname: str
    runtime: str = "onnxruntime"
    cases: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    worst_abs: float = 0.0
    worst_rel: float = 0.0
    worst_case: str | None = None
    failures: list[Failure] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)
    narrowed: set[str] = field(default_factory=set)  # "float64 as float32": compared at the narrower tolerance

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.cases > self.skipped


@dataclass
class TestReport:
    seed: int
    sanitize: bool
    library: str
    ops: list[OpResult] = field(default_factory=list)  # one per op and runtime
    runtimes: list[str] = field(default_factory=lambda: ["onnxruntime"])
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.ops) and all(o.ok for o in self.ops)

    @property
    def failures(self) -> list[Failure]:
        return [f for o in self.ops for f in o.failures]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "seed": self.seed, "sanitize": self.sanitize, "library": self.library,
                "seconds": round(self.seconds, 3), "runtimes": self.runtimes,
                "ops": [{"name": o.name, "qualname": o.qualname, "runtime": o.runtime, "ok": o.ok, "cases": o.cases, "passed": o.passed,
                         "failed": o.failed, "skipped": o.skipped, "worst_abs_err": o.worst_abs,
                         "worst_rel_err": o.worst_rel, "worst_case": o.worst_case,
                         "failures": [asdict(f) for f in o.failures], "skips": o.skips,
                         "narrowed": sorted(o.narrowed)} for o in self.ops]}

    def render(self, *, max_failures: int = 5, verbose: bool = False) -> str:
        lines: list[str] = []
        for o in self.ops:
            shown = o.failures if verbose else o.failures[:max_failures]
            for f in shown:
                on = f" in {o.runtime}" if len(self.runtimes) > 1 or o.runtime != "onnxruntime" else ""
                lines.append(f"FAIL {o.name}{on} case {f.case} [{f.label}] {f.inputs}")
                lines.append(f"  {f.kind}: {f.problem}")
                if f.where:
                    lines.append(f"  at: {f.where}")
                if f.log and (verbose or f.kind in ("crash", "sanitizer")):
                    lines.extend("  | " + ln for ln in f.log.splitlines()[-12:])
                lines.append(f"  rerun: {f.repro}")
            if len(o.failures) > len(shown):
                lines.append(f"... and {len(o.failures) - len(shown)} more failing case(s) of {o.name} "
                             "(-v shows all, --json FILE lists them)")
        if lines:
            lines.append("")
        several = len(self.runtimes) > 1 or self.runtimes != ["onnxruntime"]
        rows = [("op", "cases", "passed", "failed", "skipped", "worst abs err", "worst rel err", "result")]
        if several:
            rows[0] = ("op", "runtime") + rows[0][1:]
        for o in self.ops:
            rows.append((o.name, *([o.runtime] if several else []), str(o.cases), str(o.passed), str(o.failed), str(o.skipped), f"{o.worst_abs:.3g}",
                         f"{o.worst_rel:.3g}", "ok" if o.ok else "FAIL" if o.failed else "NO CASES RAN"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for r in rows:
            lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1])
        for o in self.ops:
            if o.narrowed:
                lines.append(f"note: {o.name} in {o.runtime}: {', '.join(sorted(o.narrowed))} (the runtime computes "
                             "in the narrower dtype; compared at its tolerance)")
        total = sum(o.cases for o in self.ops)
        failed = sum(o.failed for o in self.ops)
        lines.append("")
        lines.append(f"{total} case(s), {failed} failed, seed {self.seed}"
                     f"{', sanitizers on' if self.sanitize else ''}, {self.seconds:.1f} s")
        lines.append("PASS" if self.ok else "FAIL")
        return "\n".join(lines)
