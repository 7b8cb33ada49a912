"""ONNX type and shape inference for an op, from its spec: attached to its OpSchema.

`onnx.shape_inference.infer_shapes` calls it once the schema is registered
(:func:`register_schemas`). Output dtypes follow the type variables (or the fixed dtype);
output shapes follow the spec's shape rules (``shapes=``), a ``None`` item giving a dimension
of unknown size. Where the spec says nothing (no rule, an input of unknown shape) the
output is left without a shape rather than guessed; the function never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import onnx

from opkit.spec.dtypes import DTYPES
from opkit.spec.model import OpSpec


def _elem_type(spec: OpSpec, out, ctx: Any) -> int:
    if out.type.dtype:
        return DTYPES[out.type.dtype].onnx
    n = ctx.get_num_inputs()
    for k, inp in enumerate(spec.inputs):
        if inp.type.typevar != out.type.typevar:
            continue
        for i in ([k] if not inp.variadic else range(k, n)):
            if i < n and ctx.has_input(i):
                t = ctx.get_input_type(i)
                if t is not None and t.HasField("tensor_type") and t.tensor_type.elem_type:
                    return t.tensor_type.elem_type
    return 0


def _input_dims(spec: OpSpec, name: str, ctx: Any) -> list | None:
    k = next(n for n, i in enumerate(spec.inputs) if i.name == name)
    if k >= ctx.get_num_inputs() or not ctx.has_input(k):
        return None
    t = ctx.get_input_type(k)
    if t is None or not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    return list(t.tensor_type.shape.dim)


def _attr_int(spec: OpSpec, name: str, ctx: Any) -> int | None:
    a = ctx.get_attribute(name)
    if a is not None and a.type == onnx.AttributeProto.INT:
        return a.i
    default = spec.attr(name).default
    return default if isinstance(default, int) else None


def _shape(spec: OpSpec, out, ctx: Any) -> list | None:
    """Output dims as TensorShapeProto.Dimension messages, or None when unknown."""
    dims: list = []
    for d in out.shape.dims:
        if d.kind in ("dims", "dim"):
            src = _input_dims(spec, d.input, ctx)
            if src is None:
                return None
            if d.kind == "dims":
                dims.extend(src[slice(d.start, d.stop)])
            else:
                if not -len(src) <= d.index < len(src):
                    return None
                dims.append(src[d.index])
        else:
            dim = onnx.TensorShapeProto.Dimension()
            if d.kind == "attr":
                v = _attr_int(spec, d.attr, ctx)
                if v is None or v < 0:
                    return None
                dim.dim_value = v
            elif d.kind == "const":
                dim.dim_value = d.value
            dims.append(dim)  # "dynamic": a dimension of unknown size
    return dims


def inference_function(spec: OpSpec) -> Callable[[Any], None]:
    def infer(ctx: Any) -> None:
        for k, out in enumerate(spec.outputs):
            if k >= ctx.get_num_outputs():
                break
            try:
                elem = _elem_type(spec, out, ctx)
                if not elem:
                    continue
                t = onnx.TypeProto()
                t.tensor_type.elem_type = elem
                dims = _shape(spec, out, ctx) if out.shape is not None else None
                if dims is not None:
                    t.tensor_type.shape.SetInParent()
                    for d in dims:
                        t.tensor_type.shape.dim.add().CopyFrom(d)
                ctx.set_output_type(k, t)
            except Exception:  # inference is advisory: never fail a model over it
                continue

    return infer


def register_schemas(specs: Iterable[OpSpec]) -> list[str]:
    """Register each op's OpSchema with onnx (for onnx.checker and onnx.shape_inference).

    Ops whose schema is already registered (same domain, name and version) are skipped.
    Returns the qualnames registered now.
    """
    from opkit.export.schema import op_schema

    done = []
    for spec in specs:
        if onnx.defs.has(spec.name, spec.version, spec.domain):
            continue
        onnx.defs.register_schema(op_schema(spec))
        done.append(spec.qualname)
    return done
