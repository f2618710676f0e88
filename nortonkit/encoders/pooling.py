"""Attention pooling: a learned query weighs the tokens of a clip or caption.

The paper pools each side by the average of its tokens (Norton Appendix A). A small randomly
initialised encoder whose tokens are LayerNorm-ed to one length cannot, by averaging, give the
words that name a step more weight than filler words; ``EncoderConfig.pooling="attention"``
lets it learn those weights (data_recipes/SYNTHETIC.md). The query starts at zero, where the
weights are uniform and the pooled vector is exactly the paper's mean.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["attention_pool", "AttentionPool"]


def attention_pool(tokens: Tensor, mask: Tensor, query: Tensor) -> Tensor:
    """Softmax-weighted mean of the valid tokens.

    ``pooled_b = sum_t w_bt h_bt`` with ``w_b = softmax_t(q . h_bt)`` over the
    positions where ``mask`` is True.

    Parameters
    ----------
    tokens : shape (B, L, H)
    mask : shape (B, L), bool; True = pooled. A row with no True pools to zeros.
    query : shape (H,)

    Returns
    -------
    Tensor, shape (B, H)

    Examples
    --------
    >>> h = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [99.0, 0.0]]])
    >>> attention_pool(h, torch.tensor([[True, True, False]]), torch.zeros(2))
    tensor([[2., 0.]])
    """
    logits = tokens @ query.to(tokens.dtype)  # (B, L)
    logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
    weights = logits.softmax(-1) * mask  # (B, L); zero on padding and on empty rows
    return (weights.unsqueeze(-1) * tokens.masked_fill(~mask[..., None], 0.0)).sum(1)


class AttentionPool(nn.Module):
    """One learned query of width ``hidden_size``, zero at initialisation (= mean pooling).

    >>> pool = AttentionPool(4)
    >>> pool(torch.ones(2, 3, 4), torch.ones(2, 3, dtype=torch.bool)).shape
    torch.Size([2, 4])
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """(B, L, H) tokens, (B, L) mask -> (B, H); see :func:`attention_pool`."""
        return attention_pool(tokens, mask, self.query)
