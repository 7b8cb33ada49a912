"""opkit check model.onnx: the model's custom-domain nodes, checked against the workspace's specs."""

from __future__ import annotations

import argparse
from pathlib import Path

from opkit import jsonio, ui
from opkit.errors import UsageError, WorkspaceError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an ONNX model file (.onnx)")
    p.add_argument("--workspace", metavar="DIR",
                   help="the workspace whose specs to check against (default: nearest folder with ops/ above the "
                        "model, else above the current folder)")
    p.add_argument("--json", metavar="FILE", help="also write the nodes and findings as JSON to FILE")


def run(args: argparse.Namespace) -> int:
    from opkit.build.specs import load_specs
    from opkit.build.workspace import find_workspace

    path = Path(args.model)
    if not path.is_file():
        raise UsageError(f"no such model file: {path}", fix="pass the path of an .onnx file")
    if args.workspace:
        ws = find_workspace(explicit=args.workspace)
    else:
        try:
            ws = find_workspace(start=path.resolve().parent)
        except WorkspaceError:
            ws = find_workspace()
    specs, _, cached = load_specs(ws)
    ui.info(f"{len(specs)} spec(s) of {ws.root}" + (" (cached)" if cached else ""))

    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise UsageError(f"{path} is not a readable ONNX model: {type(exc).__name__}: {exc}",
                         fix="pass an .onnx file written by torch.onnx.export or onnx.save") from None
    from opkit.check.nodes import check_model, render

    result = check_model(model, specs)
    print(render(result, str(path), len(specs)))
    if args.json:
        Path(args.json).write_text(jsonio.dumps(result.to_dict()))
        ui.info(f"wrote {args.json}")
    return 0 if result.ok else 1
