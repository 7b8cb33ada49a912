"""ONNX Runtime through its Python API, with libopkit_ops.so registered (opkit's default runtime)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opkit.runtimes.base import Runtime, Session

_BFLOAT16 = 16  # onnx.TensorProto.BFLOAT16


class OrtSession(Session):
    """An InferenceSession. bfloat16 tensors (which ORT's numpy interface cannot carry) go through
    OrtValues: fed from their 16-bit patterns, fetched by copying the output's bytes."""

    def __init__(self, sess: Any) -> None:
        import onnxruntime as ort

        self.ort, self.sess = ort, sess
        self.input_names = [i.name for i in sess.get_inputs()]
        self.output_names = [o.name for o in sess.get_outputs()]
        types = [i.type for i in sess.get_inputs()] + [o.type for o in sess.get_outputs()]
        self.bf16 = "tensor(bfloat16)" in types

    def _feeds(self, arrays: list) -> dict:
        import numpy as np

        ort = self.ort
        if not self.bf16:
            return dict(zip(self.input_names, arrays))
        feeds = {}
        for name, a in zip(self.input_names, arrays):
            a = np.ascontiguousarray(a)
            if a.dtype.name == "bfloat16":
                feeds[name] = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(a.view(np.uint16), _BFLOAT16)
            else:
                feeds[name] = ort.OrtValue.ortvalue_from_numpy(a)
        return feeds

    def run(self, arrays: list) -> list:
        feeds = self._feeds(arrays)
        if not self.bf16:
            return self.sess.run(None, feeds)
        import ctypes

        import ml_dtypes
        import numpy as np

        outs = []
        for v in self.sess.run_with_ort_values(self.output_names, feeds):
            if v.data_type() == "tensor(bfloat16)":
                n = v.tensor_size_in_bytes()
                raw = bytes((ctypes.c_char * n).from_address(v.data_ptr())) if n else b""
                outs.append(np.frombuffer(raw, dtype=np.uint16).reshape(v.shape()).view(ml_dtypes.bfloat16))
            else:
                outs.append(v.numpy())
        return outs

    def bind(self, arrays: list) -> Callable[[], Any]:
        feeds, sess = self._feeds(arrays), self.sess
        if self.bf16:
            return lambda: sess.run_with_ort_values(None, feeds)
        return lambda: sess.run(None, feeds)

    def inferred_shapes(self) -> list[list | None]:
        return [o.shape if isinstance(o.shape, list) else None for o in self.sess.get_outputs()]


def session_options(options: dict[str, Any], libraries: list[str]) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if options.get("threads"):
        so.intra_op_num_threads = int(options["threads"])
    if options.get("sanitize"):
        so.enable_cpu_mem_arena = False  # so that AddressSanitizer sees each tensor's bounds
    if options.get("spin") is False:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if options.get("sequential"):
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    for lib in libraries:
        so.register_custom_ops_library(lib)
    return so


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    label = "ONNX Runtime (Python API) + libopkit_ops.so"
    short = "ONNX Runtime"
    requires = ("onnxruntime",)
    install = "pip install 'onnxruntime>=1.21'"
    library = "ort"
    default = True
    report_backend = "native"

    def version(self) -> str:
        from importlib import metadata

        try:
            return metadata.version("onnxruntime")
        except metadata.PackageNotFoundError:
            return "not installed"

    def open(self, model: str, libraries: list[str], options: dict[str, Any]) -> Session:
        import onnxruntime as ort

        so = session_options(options, libraries)
        return OrtSession(ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]))
