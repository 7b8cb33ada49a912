"""opkit: author custom operators for PyTorch models that ship through ONNX.

What users write in specs is re-exported here; everything else is internal.
"""

from opkit.errors import OpkitError
from opkit.spec.annotations import Tensor
from opkit.spec.decorator import Op, op


def load_native(target=None, *, sanitize=False):  # noqa: ANN001, ANN201 - documented in opkit.torchop.native
    """Make calls to opkit ops run their native kernels inside PyTorch (CPU tensors); see
    opkit.torchop.native.load_native. The references stay reachable as ``op.reference(...)``."""
    from opkit.torchop.native import load_native as _load_native

    return _load_native(target, sanitize=sanitize)


__version__ = "0.1.0"
__all__ = ["op", "Op", "Tensor", "OpkitError", "load_native", "__version__"]
