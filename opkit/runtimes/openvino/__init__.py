"""OpenVINO through its Python API (ov.Core), with libopkit_openvino.so added as an extension: the
exported ONNX model is read by OpenVINO's ONNX frontend (custom nodes become opkit's ov::op::Op
classes) and compiled for the CPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opkit.build.runtimes import OPENVINO_INSTALL
from pathlib import Path

from opkit.runtimes.base import Prepare, Runtime, Session


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
    """A compiled model. Inputs are the ONNX graph's, in its order: OpenVINO drops inputs it folded away
    (e.g. an empty tensor), so arrays are set by name."""

    def __init__(self, ov: Any, compiled: Any, input_names: list[str], recompile: Any = None) -> None:
        self.ov, self.input_names, self.recompile = ov, input_names, recompile
        self.dynamic = any(p.get_partial_shape().is_dynamic for p in compiled.inputs)
        self.static_for: dict[str, list[int]] | None = None
        self._use(compiled)
        self.output_names = [p.get_any_name() for p in compiled.outputs]

    def _use(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.ports = {name: k for k, p in enumerate(compiled.inputs) for name in p.get_names()}
        self.model_outputs = compiled.outputs

    def _set(self, arrays: list) -> None:
        for name, a in zip(self.input_names, arrays):
            if name in self.ports:
                self.request.set_input_tensor(self.ports[name], _tensor(self.ov, a))

    def run(self, arrays: list) -> list:
        self._set(arrays)
        self.request.infer()
        return [_to_numpy(self.request.get_output_tensor(k)) for k in range(len(self.output_names))]

    def bind(self, arrays: list) -> Callable[[], Any]:
        """For timing (opkit bench): a model with dynamic dims is compiled again for these inputs' shapes
        (ov.Model.reshape), as OpenVINO recommends on the CPU; every variant of a bench gets the same."""
        shapes = {name: list(a.shape) for name, a in zip(self.input_names, arrays) if name in self.ports}
        if self.recompile is not None and self.dynamic and shapes != self.static_for:
            self._use(self.recompile(shapes))
            self.static_for = shapes
        self._set(arrays)
        # share_outputs: the Python API otherwise copies every output into a new numpy array after each
        # call (16 MB at 4M floats: about 1.2 ms, as long as the model itself), which is not the model's time.
        request = self.request
        return lambda: request.infer(share_outputs=True)

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
    # OpenVINO's CPU plugin runs float64 graphs in float32 (the inputs are rounded before the kernel sees
    # them; the kernel still computes in float64). float16/bfloat16/int64 travel as float32/int32 and are
    # converted back exactly for the kernel.
    narrows = {"float64": "float32"}
    # --sanitize: OpenVINO's TBB would dlopen libtbbbind with RTLD_DEEPBIND, which AddressSanitizer refuses
    # (google/sanitizers#611); the sanitizer environment sets TBB_ENABLE_SANITIZERS=1 (opkit/testing/sanitize.py).
    sanitize = True

    def prepare(self, ctx: Prepare) -> Path:
        """OpenVINO's copy of the model: each custom node records its outputs' ranks (the CPU plugin needs
        them; a spec without a shape rule does not give them)."""
        import onnx

        model = onnx.load(str(ctx.onnx_path), load_external_data=False)
        return annotate_ranks(model, _value_ranks(model), ctx.onnx_path.with_name("model.openvino.onnx"))

    def prepare_cases(self, spec: Any, cases: list[tuple[str, Path]], ws_root: Path, op: Any
                      ) -> tuple[list[tuple[str, Path]], list[tuple[str, str]], dict[str, Any], str]:
        import json

        import onnx

        for _, folder in cases:
            model = onnx.load(str(folder / "model.onnx"))
            ranks = json.loads((folder / "meta.json").read_text()).get("output_ranks") or []
            node = next(n for n in model.graph.node if n.domain == spec.domain and n.op_type == spec.name)
            annotate_ranks(model, dict(zip(node.output, ranks)), folder / "model.openvino.onnx")
        return cases, [], {}, "model.openvino.onnx"

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
        # The model's own precision: on CPUs with bf16 units OpenVINO would otherwise run f32 graphs in
        # bf16 (errors of ~1e-2), which is neither what the kernel computes nor what eager does.
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
        if options.get("threads"):
            config["INFERENCE_NUM_THREADS"] = int(options["threads"])
        import onnx

        proto = onnx.load(model, load_external_data=False)
        inits = {i.name for i in proto.graph.initializer}
        names = [i.name for i in proto.graph.input if i.name not in inits]
        def recompile(shapes: dict[str, list[int]]) -> Any:
            m = core.read_model(model)
            m.reshape({p: shapes[n] for p in m.inputs for n in p.get_names() if n in shapes})
            return core.compile_model(m, "CPU", config)

        return OvSession(ov, core.compile_model(core.read_model(model), "CPU", config), names, recompile)


_STANDARD = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training", "ai.onnx.training")


def _value_ranks(model: Any) -> dict[str, int]:
    """The rank of every value the model records a shape for (value_info, graph outputs)."""
    out = {}
    for vi in list(model.graph.value_info) + list(model.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = len(t.shape.dim)
    return out


def annotate_ranks(model: Any, ranks: dict[str, int], path: Path) -> Path:
    """Write OpenVINO's copy of `model` to `path`: every custom-domain node gets an ints attribute
    opkit_output_ranks (-1: unknown), which the extension's converter reads, and its list[str]
    attributes (a 1-D string tensor, as opkit exports them for ONNX Runtime) become STRINGS, the form
    OpenVINO's ONNX frontend hands to a converter."""
    import onnx

    for node in model.graph.node:
        if node.domain in _STANDARD:
            continue
        kept = []
        for a in node.attribute:
            if a.name == "opkit_output_ranks":
                continue
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == onnx.TensorProto.STRING and \
                    len(a.t.dims) == 1:
                a = onnx.helper.make_attribute(a.name, [s.decode() for s in a.t.string_data],
                                               attr_type=onnx.AttributeProto.STRINGS)
            kept.append(a)
        del node.attribute[:]
        node.attribute.extend(kept)
        node.attribute.append(onnx.helper.make_attribute("opkit_output_ranks",
                                                         [ranks.get(o, -1) for o in node.output]))
    onnx.save(model, str(path))
    return path
