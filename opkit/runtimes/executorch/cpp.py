"""ExecuTorch's C++ runtime: opkit-et-runner (templates/executorch/runner/), no Python in the process.
It runs the same .pte and input sets as ExecuTorch's Python runtime and must match it and eager."""

from __future__ import annotations

import shutil
from pathlib import Path

from opkit import ui
from opkit.runtimes.base import Job, Outcome
from opkit.runtimes.executorch import ExecuTorch


def runner_root(build_dir: Path | None) -> Path:
    import os

    from opkit.native.runner import ENV_DIR

    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]) / "executorch"
    if build_dir is not None:
        return Path(build_dir) / "runner-executorch"
    from opkit.build.headers import cache_root

    return cache_root() / "runner-executorch"


class ExecuTorchCpp(ExecuTorch):
    name = "executorch-cpp"
    label = "ExecuTorch C++ runtime (opkit-et-runner, no Python) + libopkit_executorch.so"
    short = "opkit-et-runner"
    cpp = True
    compare_with = "executorch"
    cases = False
    bench = False
    report_backend = "executorch C++ runner"

    def runner(self, build_dir: Path | None) -> object:
        from opkit.runtimes.executorch.runner import ensure_runner, version

        with ui.step("building opkit-et-runner (C++, ExecuTorch's runtime)"):
            r = ensure_runner(runner_root(build_dir))
        ui.detail(f"{'built' if r.compiled else 'up to date'}: {r.exe} (executorch {version()})")
        return r

    def run(self, job: Job) -> Outcome:
        from opkit.runtimes.executorch.pte import missing_kernel_message, missing_operators_in_log
        from opkit.runtimes.executorch.runner import run_runner

        build_dir = Path(job.options["build_dir"]) if job.options.get("build_dir") else None
        runner = self.runner(build_dir)
        result: dict = {"runs": [], "inputs": job.input_names, "outputs": job.output_names}
        for run in job.runs:
            out_dir = run.outputs.parent / f"{run.outputs.name}.runner"
            inputs = [run.inputs / f"{i}.npy" for i in range(len(job.input_names))]
            res = run_runner(runner, job.model, libraries=job.libraries, inputs=inputs, output_dir=out_dir,
                             timeout=job.timeout or 300.0, env=job.env)
            if res.crashed and res.returncode != 0:
                return Outcome(False, None, result, res.crashed, res.stderr)
            if res.returncode != 0:
                missing = missing_operators_in_log(res.stderr)
                msg = missing_kernel_message(missing, str(job.libraries[0]) if job.libraries else None) \
                    if missing else res.message
                return Outcome(False, msg, result, None, res.stderr)
            run.outputs.mkdir(parents=True, exist_ok=True)
            for j, meta in enumerate(res.result["outputs"]):
                shutil.move(meta["file"], run.outputs / f"{j}.npy")
            result["runs"].append({"label": run.label, "seconds": res.result.get("seconds")})
        return Outcome(True, None, result, None, "")

    def run_files(self, build_dir: Path | None, model: Path, *, libraries: list[Path], inputs: dict[str, Path],
                  output_dir: Path, threads: int | None = None, repeat: int = 1) -> object:
        """`opkit run model.pte --runtime executorch`: the program once on .npy inputs, in the order given
        (a .pte's inputs have positions, not names); output k goes to <output-dir>/<k>.npy."""
        from opkit.runtimes.executorch.runner import run_runner

        del threads  # ExecuTorch's thread pool sizes itself
        return run_runner(self.runner(build_dir), model, libraries=libraries, inputs=list(inputs.values()),
                          output_dir=output_dir, repeat=repeat)
