"""Renderers of the PyTorch op library: OpSpec -> text of its generated files (pure, like render.py).

The library registers each op's kernel for torch's CPU dispatch key (TORCH_LIBRARY_IMPL); the op's
schema stays the one opkit.torchop defines with torch.library.custom_op from the same spec.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opkit import __version__
from opkit.codegen.env import render
from opkit.codegen.render import _cpp_elem, cpp_literal, library_views, op_view
from opkit.spec.dtypes import DTYPES
from opkit.spec.model import Attr, OpSpec, snake_case

LIBRARY_TARGET = "opkit_torch"
SCHEMAS_TARGET = "opkit_torch_schemas"  # the schemas, for the C++ runners (never loaded into Python)
RUNNER_TARGET = "opkit-torch-runner"
INFO_MARKER = "OPKIT_TORCH_INFO"

# c10::ScalarType's enumerator for each of opkit's dtypes (the C++ side of DTYPES[...].torch_name).
ATEN_SCALAR = {"float16": "Half", "bfloat16": "BFloat16", "float32": "Float", "float64": "Double",
               "int8": "Char", "uint8": "Byte", "int16": "Short", "int32": "Int", "int64": "Long", "bool": "Bool"}


def _choices_check(a: Attr) -> str:
    """C++ that rejects a value outside a Literal[...] attribute's choices (every call: torch has no session)."""
    if a.choices is None or a.kind not in ("str", "int"):
        return ""
    test = " || ".join(f"attrs.{a.name} == {cpp_literal(a.kind, c)}" for c in a.choices)
    listed = ", ".join(json.dumps(c) if a.kind == "str" else str(c) for c in a.choices)
    got = f'"\\"" + attrs.{a.name} + "\\""' if a.kind == "str" else f"std::to_string(attrs.{a.name})"
    return (f"if (!({test})) throw opkit::Error(std::string("
            f"{json.dumps(f'attribute {a.name!r}: expected one of {listed}, got ')}) + {got});")


def torch_op_view(spec: OpSpec) -> dict[str, Any]:
    """op_view (the ORT glue's view: outputs, allocation lines, compute call) plus the torch side."""
    view = op_view(spec)
    arg = {name: k for k, name in enumerate(spec.param_order)}
    inputs = []
    for i in spec.inputs:
        e = _cpp_elem(spec, i.type)
        rank = -1 if i.type.rank is None else i.type.rank
        kind, wrapper = ("variadic", "Variadic") if i.variadic else ("optional", "Optional") if i.optional \
            else ("required", "Input")
        inputs.append({"name": i.name, "fetch": f'const opkit::{wrapper}<{e}> {i.name} = '
                                                f'host.{kind}<{e}>(args[{arg[i.name]}], "{i.name}", {rank});'})
    typevars = []
    for t in spec.typevars:
        args = [arg[i.name] for i in spec.inputs if i.type.typevar == t.name]
        # required inputs first: they always say which dtype the call has
        args.sort(key=lambda k: (spec.input(spec.param_order[k]).optional, k))
        typevars.append({"name": t.name, "var": f"t_{t.name}", "args": args})
    dispatch = [{"test": " && ".join(f"t_{t} == c10::ScalarType::{ATEN_SCALAR[c[t]]}" for t in c),
                 "args": ", ".join(DTYPES[c[t]].cpp for t in c)} for c in spec.kernel_combos if c]
    if not spec.typevars:
        dispatch = [{"test": "true", "args": "void"}]
    got = ' + ", " + '.join(f'"{t.name}=" + opkit::torch_glue::dtype_name(t_{t.name})' for t in spec.typevars)
    allowed = "; ".join(f"{t.name} in {{{', '.join(t.dtypes)}}}" for t in spec.typevars)
    view.update({
        "torch_namespace": spec.torch_namespace, "torch_name": snake_case(spec.name),
        "torch_qualname": spec.torch_qualname, "num_args": len(spec.param_order),
        "inputs": inputs,
        "attrs": [{"name": a.name, "arg": arg[a.name], "check": _choices_check(a)} for a in spec.attrs],
        "typevars": typevars, "dispatch": dispatch, "got_expr": got or '""', "allowed": allowed,
        "constant_args": [arg[i.name] for i in spec.constant_inputs],
        "output_scalar_types": ", ".join(f"opkit::torch_glue::scalar_type<{_cpp_elem(spec, o.type)}>()"
                                         for o in spec.outputs),
    })
    return view


