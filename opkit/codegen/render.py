"""Renderers: OpSpec -> text of every generated file. Pure: they return strings and touch no file.

The view models built here hold every C++ spelling (types, literals, call arguments), so the
templates only print.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from opkit import __version__
from opkit.codegen.env import render
from opkit.spec.dtypes import DTYPES
from opkit.spec.model import ATTR_CPP, ATTR_PY, Attr, Dim, OpSpec, Output

LIBRARY_TARGET = "opkit_ops"
ORT_API_VERSION = 21  # the headers opkit builds against: the oldest runtime pyproject allows (1.21)


def _float_lit(v: float) -> str:
    if math.isnan(v):
        return "std::numeric_limits<float>::quiet_NaN()"
    if math.isinf(v):
        return ("-" if v < 0 else "") + "std::numeric_limits<float>::infinity()"
    return f"{v!r}f"


def cpp_literal(kind: str, value: Any) -> str:
    if kind == "float":
        return _float_lit(value)
    if kind == "int":
        return f"int64_t{{{value}}}" if value >= 0 else f"int64_t{{{value}LL}}"
    if kind == "bool":
        return "true" if value else "false"
    if kind == "str":
        return json.dumps(value)
    if kind == "floats":
        return "{" + ", ".join(_float_lit(v) for v in value) + "}"
    if kind == "ints":
        return "{" + ", ".join(f"int64_t{{{v}}}" for v in value) + "}"
    return "{" + ", ".join(json.dumps(v) for v in value) + "}"


def _cpp_elem(spec: OpSpec, t) -> str:
    return t.typevar if t.typevar else DTYPES[t.dtype].cpp


def _onnx_type_expr(spec: OpSpec, t) -> str:
    return f"opkit::glue::onnx_type<{t.typevar}>()" if t.typevar else DTYPES[t.dtype].ort_enum


def _infer_type_expr(spec: OpSpec, t) -> str:
    """An output's dtype in ORT shape inference. All kernels of an op (one per dtype combination)
    share the shape-inference function ORT calls, so a type variable is read from the node's input."""
    if not t.typevar:
        return DTYPES[t.dtype].ort_enum
    k = next(n for n, i in enumerate(spec.inputs) if i.type.typevar == t.typevar)
    return f"opkit::glue::input_type_or(sctx, {k}, opkit::glue::onnx_type<{t.typevar}>())"


def _input_param(spec: OpSpec, i, mu: str = "") -> str:
    e = _cpp_elem(spec, i.type)
    wrapper = "Variadic" if i.variadic else "Optional" if i.optional else "Input"
    return f"{mu}const opkit::{wrapper}<{e}>& {i.name}"


def state_type(spec: OpSpec) -> str:
    """The prepared state's type as the op struct names it: State<T> (one per dtype combination) or State."""
    tvs = [t.name for t in spec.typevars]
    return f"State<{', '.join(tvs)}>" if tvs else "State"


def compute_params(spec: OpSpec, *, maybe_unused: bool = False) -> str:
    mu = "[[maybe_unused]] " if maybe_unused else ""
    parts = [f"{mu}opkit::Context& ctx", f"{mu}const Attrs& attrs"]
    if spec.has_prepare:
        parts.append(f"{mu}const {state_type(spec)}& state")
    parts.extend(_input_param(spec, i, mu) for i in spec.inputs)
    for o in spec.outputs:
        parts.append(f"{mu}opkit::Output<{_cpp_elem(spec, o.type)}>& {o.name}")
    return ", ".join(parts)


def prepare_params(spec: OpSpec, *, maybe_unused: bool = False) -> str:
    """prepare's parameters: the attributes and the inputs declared constant."""
    mu = "[[maybe_unused]] " if maybe_unused else ""
    return ", ".join([f"{mu}const Attrs& attrs"] + [_input_param(spec, i, mu) for i in spec.constant_inputs])


def template_params(spec: OpSpec) -> str:
    return ", ".join(f"typename {t.name}" for t in spec.typevars)


