"""A plan -> the adopted op's OpSpec (for its kernel skeleton) and the view its spec.py is rendered from."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from opkit.adopt.plan import Plan, lit
from opkit.spec.adopts import LIBTORCH_NAMESPACES
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


def defining_module(namespace: str, op_name: str) -> tuple[str | None, str | None]:
    """(module name, file) of the Python module that defined a third-party op, as far as torch can tell:
    torch.library.custom_op keeps the function; a torch.library.Library schema records the file that defined it."""
    import torch

    try:
        from torch._library.custom_ops import OPDEFS

        fn = getattr(OPDEFS.get(f"{namespace}::{op_name}"), "_init_fn", None)
        if fn is not None and fn.__module__ in sys.modules:
            return fn.__module__, getattr(sys.modules[fn.__module__], "__file__", None)
        m = re.search(r"^debug: registered at (.+?):\d+$", torch._C._dispatch_dump(f"{namespace}::{op_name}"), re.M)
    except (ImportError, RuntimeError):  # pragma: no cover - another torch
        return None, None
    if m is None:
        return None, None
    try:
        want = Path(m.group(1)).resolve()
    except OSError:
        return None, None
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if file and file.endswith(".py") and Path(file).resolve() == want:
            return name, file
    return None, str(want)


def _imports(plan: Plan, model_path: Path) -> list[str]:
    """The import that defines a third-party op's torch.ops namespace, so that the reference can call it
    wherever the spec is imported (opkit test, bench, the Python backend's ONNX Runtime process)."""
    ns, op_name = plan.found.namespace, plan.found.op_name
    if ns in LIBTORCH_NAMESPACES:
        return []
    module, file = defining_module(ns, op_name)
    in_model = file is not None and Path(file).resolve() == model_path.resolve()
    if module and not in_model and module != "__main__" and not module.startswith("opkit_model_"):
        return [f"import {module}  # noqa: F401  (defines torch.ops.{ns}.{op_name})"]
    where = f"in {model_path.name}" if in_model else "by a library the model loads"
    return [f"# torch.ops.{ns}.{op_name} is defined {where}: import the module that defines it here",
            "# (e.g. `import my_extension`) so that `opkit test`, `opkit bench` and `--backend python` can call it."]


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
    returns = outs[0] if len(outs) == 1 else f"tuple[{', '.join(outs)}]"
    params = ", ".join(p.text for p in plan.params)
    if len(f"def {spec.folder}({params}) -> {returns}:") > 110:  # one parameter a line
        params = "\n" + "".join(f"    {p.text},\n" for p in plan.params)
    try:
        model = str(model_path.resolve().relative_to(ws_root.resolve()))
    except ValueError:
        model = str(model_path)
    return {
        "name": plan.name, "adopts": found.name, "torch_version": torch_version, "schema": str(found.schema),
        "model": model, "calls": f"{len(found.calls)} call" + ("s" if len(found.calls) != 1 else ""),
        "where": found.where, "folder": spec.folder,
        "pinned": ", ".join(plan.pinned), "imports": _imports(plan, model_path),
        "decorator_args": args, "params": params, "returns": returns,
        "doc": f"Adopted from {found.name}: the original op is the reference.", "call": plan.call,
    }
