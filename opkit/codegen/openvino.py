"""Renderers of the OpenVINO extension (templates/openvino/): per op an ov::op::Op subclass and its
ONNX-frontend converter, one registration file, the CMake fragment. Pure: they return text.

The per-op view reuses the ONNX Runtime glue's generated lines (input fetches, output allocation,
attribute checks, the compute call: opkit/codegen/render.py op_view): only what is OpenVINO's own
(element types, partial-shape inference, attribute reading in the frontend) is built here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opkit.codegen.env import render
from opkit.spec.dtypes import DTYPES
from opkit.spec.model import OpSpec, Output

TARGET = "opkit_openvino"
# opkit dtype -> ov::element (the OpenVINO side of the dtype table; bit-compatible element types).
OV_ELEMENT = {"float16": "f16", "bfloat16": "bf16", "float32": "f32", "float64": "f64", "int8": "i8",
              "uint8": "u8", "int16": "i16", "int32": "i32", "int64": "i64", "bool": "boolean"}


def unsupported(spec: OpSpec) -> list[str]:
    """What of this op's signature OpenVINO cannot carry (empty when it can all)."""
    why = []
    for t in spec.typevars:
        bad = [d for d in t.dtypes if d not in OV_ELEMENT]
        if bad:
            why.append(f"type variable {t.name} allows {', '.join(bad)}: no OpenVINO element type")
    for kind, params in (("input", spec.inputs), ("output", spec.outputs)):
        for p in params:
            if p.type.dtype and p.type.dtype not in OV_ELEMENT:
                why.append(f"{kind} {p.name!r} is {p.type.dtype}: no OpenVINO element type")
    return why


def _elem(dtype: str) -> str:
    return f"ov::element::{OV_ELEMENT[dtype]}"


def _out_elem(spec: OpSpec, out: Output, combo0: dict[str, str]) -> str:
    if not out.type.typevar:
        return _elem(out.type.dtype)
    k = next(n for n, i in enumerate(spec.inputs) if i.type.typevar == out.type.typevar)
    return f"input_type_or({k}, {_elem(combo0[out.type.typevar])})"


def _b(v: Any) -> str:
    return "false" if v is None else "true"


def _infer_lines(spec: OpSpec, out: Output) -> list[str]:
    """Partial-shape inference from the shape rule; `break` leaves the fallback (see the template)."""
    if out.shape is None:
        return ["break;"]
    index = {i.name: n for n, i in enumerate(spec.inputs)}
    lines = []
    for name in out.shape.inputs:
        lines.append(f"if (in[{index[name]}].rank().is_dynamic()) break;")
        lines.append(f"const std::vector<ov::Dimension> s_{name}(in[{index[name]}].begin(), in[{index[name]}].end());")
    for d in out.shape.dims:
        if d.kind == "dims":
            lines.append(f"opkit::glue::append_dims(shape, s_{d.input}, {_b(d.start)}, {d.start or 0}, "
                         f"{_b(d.stop)}, {d.stop or 0});")
        elif d.kind == "dim":
            lines.append(f"if (!opkit::glue::has_dim(s_{d.input}, {d.index})) break;")
            lines.append(f"shape.push_back(opkit::glue::dim_at(s_{d.input}, {d.index}));")
        elif d.kind == "attr":
            lines.append(f"if (attrs_.{d.attr} < 0) break;")
            lines.append(f"shape.push_back(ov::Dimension(attrs_.{d.attr}));")
        elif d.kind == "dynamic":
            lines.append("shape.push_back(ov::Dimension::dynamic());")
        else:
            lines.append(f"shape.push_back(ov::Dimension(int64_t{{{d.value}}}));")
    return lines


def _fallback(out: Output) -> str:
    """The output's shape when the rule cannot say (data-dependent sizes, unknown ranks): dynamic dims."""
    rank = out.type.rank
    if rank is None and out.shape is not None and all(d.kind != "dims" for d in out.shape.dims):
        rank = len(out.shape.dims)
    return "ov::PartialShape::dynamic()" if rank is None else f"ov::PartialShape::dynamic({rank})"