def kernel_signature(spec: OpSpec) -> str:
    """The definition a kernel file must provide, as it would be written there."""
    tp = template_params(spec)
    head = f"template <{tp}>\n" if tp else ""
    compute = f"{head}void {spec.name}::compute({compute_params(spec)})"
    if not spec.has_prepare:
        return compute
    st = state_type(spec)
    return (f"{head}struct {spec.name}::{'State' if not tp else st.split('<')[0]} {{ ... }};\n"
            f"{head}{spec.name}::{st} {spec.name}::prepare({prepare_params(spec)})\n{compute}")


def _alloc_lines(spec: OpSpec, out: Output) -> list[str]:
    if out.shape is None or not out.shape.static:
        return []
    lines = []
    for d in out.shape.dims:
        lines.extend(_alloc_dim(d))
    return lines


def _alloc_dim(d: Dim) -> list[str]:
    if d.kind == "dims":
        return [f"opkit::glue::append_dims(shape, {d.input}.shape(), {_b(d.start)}, {d.start or 0}, "
                f"{_b(d.stop)}, {d.stop or 0});"]
    if d.kind == "dim":
        return [f'shape.push_back(opkit::glue::dim_of({d.input}.shape(), {d.index}, "{d.input}"));']
    if d.kind == "attr":
        return [f'if (attrs.{d.attr} < 0) throw opkit::Error("attribute \'{d.attr}\' is negative; '
                f'it gives an output dimension");',
                f"shape.push_back(attrs.{d.attr});"]
    return [f"shape.push_back(int64_t{{{d.value}}});"]


def _b(v: Any) -> str:
    return "false" if v is None else "true"


def _infer_lines(spec: OpSpec, out: Output) -> list[str]:
    """Shape inference on ORT's symbolic shapes; `break` leaves the output's shape unset."""
    if out.shape is None or not out.shape.static:
        return []
    index = {i.name: n for n, i in enumerate(spec.inputs)}
    lines = []
    for name in out.shape.inputs:
        lines.append(f"const auto& s_{name} = ctx.GetInputShape({index[name]});")
        # An input of unknown rank also shows as rank 0: leave the output shape to the model.
        lines.append(f"if (s_{name}.empty()) break;")
    for d in out.shape.dims:
        if d.kind == "dims":
            lines.append(f"opkit::glue::append_dims(shape, s_{d.input}, {_b(d.start)}, {d.start or 0}, "
                         f"{_b(d.stop)}, {d.stop or 0});")
        elif d.kind == "dim":
            lines.append(f"if (!opkit::glue::has_dim(s_{d.input}, {d.index})) break;")
            lines.append(f"shape.push_back(opkit::glue::dim_at(s_{d.input}, {d.index}));")
        elif d.kind == "attr":
            a = spec.attr(d.attr)
            default = a.default if not a.required else -1
            lines.append(f'const int64_t a_{d.attr} = opkit::glue::attr_int_or(ctx, "{d.attr}", int64_t{{{default}}});')
            lines.append(f"if (a_{d.attr} < 0) break;")
            lines.append(f"shape.push_back(Sym(a_{d.attr}));")
        else:
            lines.append(f"shape.push_back(Sym(int64_t{{{d.value}}}));")
    return lines


def _choices_check(a: Attr) -> str:
    """C++ that rejects a value outside a Literal[...] attribute's choices (at session creation)."""
    if a.choices is None or a.kind not in ("str", "int"):
        return ""
    lits = [cpp_literal(a.kind, c) for c in a.choices]
    test = " || ".join(f"attrs.{a.name} == {v}" for v in lits)
    listed = ", ".join(json.dumps(c) if a.kind == "str" else str(c) for c in a.choices)
    got = (f'"\\"" + attrs.{a.name} + "\\""' if a.kind == "str" else f"std::to_string(attrs.{a.name})")
    return (f"if (!({test})) reader.fail(std::string({json.dumps(f'attribute {a.name!r}: expected one of {listed}, got ')})"
            f" + {got});")


