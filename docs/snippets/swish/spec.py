# ops/swish/spec.py
import torch
import opkit
from opkit import Tensor


@opkit.op("Swish", domain="com.mycompany", types={"T": ("float32", "float64")}, shapes={"y": "x"})
def swish(x: Tensor["T"], beta: float = 1.0) -> Tensor["T"]:
    """x * sigmoid(beta * x)"""
    return x * torch.sigmoid(beta * x)
