"""Renderers of the ExecuTorch kernel library: OpSpec -> the text of its generated files (pure).

One boxed ExecuTorch kernel per op, registered as ``<namespace>::<op>.out`` (the out variant that
opkit.torchop.out registers with torch, and that ``to_executorch()`` puts in the .pte). The kernel
reads the call's arguments from ExecuTorch's stack (the functional parameters, then one
preallocated tensor per output), picks the kernel of the dtype combination, and runs the user's
unchanged ``compute`` on an ExecuTorch Host (outputs resized in place; parallel_for on
ExecuTorch's thread pool). The files live in the generated folder under ``executorch/``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opkit.codegen.env import render
from opkit.codegen.render import (_alloc_lines, _cpp_elem, compute_params, cpp_literal, library_info,
                                  library_views, state_type)
from opkit.spec.dtypes import DTYPES
from opkit.spec.model import ATTR_PY, OpSpec, snake_case

TARGET = "opkit_executorch"
LIBRARY = f"lib{TARGET}.so"
SUBDIR = "executorch"

# opkit dtype -> ExecuTorch ScalarType enumerator (executorch::aten::ScalarType::<name>).
SCALAR_TYPES = {"float16": "Half", "bfloat16": "BFloat16", "float32": "Float", "float64": "Double",
                "int8": "Char", "uint8": "Byte", "int16": "Short", "int32": "Int", "int64": "Long",
                "bool": "Bool"}

# How each attribute kind arrives on ExecuTorch's stack (an EValue) and becomes the Attrs field.
_ATTR_READ = {
    "float": "static_cast<float>(v.toDouble())",
    "int": "v.toInt()",
    "bool": "v.toBool()",
    "str": "opkit::et::to_string(v)",
    "floats": "opkit::et::to_floats(v)",
    "ints": "opkit::et::to_ints(v)",
}
_ATTR_TAG = {"float": "isDouble", "int": "isInt", "bool": "isBool", "str": "isString",
             "floats": "isDoubleList", "ints": "isIntList"}


def kernel_name(spec: OpSpec) -> str:
    """The name the .pte calls and the library registers: ``<namespace>::<op>.out``."""
    return f"{spec.torch_namespace}::{snake_case(spec.name)}.out"


def unsupported(spec: OpSpec) -> list[str]:
    """What in this op's signature ExecuTorch cannot carry (empty: everything)."""
    why = []
    for a in spec.attrs:
        if a.kind == "strs":
            why.append(f"attribute '{a.name}' is a list[str]: ExecuTorch's values (EValue) have no list of strings")
    return why


def _choices_check(a) -> str:
    if a.choices is None:
        return ""
    lits = [cpp_literal(a.kind, c) for c in a.choices]
    test = " || ".join(f"attrs.{a.name} == {v}" for v in lits)
    listed = ", ".join(json.dumps(c) if a.kind == "str" else str(c) for c in a.choices)
    got = f'"\\"" + attrs.{a.name} + "\\""' if a.kind == "str" else f"std::to_string(attrs.{a.name})"
    msg = json.dumps(f"attribute {a.name!r}: expected one of {listed}, got ")
    return f"if (!({test})) throw opkit::Error(std::string({msg}) + {got});"


def _combo_test(spec: OpSpec, combo: dict[str, str], where: dict[str, str]) -> str:
    parts = [f"{where[t]} == executorch::aten::ScalarType::{SCALAR_TYPES[combo[t]]}" for t in where]
    return " && ".join(parts) or "true"


