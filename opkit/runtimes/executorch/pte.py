"""A torch model -> an ExecuTorch program (.pte) in which each opkit op is one custom call.

torch.export -> executorch.exir.to_edge_transform_and_lower -> to_executorch. The last step swaps
every functional call for its out variant (opkit.torchop.out registers ``<op>.out`` with torch), so
the .pte calls ``<namespace>::<op>.out`` with outputs the memory planner preallocated at the
export's upper-bound shapes; the ExecuTorch kernel library (opkit.codegen.executorch) registers
exactly those names. Also: which operators a .pte calls, read from the file (no ExecuTorch runtime).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opkit.errors import ExportError

INSTALL = "pip install 'opkit[executorch]'"
LEAN_INSTALL = "pip install --no-deps 'executorch>=1.5.1,<1.6' ruamel.yaml tabulate"


@dataclass
class Program:
    path: Path
    operators: list[str]  # every operator the program calls ("aten::addmm.out", "opkit_examples::scaled_gelu.out")
    custom: list[str]  # the opkit ops' kernels among them
    seconds: float


@contextlib.contextmanager
def _quiet():
    loggers = [logging.getLogger(n) for n in ("torch.export", "torch._export", "executorch", "root")]
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


def _unbounded_ops(ops: Iterable[Any]) -> list[Any]:
    """The ops whose output size the kernel decides (the likely source of an unbounded size)."""
    return [op for op in ops if any(o.shape is None or not o.shape.static for o in op.spec.outputs)]


def adopt_calls(exported: Any, ops: Iterable[Any]) -> int:
    """Every call of an op that an opkit op adopts (``adopts=``) becomes a call of the opkit op, its arguments
    as the spec's parameters, as the ONNX export maps them: ExecuTorch then runs the adopted op's kernel (the
    original, e.g. an op defined from Python, has no out variant or kernel there). Returns the calls replaced."""
    from opkit.export.translate import adopted_arguments, adopted_target, adoption_binding

    table = {}
    for op in ops:
        target = adopted_target(op.spec) if op.spec.adopts else None
        if target is not None:
            table[target] = (op, adoption_binding(op.spec, target))
    gm = exported.graph_module
    replaced = 0
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in table:
            continue
        op, bound = table[node.target]
        given = [node.args[k] if k < len(node.args) else node.kwargs.get(a.name)
                 for k, a in enumerate(node.target._schema.arguments)]
        params = adopted_arguments(op.spec, node.target, bound, given)
        node.target = op.torch_op._opoverload
        node.args, node.kwargs = tuple(params[p] for p in op.spec.param_order), {}
        replaced += 1
    if replaced:
        gm.recompile()
    return replaced


def export_program(model: Any, example_inputs: tuple, path: Path, ops: Iterable[Any], *,
                   dynamic_shapes: Any = None) -> Program:
    """Export `model` to an ExecuTorch program at `path`; `ops`: the opkit ops (Op objects) it may call."""
    import time

    import torch

    from opkit.codegen.executorch import kernel_name
    from opkit.torchop.out import register_out_variant

    t0 = time.perf_counter()
    ops = list(ops)
    for op in ops:
        register_out_variant(op.spec)
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    captured = io.StringIO()
    stage = "torch.export"
    try:
        with _quiet(), contextlib.redirect_stdout(captured):
            exported = torch.export.export(model, tuple(example_inputs), dynamic_shapes=dynamic_shapes)
            adopt_calls(exported, ops)
            stage = "to_edge_transform_and_lower"
            # opkit's ops are not core ATen: the edge dialect's IR check would refuse them.
            edge = to_edge_transform_and_lower(exported, compile_config=EdgeCompileConfig(_check_ir_validity=False))
            stage = "to_executorch"
            program = edge.to_executorch()
    except ExportError:  # adopt_calls: a call that the adopted spec cannot express
        raise
    except Exception as exc:
        text = str(exc).strip()
        head = next((ln for ln in text.splitlines() if ln.strip()), type(exc).__name__)
        if "finite upper bound" in text:
            culprits = _unbounded_ops(ops)
            names = ", ".join(op.spec.qualname for op in culprits) or "an op"
            raise ExportError(
                f"ExecuTorch needs an upper bound for every size, and {names} has an output whose size the "
                f"kernel decides with none", details=f"{stage}: {head[:400]}",
                expected="a bound in the op's fake implementation, e.g. `n = torch.library.get_ctx()."
                         "new_dynamic_size()` followed by `torch._check(n <= x.shape[0])`; and upper bounds "
                         "on the model's dynamic dims (torch.export.Dim(..., max=N))",
                fix="add the torch._check bound to the op's @register_fake function in its spec.py") from None
        if "upper bound" in text.lower():
            raise ExportError(f"ExecuTorch needs an upper bound for every dynamic size: {head[:300]}",
                              fix="give each torch.export.Dim of `dynamic_shapes` a max=") from None
        raise ExportError(f"exporting to ExecuTorch failed in {stage}: {type(exc).__name__}: {head[:400]}",
                          details="\n".join(text.splitlines()[1:25]) or None,
                          fix="make the model exportable by torch.export (see the error); "
                              "`opkit verify --runtime onnxruntime` checks the same model without ExecuTorch") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(program.buffer)
    tmp.replace(path)
    operators = program_operators(path)
    ours = {kernel_name(op.spec) for op in ops}
    return Program(path, operators, [o for o in operators if o in ours], time.perf_counter() - t0)


@contextlib.contextmanager
def references_inlined(ops: Iterable[Any]):
    """Inside the block each opkit op (Op object) calls its reference instead of its torch op, so that
    an export traces the reference's own torch ops."""
    ops = list(ops)
    saved = [op._torch_op for op in ops]
    try:
        for op in ops:
            names = op.spec.param_order
            op._torch_op = (lambda ref, ns: lambda *args: ref(**dict(zip(ns, args))))(op.reference, names)
        yield
    finally:
        for op, t in zip(ops, saved):
            op._torch_op = t


