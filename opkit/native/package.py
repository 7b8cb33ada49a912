"""`opkit package`: a wheel of a workspace's ops — the built library, `get_library_path()`, the specs
(so the ops work from PyTorch too), the op documentation (Markdown, from templates/package/) and
the library's OPKIT_INFO record. Built with the standard library: zipfile + METADATA/WHEEL/RECORD."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opkit import __version__
from opkit.errors import UsageError

_VERSION = re.compile(r"^\d+(\.\d+)*([ab]|rc)?\d*(\.post\d+)?(\.dev\d+)?$")
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def package_name(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()
    if not s or not s[0].isalpha():
        s = "ops_" + s
    return s


def platform_tag() -> str:
    return re.sub(r"[-.]", "_", sysconfig.get_platform())


def op_doc_view(spec: Any, package: str) -> dict[str, Any]:
    from opkit.spec.model import ATTR_PY

    def shape(o: Any) -> str:
        return f"`{o.shape.text}`" if o.shape is not None else "set by the kernel"

    def default(a: Any) -> str:
        if a.required:
            return "required"
        d = list(a.default) if isinstance(a.default, tuple) else a.default
        return f"`{d!r}`"

    return {
        "qualname": spec.qualname, "name": spec.name, "domain": spec.domain, "version": spec.version,
        "py_name": spec.py_name, "folder": spec.folder, "signature": spec.signature, "doc": spec.doc,
        "torch_qualname": spec.torch_qualname,
        "inputs": [{"name": i.name, "type": i.type.text,
                    "notes": "variadic (a list of tensors)" if i.variadic else "optional" if i.optional else ""}
                   for i in spec.inputs],
        "attrs": [{"name": a.name, "type": ATTR_PY[a.kind], "default": default(a)} for a in spec.attrs],
        "outputs": [{"name": o.name, "type": o.type.text, "shape": shape(o)} for o in spec.outputs],
        "typevars": [{"name": t.name, "dtypes": list(t.dtypes)} for t in spec.typevars],
        "kernels": [", ".join(f"{k}={v}" for k, v in c.items()) or "one (no type variables)"
                    for c in spec.kernel_combos],
    }


def render_package(specs: list, *, dist_name: str, package: str, version: str, info: dict,
                   openvino: bool = False, torch_info: dict | None = None,
                   executorch: bool = False) -> dict[str, str]:
    """The generated text files of the package, relative to the package folder. Pure."""
    from opkit.codegen.env import render
    from opkit.spec.libraries import LIBRARIES

    ops = [op_doc_view(s, package) for s in specs]
    native_libraries = [LIBRARIES[n].module for n in sorted({n for s in specs for n in s.libraries})]
    ctx = dict(dist_name=dist_name, package=package, version=version, ops=ops, opkit_version=__version__,
               native_libraries=native_libraries,
               ort_api_version=info.get("ort_api_version"), library_name="libopkit_ops.so",
               openvino_name="libopkit_openvino.so" if openvino else None,
               torch_library="libopkit_torch.so" if torch_info else None,
               torch_version=(torch_info or {}).get("torch_version"),
               executorch_name="libopkit_executorch.so" if executorch else None)
    return {"__init__.py": render("package/__init__.py.j2", **ctx), "OPS.md": render("package/ops.md.j2", **ctx)}


@dataclass(frozen=True)
class Wheel:
    path: Path
    dist_name: str
    package: str
    version: str
    files: list[str]


def _requires_linked(specs: list) -> list[str]:
    """Requires-Dist lines for the Python packages of the native libraries the kernels link, at the versions
    built against (the op libraries load them from there)."""
    from opkit.build.libraries import libraries_of
    from opkit.spec.libraries import LIBRARIES

    return [f"Requires-Dist: {LIBRARIES[lib.name].pip}" +
            (f">={lib.version}" if lib.version not in ("", "?") else "") for lib in libraries_of(specs)]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(ws: Any, library: Path, specs: list, out_dir: Path, *, name: str | None = None,
                version: str = "0.1.0", openvino_extension: Path | None = None,
                torch_library: Path | None = None, executorch_library: Path | None = None) -> Wheel:
    """`openvino_extension`: libopkit_openvino.so, shipped beside the library (get_openvino_extension_path()).
    `torch_library`: libopkit_torch.so, shipped beside it too (loaded when an op is taken from the package in
    PyTorch; tied to the torch version it was built for).
    `executorch_library`: libopkit_executorch.so, the ExecuTorch kernels (get_executorch_library_path())."""
    from opkit.native.info import read_library_info

    if not _VERSION.match(version):
        raise UsageError(f"not a valid package version: {version!r}", expected="e.g. 1.0, 0.2.1, 1.0rc1")
    dist_name = re.sub(r"[^A-Za-z0-9.]+", "-", name or f"{ws.root.name}-ops").strip("-")
    package = package_name(dist_name)
    dist_name = package  # one spelling everywhere (a normalized, PEP 503-safe name)
    info = read_library_info(library)
    torch_info = None
    if torch_library is not None:
        from opkit.torchop.native import read_torch_info

        torch_info = read_torch_info(torch_library)
    files: dict[str, tuple[bytes, int]] = {}  # arcname -> (data, mode)
    rendered = render_package(specs, dist_name=dist_name, package=package, version=version, info=info,
                              openvino=openvino_extension is not None, torch_info=torch_info,
                              executorch=executorch_library is not None)
    for rel, text in rendered.items():
        files[f"{package}/{rel}"] = (text.encode(), 0o644)
    files[f"{package}/opkit_info.json"] = (json.dumps(info, indent=1, sort_keys=True).encode(), 0o644)
    files[f"{package}/lib/libopkit_ops.so"] = (library.read_bytes(), 0o755)
    if openvino_extension is not None:
        files[f"{package}/lib/{openvino_extension.name}"] = (openvino_extension.read_bytes(), 0o755)
        files[f"{package}/opkit_openvino_info.json"] = (json.dumps(read_library_info(openvino_extension), indent=1,
                                                                   sort_keys=True).encode(), 0o644)
    if torch_library is not None:
        files[f"{package}/lib/libopkit_torch.so"] = (torch_library.read_bytes(), 0o755)
    if executorch_library is not None:
        files[f"{package}/lib/{executorch_library.name}"] = (executorch_library.read_bytes(), 0o755)
    files[f"{package}/ops/__init__.py"] = (b'"""The op specs (opkit), one sub-package per op."""\n', 0o644)
    for s in specs:
        folder = ws.ops_dir / s.folder
        files[f"{package}/ops/{s.folder}/__init__.py"] = (b"", 0o644)
        for py in sorted(folder.rglob("*.py")):
            if "__pycache__" in py.parts:
                continue
            rel = py.relative_to(folder).as_posix()
            files[f"{package}/ops/{s.folder}/{rel}"] = (py.read_bytes(), 0o644)
    docs = files[f"{package}/OPS.md"][0].decode()
    docs = docs.split("-->", 1)[1].lstrip() if docs.startswith("<!--") else docs
    dist_info = f"{package}-{version}.dist-info"
    metadata = "\n".join([
        "Metadata-Version: 2.1", f"Name: {dist_name}", f"Version: {version}",
        f"Summary: {len(specs)} custom op(s) for ONNX Runtime and PyTorch: "
        + ", ".join(s.qualname for s in specs),
        "Requires-Python: >=3.9", f"Requires-Dist: onnxruntime>=1.{info.get('ort_api_version', 21)}",
        "Provides-Extra: torch", f'Requires-Dist: opkit>={__version__}; extra == "torch"',
        *([f'Requires-Dist: torch=={torch_info["torch_version"].split("+")[0]}; extra == "torch"'] if torch_info else []),
        *_requires_linked(specs),
        "Description-Content-Type: text/markdown", "", docs])
    tag = f"py3-none-{platform_tag()}"
    wheel_meta = "\n".join(["Wheel-Version: 1.0", f"Generator: opkit {__version__}", "Root-Is-Purelib: false",
                            f"Tag: {tag}", ""])
    files[f"{dist_info}/METADATA"] = (metadata.encode(), 0o644)
    files[f"{dist_info}/WHEEL"] = (wheel_meta.encode(), 0o644)
    files[f"{dist_info}/top_level.txt"] = (f"{package}\n".encode(), 0o644)
    record = [f"{arc},{_record_hash(data)},{len(data)}" for arc, (data, _) in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = (("\n".join(record) + "\n").encode(), 0o644)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{package}-{version}-{tag}.whl"
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for arc, (data, mode) in files.items():  # dist-info last, RECORD at the very end
            zi = zipfile.ZipInfo(arc, _ZIP_DATE)
            zi.external_attr = (0o100000 | mode) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    tmp.replace(path)
    return Wheel(path, dist_name, package, version, list(files))
