import opkit
from opkit import Tensor


# --8<-- [start:spec]
@opkit.op("Mix", domain="test.sig", types={"T": ("float32", "float64"), "I": ("int32", "int64")},
          outputs=("y", "picked"), shapes={"y": "x", "picked": ("ids[0]", "k")})
def mix(x: Tensor["T"], ids: Tensor["I", 2], bias: Tensor["T"] | None, xs: list[Tensor["T"]],
        weights: list[float], scale: float = 1.0, k: int = 2, negate: bool = False, mode: str = "sum",
        offsets: list[int] = [0], tags: list[str] = ["ab", "c"]) -> tuple[Tensor["T"], Tensor["I"]]:
    ...
# --8<-- [end:spec]
