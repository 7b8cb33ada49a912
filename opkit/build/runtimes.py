"""Which native libraries a build makes: one per library kind a runtime loads.

"ort": libopkit_ops.so (ONNX Runtime's custom-op library, always); "openvino": libopkit_openvino.so
(an OpenVINO extension: per-op ov::op::Op classes), configured when the openvino package is installed;
"executorch": libopkit_executorch.so (ExecuTorch kernels, one per op's out variant), configured when
the executorch package is installed and built only when asked for (`--runtime executorch`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from opkit.errors import BuildError, RuntimeMissingError

TARGETS = {"ort": "opkit_ops", "openvino": "opkit_openvino", "executorch": "opkit_executorch"}
# Built by a CMake project of their own (opkit.build.torchlib), only when asked: "torch" is the PyTorch op
# library (eager, torch.compile), "torch-cpp" adds the schemas library and opkit-torch-runner.
TORCH_KINDS = ("torch", "torch-cpp")
OPENVINO_INSTALL = "pip install 'opkit[openvino]'  (or: pip install openvino)"
EXECUTORCH_INSTALL = ("pip install 'opkit[executorch]'  (or, leaner: pip install --no-deps "
                      "'executorch>=1.5.1,<1.6' ruamel.yaml tabulate)")


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def executorch_installed() -> bool:
    return importlib.util.find_spec("executorch") is not None


def kinds(asked: list[str] | tuple[str, ...] | None) -> list[str]:
    """The library kinds to build; None: every kind whose runtime is installed."""
    if asked is None:
        return ["ort"] + (["openvino"] if openvino_installed() else [])
    out = []
    for k in asked:
        if k not in TARGETS and k not in TORCH_KINDS:
            raise BuildError(f"no library kind {k!r}", expected=", ".join((*TARGETS, *TORCH_KINDS)))
        if k == "openvino" and not openvino_installed():
            raise RuntimeMissingError("the OpenVINO extension cannot be built: the openvino package is not installed",
                                      fix=OPENVINO_INSTALL)
        if k == "executorch" and not executorch_installed():
            raise RuntimeMissingError("the ExecuTorch kernel library cannot be built: the executorch package is "
                                      "not installed", fix=EXECUTORCH_INSTALL)
        if k not in out:
            out.append(k)
    return out


def cmake_defs() -> dict[str, str]:
    """-D entries that do not depend on what is built now (so that switching runtimes never re-configures)."""
    defs = {}
    if openvino_installed():
        from openvino.utils import get_cmake_path

        defs["OPKIT_OPENVINO_DIR:PATH"] = str(get_cmake_path())
    if executorch_installed():
        from opkit.runtimes.executorch.runner import cmake_dir

        defs["OPKIT_EXECUTORCH_DIR:PATH"] = str(cmake_dir())
    return defs


def targets(kinds_: list[str]) -> list[str]:
    """The targets of the workspace's CMake project (the torch kinds build in their own)."""
    return [TARGETS[k] for k in kinds_ if k in TARGETS]


def library_path(ws: Any, variant: str, kind: str) -> Path:
    if kind in TORCH_KINDS:  # torch-cpp: the same op library; its runner and schemas sit beside it
        from opkit.build.torchlib import library_path as torch_library_path

        return torch_library_path(ws, variant)
    return ws.library_path(variant).parent / f"lib{TARGETS[kind]}.so"


def check_supported(kinds_: list[str], specs: list[Any]) -> None:
    """One build-time error naming every op (and what) a requested runtime cannot carry."""
    if "openvino" in kinds_:
        from opkit.codegen.openvino import unsupported

        lines = [f"{s.qualname} ({s.loc or s.folder}): {why}" for s in specs for why in unsupported(s)]
        if lines:
            raise BuildError("OpenVINO cannot carry the signature of some op(s)", details="\n".join(lines),
                             fix="build and verify these ops for ONNX Runtime only (leave out --runtime openvino)")
    if "executorch" in kinds_:
        from opkit.codegen.executorch import unsupported as et_unsupported

        lines = [f"{s.qualname} ({s.loc or s.folder}): {why}" for s in specs for why in et_unsupported(s)]
        if lines:
            raise BuildError("ExecuTorch cannot carry the signature of some op(s)", details="\n".join(lines),
                             fix="build and verify these ops for the other runtimes only (leave out --runtime "
                                 "executorch), or change the signature (e.g. one str attribute instead of list[str])")


def left_out(kinds_: list[str], specs: list[Any]) -> list[str]:
    """Notes for the ops a runtime's library leaves out (when it was not asked for by name)."""
    if "openvino" not in kinds_:
        return []
    from opkit.codegen.openvino import unsupported

    return [f"the OpenVINO extension leaves out {s.qualname}: {'; '.join(unsupported(s))}"
            for s in specs if unsupported(s)]
