"""Run cases in child processes (opkit.testing.worker) and survive whatever the kernel does.

The worker journals each case before it starts. When the child dies (a signal, a sanitizer
report, any exit without finishing) or a case runs past the time limit (the child is killed),
the case in flight gets the crash, and a fresh child continues with the cases after it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opkit.testing.sanitize import parse_report
from opkit.runtimes.child import signal_name


@dataclass
class Outcome:
    error: str | None = None  # the runtime's error message
    inferred: list | None = None  # output shapes from the runtime's shape inference
    crash: str | None = None  # "SIGSEGV", "timeout after 5 s", "AddressSanitizer: heap-buffer-overflow ..."
    where: str | None = None  # file:line of a sanitizer report, in the kernel when possible
    log: str = ""  # the tail of the child's stderr, for crashes
    seconds: float = 0.0


def run_cases(libraries: list[str], cases: list[tuple[str, Path]], work: Path, *, timeout: float,
              env: dict | None = None, sanitize: bool = False, threads: int = 2, workspace: Path | None = None,
              progress: Callable[[int, int], None] | None = None, runtime: str = "onnxruntime",
              options: dict | None = None, model_name: str = "model.onnx") -> dict[str, Outcome]:
    """Run every (id, folder) case in `runtime` (a name of opkit.runtimes with a Python API); return
    {id: Outcome}. Never raises for what the kernel does."""
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Outcome] = {}
    remaining = list(cases)
    total = len(cases)
    launch = 0
    while remaining:
        launch += 1
        journal = work / f"journal{launch}.jsonl"
        journal.unlink(missing_ok=True)
        job = {"runtime": runtime, "libraries": libraries, "journal": str(journal), "threads": threads,
               "sanitize": sanitize, "options": options or {}, "model_name": model_name,
               "cases": [{"id": cid, "dir": str(d)} for cid, d in remaining]}
        job_path = work / f"job{launch}.json"
        job_path.write_text(json.dumps(job))
        err_path = work / f"stderr{launch}.txt"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "opkit.testing.worker", str(job_path)],
                                    stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True)
            started: dict[str, float] = {}
            current: str | None = None
            pos = 0
            timed_out = False
            while True:
                rc = proc.poll()
                pos, current = _read_journal(journal, pos, results, started, current)
                if progress:
                    progress(len(results), total)
                if rc is not None:
                    break
                if current is not None and time.monotonic() - started[current] > timeout:
                    _kill(proc)
                    timed_out = True
                    break
                time.sleep(0.02)
            pos, current = _read_journal(journal, pos, results, started, current)
        done = {cid for cid, _ in remaining if cid in results}
        if current is not None and current not in results:
            text = err_path.read_text(errors="replace")
            out = Outcome(log=_tail(text))
            if timed_out:
                out.crash = f"timeout: still running after {timeout:g} s (killed)"
            else:
                report = parse_report(text, workspace)
                rc = proc.returncode
                how = signal_name(rc) if rc is not None and rc < 0 else f"exit code {rc}"
                if report:
                    out.crash, out.where = f"{report.summary} (the process died: {how})", report.where
                    out.log = "\n".join(report.text.splitlines()[:10])
                else:
                    out.crash = f"the process died: {how}"
            results[current] = out
            done.add(current)
        elif proc.returncode not in (0, None) and not timed_out:
            # died between cases (e.g. loading the library): blame the next case
            nxt = next((cid for cid, _ in remaining if cid not in done), None)
            if nxt is not None:
                text = err_path.read_text(errors="replace")
                results[nxt] = Outcome(crash=f"the process died before the case ran: exit {proc.returncode}",
                                       log=_tail(text))
                done.add(nxt)
        remaining = [(cid, d) for cid, d in remaining if cid not in done]
        if progress:
            progress(len(results), total)
    return results


def _read_journal(journal: Path, pos: int, results: dict[str, Outcome], started: dict[str, float],
                  current: str | None) -> tuple[int, str | None]:
    try:
        with open(journal, "rb") as f:
            f.seek(pos)
            data = f.read()
    except FileNotFoundError:
        return pos, current
    end = data.rfind(b"\n")
    if end < 0:
        return pos, current
    for line in data[:end].decode(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if "start" in rec:
            current = rec["start"]
            started[current] = time.monotonic()
        elif "done" in rec:
            results[rec["done"]] = Outcome(error=rec.get("error"), inferred=rec.get("inferred"),
                                           seconds=rec.get("seconds") or 0.0)
            current = None
    return pos + end + 1, current


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(text: str, n: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-n:])
