"""``@opkit.op``: the decorator users write, and the callable op it returns."""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from opkit.spec.model import OpSpec
from opkit.spec.parse import parse_op

_recorder = threading.local()
# Every op defined in this process, by qualname: the exporter needs a translation for each op
# that may appear in a model, whichever workspace or package defined it.
_registry: dict[str, "Op"] = {}


def registered_ops() -> list["Op"]:
    return list(_registry.values())


@contextlib.contextmanager
def record_calls() -> Iterator[set[str]]:
    """Collect the qualnames of every opkit op called inside the block (used by verify)."""
    calls: set[str] = set()
    prev = getattr(_recorder, "calls", None)
    _recorder.calls = calls
    try:
        yield calls
    finally:
        _recorder.calls = prev


class Op:
    """An opkit op: call it like a torch function. ``.spec`` is its frozen OpSpec."""

    def __init__(self, spec: OpSpec, reference: Callable) -> None:
        self.spec = spec
        self.reference = reference
        self._signature = inspect.signature(reference)
        self._arity = len(spec.param_order)
        self._torch_op, self._state = _make_torch_op(spec, reference)
        functools.update_wrapper(self, reference)
        self.test_config = None  # constraints for `opkit test` (opkit.testing.constraints.TestConfig)
        self.bench_shapes: list[dict[str, tuple[int, ...]]] = []  # `opkit bench`'s default cases
        self.torch_baseline: Callable | None = None  # torch's own ops for the same maths (`opkit bench --runtime torch`)
        _registry[spec.qualname] = self

    @property
    def torch_op(self) -> Any:
        """The torch.library op (``torch.ops.<namespace>.<name>``)."""
        return self._torch_op

    def register_fake(self, fn: Callable) -> Callable:
        """Override the fake implementation (for outputs whose size depends on the data)."""
        self._state["fake"] = fn
        return fn

    def constrain(self, **rules: Any) -> "Op":
        """Constrain the inputs `opkit test` generates: shapes=, values=, sorted=, attrs=, ranks=, valid=,
        nonfinite=, generate=, rtol=, atol=, max_elements=, max_case_elements= (see docs/testing.md, "Constraining
        the generated inputs"). Returns the op."""
        from opkit.testing.constraints import build_config

        self.test_config = build_config(self.spec, base=self.test_config, **rules)
        return self

    def bench(self, *, shapes: Sequence[Mapping[str, Sequence[int]]]) -> "Op":
        """`opkit bench`'s default cases: one dict of input shapes per case, e.g.
        ``[{"x": (1, 1024), "weight": (1024, 1024)}, ...]``; inputs left out follow the constrain() rules
        (``bias: ("weight[0]",)``). Returns the op."""
        from opkit.errors import SpecError

        where = _caller()
        names = {i.name for i in self.spec.inputs if not i.variadic}
        cases = []
        for case in shapes if isinstance(shapes, (list, tuple)) else [shapes]:
            if not isinstance(case, Mapping) or not case:
                raise SpecError(f"{self.spec.name}.bench(shapes=...): each case is a dict of input shapes",
                                where=where, expected='{"x": (1, 1024), "weight": (1024, 1024)}', got=repr(case))
            fixed = {}
            for name, shape in case.items():
                if name not in names:
                    raise SpecError(f"{self.spec.name}.bench(shapes=...): {name!r} is not a tensor input",
                                    where=where, expected="one of " + ", ".join(sorted(names)), got=repr(name))
                if not isinstance(shape, (list, tuple)) or not all(
                        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
                    raise SpecError(f"{self.spec.name}.bench(shapes=...): the shape of {name!r} must be a "
                                    "tuple of ints >= 0", where=where, expected="e.g. (512, 4096)", got=repr(shape))
                fixed[name] = tuple(shape)
            cases.append(fixed)
        self.bench_shapes = cases
        return self

    def samples(self, fn: Callable) -> Callable:
        """Decorator: a generator of extra test cases, ``fn(s) -> iterable of s.sample(...)``."""
        from opkit.testing.constraints import TestConfig

        if self.test_config is None:
            self.test_config = TestConfig()
        self.test_config.samples.append(fn)
        return fn

    def baseline(self, fn: Callable) -> Callable:
        """Decorator: the same maths in torch's own ops (same parameters as the reference), the column (e)
        that `opkit bench OP --runtime torch` times the native kernel against. Returns fn."""
        self.torch_baseline = fn
        return fn

    def bind(self, *args: Any, **kwargs: Any) -> list[Any]:
        """Arguments in spec order, defaults filled in, lists as lists."""
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = []
        for name in self.spec.param_order:
            v = bound.arguments[name]
            values.append(list(v) if isinstance(v, tuple) else v)
        return values

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        calls = getattr(_recorder, "calls", None)
        if calls is not None:
            calls.add(self.spec.qualname)
        if not kwargs and len(args) == self._arity and tuple not in map(type, args):
            return self._torch_op(*args)  # every argument in order: nothing to bind (a third of a 1K call)
        return self._torch_op(*self.bind(*args, **kwargs))

    def __repr__(self) -> str:
        return f"<opkit op {self.spec.qualname}: {self.spec.signature}>"


def _caller() -> str:
    frame = inspect.stack()[2]
    return f"{frame.filename}:{frame.lineno}"


def _make_torch_op(spec: OpSpec, reference: Callable) -> tuple[Any, dict]:
    from opkit.torchop import make_torch_op

    return make_torch_op(spec, reference)


def op(
    name: str,
    *,
    domain: str,
    types: Mapping[str, str | Sequence[str]] | None = None,
    outputs: Sequence[str] | None = None,
    shapes: Mapping[str, Any] | None = None,
    version: int = 1,
    adopts: str | None = None,
    constant: Sequence[str] | str | None = None,
    libraries: Sequence[str] | str | None = None,
    flops: str | None = None,
    bytes: str | None = None,
) -> Callable[[Callable], Op]:
    """Declare an op from its reference implementation.

    name: the ONNX op type (CamelCase). domain: its ONNX domain. types: type variables and the
    dtypes each allows. outputs: output names (default "y", or "y0", "y1", ...). shapes: output
    shape rules, e.g. ``{"y": "x"}`` or ``{"values": ("x[:-1]", "k")}``. version: the domain's opset version.
    adopts: a torch op ("aten::cummax", "mylib::scale.twice") that this op replaces at export: the model
    keeps calling the original op, and each call becomes this op's custom node (see ``opkit adopt``).
    constant: inputs that are constant in a model (weights, initializers): the kernel prepares state from
    them once per node (docs/kernel-state.md). libraries: native libraries the kernel links, e.g.
    ("openblas",). flops / bytes: the work of one call as an expression over the inputs, e.g.
    "2 * x.numel() // x[-1] * weight[0] * weight[1]" (`opkit bench` prints GFLOP/s and GB/s).
    """

    def wrap(fn: Callable) -> Op:
        spec = parse_op(fn, name=name, domain=domain, version=version, types=types, outputs=outputs,
                        shapes=shapes, adopts=adopts, constant=constant, libraries=libraries, flops=flops,
                        bytes=bytes)
        return Op(spec, fn)

    return wrap
