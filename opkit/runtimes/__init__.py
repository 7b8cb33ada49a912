"""The runtimes opkit can run a model in, by name; each is imported only when chosen.

`KNOWN` is the table of every runtime (name -> "module:Class"), like entry points: adding a runtime
is one module under opkit/runtimes/ plus one line here (see opkit/runtimes/base.py for the contract).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from opkit.errors import UsageError

if TYPE_CHECKING:
    from opkit.runtimes.base import Runtime

KNOWN: dict[str, str] = {
    "onnxruntime": "opkit.runtimes.onnxruntime_python:OnnxRuntime",
    "onnxruntime-cpp": "opkit.runtimes.onnxruntime_cpp:OnnxRuntimeCpp",
    "python": "opkit.runtimes.python_reference:PythonReference",
    "openvino": "opkit.runtimes.openvino:OpenVino",
    "openvino-cpp": "opkit.runtimes.openvino.cpp:OpenVinoCpp",
    "torch": "opkit.runtimes.torch:TorchEager",
    "torch-compile": "opkit.runtimes.torch:TorchCompile",
    "torchscript": "opkit.runtimes.torch:TorchScript",
    "aoti": "opkit.runtimes.torch:Aoti",
    "executorch": "opkit.runtimes.executorch:ExecuTorch",
    "executorch-cpp": "opkit.runtimes.executorch.cpp:ExecuTorchCpp",
}
DEFAULT = ("onnxruntime", "onnxruntime-cpp")
ALL = "all"

_loaded: dict[str, Runtime] = {}


def get(name: str) -> Runtime:
    """The runtime called `name` (imports its module on first use). Unknown: a UsageError listing them."""
    if name not in KNOWN:
        raise UsageError(f"unknown runtime {name!r}", expected="one of " + ", ".join(KNOWN) + f", or {ALL!r}",
                         got=name, fix="`opkit doctor` lists every runtime and whether it is installed")
    if name not in _loaded:
        module, cls = KNOWN[name].split(":")
        _loaded[name] = getattr(importlib.import_module(module), cls)()
    return _loaded[name]


def choose(names: list[str] | None, *, no_cpp: bool = False, need: str | None = None) -> list[Runtime]:
    """The runtimes a command runs: `names` as given on the command line (None: the default set),
    `all` = every installed runtime with in_all. Asked-for runtimes that are not installed raise
    RuntimeMissingError (exit 2) with the install command. `no_cpp` drops the C++ runners
    (--no-native); `need` keeps only runtimes with that capability ("cases", "bench")."""
    chosen: list[Runtime] = []
    for name in names or list(DEFAULT):
        if name == ALL:
            picked = [get(n) for n in KNOWN if get(n).in_all and get(n).missing() is None]
        else:
            rt = get(name)
            rt.require()
            picked = [rt]
        chosen += [rt for rt in picked if rt not in chosen]
    if no_cpp:
        chosen = [rt for rt in chosen if not rt.cpp]
    if need:
        dropped = [rt.name for rt in chosen if not getattr(rt, need)]
        chosen = [rt for rt in chosen if getattr(rt, need)]
        if names and dropped and not chosen:
            raise UsageError(f"this command cannot use the runtime(s) {', '.join(dropped)}",
                             expected="one of " + ", ".join(n for n in KNOWN if getattr(get(n), need)),
                             fix="choose a runtime with a Python API (the C++ runners run whole models: "
                                 "`opkit verify` and `opkit run`)")
    return chosen


def runtime_names(args_runtime: list[str] | None, backend: str | None = None) -> list[str] | None:
    """--runtime as given, with the older --backend folded in (`--backend python` == `--runtime python`)."""
    names = list(args_runtime or [])
    if backend == "python" and "python" not in names:
        names.append("python")
    return names or None


def add_runtime_argument(p, what: str = "run the model in") -> None:  # noqa: ANN001 - argparse parser
    p.add_argument("--runtime", action="append", metavar="NAME",
                   help=f"the runtime(s) to {what}: {', '.join(KNOWN)}, or all (every installed one); repeatable "
                        f"(default: {' + '.join(DEFAULT)})")
