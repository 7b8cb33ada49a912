"""Compare an ONNX Runtime output with the eager reference, dtype-aware."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from opkit.spec.dtypes import BY_NUMPY, DTYPES

# Bins of |got - expected| / tolerance (tolerance = atol + rtol * |expected|): an element passes at <= 1.
# (lo, hi]: the first bin holds the exact matches, the last everything beyond 100 tolerances (and NaN/Inf mismatches).
HISTOGRAM_EDGES: tuple[float, ...] = (0.0, 0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0)
WORST_COUNT = 8  # how many of the worst elements a Comparison keeps


@dataclass
class Bin:
    lo: float  # exclusive, except the first bin: exactly 0
    hi: float | None  # inclusive; None: no upper bound
    count: int

    @property
    def passing(self) -> bool:
        return self.hi is not None and self.hi <= 1.0


@dataclass
class Element:
    """One element of an output, where it differs most from the expected value."""
    index: list[int]
    got: float
    expected: float
    abs_err: float
    ratio: float  # abs_err / tolerance at this element; inf where the tolerance is 0 or NaN/Inf differ


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
    histogram: list[Bin] = field(default_factory=list)  # |got - expected| / tolerance; empty on shape/dtype mismatch
    worst: list[Element] = field(default_factory=list)  # the worst elements, worst first

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
        return Comparison(**base, max_abs=0.0, max_rel=0.0, ok=True, histogram=histogram(np.zeros(0)))
    if not DTYPES.get(dt) or not DTYPES[dt].is_float:
        g, w = (got.astype(np.float64), want.astype(np.float64))
        diff = g - w if dt != "bool" else (got != want).astype(np.float64)
        mx = float(np.max(np.abs(diff)))
        ratio = np.where(diff != 0, np.inf, 0.0)
        return Comparison(**base, max_abs=mx, max_rel=mx, ok=bool(np.array_equal(got, want)),
                          histogram=histogram(ratio), worst=worst_elements(g, w, np.abs(diff), ratio))
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
    err, ratio = error_ratio(g, w, r, a)
    return Comparison(**base, max_abs=max_abs, max_rel=max_rel, ok=ok, problem=problem,
                      histogram=histogram(ratio), worst=worst_elements(g, w, err, ratio))


def error_ratio(g: np.ndarray, w: np.ndarray, rtol: float, atol: float) -> tuple[np.ndarray, np.ndarray]:
    """Per element: |got - expected| and that over the tolerance atol + rtol * |expected|, as compare() judges
    it (<= 1 passes). Equal NaNs and equal infinities count as exact; a NaN or Inf mismatch as inf."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        err = np.abs(g - w)  # NaN where either is NaN, or both are the same infinity
        odd = np.isnan(err)
        if odd.any():
            err[odd] = np.where((g[odd] == w[odd]) | (np.isnan(g[odd]) & np.isnan(w[odd])), 0.0, np.inf)
        tol = np.abs(w)
        tol[~np.isfinite(tol)] = 0.0
        tol *= rtol
        tol += atol
        ratio = np.divide(err, tol, out=np.full_like(err, np.inf), where=tol > 0)
        ratio[err == 0] = 0.0
    return err, ratio


def histogram(ratio: np.ndarray) -> list[Bin]:
    """Counts of `ratio` in the bins of HISTOGRAM_EDGES: exactly 0, (0, 0.01], ..., (100, inf]."""
    flat = ratio.ravel()
    bins = [Bin(0.0, 0.0, int(np.count_nonzero(flat == 0)))]
    edges = list(HISTOGRAM_EDGES) + [None]
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = flat > lo if hi is None else (flat > lo) & (flat <= hi)
        bins.append(Bin(lo, hi, int(np.count_nonzero(inside))))
    return bins


def worst_elements(g: np.ndarray, w: np.ndarray, err: np.ndarray, ratio: np.ndarray,
                   count: int = WORST_COUNT) -> list[Element]:
    """The `count` elements with the largest error ratio (then absolute error), worst first; none if all equal."""
    flat_r, flat_e = ratio.ravel(), err.ravel()
    nonzero = np.flatnonzero(flat_e)
    if not nonzero.size:
        return []
    if nonzero.size > 4 * count:  # large outputs: keep the largest ratios before sorting them
        nonzero = nonzero[np.argpartition(-flat_r[nonzero], count)[:count]]
    order = np.lexsort((-flat_e[nonzero], -flat_r[nonzero]))[:count]
    out = []
    for k in nonzero[order]:
        index = [int(i) for i in np.unravel_index(int(k), g.shape)] if g.ndim else []
        out.append(Element(index, float(g.ravel()[k]), float(w.ravel()[k]), float(flat_e[k]), float(flat_r[k])))
    return out
