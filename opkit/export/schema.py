"""onnx.defs.OpSchema from an OpSpec: the export uses it, onnx.checker and shape inference can too."""

from __future__ import annotations

import functools

import onnx
from onnx.defs import OpSchema

from opkit.spec.dtypes import DTYPES
from opkit.spec.model import ATTR_ONNX, OpSpec

_Opt = OpSchema.FormalParameterOption


def _type_str(t) -> str:
    return t.typevar if t.typevar else DTYPES[t.dtype].onnx_type


def strings_tensor(name: str, value) -> onnx.TensorProto:
    """A list[str] attribute's value: a 1-D string tensor (see ATTR_ONNX)."""
    return onnx.helper.make_tensor(name, onnx.TensorProto.STRING, [len(value)], [str(v).encode() for v in value])


def _default_attr(kind: str, name: str, value) -> onnx.AttributeProto:
    if kind == "strs":
        return onnx.helper.make_attribute(name, strings_tensor(name, value))
    if kind == "bool":
        value = int(value)
    elif kind in ("floats", "ints", "strs"):
        value = list(value)
    if kind in ("floats", "ints", "strs") and not value:
        a = onnx.AttributeProto(name=name, type=getattr(onnx.AttributeProto, ATTR_ONNX[kind]))
        return a
    return onnx.helper.make_attribute(name, value)


@functools.lru_cache(maxsize=None)
def op_schema(spec: OpSpec) -> OpSchema:
    inputs = []
    for i in spec.inputs:
        opt = _Opt.Variadic if i.variadic else _Opt.Optional if i.optional else _Opt.Single
        inputs.append(OpSchema.FormalParameter(i.name, _type_str(i.type), "", param_option=opt,
                                               is_homogeneous=True, min_arity=1))
    outputs = [OpSchema.FormalParameter(o.name, _type_str(o.type), "") for o in spec.outputs]
    constraints = [(t.name, [DTYPES[d].onnx_type for d in t.dtypes], "") for t in spec.typevars]
    attrs = []
    for a in spec.attrs:
        if a.required:
            attrs.append(OpSchema.Attribute(a.name, getattr(OpSchema.AttrType, ATTR_ONNX[a.kind]), "", required=True))
        else:
            attrs.append(OpSchema.Attribute(a.name, _default_attr(a.kind, a.name, a.default), ""))
    schema = OpSchema(spec.name, spec.domain, spec.version, spec.doc or "", inputs=inputs, outputs=outputs,
                      type_constraints=constraints, attributes=attrs)
    from opkit.export.infer import inference_function

    schema.set_type_and_shape_inference_function(inference_function(spec))
    return schema
