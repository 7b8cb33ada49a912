"""A decomposed export: every opkit op replaced by the standard ONNX ops its reference exports to,
so the model runs in a stock onnxruntime without the op library.

How: while exporting, each op's call goes to its reference (torch ops) instead of the torch custom
op, so torch.export traces the reference and the dynamo exporter translates it to standard ONNX.
An op whose reference does not export (numpy, data-dependent Python, ...) stays a custom node;
`Decomposed.failed` says which and why. Reused by `opkit export --decompose` and `opkit bench`.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opkit.errors import ExportError


@dataclass
class Decomposed:
    path: Path
    model: Any  # onnx.ModelProto (without external data loaded)
    opset: int
    decomposed: list[str]  # qualnames of the ops inlined
    failed: dict[str, str] = field(default_factory=dict)  # qualname -> why its reference did not export
    remaining: list[str] = field(default_factory=list)  # custom-domain node types still in the graph

    @property
    def complete(self) -> bool:
        return not self.failed and not self.remaining


def _call_reference(op: Any) -> Any:
    names = op.spec.param_order
    ref = op.reference

    def call(*args: Any) -> Any:
        return ref(**dict(zip(names, args)))

    return call


@contextlib.contextmanager
def references_inlined(ops: Iterable[Any]) -> Iterator[None]:
    """Inside the block, calling these opkit ops runs their reference (plain torch ops) instead of the
    torch custom op, so tracing sees through them."""
    saved = []
    try:
        for op in ops:
            saved.append((op, op.__dict__["_torch_op"]))
            op._torch_op = _call_reference(op)
        yield
    finally:
        for op, torch_op in saved:
            op._torch_op = torch_op


def custom_nodes(model: Any, domains: set[str]) -> list[str]:
    found = {f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain in domains}
    for f in model.functions:
        found |= {f"{n.domain}::{n.op_type}" for n in f.node if n.domain in domains}
    return sorted(found)


def why(exc: ExportError) -> str:
    """The lines of an export failure that say what went wrong and where (torch.export's summary)."""
    lines = [ln.strip() for ln in (exc.what + "\n" + (exc.details or "")).splitlines() if ln.strip()]
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln) for ln in lines]
    keep = [ln for ln in lines if ln.startswith("<class '") or ln.startswith("Caused by:")]
    return "\n".join(keep) if keep else "\n".join(lines[:3])


def decompose_export(model: Any, example_inputs: tuple, path: Path, ops: Iterable[Any], *,
                     dynamic_shapes: Any = None, opset: int | None = None, external_data: bool = False,
                     only: Iterable[str] | None = None) -> Decomposed:
    """Export `model` to `path` with the given opkit ops (all, or the qualnames in `only`) decomposed.

    Tries all at once; if that fails, tries each op alone to find the ones whose reference does not
    export, and exports with the others decomposed. Raises ExportError only when even that fails.
    """
    from opkit.export.driver import export

    ops = list(ops)
    wanted = set(only) if only is not None else {op.spec.qualname for op in ops}
    targets = [op for op in ops if op.spec.qualname in wanted]
    domains = {op.spec.domain for op in ops}

    def attempt(inline: list[Any], dest: Path):
        keep = [op for op in ops if op not in inline]
        # torch.export prints the failing graph on stderr: the reason (below) is what the user needs
        with references_inlined(inline), contextlib.redirect_stderr(io.StringIO()):
            return export(model, example_inputs, dest, keep, dynamic_shapes=dynamic_shapes, opset=opset,
                          external_data=external_data)

    failed: dict[str, str] = {}
    try:
        exported = attempt(targets, path)
    except ExportError as whole:
        with tempfile.TemporaryDirectory(prefix="opkit-decompose-") as tmp:
            for op in targets:
                try:
                    attempt([op], Path(tmp) / "probe.onnx")
                except ExportError as exc:
                    failed[op.spec.qualname] = why(exc)
        if not failed:  # no single op is to blame: the combination fails
            raise whole
        good = [op for op in targets if op.spec.qualname not in failed]
        exported = attempt(good, path)
    return Decomposed(exported.path, exported.model, exported.opset,
                      sorted(op.spec.qualname for op in targets if op.spec.qualname not in failed),
                      failed, custom_nodes(exported.model, domains))
