"""Cummax: adopted from aten::cummax, which torch.onnx.export (torch 2.13.0) cannot translate.

`opkit adopt` wrote this spec from the op's schema
    aten::cummax(Tensor self, int dim) -> (Tensor values, Tensor indices)
and from how model.py calls it: 1 call, first in the model (RunningMaxHead) at model.py:19.
At export opkit maps every call of aten::cummax to this op's custom node (`adopts=` below), so the model
needs no edit. The body is the reference: it calls the original op. The kernel goes in cummax.cc.
"""

import torch

import opkit
from opkit import Tensor


@opkit.op(
    "Cummax",
    domain="com.example",
    adopts="aten::cummax",
    types={"T": ("float32",)},
    outputs=("values", "indices"),
    shapes={"values": "x", "indices": "x"},
)
def cummax(x: Tensor["T"], dim: int) -> tuple[Tensor["T"], Tensor["int64"]]:
    """Adopted from aten::cummax: the original op is the reference."""
    return torch.ops.aten.cummax.default(x, dim)


# Added by hand for `opkit test` (not needed by verify): the axes to try, and only those the input has.
cummax.constrain(attrs={"dim": [0, -1, 1, 2]}, valid=lambda a: -len(a["x"].shape) <= a["dim"] < len(a["x"].shape))
