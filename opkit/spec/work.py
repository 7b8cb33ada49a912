"""The work of one call (``flops=`` / ``bytes=`` in a spec), evaluated on a case's shapes for `opkit bench`.

An expression names the inputs and attributes: ``x[-1]`` is a dim, ``x.numel()`` the element count,
``x.nbytes`` / ``x.itemsize`` the sizes in bytes, ``x.rank`` the rank. An absent optional input has
every size 0. The expression was checked when the spec was parsed (opkit.spec.parse.check_work_expr).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


class Dims:
    """What an expression sees of one tensor: its shape and element size."""

    def __init__(self, shape: Sequence[int], itemsize: int) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.itemsize = int(itemsize)
        self.rank = len(self.shape)

    def __getitem__(self, i: int) -> int:
        return self.shape[i] if self.shape else 0

    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel() * self.itemsize


ABSENT = Dims((0,), 0)


def evaluate(expr: str, tensors: Mapping[str, Dims | None], attrs: Mapping[str, Any]) -> float:
    names: dict[str, Any] = dict(attrs)
    names.update({k: (ABSENT if v is None else v) for k, v in tensors.items()})
    return float(eval(compile(expr, "<work>", "eval"), {"__builtins__": {}}, names))  # checked at parse time