def program_operators(path: Path) -> list[str]:
    """The operators an ExecuTorch program calls, as the kernel registry names them."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    data = Path(path).read_bytes()
    pte = deserialize_pte_binary(data)
    program = getattr(pte, "program", pte)
    names = []
    for plan in program.execution_plan:
        for op in plan.operators:
            names.append(f"{op.name}.{op.overload}" if op.overload else op.name)
    return list(dict.fromkeys(names))


_MISSING = re.compile(r"Missing operator: \[\d+\] (\S+)")


def missing_operators_in_log(log: str) -> list[str]:
    """The operator names ExecuTorch's log says no kernel was registered for."""
    return list(dict.fromkeys(_MISSING.findall(log)))


def missing_kernel_message(missing: list[str], library: str | None) -> str:
    """Says which op has no kernel and which library registers it (instead of ExecuTorch's error code)."""
    ours = [m for m in missing if not m.startswith(("aten::", "dim_order_ops::", "executorch_prim::"))]
    names = ", ".join(ours or missing) or "an operator"
    lib = library or "libopkit_executorch.so"
    if ours:
        return (f"the program calls {names}, which no loaded kernel library registers; load {lib} "
                f"(built by `opkit build --runtime executorch`) before loading the program")
    return (f"the program calls {names}, which ExecuTorch's CPU kernels in this wheel do not provide; "
            f"lower the model without that op or use an executorch build that has it")


def case_module(spec: Any, op: Any, onnx_model: Any, input_names: list[str]) -> Any:
    """A torch module that calls `op` as the one-node ONNX model of an `opkit test` case does: the
    attributes of its node baked in, the graph inputs in order (bfloat16 in and out as float32)."""
    import onnx
    import torch

    node = next(n for n in onnx_model.graph.node if n.domain == spec.domain and n.op_type == spec.name)
    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    attrs: dict[str, Any] = {}
    for a in spec.attrs:
        v = values[a.name]
        if a.kind == "bool":
            v = bool(v)
        elif a.kind == "str":
            v = v.decode() if isinstance(v, bytes) else v
        elif a.kind in ("floats", "ints"):
            v = list(v)
        attrs[a.name] = v
    present = set(n.removesuffix("__bf16") for n in node.input if n)
    slots: list[tuple[str, list[int]]] = []  # spec input -> positions among the graph inputs
    for i in spec.inputs:
        if i.variadic:
            slots.append((i.name, [k for k, n in enumerate(input_names) if n.startswith(i.name + "_")
                                   and n.removeprefix(i.name + "_").isdigit()]))
        else:
            slots.append((i.name, [input_names.index(i.name)] if i.name in present else []))
    bf16_in = {n.removesuffix("__bf16") for n in node.input if n.endswith("__bf16")}
    bf16_out = [o.endswith("__bf16") for o in node.output]
    variadic = {i.name for i in spec.inputs if i.variadic}

    class Case(torch.nn.Module):
        def forward(self, *xs: Any) -> Any:
            xs = tuple(x.to(torch.bfloat16) if input_names[k] in bf16_in else x for k, x in enumerate(xs))
            args: dict[str, Any] = dict(attrs)
            for name, pos in slots:
                args[name] = [xs[k] for k in pos] if name in variadic else (xs[pos[0]] if pos else None)
            out = op.torch_op(*[args[n] for n in spec.param_order])
            outs = out if isinstance(out, tuple) else (out,)
            return tuple(o.float() if bf else o for o, bf in zip(outs, bf16_out))

    return Case()

