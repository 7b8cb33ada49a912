"""A model whose ONNX export fails on two ops: aten::cummax (no translation in torch 2.13) and
fancylib::soft_clamp (a third-party op). `opkit adopt model.py` turned both into opkit ops; this file
is unchanged since (see docs/adopt.md)."""

import torch

import fancylib  # noqa: F401  (defines torch.ops.fancylib.soft_clamp)


class RunningMaxHead(torch.nn.Module):
    """Projects a sequence, keeps the running maximum over time and squashes it."""

    def __init__(self, features: int = 16) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(features, features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.proj(x)  # (batch, time, features)
        running_max, where = torch.cummax(h, dim=1)
        return torch.ops.fancylib.soft_clamp(running_max, 2.0), where


torch.manual_seed(0)
model = RunningMaxHead().eval()
example_inputs = (torch.randn(2, 10, 16),)
batch = torch.export.Dim("batch", min=1, max=64)
time = torch.export.Dim("time", min=2, max=512)
dynamic_shapes = ({0: batch, 1: time},)
