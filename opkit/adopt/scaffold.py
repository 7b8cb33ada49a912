"""A plan -> the adopted op's OpSpec (for its kernel skeleton) and the view its spec.py is rendered from."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from opkit.adopt.plan import Plan
from opkit.spec.model import Attr, Input, OpSpec, Output, SourceLoc, TensorType, TypeVar, snake_case
from opkit.spec.parse import _check_default, parse_shape_rule


def camel_name(namespace: str, op_name: str, overload: str, *, with_namespace: bool = False) -> str:
    """"cummax" -> "Cummax"; "soft_clamp" + overload "twice" -> "SoftClampTwice"; with the namespace
    (to tell two ops apart): "MylibCummax"."""
    words = ([namespace] if with_namespace else []) + [op_name] + ([] if overload == "default" else [overload])
    parts = [p for w in words for p in re.split(r"[^A-Za-z0-9]+", w) if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts)
    return name if name[:1].isalpha() else "Op" + name


def _ttype(plan: Plan, t: str) -> TensorType:
    return TensorType(typevar=t) if t in plan.typevars else TensorType(dtype=t)


def op_spec(plan: Plan, *, domain: str, version: int) -> OpSpec:
    """The OpSpec the rendered spec.py parses to (the kernel skeleton is rendered from it)."""
    folder = snake_case(plan.name)
    loc = SourceLoc(f"ops/{folder}/spec.py", 1)
    inputs, attrs = [], []
    for p in plan.params:
        if p.kind in ("input", "optional", "variadic"):
            inputs.append(Input(p.name, _ttype(plan, p.typ), optional=p.kind == "optional",
                                variadic=p.kind == "variadic", no_default=p.kind == "optional" and not p.has_default))
        else:
            default = _check_default(p.kind, p.default, p.name, loc) if p.has_default else None
            attrs.append(Attr(p.name, p.kind, default, required=not p.has_default))
    by_in = {i.name: i for i in inputs}
    by_attr = {a.name: a for a in attrs}
    outputs = tuple(Output(n, _ttype(plan, t), parse_shape_rule(n, plan.shapes[n], by_in, by_attr, loc)
                           if n in plan.shapes else None) for n, t in plan.outputs)
    return OpSpec(name=plan.name, domain=domain, version=version, py_name=folder,
                  typevars=tuple(TypeVar(n, d) for n, d in plan.typevars.items()), inputs=tuple(inputs),
                  attrs=tuple(attrs), outputs=outputs, param_order=tuple(p.name for p in plan.params),
                  folder=folder, adopts=plan.found.name)


def _imports(plan: Plan, model_path: Path, ws_root: Path) -> list[str]:
    """The import that defines a third-party op's torch.ops namespace, so that the reference can call it
    wherever the spec is imported (opkit test, bench, the Python backend's ONNX Runtime process)."""
    ns = plan.found.namespace
    if ns in ("aten", "prims"):
        return []
    try:
        from torch._library.custom_ops import OPDEFS

        opdef = OPDEFS.get(f"{ns}::{plan.found.op_name}")
    except ImportError:  # pragma: no cover - another torch
        opdef = None
    module = getattr(getattr(opdef, "_init_fn", None), "__module__", None)
    mod = sys.modules.get(module or "")
    file = getattr(mod, "__file__", None)
    if module and file and module != "__main__" and Path(file).resolve() != model_path.resolve() \
            and not module.startswith("opkit_model_"):
        return [f"import {module}  # defines torch.ops.{ns}.{plan.found.op_name}"]
    where = f"in {model_path.name}" if file and Path(file).resolve() == model_path.resolve() else "by the model"
    return [f"# torch.ops.{ns}.{plan.found.op_name} is defined {where}: import the module that defines it here",
            "# (e.g. `import my_extension`) so that `opkit test` and `opkit bench` can call it too."]


def lit(v: Any) -> str:
    """A Python literal as the repository writes it (double-quoted strings)."""
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        items = [lit(x) for x in v]
        if isinstance(v, list):
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    return repr(v)


def spec_view(plan: Plan, spec: OpSpec, *, model_path: Path, ws_root: Path, torch_version: str) -> dict[str, Any]:
    found = plan.found
    args = [lit(plan.name), f"domain={lit(spec.domain)}"]
    if spec.version != 1:
        args.append(f"version={spec.version}")
    args.append(f"adopts={lit(found.name)}")
    if plan.typevars:
        args.append("types={" + ", ".join(f"{lit(n)}: {lit(tuple(d))}" for n, d in plan.typevars.items()) + "}")
    names = [n for n, _ in plan.outputs]
    default_names = ["y"] if len(names) == 1 else [f"y{k}" for k in range(len(names))]
    if names != default_names:
        args.append(f"outputs={lit(tuple(names))}")
    if plan.shapes:
        args.append("shapes={" + ", ".join(f"{lit(n)}: {lit(v)}" for n, v in plan.shapes.items()) + "}")
    outs = [f"Tensor[{lit(t)}]" for _, t in plan.outputs]
    try:
        model = str(model_path.resolve().relative_to(ws_root.resolve()))
    except ValueError:
        model = str(model_path)
    return {
        "name": plan.name, "adopts": found.name, "torch_version": torch_version, "schema": str(found.schema),
        "model": model, "calls": f"{len(found.calls)} call" + ("s" if len(found.calls) != 1 else ""), "where": found.where, "folder": spec.folder,
        "pinned": ", ".join(plan.pinned), "imports": _imports(plan, model_path, ws_root),
        "decorator_args": args, "params": ", ".join(p.text for p in plan.params),
        "returns": outs[0] if len(outs) == 1 else f"tuple[{', '.join(outs)}]",
        "doc": f"{found.schema}, as an opkit op.", "call": plan.call,
    }
