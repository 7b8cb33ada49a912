"""opkit new MyOp: a starting spec and its kernel, in a workspace (started if needed)."""

from __future__ import annotations

import argparse
import keyword
import re
from pathlib import Path

from opkit import ui
from opkit.errors import UsageError, WorkspaceError

_KERNEL_BODY = """\
template <typename T>
void {name}::compute(opkit::Context& ctx, const Attrs& attrs, const opkit::Input<T>& x, opkit::Output<T>& y) {{
  const T* in = x.data();
  T* out = y.data();  // allocated by opkit: the spec says shapes={{"y": "x"}}
  const T scale = static_cast<T>(attrs.scale);
  ctx.parallel_for(x.size(), [&](int64_t begin, int64_t end) {{
    for (int64_t i = begin; i < end; ++i) out[i] = in[i] * scale;
  }});
}}
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the op's name, CamelCase (e.g. MyOp); its folder is ops/my_op/")
    p.add_argument("--domain", default="com.example", help="the op's ONNX domain (default: com.example)")
    p.add_argument("--workspace", metavar="DIR",
                   help="the workspace (default: nearest folder with ops/, else the current folder)")


def _validate(name: str) -> str:
    from opkit.spec.model import _CAMEL, snake_case
    from opkit.spec.parse import CPP_KEYWORDS

    if not _CAMEL.match(name):
        fixed = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", name) if p)
        raise UsageError(f"op name {name!r} is not CamelCase", expected="letters and digits, starting with a "
                         "capital, e.g. MyOp", got=repr(name),
                         fix=f"opkit new {fixed}" if fixed and _CAMEL.match(fixed) else "choose another name")
    folder = snake_case(name)
    for word in (name, folder):
        if keyword.iskeyword(word) or word in CPP_KEYWORDS or word in {"opkit", "ops", "torch", "onnx", "spec"}:
            raise UsageError(f"op name {name!r} clashes with a C++/Python keyword or a module name",
                             got=word, fix=f"choose another name, e.g. {name}Op")
    return folder


def run(args: argparse.Namespace) -> int:
    from opkit.build.workspace import Workspace, find_workspace, start_workspace
    from opkit.codegen.render import render_kernel_file, render_spec_file
    from opkit.codegen.writer import create_new
    from opkit.spec.model import _DOMAIN, Attr, Input, OpSpec, Output, ShapeRule, Dim, TensorType, TypeVar

    folder = _validate(args.name)
    if not _DOMAIN.match(args.domain):
        raise UsageError(f"domain {args.domain!r} is not a dotted identifier", fix="e.g. --domain com.mycompany")
    if args.workspace:
        ws = Workspace(Path(args.workspace).resolve())
    else:
        try:
            ws = find_workspace()
        except WorkspaceError:
            ws = Workspace(Path.cwd().resolve())
    op_dir = ws.ops_dir / folder
    spec_path, kernel_path = op_dir / "spec.py", op_dir / f"{folder}.cc"
    for path in (op_dir, spec_path, kernel_path):
        if path.exists():
            raise WorkspaceError(f"{ws.rel(path)} already exists", where=str(path),
                                 fix="choose another name; opkit never overwrites your files")
    for other in ws.op_folders():
        if other.lower() == folder.lower():
            raise WorkspaceError(f"an op folder ops/{other} already exists", fix="choose another name")

    # The starting op, described once; both files are rendered from it.
    spec = OpSpec(name=args.name, domain=args.domain, version=1, py_name=folder,
                  typevars=(TypeVar("T", ("float32", "float64")),),
                  inputs=(Input("x", TensorType(typevar="T")),),
                  attrs=(Attr("scale", "float", 1.0, required=False),),
                  outputs=(Output("y", TensorType(typevar="T"), ShapeRule("'x'", (Dim("dims", input="x"),))),),
                  param_order=("x", "scale"), folder=folder)
    spec_text = render_spec_file(args.name, folder, args.domain)
    kernel_text = render_kernel_file(spec, _KERNEL_BODY.format(name=args.name))

    if not (ws.ops_dir.is_dir()):
        ui.info(f"starting a new workspace in {ws.root}")
    created = start_workspace(ws)
    op_dir.mkdir()
    create_new(spec_path, spec_text)
    create_new(kernel_path, kernel_text)
    created += [spec_path, kernel_path]
    for p in created:
        print(f"created {ws.rel(p)}")
    print(f"""
Next steps:
  1. Write {args.name}'s signature and reference maths in {ws.rel(spec_path)}.
  2. Write the kernel in {ws.rel(kernel_path)} (only the maths).
  3. opkit build            # generates the glue, builds the library
  4. opkit verify model.py  # exports your model, runs it in ONNX Runtime, compares with PyTorch""")
    return 0
