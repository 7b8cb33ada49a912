"""opkit export model.py -o model.onnx: write the exported model (opkit ops as custom nodes), or with
--decompose the standard ONNX ops their references export to, checked against eager in a stock
onnxruntime (no op library)."""

from __future__ import annotations

import argparse
from pathlib import Path

from opkit import ui
from opkit.errors import ExportError, NativeRunError, UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a Python file defining `model`, `example_inputs` and optionally `dynamic_shapes`")
    p.add_argument("-o", "--output", metavar="FILE.onnx", help="where to write the model (default: <model>.onnx; "
                                                                 "<model>.xml with --runtime openvino, <model>.pte "
                                                                 "with --runtime executorch, .pt / .pt2 with "
                                                                 "torchscript / aoti)")
    p.add_argument("--runtime", choices=("onnxruntime", "openvino", "torchscript", "aoti", "executorch"),
                   default="onnxruntime",
                   help="onnxruntime: an .onnx model (default); openvino: OpenVINO IR (.xml + .bin) with the custom "
                        "nodes kept, read through opkit's OpenVINO extension (which it needs to be read again); "
                        "torchscript: a TorchScript module (.pt, torch.jit.trace; deprecated upstream); aoti: an "
                        "AOTInductor package (.pt2, torch.export). The .pt/.pt2 run with the PyTorch op library "
                        "(docs/runtime-torch.md); executorch: an ExecuTorch program (.pte), each opkit op one custom "
                        "call, run with libopkit_executorch.so")
    p.add_argument("--workspace", metavar="DIR", help="the workspace (default: nearest folder with ops/ above the model)")
    p.add_argument("--external-data", action="store_true",
                   help="keep the weights in FILE.onnx.data beside the model (default: one self-contained file)")
    p.add_argument("--decompose", action="store_true",
                   help="replace every opkit op by the standard ONNX ops its reference exports to (runs in a "
                        "stock onnxruntime without the op library); checked against eager")
    p.add_argument("--no-check", action="store_true", help="with --decompose: skip the check against eager")
    p.add_argument("--opset", type=int, help="the ONNX opset to export to (default: the exporter's)")
    p.add_argument("--exporter", choices=("dynamo", "legacy"), default="dynamo",
                   help="dynamo: torch.export-based (default); legacy: the TorchScript exporter (dynamo=False) with "
                        "a symbolic function generated from each spec")


