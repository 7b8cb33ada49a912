"""A third-party op library, standing for a C++/CUDA extension: it defines torch.ops.fancylib.soft_clamp.

Real extensions register their ops from C++ (TORCH_LIBRARY) when imported; this one uses torch.library from
Python so that the example needs no compiler. torch.onnx.export has no translation for any of them.
"""

import torch


@torch.library.custom_op("fancylib::soft_clamp", mutates_args=())
def soft_clamp(x: torch.Tensor, limit: float = 3.0) -> torch.Tensor:
    """Squash x smoothly into (-limit, limit): limit * tanh(x / limit)."""
    return limit * torch.tanh(x / limit)


@soft_clamp.register_fake
def _(x: torch.Tensor, limit: float = 3.0) -> torch.Tensor:
    return torch.empty_like(x)