def op_view(spec: OpSpec) -> dict[str, Any]:
    folder = spec.folder
    tvs = [t.name for t in spec.typevars]
    combos = spec.kernel_combos
    inputs = []
    for n, i in enumerate(spec.inputs):
        e = _cpp_elem(spec, i.type)
        rank = -1 if i.type.rank is None else i.type.rank
        if i.variadic:
            fetch = f'const opkit::Variadic<{e}> {i.name} = io.variadic<{e}>({n}, "{i.name}", {rank});'
        elif i.optional:
            fetch = f'const opkit::Optional<{e}> {i.name} = io.optional<{e}>({n}, "{i.name}", {rank});'
        else:
            fetch = f'const opkit::Input<{e}> {i.name} = io.required<{e}>({n}, "{i.name}", {rank});'
        const_fetch = ""
        if i.constant:
            kind = "optional" if i.optional else "required"
            wrapper = "Optional" if i.optional else "Input"
            const_fetch = f'const opkit::{wrapper}<{e}> {i.name} = cio.{kind}<{e}>({n}, "{i.name}", {rank});'
        inputs.append({"name": i.name, "fetch": fetch, "const_fetch": const_fetch})
    outputs = [{
        "name": o.name, "index": n, "cpp": _cpp_elem(spec, o.type), "onnx_type": _infer_type_expr(spec, o.type),
        "alloc": _alloc_lines(spec, o), "infer": _infer_lines(spec, o),
    } for n, o in enumerate(spec.outputs)]
    attrs = [{
        "name": a.name, "cpp_type": ATTR_CPP[a.kind], "required": a.required,
        "cpp_default": "{}" if a.required else " = " + cpp_literal(a.kind, a.default),
        "comment": ("required " if a.required else "") + ATTR_PY[a.kind] +
                   (" in {" + ", ".join(repr(c) for c in a.choices) + "}" if a.choices else "") +
                   ("" if a.required else f", default {list(a.default) if isinstance(a.default, tuple) else a.default!r}"),
        "check": _choices_check(a),
    } for a in spec.attrs]
    char = {True: "INPUT_OUTPUT_OPTIONAL"}
    return {
        "name": spec.name, "domain": spec.domain, "qualname": spec.qualname, "folder": folder,
        "version": spec.version, "signature": spec.signature,
        "spec_file": f"ops/{folder}/spec.py", "kernel_include": f"ops/{folder}/{folder}.cc",
        "attrs": attrs, "inputs": inputs, "outputs": outputs,
        "template_params": template_params(spec),
        "compute_params": compute_params(spec),
        "glue_template_params": ", ".join(f"typename {t}" for t in tvs) or "typename Unused",
        "glue_template_args": ", ".join(tvs) or "Unused",
        "compute_template_args": f"<{', '.join(tvs)}>" if tvs else "",
        "compute_call_args": ", ".join(["ctx", "attrs"] + (["state"] if spec.has_prepare else []) +
                                       [i.name for i in spec.inputs] +
                                       [o.name for o in spec.outputs]),
        "combos": [", ".join(DTYPES[c[t]].cpp for t in tvs) for c in combos] if tvs else ["void"],
        "combo_comments": [", ".join(f"{t}={c[t]}" for t in tvs) or "no type variables" for c in combos],
        "input_onnx_types": ", ".join(_onnx_type_expr(spec, i.type) for i in spec.inputs),
        "input_characteristics": ", ".join(
            "INPUT_OUTPUT_VARIADIC" if i.variadic else char.get(i.optional, "INPUT_OUTPUT_REQUIRED")
            for i in spec.inputs),
        "output_onnx_types": ", ".join(_onnx_type_expr(spec, o.type) for o in spec.outputs),
        "has_shape_inference": any(o["infer"] for o in outputs),
        "has_prepare": spec.has_prepare,
        "state_type": state_type(spec),
        "prepare_params": prepare_params(spec),
        "prepare_args": ", ".join(["attrs"] + [i.name for i in spec.constant_inputs]),
        "constant_names": ", ".join(i.name for i in spec.constant_inputs),
        "constant_indices": [n for n, i in enumerate(spec.inputs) if i.constant],
    }


def library_var(name: str) -> str:
    """The CMake variable stem of a library: OPKIT_LIB_<VAR>_INCLUDE_DIR, _DIR, _LIBRARY."""
    return name.upper().replace("-", "_")


