"""opkit: author custom operators for PyTorch models that ship through ONNX.

What users write in specs is re-exported here; everything else is internal.
"""

from opkit.errors import OpkitError
from opkit.spec.annotations import Tensor
from opkit.spec.decorator import Op, op

__version__ = "0.1.0"
__all__ = ["op", "Op", "Tensor", "OpkitError", "__version__"]
