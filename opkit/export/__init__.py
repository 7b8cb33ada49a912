"""ONNX export: an OpSchema per op (schema.py), the dynamo exporter's translation of each
op into one custom-domain node (translate.py), and the export driver (driver.py)."""
