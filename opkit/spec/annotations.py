"""The annotation objects users write in specs: ``Tensor["T"]``, ``Tensor["int64"]``, ``Tensor["T", 2]``.

They only record what was written; :mod:`opkit.spec.parse` checks and interprets them.
"""

from __future__ import annotations

from typing import Any


class TensorAnnotation:
    """What ``Tensor[...]`` evaluates to. Supports ``Tensor["T"] | None`` for optional inputs."""

    __slots__ = ("args",)

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args

    def __or__(self, other: Any) -> "OptionalTensor":
        if other is None or other is type(None):
            return OptionalTensor(self)
        return NotImplemented

    def __ror__(self, other: Any) -> "OptionalTensor":
        return self.__or__(other)

    def __repr__(self) -> str:
        return "Tensor[" + ", ".join(repr(a) for a in self.args) + "]"

    # typing.get_type_hints and GenericAlias accept any callable as a type
    def __call__(self, *a: Any, **k: Any) -> Any:  # pragma: no cover - never called
        raise TypeError("Tensor[...] is an annotation, not a constructor")


class OptionalTensor:
    __slots__ = ("tensor",)

    def __init__(self, tensor: TensorAnnotation) -> None:
        self.tensor = tensor

    def __repr__(self) -> str:
        return f"{self.tensor!r} | None"

    def __call__(self, *a: Any, **k: Any) -> Any:  # pragma: no cover
        raise TypeError("an annotation, not a constructor")


class _TensorMeta(type):
    def __getitem__(cls, item: Any) -> TensorAnnotation:
        return TensorAnnotation(item if isinstance(item, tuple) else (item,))


class Tensor(metaclass=_TensorMeta):
    """Annotate a tensor parameter or result of an op spec.

    ``Tensor["T"]``: dtype given by the type variable ``T`` declared in ``types=``.
    ``Tensor["int64"]``: a fixed dtype. ``Tensor["T", 2]``: also a fixed rank, checked at run time.
    """
