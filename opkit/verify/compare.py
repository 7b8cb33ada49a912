"""Compare an ONNX Runtime output with the eager reference, dtype-aware."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from opkit.spec.dtypes import BY_NUMPY, DTYPES


@dataclass
class Comparison:
    name: str
    shape: list[int]
    dtype: str
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    ok: bool
    problem: str | None = None  # shape or dtype mismatch, NaN pattern, ...
    label: str | None = None  # the output as the model returns it: "output[0]", "logits" (name: the ONNX name)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def display(self) -> str:
        """output[0] (add_19): the model's name for the output, the ONNX name beside it."""
        return f"{self.label} ({self.name})" if self.label and self.label != self.name else self.name


def tolerances(dtype: str, rtol: float | None, atol: float | None) -> tuple[float, float]:
    d = DTYPES.get(dtype)
    base_r, base_a = (d.rtol, d.atol) if d else (0.0, 0.0)
    if d is not None and not d.is_float:
        return 0.0, 0.0
    return (base_r if rtol is None else rtol), (base_a if atol is None else atol)


def dtype_name(a: np.ndarray) -> str:
    return BY_NUMPY[str(a.dtype)].name if str(a.dtype) in BY_NUMPY else str(a.dtype)


def compare(name: str, got: np.ndarray, want: np.ndarray, rtol: float | None = None,
            atol: float | None = None) -> Comparison:
    dt = dtype_name(want)
    r, a = tolerances(dt, rtol, atol)
    base = dict(name=name, shape=list(want.shape), dtype=dt, rtol=r, atol=a)
    if got.shape != want.shape:
        return Comparison(**base, max_abs=float("inf"), max_rel=float("inf"), ok=False,
                          problem=f"shape {list(got.shape)}, expected {list(want.shape)}")
    if dtype_name(got) != dt:
        return Comparison(**base, max_abs=float("inf"), max_rel=float("inf"), ok=False,
                          problem=f"dtype {dtype_name(got)}, expected {dt}")
    if got.size == 0:
        return Comparison(**base, max_abs=0.0, max_rel=0.0, ok=True)
    if not DTYPES.get(dt) or not DTYPES[dt].is_float:
        diff = got.astype(np.float64) - want.astype(np.float64) if dt != "bool" else (got != want).astype(np.float64)
        mx = float(np.max(np.abs(diff)))
        return Comparison(**base, max_abs=mx, max_rel=mx, ok=bool(np.array_equal(got, want)))
    g, w = got.astype(np.float64), want.astype(np.float64)
    nan_g, nan_w = np.isnan(g), np.isnan(w)
    problem = None
    ok = True
    if not np.array_equal(nan_g, nan_w):
        ok, problem = False, f"NaN at {int(np.sum(nan_g != nan_w))} position(s) where the other has a number"
    inf_w = np.isinf(w)
    if np.any(inf_w | np.isinf(g)) and not np.array_equal(g[inf_w | np.isinf(g)], w[inf_w | np.isinf(g)]):
        ok, problem = False, problem or "infinities differ"
    finite = np.isfinite(g) & np.isfinite(w)
    diff = np.abs(g[finite] - w[finite])
    max_abs = float(diff.max()) if diff.size else 0.0
    # relative error where it means something: over elements larger than the absolute tolerance
    mag = np.abs(w[finite])
    big = mag > max(a, np.finfo(np.float64).tiny)
    max_rel = float((diff[big] / mag[big]).max()) if np.any(big) else 0.0
    if diff.size and np.any(diff > a + r * np.abs(w[finite])):
        ok = False
    return Comparison(**base, max_abs=max_abs, max_rel=max_rel, ok=ok, problem=problem)