def run(args: argparse.Namespace) -> int:
    from opkit.build.workspace import find_workspace

    model_path = Path(args.model)
    if not model_path.is_file():
        raise UsageError(f"no such model file: {model_path}",
                         fix="pass the path of a Python file defining `model` and `example_inputs`")
    if args.runtime == "executorch":
        return _export_executorch(args, model_path)
    ov = args.runtime == "openvino"
    suffix = {"onnxruntime": ".onnx", "openvino": ".xml", "torchscript": ".pt", "aoti": ".pt2"}[args.runtime]
    out = Path(args.output) if args.output else model_path.with_suffix(suffix)
    if ov and (args.decompose or out.suffix != ".xml"):
        raise UsageError("--runtime openvino writes OpenVINO IR: an .xml file (and its .bin), without --decompose",
                         got=str(out), fix="e.g. opkit export model.py --runtime openvino -o model.xml")
    if args.runtime in ("torchscript", "aoti") and (args.decompose or out.suffix != suffix):
        raise UsageError(f"--runtime {args.runtime} writes a {suffix} file, without --decompose", got=str(out),
                         fix=f"e.g. opkit export model.py --runtime {args.runtime} -o model{suffix}")
    if args.runtime == "onnxruntime" and out.suffix != ".onnx":
        raise UsageError(f"the output must be an .onnx file, got {out}", fix="e.g. -o model.onnx")
    if ov:
        from opkit.runtimes import get

        get("openvino").require()
    ws = find_workspace(start=model_path.resolve().parent, explicit=args.workspace)
    if args.runtime in ("torchscript", "aoti"):
        return _export_torch(args.runtime, model_path, out, ws)
    with ui.step("importing torch and the model"):
        import torch

        from opkit.build.specs import add_to_path, import_ops
        from opkit.spec.decorator import record_calls, registered_ops
        from opkit.verify.modelfile import load_model_file

        add_to_path(ws)
        mf = load_model_file(model_path, ws.root)
        import_ops(ws)
    mf.model.eval()
    with ui.step("running the model eagerly"), torch.no_grad(), record_calls() as calls:
        from opkit.verify.driver import flatten_outputs

        eager = flatten_outputs(mf.model(*mf.example_inputs))
    called = sorted(calls)
    if ov:
        return _export_ir(args, ws, mf, out)
    if not args.decompose:
        from opkit.export.legacy import export_model

        with ui.step(f"exporting to ONNX (torch.onnx, {args.exporter})"):
            ex = export_model(mf.model, mf.example_inputs, out, registered_ops(), dynamic_shapes=mf.dynamic_shapes,
                              opset=args.opset, external_data=args.external_data, exporter=args.exporter)
        from opkit.export.decompose import custom_nodes

        nodes = custom_nodes(ex.model, {op.spec.domain for op in registered_ops()})
        print(f"wrote {out} (opset {ex.opset}, {len(ex.model.graph.node)} nodes; custom: {', '.join(nodes) or 'none'})"
              + (f" + {out.name}.data" if args.external_data else ""))
        if nodes:
            print("run it with the op library: opkit run " + str(out) + " --input NAME=FILE.npy, or register "
                  "build/release/lib/libopkit_ops.so in your ORT session")
        return 0

    from opkit.export.decompose import decompose_export

    with ui.step(f"exporting with {len(called)} op(s) decomposed into standard ONNX ops"):
        dec = decompose_export(mf.model, mf.example_inputs, out, registered_ops(), dynamic_shapes=mf.dynamic_shapes,
                               opset=args.opset, external_data=args.external_data, only=called)
    print(f"wrote {out} (opset {dec.opset}, {len(dec.model.graph.node)} nodes)")
    for q in dec.decomposed:
        print(f"  decomposed: {q}")
    for q, why in dec.failed.items():
        print(f"  NOT decomposed: {q}: its reference does not export:")
        print("    " + why.strip().replace("\n", "\n    "))
    adopted = sorted(f"{op.spec.qualname} (adopts {op.spec.adopts})" for op in registered_ops()
                     if op.spec.adopts and op.spec.qualname in dec.remaining)
    if dec.remaining:
        raise ExportError(f"the decomposed model still has custom nodes: {', '.join(dec.remaining)}",
                          where=str(out), expected="only standard ONNX ops",
                          got=f"{len(dec.failed)} op(s) whose reference does not export" if dec.failed else
                          "adopted op(s), whose original has no ONNX translation: " + ", ".join(adopted)
                          if adopted else "custom nodes from ops the model calls through torch.ops directly",
                          fix="make the reference traceable by torch.export (tensor ops only: no "
                              ".item()/.tolist()/data-dependent Python), or ship the op library with the model")
    if args.no_check:
        return 0
    return _check(dec.path, mf, eager)


def _export_executorch(args: argparse.Namespace, model_path: Path) -> int:
    """opkit export model.py --runtime executorch -o model.pte."""
    from opkit.build.workspace import find_workspace
    from opkit.runtimes import get

    if args.decompose:
        raise UsageError("--decompose writes an ONNX model; it does not combine with --runtime executorch")
    get("executorch").require()
    out = Path(args.output) if args.output else model_path.with_suffix(".pte")
    if out.suffix != ".pte":
        raise UsageError(f"an ExecuTorch program is a .pte file, got {out}", fix="e.g. -o model.pte")
    ws = find_workspace(start=model_path.resolve().parent, explicit=args.workspace)
    with ui.step("importing torch and the model"):
        from opkit.build.specs import add_to_path, import_ops
        from opkit.spec.decorator import registered_ops
        from opkit.verify.modelfile import load_model_file

        add_to_path(ws)
        mf = load_model_file(model_path, ws.root)
        import_ops(ws)
    mf.model.eval()
    from opkit.runtimes.executorch.pte import export_program

    with ui.step("exporting to ExecuTorch (torch.export -> edge -> .pte)"):
        program = export_program(mf.model, mf.example_inputs, out, registered_ops(), dynamic_shapes=mf.dynamic_shapes)
    print(f"wrote {out} ({len(program.operators)} operator(s); opkit ops: {', '.join(program.custom) or 'none'})")
    if program.custom:
        print("run it with the kernel library loaded: libopkit_executorch.so from `opkit build --runtime executorch` "
              "(Python: ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL) before loading the program)")
    return 0


