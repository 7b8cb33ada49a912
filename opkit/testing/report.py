"""The `opkit test` report: a table per op for people, the same data as JSON for tools."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from opkit.testing.coverage import Coverage


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
class CaseResult:
    """One case as it ended: every case of an op is listed in the HTML report."""
    case: str
    label: str
    inputs: str
    status: str  # "passed", "failed", "skipped"
    max_abs: float | None = None  # the largest |got - expected| over the outputs (passed and value failures)


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
    coverage: Coverage | None = None  # None when not checked (a single --case)
    results: list[CaseResult] = field(default_factory=list)  # every case, in order

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.cases > self.skipped

    @property
    def holes(self) -> list[str]:
        return self.coverage.holes if self.coverage else []

    @property
    def complete(self) -> bool:
        """Every dtype combination, optional input absent and present, variadic count, listed attribute value
        and the NaN/Inf case ran (opkit/testing/coverage.py)."""
        return not self.holes

    def result(self) -> str:
        """ok, ok (incomplete: ...), FAIL, FAIL (incomplete: ...), or NO CASES RAN; with the share of the cases
        that valid= skipped, if any: ok (12 of 96 case(s) skipped by valid=)."""
        if self.cases <= self.skipped and not self.failed:
            return "NO CASES RAN"
        text = "ok" if self.ok else "FAIL"
        why = [f"incomplete: {', '.join(self.holes)}"] if self.holes else []
        if self.coverage and self.coverage.skipped_by_valid:
            why.append(f"{self.coverage.skipped_by_valid} of {self.cases} case(s) skipped by valid=")
        return text + (f" ({', '.join(why)})" if why else "")


@dataclass
class TestReport:
    seed: int
    sanitize: bool
    library: str
    ops: list[OpResult] = field(default_factory=list)  # one per op and runtime
    runtimes: list[str] = field(default_factory=lambda: ["onnxruntime"])
    seconds: float = 0.0
    strict: bool = False  # an incomplete op (coverage holes) fails the run

    @property
    def ok(self) -> bool:
        return bool(self.ops) and all(o.ok for o in self.ops) and (self.complete or not self.strict)

    @property
    def complete(self) -> bool:
        return all(o.complete for o in self.ops)

    @property
    def failures(self) -> list[Failure]:
        return [f for o in self.ops for f in o.failures]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "complete": self.complete, "strict": self.strict, "seed": self.seed,
                "sanitize": self.sanitize, "library": self.library, "seconds": round(self.seconds, 3),
                "runtimes": self.runtimes,
                "ops": [{"name": o.name, "qualname": o.qualname, "runtime": o.runtime, "ok": o.ok,
                         "complete": o.complete, "result": o.result(), "holes": o.holes,
                         "skipped_by_valid": o.coverage.skipped_by_valid if o.coverage else 0,
                         "cases": o.cases, "passed": o.passed,
                         "failed": o.failed, "skipped": o.skipped, "worst_abs_err": o.worst_abs,
                         "worst_rel_err": o.worst_rel, "worst_case": o.worst_case,
                         "failures": [asdict(f) for f in o.failures], "skips": o.skips,
                         "narrowed": sorted(o.narrowed)} for o in self.ops]}

    def html(self) -> str:
        """The self-contained HTML report (templates/report/test.html.j2)."""
        from opkit.codegen.html import render_test_report

        return render_test_report(self)

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
            rows.append((o.name, *([o.runtime] if several else []), str(o.cases), str(o.passed), str(o.failed),
                         str(o.skipped), f"{o.worst_abs:.3g}", f"{o.worst_rel:.3g}", o.result()))
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
        incomplete = sum(1 for o in self.ops if not o.complete)
        if not self.ok:
            lines.append("FAIL" + (f" (--strict: {incomplete} op(s) incomplete)"
                                   if self.strict and incomplete and all(o.ok for o in self.ops) else ""))
        elif incomplete:
            lines.append(f"PASS (incomplete: {incomplete} op(s) left cases untested, see the result column; "
                         "--strict makes this a failure)")
        else:
            lines.append("PASS")
        return "\n".join(lines)
