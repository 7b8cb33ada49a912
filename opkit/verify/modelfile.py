"""Load a user's model.py: module-level `model`, `example_inputs`, optional `dynamic_shapes`, `rtol`, `atol`."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opkit.errors import ModelFileError
from opkit.spec.model import SourceLoc


@dataclass
class ModelFile:
    path: Path
    model: Any
    example_inputs: tuple
    dynamic_shapes: Any
    rtol: float | None
    atol: float | None


def load_model_file(path: Path | str, workspace_root: Path) -> ModelFile:
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no such model file: {path}", fix="pass the path of a Python file defining `model` "
                             "and `example_inputs`")
    root = str(workspace_root)
    if root not in sys.path:
        sys.path.insert(0, root)
    name = f"opkit_model_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelFileError(f"cannot import {path}", expected="a .py file")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except ModelFileError:
        raise
    except Exception as exc:
        from opkit.errors import OpkitError

        if isinstance(exc, OpkitError):
            raise
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path.resolve()
                  or Path(f.filename) == path]
        line = frames[-1].lineno if frames else None
        raise ModelFileError(f"{path} failed to import: {type(exc).__name__}: {exc}",
                             where=SourceLoc(str(path), line or 0),
                             fix=f"run `python {path}` to see the full error") from None
    model = getattr(mod, "model", None)
    if model is None:
        raise ModelFileError(f"{path} defines no `model`", expected="a module-level torch.nn.Module named `model`",
                             fix="add e.g. `model = MyModel().eval()`")
    if not isinstance(model, torch.nn.Module):
        raise ModelFileError(f"`model` in {path} is not a torch.nn.Module", expected="torch.nn.Module",
                             got=type(model).__name__)
    if not hasattr(mod, "example_inputs"):
        raise ModelFileError(f"{path} defines no `example_inputs`",
                             expected="a module-level tuple of tensors named `example_inputs`",
                             fix="add e.g. `example_inputs = (torch.randn(4, 16),)`")
    ex = mod.example_inputs
    if isinstance(ex, torch.Tensor):
        raise ModelFileError(f"`example_inputs` in {path} is a tensor, not a tuple", expected="a tuple of tensors",
                             got="torch.Tensor", fix="write `example_inputs = (x,)`")
    if not isinstance(ex, (tuple, list)) or not ex:
        raise ModelFileError(f"`example_inputs` in {path} is not a non-empty tuple of tensors",
                             expected="a tuple of tensors", got=type(ex).__name__)
    for i, t in enumerate(ex):
        if not isinstance(t, torch.Tensor):
            raise ModelFileError(f"`example_inputs[{i}]` in {path} is not a tensor", expected="torch.Tensor",
                                 got=type(t).__name__, fix="pass only tensors; make other values constants of the model")
    def _tol(name: str) -> float | None:
        v = getattr(mod, name, None)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ModelFileError(f"`{name}` in {path} must be a non-negative number", got=repr(v))
        return float(v)
    return ModelFile(path, model, tuple(ex), getattr(mod, "dynamic_shapes", None), _tol("rtol"), _tol("atol"))