def library_info(specs: Sequence[OpSpec], torch_version: str) -> dict[str, Any]:
    return {"opkit_version": __version__, "torch_version": torch_version,
            "ops": [{"domain": s.domain, "name": s.name, "torch_op": s.torch_qualname, "signature": s.signature}
                    for s in specs]}


def _schemas(specs: Sequence[OpSpec]) -> list[dict[str, Any]]:
    """Per torch namespace, the schema definitions torch.library.custom_op makes in Python (opkit.torchop)."""
    from opkit.torchop.schema import torch_schema

    by_ns: dict[str, list[str]] = {}
    for s in specs:
        by_ns.setdefault(s.torch_namespace, []).append(snake_case(s.name) + torch_schema(s))
    return [{"name": ns, "defs": defs} for ns, defs in sorted(by_ns.items())]


@dataclass(frozen=True)
class TorchAlias:
    """An op that an opkit op adopts (``adopts=``) and that libtorch does not define (a third-party op, defined
    in Python or in an extension the runners do not load). The C++ runners' schemas library defines it and runs
    it with the adopted op's kernel, so a model traced or exported in Python, which calls it by its own name,
    runs there too."""

    namespace: str  # the original's namespace
    schema: str  # its schema without the namespace: "soft_clamp(Tensor x, float limit=3.) -> Tensor"
    name: str  # its name with the overload, as m.impl takes it: "soft_clamp", "scale.twice"
    original: str  # "fancylib::soft_clamp"
    target: str  # the adopted op: "com_example::soft_clamp"
    order: tuple[int, ...]  # for each of the adopted op's parameters, the original's argument it takes

    @property
    def schema_literal(self) -> str:
        return json.dumps(self.schema)  # a C++ string literal (string defaults are in double quotes)


def render_torch_library(specs: Sequence[OpSpec], torch_version: str,
                         aliases: Sequence[TorchAlias] = ()) -> dict[str, str]:
    """Every generated file of the PyTorch op library, its schemas library and its C++ runner, relative
    to the generated folder (under torch/)."""
    from opkit.native.runner import render_runner

    views = [torch_op_view(s) for s in specs]
    info = json.dumps(library_info(specs, torch_version), sort_keys=True)
    dtypes = [{"name": d.name, "cpp": d.cpp, "aten": ATEN_SCALAR[d.name]} for d in DTYPES.values()]
    files = {
        "torch/include/opkit/torch_glue.h": render("torch/glue.h.j2", dtypes=dtypes),
        "torch/schemas.cc": render("torch/schemas.cc.j2", namespaces=_schemas(specs), aliases=list(aliases)),
        "torch/runner/npy.h": render_runner("")["npy.h"],  # the ONNX Runtime runner's .npy reader and writer
        "torch/runner/main.cc": render("torch/runner.cc.j2", dtypes=dtypes, opkit_version=__version__,
                                       torch_version=torch_version),
        "torch/info.cc": render("torch/info.cc.j2", info_literal=f'"{INFO_MARKER}" R"opkit({info})opkit"',
                                marker_length=len(INFO_MARKER)),
        "torch/CMakeLists.txt": render("torch/CMakeLists.txt.j2", ops=views, target=LIBRARY_TARGET,
                                       schemas_target=SCHEMAS_TARGET, runner_target=RUNNER_TARGET,
                                       libraries=library_views(specs)),
    }
    for v in views:
        files[f"torch/{v['folder']}.torch.cc"] = render("torch/op.cc.j2", op=v)
    return files