def _attr_read(a: Any) -> str:
    """The converter line that reads one attribute of the ONNX node (the spec's default when absent)."""
    name, req = a.name, "true" if a.required else "false"
    if a.kind == "strs":
        return f'attrs.{name} = opkit::ov_glue::read_strs(node, "{name}", attrs.{name}, {req}, kOp);'
    if a.kind == "bool":
        return (f'attrs.{name} = opkit::ov_glue::attr<int64_t>(node, "{name}", attrs.{name} ? 1 : 0, {req}, kOp) '
                f'!= 0;')
    cpp = {"float": "float", "int": "int64_t", "str": "std::string", "floats": "std::vector<float>",
           "ints": "std::vector<int64_t>"}[a.kind]
    return f'attrs.{name} = opkit::ov_glue::attr<{cpp}>(node, "{name}", attrs.{name}, {req}, kOp);'



def ov_view(spec: OpSpec) -> dict[str, Any]:
    combos = spec.kernel_combos or [{}]

    def in_type(i: Any, combo: dict[str, str]) -> str:
        return _elem(combo[i.type.typevar] if i.type.typevar else i.type.dtype)

    return {
        "inputs": [{"name": i.name, "variadic": i.variadic, "optional": i.optional} for i in spec.inputs],
        "combo_types": [", ".join(f"ov::element::Type_t::{OV_ELEMENT[c[i.type.typevar] if i.type.typevar else i.type.dtype]}"
                                  for i in spec.inputs) or "ov::element::Type_t::dynamic" for c in combos],
        "combo_out_types": [", ".join(f"ov::element::Type_t::{OV_ELEMENT[c[o.type.typevar] if o.type.typevar else o.type.dtype]}"
                                      for o in spec.outputs) for c in combos],
        "combos_text": "; ".join(", ".join(f"{k}={v}" for k, v in c.items()) for c in combos) or "fixed dtypes",
        "outputs": [{"index": n, "elem": _out_elem(spec, o, combos[0]), "infer": _infer_lines(spec, o),
                     "fallback": _fallback(o)} for n, o in enumerate(spec.outputs)],
        "attr_reads": [_attr_read(a) for a in spec.attrs],
        "in_types": [[in_type(i, c) for i in spec.inputs] for c in combos],
    }


def render_openvino(specs: Sequence[OpSpec], views: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, str]:
    """Every generated file of the OpenVINO extension, relative to the generated folder. `views` are
    the ONNX Runtime glue's op views (opkit/codegen/render.py op_view), one per spec."""
    from opkit.codegen.render import library_views

    ov_specs = [(s, v) for s, v in zip(specs, views) if not unsupported(s)]
    rows = [{"cpp": d.cpp, "ov": OV_ELEMENT[d.name]} for d in DTYPES.values() if d.name in OV_ELEMENT]
    text = json.dumps(dict(info, runtime="openvino", ops=[o for o in info["ops"]
                                                           if any(s.name == o["name"] and s.domain == o["domain"]
                                                                  for s, _ in ov_specs)]), sort_keys=True)
    files = {
        "include/opkit/ov_glue.h": render("openvino/glue.h.j2", dtypes=rows),
        "openvino/extension.cc": render("openvino/extension.cc.j2", ops=[v for _, v in ov_specs],
                                        info_literal=f'"OPKIT_INFO" R"opkit({text})opkit"'),
        "openvino/opkit_openvino.cmake": render("openvino/ops.cmake.j2", ops=[v for _, v in ov_specs], target=TARGET,
                                                  libraries=library_views([s for s, _ in ov_specs])),
    }
    for s, v in ov_specs:
        files[f"openvino/{v['folder']}.ov.cc"] = render("openvino/op.cc.j2", op=v, ov=ov_view(s))
    return files
