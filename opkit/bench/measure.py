"""The timing loop: interleaved rounds, warm-up, repeat until the spread is small or the budget ends.

Pure Python (no torch, no onnxruntime): the worker passes callables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Stats:
    median_s: float  # median over rounds of the mean time of one call
    min_s: float
    spread: float  # (p75 - p25) / median over rounds: 0.03 = the middle half lies within 3 %
    rounds: int
    calls_per_round: int

    def to_dict(self) -> dict:
        return asdict(self)


def _quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def stats_of(times: list[float], calls: int) -> Stats:
    med = _quantile(times, 0.5)
    spread = (_quantile(times, 0.75) - _quantile(times, 0.25)) / med if med > 0 else 0.0
    return Stats(med, min(times), spread, len(times), calls)


def measure(fns: dict[str, Callable[[], object]], *, budget_s: float = 2.0, target_spread: float = 0.05,
            min_rounds: int = 5, max_rounds: int = 200, round_s: float = 0.01,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, Stats]:
    """Time each callable, interleaved: every round runs each one `calls` times in turn (the order
    rotates), so that load from elsewhere hits all alike. Warm-up first (3 calls and ~round_s each),
    then rounds until every spread <= target_spread (after min_rounds) or the budget is spent."""
    names = list(fns)
    if not names:
        return {}
    calls: dict[str, int] = {}
    start = clock()
    for n in names:  # warm-up + calibration: calls per round so that a round lasts about round_s
        f = fns[n]
        t0 = clock()
        k = 0
        while k < 3 or clock() - t0 < round_s:
            f()
            k += 1
        per_call = (clock() - t0) / k
        calls[n] = max(1, min(10000, int(round_s / max(per_call, 1e-9))))
    times: dict[str, list[float]] = {n: [] for n in names}
    r = 0
    while r < max_rounds:
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            f, k = fns[n], calls[n]
            t0 = clock()
            for _ in range(k):
                f()
            times[n].append((clock() - t0) / k)
        r += 1
        if r >= min_rounds:
            if all(stats_of(times[n], calls[n]).spread <= target_spread for n in names):
                break
            if clock() - start > budget_s:
                break
    return {n: stats_of(times[n], calls[n]) for n in names}
