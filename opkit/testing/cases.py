"""Test cases of an op, generated from its spec and its constraints. Same seed, same cases.

Generation has two stages: `plan_cases` lists what each case is (dtypes, attributes, shapes,
which optional inputs are present, how many variadic tensors, special values) without making
any tensor; `materialize` makes the tensors of one case from a generator seeded by
(seed, case index). So `--case N` rebuilds exactly case N without generating the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opkit.errors import SpecError
from opkit.spec.dtypes import DTYPES, torch_dtype
from opkit.testing.constraints import DimRef, TestConfig

DEFAULT_RANKS = (1, 4)
# Shape templates for the "free" inputs (inputs whose shape no rule fixes); adapted to each
# input's rank range. Edge cases: one element, zero-size dims, primes (sizes that divide no thread
# or chunk count), the highest rank, and a large input that parallel_for really splits.
TEMPLATES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("one element", (1,)),
    ("rank 1", (7,)),
    ("empty", (0,)),
    ("primes", (13, 17)),
    ("rank 3", (2, 3, 5)),
    ("zero-size dim", (4, 0, 3)),
    ("one element, high rank", (1, 1, 1, 1)),
    ("highest rank", (2, 3, 4, 5)),
    ("large", (257, 1031)),
)
MID_SHAPE = ("mid", (3, 11))
# Tried, in order, for a mid-size case that valid= rejects with every listed attribute value: constraints such as
# "an even last dim" or "a multiple of 4" reject the odd primes of MID_SHAPE but not these.
OTHER_MID_SHAPES = (("mid, even dims", (4, 12)), ("mid, multiples of 8", (8, 16)))
VARIADIC_COUNTS = (1, 2, 3)  # the numbers of tensors a variadic input gets (2 in every other case)
MAX_ATTR_TRIES = 64  # attribute combinations tried for one case when valid= rejects it
VALID_REJECTED = "valid= rejected it"


@dataclass
class Plan:
    """What one case is, before any tensor exists."""

    combo: dict[str, str]
    attrs: dict[str, Any]
    template: tuple[str, tuple[int, ...]]
    present: dict[str, bool]
    variadic: int
    nonfinite: bool
    label: str
    custom: tuple[int, int] | None = None  # (generator index, sample index) of a custom sample
    varied: str | None = None  # the attribute this case is about (kept when valid= makes others change)


@dataclass
class Case:
    op: str
    index: int
    label: str
    combo: dict[str, str]
    args: dict[str, Any]  # parameter name -> tensor, list of tensors, None, or attribute value
    skipped: str | None = None  # why this case could not be made (a constraint could not be met)
    extra: dict = field(default_factory=dict)

    def describe(self) -> str:
        import torch

        parts = []
        for k, v in self.args.items():
            if isinstance(v, torch.Tensor):
                parts.append(f"{k}={_shape(v.shape)}")
            elif isinstance(v, list) and v and isinstance(v[0], torch.Tensor):
                parts.append(f"{k}=[{', '.join(_shape(t.shape) for t in v)}]")
            elif v is None:
                parts.append(f"{k}=absent")
            else:
                parts.append(f"{k}={v!r}")
        dt = ",".join(f"{k}={v}" for k, v in self.combo.items())
        return f"{dt + ' ' if dt else ''}{' '.join(parts)}"


def _shape(s: Any) -> str:
    return "x".join(str(int(d)) for d in s) if len(s) else "scalar"


def config_of(op: Any) -> TestConfig:
    return getattr(op, "test_config", None) or TestConfig()


def _rank_range(spec: Any, cfg: TestConfig, name: str) -> tuple[int, int]:
    inp = spec.input(name)
    if inp.type.rank is not None:
        return inp.type.rank, inp.type.rank
    lo, hi = cfg.ranks.get(name, DEFAULT_RANKS)
    lo = max(lo, cfg.min_rank(name))
    return lo, max(lo, hi)


def adapt(shape: tuple[int, ...], lo: int, hi: int) -> tuple[int, ...]:
    """A template shape made to fit a rank range: merge leading dims, or prepend 2s."""
    s = list(shape)
    while len(s) > hi and len(s) > 1:
        s = [s[0] * s[1]] + s[2:]
    if hi == 0:
        return ()
    while len(s) < lo:
        s = [2] + s
    return tuple(s)


def _default_attr(a: Any, cfg: TestConfig) -> Any:
    if a.name in cfg.attrs:
        return cfg.attrs[a.name][0]
    if not a.required:
        return list(a.default) if isinstance(a.default, tuple) else a.default
    guess = {"float": 1.5, "int": 2, "bool": False, "floats": [1.0, 2.0], "ints": [1, 2]}
    if a.kind in guess:
        return guess[a.kind]
    raise SpecError(f"required attribute {a.name!r} of {a.kind} has no value to test with",
                    where=cfg.where or None, expected=f"values to try, e.g. {a.name}.constrain(attrs={{{a.name!r}: [...]}})",
                    fix=f"add <op>.constrain(attrs={{{a.name!r}: [value, ...]}}) to the spec")


def _attr_variations(spec: Any, cfg: TestConfig, defaults: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for a in spec.attrs:
        if a.name in cfg.attrs:
            out += [(a.name, v) for v in cfg.attrs[a.name] if v != defaults[a.name]]
        elif a.kind == "float":
            d = defaults[a.name]
            out.append((a.name, d * 2.5 if d else 0.5))
        elif a.kind == "bool":
            out.append((a.name, not defaults[a.name]))
    return out


def plan_cases(op: Any) -> list[Plan]:
    """Every case of the op, in a fixed order (the case index is the position here)."""
    spec = op.spec
    cfg = config_of(op)
    defaults = {a.name: _default_attr(a, cfg) for a in spec.attrs}
    optional = [i.name for i in spec.inputs if i.optional]
    variadic = any(i.variadic for i in spec.inputs)
    has_float = any(DTYPES[spec.resolve(i.type, c)].is_float for c in spec.kernel_combos for i in spec.inputs)
    plans: list[Plan] = []
    all_present = {n: True for n in optional}
    for combo in spec.kernel_combos:
        if cfg.generate:
            for t in TEMPLATES:
                plans.append(Plan(combo, dict(defaults), t, dict(all_present), 2, False, t[0]))
            for name, value in _attr_variations(spec, cfg, defaults):
                attrs = dict(defaults) | {name: value}
                plans.append(Plan(combo, attrs, MID_SHAPE, dict(all_present), 2, False, f"{name}={value!r}",
                                  varied=name))
                plans.append(Plan(combo, attrs, TEMPLATES[0], dict(all_present), 2, False,
                                  f"{name}={value!r}, one element", varied=name))
            for n in optional:
                present = dict(all_present) | {n: False}
                plans.append(Plan(combo, dict(defaults), MID_SHAPE, present, 2, False, f"{n} absent"))
                plans.append(Plan(combo, dict(defaults), TEMPLATES[2], present, 2, False, f"{n} absent, empty"))
            if variadic:
                for count in (c for c in VARIADIC_COUNTS if c != 2):
                    plans.append(Plan(combo, dict(defaults), MID_SHAPE, dict(all_present), count, False,
                                      f"{count} variadic tensor(s)"))
            if has_float and cfg.nonfinite:
                plans.append(Plan(combo, dict(defaults), MID_SHAPE, dict(all_present), 2, True, "NaN/+Inf/-Inf"))
        for g in range(len(cfg.samples)):
            # the number of samples a custom generator makes is known only by running it
            plans.append(Plan(combo, dict(defaults), MID_SHAPE, dict(all_present), 2, False, "custom", (g, -1)))
    return plans


def _case_seed(seed: int, op_name: str, index: int) -> int:
    h = hashlib.sha256(f"{seed}:{op_name}:{index}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


class SampleContext:
    """What a custom sample generator (``@op.samples``) gets: dtypes, a seeded generator, helpers."""

    def __init__(self, op: Any, combo: dict[str, str], seed: int) -> None:
        import torch

        self.op = op
        self.spec = op.spec
        self.dtypes = dict(combo)
        self.rng = torch.Generator().manual_seed(seed)

    def dtype(self, name: str) -> Any:
        """The torch dtype of an input (by name) or of a type variable in this case."""
        if name in self.dtypes:
            return torch_dtype(self.dtypes[name])
        if name in DTYPES:
            return torch_dtype(name)
        return torch_dtype(self.spec.resolve(self.spec.input(name).type, self.dtypes))

    def randn(self, shape: Any, dtype: Any = "T") -> Any:
        import torch

        dt = self.dtype(dtype) if isinstance(dtype, str) else dtype
        return torch.randn(tuple(shape), generator=self.rng, dtype=torch.float64).to(dt)

    def randint(self, shape: Any, low: int, high: int, dtype: Any = "int64") -> Any:
        import torch

        dt = self.dtype(dtype) if isinstance(dtype, str) else dtype
        return torch.randint(low, high, tuple(shape), generator=self.rng, dtype=torch.int64).to(dt)

    def sample(self, *args: Any, label: str = "", **kwargs: Any) -> tuple[str, dict]:
        """One case: the op's arguments as in a call (attributes may be left at their defaults)."""
        values = self.op.bind(*args, **kwargs)
        return label, dict(zip(self.spec.param_order, values))


