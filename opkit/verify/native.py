"""Run native code (ONNX Runtime + an op library) in a child process; report crashes and timeouts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from opkit.errors import NativeRunError

DEFAULT_TIMEOUT = float(os.environ.get("OPKIT_RUN_TIMEOUT", "300"))


@dataclass
class ChildResult:
    ok: bool
    error: str | None  # an ORT error message, when ORT reported one
    result: dict
    crashed: str | None  # "SIGSEGV", "timeout after 300 s", ...
    stderr: str


def run_worker(job: dict, job_dir: Path, *, timeout: float = DEFAULT_TIMEOUT, env: dict | None = None,
               module: str = "opkit.verify.worker") -> ChildResult:
    """Run `python -m <module> job.json` (a worker that writes result.json beside the job); never raises
    for what the native code does: a crash, a time-out or an ORT error comes back in the ChildResult."""
    job_dir.mkdir(parents=True, exist_ok=True)
    job_path = job_dir / "job.json"
    job_path.write_text(json.dumps(job, indent=1))
    result_path = job_dir / "result.json"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", module, str(job_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              errors="replace")
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return ChildResult(False, None, _read(result_path), f"timeout after {timeout:g} s", err)
    result = _read(result_path)
    if proc.returncode < 0:
        return ChildResult(False, None, result, signal_name(proc.returncode), proc.stderr)
    if proc.returncode == 0:
        return ChildResult(True, None, result, None, proc.stderr)
    if result.get("error"):
        return ChildResult(False, result["error"], result, None, proc.stderr)
    return ChildResult(False, None, result, f"exit code {proc.returncode}", proc.stderr)


def signal_name(returncode: int) -> str:
    """A child's negative return code as the signal that killed it: "SIGSEGV"."""
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def crash_error(what: str, child: ChildResult, ops: list[str], runs: list[str] | None = None,
                workspace: Path | None = None) -> NativeRunError:
    from opkit.testing.sanitize import parse_report

    tail = "\n".join(child.stderr.strip().splitlines()[-15:])
    done = len(child.result.get("runs", []))
    case = f"\nthe input set in flight: {runs[done]}" if runs and done < len(runs) else ""
    report = parse_report(child.stderr, workspace)
    if report:
        tail = "\n".join(report.text.splitlines()[:12])
    return NativeRunError(
        f"{what}: the ONNX Runtime process died ({child.crashed})" +
        (f": {report.summary} at {report.where}" if report else ""),
        where=report.where if report else None,
        details=(f"ops in the model: {', '.join(ops) or 'none'}{case}\n" + (f"its last output:\n{tail}" if tail else "")),
        fix="a kernel crashed or hung: run `opkit build --sanitize` and verify again with --sanitize to find "
            "the out-of-bounds access, or test the op alone")
