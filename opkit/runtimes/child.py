"""Run native code (a runtime + an op library) in a child process; report crashes and timeouts.

Shared by every runtime (opkit.runtimes.base.Runtime.run) and the commands' own workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from opkit.errors import NativeRunError

DEFAULT_TIMEOUT = float(os.environ.get("OPKIT_RUN_TIMEOUT", "300"))


from opkit.runtimes.base import Outcome

ChildResult = Outcome  # the name the commands' workers used before the runtime layer


def run_worker(job: dict, job_dir: Path, *, timeout: float | None = DEFAULT_TIMEOUT, env: dict | None = None,
               module: str = "opkit.runtimes.worker") -> Outcome:
    """Run `python -m <module> job.json` (a worker that writes result.json beside the job); never raises
    for what the native code does: a crash, a time-out or an ORT error comes back in the ChildResult."""
    job_dir.mkdir(parents=True, exist_ok=True)
    job_path = job_dir / "job.json"
    job_path.write_text(json.dumps(job, indent=1))
    result_path = job_dir / "result.json"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", module, str(job_path)]
    timeout = timeout or DEFAULT_TIMEOUT
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              errors="replace")
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return Outcome(False, None, _read(result_path), f"timeout after {timeout:g} s", err)
    result = _read(result_path)
    if proc.returncode < 0:
        return Outcome(False, None, result, signal_name(proc.returncode), proc.stderr)
    if proc.returncode == 0:
        return Outcome(True, None, result, None, proc.stderr)
    if result.get("error"):
        return Outcome(False, result["error"], result, None, proc.stderr)
    return Outcome(False, None, result, f"exit code {proc.returncode}", proc.stderr)


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


def crash_error(what: str, child: Outcome, ops: list[str], runs: list[str] | None = None,
                workspace: Path | None = None, runtime: str = "ONNX Runtime") -> NativeRunError:
    from opkit.testing.sanitize import parse_report

    tail = "\n".join(child.stderr.strip().splitlines()[-15:])
    done = len(child.result.get("runs", []))
    case = f"\nthe input set in flight: {runs[done]}" if runs and done < len(runs) else ""
    report = parse_report(child.stderr, workspace)
    if report:
        tail = "\n".join(report.text.splitlines()[:12])
    return NativeRunError(
        f"{what}: the {runtime} process died ({child.crashed})" +
        (f": {report.summary} at {report.where}" if report else ""),
        where=report.where if report else None,
        details=(f"ops in the model: {', '.join(ops) or 'none'}{case}\n" + (f"its last output:\n{tail}" if tail else "")),
        fix="a kernel crashed or hung: run `opkit build --sanitize` and verify again with --sanitize to find "
            "the out-of-bounds access, or test the op alone")
