"""The op spec: the frozen data model (model.py), the dtype table (dtypes.py),
the annotation-to-ONNX rules (parse.py) and the ``@opkit.op`` decorator (decorator.py)."""
