"""Incremental verify (opkit/verify/cache.py): after a kernel edit verify reuses the exported model and
the eager outputs without importing torch, and says so; a spec edit re-exports; --fresh forces it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, make_one_percent_off
from opkit.build.workspace import Workspace
from opkit.verify.cache import cache_key, explain_miss


def _ws(root: Path) -> Path:
    (root / "ops").mkdir(parents=True)
    shutil.copytree(REPO / "ops" / "scaled_gelu", root / "ops" / "scaled_gelu")
    shutil.copy(REPO / "CMakeLists.txt", root / "CMakeLists.txt")
    shutil.copy(REPO / "examples" / "gelu_mlp.py", root / "model.py")
    return root


def test_key_follows_model_specs_and_options(tmp_path):
    root = _ws(tmp_path / "ws")
    ws = Workspace(root)
    model = root / "model.py"
    k0 = cache_key(model, ws, {"exporter": "dynamo", "opset": None})
    assert k0 == cache_key(model, ws, {"exporter": "dynamo", "opset": None})
    assert set(k0["versions"]) >= {"opkit", "torch", "onnx", "onnxruntime"}
    (root / "ops" / "scaled_gelu" / "scaled_gelu.cc").write_text("// a kernel edit is not in the key\n")
    assert cache_key(model, ws, {"exporter": "dynamo", "opset": None}) == k0
    assert "export options changed" in explain_miss(k0, cache_key(model, ws, {"exporter": "dynamo", "opset": 18}))
    with (root / "ops" / "scaled_gelu" / "spec.py").open("a") as f:
        f.write("# edited\n")
    k1 = cache_key(model, ws, {"exporter": "dynamo", "opset": None})
    assert explain_miss(k0, k1) == "spec(s) changed: scaled_gelu"
    model.write_text(model.read_text() + "# edited\n")
    assert "the model file changed" in explain_miss(k1, cache_key(model, ws, {"exporter": "dynamo", "opset": None}))
    assert explain_miss(None, k1) == "no cache yet"


def _verify(root: Path, *extra: str, rc: int = 0) -> tuple[subprocess.CompletedProcess, dict]:
    out = root / "report.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ, OPKIT_BUILD_DIR=str(root / "build"))
    # -X importtime lists every module imported: the cached path must not import torch
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "opkit", "verify", "model.py", "--no-native",
                        "--json", str(out), *extra], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == rc, p.stdout + p.stderr
    return p, json.loads(out.read_text())


def _imported(p: subprocess.CompletedProcess, module: str) -> bool:
    return any(line.rstrip().endswith(f"| {module}") for line in p.stderr.splitlines()
               if line.startswith("import time:"))


@pytest.mark.e2e
def test_kernel_edits_reuse_the_cache_spec_edit_and_fresh_reexport(tmp_path):
    root = _ws(tmp_path / "ws")
    p, rep = _verify(root)  # cold: export + eager, fills the cache
    assert rep["ok"] and rep["cached"] == [] and "export" in rep["timings_seconds"]
    assert _imported(p, "torch")

    kernel = root / "ops" / "scaled_gelu" / "scaled_gelu.cc"
    kernel.write_text(kernel.read_text() + "\n// an edit: only the kernel changed\n")
    p, rep = _verify(root)
    assert rep["ok"], rep
    assert rep["cached"] == ["exported model", "input sets", "eager (PyTorch) outputs"]
    assert "export" not in rep["timings_seconds"] and "eager" not in rep["timings_seconds"]
    assert "Building CXX object" in p.stderr  # the kernel was recompiled, then checked against the cache
    assert not _imported(p, "torch"), "the cached path imported torch"
    assert (root / "build" / "verify" / "model" / "report.html").is_file()
    assert "cached:" in p.stdout and any("from the cache" in n for n in rep["notes"])
    assert len(rep["runs"]) == 3  # example inputs + two other sizes, all from the cached input sets

    # a wrong kernel fails on the cached path too, naming the op
    make_one_percent_off(kernel)
    p, rep = _verify(root, rc=1)
    assert rep["cached"] and not rep["ok"] and not _imported(p, "torch")
    assert any("opkit.examples::ScaledGelu" in f for f in rep["failures"]), rep["failures"]

    p, rep = _verify(root, "--fresh", rc=1)  # forced: exports and runs eagerly again
    assert rep["cached"] == [] and "export" in rep["timings_seconds"] and "--fresh" in p.stderr

    spec = root / "ops" / "scaled_gelu" / "spec.py"
    spec.write_text(spec.read_text() + "\n# an edit of the spec\n")
    p, rep = _verify(root, rc=1)
    assert rep["cached"] == [] and "export" in rep["timings_seconds"]
    assert "spec(s) changed: scaled_gelu" in p.stderr
