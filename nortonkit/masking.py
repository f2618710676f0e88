"""Masks for variable-length axes (True = valid) and the reductions that respect them.

Every reduction over a padded axis in nortonkit goes through these helpers, so that padding
never leaks into a sum, a mean or a log-sum-exp, and fully masked slices give no NaN in the
forward or the backward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["lengths_to_mask", "masked_logsumexp", "masked_mean", "pad_sequences"]


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """Boolean mask of shape ``(B, max_len)`` with ``mask[b, i] = i < lengths[b]``.

    >>> lengths_to_mask(torch.tensor([1, 3]))
    tensor([[ True, False, False],
            [ True,  True,  True]])
    """
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths: expected shape (B,), got {tuple(lengths.shape)}")
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise ValueError(f"lengths: expected an integer tensor, got dtype {lengths.dtype}")
    if bool((lengths < 0).any()):
        raise ValueError(f"lengths: expected non-negative lengths, got {lengths.tolist()}")
    longest = int(lengths.max()) if lengths.numel() else 0
    if max_len is None:
        n = longest
    elif isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < longest:
        raise ValueError(
            f"max_len: expected an integer >= the longest length {longest}, got {max_len!r}"
        )
    else:
        n = max_len
    return torch.arange(n, device=lengths.device)[None, :] < lengths[:, None]


def masked_logsumexp(x: Tensor, mask: Tensor | None, dim: int, keepdim: bool = False) -> Tensor:
    """``log sum_{i: mask_i} exp(x_i)`` along ``dim``; ``-inf`` where nothing is valid.

    Values at masked positions are ignored (they may be garbage, even NaN). Gradients are
    finite everywhere, including on fully masked slices.

    >>> x = torch.tensor([[0.0, 0.0, 100.0]])
    >>> masked_logsumexp(x, torch.tensor([[True, True, False]]), dim=-1)
    tensor([0.6931])
    """
    if mask is None:
        return torch.logsumexp(x, dim=dim, keepdim=keepdim)
    mask = mask.expand_as(x)
    x = x.masked_fill(~mask, float("-inf"))
    any_valid = mask.any(dim=dim, keepdim=True)
    m = x.detach().amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    s = (x - m).exp().sum(dim=dim, keepdim=True)
    s = torch.where(any_valid, s, torch.ones_like(s))
    out = torch.where(any_valid, s.log() + m, torch.full_like(s, float("-inf")))
    return out if keepdim else out.squeeze(dim)


def masked_mean(x: Tensor, mask: Tensor | None, dim: int, keepdim: bool = False) -> Tensor:
    """Mean of ``x`` over the valid positions of ``dim`` (masked values are ignored).

    >>> masked_mean(torch.tensor([[1.0, 3.0, 99.0]]), torch.tensor([[True, True, False]]), -1)
    tensor([2.])
    """
    if mask is None:
        return x.mean(dim=dim, keepdim=keepdim)
    mask = mask.expand_as(x)
    total = torch.where(mask, x, torch.zeros_like(x)).sum(dim=dim, keepdim=keepdim)
    count = mask.sum(dim=dim, keepdim=keepdim).clamp_min(1)
    return total / count


def pad_sequences(seqs: list[Tensor], value: float = 0.0) -> tuple[Tensor, Tensor]:
    """Stack tensors of shape ``(L_i, *)`` into ``(B, max L, *)`` plus a ``(B, max L)`` mask.

    >>> x, m = pad_sequences([torch.ones(1, 2), torch.ones(3, 2)])
    >>> x.shape, m.sum(1).tolist()
    (torch.Size([2, 3, 2]), [1, 3])
    """
    if not seqs:
        raise ValueError("seqs: expected at least one tensor, got an empty list")
    for i, t in enumerate(seqs):
        if not isinstance(t, Tensor) or t.ndim < 1:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"seqs[{i}]: expected a tensor of shape (L, *), got {got}")
        if t.shape[1:] != seqs[0].shape[1:] or t.dtype != seqs[0].dtype:
            raise ValueError(
                f"seqs[{i}]: expected trailing shape {tuple(seqs[0].shape[1:])} and dtype "
                f"{seqs[0].dtype} (as seqs[0]), got {tuple(t.shape[1:])} and {t.dtype}"
            )
    lengths = torch.tensor([len(s) for s in seqs])
    out = seqs[0].new_full((len(seqs), int(lengths.max()), *seqs[0].shape[1:]), value)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lengths_to_mask(lengths)
