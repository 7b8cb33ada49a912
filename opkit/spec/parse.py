"""Parse a decorated reference function into an :class:`OpSpec`, with file:line errors.

This module is the one place that maps a Python annotation to an ONNX input,
output or attribute. Every rejection says what was found, what is allowed and
the nearest working alternative.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import keyword
import re
import types as pytypes
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opkit.errors import SpecError
from opkit.spec.annotations import OptionalTensor, TensorAnnotation
from opkit.spec.dtypes import ALIASES, DTYPES
from opkit.spec.model import (
    ADOPTS,
    _CAMEL,
    _DOMAIN,
    Attr,
    Dim,
    Input,
    OpSpec,
    Output,
    ShapeRule,
    SourceLoc,
    TensorType,
    TypeVar,
    snake_case,
)

# Names the generated C++ and Python glue use; a parameter may not take them.
CPP_KEYWORDS = frozenset("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t
class compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield
decltype default delete do double dynamic_cast else enum explicit export extern false float for friend
goto if inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private
protected public register reinterpret_cast requires return short signed sizeof static static_assert
static_cast struct switch template this thread_local throw true try typedef typeid typename union
unsigned using virtual void volatile wchar_t while xor xor_eq
""".split())
RESERVED = frozenset({"ctx", "attrs", "self", "context", "info", "api", "kernel", "opkit", "Ort", "std",
                      "T", "status", "domain", "name", "op"})
# Names the generated glue uses at the scope of the kernel's template parameters.
TYPEVAR_RESERVED = frozenset({"Spec", "Op", "Kernel", "Attrs", "Sym", "Unused", "Input", "Output", "Optional",
                              "Variadic", "Context", "Shape", "Error", "std", "Ort"})
RESERVED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training",
                              "com.microsoft", "com.microsoft.nchwc", "ai.onnx.contrib"})
