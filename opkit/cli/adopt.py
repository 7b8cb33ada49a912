"""opkit adopt model.py: every op of the model that torch.onnx.export cannot translate becomes an opkit op
(spec + kernel skeleton) that the unmodified model exports to."""

from __future__ import annotations

import argparse
from pathlib import Path

from opkit.errors import UsageError, WorkspaceError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a Python file defining `model`, `example_inputs` and optionally `dynamic_shapes`")
    p.add_argument("--op", action="append", metavar="OP",
                   help="adopt only this op (as listed, e.g. aten::cummax); repeat for several (default: all)")
    p.add_argument("--domain", default="com.example", help="the ONNX domain of the new ops (default: com.example)")
    p.add_argument("--workspace", metavar="DIR",
                   help="the workspace (default: nearest folder with ops/ above the model, else the model's folder)")
    p.add_argument("--list", action="store_true", help="only list the untranslatable ops; write nothing")


def run(args: argparse.Namespace) -> int:
    from opkit.build.workspace import Workspace, find_workspace
    from opkit.spec.model import _DOMAIN
    from opkit.spec.parse import RESERVED_DOMAINS

    model = Path(args.model)
    if not model.is_file():
        raise UsageError(f"no such model file: {model}", fix="pass the path of a Python file defining `model` and "
                         "`example_inputs`")
    if not _DOMAIN.match(args.domain) or args.domain in RESERVED_DOMAINS:
        raise UsageError(f"--domain {args.domain!r} is not a domain of your own", expected="a dotted identifier "
                         "not used by ONNX or ONNX Runtime", got=args.domain, fix="e.g. --domain com.mycompany")
    if args.workspace:
        ws = Workspace(Path(args.workspace).resolve())
    else:
        try:
            ws = find_workspace(start=model.resolve().parent)
        except WorkspaceError:
            ws = Workspace(model.resolve().parent)
    from opkit.adopt.driver import adopt

    result = adopt(model, ws, domain=args.domain, only=args.op, list_only=args.list)
    print(result.render())
    return result.exit_code
