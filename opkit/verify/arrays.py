"""Tensors as .npy files between opkit's processes."""

from __future__ import annotations

from pathlib import Path


def load_npy(path: Path | str):
    """np.load, with bfloat16 restored: .npy stores ml_dtypes.bfloat16 as 2-byte void, and bfloat16 is
    the only 2-byte void type in opkit's dtype table."""
    import numpy as np

    a = np.load(path, allow_pickle=False)
    if a.dtype.kind == "V" and a.dtype.itemsize == 2:
        import ml_dtypes

        a = a.view(ml_dtypes.bfloat16)
    return a


def save_npy(path: Path | str, a) -> None:
    """np.save without pickles; bfloat16 is written as 2-byte void records (load_npy restores it)."""
    import numpy as np

    np.save(path, np.asarray(a), allow_pickle=False)


def to_numpy(t):
    """A torch tensor (or a numpy array, returned as is) as numpy; bfloat16 as ml_dtypes.bfloat16."""
    import numpy as np

    if isinstance(t, np.ndarray):  # cached eager outputs (opkit/verify/cache.py)
        return t
    import torch

    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()
