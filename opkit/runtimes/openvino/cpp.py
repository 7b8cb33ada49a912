"""OpenVINO's C++ API: opkit-ov-runner (templates/openvino/runner/), no Python in the process. It runs
the same input sets as OpenVINO's Python API and must match it and eager."""

from __future__ import annotations

from opkit.runtimes.onnxruntime_cpp import RunnerBinary
from opkit.runtimes.openvino import OpenVino


class OpenVinoCpp(RunnerBinary, OpenVino):
    name = "openvino-cpp"
    label = "OpenVINO C++ API (opkit-ov-runner, no Python) + libopkit_openvino.so"
    short = "opkit-ov-runner"
    cpp = True
    compare_with = "openvino"
    cases = False
    bench = False
    sanitize = False
    report_backend = "openvino C++ runner"

    runner_module = "opkit.runtimes.openvino.runner"
    runner_step = "building opkit-ov-runner (C++, OpenVINO's C++ API)"

    def runner_version(self, runner: object) -> str:
        return f"openvino {runner.ov_version}"
