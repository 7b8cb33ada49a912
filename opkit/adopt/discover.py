"""Find every op of a model that the dynamo ONNX exporter cannot translate, in one pass.

torch.onnx.export stops at the first op it has no translation for. Here the model is captured once, as
the exporter captures it (its capture strategies: torch.export non-strict, then strict), decomposed with the
exporter's own registry and decomposition table (its second step), and every remaining call of an op that has neither
a translation nor a decomposition is collected, with how it was called: the dtypes and shapes of its
tensors, its other arguments, its outputs, the module that called it and the source line.

torch 2.13 has no public API for these: :func:`_exporter_internals` is the one place that reaches into
``torch.onnx._internal.exporter``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import re
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opkit.errors import ExportError, OpkitError


@dataclass(frozen=True)
class Value:
    """One argument or output of one call, as the traced graph shows it.

    kind: "tensor" (dtype and dims; a dim is an int, or the text of a symbolic size such as "s0", or
    "u0" for a size only known when the op runs), "tensors" (items), "scalar" (a Python value: int,
    float, bool, str, a list of them, None, a torch.dtype, ...), "symbolic" (a value computed from
    dynamic sizes, text), "absent" (not passed: the schema's default applies).
    """

    kind: str
    dtype: str | None = None
    dims: tuple = ()
    items: tuple = ()
    value: Any = None
    text: str = ""

    @property
    def dtypes(self) -> set[str]:
        if self.kind == "tensor":
            return {self.dtype or "?"}
        if self.kind == "tensors":
            return {d for i in self.items for d in i.dtypes}
        return set()


@dataclass(frozen=True)
class Call:
    args: tuple[Value, ...]  # one per argument of the schema
    outputs: tuple[Value, ...]
    module: str  # the calling module's path in the model ("" for the model itself)
    module_type: str  # its class name
    source: str  # "model.py:14" (the innermost frame outside torch), or ""


@dataclass
class Untranslatable:
    """An op overload the exporter cannot translate, and every call of it in the model."""

    target: Any  # torch._ops.OpOverload
    calls: list[Call] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.target.namespace

    @property
    def op_name(self) -> str:
        return self.target._schema.name.split("::", 1)[1]

    @property
    def overload(self) -> str:
        return self.target._overloadname

    @property
    def name(self) -> str:
        """As ``adopts=`` writes it: "aten::cummax" (the default overload) or "mylib::scale.twice"."""
        base = f"{self.namespace}::{self.op_name}"
        return base if self.overload == "default" else f"{base}.{self.overload}"

    @property
    def schema(self) -> Any:
        return self.target._schema

    @property
    def where(self) -> str:
        first = self.calls[0]
        mod = first.module or "the model"
        return f"{mod} ({first.module_type})" + (f" at {first.source}" if first.source else "")


def _exporter_internals() -> Any:
    """torch.onnx's exporter package: its capture strategies, registry and decomposition pass."""
    try:
        from torch.onnx._internal import exporter

        for name in ("_capture_strategies", "_registration", "_fx_passes"):
            importlib.import_module(f"torch.onnx._internal.exporter.{name}")
        return exporter
    except ImportError as exc:  # pragma: no cover - another torch
        raise OpkitError("opkit adopt cannot read torch.onnx's exporter internals in this torch",
                         details=str(exc), expected="torch 2.13 (torch.onnx._internal.exporter)",
                         fix="install the torch opkit supports") from None


def _exporter_registry(ops: Iterable[Any]) -> Any:
    """The dynamo exporter's registry, with each opkit op's translation registered (as the exporter does with
    custom_translation_table)."""
    from opkit.export.translate import translation

    with _quiet():
        registry = _exporter_internals()._registration.ONNXRegistry.from_torchlib()
    for op in ops:
        registry.register_op(op.torch_op._opoverload, translation(op.spec))
    return registry


@contextlib.contextmanager
def _quiet():
    """torch.export and the exporter log to stderr (symbolic shapes, torchvision): opkit reports what matters."""
    from opkit.export.driver import _quiet_exporter

    shapes_log = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    level = shapes_log.level
    shapes_log.setLevel(logging.ERROR)
    try:
        with _quiet_exporter(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        shapes_log.setLevel(level)


_DATA_DEPENDENT = re.compile(r"data-dependent|DataDependent|GuardOnDataDependent", re.I)


def capture(model: Any, example_inputs: tuple, dynamic_shapes: Any, model_path: Path) -> Any:
    """The ExportedProgram torch.onnx.export would translate: its capture strategies in its order (torch.export
    non-strict, with its flags and dynamic-shape refinement, then strict), or why the model cannot be captured."""
    first: BaseException | None = None
    with _quiet():
        for strategy in _exporter_internals()._capture_strategies.CAPTURE_STRATEGIES:
            result = strategy(verbose=False, dump=False)(model, tuple(example_inputs), None,
                                                        dynamic_shapes=dynamic_shapes)
            if result.exported_program is not None:
                return result.exported_program
            first = first or result.exception
    exc = first or RuntimeError("no capture strategy")
    text = f"{type(exc).__name__}: {exc}"
    line = _line_in(exc, model_path)
    head = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)[:300]
    if _DATA_DEPENDENT.search(text):
        raise ExportError(
            "the model branches on tensor values (data-dependent control flow), which torch.export cannot "
            "trace: no exporter can capture the ops inside such a branch, so opkit cannot list them",
            where=line or str(model_path), got=head,
            fix="replace the Python `if`/loop on tensor data by torch.cond or torch.where (or move it out of "
                "forward), then run `opkit adopt` again")
    raise ExportError(f"torch.export could not capture the model: {type(exc).__name__}: {head}",
                      where=line or str(model_path),
                      fix="make the model traceable by torch.export (supported dynamic_shapes, no Python "
                          "side effects on tensors); `torch.export.export(model, example_inputs)` shows the "
                          "full error")


def _line_in(exc: BaseException, model_path: Path) -> str | None:
    want = model_path.resolve()
    found = None
    e: BaseException | None = exc
    while e is not None:
        for f in traceback.extract_tb(e.__traceback__):
            try:
                if Path(f.filename).resolve() == want:
                    found = f"{model_path}:{f.lineno}"
            except OSError:
                pass
        e = e.__cause__ or e.__context__
    return found


def _value(v: Any) -> Value:
    import torch

    if hasattr(v, "meta") and hasattr(v, "op"):  # an fx.Node: what it computes
        v = v.meta.get("val")
    if isinstance(v, torch.Tensor):
        dims = tuple(int(d) if isinstance(d, int) else str(d) for d in v.shape)
        return Value("tensor", dtype=str(v.dtype).removeprefix("torch."), dims=dims)
    if isinstance(v, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return Value("symbolic", text=str(v))
    if isinstance(v, (list, tuple)):
        items = [_value(x) for x in v]
        if items and all(i.kind == "tensor" for i in items):
            return Value("tensors", items=tuple(items))
        if any(i.kind in ("symbolic", "tensor", "tensors") for i in items):
            return Value("symbolic", text=repr([i.text or i.value for i in items]))
        return Value("scalar", value=[i.value for i in items])
    return Value("scalar", value=v)


def _outputs(node: Any) -> tuple[Value, ...]:
    val = node.meta.get("val")
    if isinstance(val, (list, tuple)):
        return tuple(_value(v) for v in val)
    return (_value(val),)


def _module(node: Any, subgraph: str) -> tuple[str, str]:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:  # inside a torch.cond / while_loop branch, the graph's own name
        return (subgraph, "a branch subgraph") if subgraph else ("", "?")
    path, cls = list(stack.values())[-1]
    cls_name = cls.rsplit(".", 1)[-1] if isinstance(cls, str) else getattr(cls, "__name__", "?")
    return path, cls_name


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def _source(node: Any, root: Path) -> str:
    """The innermost frame of the call outside torch's own files, relative to `root` when inside it."""
    import torch

    torch_dir = str(Path(torch.__file__).parent)
    frames = _FRAME.findall(node.meta.get("stack_trace") or "")
    for file, line in reversed(frames):
        if not file.startswith(torch_dir) and not file.startswith("<"):  # not torch, not generated code
            try:
                file = str(Path(file).resolve().relative_to(root))
            except ValueError:
                pass
            return f"{file}:{line}"
    return ""


def _call(node: Any, root: Path, subgraph: str) -> Call:
    args = []
    for k, a in enumerate(node.target._schema.arguments):
        if k < len(node.args) and not a.kwarg_only:
            args.append(_value(node.args[k]))
        elif a.name in node.kwargs:
            args.append(_value(node.kwargs[a.name]))
        else:
            args.append(Value("absent"))
    path, cls = _module(node, subgraph)
    return Call(tuple(args), _outputs(node), path, cls, _source(node, root))


def discover(model: Any, example_inputs: tuple, *, dynamic_shapes: Any, model_path: Path, root: Path,
             ops: Iterable[Any] = ()) -> list[Untranslatable]:
    """Every op overload of the model without an ONNX translation, in the order of its first call.

    `ops`: the opkit ops of the workspace (their custom ops have translations)."""
    import torch

    program = capture(model, example_inputs, dynamic_shapes, model_path)
    registry = _exporter_registry(ops)
    try:
        with _quiet(), torch.fx.experimental._config.patch(backed_size_oblivious=True):
            program = _exporter_internals()._fx_passes.decompose_with_registry(program, registry)
    except Exception as exc:
        raise ExportError(f"the exporter's decomposition step failed: {type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}",
                          fix="`torch.onnx.export(model, example_inputs, dynamo=True)` shows the full error") from None
    removed = _removed_by_exporter()
    found: dict[str, Untranslatable] = {}
    for subgraph, gm in program.graph_module.named_modules():
        if not isinstance(gm, torch.fx.GraphModule):
            continue
        for node in gm.graph.nodes:
            target = node.target
            if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
                continue
            if target.namespace == "onnx" or registry.is_registered(target) or target in removed:
                continue
            entry = found.setdefault(target.name(), Untranslatable(target))
            entry.calls.append(_call(node, root, subgraph))
    return list(found.values())


def _removed_by_exporter() -> set:
    """The assertion ops the exporter drops before translating (torch's _fx_passes.remove_assertion_nodes)."""
    import torch

    aten = torch.ops.aten
    return {aten.sym_constrain_range_for_size.default, aten._assert_async.default, aten._assert_async.msg,
            aten._assert_scalar.default, aten._assert_tensor_metadata.default}
