"""Strict state-dict loading: every key and shape checked before any weight is copied.

:func:`load_state_dict_strict` is shared by both checkpoint kinds (the released fairseq files
and nortonkit's own directories): shape mismatches are errors naming key, expected and actual
shape, and with ``strict=True`` so are missing and unexpected keys, listed.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

__all__ = ["load_state_dict_strict"]


def _listing(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{f', ... and {len(keys) - limit} more' if len(keys) > limit else ''}]"


def load_state_dict_strict(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    source: str = "checkpoint",
    strict: bool = True,
    allow_missing: tuple[str, ...] = (),
    assign: bool = False,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Copy ``state_dict`` into ``model`` after checking keys and shapes; return the leftovers.

    Shape mismatches are always errors (naming key, expected and actual shape). With
    ``strict=True``, missing keys (other than ``allow_missing``) and unexpected keys are
    errors listing them; with ``strict=False`` they are returned as ``(missing, unexpected)``.
    Values are cast to the model's dtype and device. ``assign=True`` adopts the loaded tensors
    as the model's parameters instead of copying into them (no second copy in memory; the
    parameter objects change, so build optimizers afterwards); ``requires_grad`` is kept.

    Examples
    --------
    >>> import torch
    >>> lin = nn.Linear(2, 1)
    >>> load_state_dict_strict(lin, {"weight": torch.zeros(1, 2), "bias": torch.zeros(1)})
    ((), ())
    >>> load_state_dict_strict(lin, {"weight": torch.zeros(1, 3)}, source="x.pt")
    Traceback (most recent call last):
    ...
    ValueError: x.pt: checkpoint does not match the model: shape mismatches (1):
    [weight: expected (1, 2), got (1, 3)]; missing keys (1): [bias]
    """
    expected = model.state_dict()
    problems: list[str] = []
    shapes = [
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(v.shape)}"
        for k, v in state_dict.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    missing = [k for k in expected if k not in state_dict and k not in allow_missing]
    unexpected = [k for k in state_dict if k not in expected]
    if shapes:
        problems.append(f"shape mismatches ({len(shapes)}): {_listing(shapes)}")
    if strict and missing:
        problems.append(f"missing keys ({len(missing)}): {_listing(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
    if problems:
        raise ValueError(f"{source}: checkpoint does not match the model: " + "; ".join(problems))
    own = {
        k: v.to(device=expected[k].device, dtype=expected[k].dtype)
        for k, v in state_dict.items()
        if k in expected
    }
    model.load_state_dict(own, strict=False, assign=assign)
    return tuple(missing), tuple(unexpected)
