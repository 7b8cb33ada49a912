"""opkit verify: load a model file (modelfile.py), run it eagerly, export it, run it in ONNX
Runtime with the op library in a child process (native.py + worker.py), compare (compare.py)
and report (report.py). driver.py is the pipeline."""
