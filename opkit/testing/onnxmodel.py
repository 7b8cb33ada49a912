"""The one-node ONNX model of a test case: the op with the case's attributes, inputs of static shape
(so that ONNX Runtime runs the kernel's shape inference) and outputs of unknown shape."""

from __future__ import annotations

from typing import Any

from opkit.spec.dtypes import DTYPES

DEFAULT_OPSET = 17
IR_VERSION = 10


def _attribute(name: str, kind: str, value: Any) -> Any:
    import onnx

    if kind == "bool":
        return onnx.helper.make_attribute(name, int(bool(value)))
    if kind == "float":
        return onnx.helper.make_attribute(name, float(value))
    if kind == "int":
        return onnx.helper.make_attribute(name, int(value))
    if kind == "strs":  # a 1-D string tensor attribute, as the exporter writes it (see ATTR_ONNX)
        from opkit.export.schema import strings_tensor

        return onnx.helper.make_attribute(name, strings_tensor(name, value))
    if kind in ("floats", "ints", "strs"):
        items = [float(v) for v in value] if kind == "floats" else [int(v) for v in value] if kind == "ints" \
            else [str(v) for v in value]
        if not items:
            kinds = {"floats": onnx.AttributeProto.FLOATS, "ints": onnx.AttributeProto.INTS,
                     "strs": onnx.AttributeProto.STRINGS}
            return onnx.AttributeProto(name=name, type=kinds[kind])
        return onnx.helper.make_attribute(name, items)
    return onnx.helper.make_attribute(name, str(value))


def feeds_and_model(spec: Any, combo: dict[str, str], args: dict[str, Any]) -> tuple[list[tuple[str, Any]], bytes]:
    """[(graph input name, tensor)] in graph order, and the serialized model."""
    from onnx import helper

    node_inputs: list[str] = []
    graph_inputs = []
    casts = []  # bfloat16 goes in and out as float32 through Cast nodes: ORT's Python API has no bfloat16 arrays
    feeds: list[tuple[str, Any]] = []
    for i in spec.inputs:
        v = args.get(i.name)
        dt = DTYPES[spec.resolve(i.type, combo)]
        tensors = [] if v is None else (list(v) if i.variadic else [v])
        if not tensors:
            node_inputs.append("")
            continue
        for k, t in enumerate(tensors):
            name = f"{i.name}_{k}" if i.variadic else i.name
            if dt.name == "bfloat16":
                casts.append(helper.make_node("Cast", [name], [name + "__bf16"], to=dt.onnx))
                node_inputs.append(name + "__bf16")
                graph_inputs.append(helper.make_tensor_value_info(name, DTYPES["float32"].onnx,
                                                                  [int(d) for d in t.shape]))
                feeds.append((name, t.float()))
                continue
            node_inputs.append(name)
            graph_inputs.append(helper.make_tensor_value_info(name, dt.onnx, [int(d) for d in t.shape]))
            feeds.append((name, t))
    while node_inputs and node_inputs[-1] == "":
        node_inputs.pop()
    attrs = [_attribute(a.name, a.kind, args[a.name]) for a in spec.attrs]
    out_dts = [DTYPES[spec.resolve(o.type, combo)] for o in spec.outputs]
    node = helper.make_node(spec.name, node_inputs, [o.name + ("__bf16" if d.name == "bfloat16" else "")
                                                     for o, d in zip(spec.outputs, out_dts)],
                            domain=spec.domain, name=f"{spec.name}_under_test")
    node.attribute.extend(attrs)
    after = [helper.make_node("Cast", [o.name + "__bf16"], [o.name], to=DTYPES["float32"].onnx)
             for o, d in zip(spec.outputs, out_dts) if d.name == "bfloat16"]
    outputs = [helper.make_tensor_value_info(o.name, (DTYPES["float32"] if d.name == "bfloat16" else d).onnx, None)
               for o, d in zip(spec.outputs, out_dts)]
    graph = helper.make_graph([*casts, node, *after], f"opkit_test_{spec.name}", graph_inputs, outputs)
    model = helper.make_model(graph, ir_version=IR_VERSION,
                              opset_imports=[helper.make_opsetid("", DEFAULT_OPSET),
                                             helper.make_opsetid(spec.domain, spec.version)])
    return feeds, model.SerializeToString()
