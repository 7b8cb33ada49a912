"""ScaledGelu: GELU (exact, erf form) followed by a scale, fused into one pass."""

import torch

import opkit
from opkit import Tensor


@opkit.op("ScaledGelu", domain="opkit.examples", types={"T": ("float32", "float64")}, shapes={"y": "x"})
def scaled_gelu(x: Tensor["T"], alpha: float = 1.0) -> Tensor["T"]:
    """GELU(x) * alpha, exact (erf) form."""
    return torch.nn.functional.gelu(x) * alpha
