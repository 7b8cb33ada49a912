import opkit
from opkit import Tensor


# --8<-- [start:spec]
@opkit.op("MyOp", domain="com.mycompany",          # ONNX op type (CamelCase) and domain
          types={"T": ("float32", "float64")},      # type variables and the dtypes each may take
          outputs=("values", "indices"),            # output names (default "y", or "y0", "y1", ...)
          shapes={"values": ("x[:-1]", "k")},       # output shape rules (optional, per output)
          version=1)                                # the domain's opset version
def my_op(x: Tensor["T"], k: int) -> tuple[Tensor["T"], Tensor["int64"]]: ...
# --8<-- [end:spec]
