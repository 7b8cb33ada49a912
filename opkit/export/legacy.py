"""The fallback exporter: torch.onnx's TorchScript exporter (``dynamo=False``), with a symbolic
function generated from each spec, and the one entry point that picks an exporter.

The symbolic function emits one ``domain::Name`` node with typed attributes (``alpha_f=``,
``n_i=``, ...), an empty input for an absent optional input, the items of a variadic input, and
sets each output's type: the dtype the trace saw, and the shape from the spec's shape rule
(dynamic dimensions stay symbolic), so that shapes are not lost after the custom node.
TorchScript cannot trace a custom op with a list[str] argument ("unsupported input list type:
str"): such ops are reported, with the dynamo exporter as the way out.
"""

from __future__ import annotations

import contextlib
import inspect
import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from opkit.errors import AdoptionError, ExportError, UsageError
from opkit.export.driver import Exported, _quiet_exporter
from opkit.spec.model import OpSpec

EXPORTERS = ("dynamo", "legacy")
# TorchScript's attribute-name suffix for each attribute kind (g.op("X", alpha_f=1.0)).
_SUFFIX = {"float": "f", "int": "i", "bool": "i", "str": "s", "floats": "f", "ints": "i", "strs": "s"}
_DESC = {"float": "f", "int": "i", "bool": "b", "str": "s", "floats": "fs", "ints": "is"}


def export_model(model: Any, example_inputs: tuple, path: Path, ops: Iterable[Any], *, exporter: str = "dynamo",
                 dynamic_shapes: Any = None, opset: int | None = None, external_data: bool = False) -> Exported:
    """Export with the chosen exporter. A dynamo failure says why in one paragraph and names --exporter legacy."""
    if exporter not in EXPORTERS:
        raise UsageError(f"unknown exporter {exporter!r}", expected=" or ".join(EXPORTERS), got=exporter)
    ops = list(ops)
    if exporter == "legacy":
        return export_legacy(model, example_inputs, path, ops, dynamic_shapes=dynamic_shapes, opset=opset)
    from opkit.export.driver import export

    try:
        return export(model, example_inputs, path, ops, dynamic_shapes=dynamic_shapes, opset=opset,
                      external_data=external_data)
    except AdoptionError:
        raise  # the spec, not the model's traceability: the legacy exporter would not help
    except ExportError as exc:
        raise dynamo_failed(exc) from None


def dynamo_failed(exc: ExportError) -> ExportError:
    """The dynamo exporter's failure as one paragraph, pointing to the TorchScript fallback."""
    detail = " ".join(ln.strip() for ln in (exc.details or "").splitlines()[:6] if ln.strip())
    paragraph = exc.what + (f" ({detail[:500]})" if detail else "")
    return ExportError(
        "the dynamo exporter (torch.export) could not export this model",
        details=paragraph,
        fix="make the model traceable by torch.export (no data-dependent Python control flow, supported "
            "dynamic_shapes), or export with the TorchScript-based exporter instead: add `--exporter legacy` "
            "(it traces the model with the example inputs; data-dependent branches are frozen to the traced path)")


# -- the TorchScript exporter ----------------------------------------------------------------------
def _const(v: Any, kind: str, spec: OpSpec, name: str) -> Any:
    from torch.onnx import symbolic_helper as sh

    node = v.node()
    if kind == "strs":
        if node.kind() == "prim::ListConstruct":
            return [_const(i, "str", spec, name) for i in node.inputs()]
        value = v.toIValue()
    elif node.kind() == "prim::ListConstruct" and kind in ("floats", "ints"):
        value = [_const(i, kind[:-1], spec, name) for i in node.inputs()]
    else:
        value = sh._maybe_get_const(v, _DESC[kind])
        if sh._is_value(value):
            value = v.toIValue()
    if value is None:
        raise ExportError(f"attribute {name!r} of {spec.qualname} is not a constant in the traced model",
                          where=spec.loc, expected="a Python value (ONNX attributes are fixed at export)",
                          got="a value computed from tensors", fix="pass a Python number/string, not a tensor")
    return value


def _attr_value(kind: str, value: Any) -> Any:
    if kind == "bool":
        return int(bool(value))
    if kind == "float":
        return float(value)
    if kind == "floats":
        return [float(x) for x in value]
    if kind == "ints":
        return [int(x) for x in value]
    if kind == "strs":
        return [str(x) for x in value]
    return value


