"""WeightedSum: y = sum_i weights[i] * xs[i], over any number of same-shaped tensors."""

import torch

import opkit
from opkit import Tensor


@opkit.op("WeightedSum", domain="opkit.examples", types={"T": ("float16", "bfloat16", "float32", "float64")})
def weighted_sum(xs: list[Tensor["T"]], weights: list[float]) -> Tensor["T"]:
    """y = weights[0] * xs[0] + weights[1] * xs[1] + ..., in that order.

    One weight per tensor; all tensors have the same shape (no broadcasting). The sum is taken
    in float32 for the 16-bit dtypes. Weights are float32 (an ONNX float attribute).
    """
    if len(weights) != len(xs):
        raise ValueError(f"WeightedSum: {len(xs)} tensor(s) but {len(weights)} weight(s); give one weight per tensor")
    for i, x in enumerate(xs[1:], 1):
        if x.shape != xs[0].shape:
            raise ValueError(f"WeightedSum: xs[{i}] has shape {tuple(x.shape)}, xs[0] has {tuple(xs[0].shape)}")
    acc = torch.float64 if xs[0].dtype == torch.float64 else torch.float32
    w = torch.tensor(weights, dtype=torch.float32).to(acc)  # as the kernel sees them
    y = w[0] * xs[0].to(acc)
    for i in range(1, len(xs)):
        y = y + w[i] * xs[i].to(acc)
    return y.to(xs[0].dtype)


# `opkit test`: one weight per tensor, for 1 to 4 tensors (README: "Constraining the generated inputs")
weighted_sum.constrain(valid=lambda a: len(a["weights"]) == len(a["xs"]))


@weighted_sum.samples
def _weighted_sum_samples(s):
    for weights in ([1.5], [0.5, -2.0, 3.0], [0.25, 1.0, -3.0, 2.0]):
        for shape in ((7,), (0, 3), (3, 11), (2, 3, 4, 5), (257, 1031)):
            yield s.sample([s.randn(shape) for _ in weights], weights, label=f"{len(weights)} tensors, {shape}")