def library_views(specs: Sequence[OpSpec]) -> list[dict[str, str]]:
    from opkit.spec.libraries import LIBRARIES

    users: dict[str, list[str]] = {}
    for s in specs:
        for n in s.libraries:
            users.setdefault(n, []).append(s.name)
    return [{"name": n, "var": library_var(n), "pip": LIBRARIES[n].pip, "define": LIBRARIES[n].define,
             "users": ", ".join(u)} for n, u in users.items()]


def library_info(specs: Sequence[OpSpec]) -> dict[str, Any]:
    return {
        "opkit_version": __version__,
        "ort_api_version": ORT_API_VERSION,
        "ops": [{"domain": s.domain, "name": s.name, "version": s.version, "signature": s.signature,
                 "kernels": [", ".join(f"{k}={v}" for k, v in c.items()) for c in s.kernel_combos]}
                for s in specs],
    }


def render_library(specs: Sequence[OpSpec]) -> dict[str, str]:
    """Every generated file of the library, relative to the generated folder."""
    views = [op_view(s) for s in specs]
    info = json.dumps(library_info(specs), sort_keys=True)
    files = {
        "include/opkit/kernel.h": render("cpp/kernel.h.j2"),
        "include/opkit/math.h": render("cpp/math.h.j2"),
        "include/opkit/shapes.h": render("cpp/shapes.h.j2"),
        "include/opkit/glue.h": render("cpp/glue.h.j2", dtypes=list(DTYPES.values())),
        "src/register.cc": render("cpp/register.cc.j2", ops=views, library_name=f"lib{LIBRARY_TARGET}.so",
                                  info_literal=f'"OPKIT_INFO" R"opkit({info})opkit"'),
        "exports.map": render("cpp/exports.map.j2"),
        "opkit_ops.cmake": render("cpp/ops.cmake.j2", ops=views, target=LIBRARY_TARGET,
                                  libraries=library_views(specs)),
    }
    if any("openblas" in s.libraries for s in specs):
        files["include/opkit/blas.h"] = render("cpp/blas.h.j2")
    for v in views:
        files[f"include/{v['folder']}.opkit.h"] = render("cpp/op.h.j2", op=v)
        files[f"src/{v['folder']}.glue.cc"] = render("cpp/op_glue.cc.j2", op=v)
    from opkit.codegen.openvino import render_openvino  # the OpenVINO extension: same kernels, its own glue

    files.update(render_openvino(specs, views, library_info(specs)))
    return files


def render_kernel_file(spec: OpSpec, body: str | None = None) -> str:
    """A user kernel file: `body` is a working implementation, or else a NotImplemented skeleton."""
    if body is None:
        tp = template_params(spec)
        head = f"template <{tp}>\n" if tp else ""
        body = ""
        if spec.has_prepare:
            st = state_type(spec)
            body = (f"// What prepare computes once per node from the constant inputs "
                    f"({', '.join(i.name for i in spec.constant_inputs)}); see docs/kernel-state.md.\n"
                    f"{head}struct {spec.name}::{st.split('<')[0]} {{\n}};\n\n"
                    f"{head}{spec.name}::{st} {spec.name}::prepare({prepare_params(spec, maybe_unused=True)}) {{\n"
                    f"  return {{}};\n}}\n\n")
        body += (f"{head}void {spec.name}::compute({compute_params(spec, maybe_unused=True)}) {{\n"
                 f"  // Write the maths here; see opkit's docs, \"Kernel API\" (docs/kernel-api.md).\n"
                 f"  throw opkit::NotImplemented(name);\n}}\n")
    return render("cpp/kernel.cc.j2", name=spec.name, folder=spec.folder, body=body)


def render_spec_file(name: str, folder: str, domain: str) -> str:
    return render("python/spec.py.j2", name=name, folder=folder, domain=domain)


def render_adopted_spec_file(view: dict[str, Any]) -> str:
    """The spec of an op that adopts a torch op (`opkit adopt`); `view` holds every spelling (opkit.adopt.scaffold)."""
    return render("python/adopted_spec.py.j2", **view)


def render_workspace_files() -> dict[str, str]:
    return {"CMakeLists.txt": render("workspace/CMakeLists.txt.j2"),
            ".gitignore": render("workspace/gitignore.j2")}
