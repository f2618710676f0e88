"""What every evaluation protocol shares: the two variants, the token budget, batched encoding.

Every ``eval_*`` function of :mod:`nortonkit.eval` returns result rows (dicts) with the columns
of :data:`nortonkit.lab.evaluate.COLUMNS`, each labelled with one of :data:`VARIANTS`:
``"corrected"`` (nortonkit's measures, ties ranked pessimistically) or
``"official-compatible"`` (the released evaluation, :mod:`nortonkit.compat`). Every number is a
percentage (recalls, accuracies, AUC) except median ranks and times.

Encoding follows the official evaluation (``docs/protocols.md`` §3.2-3.3, §7): sentences are cut
to ``max_len - max_video_len - 3`` tokens (:func:`text_token_budget`: 61 with 32-s clips, 77 for
MSR-VTT QA's 16 s); the video CLS is masked out of attention in the background-kept and COIN
paths and attended elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..data.text import encode_texts, load_tokenizer
from ..encoders import DualEncoder
from ..validation import check_int_at_least, check_tensor

__all__ = [
    "VARIANTS",
    "EVAL_MAX_LEN",
    "RECALL_KS",
    "text_token_budget",
    "encode_clips",
    "encode_captions",
    "pad_groups",
]

VARIANTS: tuple[str, ...] = ("corrected", "official-compatible")
#: ``max_len`` of every evaluation yaml (``docs/protocols.md`` §8): text + video token budget.
EVAL_MAX_LEN = 96
#: The ``k`` of the reported recalls R@k.
RECALL_KS: tuple[int, ...] = (1, 5, 10)


def text_token_budget(max_video_len: int = 32, max_len: int = EVAL_MAX_LEN) -> int:
    """Word pieces kept per sentence: ``max_len - max_video_len - 3`` (CLS and two SEPs).

    Parameters
    ----------
    max_video_len : the yaml's ``max_video_len`` (32 for retrieval, COIN and HTM-Align; 16 for
        MSR-VTT QA).
    max_len : the yaml's ``max_len`` (96 in every evaluation yaml).

    Returns
    -------
    int

    Notes
    -----
    ``docs/protocols.md`` §3.2: the aligner truncates text to ``max_len - max_video_len - 3``
    tokens; §7.6: the QA yamls use ``max_video_len: 16``, so QA candidates keep 77 tokens.

    Examples
    --------
    >>> text_token_budget(32), text_token_budget(16)
    (61, 77)
    """
    check_int_at_least("max_video_len", max_video_len, 1)
    check_int_at_least("max_len", max_len, max_video_len + 4)
    return max_len - max_video_len - 3


@torch.no_grad()
def encode_clips(
    model: DualEncoder,
    video: Tensor,
    video_mask: Tensor,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    cls_attend: bool | None = None,
) -> Tensor:
    """Pooled clip vectors ``(N, H)`` (float32, CPU) of ``video (N, V, D)`` in batches.

    Examples
    --------
    >>> from nortonkit.encoders import EncoderConfig
    >>> _ = torch.manual_seed(0)
    >>> m = DualEncoder(EncoderConfig(preset="tiny")).eval()
    >>> encode_clips(m, torch.randn(3, 4, 512), torch.ones(3, 4, dtype=torch.bool)).shape
    torch.Size([3, 64])
    """
    check_int_at_least("batch_size", batch_size, 1)
    model.eval()
    out = []
    for i in range(0, len(video), batch_size):
        v = video[i : i + batch_size].to(device)
        m = video_mask[i : i + batch_size].to(device)
        out.append(model.encode_video(v, m, cls_attend).pooled.float().cpu())
    if not out:
        return torch.empty(0, model.config.hidden_size)
    return torch.cat(out)


@torch.no_grad()
def encode_captions(
    model: DualEncoder,
    texts: Sequence[str],
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    max_tokens: int = 61,
    tokenizer: Any = None,
) -> Tensor:
    """Pooled caption vectors ``(N, H)`` (float32, CPU), tokenised on the fly.

    ``max_tokens`` word pieces are kept per sentence: 61 by default, the budget of the 32-s
    yamls (:func:`text_token_budget`); MSR-VTT QA passes 77.

    Examples
    --------
    >>> from nortonkit.encoders import EncoderConfig
    >>> _ = torch.manual_seed(0)
    >>> m = DualEncoder(EncoderConfig(preset="tiny")).eval()
    >>> encode_captions(m, ["whisk the eggs", "fry"]).shape
    torch.Size([2, 64])
    """
    check_int_at_least("batch_size", batch_size, 1)
    model.eval()
    tok = tokenizer if tokenizer is not None else load_tokenizer()
    out = []
    for i in range(0, len(texts), batch_size):
        batch = encode_texts(list(texts[i : i + batch_size]), tok, max_tokens)
        out.append(
            model.encode_text(batch.input_ids.to(device), batch.attention_mask.to(device))
            .pooled.float().cpu()
        )
    if not out:
        return torch.empty(0, model.config.hidden_size)
    return torch.cat(out)


def pad_groups(vectors: Tensor, groups: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Gather ``vectors (N, H)`` into one padded row per group: ``(G, L, H)`` and mask ``(G, L)``.

    Examples
    --------
    >>> x, m = pad_groups(torch.arange(6.0).reshape(3, 2), [torch.tensor([2, 0]),
    ...                                                      torch.tensor([1])])
    >>> x[:, :, 0].tolist(), m.tolist()
    ([[4.0, 0.0], [2.0, 0.0]], [[True, True], [True, False]])
    """
    check_tensor("vectors", vectors, ndim=2)
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError("groups: expected non-empty index groups")
    lengths = torch.tensor([len(g) for g in groups])
    big = int(lengths.max())
    out = vectors.new_zeros(len(groups), big, vectors.shape[1])
    for i, g in enumerate(groups):
        out[i, : len(g)] = vectors[g]
    mask = torch.arange(big)[None, :] < lengths[:, None]
    return out, mask
