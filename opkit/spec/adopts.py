"""How the parameters of a spec that adopts a torch op (``adopts="aten::cummax"``) stand for the op's arguments.

A parameter has the argument's name, or the name `opkit adopt` gives an argument that cannot be a spec
parameter (``self`` becomes ``x``, a reserved word gets a trailing ``_``). An argument with no parameter is
left at the original op's default. Both `opkit adopt` (writing the spec) and the export (mapping each call of
the original op to the adopted op's node) use these two functions.
"""

from __future__ import annotations

import keyword
from collections.abc import Sequence

from opkit.spec.parse import CPP_KEYWORDS, RESERVED

TYPEVAR_NAMES = ("T", "U", "V", "W")
# Namespaces whose ops libtorch itself defines; an op of any other is a third-party op, defined by a module or
# extension the model loads (its spec imports that module; libtorch programs without Python lack the op).
LIBTORCH_NAMESPACES = frozenset({"aten", "prims", "quantized", "_quantized"})


def usable(name: str) -> bool:
    """Whether a name can be a spec parameter as it is."""
    return (name.isidentifier() and not keyword.iskeyword(name) and name not in CPP_KEYWORDS and name not in RESERVED
            and not name.startswith("_") and not name.startswith("opkit_") and name not in TYPEVAR_NAMES)


def param_name(arg: str, all_args: Sequence[str]) -> str:
    """The spec parameter that stands for the schema argument `arg` (`all_args`: every argument's name)."""
    if usable(arg):
        return arg
    if arg == "self" and "x" not in all_args:
        return "x"
    fixed = arg.strip("_") + "_"
    return fixed if usable(fixed) else f"arg{list(all_args).index(arg)}"


def bind(params: Sequence[str], args: Sequence[str]) -> tuple[list[str | None], list[str]]:
    """For each schema argument, the spec parameter standing for it (None: left at its default), and the spec
    parameters that stand for no argument."""
    left = list(params)
    out: list[str | None] = []
    for a in args:
        p = a if a in left else param_name(a, args)
        if p in left:
            left.remove(p)
            out.append(p)
        else:
            out.append(None)
    return out, left
