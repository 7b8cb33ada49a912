"""The hand-written baseline of benchmarks/tool_speed.py: what `opkit verify examples/gelu_mlp.py` does,
written as a user would without opkit's verify (but with the op's spec, which the model imports):
eager run, dynamo export with the op's translation, ONNX Runtime with the library, comparison.

    python benchmarks/minimal_verify.py path/to/libopkit_ops.so [--fast-exit]   (in a folder holding gelu_mlp.py and ops/)

--fast-exit ends with os._exit(0): a process holding both torch and onnxruntime takes ~2 s to exit
normally on the reference machine, which a script could skip.
"""

import os
import sys

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, ".")
import gelu_mlp  # noqa: E402

from opkit.export.translate import translation_table  # noqa: E402
from opkit.spec.decorator import registered_ops  # noqa: E402

model, inputs = gelu_mlp.model.eval(), gelu_mlp.example_inputs
with torch.no_grad():
    want = model(*inputs).numpy()
program = torch.onnx.export(model, inputs, dynamic_shapes=gelu_mlp.dynamic_shapes, dynamo=True,
                            custom_translation_table=translation_table(registered_ops()))
program.save("minimal.onnx", external_data=False)
so = ort.SessionOptions()
so.register_custom_ops_library(sys.argv[1])
sess = ort.InferenceSession("minimal.onnx", so, providers=["CPUExecutionProvider"])
got = sess.run(None, {sess.get_inputs()[0].name: inputs[0].numpy()})[0]
np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
print("PASS", flush=True)
if "--fast-exit" in sys.argv:
    os._exit(0)
