import opkit
from opkit import Tensor


@opkit.op("WeightedSum", domain="com.mycompany", types={"T": ("float32", "float64")})
def weighted_sum(xs: list[Tensor["T"]], weights: list[float]) -> Tensor["T"]:
    return sum(w * x for w, x in zip(weights, xs))


# --8<-- [start:samples]
@weighted_sum.samples
def _weighted_sum_samples(s):               # s.dtypes, s.rng, s.randn(shape, "T"), s.randint(shape, lo, hi, dtype)
    for weights in ([1.5], [0.5, -2.0, 3.0]):
        yield s.sample([s.randn((3, 11)) for _ in weights], weights, label=f"{len(weights)} tensors")
# --8<-- [end:samples]