def _out_sizes(spec: OpSpec, k: int, in_sizes: dict[str, list | None], attrs: dict[str, Any],
               rank: int | None) -> list | None:
    """The k-th output's dims (None = symbolic) from its shape rule; None when unknown."""
    out = spec.outputs[k]
    if out.shape is None:
        return [None] * rank if rank is not None else None
    dims: list = []
    for d in out.shape.dims:
        if d.kind == "const":
            dims.append(d.value)
        elif d.kind == "attr":
            dims.append(int(attrs[d.attr]))
        elif d.kind == "dynamic":
            dims.append(None)
        else:
            src = in_sizes.get(d.input or "")
            if src is None:
                return [None] * rank if rank is not None else None
            if d.kind == "dim":
                dims.append(src[d.index])
            else:
                dims.extend(src[d.start:d.stop])
    return dims


def symbolic(spec: OpSpec) -> Callable:
    """The TorchScript symbolic function of an op: one ``domain::Name`` node, typed attributes, output types."""
    names = list(spec.param_order)

    def emit(g: Any, *args: Any) -> Any:
        import torch
        from torch.onnx import symbolic_helper as sh

        values = dict(zip(names, args))
        node_inputs, in_sizes = [], {}
        for i in spec.inputs:
            v = values[i.name]
            if i.variadic:
                node_inputs.extend(sh._unpack_list(v))
            elif i.optional and sh._is_none(v):
                node_inputs.append(g.op("prim::Constant").setType(torch._C.OptionalType.ofTensor()))
            else:
                node_inputs.append(v)
                t = v.type()
                in_sizes[i.name] = t.varyingSizes() if isinstance(t, torch._C.TensorType) else None
        kwargs, plain = {}, {}
        for a in spec.attrs:
            plain[a.name] = _attr_value(a.kind, _const(values[a.name], a.kind, spec, a.name))
            kwargs[f"{a.name}_{_SUFFIX[a.kind]}"] = plain[a.name]
        n = len(spec.outputs)
        outs = g.op(f"{spec.domain}::{spec.name}", *node_inputs, outputs=n, **kwargs)
        outs = list(outs) if n > 1 else [outs]
        orig = getattr(g, "original_node", None)
        for k, o in enumerate(outs):
            traced = orig.outputsAt(k).type() if orig is not None and k < orig.outputsSize() else None
            if not isinstance(traced, torch._C.TensorType):
                continue
            sizes = traced.varyingSizes()
            rank = len(sizes) if sizes is not None else None
            dims = _out_sizes(spec, k, in_sizes, plain, rank)
            o.setType(traced.with_sizes(dims) if dims is not None else traced)
        return tuple(outs) if n > 1 else outs[0]

    emit.__name__ = f"{spec.py_name}_symbolic"
    return emit


def dynamic_axes(model: Any, example_inputs: tuple, dynamic_shapes: Any) -> tuple[list[str], dict]:
    """Input names (the forward parameters) and a TorchScript dynamic_axes from torch.export dynamic_shapes."""
    params = [p for p in inspect.signature(model.forward).parameters][: len(example_inputs)]
    names = params + [f"input{k}" for k in range(len(params), len(example_inputs))]
    if dynamic_shapes is None:
        return names, {}
    if isinstance(dynamic_shapes, dict):
        per_input = [dynamic_shapes.get(p) for p in names]
    else:
        per_input = list(dynamic_shapes) + [None] * (len(names) - len(dynamic_shapes))
    axes: dict[str, dict[int, str]] = {}
    for name, spec in zip(names, per_input):
        if spec is None:
            continue
        items = spec.items() if isinstance(spec, dict) else enumerate(spec)
        for ax, d in items:
            if d is None:
                continue
            dim_name = getattr(d, "__name__", None)
            if not isinstance(dim_name, str) or dim_name.startswith("_"):
                dim_name = f"{name}_dim{ax}"
            axes.setdefault(name, {})[int(ax)] = dim_name
    return names, axes


def _name_outputs(proto: Any) -> None:
    """TorchScript names graph outputs by number ("7"): call them output / output0, output1, ..."""
    outs = proto.graph.output
    taken = {v.name for v in proto.graph.input} | {i.name for i in proto.graph.initializer}
    for k, o in enumerate(outs):
        if not o.name.isdigit():
            continue
        new = "output" if len(outs) == 1 else f"output{k}"
        if new in taken:
            continue
        old = o.name
        for node in proto.graph.node:
            for lst in (node.input, node.output):
                for j, n in enumerate(lst):
                    if n == old:
                        lst[j] = new
        for vi in proto.graph.value_info:
            if vi.name == old:
                vi.name = new
        o.name = new


