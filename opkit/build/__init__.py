"""Building the op library: workspace discovery (workspace.py), spec loading and checks
(specs.py), ONNX Runtime headers (headers.py), the cmake/ninja driver (cmake.py), the build
lock (lock.py) and the build pipeline (driver.py)."""
