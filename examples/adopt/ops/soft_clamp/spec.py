"""SoftClamp: adopted from fancylib::soft_clamp, which torch.onnx.export (torch 2.13.0) cannot translate.

`opkit adopt` wrote this spec from the op's schema
    fancylib::soft_clamp(Tensor x, float limit=3.) -> Tensor
and from how model.py calls it: 1 call, first in the model (RunningMaxHead) at model.py:20.
At export opkit maps every call of fancylib::soft_clamp to this op's custom node (`adopts=` below), so the model
needs no edit. The body is the reference: it calls the original op. The kernel goes in soft_clamp.cc.
"""

import torch
import fancylib  # noqa: F401  (defines torch.ops.fancylib.soft_clamp)

import opkit
from opkit import Tensor


@opkit.op(
    "SoftClamp",
    domain="com.example",
    adopts="fancylib::soft_clamp",
    types={"T": ("float32",)},
    shapes={"y": "x"},
)
def soft_clamp(x: Tensor["T"], limit: float = 3.0) -> Tensor["T"]:
    """Adopted from fancylib::soft_clamp: the original op is the reference."""
    return torch.ops.fancylib.soft_clamp.default(x, limit)
