"""`opkit check`: the custom-domain nodes of an ONNX model, checked against the workspace's specs
before ONNX Runtime sees them (nodes.py). Needs only frozen OpSpecs and onnx: no torch."""
