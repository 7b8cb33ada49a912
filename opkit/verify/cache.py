"""Incremental verify: reuse the exported model and the eager outputs when only kernels changed.

A full `opkit verify` stores, under build/verify/<model>/ (beside the artifacts it writes anyway):
model.onnx, run<k>/inputs/*.npy, run<k>/eager/*.npy and cache.json. The key is a hash of model.py,
every spec file of the workspace, the verify options that shape the export (exporter, opset) and the
versions of opkit, torch, onnx, onnxscript and onnxruntime (read from package metadata, so nothing
is imported). When the key matches, verify runs only the build (kernel compile), ONNX Runtime in the
child and the comparison, without importing torch. Inputs and outputs are stored together, so a model
file whose inputs or weights are random (unseeded) still compares like with like.

What the key does not see: other Python files the model imports (helpers outside ops/*/spec.py) and
data files it reads; after changing those, run `opkit verify --fresh`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from opkit import __version__
from opkit.build.workspace import Workspace
from opkit.verify.arrays import load_npy

MANIFEST = "cache.json"
FORMAT = 1
PACKAGES = ("torch", "onnx", "onnxscript", "onnxruntime")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache_key(model_path: Path, ws: Workspace, options: dict[str, Any]) -> dict[str, Any]:
    """What the exported model and the eager outputs depend on (everything but the kernels)."""
    return {
        "format": FORMAT,
        "model": str(model_path.resolve()),
        "model_sha256": _sha(model_path),
        "specs": {f: _sha(ws.spec_file(f)) for f in ws.op_folders()},
        "options": options,
        "versions": {"opkit": __version__, **{p: _version(p) for p in PACKAGES}},
    }


def explain_miss(old: dict | None, new: dict) -> str:
    """Why the cache cannot be used, in words."""
    if old is None:
        return "no cache yet"
    reasons = []
    if old.get("model_sha256") != new["model_sha256"] or old.get("model") != new["model"]:
        reasons.append("the model file changed")
    if old.get("specs") != new["specs"]:
        changed = sorted(k for k in set(old.get("specs", {})) | set(new["specs"])
                         if old.get("specs", {}).get(k) != new["specs"].get(k))
        reasons.append("spec(s) changed: " + ", ".join(changed))
    if old.get("options") != new["options"]:
        reasons.append("export options changed")
    if old.get("versions") != new["versions"]:
        reasons.append("package versions changed")
    return "; ".join(reasons) or "the cache format changed"


@dataclass
class Cached:
    """A usable cache entry: what the full verify knew after its eager run and export."""

    folder: Path
    key: dict
    meta: dict  # exporter, opset, ops, runs [{label, shapes, outputs}], rtol, atol, notes, nodes

    @property
    def model(self) -> Path:
        return self.folder / "model.onnx"

    def eager_outputs(self, k: int) -> list:
        n = self.meta["runs"][k]["outputs"]
        return [load_npy(self.folder / f"run{k}" / "eager" / f"{j}.npy") for j in range(n)]


def lookup(folder: Path, key: dict) -> tuple[Cached | None, str]:
    """The entry for this key, or None and why not."""
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None, "no cache yet"
    if data.get("key") != key:
        return None, explain_miss(data.get("key"), key)
    entry = Cached(folder, key, data["meta"])
    missing = [p for p in [entry.model] + [folder / f"run{k}" / d for k in range(len(entry.meta["runs"]))
                                           for d in ("inputs", "eager")] if not p.exists()]
    if missing:
        return None, f"cached files are missing ({missing[0].name})"
    return entry, "hit"


def invalidate(folder: Path) -> None:
    """Called before a full verify overwrites the artifacts: a half-written cache is never used."""
    (folder / MANIFEST).unlink(missing_ok=True)


def store(folder: Path, key: dict, meta: dict, eager_by_run: list[list[Any]]) -> None:
    """After a full verify: save the eager outputs beside the inputs, then the manifest (last)."""
    import shutil

    import numpy as np

    from opkit.verify.arrays import to_numpy

    for k, outs in enumerate(eager_by_run):
        d = folder / f"run{k}" / "eager"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for j, t in enumerate(outs):
            np.save(d / f"{j}.npy", to_numpy(t), allow_pickle=False)
    (folder / MANIFEST).write_text(json.dumps({"key": key, "meta": meta}, indent=1))


def meta_of(report: Any, runs: list[tuple[str, list]], shapes_by_run: list, eager_by_run: list,
            rtol: float | None, atol: float | None) -> dict:
    return {"exporter": report.exporter, "opset": report.opset, "ops": list(report.ops), "outputs": report.outputs,
            "runs": [{"label": label, "shapes": shapes_by_run[k], "outputs": len(eager_by_run[k])}
                     for k, (label, _) in enumerate(runs)],
            "rtol": rtol, "atol": atol,
            "notes": [n for n in report.notes if n.startswith("no dynamic_shapes")]}


CACHED_PARTS = ["exported model", "input sets", "eager (PyTorch) outputs"]


def verify_cached(entry: Cached, model_path: Path, ws: Workspace, built: Any, *, sanitize: bool,
                  timeout: float | None, runtimes: list[Any], notes: list[str], timings: dict[str, float]) -> Any:
    """The fast path of `opkit verify`: every runtime runs (child processes) and is compared against
    the cached eager outputs. Imports no torch."""
    from opkit import ui
    from opkit.runtimes.base import Prepare
    from opkit.verify import driver
    from opkit.verify.report import Report

    meta, art = entry.meta, entry.folder
    report = Report(model=str(model_path), library=str(built.library), exporter=meta["exporter"],
                    opset=meta["opset"], ops=meta["ops"], timings=timings, artifacts=str(art),
                    backend=runtimes[0].backend, notes=list(notes), outputs=meta.get("outputs", []),
                    onnx_model=str(entry.model))
    ui.info(f"reusing the cached export and eager outputs ({ws.rel(art / MANIFEST)}); `--fresh` re-exports")
    driver.run_and_compare(report, runtimes, Prepare(onnx_path=entry.model, workspace=ws.root, art=art),
                           ws=ws, model_path=model_path, built=built, labels=[r["label"] for r in meta["runs"]],
                           eager_by_run=[entry.eager_outputs(k) for k in range(len(meta["runs"]))],
                           shapes_by_run=[r["shapes"] for r in meta["runs"]], rtol=meta["rtol"], atol=meta["atol"],
                           sanitize=sanitize, timeout=timeout, timings=timings, art=art,
                           compare_label="comparing with the cached PyTorch outputs")
    report.notes.extend(meta.get("notes", []))
    report.notes.append("from the cache (only kernels changed since the last verify): " + ", ".join(CACHED_PARTS) +
                        "; run with --fresh to re-export")
    report.cached = list(CACHED_PARTS)
    driver.write_artifacts(report, art)
    return report
