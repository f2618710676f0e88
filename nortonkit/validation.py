"""Input checks shared by every public function.

Each check raises a ``ValueError`` that names the argument and states the expected and the
actual shape, dtype or value, so that a bad call fails before any computation starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "check_tensor",
    "check_mask",
    "check_finite",
    "check_positive",
    "check_int_at_least",
    "check_open_unit",
    "check_choice",
    "check_nonempty_mask",
]


def check_tensor(
    name: str,
    x: object,
    *,
    min_ndim: int | None = None,
    ndim: int | None = None,
    floating: bool = True,
    shape: Sequence[int | None] | None = None,
) -> Tensor:
    """Check that ``x`` is a tensor of the expected rank, dtype kind and (partial) shape.

    ``shape`` may hold ``None`` for free axes and is matched against the trailing axes.

    >>> check_tensor("scores", torch.zeros(2, 3), ndim=2).shape
    torch.Size([2, 3])
    >>> check_tensor("scores", torch.zeros(3), min_ndim=2)
    Traceback (most recent call last):
    ...
    ValueError: scores: expected a tensor with at least 2 dims (..., M, N), got shape (3,)
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dims, got shape {tuple(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        letters = "(..., M, N)" if min_ndim == 2 else f"({', '.join(['*'] * min_ndim)})"
        raise ValueError(
            f"{name}: expected a tensor with at least {min_ndim} dims {letters}, "
            f"got shape {tuple(x.shape)}"
        )
    if floating and not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if shape is not None:
        tail = tuple(x.shape[-len(shape) :]) if len(shape) else ()
        if len(tail) != len(shape) or any(s is not None and s != t for s, t in zip(shape, tail)):
            want = tuple("*" if s is None else s for s in shape)
            raise ValueError(f"{name}: expected trailing shape {want}, got {tuple(x.shape)}")
    return x


def check_mask(name: str, mask: Tensor | None, expected: Sequence[int]) -> Tensor | None:
    """Check a boolean validity mask (True = valid) against the expected shape.

    >>> check_mask("row_mask", torch.ones(2, 3, dtype=torch.bool), (2, 3)).shape
    torch.Size([2, 3])
    >>> check_mask("row_mask", torch.ones(2, 4, dtype=torch.bool), (2, 3))
    Traceback (most recent call last):
    ...
    ValueError: row_mask: expected shape (2, 3), got (2, 4)
    """
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise ValueError(f"{name}: expected a bool tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise ValueError(f"{name}: expected dtype torch.bool (True = valid), got {mask.dtype}")
    if tuple(mask.shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {tuple(expected)}, got {tuple(mask.shape)}")
    return mask


def check_nonempty_mask(name: str, mask: Tensor, axis_name: str) -> None:
    """Reject masks where some problem has no valid entry along the last axis.

    >>> check_nonempty_mask("col_mask", torch.tensor([[True, False], [False, False]]), "columns")
    Traceback (most recent call last):
    ...
    ValueError: col_mask: problem(s) [1] have no valid columns; every problem needs at least one
    """
    empty = ~mask.any(dim=-1)
    if bool(empty.any()):
        where = [tuple(i) if len(i) > 1 else i[0] for i in empty.nonzero().tolist()][:5]
        raise ValueError(
            f"{name}: problem(s) {where} have no valid {axis_name}; "
            "every problem needs at least one"
        )


def check_finite(name: str, x: Tensor, mask: Tensor | None = None) -> None:
    """Reject NaN or inf values (only where ``mask`` is True, when given).

    >>> check_finite("scores", torch.tensor([1.0, float("nan")]))
    Traceback (most recent call last):
    ...
    ValueError: scores: expected finite values, found 1 NaN/inf entries (first at index (1,))
    """
    bad = ~torch.isfinite(x)
    if mask is not None:
        bad = bad & mask
    if bool(bad.any()):
        first = tuple(bad.nonzero()[0].tolist())
        raise ValueError(
            f"{name}: expected finite values, found {int(bad.sum())} NaN/inf entries "
            f"(first at index {first})"
        )


def check_positive(name: str, value: float) -> float:
    """Check that a scalar hyper-parameter is a finite number > 0.

    >>> check_positive("eps", 0.0)
    Traceback (most recent call last):
    ...
    ValueError: eps: expected a finite number > 0, got 0.0
    """
    try:
        if isinstance(value, str | bytes | bool):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return v


def check_int_at_least(name: str, value: int, low: int) -> int:
    """Check an integer argument such as ``n_iters`` (>= ``low``).

    >>> check_int_at_least("n_iters", 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: n_iters: expected an integer >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return value


def check_open_unit(name: str, value: float) -> float:
    """Check a quantile or ratio in the open interval (0, 1).

    >>> check_open_unit("quantile", 1.0)
    Traceback (most recent call last):
    ...
    ValueError: quantile: expected a number in the open interval (0, 1), got 1.0
    """
    try:
        if isinstance(value, str | bytes | bool):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name}: expected a number in (0, 1), got {value!r}") from None
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name}: expected a number in the open interval (0, 1), got {value!r}")
    return v


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Check that ``value`` is one of ``choices``.

    >>> check_choice("grad", "auto", ("detach", "unroll"))
    Traceback (most recent call last):
    ...
    ValueError: grad: expected one of ('detach', 'unroll'), got 'auto'
    """
    if value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
