"""What an op library records about itself: the `OPKIT_INFO{json}` string that register.cc embeds
(opkit version, ORT API version, ops). Read from the file's bytes, never by loading the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opkit.errors import OpkitError, UsageError

MARKER = b"OPKIT_INFO{"


def read_library_info(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such file: {path}", fix="`opkit build` prints the path of the workspace's library")
    data = path.read_bytes()
    if not data.startswith(b"\x7fELF"):
        raise UsageError(f"{path} is not a shared library (no ELF header)", expected="an op library built by opkit",
                         got=f"a file starting with {data[:8]!r}")
    start = data.find(MARKER)
    problems = []
    while start >= 0:
        end = data.find(b"\0", start)
        raw = data[start + len(MARKER) - 1: end if end >= 0 else len(data)]
        try:
            info = json.loads(raw.decode("utf-8"))
            if isinstance(info, dict) and "ops" in info and "ort_api_version" in info:
                return info
            problems.append("a record without ops/ort_api_version")
        except (UnicodeDecodeError, ValueError) as exc:
            problems.append(f"an unreadable record ({exc})")
        start = data.find(MARKER, start + 1)
    raise OpkitError(f"{path} holds no opkit record", expected="an op library built by opkit (it embeds "
                     "OPKIT_INFO{...} in register.cc)", got="; ".join(problems) or "no OPKIT_INFO record",
                     fix="rebuild it with `opkit build`; a library stripped of .rodata or built by hand has none")


def render_info(path: Path, info: dict[str, Any]) -> str:
    api = info.get("ort_api_version")
    lines = [f"library:         {path}",
             f"built by:        opkit {info.get('opkit_version', '?')}"]
    if info.get("runtime") == "openvino":  # libopkit_openvino.so (opkit/codegen/openvino.py)
        lines.append("runtime:         OpenVINO extension (ov::Core::add_extension; the ONNX frontend maps the "
                     "custom nodes to its ops)")
    else:
        lines.append(f"ORT API version: {api} (loads in onnxruntime >= 1.{api}; older ones refuse it with an error)")
    lines.append(f"ops:             {len(info.get('ops', []))}")
    for op in info.get("ops", []):
        lines.append(f"  {op.get('domain')}::{op.get('name')} (opset version {op.get('version')})")
        lines.append(f"    {op.get('signature')}")
        kernels = op.get("kernels") or []
        if kernels and kernels != [""]:
            lines.append(f"    kernels: {'; '.join(kernels)}")
    return "\n".join(lines)
