"""The dynamo exporter's translation of each opkit op into one node of its domain, and of each op an opkit
op adopts (``adopts="aten::cummax"``): every call of the original op becomes the opkit op's node."""

from __future__ import annotations

import keyword
from collections.abc import Iterable, Sequence
from typing import Any

from opkit.errors import AdoptionError
from opkit.export.schema import op_schema
from opkit.spec.adopts import bind
from opkit.spec.model import ADOPTS, OpSpec


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


def adopted_target(spec: OpSpec) -> Any | None:
    """The torch OpOverload that ``spec.adopts`` names, or None when no module of this process defines it
    (a model that cannot call the op needs no translation for it)."""
    import torch

    m = ADOPTS.match(spec.adopts or "")
    if m is None:
        return None
    ns, name, overload = m.groups()
    try:
        return getattr(getattr(getattr(torch.ops, ns), name), overload or "default")
    except (AttributeError, RuntimeError):
        return None


def adoption_binding(spec: OpSpec, target: Any) -> list[str | None]:
    """For each argument of the original op, the spec parameter standing for it (None: left at its default);
    raises when they do not fit (see opkit.spec.adopts)."""
    args = target._schema.arguments
    bound, extra = bind(spec.param_order, [a.name for a in args])
    missing = [a.name for a, p in zip(args, bound) if p is None
               and not a.has_default_value() and not str(a.real_type).startswith("Optional[")]
    if extra or missing:
        raise AdoptionError(f"{spec.qualname} adopts {spec.adopts}, but its parameters do not fit that op's "
                            "arguments", where=spec.loc,
                            expected=f"a parameter per argument of {target._schema} (one without a default may "
                                     "not be left out)",
                            got=(f"parameter(s) {', '.join(extra)} stand for no argument" if extra else
                                 f"no parameter for {', '.join(missing)}"),
                            fix="name each parameter as the original op names its argument (`self` is `x`); "
                                "`opkit adopt` writes such a spec")
    return bound


def adopted_arguments(spec: OpSpec, target: Any, bound: list[str | None], values: Sequence[Any]) -> dict[str, Any]:
    """The adopted op's parameters for one call of the original op. `values`: the call's arguments in the
    original's order (None: not given, so its default); `bound`: adoption_binding's. An argument the spec
    leaves out must be at its default."""
    params = {}
    for a, p, v in zip(target._schema.arguments, bound, values):
        d = a.default_value if a.has_default_value() else None
        if p is not None:
            params[p] = d if v is None else v
        elif v is not None and v != d and not (a.name == "dtype" and v == -1):  # the exporter's None dtype
            raise AdoptionError(f"the model calls {spec.adopts} with {a.name}={v!r}; {spec.qualname} leaves "
                                f"{a.name!r} at its default ({d!r})", where=spec.loc,
                                fix=f"leave {a.name!r} at its default in the model, or give the spec a parameter "
                                    f"{a.name!r} (when an attribute can hold it: remove the op's folder and run "
                                    "`opkit adopt` again, which says whether it can)")
    return params


def adoption_translation(spec: OpSpec, target: Any):
    """A translation with the original op's argument names and order that emits the adopted op's node.

    The exporter passes a call's arguments as the graph recorded them: positionally, keyword-only ones by
    name, trailing defaults sometimes left out (they come from the original schema then). An argument the
    spec leaves out must be at its default in every call."""
    bound = adoption_binding(spec, target)
    emit = translation(spec)
    args = target._schema.arguments
    names = [a.name if a.name.isidentifier() and not keyword.iskeyword(a.name) else f"arg{k}"
             for k, a in enumerate(args)]

    def call(*values: Any) -> Any:
        return emit(**adopted_arguments(spec, target, bound, values))

    src = (f"def {spec.py_name}_adopted_to_onnx({', '.join(f'{n}=None' for n in names)}):\n"
           f"    return call({', '.join(names)})\n")
    scope: dict[str, Any] = {"call": call}
    exec(compile(src, f"<opkit translation of {spec.adopts} as {spec.qualname}>", "exec"), scope)
    return scope[f"{spec.py_name}_adopted_to_onnx"]


def translation_table(ops: Iterable[Any]) -> dict:
    """{torch op overload: translation} for the given opkit Op objects, and for the ops they adopt."""
    ops = list(ops)
    table = {op.torch_op._opoverload: translation(op.spec) for op in ops}
    for op in ops:
        target = adopted_target(op.spec) if op.spec.adopts else None
        if target is not None:
            table[target] = adoption_translation(op.spec, target)
    return table
