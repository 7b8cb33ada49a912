"""Natively, outside Python: the standalone C++ runner (runner.py), its use by `opkit verify`
(verify.py), library metadata (info.py), the decomposed export (opkit/export/decompose.py)
and the wheel of a workspace's ops (package.py)."""
