"""UniqueConsecutive: collapse runs of equal values of a 1-D tensor; count each run."""

import torch

import opkit
from opkit import Tensor


@opkit.op("UniqueConsecutive", domain="opkit.examples", outputs=("values", "counts"),
          shapes={"values": (None,), "counts": (None,)})
def unique_consecutive(x: Tensor["int64", 1]) -> tuple[Tensor["int64"], Tensor["int64"]]:
    """values[j] is the value of the j-th run of equal consecutive entries, counts[j] its length.

    The output size depends on the data (the number of runs): the kernel decides it.
    """
    values, counts = torch.unique_consecutive(x, return_counts=True)
    return values, counts


@unique_consecutive.register_fake
def _unique_consecutive_fake(x):
    n = torch.library.get_ctx().new_dynamic_size()
    torch._check(n <= x.shape[0])
    return x.new_empty(n), x.new_empty(n)


# `opkit test`: few distinct values, so that runs of equal entries occur (README: "Constraining the generated inputs")
unique_consecutive.constrain(values={"x": [0, 1, 2]})