# torch op names that torch.ops.<namespace> answers itself (its module name), so an op cannot take them.
_TORCH_OPS_RESERVED = frozenset({"name"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_identifier(name: str, what: str, loc: SourceLoc | None) -> None:
    """A name that becomes a C++ and Python identifier."""
    if not _IDENT.match(name):
        raise SpecError(f"{what} {name!r} is not an identifier", where=loc,
                        expected="letters, digits and underscores, not starting with a digit",
                        got=repr(name), fix="rename it")
    if keyword.iskeyword(name) or name in CPP_KEYWORDS:
        raise SpecError(f"{what} {name!r} is a C++ or Python keyword", where=loc,
                        got=repr(name), fix=f"rename it, e.g. {name + '_'!r}")
    if name in RESERVED or name.startswith("opkit_") or name.startswith("_"):
        raise SpecError(f"{what} {name!r} is reserved for opkit's generated code", where=loc,
                        expected="a name that is not one of " + ", ".join(sorted(RESERVED)) +
                        " and does not start with '_' or 'opkit_'",
                        got=repr(name), fix=f"rename it, e.g. {name.strip('_') + '_in'!r}")


def _suggest(word: str, choices: Sequence[str]) -> str:
    word_l = word.lower()
    if word_l in ALIASES:
        return f"did you mean {ALIASES[word_l]!r}?"
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else "choose one of " + ", ".join(choices)


def _param_lines(fn: Callable) -> tuple[str, int, dict[str, int]]:
    """The spec file, the line of the `def` (or its first decorator) and each parameter's line."""
    code = fn.__code__
    file, first = code.co_filename, code.co_firstlineno
    lines: dict[str, int] = {}
    try:
        src_lines, start = inspect.getsourcelines(fn)
        tree = ast.parse(inspect.cleandoc("\n".join(ln.rstrip("\n") for ln in src_lines))
                         if src_lines[0][:1].isspace() else "".join(src_lines))
        node = tree.body[0]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs:
                lines[arg.arg] = start + arg.lineno - 1
            lines["return"] = start + (node.returns.lineno - 1 if node.returns else node.lineno - 1)
            lines["def"] = start + node.lineno - 1
    except (OSError, SyntaxError, IndexError, TypeError):
        pass
    return file, first, lines


def _tensor_type(ann: TensorAnnotation, typevars: Mapping[str, TypeVar], loc: SourceLoc, what: str) -> TensorType:
    args = ann.args
    if not args or len(args) > 2 or not isinstance(args[0], str):
        raise SpecError(f"{what}: Tensor[...] takes a dtype or type-variable name, optionally a rank",
                        where=loc, expected='Tensor["T"], Tensor["float32"] or Tensor["T", 2]',
                        got=repr(ann), fix='write the dtype as a string, e.g. Tensor["float32"]')
    rank = None
    if len(args) == 2:
        if not isinstance(args[1], int) or isinstance(args[1], bool) or args[1] < 0:
            raise SpecError(f"{what}: the rank in Tensor[...] must be a non-negative int", where=loc,
                            expected='Tensor["T", 2]', got=repr(ann))
        rank = args[1]
    key = args[0]
    if key in typevars:
        return TensorType(typevar=key, rank=rank)
    if key in DTYPES:
        return TensorType(dtype=key, rank=rank)
    declared = ", ".join(typevars) or "none"
    choices = list(typevars) + list(DTYPES)
    if key.isidentifier() and (len(key) <= 2 or key[0].isupper()) and key.lower() not in ALIASES:
        raise SpecError(f"{what}: type variable {key!r} is not declared", where=loc,
                        expected=f"a declared type variable ({declared}) or a dtype ({', '.join(DTYPES)})",
                        got=repr(key),
                        fix=f'declare it in the decorator: types={{"{key}": ("float32", "float64")}}')
    raise SpecError(f"{what}: unknown dtype {key!r}", where=loc,
                    expected="one of " + ", ".join(DTYPES) + (f" or a type variable ({declared})" if typevars else ""),
                    got=repr(key), fix=_suggest(key, choices))


_ATTR_TYPES: dict[Any, str] = {float: "float", int: "int", bool: "bool", str: "str"}
_LIST_ATTR = {float: "floats", int: "ints", str: "strs"}


def _literal_choices(ann: Any) -> tuple[str, tuple] | None:
    """Literal["a", "b"] -> ("str", ("a", "b")); Literal[1, 2] -> ("int", (1, 2)); else None."""
    if typing.get_origin(ann) is not typing.Literal:
        return None
    values = typing.get_args(ann)
    if values and all(isinstance(v, str) for v in values):
        return "str", tuple(dict.fromkeys(values))
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int", tuple(dict.fromkeys(values))
    return None


def _attr_kind(ann: Any) -> str | None:
    if (lit := _literal_choices(ann)) is not None:
        return lit[0]
    if ann in _ATTR_TYPES:
        return _ATTR_TYPES[ann]
    origin = typing.get_origin(ann)
    if origin in (list, Sequence, tuple) or origin is typing.Sequence:
        args = typing.get_args(ann)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            args = args[:1]
        if len(args) == 1 and args[0] in _LIST_ATTR:
            return _LIST_ATTR[args[0]]
    return None


def _check_default(kind: str, default: Any, name: str, loc: SourceLoc) -> Any:
    """Normalise a default to the attribute kind, or say why it does not fit."""
    def bad(expected: str) -> SpecError:
        return SpecError(f"attribute {name!r}: default does not match its type", where=loc,
                         expected=expected, got=repr(default), fix="change the default or the annotation")
    if kind == "float":
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise bad("a float")
        return float(default)
    if kind == "int":
        if isinstance(default, bool) or not isinstance(default, int):
            raise bad("an int")
        if not -2**63 <= default < 2**63:
            raise bad("an int that fits in 64 bits (an ONNX int attribute)")
        return default
    if kind == "bool":
        if not isinstance(default, bool):
            raise bad("True or False")
        return default
    if kind == "str":
        if not isinstance(default, str):
            raise bad("a str")
        return default
    if not isinstance(default, (list, tuple)):
        raise bad(f"a list ({kind})")
    elem = {"floats": (int, float), "ints": (int,), "strs": (str,)}[kind]
    if any(isinstance(v, bool) or not isinstance(v, elem) for v in default):
        raise bad(f"a list of {kind[:-1]}")
    if kind == "ints" and any(not -2**63 <= v < 2**63 for v in default):
        raise bad("ints that fit in 64 bits (an ONNX ints attribute)")
    return tuple(float(v) for v in default) if kind == "floats" else tuple(default)


_DIM = re.compile(r"^([A-Za-z_]\w*)\[(-?\d+)\]$")
_SLICE = re.compile(r"^([A-Za-z_]\w*)\[(-?\d*):(-?\d*)\]$")


def parse_shape_rule(out: str, rule: Any, inputs: Mapping[str, Input], attrs: Mapping[str, Attr],
                     loc: SourceLoc) -> ShapeRule:
    """Parse ``shapes={"y": "x"}`` or ``shapes={"values": ("x[:-1]", "k")}``."""
    text = repr(rule)
    help_ = ('a tensor input name ("x": same shape as x), or a tuple of items: "x[i]" (one dim of x), '
             '"x[a:b]" (a slice of x\'s dims), an int attribute name, an int, or None (size known only '
             'when the kernel runs)')

    def err(msg: str, got: Any) -> SpecError:
        return SpecError(f"shape of output {out!r}: {msg}", where=loc, expected=help_, got=repr(got))

    def tensor_input(name: str, item: Any) -> Input:
        if name not in inputs:
            raise err(f"{name!r} is not a tensor input", item)
        inp = inputs[name]
        if inp.variadic:
            raise err(f"{name!r} is variadic; its dims cannot be referenced", item)
        if inp.optional:
            raise err(f"{name!r} is optional; its dims cannot be referenced", item)
        return inp

    if isinstance(rule, str) and _IDENT.match(rule) and rule in inputs:
        tensor_input(rule, rule)
        return ShapeRule(text, (Dim("dims", input=rule),))
    if isinstance(rule, str) or not isinstance(rule, (tuple, list)):
        raise err("cannot read this rule", rule)
    dims: list[Dim] = []
    for item in rule:
        if item is None:
            dims.append(Dim("dynamic"))
        elif isinstance(item, int) and not isinstance(item, bool):
            if item < 0:
                raise err("a constant dimension must be >= 0", item)
            dims.append(Dim("const", value=item))
        elif isinstance(item, str) and (m := _DIM.match(item)):
            rank = tensor_input(m.group(1), item).type.rank
            if rank is not None and not -rank <= int(m.group(2)) < rank:
                raise err(f"{m.group(1)!r} has rank {rank}; it has no dim {m.group(2)}", item)
            dims.append(Dim("dim", input=m.group(1), index=int(m.group(2))))
        elif isinstance(item, str) and (m := _SLICE.match(item)):
            tensor_input(m.group(1), item)
            start = int(m.group(2)) if m.group(2) else None
            stop = int(m.group(3)) if m.group(3) else None
            dims.append(Dim("dims", input=m.group(1), start=start, stop=stop))
        elif isinstance(item, str) and item in attrs:
            if attrs[item].kind != "int":
                raise err(f"attribute {item!r} is {attrs[item].kind}, only int attributes can be a dimension", item)
            dims.append(Dim("attr", attr=item))
        elif isinstance(item, str) and item in inputs:
            raise err(f"{item!r} is a tensor; write {item + '[:]'!r} for all its dims or {item + '[0]'!r} for one",
                      item)
        else:
            raise err("cannot read this item", item)
    return ShapeRule(text, tuple(dims))


def parse_op(
    fn: Callable,
    *,
    name: str,
    domain: str,
    version: int = 1,
    types: Mapping[str, Any] | None = None,
    outputs: Sequence[str] | None = None,
    shapes: Mapping[str, Any] | None = None,
    adopts: str | None = None,
    constant: Sequence[str] | str | None = None,
    libraries: Sequence[str] | str | None = None,
    flops: str | None = None,
    bytes: str | None = None,
) -> OpSpec:
    """Turn the decorator's arguments and the reference function into an OpSpec."""
    file, first_line, lines = _param_lines(fn)
    def_loc = SourceLoc(file, lines.get("def", first_line))
    dec_loc = SourceLoc(file, first_line)

    def at(param: str) -> SourceLoc:
        return SourceLoc(file, lines.get(param, def_loc.line))

    # -- the decorator's arguments -------------------------------------------------------------
    if not isinstance(name, str) or not _CAMEL.match(name):
        fixed = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", str(name)) if p)
        raise SpecError("op name must be CamelCase", where=dec_loc, expected="e.g. 'ScaledGelu'",
                        got=repr(name), fix=f"use {fixed!r}" if fixed and _CAMEL.match(fixed) else "rename the op")
    torch_name = snake_case(name)
    if torch_name in _TORCH_OPS_RESERVED:
        raise SpecError(f"op name {name!r} becomes the torch op name {torch_name!r}, which torch.ops reserves "
                        f"(torch.ops.<namespace>.{torch_name} is the namespace's own attribute)", where=dec_loc,
                        expected="a name whose snake_case is not one of " + ", ".join(sorted(_TORCH_OPS_RESERVED)),
                        got=repr(name), fix=f"rename the op, e.g. {name + 'Op'!r}")
    if not isinstance(domain, str) or not _DOMAIN.match(domain):
        raise SpecError("domain must be a dotted identifier", where=dec_loc,
                        expected="e.g. 'com.mycompany' or 'my_ops'", got=repr(domain),
                        fix="use letters, digits and underscores, separated by dots")
    if domain in RESERVED_DOMAINS:
        raise SpecError(f"domain {domain!r} belongs to ONNX or ONNX Runtime", where=dec_loc,
                        expected="a domain of your own, e.g. 'com.mycompany'", got=repr(domain),
                        fix="choose another domain")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SpecError("version must be a positive int", where=dec_loc, expected=">= 1", got=repr(version))
    if adopts is not None:
        adopts = _parse_adopts(adopts, name, domain, dec_loc)

    typevars: dict[str, TypeVar] = {}
    for tv_name, dts in (types or {}).items():
        if not isinstance(tv_name, str) or not _IDENT.match(tv_name):
            raise SpecError("type variable names must be identifiers", where=dec_loc, got=repr(tv_name))
        if tv_name in DTYPES:
            raise SpecError(f"type variable {tv_name!r} has the name of a dtype", where=dec_loc,
                            fix="use a short capitalised name such as 'T'")
        dts = (dts,) if isinstance(dts, str) else tuple(dts)
        if not dts:
            raise SpecError(f"type variable {tv_name!r} allows no dtype", where=dec_loc,
                            expected='e.g. types={"T": ("float32", "float64")}', got=repr(dts))
        for d in dts:
            if d not in DTYPES:
                raise SpecError(f"type variable {tv_name!r}: unknown dtype {d!r}", where=dec_loc,
                                expected="one of " + ", ".join(DTYPES), got=repr(d), fix=_suggest(str(d), list(DTYPES)))
        if len(set(dts)) != len(dts):
            raise SpecError(f"type variable {tv_name!r} lists a dtype twice", where=dec_loc, got=repr(dts))
        typevars[tv_name] = TypeVar(tv_name, dts)

    # -- parameters ------------------------------------------------------------------------------
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # NameError for an undefined name in a string annotation, etc.
        raise SpecError(f"cannot evaluate the annotations of {fn.__name__}: {exc}", where=def_loc,
                        fix="import what the annotations use (from opkit import Tensor)") from None
    sig = inspect.signature(fn)
    inputs: list[Input] = []
    attrs: list[Attr] = []
    order: list[str] = []
    seen_variadic: str | None = None
    for p in sig.parameters.values():
        loc = at(p.name)
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise SpecError(f"parameter *{p.name} / **{p.name} is not supported", where=loc,
                            expected="named parameters only", got=str(p),
                            fix="use a variadic tensor input instead: xs: list[Tensor['T']]")
        check_identifier(p.name, "parameter", loc)
        if p.name not in hints:
            raise SpecError(f"parameter {p.name!r} has no annotation", where=loc,
                            expected='Tensor["T"], Tensor["T"] | None, list[Tensor["T"]], float, int, bool, str, '
                                     'list[float], list[int] or list[str]',
                            got=str(p), fix=f'annotate it, e.g. {p.name}: Tensor["T"]')
        ann = hints[p.name]
        origin = typing.get_origin(ann)
        if isinstance(ann, TensorAnnotation):
            if p.default is not p.empty:
                raise SpecError(f"tensor input {p.name!r} has a default", where=loc,
                                expected="no default, or an optional input: Tensor[...] | None = None",
                                got=f"= {p.default!r}", fix=f"write {p.name}: {ann!r} | None = None")
            if seen_variadic:
                raise SpecError(f"tensor input {p.name!r} follows the variadic input {seen_variadic!r}", where=loc,
                                expected="the variadic input is the last tensor parameter", got=p.name,
                                fix=f"move {seen_variadic!r} after {p.name!r}")
            inputs.append(Input(p.name, _tensor_type(ann, typevars, loc, f"input {p.name!r}"), loc=loc))
        elif isinstance(ann, OptionalTensor) or (
                origin in (typing.Union, pytypes.UnionType)
                and any(isinstance(a, TensorAnnotation) for a in typing.get_args(ann))):
            tensor = ann.tensor if isinstance(ann, OptionalTensor) else next(
                a for a in typing.get_args(ann) if isinstance(a, TensorAnnotation))
            if p.default is not None and p.default is not p.empty:
                raise SpecError(f"optional input {p.name!r} must default to None", where=loc,
                                expected=f"{p.name}: {tensor!r} | None = None (or no default, when a "
                                         "variadic input follows)",
                                got=str(p), fix="write '= None'")
            if seen_variadic:
                raise SpecError(f"tensor input {p.name!r} follows the variadic input {seen_variadic!r}", where=loc,
                                fix=f"move {seen_variadic!r} last")
            inputs.append(Input(p.name, _tensor_type(tensor, typevars, loc, f"input {p.name!r}"), optional=True,
                                loc=loc, no_default=p.default is p.empty))
        elif origin in (list, Sequence) and typing.get_args(ann) and isinstance(typing.get_args(ann)[0],
                                                                                 TensorAnnotation):
            if seen_variadic:
                raise SpecError(f"a second variadic input {p.name!r}", where=loc,
                                expected="at most one list[Tensor[...]] input", got=f"{seen_variadic!r} and {p.name!r}",
                                fix="merge them into one list, or pass a fixed number of inputs")
            if p.default is not p.empty:
                raise SpecError(f"variadic input {p.name!r} cannot have a default", where=loc, got=repr(p.default))
            seen_variadic = p.name
            inputs.append(Input(p.name, _tensor_type(typing.get_args(ann)[0], typevars, loc, f"input {p.name!r}"),
                                variadic=True, loc=loc))
        else:
            kind = _attr_kind(ann)
            if kind is None:
                got = getattr(ann, "__name__", None) or repr(ann)
                hint = "for an optional attribute give a default instead of '| None'" \
                    if origin in (typing.Union, pytypes.UnionType) else \
                    'for a tensor write Tensor["T"] (from opkit import Tensor)' \
                    if "Tensor" in repr(ann) else \
                    'the values of a Literal[...] must be all str or all int, e.g. Literal["relu", "gelu"]' \
                    if origin is typing.Literal else "use one of the supported kinds"
                raise SpecError(f"parameter {p.name!r}: unsupported annotation", where=loc,
                                expected='Tensor["T"], Tensor["T"] | None, list[Tensor["T"]], float, int, bool, str, '
                                         'list[float], list[int] or list[str]',
                                got=got, fix=hint)
            lit = _literal_choices(ann)
            choices = lit[1] if lit else None
            if p.default is p.empty:
                attrs.append(Attr(p.name, kind, loc=loc, choices=choices))
            else:
                if p.default is None:
                    raise SpecError(f"attribute {p.name!r} defaults to None", where=loc,
                                    expected=f"a {kind} default, or no default (required)", got="None",
                                    fix="give a real default value")
                if choices is not None and p.default not in choices:
                    raise SpecError(f"attribute {p.name!r}: default is not one of its Literal values", where=loc,
                                    expected="one of " + ", ".join(repr(c) for c in choices), got=repr(p.default),
                                    fix="change the default or add it to the Literal[...]")
                attrs.append(Attr(p.name, kind, _check_default(kind, p.default, p.name, loc), required=False,
                                  loc=loc, choices=choices))
        order.append(p.name)

    if not inputs:
        raise SpecError(f"op {name!r} has no tensor input", where=def_loc,
                        expected="at least one Tensor[...] parameter", got=str(sig),
                        fix='add one, e.g. x: Tensor["T"]')
    for inp in inputs:
        if inp.variadic and inputs[-1] is not inp:
            raise SpecError(f"variadic input {inp.name!r} must be the last tensor input", where=inp.loc,
                            fix=f"move {inp.name!r} after the other tensor inputs")
    kwonly_tensors = [p.name for p in sig.parameters.values()
                      if p.kind == p.KEYWORD_ONLY and p.name in {i.name for i in inputs}]
    if kwonly_tensors:
        raise SpecError(f"tensor input {kwonly_tensors[0]!r} is keyword-only", where=at(kwonly_tensors[0]),
                        expected="tensor inputs before '*' (torch custom ops refuse keyword-only tensors)",
                        got="after '*'", fix="move it before the '*'")

    # -- outputs ---------------------------------------------------------------------------------
    ret_loc = at("return")
    ret = hints.get("return", inspect.Signature.empty)
    if ret is inspect.Signature.empty:
        raise SpecError(f"{fn.__name__} has no return annotation", where=ret_loc,
                        expected='-> Tensor["T"] or -> tuple[Tensor["T"], Tensor["int64"]]', got="none",
                        fix='add one, e.g. -> Tensor["T"]')
    if isinstance(ret, TensorAnnotation):
        out_anns = [ret]
    elif typing.get_origin(ret) is tuple and typing.get_args(ret) and all(
            isinstance(a, TensorAnnotation) for a in typing.get_args(ret)):
        out_anns = list(typing.get_args(ret))
    else:
        raise SpecError(f"{fn.__name__}: unsupported return annotation", where=ret_loc,
                        expected='Tensor["T"] or tuple[Tensor["T"], Tensor["int64"], ...]',
                        got=repr(ret), fix="return tensors only; attributes cannot be outputs")
    if outputs is None:
        out_names = ["y"] if len(out_anns) == 1 else [f"y{i}" for i in range(len(out_anns))]
    else:
        out_names = [outputs] if isinstance(outputs, str) else list(outputs)
        if len(out_names) != len(out_anns):
            raise SpecError("outputs= names do not match the return annotation", where=dec_loc,
                            expected=f"{len(out_anns)} name(s)", got=repr(tuple(out_names)),
                            fix="give one name per returned tensor")
    taken = set(order)
    for o in out_names:
        check_identifier(o, "output", dec_loc)
        if o in taken:
            raise SpecError(f"output name {o!r} is used twice (inputs, attributes and outputs share names)",
                            where=dec_loc, fix=f"rename the output, e.g. outputs=({o + '_out'!r},)")
        taken.add(o)
    by_input = {i.name: i for i in inputs}
    by_attr = {a.name: a for a in attrs}
    shapes = dict(shapes or {})
    for key in shapes:
        if key not in out_names:
            raise SpecError(f"shapes= names an unknown output {key!r}", where=dec_loc,
                            expected="one of " + ", ".join(out_names), got=repr(key))
    outs = tuple(
        Output(n, _tensor_type(a, typevars, ret_loc, f"output {n!r}"),
               parse_shape_rule(n, shapes[n], by_input, by_attr, dec_loc) if n in shapes else None)
        for n, a in zip(out_names, out_anns))

    # -- type variables: each must be bound by an input --------------------------------------
    names = set(order) | set(out_names)
    for tv in typevars:  # each becomes a C++ template parameter of the kernel and the glue
        if keyword.iskeyword(tv) or tv in CPP_KEYWORDS or tv in TYPEVAR_RESERVED or tv.startswith("opkit"):
            raise SpecError(f"type variable {tv!r} cannot be used as a C++ template parameter name", where=dec_loc,
                            expected="a short capitalised name such as 'T' or 'I', not a keyword or one of "
                                     + ", ".join(sorted(TYPEVAR_RESERVED)),
                            got=repr(tv), fix="rename it, e.g. 'T'")
        if tv in names:
            raise SpecError(f"type variable {tv!r} has the name of a parameter or output", where=dec_loc,
                            got=repr(tv), fix="rename the type variable, e.g. 'T'")
    bound = {i.type.typevar for i in inputs if not i.optional}
    for tv in typevars:
        only_opt = [i.name for i in inputs if i.optional and i.type.typevar == tv]
        if tv not in bound and only_opt:
            raise SpecError(f"type variable {tv!r} is bound only by the optional input {only_opt[0]!r}", where=dec_loc,
                            expected="a type variable used by a required or variadic input (when the optional "
                                     "input is absent, nothing would give its dtype)",
                            got=f"{only_opt[0]}: Tensor[{tv!r}] | None",
                            fix="use it for a required input too, or give the optional input a fixed dtype")
    for tv in typevars:
        used_out = any(o.type.typevar == tv for o in outs)
        if tv not in bound:
            raise SpecError(f"type variable {tv!r} is not used by any tensor input", where=dec_loc,
                            expected="every type variable appears in an input (ONNX Runtime picks the kernel "
                                     "from the input dtypes)",
                            got="used by outputs only" if used_out else "unused",
                            fix="use a fixed dtype for the output instead, e.g. Tensor['int64']"
                            if used_out else f"remove {tv!r} from types=")

    inputs = _mark_constant(inputs, constant, dec_loc)
    libs = _parse_libraries(libraries, dec_loc)
    for key, expr in (("flops", flops), ("bytes", bytes)):
        if expr is not None:
            check_work_expr(key, expr, [i.name for i in inputs if not i.variadic], [a.name for a in attrs], dec_loc)

    doc = inspect.getdoc(fn) or ""
    return OpSpec(
        name=name, domain=domain, version=version, py_name=fn.__name__,
        typevars=tuple(typevars.values()), inputs=tuple(inputs), attrs=tuple(attrs), outputs=outs,
        param_order=tuple(order), doc=doc, loc=def_loc, adopts=adopts, libraries=libs, flops=flops,
        bytes=bytes,
    )


def _parse_adopts(adopts: Any, name: str, domain: str, loc: SourceLoc) -> str:
    """``adopts="aten::cummax"`` (the default overload) or ``"mylib::scale.twice"``; ``.default`` is dropped."""
    m = ADOPTS.match(adopts) if isinstance(adopts, str) else None
    if m is None:
        raise SpecError("adopts= must name a torch operator", where=loc,
                        expected='"namespace::name" or "namespace::name.overload", e.g. "aten::cummax"',
                        got=repr(adopts), fix="write the op as torch.ops shows it: torch.ops.aten.cummax.default "
                                              'is "aten::cummax"')
    ns, op_name, overload = m.groups()
    own = domain.replace(".", "_")
    if ns == own:
        raise SpecError(f"op {name!r} adopts {adopts!r}, an op of its own torch namespace {own!r}", where=loc,
                        expected="an op defined outside opkit (aten, or a C++/torch.library extension)",
                        got=repr(adopts), fix="adopt the original op, or put this op in another domain")
    return f"{ns}::{op_name}" if overload in (None, "default") else f"{ns}::{op_name}.{overload}"


def _mark_constant(inputs: list[Input], constant: Sequence[str] | str | None, loc: SourceLoc) -> list[Input]:
    """``constant=("weight", "bias")``: the inputs the kernel's prepare stage reads."""
    if constant is None:
        return inputs
    names = [constant] if isinstance(constant, str) else list(constant)
    by_name = {i.name: i for i in inputs}
    for n in names:
        if not isinstance(n, str) or n not in by_name:
            raise SpecError(f"constant= names {n!r}, which is not a tensor input", where=loc,
                            expected="names of tensor inputs: " + ", ".join(by_name), got=repr(n),
                            fix=_suggest(str(n), list(by_name)) if isinstance(n, str) else "pass input names")
        if by_name[n].variadic:
            raise SpecError(f"constant= names the variadic input {n!r}", where=loc,
                            expected="single (required or optional) tensor inputs", got=repr(n),
                            fix="declare the weights as separate inputs")
    if len(set(names)) != len(names):
        raise SpecError("constant= lists an input twice", where=loc, got=repr(tuple(names)))
    if len(names) == len(inputs):
        raise SpecError("constant= names every tensor input", where=loc,
                        expected="at least one input that varies per call (the data)", got=repr(tuple(names)),
                        fix="an op of constants only is a constant: compute it ahead of time")
    return [dataclasses.replace(i, constant=i.name in names) for i in inputs]


def _parse_libraries(libraries: Sequence[str] | str | None, loc: SourceLoc) -> tuple[str, ...]:
    from opkit.spec.libraries import LIBRARIES

    if libraries is None:
        return ()
    names = [libraries] if isinstance(libraries, str) else list(libraries)
    for n in names:
        if n not in LIBRARIES:
            raise SpecError(f"libraries= names an unknown library {n!r}", where=loc,
                            expected="one of " + ", ".join(sorted(LIBRARIES)), got=repr(n),
                            fix=_suggest(str(n), sorted(LIBRARIES)) if isinstance(n, str) else "pass names")
    return tuple(dict.fromkeys(names))


_WORK_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Subscript,
               ast.Attribute, ast.Call, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Pow, ast.USub,
               ast.Mod)


def check_work_expr(key: str, expr: Any, inputs: Sequence[str], attrs: Sequence[str], loc: SourceLoc) -> None:
    """flops= / bytes=: an arithmetic expression over inputs (x[-1], x.numel(), x.nbytes, x.itemsize) and
    attributes, evaluated by `opkit bench` on each case's shapes (opkit.spec.work)."""
    example = '"2 * x.numel() // x[-1] * weight[0] * weight[1]"'
    if not isinstance(expr, str):
        raise SpecError(f"{key}= must be a string expression", where=loc, expected=example, got=repr(expr))
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"{key}= is not a Python expression: {exc.msg}", where=loc, expected=example,
                        got=repr(expr)) from None
    allowed = set(inputs) | set(attrs)
    for node in ast.walk(tree):
        if not isinstance(node, _WORK_NODES):
            raise SpecError(f"{key}= may use arithmetic, inputs and attributes only", where=loc, expected=example,
                            got=f"{type(node).__name__} in {expr!r}")
        if isinstance(node, ast.Name) and node.id not in allowed:
            raise SpecError(f"{key}= uses {node.id!r}, which is not an input or attribute", where=loc,
                            expected="one of " + ", ".join(allowed), got=repr(expr),
                            fix=_suggest(node.id, sorted(allowed)))
        if isinstance(node, ast.Attribute) and node.attr not in ("numel", "nbytes", "itemsize", "rank"):
            raise SpecError(f"{key}=: unknown property .{node.attr}", where=loc,
                            expected="x.numel(), x.nbytes, x.itemsize, x.rank or x[i]", got=repr(expr))
