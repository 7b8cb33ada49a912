"""Renderers of the OpenVINO extension (templates/openvino/): per op an ov::op::Op subclass and its
ONNX-frontend converter, one registration file, the CMake fragment. Pure: they return text."""

from __future__ import annotations

from typing import Any

from opkit.spec.model import OpSpec


def unsupported(spec: OpSpec) -> list[str]:
    """What of this op's signature OpenVINO cannot carry (empty when it can all)."""
    return []
