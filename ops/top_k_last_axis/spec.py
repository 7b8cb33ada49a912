"""TopKLastAxis: the k largest (or smallest) entries along the last axis, with their indices."""

import torch

import opkit
from opkit import Tensor


@opkit.op("TopKLastAxis", domain="opkit.examples",
          types={"T": ("float16", "bfloat16", "float32", "float64", "int32", "int64")},
          outputs=("values", "indices"), shapes={"values": ("x[:-1]", "k"), "indices": ("x[:-1]", "k")})
def top_k_last_axis(x: Tensor["T"], k: int, largest: bool = True) -> tuple[Tensor["T"], Tensor["int64"]]:
    """values, indices = the k largest (largest=True) or smallest entries of each row of the last axis, sorted.

    Deterministic order: by value, then ties by the lower index first. NaN counts as larger than
    every number (as in torch.sort/torch.topk): first when largest=True, last otherwise.
    k must be at most the size of the last axis.
    """
    n = x.shape[-1]
    if k > n:
        raise ValueError(f"TopKLastAxis: k={k} is larger than the last axis ({n})")
    values, indices = torch.sort(x, dim=-1, descending=largest, stable=True)
    return values[..., :k].contiguous(), indices[..., :k].contiguous()


# `opkit test`: k at most the size of the last axis (README: "Constraining the generated inputs")
top_k_last_axis.constrain(attrs={"k": [1, 3, 0]}, valid=lambda a: a["k"] <= a["x"].shape[-1])