class _Impossible(Exception):
    pass


def _eval_ref(ref: DimRef, shapes: dict[str, tuple[int, ...]], attrs: dict[str, Any]) -> list[int]:
    if ref.kind == "const":
        return [ref.value]
    if ref.kind == "attr":
        return [attrs[ref.attr]]
    if ref.input not in shapes:
        raise _Impossible(f"the rule needs the shape of {ref.input!r}, which is absent or not known yet")
    s = shapes[ref.input]
    if ref.kind == "dims":
        return list(s[ref.start:ref.stop])
    if not -len(s) <= ref.index < len(s):
        raise _Impossible(f"{ref.input} has rank {len(s)}, the rule needs its dim {ref.index}")
    return [s[ref.index]]


def materialize(op: Any, plans: list[Plan], index: int, seed: int) -> list[Case]:
    """The case(s) of plan `index`. A custom plan expands to all the samples of its generator."""
    spec = op.spec
    cfg = config_of(op)
    plan = plans[index]
    cseed = _case_seed(seed, spec.qualname, index)
    if plan.custom is not None:
        ctx = SampleContext(op, plan.combo, cseed)
        out = []
        for k, item in enumerate(cfg.samples[plan.custom[0]](ctx) or ()):
            label, args = item if isinstance(item, tuple) else ("", item)
            if not isinstance(args, dict):
                raise SpecError(f"the sample generator of {spec.name} yielded {type(args).__name__}",
                                where=cfg.where or None, expected="s.sample(...) results",
                                fix="yield s.sample(x, ...) for each case")
            out.append(Case(spec.name, index, f"custom sample {k}" + (f": {label}" if label else ""),
                            dict(plan.combo), args, extra={"sample": k}))
        return out
    case = _make(op, plan, index, cseed, dict(plan.attrs))
    if case.skipped == VALID_REJECTED:
        # valid= may reject only this combination of attributes (or this shape): try the others before
        # skipping the case
        tried = 1
        for alt, attrs, shape in _retries(spec, cfg, plan):
            other = _make(op, alt, index, cseed, attrs)
            tried += 1
            if other.skipped is None:
                changed = ", ".join(f"{k}={v!r}" for k, v in attrs.items() if v != plan.attrs[k])
                notes = ([f"shape {shape}"] if shape else []) + ([changed] if changed else [])
                other.label += f" ({', '.join(notes)} for valid=)"
                return [other]
        if tried > 1:
            case.skipped = f"{VALID_REJECTED} (and {tried - 1} other combination(s) of the listed attribute values" \
                           " and shapes)"
    return [case]