def op_view(spec: OpSpec) -> dict[str, Any]:
    """Everything the ExecuTorch glue template prints for one op."""
    pos = {n: k for k, n in enumerate(spec.param_order)}
    n_args = len(spec.param_order)
    inputs = []
    # where each type variable's dtype is read at run time: the first tensor (input, else output) of that type
    where: dict[str, str] = {}
    for i in spec.inputs:
        e = _cpp_elem(spec, i.type)
        rank = -1 if i.type.rank is None else i.type.rank
        k = pos[i.name]
        kind = "variadic" if i.variadic else "optional" if i.optional else "required"
        inputs.append({"name": i.name, "fetch": f'const auto {i.name} = opkit::et::{kind}<{e}>(arg({k}, "{i.name}"), '
                                                f'"{i.name}", {rank});'})
        if i.type.typevar and i.type.typevar not in where and not i.optional:
            where[i.type.typevar] = f'opkit::et::dtype_of(arg({k}, "{i.name}"))'
    outputs = []
    for n, o in enumerate(spec.outputs):
        k = n_args + n
        if o.type.typevar and o.type.typevar not in where:
            where[o.type.typevar] = f'arg({k}, "{o.name}").toTensor().scalar_type()'
        outputs.append({"name": o.name, "index": n, "stack": k, "cpp": _cpp_elem(spec, o.type),
                        "alloc": _alloc_lines(spec, o)})
    for t in spec.typevars:  # a type variable only on optional inputs: read the first present one
        if t.name not in where:
            i = next(i for i in spec.inputs if i.type.typevar == t.name)
            where[t.name] = f'opkit::et::dtype_of(arg({pos[i.name]}, "{i.name}"))'
    attrs = [{"name": a.name, "read": _ATTR_READ[a.kind],
              "tag": _ATTR_TAG[a.kind], "index": pos[a.name], "kind": ATTR_PY[a.kind],
              "check": _choices_check(a)} for a in spec.attrs]
    tvs = [t.name for t in spec.typevars]
    combos = [{"args": ", ".join(DTYPES[c[t]].cpp for t in tvs) or "void",
               "test": _combo_test(spec, c, {t: where[t] for t in tvs}),
               "comment": ", ".join(f"{t}={c[t]}" for t in tvs) or "no type variables"}
              for c in spec.kernel_combos]
    return {
        "name": spec.name, "qualname": spec.qualname, "folder": spec.folder, "signature": spec.signature,
        "spec_file": f"ops/{spec.folder}/spec.py", "kernel_include": f"ops/{spec.folder}/{spec.folder}.cc",
        "kernel_name": kernel_name(spec), "n_stack": n_args + len(spec.outputs),
        "inputs": inputs, "outputs": outputs, "attrs": attrs, "combos": combos,
        "tv_names": ", ".join(tvs),
        "glue_template_params": ", ".join(f"typename {t}" for t in tvs) or "typename Unused",
        "compute_template_args": f"<{', '.join(tvs)}>" if tvs else "",
        "compute_call_args": ", ".join(["ctx", "attrs"] + (["state"] if spec.has_prepare else []) +
                                       [i.name for i in spec.inputs] + [o.name for o in spec.outputs]),
        "has_prepare": spec.has_prepare, "state_type": state_type(spec) if spec.has_prepare else "",
        "prepare_args": ", ".join(["attrs"] + [i.name for i in spec.constant_inputs]),
        "constant_names": ", ".join(i.name for i in spec.constant_inputs),
        "constant_args": [{"name": i.name, "stack": pos[i.name]} for i in spec.constant_inputs],
        "compute_params": compute_params(spec),
        "dtype_names": ", ".join(f"{t}={{" + ", ".join(tv.dtypes) + "}" for tv in spec.typevars
                                 for t in [tv.name]),
    }


def render_executorch(specs: Sequence[OpSpec]) -> dict[str, str]:
    """The ExecuTorch kernel library's generated files, relative to the generated folder."""
    views = [op_view(s) for s in specs]
    info = json.dumps(library_info(specs) | {"runtime": "executorch",
                                             "kernels": [v["kernel_name"] for v in views]}, sort_keys=True)
    files = {
        f"{SUBDIR}/include/opkit/executorch_glue.h": render("executorch/glue.h.j2",
                                                            scalar_types=[(DTYPES[n].cpp, t, n) for n, t in
                                                                          SCALAR_TYPES.items()]),
        f"{SUBDIR}/src/register.cc": render("executorch/register.cc.j2", ops=views, library=LIBRARY,
                                            info_literal=f'"OPKIT_INFO" R"opkit({info})opkit"'),
        f"{SUBDIR}/exports.map": render("executorch/exports.map.j2"),
        f"{SUBDIR}/opkit_executorch.cmake": render("executorch/ops.cmake.j2", ops=views, target=TARGET,
                                                              libraries=library_views(specs)),
    }
    for v in views:
        files[f"{SUBDIR}/src/{v['folder']}.et.cc"] = render("executorch/op_glue.cc.j2", op=v)
    return files
