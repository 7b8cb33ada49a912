"""Code generation: the Jinja2 environment (env.py), renderers from OpSpec to text
(render.py, pure) and the one writer of generated files (writer.py)."""
