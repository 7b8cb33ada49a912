"""OpenVINO through its Python API (ov.Core), with libopkit_openvino.so added as an extension: the
exported ONNX model is read by OpenVINO's ONNX frontend (custom nodes become opkit's ov::op::Op
classes) and compiled for the CPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opkit.build.runtimes import OPENVINO_INSTALL
from opkit.runtimes.base import Runtime, Session


def _to_numpy(t: Any) -> Any:
    import numpy as np

    if str(t.get_element_type()) == "bf16":
        import ml_dtypes

        return np.array(t.data, copy=True).view(np.uint16).view(ml_dtypes.bfloat16).reshape(tuple(t.get_shape()))
    return np.array(t.data, copy=True)


def _tensor(ov: Any, a: Any) -> Any:
    import numpy as np

    a = np.ascontiguousarray(a)
    if a.dtype.name == "bfloat16":
        t = ov.Tensor(ov.Type.bf16, ov.Shape(list(a.shape)))
        if a.size:
            np.copyto(np.asarray(t.data).reshape(-1).view(np.uint16), a.reshape(-1).view(np.uint16))
        return t
    return ov.Tensor(a, shared_memory=False)


class OvSession(Session):
    def __init__(self, ov: Any, compiled: Any) -> None:
        self.ov, self.compiled = ov, compiled
        self.request = compiled.create_infer_request()
        self.input_names = [p.get_any_name() for p in compiled.inputs]
        self.output_names = [p.get_any_name() for p in compiled.outputs]
        self.model_outputs = compiled.outputs

    def run(self, arrays: list) -> list:
        req = self.request
        for k, a in enumerate(arrays):
            req.set_input_tensor(k, _tensor(self.ov, a))
        req.infer()
        return [_to_numpy(req.get_output_tensor(k)) for k in range(len(self.output_names))]

    def bind(self, arrays: list) -> Callable[[], Any]:
        req = self.request
        for k, a in enumerate(arrays):
            req.set_input_tensor(k, _tensor(self.ov, a))
        return req.infer

    def inferred_shapes(self) -> list[list | None]:
        out: list[list | None] = []
        for p in self.model_outputs:
            ps = p.get_partial_shape()
            out.append(None if ps.rank.is_dynamic else
                       [d.get_length() if d.is_static else None for d in ps])
        return out


class OpenVino(Runtime):
    name = "openvino"
    label = "OpenVINO (Python API, CPU) + libopkit_openvino.so"
    short = "OpenVINO"
    requires = ("openvino",)
    install = OPENVINO_INSTALL
    library = "openvino"
    report_backend = "openvino"

    def version(self) -> str:
        from importlib import metadata

        try:
            return metadata.version("openvino")
        except metadata.PackageNotFoundError:
            return "not installed"

    def open(self, model: str, libraries: list[str], options: dict[str, Any]) -> Session:
        import openvino as ov

        core = ov.Core()
        for lib in libraries:
            core.add_extension(lib)
        config: dict[str, Any] = {}
        if options.get("threads"):
            config["INFERENCE_NUM_THREADS"] = int(options["threads"])
        return OvSession(ov, core.compile_model(core.read_model(model), "CPU", config))
