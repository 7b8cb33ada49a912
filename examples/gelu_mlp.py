"""Linear -> ScaledGelu -> Linear with a dynamic batch: the example `opkit verify` runs first.

    opkit verify examples/gelu_mlp.py
"""

import torch

from ops.scaled_gelu.spec import scaled_gelu


class GeluMLP(torch.nn.Module):
    def __init__(self, d_in: int = 64, d_hidden: int = 256, d_out: int = 32) -> None:
        super().__init__()
        self.up = torch.nn.Linear(d_in, d_hidden)
        self.down = torch.nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(scaled_gelu(self.up(x), alpha=1.702))


torch.manual_seed(0)
model = GeluMLP().eval()
example_inputs = (torch.randn(8, 64),)
dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},)
