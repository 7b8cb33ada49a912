"""The dtype table: the one place that maps a dtype name to torch, ONNX, numpy and C++.

Nothing here imports torch: `torch_name` is resolved lazily by :func:`torch_dtype`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DType:
    name: str  # opkit's name, as written in specs: "float32"
    torch_name: str  # attribute of the torch module: "float32"
    onnx: int  # onnx.TensorProto enum value
    onnx_type: str  # ONNX type string used in OpSchema type constraints
    ort_enum: str  # C enum ONNXTensorElementDataType
    cpp: str  # C++ element type used in kernels
    numpy: str  # numpy dtype name ("bfloat16" comes from ml_dtypes)
    is_float: bool
    rtol: float  # default comparison tolerances against the reference
    atol: float


_TABLE = (
    DType("float16", "float16", 10, "tensor(float16)", "ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16",
          "opkit::float16", "float16", True, 1e-2, 1e-3),
    DType("bfloat16", "bfloat16", 16, "tensor(bfloat16)", "ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16",
          "opkit::bfloat16", "bfloat16", True, 2e-2, 1e-2),
    DType("float32", "float32", 1, "tensor(float)", "ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT",
          "float", "float32", True, 1e-4, 1e-5),
    DType("float64", "float64", 11, "tensor(double)", "ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE",
          "double", "float64", True, 1e-7, 1e-9),
    DType("int8", "int8", 3, "tensor(int8)", "ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8",
          "int8_t", "int8", False, 0.0, 0.0),
    DType("uint8", "uint8", 2, "tensor(uint8)", "ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8",
          "uint8_t", "uint8", False, 0.0, 0.0),
    DType("int16", "int16", 5, "tensor(int16)", "ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16",
          "int16_t", "int16", False, 0.0, 0.0),
    DType("int32", "int32", 6, "tensor(int32)", "ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32",
          "int32_t", "int32", False, 0.0, 0.0),
    DType("int64", "int64", 7, "tensor(int64)", "ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64",
          "int64_t", "int64", False, 0.0, 0.0),
    DType("bool", "bool", 9, "tensor(bool)", "ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL",
          "bool", "bool", False, 0.0, 0.0),
)

DTYPES: dict[str, DType] = {d.name: d for d in _TABLE}
BY_ONNX: dict[int, DType] = {d.onnx: d for d in _TABLE}
BY_NUMPY: dict[str, DType] = {d.numpy: d for d in _TABLE}

# Names users commonly write that mean one of ours; used for "did you mean" hints only.
ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64",
           "int": "int64", "f32": "float32", "f64": "float64", "f16": "float16", "bf16": "bfloat16"}


def torch_dtype(name: str):
    import torch

    return getattr(torch, DTYPES[name].torch_name)


def from_torch(dtype) -> DType:
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise KeyError(name)
    return DTYPES[name]


def numpy_dtype(name: str):
    import numpy as np

    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(DTYPES[name].numpy)


def from_numpy(dtype) -> DType:
    name = str(dtype)
    if name not in BY_NUMPY:
        raise KeyError(name)
    return BY_NUMPY[name]
