"""`opkit verify`'s second native run: the exported model through opkit-runner (C++, no Python in
that process), after the Python ORT run. Its outputs must match the Python ORT outputs and eager."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opkit import ui
from opkit.errors import NativeRunError
from opkit.verify.compare import compare
from opkit.verify.report import Report, Run

BACKEND = "C++ runner"


def run_native(report: Report, *, build_dir: Path, model: Path, libraries: list[Path], job_runs: list[dict],
               input_names: list[str], output_names: list[str], eager_by_run: list[list[Any]],
               shapes_by_run: list[list[list[int]]], rtol: float | None, atol: float | None,
               timings: dict[str, float], timeout: float | None = None) -> None:
    """Run every input set of the Python ORT run through opkit-runner; add a Run per set to the report,
    a failure where the runner disagrees with Python ORT or eager, and a note summing it up."""
    from opkit.native.runner import ensure_runner, run_runner
    from opkit.verify.arrays import load_npy
    from opkit.verify.driver import to_numpy

    with ui.step("building opkit-runner (C++, ONNX Runtime's C++ API)", timings, "runner build"):
        runner = ensure_runner(build_dir)
    ui.detail(f"{'built' if runner.compiled else 'up to date'}: {runner.exe}")
    worst = 0.0
    with ui.step(f"running in opkit-runner, no Python in the process ({len(job_runs)} input set(s))", timings,
                 "C++ runner"):
        for k, run in enumerate(job_runs):
            out_dir = Path(run["outputs"]).parent / "runner"
            inputs = {name: Path(run["inputs"]) / f"{i}.npy" for i, name in enumerate(input_names)}
            res = run_runner(runner, model, libraries=libraries, inputs=inputs, output_dir=out_dir, timeout=timeout)
            if res.crashed or res.returncode != 0:
                what = f"the process died ({res.crashed})" if res.crashed and res.returncode != 0 else \
                    f"it failed (exit code {res.returncode})"
                raise NativeRunError(
                    f"opkit-runner ran the exported model in Python's ONNX Runtime fine, but {what}",
                    where=str(model), details=f"command: {runner.exe} ... ({run['label']})\n{res.message}",
                    fix="the Python ORT run passed, so this is specific to the C++ runtime (ONNX Runtime "
                        f"{runner.ort_version}, its C++ API); rerun with --no-native to skip it, and report it")
            comps = []
            for j, want in enumerate(eager_by_run[k]):
                meta = res.result["outputs"][j]
                got = load_npy(meta["file"])
                name = output_names[j] if j < len(output_names) else meta["name"]
                comps.append(compare(name, got, to_numpy(want), rtol, atol))
                py = load_npy(Path(run["outputs"]) / f"{j}.npy")
                vs_py = compare(name, got, py, rtol, atol)
                worst = max(worst, vs_py.max_abs)
                if not vs_py.ok:
                    report.failures.append(
                        f"output {name!r} ({run['label']}): the C++ runner and Python's ONNX Runtime disagree "
                        f"(max abs diff {vs_py.max_abs:.3g}{'; ' + vs_py.problem if vs_py.problem else ''})")
            report.runs.append(Run(run["label"], comps, BACKEND, shapes_by_run[k]))
    report.notes.append(f"C++ runner ({runner.exe.name}, onnxruntime {runner.ort_version} C++ API, no Python): "
                        f"{len(job_runs)} input set(s), max abs diff from the Python ORT run {worst:.3g}")
