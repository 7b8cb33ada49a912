"""The JSON opkit writes for people and tools (--json files, report.json): strict JSON. Python's json module
writes NaN / Infinity, which JSON does not have (jq, JavaScript's JSON.parse and most parsers reject the
file); here a non-finite float becomes the string "nan", "inf" or "-inf"."""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def dumps(obj: Any, *, indent: int | None = 1) -> str:
    """`obj` as strict JSON (non-finite floats as "nan" / "inf" / "-inf")."""
    return json.dumps(_finite(obj), indent=indent, allow_nan=False)
