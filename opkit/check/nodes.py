"""Check the custom-domain nodes of an ONNX model against OpSpecs.

Each :class:`Finding` names the node, says what is wrong and how to fix it. The checks: unknown
domain or op (with the nearest known one), the domain's opset_import (missing or another
version), attributes (missing, wrong type, unknown), input and output counts (optional and
variadic aware, empty names only where an input is optional), and input dtypes (from the graph's
declared types and ONNX shape inference, type variables bound consistently across inputs).
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any

from opkit.spec.dtypes import BY_ONNX
from opkit.spec.model import ATTR_ONNX, ATTR_PY, OpSpec

# Domains whose ops ONNX or ONNX Runtime define themselves: not custom.
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training",
                    "com.microsoft", "com.microsoft.nchwc", "com.microsoft.experimental", "com.ms.internal.nhwc")


@dataclass(frozen=True)
class Finding:
    node: str  # the node's name (or "#k" when unnamed)
    op: str  # domain::op_type as written in the model
    kind: str  # unknown-domain, unknown-op, no-domain, opset-missing, opset-version, attr-missing, ...
    message: str
    fix: str

    def render(self) -> str:
        return f"node {self.node} ({self.op}): {self.message}\n    fix: {self.fix}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class NodeInfo:
    node: str
    op: str
    spec: str | None  # the matching spec's qualname, or None


@dataclass
class CheckResult:
    nodes: list[NodeInfo] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict:
        return {"ok": self.ok, "nodes": [asdict(n) for n in self.nodes],
                "findings": [f.to_dict() for f in self.findings]}


def _node_name(node: Any, k: int) -> str:
    return repr(node.name) if node.name else f"#{k} (unnamed)"


def _qual(domain: str, op_type: str) -> str:
    return f"{domain or 'ai.onnx'}::{op_type}"


def _nearest(word: str, choices: list[str]) -> str | None:
    lower = {c.lower(): c for c in choices}
    hit = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
    return lower[hit[0]] if hit else None


def _dtype_name(elem: int) -> str:
    if elem in BY_ONNX:
        return BY_ONNX[elem].name
    import onnx

    try:
        return onnx.helper.tensor_dtype_to_string(elem).removeprefix("TensorProto.").lower()
    except Exception:
        return f"onnx type {elem}"


def _known_types(model: Any) -> dict[str, int]:
    """Element type of every value name that the graph declares or ONNX shape inference finds."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:
        inferred = model
    types: dict[str, int] = {}
    for g in graphs(inferred.graph):
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
                types[vi.name] = vi.type.tensor_type.elem_type
        for init in g.initializer:
            types[init.name] = init.data_type
        for node in g.node:  # Constant nodes: shape inference may skip them in odd models
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                for a in node.attribute:
                    if a.name == "value" and a.HasField("t"):
                        types.setdefault(node.output[0], a.t.data_type)
    return types