def _retries(spec: Any, cfg: TestConfig,
             plan: Plan) -> Iterator[tuple[Plan, dict[str, Any], tuple[int, ...] | None]]:
    """What a case that valid= rejected tries next, in order, as (plan, attributes, the other shape or None): the
    other listed attribute values; then, for a mid-size case, other mid-size shapes, with the case's own
    attributes first."""
    alternatives = _attr_alternatives(spec, cfg, plan)
    for attrs in alternatives:
        yield plan, attrs, None
    if plan.template == MID_SHAPE:
        for template in OTHER_MID_SHAPES:
            alt = dataclasses.replace(plan, template=template)
            for attrs in [dict(plan.attrs), *alternatives]:
                yield alt, attrs, template[1]


def _attr_alternatives(spec: Any, cfg: TestConfig, plan: Plan) -> list[dict[str, Any]]:
    """Other attribute values for a case that valid= rejected: every combination of the values listed in
    constrain(attrs=...), in order, except the attribute the case is about; at most MAX_ATTR_TRIES."""
    names = [a.name for a in spec.attrs if a.name in cfg.attrs and a.name != plan.varied]
    if not names:
        return []
    out = []
    for values in itertools.product(*(cfg.attrs[n] for n in names)):
        attrs = dict(plan.attrs) | dict(zip(names, values))
        if attrs != plan.attrs:
            out.append(attrs)
        if len(out) == MAX_ATTR_TRIES:
            break
    return out