def _export_ir(args: argparse.Namespace, ws, mf, out: Path) -> int:  # noqa: ANN001 - Workspace, ModelFile
    """ONNX export -> OpenVINO's ONNX frontend with the extension (a child process) -> IR (.xml + .bin)."""
    from opkit.build.driver import build
    from opkit.export.legacy import export_model
    from opkit.runtimes import get
    from opkit.runtimes.base import Prepare
    from opkit.runtimes.child import crash_error, run_worker
    from opkit.spec.decorator import registered_ops

    with ui.step("building the OpenVINO extension"):
        lib = build(ws, runtimes=["openvino"]).library_for("openvino")
    art = ws.build_dir / "export" / out.stem
    art.mkdir(parents=True, exist_ok=True)
    with ui.step(f"exporting to ONNX (torch.onnx, {args.exporter})"):
        ex = export_model(mf.model, mf.example_inputs, art / "model.onnx", registered_ops(),
                          dynamic_shapes=mf.dynamic_shapes, opset=args.opset, exporter=args.exporter)
    onnx_file = get("openvino").prepare(Prepare(onnx_path=ex.path, onnx_model=ex.model))
    with ui.step("converting to OpenVINO IR (OpenVINO's ONNX frontend + the extension, child process)"):
        child = run_worker({"model": str(onnx_file), "libraries": [str(lib)], "xml": str(out.resolve())}, art,
                           module="opkit.runtimes.openvino.save")
    if child.crashed:
        raise crash_error(f"converting {ex.path} to OpenVINO IR", child, [], runtime="OpenVINO")
    if child.error:
        raise NativeRunError("OpenVINO could not read the exported model with the extension",
                             details=child.error[:2000], fix="`opkit verify model.py --runtime openvino` shows which "
                             "op fails and why")
    print(f"wrote {out} + {out.with_suffix('.bin').name} (OpenVINO IR; custom: "
          f"{', '.join(child.result.get('custom', [])) or 'none'})")
    print(f"reading it needs the extension: core.add_extension({str(lib)!r}) before core.read_model "
          f"(C++: ov::Core::add_extension), or `opkit run {out} --runtime openvino`")
    return 0


def _check(path: Path, mf, eager: list) -> int:
    """Run the decomposed model in a stock onnxruntime (child process, no library); compare with eager."""
    import numpy as np

    from opkit.verify.compare import compare
    from opkit.verify.driver import save_inputs, to_numpy
    from opkit.runtimes.child import crash_error, run_worker

    art = path.parent / f".{path.stem}.check"
    save_inputs(list(mf.example_inputs), art / "inputs")
    with ui.step("checking it in a stock onnxruntime (no op library) against eager"):
        child = run_worker({"model": str(path.resolve()), "libraries": [],
                            "runs": [{"label": "example inputs", "inputs": str(art / "inputs"),
                                      "outputs": str(art / "ort")}]}, art)
    if child.crashed:
        raise crash_error(f"running {path} in onnxruntime", child, [])
    if child.error:
        raise NativeRunError(f"a stock onnxruntime failed to run the decomposed {path}", details=child.error[:2000])
    names = child.result.get("outputs", [])
    ok = True
    for j, want in enumerate(eager):
        got = np.load(art / "ort" / f"{j}.npy", allow_pickle=False)
        c = compare(names[j] if j < len(names) else f"output{j}", got, to_numpy(want), mf.rtol, mf.atol)
        ok = ok and c.ok
        print(f"  {c.name}: {'x'.join(map(str, c.shape))} {c.dtype} max abs err {c.max_abs:.3g} max rel err "
              f"{c.max_rel:.3g} (rtol {c.rtol:g} atol {c.atol:g}) {'ok' if c.ok else 'FAIL ' + (c.problem or '')}")
    import shutil

    shutil.rmtree(art, ignore_errors=True)
    print("decomposed model matches eager in a stock onnxruntime: PASS" if ok else "FAIL: the decomposed model "
          "differs from eager")
    return 0 if ok else 1


def _export_torch(runtime: str, model_path: Path, out: Path, ws) -> int:  # noqa: ANN001 - a Workspace
    """A .pt (TorchScript) or .pt2 (AOTInductor) of the model: each opkit op one call of its torch op."""
    with ui.step("importing torch and the model"):
        from opkit.build.specs import add_to_path, import_ops
        from opkit.torchop.export import export_aoti, export_torchscript
        from opkit.verify.modelfile import load_model_file

        add_to_path(ws)
        mf = load_model_file(model_path, ws.root)
        import_ops(ws)
    if runtime == "torchscript":
        with ui.step("exporting to TorchScript (torch.jit.trace; torch.jit is deprecated upstream: prefer "
                     "--runtime aoti)"):
            how = export_torchscript(mf.model, mf.example_inputs, out)
        print(f"wrote {out} (torch.jit.{how})")
    else:
        cached = export_aoti(mf.model, mf.example_inputs, mf.dynamic_shapes, out, ws.build_dir / "torch-cache")
        print(f"wrote {out} (AOTInductor package{', from the cache' if cached else ''})")
    print("run it with the PyTorch op library: in Python opkit.load_native() (or torch.ops.load_library of "
          "libopkit_torch.so) before loading it; in C++ libtorch load libopkit_torch_schemas.so and "
          "libopkit_torch.so (`opkit build --torch`; docs/runtime-torch.md)")
    return 0
