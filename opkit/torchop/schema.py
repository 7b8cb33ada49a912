"""The torch schema of an op, from its spec (no torch import: the C++ schemas library renders it too)."""

from __future__ import annotations

from opkit.spec.model import ATTR_TORCH_SCHEMA, OpSpec


def torch_schema(spec: OpSpec) -> str:
    """The torch.library schema: every parameter positional, no defaults (the Op wrapper fills them)."""
    parts = []
    for name in spec.param_order:
        inp = next((i for i in spec.inputs if i.name == name), None)
        if inp is not None:
            t = "Tensor[]" if inp.variadic else "Tensor?" if inp.optional else "Tensor"
        else:
            t = ATTR_TORCH_SCHEMA[spec.attr(name).kind]
        parts.append(f"{t} {name}")
    outs = ", ".join("Tensor" for _ in spec.outputs)
    ret = "Tensor" if len(spec.outputs) == 1 else f"({outs})"
    return f"({', '.join(parts)}) -> {ret}"
