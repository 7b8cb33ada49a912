"""LinearAct: a linear layer fused with its activation, y = act(x @ weight.T + bias).

x: [..., in_features]; weight: [out_features, in_features] (torch.nn.functional.linear's layout);
bias: [out_features] or absent; y: [..., out_features].
activation: "relu", "gelu" (exact, erf form), "silu" or "none". Any other value is rejected
when the ONNX Runtime session is created.
"""

from typing import Literal

import torch

import opkit
from opkit import Tensor


@opkit.op("LinearAct", domain="opkit.examples", types={"T": ("float32", "float64")},
          shapes={"y": ("x[:-1]", "weight[0]")}, constant=("weight", "bias"), libraries=("openblas",),
          flops="2 * x.numel() * weight[0]")
def linear_act(x: Tensor["T"], weight: Tensor["T"], bias: Tensor["T"] | None = None,
               activation: Literal["relu", "gelu", "silu", "none"] = "gelu") -> Tensor["T"]:
    """act(x @ weight.T + bias), act one of relu / gelu (erf) / silu / none."""
    y = torch.nn.functional.linear(x, weight, bias)
    if activation == "relu":
        return torch.relu(y)
    if activation == "gelu":
        # erf form written out: torch's float32 gelu(+inf) is NaN, the maths (and the kernel) give +inf
        return 0.5 * y * (1.0 + torch.erf(y * 0.7071067811865476))
    if activation == "silu":
        return torch.nn.functional.silu(y)
    if activation == "none":
        return y
    raise ValueError(f"LinearAct: activation must be 'relu', 'gelu', 'silu' or 'none', got {activation!r}")


# Inputs for `opkit test`: weight [out, in] with in = x's last dim, bias [out]; every activation.
linear_act.constrain(shapes={"weight": (5, "x[-1]"), "bias": ("weight[0]",)},
                     attrs={"activation": ["gelu", "relu", "silu", "none"]})

# `opkit bench LinearAct`: x [M, K] through a layer weight [N, K], from one token through a 1024 layer up to
# a batch of 512 through a 4096 x 4096 layer (weight and bias are initializers, as in a real model).
linear_act.bench(shapes=[
    {"x": (1, 1024), "weight": (1024, 1024)},
    {"x": (1, 4096), "weight": (4096, 4096)},
    {"x": (16, 1024), "weight": (4096, 1024)},
    {"x": (64, 1024), "weight": (1024, 1024)},
    {"x": (128, 4096), "weight": (4096, 4096)},
    {"x": (512, 4096), "weight": (4096, 4096)},
])


@linear_act.samples
def _linear_act_paths(s):
    """Layer-sized cases that reach each path of the kernel: with AVX-512 the packed weight (1-6 rows two
    panels at a time; tiles of 12 rows and fewer, the threads splitting the panels or, for many rows and few
    outputs, the rows; a last panel narrower than the others, several blocks of k with a shorter last one);
    without it (OPKIT_LINEAR_ACT_NO_AVX512=1) one row (OpenBLAS's GEMV), a few rows over a weight larger than
    the caches (the hand-written dot products) and many rows split by columns or by rows (OpenBLAS's GEMM)."""
    for x_shape, n, act, bias in (((1, 300), 257, "gelu", True), ((3, 1024), 2100, "silu", True),
                                  ((40, 96), 200, "relu", False), ((300, 64), 40, "gelu", True),
                                  ((2, 5, 33), 3, "none", True), ((20, 700), 45, "gelu", True)):
        k = x_shape[-1]
        yield s.sample(s.randn(x_shape), s.randn((n, k)), s.randn((n,)) if bias else None, act,
                       label=f"x={x_shape} N={n} {act}")


@linear_act.baseline
def _linear_act_in_torch(x, weight, bias=None, activation="gelu"):
    """torch's own ops for the same maths (F.linear then F.gelu / relu / silu): `opkit bench LinearAct --runtime
    torch` times the kernel against it."""
    y = torch.nn.functional.linear(x, weight, bias)
    acts = {"gelu": torch.nn.functional.gelu, "relu": torch.relu, "silu": torch.nn.functional.silu}
    return acts[activation](y) if activation in acts else y
