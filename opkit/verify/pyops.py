"""The Python backend of verify: each op's reference runs inside ONNX Runtime as an
onnxruntime-extensions Python op, so a model can be checked before any C++ is written.

Two halves:
- in opkit's process (no torch, no onnxruntime): :func:`unsupported` says which signatures the
  backend cannot express, :func:`check_nodes` which nodes of an exported model it cannot run,
  :func:`prepare_model` writes the backend's copy of the model (every attribute present, the
  way onnxruntime-extensions needs it), :func:`job_entry` describes the ops for the worker;
- in the ONNX Runtime child (opkit.verify.worker): :func:`register_job` imports the specs and
  registers one Python op per op and dtype combination, before the session is created.

Measured with onnxruntime-extensions 0.15.2 / onnxruntime 1.32 (see docs/readme/python-backend.md):
attribute kinds are int, float and string only; a float16 tensor aborts the process
("Type float16 not supported by python customops api") and bfloat16 cannot be fed from numpy;
every declared input is required (an absent optional input fails the graph check) and the input
count is fixed (no variadic inputs); an attribute missing from a node fails session creation;
a Python exception inside an op aborts the process; ops registered after the library was
added to a SessionOptions are not seen.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from opkit.errors import BackendUnsupportedError
from opkit.spec.model import OpSpec

BACKEND_LABEL = "python (each op's reference inside ONNX Runtime via onnxruntime-extensions; no native library)"
# The dtypes a Python op can take and give, as PyCustomOpDef attribute names.
PY_DTYPES = {"float32": "dt_float", "float64": "dt_double", "int8": "dt_int8", "uint8": "dt_uint8",
             "int16": "dt_int16", "int32": "dt_int32", "int64": "dt_int64", "bool": "dt_bool"}
# The attribute kinds a Python op can read.
PY_ATTRS = {"float": "dt_float", "int": "dt_int64", "bool": "dt_int64", "str": "dt_string"}
REFERENCE_FAILED = "OPKIT_PYTHON_REFERENCE: "


def unsupported(spec: OpSpec) -> list[str]:
    """Why onnxruntime-extensions cannot express this op's signature (empty when it can)."""
    why = []
    for t in spec.typevars:
        bad = [d for d in t.dtypes if d not in PY_DTYPES]
        if bad:
            why.append(f"type variable {t.name} allows {', '.join(bad)}: Python ops take no "
                       f"{'/'.join(bad)} tensors (only {', '.join(PY_DTYPES)})")
    for p in list(spec.inputs) + list(spec.outputs):
        if p.type.dtype and p.type.dtype not in PY_DTYPES:
            why.append(f"{p.name} is {p.type.dtype}: Python ops take no {p.type.dtype} tensors")
    for i in spec.inputs:
        if i.variadic:
            why.append(f"input {i.name!r} is variadic (list[Tensor]): a Python op has a fixed number of inputs")
    for a in spec.attrs:
        if a.kind not in PY_ATTRS:
            why.append(f"attribute {a.name!r} is {_py_kind(a.kind)}: "
                       f"Python ops read only int, float and str attributes")
    return why


def _py_kind(kind: str) -> str:
    from opkit.spec.model import ATTR_PY

    return ATTR_PY[kind]


def ensure_supported(specs: list[OpSpec]) -> None:
    """Raise one error naming every op the Python backend cannot run, and why."""
    lines = []
    for s in specs:
        for reason in unsupported(s):
            lines.append(f"{s.qualname} ({s.loc or s.folder}): {reason}")
    if lines:
        raise BackendUnsupportedError(
            f"the Python backend cannot run {len({ln.split(' ')[0] for ln in lines})} op(s) of this model",
            details="\n".join(lines),
            fix="verify these ops with the native backend (`opkit verify model.py`, the default), which "
                "supports every signature; the Python backend (onnxruntime-extensions) has only int/float/str "
                "attributes, no float16/bfloat16 and a fixed number of inputs")


def check_nodes(model: Any, specs: list[OpSpec]) -> None:
    """Nodes the backend cannot run although the op can: an optional input left out."""
    by_key = {(s.domain, s.name): s for s in specs}
    lines = []
    for node in model.graph.node:
        s = by_key.get((node.domain, node.op_type))
        if s is None:
            continue
        names = list(node.input) + [""] * (len(s.inputs) - len(node.input))
        for inp, name in zip(s.inputs, names):
            if inp.optional and not name:
                lines.append(f"node {node.name or '(unnamed)'} ({s.qualname}) leaves out the optional input "
                             f"{inp.name!r}")
    if lines:
        raise BackendUnsupportedError(
            "the Python backend cannot run a node whose optional input is absent",
            details="\n".join(lines) + "\nonnxruntime-extensions Python ops require every declared input",
            fix="verify with the native backend (`opkit verify model.py`), or pass the optional input in the model")


def _default_attribute(kind: str, name: str, value: Any) -> Any:
    import onnx

    if kind == "bool":
        value = int(bool(value))
    elif kind == "float":
        value = float(value)
    return onnx.helper.make_attribute(name, value)


