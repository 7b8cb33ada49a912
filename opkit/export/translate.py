"""The dynamo exporter's translation of each opkit op into one node of its domain."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opkit.export.schema import op_schema
from opkit.spec.model import OpSpec


def onnx_attr_value(kind: str, value: Any, name: str = "") -> Any:
    if kind == "strs":
        from opkit.export.schema import strings_tensor

        return strings_tensor(name, value)
    if kind == "bool":
        return int(bool(value))
    if kind in ("floats", "ints"):
        return [float(v) for v in value] if kind == "floats" else list(value)
    if kind == "float":
        return float(value)
    return value


def translation(spec: OpSpec):
    """A function with the op's parameter names that emits ``domain::Name(inputs, attrs)``.

    All arguments go to onnxscript by keyword: onnxscript's positional binding mishandles a
    variadic input after other inputs (torch 2.13).
    """
    from onnxscript import values

    onnx_op = values.Op(values.Opset(spec.domain, spec.version), spec.name, op_schema(spec))
    inputs = {i.name: i for i in spec.inputs}
    kinds = {a.name: a.kind for a in spec.attrs}
    n_out = len(spec.outputs)

    def emit(**kwargs: Any) -> Any:
        call: dict[str, Any] = {}
        for name, value in kwargs.items():
            if name in inputs:
                call[name] = list(value) if inputs[name].variadic else value
            else:
                call[name] = onnx_attr_value(kinds[name], value, name)
        out = onnx_op(**call)
        return tuple(out) if n_out > 1 else out

    names = list(spec.param_order)
    src = f"def {spec.py_name}_to_onnx({', '.join(names)}):\n    return emit({', '.join(f'{n}={n}' for n in names)})\n"
    scope: dict[str, Any] = {"emit": emit}
    exec(compile(src, f"<opkit translation of {spec.qualname}>", "exec"), scope)
    return scope[f"{spec.py_name}_to_onnx"]


def translation_table(ops: Iterable[Any]) -> dict:
    """{torch op overload: translation} for the given opkit Op objects."""
    return {op.torch_op._opoverload: translation(op.spec) for op in ops}
