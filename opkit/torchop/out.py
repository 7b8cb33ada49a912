"""The out variant of an opkit op: ``<op>.out(..., *, Tensor(a!) out0, ...) -> (Tensor(a!), ...)``.

Derived from the spec and registered with torch beside the functional op. ExecuTorch's memory
planner needs it: ``to_executorch()`` replaces each functional call by its out variant (the outputs
become preallocated buffers passed in), and the ExecuTorch kernel library registers a kernel under
that name (``<namespace>::<op>.out``). In eager mode and on fake tensors it runs the functional op
and copies the results into the given outputs.
"""

from __future__ import annotations

import string
import threading
from typing import Any

import torch

from opkit.spec.model import OpSpec, snake_case
from opkit.torchop import torch_schema

OVERLOAD = "out"
_lock = threading.Lock()
_libraries: dict[str, Any] = {}  # namespace -> torch.library.Library (kept alive: dropping it deregisters)
_DONE: dict[str, Any] = {}  # torch_qualname -> the out OpOverload


def out_names(spec: OpSpec) -> list[str]:
    return [f"out{k}" for k in range(len(spec.outputs))]


def out_schema(spec: OpSpec) -> str:
    """The out variant's schema, without its name: the functional parameters, then one keyword-only
    mutable tensor per output, returned (aliased) in output order."""
    params = torch_schema(spec).split(" -> ")[0][1:-1]
    letters = string.ascii_lowercase
    outs = [f"Tensor({letters[k]}!) {n}" for k, n in enumerate(out_names(spec))]
    rets = [f"Tensor({letters[k]}!)" for k in range(len(spec.outputs))]
    ret = rets[0] if len(rets) == 1 else f"({', '.join(rets)})"
    head = f"{params}, *, " if params else "*, "
    return f"({head}{', '.join(outs)}) -> {ret}"


def register_out_variant(spec: OpSpec) -> Any:
    """Register ``<namespace>::<op>.out`` with torch once per process; return its OpOverload.

    The functional op (opkit.torchop.make_torch_op) must exist already: the out variant calls it."""
    with _lock:
        if spec.torch_qualname in _DONE:
            return _DONE[spec.torch_qualname]
        ns, name = spec.torch_namespace, snake_case(spec.name)
        lib = _libraries.get(ns)
        if lib is None:
            lib = _libraries[ns] = torch.library.Library(ns, "FRAGMENT")  # noqa: TOR901 - owned by opkit
        lib.define(f"{name}.{OVERLOAD}{out_schema(spec)}")
        functional = getattr(getattr(torch.ops, ns), name).default
        n_args = len(spec.param_order)
        single = len(spec.outputs) == 1

        def impl(*args: Any, **kwargs: Any) -> Any:
            outs = [kwargs[n] for n in out_names(spec)] if kwargs else list(args[n_args:])
            result = functional(*args[:n_args])
            results = (result,) if single else tuple(result)
            for out, r in zip(outs, results):
                out.resize_(r.shape)
                out.copy_(r)
            return outs[0] if single else tuple(outs)

        def fake(*args: Any, **kwargs: Any) -> Any:
            outs = [kwargs[n] for n in out_names(spec)] if kwargs else list(args[n_args:])
            return outs[0] if single else tuple(outs)

        lib.impl(f"{name}.{OVERLOAD}", impl, "CompositeExplicitAutograd")
        overload = getattr(getattr(getattr(torch.ops, ns), name), OVERLOAD)
        torch.library.register_fake(overload, fake, lib=lib)
        _DONE[spec.torch_qualname] = overload
        return overload
