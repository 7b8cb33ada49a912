"""What a spec says about the inputs `opkit test` may generate for its op.

A spec declares constraints on its Op object (never in the frozen OpSpec: they may hold callables)::

    rms_norm.constrain(shapes={"weight": ("x[-1]",)})
    segment_sum.constrain(shapes={"segment_ids": ("data[0]",)}, values={"segment_ids": (0, "num_segments")},
                          sorted=("segment_ids",), attrs={"num_segments": [4, 1]})

    @unique_consecutive.samples
    def _(s):                      # a custom generator: extra cases, or all of them with generate=False
        yield s.sample(s.randint((9,), 0, 3, "int64"))

This module imports no torch; it checks the rules against the spec when they are declared, so a
typo is a SpecError at import time pointing at the spec file.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opkit.errors import SpecError

_DIM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\[(-?\d+)\]$")
_SLICE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\[(-?\d*):(-?\d*)\]$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The element budget of generated cases: no generated tensor above MAX_ELEMENTS elements, no case above
# MAX_CASE_ELEMENTS in all its tensors. Shapes are shrunk to fit before any tensor is made.
MAX_ELEMENTS = 4 * 2**20
MAX_CASE_ELEMENTS = 16 * 2**20

SHAPE_HELP = ('an input name (same shape), or a tuple of items: "x[i]" (a dim of input x), "x[a:b]" '
              '(a slice of its dims), an int attribute name, or an int')
BOUND_HELP = 'a number, an int attribute name, or "x[i]" (a dim of input x)'


@dataclass(frozen=True)
class DimRef:
    """One item of a shape rule or a bound: kind "dim" | "dims" | "attr" | "const"."""

    kind: str
    input: str | None = None
    index: int | None = None
    start: int | None = None
    stop: int | None = None
    attr: str | None = None
    value: Any = None


@dataclass
class TestConfig:
    """The constraints of one op (stored on the Op as ``op.test_config``)."""

    shapes: dict[str, tuple[DimRef, ...]] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # input -> (DimRef lo, DimRef hi) or list of choices
    sorted: tuple[str, ...] = ()
    attrs: dict[str, list] = field(default_factory=dict)
    ranks: dict[str, tuple[int, int]] = field(default_factory=dict)
    valid: Callable[[dict], bool] | None = None
    nonfinite: bool = True
    generate: bool = True
    rtol: float | None = None
    atol: float | None = None
    samples: list[Callable] = field(default_factory=list)
    max_elements: int = MAX_ELEMENTS  # per generated tensor
    max_case_elements: int = MAX_CASE_ELEMENTS  # per case, all its generated tensors together
    where: str = ""

    def min_rank(self, name: str) -> int:
        """The rank an input needs so that every rule referencing its dims can be evaluated."""
        need = 0
        refs = [d for rule in self.shapes.values() for d in rule]
        refs += [b for v in self.values.values() if isinstance(v, tuple) for b in v]
        for d in refs:
            if d.input == name and d.kind == "dim":
                need = max(need, d.index + 1 if d.index >= 0 else -d.index)
        return need


def _where(depth: int = 3) -> str:
    frame = inspect.stack()[depth]
    return f"{frame.filename}:{frame.lineno}"


def _parse_item(item: Any, spec: Any, what: str, where: str, *, allow_slice: bool, help_: str) -> DimRef:
    inputs = {i.name for i in spec.inputs}
    attrs = {a.name: a for a in spec.attrs}
    if isinstance(item, bool):
        raise SpecError(f"{what}: a bool is not a size", where=where, expected=help_, got=repr(item))
    if isinstance(item, (int, float)):
        return DimRef("const", value=item)
    if isinstance(item, str) and (m := _DIM.match(item)):
        if m.group(1) not in inputs:
            raise SpecError(f"{what}: {m.group(1)!r} is not a tensor input of {spec.name}", where=where,
                            expected="one of " + ", ".join(sorted(inputs)), got=repr(item))
        return DimRef("dim", input=m.group(1), index=int(m.group(2)))
    if allow_slice and isinstance(item, str) and (m := _SLICE.match(item)):
        if m.group(1) not in inputs:
            raise SpecError(f"{what}: {m.group(1)!r} is not a tensor input of {spec.name}", where=where,
                            got=repr(item))
        return DimRef("dims", input=m.group(1), start=int(m.group(2)) if m.group(2) else None,
                      stop=int(m.group(3)) if m.group(3) else None)
    if isinstance(item, str) and item in attrs:
        if attrs[item].kind not in ("int", "float"):
            raise SpecError(f"{what}: attribute {item!r} is {attrs[item].kind}", where=where,
                            expected="an int (or float) attribute", got=repr(item))
        return DimRef("attr", attr=item)
    raise SpecError(f"{what}: cannot read {item!r}", where=where, expected=help_, got=repr(item))


def build_config(spec: Any, *, shapes: Mapping[str, Any] | None = None, values: Mapping[str, Any] | None = None,
                 sorted: Sequence[str] = (), attrs: Mapping[str, Sequence[Any]] | None = None,
                 ranks: Mapping[str, Any] | None = None, valid: Callable[[dict], bool] | None = None,
                 nonfinite: bool = True, generate: bool = True, rtol: float | None = None,
                 atol: float | None = None, max_elements: int | None = None, max_case_elements: int | None = None,
                 base: TestConfig | None = None, where: str | None = None) -> TestConfig:
    """Check the rules against the spec and return the op's TestConfig (merged into `base`)."""
    where = where or _where()
    cfg = base or TestConfig()
    cfg.where = where
    inputs = {i.name: i for i in spec.inputs}
    attr_names = {a.name: a for a in spec.attrs}

    def need_input(name: str, what: str) -> None:
        if name not in inputs:
            raise SpecError(f"{what}: {name!r} is not a tensor input of {spec.name}", where=where,
                            expected="one of " + ", ".join(inputs), got=repr(name))

    for name, rule in (shapes or {}).items():
        need_input(name, "constrain(shapes=...)")
        if isinstance(rule, str) and _IDENT.match(rule):
            need_input(rule, f"constrain(shapes={{{name!r}: ...}})")
            cfg.shapes[name] = (DimRef("dims", input=rule),)
            continue
        if not isinstance(rule, (tuple, list)):
            raise SpecError(f"constrain(shapes={{{name!r}: ...}}): cannot read this rule", where=where,
                            expected=SHAPE_HELP, got=repr(rule))
        items = tuple(_parse_item(it, spec, f"constrain(shapes={{{name!r}: ...}})", where, allow_slice=True,
                                  help_=SHAPE_HELP) for it in rule)
        for it in items:
            if it.input == name:
                raise SpecError(f"constrain(shapes={{{name!r}: ...}}) refers to {name!r} itself", where=where,
                                fix="give the shape in terms of other inputs")
        cfg.shapes[name] = items
    for name, rule in (values or {}).items():
        need_input(name, "constrain(values=...)")
        if isinstance(rule, list):
            if not rule:
                raise SpecError(f"constrain(values={{{name!r}: []}}): no value to choose from", where=where)
            cfg.values[name] = list(rule)
        elif isinstance(rule, tuple) and len(rule) == 2:
            cfg.values[name] = tuple(_parse_item(b, spec, f"constrain(values={{{name!r}: ...}})", where,
                                                 allow_slice=False, help_=BOUND_HELP) for b in rule)
        else:
            raise SpecError(f"constrain(values={{{name!r}: ...}}): cannot read this rule", where=where,
                            expected="(low, high): values in [low, high), each " + BOUND_HELP +
                                     "; or a list of the values to choose from", got=repr(rule))
    for name in ([sorted] if isinstance(sorted, str) else list(sorted)):
        need_input(name, "constrain(sorted=...)")
        cfg.sorted = tuple(dict.fromkeys((*cfg.sorted, name)))
    for name, choices in (attrs or {}).items():
        if name not in attr_names:
            raise SpecError(f"constrain(attrs=...): {name!r} is not an attribute of {spec.name}", where=where,
                            expected="one of " + (", ".join(attr_names) or "(none)"), got=repr(name))
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence) or not choices:
            raise SpecError(f"constrain(attrs={{{name!r}: ...}}) needs a non-empty list of values", where=where,
                            expected=f"e.g. attrs={{{name!r}: [...]}}", got=repr(choices))
        cfg.attrs[name] = list(choices)
    for name, r in (ranks or {}).items():
        need_input(name, "constrain(ranks=...)")
        lo, hi = (r, r) if isinstance(r, int) else tuple(r)
        if not (0 <= lo <= hi):
            raise SpecError(f"constrain(ranks={{{name!r}: ...}}): bad range", where=where,
                            expected="an int rank or (min, max) with 0 <= min <= max", got=repr(r))
        cfg.ranks[name] = (lo, hi)
    if valid is not None:
        if not callable(valid):
            raise SpecError("constrain(valid=...) must be a function of the arguments dict", where=where,
                            got=repr(valid))
        cfg.valid = valid
    for what, n in (("max_elements", max_elements), ("max_case_elements", max_case_elements)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise SpecError(f"constrain({what}=...) must be a positive int (a number of elements)", where=where,
                            expected=f"e.g. {what}=1_000_000", got=repr(n))
    cfg.max_elements = max_elements or cfg.max_elements
    cfg.max_case_elements = max_case_elements or cfg.max_case_elements
    cfg.nonfinite = bool(nonfinite)
    cfg.generate = bool(generate)
    cfg.rtol, cfg.atol = (rtol if rtol is not None else cfg.rtol), (atol if atol is not None else cfg.atol)
    return cfg