def prepare_model(model: Any, specs: list[OpSpec], path: Path) -> Path:
    """The backend's copy of the model: every attribute of the ops present (defaults filled in)."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    by_key = {(s.domain, s.name): s for s in specs}
    for node in copy.graph.node:
        s = by_key.get((node.domain, node.op_type))
        if s is None:
            continue
        have = {a.name for a in node.attribute}
        for a in s.attrs:
            if a.name not in have and not a.required:
                node.attribute.append(_default_attribute(a.kind, a.name, a.default))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(copy, str(path))
    return path


def job_entry(ws_root: Path, ops: list[Any]) -> dict:
    """What the worker needs to register the ops: the workspace and each op's spec file."""
    return {"workspace": str(ws_root),
            "ops": [{"qualname": op.spec.qualname, "file": op.spec.loc.file if op.spec.loc else ""} for op in ops]}


def python_job(model: Any, ops: list[Any], ws_root: Path, art: Path, job_runs: list[dict]) -> dict:
    """The worker job of the Python backend: checks what the backend can run, writes its model copy."""
    specs = [op.spec for op in ops]
    ensure_supported(specs)
    check_nodes(model, specs)
    path = prepare_model(model, specs, art / "model.python.onnx")
    return {"model": str(path), "libraries": [], "python_ops": job_entry(ws_root, ops), "runs": job_runs}


def python_error(message: str) -> Any:
    """The ORT child's error under the Python backend, as an opkit error."""
    from opkit.errors import NativeRunError

    if message.startswith(REFERENCE_FAILED):
        return NativeRunError("a reference raised an exception inside ONNX Runtime (Python backend)",
                              details=message[len(REFERENCE_FAILED):].strip()[:2000],
                              fix="the reference works eagerly but not on the tensors ONNX Runtime gave it "
                                  "(numpy arrays converted to torch): check dtypes and shapes it assumes")
    return NativeRunError("ONNX Runtime failed to run the model with the Python references (onnxruntime-extensions)",
                          details=message.strip()[:2000],
                          fix="the message names the node; `opkit check` on the exported model lists mismatches")


# -- in the ONNX Runtime child ---------------------------------------------------------------------
def _load_ops(cfg: dict) -> dict[str, Any]:
    import importlib.util
    import sys

    from opkit.build.specs import import_ops
    from opkit.build.workspace import Workspace
    from opkit.spec.decorator import registered_ops

    import_ops(Workspace(Path(cfg["workspace"])))
    found = {op.spec.qualname: op for op in registered_ops()}
    for entry in cfg["ops"]:
        if entry["qualname"] not in found and entry.get("file"):
            name = f"opkit_pyop_spec_{abs(hash(entry['file']))}"
            mspec = importlib.util.spec_from_file_location(name, entry["file"])
            if mspec and mspec.loader:
                mod = importlib.util.module_from_spec(mspec)
                sys.modules[name] = mod
                mspec.loader.exec_module(mod)
            found = {op.spec.qualname: op for op in registered_ops()}
    return found


def register_job(cfg: dict, job: dict, result: dict, save: Any) -> None:
    """Register every op of `cfg` as Python ops (one per dtype combination); add the library to `job`.

    A Python exception inside an op would abort ONNX Runtime's process: it is recorded in
    `result["error"]` (prefixed by REFERENCE_FAILED) and the process exits with code 3.
    """
    import numpy as np
    import onnxruntime_extensions as ortx
    import torch

    from opkit.spec.dtypes import numpy_dtype

    P = ortx.PyCustomOpDef

    def fail(msg: str) -> None:
        result["error"] = REFERENCE_FAILED + msg
        save()
        os._exit(3)

    ops = _load_ops(cfg)
    for entry in cfg["ops"]:
        op = ops.get(entry["qualname"])
        if op is None:
            raise RuntimeError(f"{entry['qualname']} is not defined by any spec of the workspace")
        spec = op.spec
        for combo in spec.kernel_combos:
            fn = _python_op(op, combo, np, torch, numpy_dtype, fail)
            ortx.onnx_op(op_type=f"{spec.domain}::{spec.name}",
                         inputs=[getattr(P, PY_DTYPES[spec.resolve(i.type, combo)]) for i in spec.inputs],
                         outputs=[getattr(P, PY_DTYPES[spec.resolve(o.type, combo)]) for o in spec.outputs],
                         attrs={a.name: getattr(P, PY_ATTRS[a.kind]) for a in spec.attrs})(fn)
    job.setdefault("python_ops_libraries", []).append(ortx.get_library_path())


def _python_op(op: Any, combo: dict, np: Any, torch: Any, numpy_dtype: Any, fail: Any) -> Any:
    spec = op.spec
    in_names = [i.name for i in spec.inputs]
    out_dtypes = [numpy_dtype(spec.resolve(o.type, combo)) for o in spec.outputs]
    attrs_spec = spec.attrs

    def run(*arrays: Any, **attrs: Any) -> Any:
        try:
            kwargs: dict[str, Any] = {n: torch.from_numpy(np.array(a, copy=True)) for n, a in zip(in_names, arrays)}
            for a in attrs_spec:
                v = attrs.get(a.name, a.default)
                kwargs[a.name] = bool(v) if a.kind == "bool" else v
            with torch.no_grad():
                out = op.reference(**kwargs)
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            if len(outs) != len(out_dtypes):
                raise ValueError(f"it returned {len(outs)} tensor(s), the spec declares {len(out_dtypes)}")
            res = [np.asarray(o.detach().cpu().numpy()).astype(dt, copy=False) for o, dt in zip(outs, out_dtypes)]
            return tuple(res) if len(res) > 1 else res[0]
        except BaseException as exc:  # noqa: BLE001 - any exception here would abort ORT's process
            fail(f"{spec.qualname}: the reference raised {type(exc).__name__}: {exc}")

    return run
