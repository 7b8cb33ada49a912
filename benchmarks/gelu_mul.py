"""Writes gelu_mul.onnx: Gelu (opset 20) followed by Mul, the standard-ONNX form of ScaledGelu that the
performance target compares with, taking one input x (float32, any shape; or of a given rank, which
OpenVINO's CPU plugin needs), alpha = 1.0 like the spec's default.

    python benchmarks/gelu_mul.py /tmp/gelu_mul.onnx
    opkit bench ScaledGelu --dtype float32 --against /tmp/gelu_mul.onnx
    python benchmarks/gelu_mul.py /tmp/gelu_mul_2d.onnx 1.0 2
    opkit bench ScaledGelu --dtype float32 --sizes 4M --runtime openvino --against /tmp/gelu_mul_2d.onnx
"""

import sys

import onnx
from onnx import TensorProto, helper

alpha = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
shape = [f"d{k}" for k in range(int(sys.argv[3]))] if len(sys.argv) > 3 else None
g = helper.make_graph(
    [helper.make_node("Gelu", ["x"], ["g"]), helper.make_node("Mul", ["g", "alpha"], ["y"])], "gelu_mul",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    initializer=[helper.make_tensor("alpha", TensorProto.FLOAT, [], [alpha])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)]), sys.argv[1])
