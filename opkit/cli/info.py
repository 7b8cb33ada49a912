"""opkit info [LIB.so]: what an op library records (opkit version, ORT API version, ops), read from
the file without loading it. `--cmake` prints the ONNX Runtime paths a C++ application builds with."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from opkit.errors import UsageError, WorkspaceError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("library", nargs="?", help="an op library (default: the workspace's build/release/lib/...)")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.add_argument("--runtime", choices=("onnxruntime", "openvino", "torch"), default="onnxruntime",
                   help="without LIB.so: the workspace's library of this runtime (openvino: libopkit_openvino.so, "
                        "torch: libopkit_torch.so)")
    p.add_argument("--cmake", action="store_true",
                   help="print -D arguments for a C++ application's cmake: ONNX Runtime's headers and library")


def run(args: argparse.Namespace) -> int:
    if args.cmake:
        from opkit.build.headers import ensure_headers
        from opkit.native.runner import ort_library

        print(f"-DONNXRUNTIME_INCLUDE_DIR={ensure_headers().include_dir} -DONNXRUNTIME_LIBRARY={ort_library()}")
        return 0
    from opkit.native.info import read_library_info, render_info

    if args.library:
        path = Path(args.library)
    else:
        from opkit.build.workspace import find_workspace

        try:
            path = find_workspace().library_path()
            if args.runtime == "openvino":
                path = path.with_name("libopkit_openvino.so")
            elif args.runtime == "torch":
                path = path.with_name("libopkit_torch.so")
        except WorkspaceError:
            raise UsageError("no library given and no workspace here", fix="pass a path: opkit info path/to/lib.so")
        if not path.is_file():
            raise UsageError(f"the workspace's library is not built yet: {path}",
                             fix="run `opkit build`" + (" (with openvino installed)" if args.runtime == "openvino" else
                                                      " --torch" if args.runtime == "torch" else ""))
    if path.is_file() and b"OPKIT_TORCH_INFO{" in path.read_bytes():  # the PyTorch op library
        from opkit.torchop.native import read_torch_info

        info = read_torch_info(path)
        if args.json:
            print(json.dumps(info, indent=1))
        else:
            print(f"library:         {path}\nbuilt by:        opkit {info.get('opkit_version', '?')}\n"
                  f"torch:           {info['torch_version']} (loads only into that torch version)\n"
                  f"ops:             {len(info.get('ops', []))}")
            for op in info.get("ops", []):
                print(f"  {op.get('domain')}::{op.get('name')} (torch op {op.get('torch_op')})\n    {op.get('signature')}")
        return 0
    info = read_library_info(path)
    print(json.dumps(info, indent=1) if args.json else render_info(path, info))
    return 0