def _shapes(spec: Any, cfg: TestConfig, plan: Plan, template: tuple[int, ...], attrs: dict) -> dict:
    """The shape of every present input: free inputs from the template, constrained ones from their rules."""
    shapes: dict[str, tuple[int, ...]] = {}
    pending = [i for i in spec.inputs if not (i.optional and not plan.present.get(i.name, True))]
    for i in pending:
        if i.name not in cfg.shapes:
            lo, hi = _rank_range(spec, cfg, i.name)
            shapes[i.name] = adapt(template, lo, hi)
    todo = [i for i in pending if i.name in cfg.shapes]
    while todo:  # constrained inputs in dependency order
        progressed = False
        for i in list(todo):
            try:
                shapes[i.name] = tuple(d for r in cfg.shapes[i.name] for d in _eval_ref(r, shapes, attrs))
            except _Impossible:
                continue
            todo.remove(i)
            progressed = True
        if not progressed:
            raise _Impossible("the shape rules of " + ", ".join(i.name for i in todo) +
                              " refer to absent inputs or to each other")
    return shapes


def _over_budget(spec: Any, cfg: TestConfig, plan: Plan, shapes: dict) -> str | None:
    """Why these shapes exceed the element budget, or None."""
    total = 0
    for i in spec.inputs:
        if i.name not in shapes:
            continue
        n = math.prod(shapes[i.name])
        if n > cfg.max_elements:
            return f"{i.name} would have {n:,} elements (max_elements={cfg.max_elements:,})"
        total += n * (plan.variadic if i.variadic else 1)
    if total > cfg.max_case_elements:
        return f"the inputs would have {total:,} elements together (max_case_elements={cfg.max_case_elements:,})"
    return None


