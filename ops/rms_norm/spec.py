"""RmsNorm: root-mean-square normalisation over the last axis, scaled by a learned weight.

    y = x / sqrt(mean(x**2, axis=-1) + epsilon) * weight

x: [..., D]; weight: [D]; y has x's shape and dtype. float16 inputs are computed in float32.
"""

import struct

import torch

import opkit
from opkit import Tensor


@opkit.op("RmsNorm", domain="opkit.examples", types={"T": ("float16", "float32", "float64")}, shapes={"y": "x"})
def rms_norm(x: Tensor["T"], weight: Tensor["T"], epsilon: float = 1e-6) -> Tensor["T"]:
    """x * rsqrt(mean(x^2 over the last axis) + epsilon) * weight, accumulated in float (double for float64)."""
    # The ONNX attribute is a float32: use the same value here so eager and ORT agree exactly.
    epsilon = struct.unpack("f", struct.pack("f", epsilon))[0]
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    xf = x.to(acc)
    inv_rms = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + epsilon)
    return (xf * inv_rms * weight.to(acc)).to(x.dtype)


# Inputs for `opkit test`: weight is [D] with D = x's last dim.
rms_norm.constrain(shapes={"weight": ("x[-1]",)}, attrs={"epsilon": [1e-6, 1e-2]})


@rms_norm.baseline
def _rms_norm_in_torch(x, weight, epsilon=1e-6):
    """torch's own op for the same maths: `opkit bench RmsNorm --runtime torch` times the kernel against it."""
    return torch.nn.functional.rms_norm(x, (x.shape[-1],), weight, epsilon)
