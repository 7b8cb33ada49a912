"""Turn an OpSpec and its reference function into a real torch custom op (torch.library).

The op works in eager mode, under torch.export and torch.compile. Its fake
(meta) implementation runs the reference on fake tensors unless the spec
registers its own (``@my_op.register_fake``) for data-dependent shapes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch

from opkit.errors import SpecError
from opkit.spec.model import OpSpec
from opkit.torchop.schema import torch_schema

_lock = threading.Lock()
# torch_qualname -> (source file, torch op). torch refuses to define an op twice per process;
# importing the same spec file again (e.g. under another module name) reuses its op.
_DEFINED: dict[str, tuple[str, Any, dict]] = {}


def _unalias(result: Any, args: tuple) -> Any:
    """torch custom ops must not return their inputs: copy any output that is an input."""
    inputs = [a for a in args if isinstance(a, torch.Tensor)]
    for a in args:
        if isinstance(a, (list, tuple)):
            inputs.extend(t for t in a if isinstance(t, torch.Tensor))

    def fix(t: Any) -> Any:
        # an input itself, or a view (x[0], x.view(...)) that may alias one
        if isinstance(t, torch.Tensor) and (t._base is not None or any(t is i for i in inputs)):
            return t.clone()
        return t

    if isinstance(result, tuple):
        return tuple(fix(t) for t in result)
    return fix(result)


def make_torch_op(spec: OpSpec, reference: Callable) -> tuple[Any, dict]:
    """Define ``spec.torch_qualname`` once per process; return the torch op and its mutable state.

    ``state["reference"]`` is the eager implementation, ``state["fake"]`` an optional user fake
    implementation (``@my_op.register_fake``); both are looked up at call time.
    """
    names = spec.param_order
    src = spec.loc.file if spec.loc else "?"
    with _lock:
        if spec.torch_qualname in _DEFINED:
            prev_src, prev_op, state = _DEFINED[spec.torch_qualname]
            if prev_src != src:
                raise SpecError(f"op {spec.qualname} is defined twice", where=spec.loc,
                                expected="one definition per op name and domain",
                                got=f"also defined in {prev_src}", fix="rename one of them")
            state["reference"] = reference  # the same file imported again: keep the newest code
            state["fake"] = None
            return prev_op, state
        state: dict = {"reference": reference, "fake": None}

        def impl(*args: Any) -> Any:
            return _unalias(state["reference"](**dict(zip(names, args))), args)

        def fake(*args: Any) -> Any:
            fn = state["fake"] or state["reference"]
            return _unalias(fn(**dict(zip(names, args))), args)

        op = torch.library.custom_op(spec.torch_qualname, impl, mutates_args=(), schema=torch_schema(spec))
        op.register_fake(fake)
        _DEFINED[spec.torch_qualname] = (src, op, state)
        return op, state
