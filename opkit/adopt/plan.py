"""From an untranslatable op and the calls the model makes, the spec of the opkit op that adopts it.

This is the one place that maps a torch schema to an opkit signature:
- ``Tensor`` -> an input, ``Tensor?`` -> an optional input, ``Tensor[]`` -> a variadic input;
- ``int``/``SymInt``, ``float``, ``bool``, ``str`` and their lists -> attributes with the schema's defaults;
  a ``Scalar`` -> an int, float or bool attribute, by the values the model passes;
- an optional scalar the model always passes -> a required attribute; any argument the model always
  leaves at its default (``ScalarType? dtype=None``, ...) -> left out of the spec (the original op's
  default applies, and the export checks that the model still leaves it so);
- every ``Tensor`` return -> an output; the type variables list the dtypes the model passed;
- an output's shape rule: the input whose shape it has, or its dims one by one, as the traced (fake)
  shapes of every call show them; none when they do not say (the kernel allocates it).
What cannot be expressed raises :class:`Inexpressible` with the reason and what to do instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from opkit.adopt.discover import Untranslatable, Value
from opkit.spec.dtypes import DTYPES
from opkit.spec.adopts import TYPEVAR_NAMES, param_name, usable
from opkit.spec.parse import TYPEVAR_RESERVED

_SCALARS = {"int": "int", "SymInt": "int", "float": "float", "SymFloat": "float", "bool": "bool", "str": "str",
            "List[int]": "ints", "List[SymInt]": "ints", "List[float]": "floats", "List[str]": "strs"}
_PY = {"int": "int", "float": "float", "bool": "bool", "str": "str", "ints": "list[int]", "floats": "list[float]",
       "strs": "list[str]"}


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


class Inexpressible(Exception):
    """An op whose schema (or whose use in the model) opkit cannot express as a spec."""

    def __init__(self, reason: str, instead: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.instead = instead


@dataclass
class Param:
    name: str  # the spec's parameter name
    arg: str  # the original schema argument it stands for
    kind: str  # "input", "optional", "variadic", or an attribute kind ("int", "floats", ...)
    typ: str = ""  # the tensor annotation's type: a type variable or a dtype
    default: Any = None
    has_default: bool = False

    @property
    def text(self) -> str:
        if self.kind in ("input", "optional", "variadic"):
            t = f"Tensor[{lit(self.typ)}]"
            t = f"list[{t}]" if self.kind == "variadic" else f"{t} | None" if self.kind == "optional" else t
        else:
            t = _PY[self.kind]
        return f"{self.name}: {t}" + (f" = {lit(self.default)}" if self.has_default else "")


@dataclass
class Plan:
    """Everything the adopted spec says: rendered by opkit.codegen.render.render_adopted_spec_file."""

    found: Untranslatable
    name: str = ""  # CamelCase op name, set by the driver (collisions)
    params: list[Param] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)  # arguments left at the original's default
    typevars: dict[str, tuple[str, ...]] = field(default_factory=dict)
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (name, type variable or dtype)
    shapes: dict[str, Any] = field(default_factory=dict)

    @property
    def call(self) -> str:
        """The reference's body: the original op, called with the spec's parameters."""
        t = self.found.target
        by_arg = {p.arg: p for p in self.params}
        parts, keywords = [], False
        for a in t._schema.arguments:
            p = by_arg.get(a.name)
            if p is None:
                keywords = True  # left at its default: the arguments after it go by name
                continue
            parts.append(f"{a.name}={p.name}" if keywords or a.kwarg_only else p.name)
        return f"torch.ops.{t.namespace}.{self.found.op_name}.{self.found.overload}({', '.join(parts)})"


def _given(values: list[Value]) -> list[Value]:
    return [v for v in values if v.kind != "absent" and not (v.kind == "scalar" and v.value is None)]


def _attr_kind(typ: str, values: list[Value], arg: str) -> str:
    """The attribute kind of a scalar argument, from its schema type and the values the model passes."""
    sym = [v for v in values if v.kind in ("symbolic", "tensor", "tensors")]
    if sym:
        what = "a tensor" if sym[0].kind != "symbolic" else f"a value computed from dynamic sizes ({sym[0].text})"
        raise Inexpressible(f"argument {arg!r} ({typ}) is {what} in the model's call: an ONNX attribute is a "
                            "constant fixed at export",
                            "export with static sizes for what it is computed from, or write a spec by hand that "
                            "takes it as a tensor input and wrap the call in the model")
    if typ == "number":  # Scalar: by the Python values the model passes
        kinds = {type(v.value) for v in values}
        if kinds <= {bool}:
            return "bool"
        if kinds <= {int}:
            return "int"
        if kinds <= {int, float}:
            return "float"
        passed = ", ".join(sorted(k.__name__ for k in kinds))
        raise Inexpressible(f"argument {arg!r} is a Scalar the model passes as {passed}",
                            "write a spec by hand with a float or int attribute")
    return _SCALARS[typ]


def _default(kind: str, a: Any) -> tuple[bool, Any]:
    if not a.has_default_value() or a.default_value is None:
        return False, None
    v = a.default_value
    try:
        if kind == "float":
            return True, float(v)
        if kind == "int" and not isinstance(v, bool):
            return True, int(v)
        if kind == "bool":
            return True, bool(v)
        if kind == "str" and isinstance(v, str):
            return True, v
        if kind in ("ints", "floats", "strs"):
            seq = [v] if isinstance(v, (int, float, str)) else list(v)  # int[1] dim=0 -> [0]
            cast = {"ints": int, "floats": float, "strs": str}[kind]
            return True, [cast(x) for x in seq]
    except (TypeError, ValueError):
        pass
    return False, None


def plan(found: Untranslatable) -> Plan:
    """The spec of the op that adopts `found`, or Inexpressible."""
    schema = found.schema
    arg_names = [a.name for a in schema.arguments]
    p = Plan(found)
    for a in schema.arguments:
        if a.alias_info is not None and a.alias_info.is_write:
            raise Inexpressible(f"it writes its argument {a.name!r} in place (Tensor(a!) in its schema)",
                                "adopt the op's out-of-place variant (e.g. aten::add for aten::add_), or call that "
                                "one in the model")
    _check_returns(found)
    tensor_values: dict[str, list[Value]] = {}
    variadic_seen = None
    for k, a in enumerate(schema.arguments):
        typ = str(a.real_type)
        values = [c.args[k] for c in found.calls]
        name = param_name(a.name, arg_names)
        if typ in ("Tensor", "Optional[Tensor]", "List[Tensor]"):
            if variadic_seen:
                raise Inexpressible(f"tensor argument {a.name!r} follows the tensor list {variadic_seen!r}",
                                    "write a spec by hand whose list of tensors is the last tensor input, and "
                                    "wrap the call in the model")
            if typ == "List[Tensor]":
                variadic_seen = a.name
            kind = {"Tensor": "input", "Optional[Tensor]": "optional", "List[Tensor]": "variadic"}[typ]
            bad = [v for v in values if v.kind not in ("tensor", "tensors", "absent")
                   and not (v.kind == "scalar" and v.value is None)]
            if bad:
                raise Inexpressible(f"tensor argument {a.name!r} is not a tensor in the model's call",
                                    "pass a tensor, or write a spec by hand and wrap the call in the model")
            tensor_values[name] = values
            p.params.append(Param(name, a.name, kind, has_default=kind == "optional", default=None))
            continue
        optional = typ.startswith("Optional[")
        inner = typ[len("Optional["):-1] if optional else typ
        default = a.default_value if a.has_default_value() else None
        # a call that leaves the argument out passes its default
        values = [Value("scalar", value=default) if v.kind == "absent" else v for v in values]
        given = _given(values)
        expressible = inner in _SCALARS or inner == "number"
        if not given or (not expressible and all(v.kind == "scalar" and v.value == default for v in values)):
            if not optional and not a.has_default_value():
                raise Inexpressible(f"argument {a.name!r} ({torch_type(typ)}) has no value in the model's call",
                                    "pass a value for it in the model")
            p.pinned.append(a.name)  # always the original's default: not part of the spec
            continue
        if not expressible:
            raise Inexpressible(f"argument {a.name!r} is a {torch_type(typ)}, which no ONNX attribute holds, and "
                                "the model passes it",
                                "call the op with that argument left at its default, or write a spec by hand "
                                "and wrap the call in the model")
        if len(given) != len(values):
            raise Inexpressible(f"argument {a.name!r} ({torch_type(typ)}) is None in some of the model's calls and "
                                "a value in others: an ONNX attribute cannot be None",
                                "pass a value at every call, or adopt the calls in separate wrappers")
        kind = _attr_kind(inner, given, a.name)
        has_default, default = (False, None) if optional else _default(kind, a)
        p.params.append(Param(name, a.name, kind, default=default, has_default=has_default))
    if not tensor_values:
        raise Inexpressible("it has no tensor argument", "write a spec by hand")
    _fix_defaults(p.params)
    _types(p, tensor_values)
    _shapes(p, tensor_values)
    return p


def torch_type(t: str) -> str:
    """A type as torch schemas write it: "Optional[List[int]]" -> "int[]?", "number" -> "Scalar"."""
    if t.startswith("Optional[") and t.endswith("]"):
        return torch_type(t[len("Optional["):-1]) + "?"
    if t.startswith("List[") and t.endswith("]"):
        return torch_type(t[len("List["):-1]) + "[]"
    return {"number": "Scalar"}.get(t, t)


def _check_returns(found: Untranslatable) -> None:
    rets = found.schema.returns
    if not rets:
        raise Inexpressible("it returns nothing (it only has side effects)", "keep it out of the exported model")
    for r in rets:
        if r.alias_info is not None:
            raise Inexpressible("it returns a view of an input (an aliasing output: Tensor(a) in its schema)",
                                "opkit ops return new tensors: write a spec by hand that returns a copy, and wrap "
                                "the call in the model")
        if str(r.type) != "Tensor":
            raise Inexpressible(f"it returns {torch_type(str(r.type))}, not a fixed number of tensors",
                                "write a spec by hand with a fixed number of outputs, and wrap the call in the model")


def _fix_defaults(params: list[Param]) -> None:
    """Python needs every parameter after one with a default to have one: drop defaults before a required one
    (an optional input then has no "= None", as before a variadic input)."""
    required_after = False
    for prm in reversed(params):
        if not prm.has_default:
            required_after = True
        elif required_after:
            prm.has_default, prm.default = False, None


def _types(p: Plan, tensor_values: dict[str, list[Value]]) -> None:
    """Type variables: the tensor inputs that the model passed the same dtypes share one."""
    def dtypes_of(values: list[Value]) -> tuple[str, ...]:
        seen: list[str] = []
        for v in values:
            for d in sorted(v.dtypes):
                if d not in seen:
                    seen.append(d)
        for d in seen:
            if d not in DTYPES:
                raise Inexpressible(f"the model passes {d} tensors, a dtype opkit does not have",
                                    f"opkit's dtypes are {', '.join(DTYPES)}")
        return tuple(sorted(seen, key=list(DTYPES).index))

    taken = {prm.name for prm in p.params}
    free = [n for n in TYPEVAR_NAMES + tuple(f"T{k}" for k in range(1, 9))
            if n not in taken and n not in TYPEVAR_RESERVED]
    by_dtypes: dict[tuple[str, ...], str] = {}
    for prm in p.params:
        if prm.kind in ("input", "variadic"):
            dts = dtypes_of(tensor_values[prm.name])
            if dts not in by_dtypes:
                by_dtypes[dts] = free.pop(0)
                p.typevars[by_dtypes[dts]] = dts
            prm.typ = by_dtypes[dts]
    first = next(iter(p.typevars), None)
    for prm in p.params:
        if prm.kind == "optional":
            dts = dtypes_of(tensor_values[prm.name])
            if not dts:  # never given: the dtype of the first input is the likely one
                if first is None:
                    raise Inexpressible("its only tensor arguments are optional ones the model never passes",
                                        "write a spec by hand")
                prm.typ = first
            elif dts in by_dtypes:
                prm.typ = by_dtypes[dts]
            elif len(dts) == 1:
                prm.typ = dts[0]
            else:
                raise Inexpressible(f"optional input {prm.arg!r} takes dtypes ({', '.join(dts)}) that no required "
                                    "input takes", "write a spec by hand")
    names = [r.name for r in p.found.schema.returns]
    out_names = _output_names(names, taken)
    for j, name in enumerate(out_names):
        dts = dtypes_of([c.outputs[j] for c in p.found.calls if j < len(c.outputs)])
        if dts in by_dtypes:
            p.outputs.append((name, by_dtypes[dts]))
        elif len(dts) == 1:
            p.outputs.append((name, dts[0]))
        else:
            raise Inexpressible(f"output {j} has dtypes ({', '.join(dts) or 'unknown'}) that do not follow any "
                                "input's", "write a spec by hand")


def _output_names(names: list[str], taken: set[str]) -> list[str]:
    if all(n and usable(n) for n in names) and len(set(names)) == len(names):
        out = list(names)
    else:
        plain = ["y"] if len(names) == 1 else [f"y{k}" for k in range(len(names))]
        other = ["out"] if len(names) == 1 else [f"out{k}" for k in range(len(names))]
        out = plain if not taken & set(plain) else other
    return [n + "_out" if n in taken else n for n in out]


_UNBACKED = re.compile(r"^u\d+$")


def _shapes(p: Plan, tensor_values: dict[str, list[Value]]) -> None:
    """Each output's shape rule, from the traced shapes of every call."""
    # the original's `self` first: when several inputs have an output's shape, it is the usual one
    fixed = sorted((prm.name for prm in p.params if prm.kind == "input"),
                   key=lambda n: next(prm.arg for prm in p.params if prm.name == n) != "self")
    calls = p.found.calls
    for j, (name, _) in enumerate(p.outputs):
        outs = [c.outputs[j] for c in calls]
        if any(o.kind != "tensor" for o in outs):
            continue
        ins = {n: [v for v in tensor_values[n]] for n in fixed}
        whole = next((n for n in fixed if all(i.kind == "tensor" and i.dims == o.dims for i, o in zip(ins[n], outs))),
                     None)
        if whole:
            p.shapes[name] = whole
            continue
        ranks = {len(o.dims) for o in outs}
        if len(ranks) != 1:
            continue
        items: list[Any] = []
        for d in range(ranks.pop()):
            item = _dim_item(d, outs, ins)
            if item is _NONE:
                items = []
                break
            items.append(item)
        if items or not outs[0].dims:
            p.shapes[name] = tuple(items)


_NONE = object()


def _dim_item(d: int, outs: list[Value], ins: dict[str, list[Value]]) -> Any:
    sizes = [o.dims[d] for o in outs]
    if all(isinstance(s, str) and _UNBACKED.match(s) for s in sizes):
        return None  # known only when the op runs
    candidates = []
    for n, values in ins.items():
        for k in range(max((len(v.dims) for v in values), default=0)):
            if all(v.kind == "tensor" and k < len(v.dims) and v.dims[k] == s for v, s in zip(values, sizes)):
                candidates.append((k != d, f"{n}[{k}]"))  # the same axis first
    if candidates:
        return sorted(candidates)[0][1]
    # A constant only when the model has dynamic sizes: with static ones, any size looks constant.
    dynamic = any(isinstance(d, str) for values in ins.values() for v in values for d in v.dims)
    if dynamic and len(set(sizes)) == 1 and isinstance(sizes[0], int):
        return sizes[0]
    return _NONE
