"""ScaledGelu: GELU (exact, erf form) followed by a scale, fused into one pass."""

import torch

import opkit
from opkit import Tensor


@opkit.op("ScaledGelu", domain="opkit.examples", types={"T": ("float32", "float64")}, shapes={"y": "x"})
def scaled_gelu(x: Tensor["T"], alpha: float = 1.0) -> Tensor["T"]:
    """GELU(x) * alpha, exact (erf) form."""
    # Written out rather than F.gelu: torch's vectorised float32 gelu returns NaN for +Inf (float64
    # returns +Inf); this form gives +Inf for both, as the kernel does (`opkit test` checks Inf inputs).
    return x * 0.5 * (1.0 + torch.erf(x * 0.7071067811865476)) * alpha


@scaled_gelu.baseline
def _scaled_gelu_in_torch(x, alpha=1.0):
    """torch's own ops for the same maths: `opkit bench ScaledGelu --runtime torch` times the kernel against it."""
    return torch.nn.functional.gelu(x) * alpha
