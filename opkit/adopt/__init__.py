"""`opkit adopt`: a model whose ONNX export fails on ops without a translation becomes a model whose ops
are opkit ops, without editing the model.

discover.py finds every untranslatable op in one pass; plan.py maps each op's schema (and how the model
calls it) to a spec; scaffold.py renders it; driver.py runs the pipeline and writes the user's files once.
The mapping original op -> opkit op is the spec's ``adopts=``; opkit.export.translate applies it at export.
"""
