"""The Python backend of verify: each op's reference runs inside ONNX Runtime as an
onnxruntime-extensions Python op, so a model can be checked before any C++ is written.

Two halves:
- in opkit's process (no torch, no onnxruntime): :func:`prepare_model` checks what the backend can
  run and writes its private copy of the model, in which every node of an opkit op is one the
  extensions can express; :func:`python_job` is the worker job;
- in the ONNX Runtime child (opkit.verify.worker): :func:`register_python_ops` imports the specs and
  registers one Python op per node variant and dtype combination, before the session is created.

What onnxruntime-extensions 0.15.2 can express (measured with onnxruntime 1.32; see
docs/commands/verify.md, "Before the C++ exists"), and what the copy of the model does about it:
- attribute kinds int, float, string only: list attributes are rewritten to a JSON string
  attribute, which the op decodes; a bool is an int;
- an attribute missing from a node fails session creation: defaults are written into the copy;
- every declared input is required and their number is fixed: a node with an absent optional
  input or a variadic input becomes its own op type (``Name__opkit_py_1_0_3``: how many tensors
  each input has), registered with exactly those inputs;
- no float16 or bfloat16 tensors (float16 aborts the process, bfloat16 cannot be fed from numpy):
  a node that uses them is reported, naming the node, with the native backend as the way out;
- a Python exception inside an op aborts the process: the op catches it, the worker records it;
- ops registered after the library was added to a SessionOptions are not seen: register first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from opkit.errors import BackendUnsupportedError
from opkit.spec.model import OpSpec

BACKEND_LABEL = "python (each op's reference inside ONNX Runtime via onnxruntime-extensions; no native library)"
# The dtypes a Python op can take and give, as PyCustomOpDef attribute names.
PY_DTYPES = {"float32": "dt_float", "float64": "dt_double", "int8": "dt_int8", "uint8": "dt_uint8",
             "int16": "dt_int16", "int32": "dt_int32", "int64": "dt_int64", "bool": "dt_bool"}
# The attribute kinds a Python op reads directly; list kinds travel as a JSON string.
PY_ATTRS = {"float": "dt_float", "int": "dt_int64", "bool": "dt_int64", "str": "dt_string"}
LIST_KINDS = ("floats", "ints", "strs")
REFERENCE_FAILED = "OPKIT_PYTHON_REFERENCE: "
_NATIVE_FIX = ("verify these ops with the native backend (`opkit verify model.py`, the default), which supports "
               "every signature; the Python backend (onnxruntime-extensions) has no float16/bfloat16 tensors")


def unsupported(spec: OpSpec) -> list[str]:
    """Why no node of this op can run on the Python backend (empty when some can)."""
    why = []
    for t in spec.typevars:
        if not any(d in PY_DTYPES for d in t.dtypes):
            why.append(f"type variable {t.name} allows only {', '.join(t.dtypes)}: Python ops take none of them "
                       f"(they take {', '.join(PY_DTYPES)})")
    for kind, params in (("input", spec.inputs), ("output", spec.outputs)):
        for p in params:
            if p.type.dtype and p.type.dtype not in PY_DTYPES:
                why.append(f"{kind} {p.name!r} is {p.type.dtype}: Python ops take no {p.type.dtype} tensors")
    return why


def ensure_supported(specs: list[OpSpec]) -> None:
    """Raise one error naming every op the Python backend cannot run, and why."""
    lines = [f"{s.qualname} ({s.loc or s.folder}): {r}" for s in specs for r in unsupported(s)]
    if lines:
        raise BackendUnsupportedError("the Python backend cannot run some op(s) of this model",
                                      details="\n".join(lines), fix=_NATIVE_FIX)


def _attribute(kind: str, name: str, value: Any) -> Any:
    import onnx

    if kind in LIST_KINDS:
        return onnx.helper.make_attribute(name, json.dumps(list(value)))
    if kind == "bool":
        value = int(bool(value))
    elif kind == "float":
        value = float(value)
    return onnx.helper.make_attribute(name, value)


def _attr_value(a: Any, kind: str) -> Any:
    import onnx

    if kind == "strs" and a.type == onnx.AttributeProto.TENSOR:
        return [s.decode() for s in a.t.string_data]
    return onnx.helper.get_attribute_value(a) if kind != "strs" else \
        [s.decode() if isinstance(s, bytes) else s for s in onnx.helper.get_attribute_value(a)]


def _combo(node: Any, spec: OpSpec, types: dict[str, int]) -> dict[str, str] | None:
    from opkit.spec.dtypes import BY_ONNX

    combo: dict[str, str] = {}
    pairs = []
    k = 0
    for inp in spec.inputs:
        names = list(node.input[k:]) if inp.variadic else list(node.input[k:k + 1])
        k += len(names)
        pairs += [(inp.type, n) for n in names]
    pairs += list(zip([o.type for o in spec.outputs], node.output))
    for t, name in pairs:
        if t.typevar and t.typevar not in combo and name and types.get(name) in BY_ONNX:
            combo[t.typevar] = BY_ONNX[types[name]].name
    if any(t.name not in combo for t in spec.typevars):
        return None
    return combo


def prepare_model(model: Any, specs: list[OpSpec], path: Path) -> tuple[Path, list[dict]]:
    """Write the backend's copy of the model; return it and the op variants to register."""
    import onnx

    from opkit.check.nodes import _known_types, graphs

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    by_key = {(s.domain, s.name): s for s in specs}
    types = _known_types(copy)
    variants: dict[tuple, dict] = {}
    problems = []
    for k, node in enumerate(n for g in graphs(copy.graph) for n in g.node):  # torch.cond branches too
        s = by_key.get((node.domain, node.op_type))
        if s is None:
            continue
        label = f"node {node.name or '#' + str(k)} ({s.qualname})"
        combo = _combo(node, s, types)
        if combo is None:
            combo = next((c for c in s.kernel_combos if all(d in PY_DTYPES for d in c.values())), None)
        bad = sorted({d for d in (combo or {}).values() if d not in PY_DTYPES})
        if combo is None or bad:
            problems.append(f"{label} runs on {', '.join(bad) or 'no supported dtype'} tensors: Python ops "
                            f"take only {', '.join(PY_DTYPES)}")
            continue
        # how many tensors each input has at this node (0: an absent optional input)
        counts, names, pos = [], [], 0
        for inp in s.inputs:
            if inp.variadic:
                given = [n for n in node.input[pos:]]
                pos = len(node.input)
            else:
                given = list(node.input[pos:pos + 1])
                pos += 1
            given = [n for n in given if n]
            counts.append(len(given))
            names += given
        plain = all(c == 1 for c in counts) and not any(i.variadic for i in s.inputs)
        op_type = s.name if plain else f"{s.name}__opkit_py_" + "_".join(map(str, counts))
        del node.input[:]
        node.input.extend(names)
        node.op_type = op_type
        have = {a.name: a for a in node.attribute}
        attrs = []
        for a in s.attrs:
            if a.name in have:
                value = _attr_value(have[a.name], a.kind)
            elif not a.required:
                value = a.default
            else:
                continue  # opkit check reported it already
            attrs.append(_attribute(a.kind, a.name, value))
        del node.attribute[:]
        node.attribute.extend(attrs)
        key = (s.qualname, op_type, tuple(sorted(combo.items())))
        variants.setdefault(key, {"qualname": s.qualname, "op_type": op_type, "combo": combo, "counts": counts})
    if problems:
        raise BackendUnsupportedError("the Python backend cannot run some node(s) of this model",
                                      details="\n".join(problems), fix=_NATIVE_FIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(copy, str(path))
    return path, list(variants.values())


def job_entry(ws_root: Path, ops: list[Any], variants: list[dict], model_file: Path | None = None) -> dict:
    """What the worker needs to register the ops: the workspace, each op's spec file, the variants, and the
    model file (imported there only when an adopted op's original is defined by it, not by a module its spec
    imports)."""
    return {"workspace": str(ws_root), "model_file": str(model_file) if model_file else None,
            "ops": [{"qualname": op.spec.qualname, "file": op.spec.loc.file if op.spec.loc else "",
                     "variants": [v for v in variants if v["qualname"] == op.spec.qualname]} for op in ops]}


def python_job(model: Any, ops: list[Any], ws_root: Path, art: Path, job_runs: list[dict],
               model_file: Path | None = None) -> dict:
    """The worker job of the Python backend: checks what the backend can run, writes its model copy."""
    specs = [op.spec for op in ops]
    ensure_supported(specs)
    path, variants = prepare_model(model, specs, art / "model.python.onnx")
    return {"model": str(path), "libraries": [], "python_ops": job_entry(ws_root, ops, variants, model_file),
            "runs": job_runs}


def python_error(message: str) -> Any:
    """The ORT child's error under the Python backend, as an opkit error."""
    from opkit.errors import NativeRunError

    if message.startswith(REFERENCE_FAILED):
        return NativeRunError("a reference raised an exception inside ONNX Runtime (Python backend)",
                              details=message[len(REFERENCE_FAILED):].strip()[:2000],
                              fix="the reference works eagerly but not on the tensors ONNX Runtime gave it "
                                  "(numpy arrays converted to torch): check the dtypes and shapes it assumes")
    return NativeRunError("ONNX Runtime failed to run the model with the Python references (onnxruntime-extensions)",
                          details=message.strip()[:2000],
                          fix="the message names the node; `opkit check` on the exported model lists mismatches")


# -- in the ONNX Runtime child ---------------------------------------------------------------------
def _load_ops(cfg: dict) -> dict[str, Any]:
    import importlib.util
    import sys

    from opkit.build.specs import import_ops
    from opkit.build.workspace import Workspace
    from opkit.export.translate import adopted_target
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
    if cfg.get("model_file") and any(op.spec.adopts and adopted_target(op.spec) is None for op in found.values()
                                     if op.spec.qualname in {e["qualname"] for e in cfg["ops"]}):
        # an adopted op whose original the model file itself defines (torch.library in model.py)
        mspec = importlib.util.spec_from_file_location(f"opkit_model_{abs(hash(cfg['model_file']))}",
                                                       cfg["model_file"])
        if mspec and mspec.loader:
            mod = importlib.util.module_from_spec(mspec)
            sys.modules[mspec.name] = mod
            mspec.loader.exec_module(mod)
    return found


def register_python_ops(cfg: dict, on_error: Any) -> str:
    """Register every op variant of `cfg` (see :func:`job_entry`) as a Python op.

    Returns the onnxruntime-extensions library to add to a SessionOptions, which must be created
    after this call. A Python exception inside an op would abort ONNX Runtime's process: instead
    ``on_error(message)`` is called (to record it; `message` starts with REFERENCE_FAILED) and the
    process exits with code 3.
    """
    import numpy as np
    import onnxruntime_extensions as ortx
    import torch

    from opkit.spec.dtypes import numpy_dtype

    P = ortx.PyCustomOpDef

    def fail(msg: str) -> None:
        try:
            on_error(REFERENCE_FAILED + msg)
        finally:
            os._exit(3)

    ops = _load_ops(cfg)
    for entry in cfg["ops"]:
        op = ops.get(entry["qualname"])
        if op is None:
            raise RuntimeError(f"{entry['qualname']} is not defined by any spec of the workspace")
        spec = op.spec
        for v in entry["variants"]:
            combo, counts = v["combo"], v["counts"]
            in_types = [PY_DTYPES[spec.resolve(i.type, combo)] for i, n in zip(spec.inputs, counts) for _ in range(n)]
            ortx.onnx_op(op_type=f"{spec.domain}::{v['op_type']}",
                         inputs=[getattr(P, t) for t in in_types],
                         outputs=[getattr(P, PY_DTYPES[spec.resolve(o.type, combo)]) for o in spec.outputs],
                         attrs={a.name: P.dt_string if a.kind in LIST_KINDS else getattr(P, PY_ATTRS[a.kind])
                                for a in spec.attrs})(_python_op(op, combo, counts, np, torch, numpy_dtype, fail))
    return ortx.get_library_path()


def register_job(cfg: dict, job: dict, result: dict, save: Any) -> None:
    """opkit.verify.worker's hook: register the ops, add the library to `job`, errors go to `result`."""

    def on_error(msg: str) -> None:
        result["error"] = msg
        save()

    job.setdefault("python_ops_libraries", []).append(register_python_ops(cfg, on_error))


def _python_op(op: Any, combo: dict, counts: list[int], np: Any, torch: Any, numpy_dtype: Any, fail: Any) -> Any:
    spec = op.spec
    out_dtypes = [numpy_dtype(spec.resolve(o.type, combo)) for o in spec.outputs]

    def run(*arrays: Any, **attrs: Any) -> Any:
        try:
            tensors = [torch.from_numpy(np.array(a, copy=True)) for a in arrays]
            kwargs: dict[str, Any] = {}
            pos = 0
            for inp, n in zip(spec.inputs, counts):
                given = tensors[pos:pos + n]
                pos += n
                kwargs[inp.name] = given if inp.variadic else (given[0] if given else None)
            for a in spec.attrs:
                v = attrs.get(a.name, a.default)
                if a.kind in LIST_KINDS and isinstance(v, str):
                    v = json.loads(v)
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
