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
