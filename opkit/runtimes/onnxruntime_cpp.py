"""ONNX Runtime's C++ API: opkit-runner (opkit/native/runner.py), no Python in the process. It runs
the same input sets as the Python API and must match it and eager."""

from __future__ import annotations

import shutil
from pathlib import Path

from opkit import ui
from opkit.runtimes.base import Job, Outcome
from opkit.runtimes.onnxruntime_python import OnnxRuntime


def run_with_runner(runner: object, job: Job, runner_run: object) -> Outcome:
    """Each input set through a C++ runner binary (one process per set); outputs renamed to <k>.npy."""
    result: dict = {"runs": [], "inputs": job.input_names, "outputs": job.output_names}
    for run in job.runs:
        out_dir = run.outputs.parent / f"{run.outputs.name}.runner"
        inputs = {name: run.inputs / f"{i}.npy" for i, name in enumerate(job.input_names)}
        res = runner_run(runner, job.model, libraries=job.libraries, inputs=inputs, output_dir=out_dir,
                         timeout=job.timeout, threads=job.threads)
        if res.crashed and res.returncode != 0:
            return Outcome(False, None, result, res.crashed, res.stderr)
        if res.returncode != 0:
            return Outcome(False, res.message, result, None, res.stderr)
        run.outputs.mkdir(parents=True, exist_ok=True)
        for j, meta in enumerate(res.result["outputs"]):
            shutil.move(meta["file"], run.outputs / f"{j}.npy")
        result["runs"].append({"label": run.label, "seconds": res.result.get("seconds")})
    return Outcome(True, None, result, None, "")


class RunnerBinary:
    """The part every C++-runner runtime shares: build the runner binary once (ensure_runner), run a job's input
    sets through it (run_with_runner), run one model on named inputs (`opkit run`). A runtime names the module
    holding its ensure_runner/run_runner, the progress line, and how its runner's version reads."""

    runner_module: str  # a module with ensure_runner(build_dir) and run_runner(runner, model, ...)
    runner_step: str  # the progress line while the runner is built

    def runner_version(self, runner: object) -> str:
        raise NotImplementedError

    def _runner_api(self) -> object:
        import importlib

        return importlib.import_module(self.runner_module)

    def runner(self, build_dir: Path | None) -> object:
        with ui.step(self.runner_step):
            r = self._runner_api().ensure_runner(build_dir)
        ui.detail(f"{'built' if r.compiled else 'up to date'}: {r.exe} ({self.runner_version(r)})")
        return r

    def run(self, job: Job) -> Outcome:
        build_dir = Path(job.options["build_dir"]) if job.options.get("build_dir") else None
        return run_with_runner(self.runner(build_dir), job, self._runner_api().run_runner)

    def run_files(self, build_dir: Path | None, model: Path, *, libraries: list[Path], inputs: dict[str, Path],
                  output_dir: Path, threads: int | None = None, repeat: int = 1) -> object:
        """`opkit run`: the model once on named .npy inputs (a RunnerResult; never raises for the run)."""
        return self._runner_api().run_runner(self.runner(build_dir), model, libraries=libraries, inputs=inputs,
                                             output_dir=output_dir, threads=threads, repeat=repeat)


class OnnxRuntimeCpp(RunnerBinary, OnnxRuntime):
    name = "onnxruntime-cpp"
    label = "ONNX Runtime C++ API (opkit-runner, no Python) + libopkit_ops.so"
    short = "opkit-runner"
    cpp = True
    compare_with = "onnxruntime"
    cases = False
    bench = False
    sanitize = False  # the runner is not built with the sanitizers
    report_backend = "C++ runner"

    runner_module = "opkit.native.runner"
    runner_step = "building opkit-runner (C++, ONNX Runtime's C++ API)"

    def runner_version(self, runner: object) -> str:
        return f"onnxruntime {runner.ort_version}"
