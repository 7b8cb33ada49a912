"""Export a model with torch.onnx (the dynamo exporter), each opkit op one custom node."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opkit.errors import ExportError, OpkitError


@dataclass
class Exported:
    path: Path
    model: Any  # onnx.ModelProto
    exporter: str
    opset: int


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter logs warnings about unrelated packages (torchvision); keep our output readable."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.onnx._internal.exporter._registration",
                                               "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def export(model: Any, example_inputs: tuple, path: Path, ops: Iterable[Any], *,
           dynamic_shapes: Any = None, opset: int | None = None, external_data: bool = False) -> Exported:
    import onnx
    import torch

    from opkit.export.translate import translation_table

    table = translation_table(ops)
    path.parent.mkdir(parents=True, exist_ok=True)
    captured = io.StringIO()
    try:
        with _quiet_exporter(), contextlib.redirect_stdout(captured):
            program = torch.onnx.export(
                model, example_inputs, dynamic_shapes=dynamic_shapes, custom_translation_table=table,
                dynamo=True, opset_version=opset, verbose=False, report=False, optimize=True)
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None:  # an opkit error raised inside a translation (an adopted op's check) says it all
            if isinstance(cause, OpkitError):
                raise cause from None
            cause = cause.__cause__ or cause.__context__
        msg = str(exc).strip().splitlines()
        head = next((ln for ln in msg if ln.strip()), type(exc).__name__)
        raise ExportError(f"torch.onnx.export (dynamo exporter) failed: {type(exc).__name__}: {head[:400]}",
                          details="\n".join(msg[1:25]) if len(msg) > 1 else None,
                          fix="make the model traceable by torch.export (no data-dependent Python control flow, "
                              "supported dynamic_shapes); `python -c 'import torch; torch.export.export(...)'` "
                              "shows the full error") from None
    for p in (path, path.with_name(path.name + ".data")):
        p.unlink(missing_ok=True)
    program.save(str(path), external_data=external_data)
    proto = onnx.load(str(path), load_external_data=False)
    opset_used = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return Exported(path, proto, "dynamo", opset_used)