def fit_shapes(spec: Any, cfg: TestConfig, plan: Plan, attrs: dict) -> tuple[dict, bool]:
    """The case's input shapes within the element budget: while a tensor (or the whole case) is too large,
    halve the largest dim of the template the free inputs are made from. Nothing is allocated here.
    Returns (shapes, whether they were shrunk)."""
    template = list(plan.template[1])
    shapes = _shapes(spec, cfg, plan, tuple(template), attrs)
    shrunk = False
    while (why := _over_budget(spec, cfg, plan, shapes)) is not None:
        k = max(range(len(template)), key=lambda j: template[j]) if template else None
        if k is None or template[k] <= 1:
            raise _Impossible(f"over the element budget even at the smallest shape: {why}; raise it with "
                              f"constrain(max_elements=..., max_case_elements=...) or bound the attributes")
        template[k] = max(1, template[k] // 2)
        shrunk = True
        shapes = _shapes(spec, cfg, plan, tuple(template), attrs)
    return shapes, shrunk


def _make(op: Any, plan: Plan, index: int, cseed: int, attrs: dict[str, Any]) -> Case:
    """One generated case with these attribute values (its tensors from a generator seeded by cseed)."""
    import torch

    spec = op.spec
    cfg = config_of(op)
    g = torch.Generator().manual_seed(cseed)
    args: dict[str, Any] = {}
    case = Case(spec.name, index, plan.label, dict(plan.combo), args,
                extra={"nonfinite": plan.nonfinite, "variadic": plan.variadic})
    try:
        shapes, shrunk = fit_shapes(spec, cfg, plan, attrs)
        if shrunk:
            case.label += " (shrunk to the element budget)"
        for i in spec.inputs:
            if i.optional and not plan.present.get(i.name, True):
                args[i.name] = None
                continue
            dt = spec.resolve(i.type, plan.combo)
            if i.variadic:
                args[i.name] = [_tensor(i.name, shapes[i.name], dt, cfg, shapes, attrs, g, plan.nonfinite)
                                for _ in range(plan.variadic)]
            else:
                args[i.name] = _tensor(i.name, shapes[i.name], dt, cfg, shapes, attrs, g, plan.nonfinite)
    except _Impossible as exc:
        case.skipped = str(exc)
    for a in spec.attrs:
        args[a.name] = attrs[a.name]
    ordered = {n: args.get(n) for n in spec.param_order}
    case.args = ordered
    if case.skipped is None and cfg.valid is not None and not cfg.valid(dict(ordered)):
        case.skipped = VALID_REJECTED
    return case


def _tensor(name: str, shape: tuple[int, ...], dt: str, cfg: TestConfig, shapes: dict, attrs: dict, g: Any,
            nonfinite: bool) -> Any:
    import torch

    tdt = torch_dtype(dt)
    info = DTYPES[dt]
    rule = cfg.values.get(name)
    n = math.prod(shape)
    if isinstance(rule, list):
        idx = torch.randint(0, len(rule), shape, generator=g)
        t = torch.tensor(rule, dtype=torch.float64 if info.is_float else torch.int64)[idx].to(tdt)
    elif isinstance(rule, tuple):
        lo = _eval_ref(rule[0], shapes, attrs)[0]
        hi = _eval_ref(rule[1], shapes, attrs)[0]
        if info.is_float:
            t = (torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo).to(tdt)
        else:
            lo, hi = math.ceil(lo), math.ceil(hi)
            if hi <= lo and n > 0:
                raise _Impossible(f"values of {name} must lie in [{lo}, {hi}), which is empty")
            t = torch.randint(lo, max(hi, lo + 1), shape, generator=g, dtype=torch.int64).to(tdt)
    elif info.is_float:
        t = torch.randn(shape, generator=g, dtype=torch.float64).to(tdt)
    elif dt == "bool":
        t = torch.randint(0, 2, shape, generator=g).bool()
    elif dt == "uint8":
        t = torch.randint(0, 21, shape, generator=g, dtype=torch.int64).to(tdt)
    else:
        t = torch.randint(-10, 11, shape, generator=g, dtype=torch.int64).to(tdt)
    if name in cfg.sorted and t.dim() > 0:
        t = torch.sort(t, dim=-1).values
    if nonfinite and info.is_float and n > 0 and not isinstance(rule, list):
        flat = t.reshape(-1)
        flat[0] = float("nan")
        flat[n // 2] = float("inf")
        flat[n - 1] = float("-inf")
        t = flat.reshape(shape)
    return t.contiguous()