def _reordered(emit: Callable, spec: OpSpec, bound: list[str | None]) -> Callable:
    """The spec's symbolic, called with the original op's arguments (schema order; unbound ones dropped)."""
    def call(g: Any, *args: Any) -> Any:
        by_param = {p: a for p, a in zip(bound, args) if p is not None}
        return emit(g, *(by_param[n] for n in spec.param_order))

    return call


def _adopted_names(ops: list[Any]) -> list[tuple[OpSpec, str, list]]:
    """(spec, "ns::name", binding) of each adopted op this process defines. TorchScript symbolics are registered
    per op name, not per overload: two adopted overloads of one name cannot be told apart there."""
    from opkit.export.translate import adopted_target, adoption_binding

    found: dict[str, tuple[OpSpec, list]] = {}
    for op in ops:
        target = adopted_target(op.spec) if op.spec.adopts else None
        if target is None:
            continue
        bound = adoption_binding(op.spec, target)
        name = op.spec.adopts.split(".")[0]
        if name in found:
            other = found[name][0]
            raise AdoptionError(f"{other.qualname} and {op.spec.qualname} adopt two overloads of {name}",
                                where=op.spec.loc, expected="one adopted overload per op name (the TorchScript "
                                "exporter maps ops by name)", got=f"{other.adopts} and {op.spec.adopts}",
                                fix="export with the default dynamo exporter (drop --exporter legacy)")
        found[name] = (op.spec, bound)
    return [(s, n, b) for n, (s, b) in found.items()]


def export_legacy(model: Any, example_inputs: tuple, path: Path, ops: Iterable[Any], *,
                  dynamic_shapes: Any = None, opset: int | None = None) -> Exported:
    """Export with torch.onnx's TorchScript exporter (``dynamo=False``), each op one custom node."""
    import onnx
    import torch

    ops = list(ops)
    specs = [op.spec for op in ops]
    names, axes = dynamic_axes(model, example_inputs, dynamic_shapes)
    domains = {s.domain: s.version for s in specs}
    registered = []
    path.parent.mkdir(parents=True, exist_ok=True)
    for p in (path, path.with_name(path.name + ".data")):
        p.unlink(missing_ok=True)
    captured = io.StringIO()
    try:
        for s in specs:
            torch.onnx.register_custom_op_symbolic(s.torch_qualname, symbolic(s), 1)
            registered.append(s.torch_qualname)
        for s, name, bound in _adopted_names(ops):
            torch.onnx.register_custom_op_symbolic(name, _reordered(symbolic(s), s, bound), 1)
            registered.append(name)
        with _quiet_exporter(), contextlib.redirect_stdout(captured), torch.no_grad():
            torch.onnx.export(model, tuple(example_inputs), str(path), dynamo=False, input_names=names,
                              dynamic_axes=axes or None, custom_opsets=domains, opset_version=opset,
                              do_constant_folding=True)
    except ExportError:
        raise
    except Exception as exc:
        msg = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        if "unsupported input list type: str" in str(exc):
            culprits = [f"{s.qualname}: {a.name}: list[str]" for s in specs for a in s.attrs if a.kind == "strs"]
            raise ExportError("the TorchScript exporter cannot trace an op with a list[str] attribute",
                              details="\n".join(culprits) or None,
                              fix="export with the default dynamo exporter (drop --exporter legacy), or pass "
                                  "the strings as one str attribute") from None
        raise ExportError(f"torch.onnx.export (TorchScript exporter) failed: {type(exc).__name__}: "
                          f"{(msg[0] if msg else '')[:400]}",
                          details="\n".join(msg[1:15]) or None,
                          fix="the TorchScript exporter traces the model with the example inputs: every "
                              "operation must be traceable by torch.jit.trace; try the default dynamo exporter") \
            from None
    finally:
        for q in registered:
            try:
                torch.onnx.unregister_custom_op_symbolic(q, 1)
            except Exception:
                pass
    proto = onnx.load(str(path))
    _name_outputs(proto)
    have = {o.domain for o in proto.opset_import}
    for d, v in domains.items():
        if d not in have and any(n.domain == d for n in proto.graph.node):
            proto.opset_import.append(onnx.helper.make_opsetid(d, v))
    onnx.save(proto, str(path))
    opset_used = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return Exported(path, proto, "legacy", opset_used)
