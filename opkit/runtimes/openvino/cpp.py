"""OpenVINO's C++ API: opkit-ov-runner (templates/openvino/runner/), no Python in the process. It runs
the same input sets as OpenVINO's Python API and must match it and eager."""

from __future__ import annotations

from pathlib import Path

from opkit import ui
from opkit.runtimes.base import Job, Outcome
from opkit.runtimes.onnxruntime_cpp import run_with_runner
from opkit.runtimes.openvino import OpenVino


class OpenVinoCpp(OpenVino):
    name = "openvino-cpp"
    label = "OpenVINO C++ API (opkit-ov-runner, no Python) + libopkit_openvino.so"
    short = "opkit-ov-runner"
    cpp = True
    compare_with = "openvino"
    cases = False
    bench = False
    sanitize = False
    report_backend = "openvino C++ runner"

    def runner(self, build_dir: Path | None) -> object:
        from opkit.runtimes.openvino.runner import ensure_runner

        with ui.step("building opkit-ov-runner (C++, OpenVINO's C++ API)"):
            r = ensure_runner(build_dir)
        ui.detail(f"{'built' if r.compiled else 'up to date'}: {r.exe} (openvino {r.ov_version})")
        return r

    def run(self, job: Job) -> Outcome:
        from opkit.runtimes.openvino.runner import run_runner

        build_dir = Path(job.options["build_dir"]) if job.options.get("build_dir") else None
        return run_with_runner(self.runner(build_dir), job, run_runner)

    def run_files(self, build_dir: Path | None, model: Path, *, libraries: list[Path], inputs: dict[str, Path],
                  output_dir: Path, threads: int | None = None, repeat: int = 1) -> object:
        """`opkit run --runtime openvino`: the model once on named .npy inputs (a RunnerResult)."""
        from opkit.runtimes.openvino.runner import run_runner

        return run_runner(self.runner(build_dir), model, libraries=libraries, inputs=inputs, output_dir=output_dir,
                          threads=threads, repeat=repeat)
