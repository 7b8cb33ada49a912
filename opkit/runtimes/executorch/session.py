"""Child side of the ExecuTorch Python runtime: load the kernel libraries, then the program.

Runs only in a child process (native code). The kernel library links the wheel's libexecutorch.so,
the same one ExecuTorch's Python extension uses, so loading it (RTLD_GLOBAL) registers opkit's
kernels in the registry the program is resolved against.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


class KernelError(RuntimeError):
    """A kernel (or ExecuTorch) failed; the message names the op when opkit's library knows it."""


def _to_torch(a: np.ndarray) -> Any:
    import torch

    a = np.ascontiguousarray(a)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _to_numpy(t: Any) -> np.ndarray:
    import torch

    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16).numpy().copy().view(ml_dtypes.bfloat16)
    return t.numpy().copy()


class EtSession:
    """A loaded program: `run(arrays)` -> outputs (numpy); the kernel's message on failure."""

    def __init__(self, model: str, libraries: list[str], options: dict[str, Any]) -> None:
        from executorch.extension.pybindings import portable_lib

        self._libs = []
        for lib in libraries:
            handle = ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
            handle.opkit_executorch_last_error.restype = ctypes.c_char_p
            if not handle.opkit_executorch_registered():
                raise KernelError(f"{lib}: {handle.opkit_executorch_last_error().decode(errors='replace')}")
            self._libs.append(handle)
        self._model, self._libraries = model, libraries
        try:
            self._module = portable_lib._load_for_executorch(model)
        except RuntimeError as exc:
            raise KernelError(self._missing_kernels() or f"ExecuTorch could not load {model}: {exc}") from None
        n_in = int(options.get("num_inputs") or self._module.method_meta("forward").num_inputs())
        n_out = self._module.method_meta("forward").num_outputs()
        self.input_names = list(options.get("input_names") or [f"input{k}" for k in range(n_in)])
        self.output_names = list(options.get("output_names") or [f"output{k}" for k in range(n_out)])

    def _missing_kernels(self) -> str:
        """Which operators of the program no loaded library registers, said as a fix ('' if none)."""
        from executorch.extension.pybindings import portable_lib

        from opkit.runtimes.executorch.pte import missing_kernel_message, program_operators

        registered = set(portable_lib._get_operator_names())
        missing = [op for op in program_operators(Path(self._model)) if op not in registered]
        return missing_kernel_message(missing, self._libraries[0] if self._libraries else None) if missing else ""

    def _last_error(self) -> str:
        for h in self._libs:
            msg = h.opkit_executorch_last_error().decode(errors="replace")
            if msg:
                return msg
        return ""

    def _call(self, inputs: list) -> list:
        for h in self._libs:  # a message left by an earlier failed call must not be blamed on this one
            h.opkit_executorch_clear_error()
        try:
            return list(self._module.forward(inputs))
        except RuntimeError as exc:
            msg = self._last_error()  # the kernel's message, else an operator without a kernel (ExecuTorch
            if msg:                   # loads a method's operators on its first call)
                raise KernelError(f"{msg} ({exc})") from None
            raise KernelError(self._missing_kernels() or str(exc)) from None

    def run(self, arrays: list) -> list:
        return [_to_numpy(t) for t in self._call([_to_torch(a) for a in arrays])]

    def bind(self, arrays: list) -> Callable[[], Any]:
        inputs = [_to_torch(a) for a in arrays]
        return lambda: self._call(inputs)

    def inferred_shapes(self) -> None:
        return None