def graphs(graph: Any) -> list:
    """A graph and every subgraph of its nodes (the branches of If, the bodies of Loop and Scan), depth first."""
    import onnx

    found = [graph]
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                found += graphs(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sub in a.graphs:
                    found += graphs(sub)
    return found


def _attr_type_name(t: int) -> str:
    import onnx

    return onnx.AttributeProto.AttributeType.Name(t)


def check_model(model: Any, specs: list[OpSpec]) -> CheckResult:
    """Check every custom-domain node of `model` (an onnx.ModelProto) against `specs`."""
    import onnx

    by_key = {(s.domain, s.name): s for s in specs}
    domains = sorted({s.domain for s in specs})
    by_name: dict[str, list[OpSpec]] = {}
    for s in specs:
        by_name.setdefault(s.name, []).append(s)
    local_functions = {(f.domain, f.name) for f in model.functions}
    imports = {o.domain: o.version for o in model.opset_import}
    types = _known_types(model)
    result = CheckResult()
    used_domains: dict[str, list[str]] = {}

    for k, node in enumerate(model.graph.node):
        name = _node_name(node, k)
        key = (node.domain, node.op_type)
        q = _qual(node.domain, node.op_type)
        if key in local_functions:
            continue
        if node.domain in STANDARD_DOMAINS:
            # An op of ours written without its domain: ONNX would look for a standard op.
            if node.domain in ("", "ai.onnx") and node.op_type in by_name and not onnx.defs.has(node.op_type):
                s = by_name[node.op_type][0]
                result.nodes.append(NodeInfo(name, q, None))
                result.findings.append(Finding(name, q, "no-domain",
                                               f"{node.op_type} is not a standard ONNX op; opkit defines it in "
                                               f"domain {s.domain!r}",
                                               f"set the node's domain to {s.domain!r} and add "
                                               f"opset_import(domain={s.domain!r}, version={s.version})"))
            continue
        spec = by_key.get(key)
        result.nodes.append(NodeInfo(name, q, spec.qualname if spec else None))
        if spec is None:
            result.findings.append(_unknown(name, node, q, by_key, by_name, domains))
            continue
        used_domains.setdefault(spec.domain, []).append(name)
        result.findings.extend(_check_attrs(name, q, node, spec))
        result.findings.extend(_check_counts(name, q, node, spec))
        result.findings.extend(_check_dtypes(name, q, node, spec, types))

    for domain, nodes in used_domains.items():
        version = by_key_version(specs, domain)
        who = nodes[0] if len(nodes) == 1 else f"{nodes[0]} (and {len(nodes) - 1} more)"
        if domain not in imports:
            result.findings.append(Finding(who, f"{domain}::*", "opset-missing",
                                           f"the model does not import domain {domain!r} (no opset_import entry)",
                                           f"add opset_import(domain={domain!r}, version={version}) to the model, "
                                           f"e.g. model.opset_import.append(onnx.helper.make_opsetid({domain!r}, "
                                           f"{version}))"))
        elif imports[domain] != version:
            result.findings.append(Finding(who, f"{domain}::*", "opset-version",
                                           f"the model imports domain {domain!r} at version {imports[domain]}, "
                                           f"the specs define version {version}",
                                           f"set the opset_import version of {domain!r} to {version} (or change "
                                           f"`version=` in the specs of that domain)"))
    return result


def by_key_version(specs: list[OpSpec], domain: str) -> int:
    return next(s.version for s in specs if s.domain == domain)


def _unknown(name: str, node: Any, q: str, by_key: dict, by_name: dict, domains: list[str]) -> Finding:
    if node.domain in domains:
        ops = sorted(s.name for (d, _), s in by_key.items() if d == node.domain)
        near = _nearest(node.op_type, ops)
        if node.op_type in by_name:
            other = by_name[node.op_type][0]
            return Finding(name, q, "unknown-op", f"domain {node.domain!r} has no op {node.op_type}; "
                           f"{node.op_type} is defined in domain {other.domain!r}",
                           f"set the node's domain to {other.domain!r}")
        return Finding(name, q, "unknown-op",
                       f"domain {node.domain!r} has no op {node.op_type!r} (its ops: {', '.join(ops)})",
                       f"rename the node's op_type to {near!r}" if near else
                       f"define it with `opkit new {node.op_type} --domain {node.domain}`, or fix the op_type")
    homes = [s for s in by_name.get(node.op_type, [])]
    if len(homes) == 1:
        s = homes[0]
        return Finding(name, q, "unknown-domain",
                       f"unknown domain {node.domain!r}; op {node.op_type} is defined in domain {s.domain!r}",
                       f"set the node's domain to {s.domain!r} and import it: "
                       f"opset_import(domain={s.domain!r}, version={s.version})")
    near = _nearest(node.domain, domains)
    known = ", ".join(domains) or "none (the workspace defines no ops)"
    if near:
        fix = f"did you mean domain {near!r}? set the node's domain (and its opset_import) to {near!r}"
    else:
        fix = (f"define the op with `opkit new {node.op_type} --domain {node.domain}`, or use one of the "
               f"workspace's domains")
    return Finding(name, q, "unknown-domain",
                   f"no op {node.op_type!r} in domain {node.domain!r}: the workspace knows domains {known}", fix)


def _check_attrs(name: str, q: str, node: Any, spec: OpSpec) -> list[Finding]:
    import onnx

    out = []
    have = {a.name: a for a in node.attribute}
    for a in spec.attrs:
        want = getattr(onnx.AttributeProto, ATTR_ONNX[a.kind])
        if a.name not in have:
            if a.required:
                out.append(Finding(name, q, "attr-missing", f"required attribute {a.name!r} "
                                   f"({ATTR_PY[a.kind]}, ONNX {ATTR_ONNX[a.kind]}) is missing",
                                   f"add attribute {a.name!r} to the node (spec: {spec.signature})"))
            continue
        got = have[a.name].type
        if got != want:
            extra = " (opkit carries list[str] as a 1-D string tensor attribute)" if a.kind == "strs" else ""
            out.append(Finding(name, q, "attr-type", f"attribute {a.name!r} is {_attr_type_name(got)}, the spec "
                               f"declares {ATTR_PY[a.kind]} = ONNX {ATTR_ONNX[a.kind]}{extra}",
                               f"write {a.name!r} as an ONNX {ATTR_ONNX[a.kind]} attribute"
                               + (" (an int 0/1 for a bool)" if a.kind == "bool" else "")
                               + (" (e.g. 1.0, not 1)" if a.kind == "float" else "")))
    names = [a.name for a in spec.attrs]
    for a in node.attribute:
        if a.name not in names:
            near = _nearest(a.name, names)
            out.append(Finding(name, q, "attr-unknown", f"attribute {a.name!r} is not declared by {spec.qualname} "
                               f"(its attributes: {', '.join(names) or 'none'})",
                               f"rename it to {near!r}" if near else "remove it from the node"))
    return out


def _check_counts(name: str, q: str, node: Any, spec: OpSpec) -> list[Finding]:
    out = []
    n_in = len(node.input)
    variadic = spec.inputs and spec.inputs[-1].variadic
    if variadic:
        lo, hi = len(spec.inputs), None
    else:
        required = [k for k, i in enumerate(spec.inputs) if not i.optional]
        lo, hi = (required[-1] + 1 if required else 0), len(spec.inputs)
    if n_in < lo or (hi is not None and n_in > hi):
        want = f"{lo}" if lo == hi else (f"{lo} to {hi}" if hi is not None else f"at least {lo}")
        params = ", ".join(i.text for i in spec.inputs)
        out.append(Finding(name, q, "input-count", f"the node has {n_in} input(s), {spec.qualname} takes {want} "
                           f"({params})",
                           "give the node its inputs in the spec's order; an absent optional input in the middle "
                           "is an empty name ''" + ("; a variadic input takes one or more tensors" if variadic
                                                    else "")))
    for k, iname in enumerate(node.input):
        formal = spec.inputs[min(k, len(spec.inputs) - 1)] if spec.inputs else None
        if formal is None or k >= len(spec.inputs) and not formal.variadic:
            break
        if not iname and not formal.optional:
            out.append(Finding(name, q, "input-empty", f"input {k} ({formal.name!r}) is empty, but it is not "
                               "optional", f"connect a tensor to input {k} ({formal.text})"))
    if len(node.output) != len(spec.outputs):
        outs = ", ".join(o.name for o in spec.outputs)
        out.append(Finding(name, q, "output-count", f"the node has {len(node.output)} output(s), {spec.qualname} "
                           f"gives {len(spec.outputs)} ({outs})",
                           f"give the node exactly {len(spec.outputs)} output name(s)"))
    return out


def _check_dtypes(name: str, q: str, node: Any, spec: OpSpec, types: dict[str, int]) -> list[Finding]:
    out = []
    bound: dict[str, tuple[str, str]] = {}  # typevar -> (dtype, input that bound it)
    allowed_of = {t.name: t.dtypes for t in spec.typevars}
    for k, iname in enumerate(node.input):
        if not iname or not spec.inputs:
            continue
        formal = spec.inputs[min(k, len(spec.inputs) - 1)]
        if k >= len(spec.inputs) and not formal.variadic:
            break
        elem = types.get(iname)
        if not elem:
            continue
        got = _dtype_name(elem)
        label = f"input {k} ({formal.name!r}, tensor {iname!r})"
        if formal.type.dtype:
            if got != formal.type.dtype:
                out.append(Finding(name, q, "input-dtype", f"{label} is {got}, the spec requires {formal.type.dtype}",
                                   f"cast it to {formal.type.dtype} before the node (a Cast node), or allow {got} "
                                   f"in the spec"))
            continue
        tv = formal.type.typevar
        allowed = allowed_of.get(tv, ())
        if got not in allowed:
            out.append(Finding(name, q, "input-dtype", f"{label} is {got}; type {tv} of {spec.qualname} allows "
                               f"{', '.join(allowed)}",
                               f"cast it to one of {', '.join(allowed)}, or add {got!r} to types={{{tv!r}: ...}} "
                               f"in the spec (and its kernel)"))
        elif tv in bound and bound[tv][0] != got:
            out.append(Finding(name, q, "input-dtype", f"{label} is {got}, but type {tv} is {bound[tv][0]} from "
                               f"{bound[tv][1]}", f"give every input of type {tv} the same dtype (cast one of them)"))
        else:
            bound.setdefault(tv, (got, label))
    # Outputs: known from the binding, so that a following custom node can be checked too.
    from opkit.spec.dtypes import DTYPES

    for oname, formal in zip(node.output, spec.outputs):
        dt = formal.type.dtype or (bound.get(formal.type.typevar or "", (None,))[0])
        if oname and dt and oname not in types:
            types[oname] = DTYPES[dt].onnx
    return out


def render(result: CheckResult, model_path: str, n_specs: int) -> str:
    lines = [f"model: {model_path}", f"custom-domain nodes: {len(result.nodes)} (checked against {n_specs} spec(s))"]
    if result.nodes:
        w = max(len(n.node) for n in result.nodes)
        wo = max(len(n.op) for n in result.nodes)
        for n in result.nodes:
            lines.append(f"  {n.node.ljust(w)}  {n.op.ljust(wo)}  {'spec ' + n.spec if n.spec else 'no spec'}")
    if result.findings:
        lines.append("")
        lines.append(f"{len(result.findings)} problem(s):")
        for f in result.findings:
            lines.append("  " + f.render().replace("\n", "\n  "))
    lines.append("")
    lines.append("OK" if result.ok else "FAIL")
    return "\n".join(lines)


def findings_error(result: CheckResult, model_path: str) -> Any:
    """The check's findings as one opkit error (verify raises it instead of ORT's raw error)."""
    from opkit.errors import ModelCheckError

    return ModelCheckError(f"the model's custom nodes do not match the specs ({len(result.findings)} problem(s))",
                           where=model_path, details="\n".join(f.render() for f in result.findings),
                           fix="fix each node as shown; `opkit check " + model_path + "` repeats this check")
