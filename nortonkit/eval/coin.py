r"""COIN action segmentation (Norton Table 4): per-second predictions, zero-shot and fine-tuned.

Each video is cut into overlapping windows; per-second outputs are averaged over the windows
that cover the second (``docs/protocols.md`` §7.7). The fine-tuned head's predictions are
:func:`coin_predict` (trained by :mod:`nortonkit.lab.finetune`); the zero-shot protocol
(``COINZSPredictor``) scores frame tokens against the label texts
(:func:`coin_zero_shot_logits`, :func:`eval_coin_zero_shot`). The metric is frame accuracy, the
same in both variants (the released evaluation has no quirk here).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..data.coin import load_coin
from ..encoders import DualEncoder
from ..metrics import frame_accuracy
from .common import VARIANTS, encode_captions

__all__ = ["coin_predict", "coin_zero_shot_logits", "eval_coin_zero_shot"]


def _average_windows(per_window: Tensor, starts: Tensor, mask: Tensor, n_frames: int) -> Tensor:
    """Average ``(W, V, C)`` window outputs into per-second ``(n_frames, C)`` (overlaps mean)."""
    total = per_window.new_zeros(n_frames, per_window.shape[-1])
    count = per_window.new_zeros(n_frames)
    for w in range(per_window.shape[0]):
        n = int(mask[w].sum())
        s = int(starts[w])
        total[s : s + n] += per_window[w, :n]
        count[s : s + n] += 1
    return total / count.clamp(min=1)[:, None]


@torch.no_grad()
def coin_predict(model: DualEncoder, video: Any, device: str = "cpu") -> Tensor:
    """Per-second predictions ``(T,)`` of the COIN head, logits averaged over windows."""
    model.eval()
    logits = model.frame_logits(video.windows.to(device), video.window_mask.to(device),
                                cls_attend=False).float().cpu()  # (W, V, C)
    return _average_windows(logits, video.window_starts, video.window_mask,
                            len(video.video_targets)).argmax(dim=1)


@torch.no_grad()
def coin_zero_shot_logits(model: DualEncoder, video: Any, labels: Tensor, device: str = "cpu",
                          cls_attend: bool = False) -> Tensor:
    r"""Per-second label scores ``(T, L)`` of one COIN video, frame tokens against label texts.

    .. math:: z_{s\ell} = \operatorname{mean}_{w \ni s}\, \langle h^{(w)}_{s}, \bar t_\ell \rangle

    with ``h^{(w)}`` the video encoder's frame outputs (positions ``1..V``) of window ``w``.

    Parameters
    ----------
    model : the dual encoder.
    video : a :class:`~nortonkit.data.coin.CoinVideo`: windows ``(W, V, D)``, mask ``(W, V)``,
        window starts ``(W,)`` and whole-video targets ``(T,)``.
    labels : shape (L, H), pooled label-text vectors (labels ``1..L``).
    device : torch device of the encoder.
    cls_attend : whether the video CLS takes part in attention. False (default): the official
        zero-shot path, whose ``COINActionSegmentationAligner`` feeds dummy caps with
        ``cmasks[:, 0] = 0`` to ``forward_video``; True: the pretraining / DSAligner layout.

    Returns
    -------
    Tensor of shape (T, L), float32, averaged over overlapping windows.

    Notes
    -----
    ``docs/protocols.md`` §3.3 (the COIN path masks the video CLS), §7.7 (``COINZSPredictor``)
    and §9 item 25 (``video_cls_attend``).
    """
    model.eval()
    tokens = model.encode_video(video.windows.to(device), video.window_mask.to(device),
                                cls_attend=cls_attend).tokens[:, 1:-1].float().cpu()
    per_window = tokens @ labels.T  # (W, V, L)
    return _average_windows(per_window, video.window_starts, video.window_mask,
                            len(video.video_targets))


@torch.no_grad()
def eval_coin_zero_shot(model: DualEncoder, root: Any, device: str = "cpu",
                        batch_size: int = 256, cls_attend: bool = False) -> list[dict]:
    """COIN zero-shot segmentation (``COINZSPredictor``): frame tokens against label texts.

    A second is labelled ``argmax + 1`` when its best label score exceeds the largest
    off-diagonal label-label dot product (``lbd``), otherwise background (0). The video
    encoder runs without CLS attention (``cls_attend=False``), as the official zero-shot path
    does (:func:`coin_zero_shot_logits`).
    """
    coin = load_coin(root, subset="testing", expected_dim=model.config.video_feature_dim)
    if len(coin) == 0:
        raise ValueError(f"coin: no testing video with features under {coin.feature_dir}")
    labels = encode_captions(model, coin.label_names[1:], device, batch_size)  # (L, H)
    gram = labels @ labels.T
    lbd = gram.masked_fill(torch.eye(len(labels), dtype=torch.bool), -math.inf).max()
    preds, targets = [], []
    for video in coin:
        logits = coin_zero_shot_logits(model, video, labels, device, cls_attend)  # (T, L)
        best, arg = logits.max(dim=1)
        preds.append(torch.where(best > lbd, arg + 1, torch.zeros_like(arg)))
        targets.append(video.video_targets)
    acc = frame_accuracy(preds, targets)
    n = int(sum(len(t) for t in targets))
    return [dict(table="T4", setting="zero-shot", measure="frame accuracy", variant=v,
                 metric="frame_accuracy", value=100 * acc, n=n)
            for v in VARIANTS]
