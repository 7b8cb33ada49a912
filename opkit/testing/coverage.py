"""What an op's test run never exercised: the holes that make a passing op `ok (incomplete: ...)`.

Counted over the cases that ran in ONNX Runtime (skipped cases exercise nothing):
every dtype combination of the kernels, each optional input both absent and present, each variadic
count the generator plans, each attribute value listed in `constrain(attrs=...)`, and the NaN/Inf case
(the generated one, or a custom sample with a NaN in a float input).
The share of cases skipped by `valid=` is reported beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opkit.testing.cases import VALID_REJECTED, Plan, config_of


@dataclass
class Coverage:
    holes: list[str] = field(default_factory=list)  # "bias never absent", "weights=[1.0] never run", ...
    skipped_by_valid: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"holes": self.holes, "skipped_by_valid": self.skipped_by_valid}


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _combo_text(combo: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in combo.items()) or "the kernel"


def coverage(op: Any, plans: list[Plan], cases: list, ran: set[str]) -> Coverage:
    """The holes of one op's run. `cases` are all its cases, `ran` the ids of those that ran in ORT."""
    spec = op.spec
    cfg = config_of(op)
    run = [c for c in cases if c.extra.get("id") in ran]
    cov = Coverage(skipped_by_valid=sum(1 for c in cases if (c.skipped or "").startswith(VALID_REJECTED)))
    for combo in spec.kernel_combos:
        if not any(c.combo == combo for c in run):
            cov.holes.append(f"{_combo_text(combo)} never run")
    generated = [p for p in plans if p.custom is None]
    for i in spec.inputs:
        if i.optional:
            if not any(c.args.get(i.name) is None for c in run):
                cov.holes.append(f"{i.name} never absent")
            if not any(c.args.get(i.name) is not None for c in run):
                cov.holes.append(f"{i.name} never present")
        if i.variadic:
            counts = {len(c.args[i.name]) for c in run if isinstance(c.args.get(i.name), list)}
            missing = sorted({p.variadic for p in generated} - counts)
            if missing:
                cov.holes.append(f"{i.name} never with {' or '.join(map(str, missing))} tensor(s)")
    for name, values in cfg.attrs.items():
        seen = [_norm(c.args.get(name)) for c in run]
        for v in values:
            if _norm(v) not in seen:
                cov.holes.append(f"{name}={v!r} never run")
    if any(p.nonfinite for p in generated) and not any(c.extra.get("nonfinite") or _has_nan(c.args) for c in run):
        cov.holes.append("NaN/Inf case never run")
    return cov


def _has_nan(args: dict[str, Any]) -> bool:
    """Whether a float input of the case holds a NaN (a custom sample may make the NaN/Inf case itself)."""
    import torch

    tensors = [t for v in args.values() for t in (v if isinstance(v, list) else [v]) if isinstance(t, torch.Tensor)]
    return any(t.is_floating_point() and bool(torch.isnan(t).any()) for t in tensors)
