"""Conformance tests of native kernels against their references (`opkit test`), for pytest too.

    import opkit.testing

    def test_my_ops():
        report = opkit.testing.run("path/to/workspace", ["ScaledGelu"], seed=0)
        report.assert_ok()            # AssertionError listing each failing case and its rerun command

Constraints on generated inputs are declared in the spec with ``my_op.constrain(...)`` and
``@my_op.samples`` (see docs/testing.md, "Constraining the generated inputs"). Nothing here imports torch until `run` is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opkit.testing.constraints import TestConfig
from opkit.testing.report import Failure, OpResult, TestReport

__all__ = ["run", "generate_cases", "TestReport", "OpResult", "Failure", "TestConfig"]


def _assert_ok(self: TestReport, strict: bool | None = None) -> None:
    incomplete = (self.strict if strict is None else strict) and not self.complete
    if not self.ok or incomplete:
        raise AssertionError("opkit test failed:\n" + self.render(verbose=True))


TestReport.assert_ok = _assert_ok  # type: ignore[attr-defined]


def run(workspace: str | Path = ".", ops: list[str] | None = None, *, seed: int = 0, sanitize: bool = False,
        timeout: float | None = None, case: str | None = None, quiet: bool = True,
        strict: bool = False) -> TestReport:
    """Build the workspace's library and test its ops (all, or those named); return the report.
    With `strict`, an op whose cases left something untested (``report.ops[i].holes``) fails it.

    Native code runs in child processes: a crashing kernel fails its case, never the caller.
    """
    from opkit import ui
    from opkit.build.workspace import find_workspace
    from opkit.testing.driver import DEFAULT_TIMEOUT, run_tests

    ws = find_workspace(explicit=workspace)
    prev = ui._quiet
    ui.set_quiet(quiet)
    try:
        return run_tests(ws, ops, seed=seed, sanitize=sanitize, timeout=timeout or DEFAULT_TIMEOUT, case=case,
                         strict=strict)
    finally:
        ui.set_quiet(prev)


def generate_cases(op: Any, seed: int = 0) -> list:
    """The cases `opkit test` would run for an Op (tensors and attributes per case), without running them."""
    from opkit.testing.driver import make_cases

    return make_cases(op, seed)
