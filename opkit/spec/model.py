"""The frozen data model of an op, parsed once from a spec and read by every later stage.

An :class:`OpSpec` is pure data (no torch, no callables), so it can be cached as
JSON between builds (``to_dict``/``from_dict``) and printed back to its source
form (``signature``). Invariants are checked in ``__post_init__``; user-facing
validation with file:line messages lives in :mod:`opkit.spec.parse`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from opkit.spec.dtypes import DTYPES

AttrKind = Literal["float", "int", "bool", "str", "floats", "ints", "strs"]
ATTR_KINDS: tuple[str, ...] = ("float", "int", "bool", "str", "floats", "ints", "strs")
# How each attribute kind is written in a Python spec, and its ONNX attribute type.
ATTR_PY = {"float": "float", "int": "int", "bool": "bool", "str": "str",
           "floats": "list[float]", "ints": "list[int]", "strs": "list[str]"}
# list[str] is carried as a 1-D string TENSOR attribute: ONNX Runtime's kernel API (1.21) reads
# tensor attributes but has no reader for STRINGS.
ATTR_ONNX = {"float": "FLOAT", "int": "INT", "bool": "INT", "str": "STRING",
             "floats": "FLOATS", "ints": "INTS", "strs": "TENSOR"}
ATTR_CPP = {"float": "float", "int": "int64_t", "bool": "bool", "str": "std::string",
            "floats": "std::vector<float>", "ints": "std::vector<int64_t>",
            "strs": "std::vector<std::string>"}
ATTR_TORCH_SCHEMA = {"float": "float", "int": "int", "bool": "bool", "str": "str",
                     "floats": "float[]", "ints": "int[]", "strs": "str[]"}


@dataclass(frozen=True)
class SourceLoc:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class TypeVar:
    """A type variable such as ``T``: the dtypes it may take, in declaration order."""

    name: str
    dtypes: tuple[str, ...]

    def __post_init__(self) -> None:
        assert self.dtypes and all(d in DTYPES for d in self.dtypes), self


@dataclass(frozen=True)
class TensorType:
    """The element type of a tensor: a fixed dtype or a type variable; optionally a fixed rank."""

    dtype: str | None = None
    typevar: str | None = None
    rank: int | None = None

    def __post_init__(self) -> None:
        assert (self.dtype is None) != (self.typevar is None), self

    @property
    def text(self) -> str:
        inner = repr(self.dtype or self.typevar)
        if self.rank is not None:
            inner += f", {self.rank}"
        return f"Tensor[{inner}]"


@dataclass(frozen=True)
class Input:
    name: str
    type: TensorType
    optional: bool = False
    variadic: bool = False
    loc: SourceLoc | None = None
    # An optional input written without "= None" (needed before a variadic input, which has no
    # default): callers pass None explicitly.
    no_default: bool = False
    # Declared constant (`constant=` in the decorator): a weight, an initializer in the model. The
    # kernel's prepare stage reads it once per node; compute receives the prepared state.
    constant: bool = False

    def __post_init__(self) -> None:
        assert not (self.optional and self.variadic), self
        assert self.optional or not self.no_default, self
        assert not (self.constant and self.variadic), self

    @property
    def text(self) -> str:
        t = self.type.text
        if self.variadic:
            return f"{self.name}: list[{t}]"
        if self.optional:
            return f"{self.name}: {t} | None" + ("" if self.no_default else " = None")
        return f"{self.name}: {t}"


@dataclass(frozen=True)
class Attr:
    name: str
    kind: str  # one of ATTR_KINDS
    default: Any = None  # a Python value (tuple for lists); None when required
    required: bool = True
    loc: SourceLoc | None = None
    # The allowed values of a str or int attribute written as Literal["a", "b"]; None: any value.
    # The generated glue rejects any other value when the ORT session is created.
    choices: tuple | None = None

    def __post_init__(self) -> None:
        assert self.kind in ATTR_KINDS, self
        assert self.required == (self.default is None), self
        assert self.choices is None or (self.kind in ("str", "int") and self.choices), self

    @property
    def text(self) -> str:
        s = f"{self.name}: {ATTR_PY[self.kind]}"
        if self.choices is not None:
            s = f"{self.name}: Literal[{', '.join(repr(c) for c in self.choices)}]"
        if not self.required:
            d = list(self.default) if isinstance(self.default, tuple) else self.default
            s += f" = {d!r}"
        return s


@dataclass(frozen=True)
class Dim:
    """One item of an output shape rule.

    kind: "dim" (one dimension of an input), "dims" (a slice of an input's dims,
    spliced in), "attr" (the value of an int attribute), "const", or "dynamic"
    (decided by the kernel at run time; the exporter gets a symbolic size).
    """

    kind: Literal["dim", "dims", "attr", "const", "dynamic"]
    input: str | None = None
    index: int | None = None
    start: int | None = None
    stop: int | None = None
    attr: str | None = None
    value: int | None = None


@dataclass(frozen=True)
class ShapeRule:
    """How an output's shape follows from the inputs' shapes and the attributes."""

    text: str  # as written in the spec
    dims: tuple[Dim, ...]

    @property
    def static(self) -> bool:
        """True when the glue can compute the whole shape before the kernel runs."""
        return all(d.kind != "dynamic" for d in self.dims)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.input for d in self.dims if d.input))


@dataclass(frozen=True)
class Output:
    name: str
    type: TensorType
    shape: ShapeRule | None = None  # None: the kernel allocates it (any shape)


_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_DOMAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# A torch operator overload as written in `adopts=`: "namespace::name" or "namespace::name.overload".
ADOPTS = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)::([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?$")


def snake_case(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s)
    return s.lower()


@dataclass(frozen=True)
class OpSpec:
    """Everything opkit knows about one op."""

    name: str  # ONNX op type, CamelCase: "ScaledGelu"
    domain: str  # ONNX domain: "opkit.examples"
    version: int  # ONNX opset version of the domain
    py_name: str  # the reference function's name: "scaled_gelu"
    typevars: tuple[TypeVar, ...]
    inputs: tuple[Input, ...]
    attrs: tuple[Attr, ...]
    outputs: tuple[Output, ...]
    param_order: tuple[str, ...]  # the Python signature's order of inputs and attributes
    doc: str = ""
    loc: SourceLoc | None = None
    folder: str = ""  # ops/<folder>/ relative to the workspace; the kernel is <folder>/<folder>.cc
    # The torch op this op stands in for at export ("aten::cummax", "mylib::scale.twice"): every call
    # of that op in a model becomes this op's custom node (`opkit adopt` writes it; see docs/adopt.md).
    adopts: str | None = None
    # Native libraries the kernel links (names from opkit.build.libraries.LIBRARIES, e.g. "openblas").
    libraries: tuple[str, ...] = ()
    # The work of one call, for `opkit bench` (GFLOP/s, GB/s): Python expressions over the inputs'
    # shapes, e.g. "2 * x.numel() * weight[0]"; see opkit.spec.work.
    flops: str | None = None
    bytes: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        assert _CAMEL.match(self.name), self.name
        assert _DOMAIN.match(self.domain), self.domain
        declared = {t.name for t in self.typevars}
        for t in [i.type for i in self.inputs] + [o.type for o in self.outputs]:
            assert t.typevar is None or t.typevar in declared, t
        assert self.adopts is None or ADOPTS.match(self.adopts), self.adopts

    # -- names derived once, used by every renderer ------------------------------------------
    @property
    def qualname(self) -> str:
        return f"{self.domain}::{self.name}"

    @property
    def torch_namespace(self) -> str:
        return self.domain.replace(".", "_")

    @property
    def torch_qualname(self) -> str:
        return f"{self.torch_namespace}::{snake_case(self.name)}"

    @property
    def cpp_id(self) -> str:
        return self.name

    @property
    def constant_inputs(self) -> tuple[Input, ...]:
        """The inputs the prepare stage reads (empty: the op has no prepare stage)."""
        return tuple(i for i in self.inputs if i.constant)

    @property
    def has_prepare(self) -> bool:
        return any(i.constant for i in self.inputs)

    def input(self, name: str) -> Input:
        return next(i for i in self.inputs if i.name == name)

    def attr(self, name: str) -> Attr:
        return next(a for a in self.attrs if a.name == name)

    @property
    def kernel_combos(self) -> list[dict[str, str]]:
        """Every assignment of dtypes to type variables: one native kernel is registered for each."""
        names = [t.name for t in self.typevars]
        return [dict(zip(names, combo)) for combo in itertools.product(*(t.dtypes for t in self.typevars))]

    def resolve(self, t: TensorType, combo: dict[str, str]) -> str:
        return t.dtype if t.dtype else combo[t.typevar]

    @property
    def signature(self) -> str:
        """The spec's Python signature, printed back from the model."""
        by_name = {i.name: i.text for i in self.inputs} | {a.name: a.text for a in self.attrs}
        params = ", ".join(by_name[n] for n in self.param_order)
        outs = [o.type.text for o in self.outputs]
        ret = outs[0] if len(outs) == 1 else f"tuple[{', '.join(outs)}]"
        return f"{self.py_name}({params}) -> {ret}"

    # -- JSON round trip (the build cache and `opkit info` read these) ----------------------
    def to_dict(self) -> dict:
        return _to_json(self)

    @classmethod
    def from_dict(cls, data: dict) -> "OpSpec":
        return _from_json(cls, data)


_NESTED = {"typevars": TypeVar, "inputs": Input, "attrs": Attr, "outputs": Output,
           "type": TensorType, "shape": ShapeRule, "dims": Dim, "loc": SourceLoc}


def _to_json(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _to_json(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_to_json(x) for x in obj]}
    if isinstance(obj, list):
        return [_to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _to_json(v) for k, v in obj.items()}
    return obj


def _from_json(cls: type | None, data: Any) -> Any:
    if isinstance(data, dict) and "__tuple__" in data:
        return tuple(_from_json(cls, x) for x in data["__tuple__"])
    if cls is not None and isinstance(data, dict):
        kwargs = {k: _from_json(_NESTED.get(k), v) for k, v in data.items()}
        return cls(**kwargs)
    if isinstance(data, dict):
        return {k: _from_json(None, v) for k, v in data.items()}
    if isinstance(data, list):
        return [_from_json(None, x) for x in data]
    return data
