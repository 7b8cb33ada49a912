"""`opkit bench`: how fast an op's native kernel (or a model with the op library) runs in ONNX Runtime,
against the same maths as standard ONNX ops in ONNX Runtime and against torch eager.

driver.py prepares models and inputs in opkit's process (torch, export); worker.py measures in a
child process (native code never runs in opkit's own process); measure.py is the timing loop.
"""
