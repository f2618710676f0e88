r"""HTM-Align (Norton Table 9): sentence-to-second alignment recall and ROC AUC, zero-shot.

Each video is encoded in padded windows as the official script does; every sentence is scored
against every second by the window-averaged cosine of the pooled sentence and the frame token
(:func:`htm_align_scores`); recall is micro-averaged over the alignable sentences and the AUC
separates alignable from unalignable sentences by their best score (:func:`eval_htm_align`,
``docs/protocols.md`` §7.8). Both variants agree (no quirk in the released evaluation).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.htm_align import load_htm_align
from ..data.text import load_tokenizer
from ..encoders import DualEncoder
from ..metrics import alignment_recall, roc_auc
from .common import VARIANTS, encode_captions

__all__ = ["htm_align_scores", "eval_htm_align"]


@torch.no_grad()
def htm_align_scores(model: DualEncoder, video: Any, device: str = "cpu",
                     tokenizer: Any = None) -> Tensor:
    r"""Sentence x second cosine scores ``(S, T)`` of one HTM-Align video, window-averaged.

    .. math:: s_{it} = \frac{1}{n_{it}} \sum_{w:\, i \in A_w,\, t \in w}
              \cos\big(\bar t_i, h^{(w)}_{t - s_w}\big)

    Each window is encoded as the official script pads it
    (:func:`~nortonkit.data.htm_align.pad_windows`: zero features up to ``max_video_len`` = 32,
    mask False on the padding, CLS attended, so the SEP sits at position 33 for every window);
    frame tokens (positions ``1..V``) of the real seconds and the pooled sentences are
    L2-normalised; each window adds the cosines of its active sentences ``A_w`` and frames; the
    sum is divided by the coverage count ``n_it``; uncovered entries get ``-6e4``.

    Parameters
    ----------
    model : the dual encoder.
    video : an :class:`~nortonkit.data.htm_align.HTMAlignVideo`: padded ``windows`` of shape
        (W, V, D), ``window_mask`` (W, V), ``window_spans`` and ``text_ranges`` (W, 2).
    device : torch device of the encoder.
    tokenizer : optional tokenizer (default :func:`~nortonkit.data.text.load_tokenizer`).

    Returns
    -------
    Tensor of shape (S, T), float32.

    Notes
    -----
    ``docs/protocols.md`` §7.8 (``N:eval_zeroshot_align.py``: ``get_text_visual_sim`` pads
    each window to ``model.max_video_len``, ``sim.masked_fill_(sim == 0, -6e4)``).
    """
    model.eval()
    spans = video.window_spans.tolist()
    frames = model.encode_video(video.windows.to(device),
                                video.window_mask.to(device)).tokens[:, 1:-1]
    frames = F.normalize(frames.float().cpu(), dim=-1)  # (W, V, H)
    text = F.normalize(encode_captions(model, video.texts, device, tokenizer=tokenizer), dim=-1)
    n_text, n_frames = len(video.texts), len(video.features)
    total = torch.zeros(n_text, n_frames)
    count = torch.zeros(n_text, n_frames)
    for w, ((s, e), (r0, r1)) in enumerate(zip(spans, video.text_ranges.tolist())):
        total[r0:r1, s:e] += text[r0:r1] @ frames[w, : e - s].T
        count[r0:r1, s:e] += 1
    return torch.where(count > 0, total / count.clamp(min=1), torch.tensor(-6e4))


def eval_htm_align(model: DualEncoder, root: Any, device: str = "cpu") -> list[dict]:
    """Norton Table 9: HTM-Align alignment recall (micro-average) and ROC AUC."""
    data = load_htm_align(root, expected_dim=model.config.video_feature_dim)
    tok = load_tokenizer()
    hits = total = 0
    auc_scores, auc_labels = [], []
    for video in data:
        s = htm_align_scores(model, video, device, tokenizer=tok)
        r = alignment_recall(s[None], video.segments[None], text_mask=video.alignable[None])
        hits, total = hits + r.hits, total + r.n
        auc_scores.append(s.max(dim=1).values)
        auc_labels.append(video.alignable)
    rows = [dict(metric="recall", value=100 * hits / total if total else float("nan"), n=total)]
    labels = torch.cat(auc_labels)
    if bool(labels.any()) and bool((~labels).any()):
        rows.append(dict(metric="AUC", value=100 * roc_auc(torch.cat(auc_scores), labels),
                         n=len(labels)))
    return [dict(r, table="T9", setting="zero-shot", measure="alignment", variant=v)
            for r in rows for v in VARIANTS]
