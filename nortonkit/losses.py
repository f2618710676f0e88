r"""Norton's two contrastive losses: clip-caption (Eq. 7-8) and video-paragraph (Eq. 4).

* :func:`clip_caption_loss` - symmetric InfoNCE over a batch of clip/caption pairs whose
  identity targets are rectified with a detached OT plan (faulty-negative exploitation).
* :func:`video_paragraph_loss` - contrast between sequences of ``K`` clips and their paragraphs
  of ``K`` captions, scored by the transport plan with the alignable prompt bucket.
* :func:`norton_loss` - ``L_clip + lambda * L_video`` (Eq. 1) from encoder outputs, in the
  official convention (the ``norton-official`` preset);
  ``nortonkit.train.objective.loss_terms`` computes
  every preset from a ``LossConfig``.

Batch layout: ``B`` clip/caption pairs, flattened video-major with the clips of each video in
time order, so that ``K`` consecutive pairs form one sequence and ``G = B // K`` sequences
(paragraphs) are contrasted. The sequence-loss temperature ``logit_scale`` (log of 1/tau) is an
argument: the model owns it as an ``nn.Parameter``.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .alignment import soft_dtw
from .similarity import mean_pooled_similarity, official_fused_similarity
from .transport import bucket_sinkhorn, bucket_value_from_quantile, sinkhorn
from .validation import (
    check_choice,
    check_finite,
    check_int_at_least,
    check_open_unit,
    check_positive,
    check_tensor,
)

__all__ = [
    "ClipLossResult",
    "VideoLossResult",
    "NortonLossResult",
    "clip_caption_loss",
    "sequence_blocks",
    "video_paragraph_loss",
    "norton_loss",
]

Measure = Literal["ot_bucket", "ot", "dtw", "mean"]
DEFAULT_LOGIT_SCALE = math.log(1 / 0.07)  # tau = 0.07, the paper's initial temperature


class ClipLossResult(NamedTuple):
    """Output of :func:`clip_caption_loss`.

    Attributes
    ----------
    loss : shape (), ``loss_v2t + loss_t2v`` (the official sum of the two directions).
    loss_v2t : shape (), mean over clips of the clip -> caption cross-entropy.
    loss_t2v : shape (), mean over captions of the caption -> clip cross-entropy.
    targets : shape (B, B), the clip -> caption targets ``(1 - beta) I + beta * B * Q``
        (rows sum to 1, no gradient); the caption -> clip targets are ``targets.T``.
    """

    loss: Tensor
    loss_v2t: Tensor
    loss_t2v: Tensor
    targets: Tensor


class VideoLossResult(NamedTuple):
    """Output of :func:`video_paragraph_loss`.

    Attributes
    ----------
    loss : shape (), ``CE(logits, arange(G)) + CE(logits.T, arange(G))``.
    logits : shape (G, G), ``exp(logit_scale) * D(i, j)``, rows = paragraphs (captions of
        sequence ``i``), columns = video sequences ``j``; ``-inf`` where ``mask_same_video``
        removed a negative.
    bucket_value : shape (), the prompt-bucket value ``p`` (``"ot_bucket"`` only, else None).
    plans : shape (G, G, K, K), the detached transport plans, captions of paragraph ``i`` (rows)
        x clips of sequence ``j`` (columns); None for ``"dtw"`` and ``"mean"``.
    """

    loss: Tensor
    logits: Tensor
    bucket_value: Tensor | None
    plans: Tensor | None


class NortonLossResult(NamedTuple):
    """Output of :func:`norton_loss`: ``loss = clip.loss + video_weight * video.loss``.

    ``video`` is None when ``video_weight == 0`` (the sequence loss is then not computed).
    """

    loss: Tensor
    clip: ClipLossResult
    video: VideoLossResult | None


def _check_beta(beta: float) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"beta: expected a number in [0, 1], got {beta!r}") from None
    if not 0.0 <= b <= 1.0:
        raise ValueError(f"beta: expected a number in [0, 1], got {beta!r}")
    return b


def _logit_scale(logit_scale: Tensor | float, like: Tensor) -> Tensor:
    """``exp(logit_scale)`` as a 0-dim tensor; gradients flow into a tensor ``logit_scale``."""
    if isinstance(logit_scale, Tensor):
        if logit_scale.numel() != 1:
            raise ValueError(
                f"logit_scale: expected a scalar tensor, got shape {tuple(logit_scale.shape)}"
            )
        check_finite("logit_scale", logit_scale)
        return logit_scale.reshape(()).to(like.dtype).exp()
    try:
        value = float(logit_scale)
    except (TypeError, ValueError):
        raise ValueError(
            f"logit_scale: expected a float or a scalar tensor, got {logit_scale!r}"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"logit_scale: expected a finite value, got {logit_scale!r}")
    return like.new_tensor(math.exp(value))


def clip_caption_loss(
    video_emb: Tensor,
    text_emb: Tensor,
    logit_scale: Tensor | None = None,
    beta: float = 0.3,
    fne_eps: float = 1.0,
    n_iters: int = 50,
) -> ClipLossResult:
    r"""Symmetric InfoNCE with faulty-negative exploitation (Norton Eq. 7-8).

    .. math::
        \hat Q^* = \arg\max_{Q \in U(\frac1B, \frac1B)} \langle Q, \hat S\rangle
            + \varepsilon H(Q), \qquad T = (1-\beta) I_B + \beta B \hat Q^*

        L_{clip} = -\frac1B \sum_{ij} T_{ij} \log \mathrm{softmax}_j(\hat S_{i\cdot})
            - \frac1B \sum_{ij} T_{ji} \log \mathrm{softmax}_j(\hat S_{\cdot i})

    with logits ``S_hat = video_emb @ text_emb.T`` (times ``exp(logit_scale)`` when given).

    Parameters
    ----------
    video_emb : shape (B, D), pooled clip vectors (pair ``i`` = clip ``i`` with caption ``i``).
    text_emb : shape (B, D), pooled caption vectors.
    logit_scale : None (default: raw dot products, as the official code and VideoCLIP) or a
        scalar tensor, the log of 1/tau; gradients flow into it.
    beta : weight of the OT plan in the targets, in [0, 1] (Norton 0.3). ``beta = 0`` skips the
        OT and is exactly ``F.cross_entropy(S, arange) + F.cross_entropy(S.T, arange)``.
    fne_eps : entropic regularisation of the plan (Norton 1, applied to the logits above).
    n_iters : Sinkhorn iterations (Norton 50).

    Returns
    -------
    ClipLossResult(loss, loss_v2t, loss_t2v, targets) with ``targets`` of shape (B, B).

    Notes
    -----
    Norton Eq. (7)-(8). As in the official code (docs/protocols.md §2.2, D3-D4): the plan uses
    uniform marginals and is scaled by ``B`` so its rows and columns sum to 1 (with the paper's
    literal 1/B scaling the OT term would vanish); it is a stop-gradient target
    (``grad="detach"``); the two directions are means over rows and are summed. Half-precision
    logits are computed in float32.

    Examples
    --------
    >>> v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> out = clip_caption_loss(v, v, beta=0.0)
    >>> round(float(out.loss), 4)           # 2 * (log(e + 1) - 1)
    0.6265
    >>> clip_caption_loss(v, v, beta=0.3).targets.sum(dim=1)
    tensor([1., 1.])
    """
    check_tensor("video_emb", video_emb, ndim=2)
    check_tensor("text_emb", text_emb, ndim=2)
    if video_emb.shape != text_emb.shape:
        raise ValueError(
            f"text_emb: expected the shape of video_emb {tuple(video_emb.shape)} (one caption "
            f"per clip), got {tuple(text_emb.shape)}"
        )
    if video_emb.shape[0] == 0:
        raise ValueError(f"video_emb: expected at least one pair, got {tuple(video_emb.shape)}")
    check_finite("video_emb", video_emb)
    check_finite("text_emb", text_emb)
    beta = _check_beta(beta)
    check_positive("fne_eps", fne_eps)
    check_int_at_least("n_iters", n_iters, 1)

    logits = mean_pooled_similarity(video_emb, text_emb, normalize=False)  # (B, B) clips x caps
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    if logit_scale is not None:
        logits = _logit_scale(logit_scale, logits) * logits
    b = logits.shape[0]
    if beta == 0.0:
        labels = torch.arange(b, device=logits.device)
        loss_v2t = F.cross_entropy(logits, labels)
        loss_t2v = F.cross_entropy(logits.T, labels)
        targets = torch.eye(b, dtype=logits.dtype, device=logits.device)
        return ClipLossResult(loss_v2t + loss_t2v, loss_v2t, loss_t2v, targets)

    plan = sinkhorn(logits.detach(), eps=fne_eps, n_iters=n_iters, grad="detach").plan  # (B, B)
    eye = torch.eye(b, dtype=logits.dtype, device=logits.device)
    targets = (1 - beta) * eye + beta * b * plan  # (B, B), rows sum to 1
    loss_v2t = F.cross_entropy(logits, targets)
    loss_t2v = F.cross_entropy(logits.T, targets.T)
    return ClipLossResult(loss_v2t + loss_t2v, loss_v2t, loss_t2v, targets)


def sequence_blocks(clip_caption_sim: Tensor, seq_len: int = 8) -> Tensor:
    r"""Cut a batch similarity into paragraph x video-sequence blocks, shape (G, G, K, K).

    ``blocks[i, j]`` holds the captions of paragraph ``i`` (rows) against the clips of sequence
    ``j`` (columns), i.e. ``S[K j : K j + K, K i : K i + K].T`` for the clips x captions input
    ``S``. This is the official ``S.view(G, K, G, K).transpose(1, 2)`` applied to the official
    captions x clips matrix ``S.T``.

    .. math::
        \mathrm{blocks}[i, j]_{kl} = S_{Kj + l,\; Ki + k}

    Parameters
    ----------
    clip_caption_sim : shape (B, B), clips x captions, video-major and time-sorted.
    seq_len : ``K``, the pairs per sequence (Norton 8); ``B`` must be a multiple of ``K``.

    Returns
    -------
    Tensor of shape (G, G, K, K) with ``G = B // K`` (a view-free copy; differentiable).

    Notes
    -----
    The pairs ``D(i, j)`` of Norton Eq. (4) (docs/protocols.md §2.3 item 8).

    Examples
    --------
    >>> s = torch.arange(16.0).reshape(4, 4)       # clips x captions
    >>> sequence_blocks(s, seq_len=2)[0, 1]        # captions 0-1 vs clips 2-3
    tensor([[ 8., 12.],
            [ 9., 13.]])
    """
    check_tensor("clip_caption_sim", clip_caption_sim, ndim=2)
    check_int_at_least("seq_len", seq_len, 1)
    b, b2 = clip_caption_sim.shape
    if b != b2 or b == 0:
        raise ValueError(
            "clip_caption_sim: expected a non-empty square (B, B) matrix of clips x captions, "
            f"got shape {tuple(clip_caption_sim.shape)}"
        )
    if b % seq_len:
        raise ValueError(
            f"clip_caption_sim: expected B to be a multiple of seq_len = {seq_len}, got B = {b}"
        )
    g = b // seq_len
    caps_x_clips = clip_caption_sim.T  # (B, B), official orientation: captions x clips
    return caps_x_clips.reshape(g, seq_len, g, seq_len).transpose(1, 2).contiguous()  # (G,G,K,K)


def video_paragraph_loss(
    clip_caption_sim: Tensor,
    seq_len: int = 8,
    logit_scale: Tensor | float = DEFAULT_LOGIT_SCALE,
    measure: Measure = "ot_bucket",
    eps: float = 0.1,
    bucket_quantile: float = 0.3,
    n_iters: int = 50,
    mask_same_video: bool = False,
    clips_per_video: int = 16,
    bucket_marginals: Literal["superglue", "uniform"] = "superglue",
    renormalize: bool = True,
    dtw_gamma: float = 0.1,
    bucket_value: float | Tensor | None = None,
) -> VideoLossResult:
    r"""Video-paragraph contrastive loss over the sequences of a batch (Norton Eq. 4, 6).

    .. math::
        D(i, j) = \langle Q_{ij}, S_{ij} \rangle, \qquad
        L_{video} = \mathrm{CE}\big(e^{s} D, \mathrm{arange}(G)\big)
                  + \mathrm{CE}\big(e^{s} D^\top, \mathrm{arange}(G)\big)

    with ``S_ij`` the (K, K) block of captions of paragraph ``i`` x clips of sequence ``j``
    (:func:`sequence_blocks`), ``Q_ij`` its detached transport plan and ``s = logit_scale``.

    Parameters
    ----------
    clip_caption_sim : shape (B, B), clips x captions of the flattened batch (video-major, clips
        of a video time-sorted), e.g. :func:`~nortonkit.similarity.official_fused_similarity`.
    seq_len : ``K`` pairs per sequence (Norton 8); ``G = B // K`` paragraphs.
    logit_scale : log of 1/tau, a scalar tensor (the model's ``nn.Parameter``; gradients flow
        into it) or a float (fixed). Default ``log(1/0.07)``, i.e. a multiplier of 14.2857.
    measure : how ``D(i, j)`` scores a block:
        ``"ot_bucket"`` (Norton): plan of Eq. (6) with the prompt bucket ``p``;
        ``"ot"``: plain entropic OT with uniform marginals (the paper's ablations C-G);
        ``"dtw"``: ``-softDTW_gamma(-S_ij)`` (TempCLR-style, differentiable, no plan);
        ``"mean"``: the block mean (no alignment).
    eps : entropic regularisation of the plans (Norton 0.1).
    bucket_quantile : ``p`` is the ``int(q * B)``-th **smallest** diagonal (aligned-pair)
        similarity of the whole batch, q in (0, 1) (Norton 0.3, "bottom 30 %").
    n_iters : Sinkhorn iterations (Norton 50).
    mask_same_video : if True, the other sequences of the same video are removed from the
        negatives (their logits become ``-inf``); official default False (§9 item 12).
    clips_per_video : clips per video (Norton 16), used only by ``mask_same_video``.
    bucket_marginals : ``"superglue"`` (official) or ``"uniform"``, see
        :func:`~nortonkit.transport.bucket_sinkhorn`.
    renormalize : rescale every kept plan to total mass ``K`` (official True). Also applies to
        ``"ot"``, whose plans otherwise have mass 1.
    dtw_gamma : soft-min smoothing of ``"dtw"`` (> 0).
    bucket_value : override ``p`` with this value (e.g. for ablations); default from the quantile.

    Returns
    -------
    VideoLossResult(loss, logits (G, G), bucket_value, plans (G, G, K, K)).

    Notes
    -----
    Norton Eq. (4) with the prompt bucket of Eq. (6); docs/protocols.md §2.3 items 7-12. The
    plans are stop-gradient targets (``grad="detach"``) and ``p`` is detached: gradients reach
    ``clip_caption_sim`` only through ``S_ij`` in ``<Q_ij, S_ij>``, and ``logit_scale``.
    Orientation: the official matrix is captions x clips; ours is clips x captions, and the
    blocks are built from its transpose so that ``D(i, j)`` = paragraph ``i`` vs video ``j``
    and the Sinkhorn iterations (rows updated first) match the official ones.

    Examples
    --------
    >>> s = torch.eye(4) * 0.8 + 0.1                 # clips x captions, 2 sequences of 2
    >>> out = video_paragraph_loss(s, seq_len=2, bucket_quantile=0.5)
    >>> out.logits.shape, out.plans.sum(dim=(-1, -2))
    (torch.Size([2, 2]), tensor([[2., 2.],
            [2., 2.]]))
    >>> round(float(out.loss), 4)
    0.0
    """
    check_choice("measure", measure, ("ot_bucket", "ot", "dtw", "mean"))
    check_choice("bucket_marginals", bucket_marginals, ("superglue", "uniform"))
    check_positive("eps", eps)
    check_open_unit("bucket_quantile", bucket_quantile)
    check_int_at_least("n_iters", n_iters, 1)
    check_positive("dtw_gamma", dtw_gamma)
    blocks = sequence_blocks(clip_caption_sim, seq_len)  # (G, G, K, K)
    check_finite("clip_caption_sim", clip_caption_sim)
    g = blocks.shape[0]
    k = seq_len
    flat = blocks.reshape(g * g, k, k)  # (G*G, K, K), block [i*G + j]
    if flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()
    scale = _logit_scale(logit_scale, flat)

    p = None
    plans = None
    if measure == "ot_bucket":
        if bucket_value is None:
            p = bucket_value_from_quantile(
                clip_caption_sim.diagonal().to(flat.dtype), bucket_quantile
            )
        else:
            p = torch.as_tensor(bucket_value, dtype=flat.dtype, device=flat.device).detach()
            if p.numel() != 1:
                raise ValueError(f"bucket_value: expected a scalar, got shape {tuple(p.shape)}")
            p = p.reshape(())
            check_finite("bucket_value", p)
        plans = bucket_sinkhorn(
            flat.detach(),
            p,
            eps=eps,
            n_iters=n_iters,
            marginals=bucket_marginals,
            renormalize=renormalize,
            grad="detach",
        ).plan  # (G*G, K, K)
        d = (plans * flat).sum(dim=(-1, -2))  # (G*G,)
    elif measure == "ot":
        plans = sinkhorn(flat.detach(), eps=eps, n_iters=n_iters, grad="detach").plan
        if renormalize:
            plans = plans * (k / plans.sum(dim=(-1, -2), keepdim=True))  # mass K per block
        d = (plans * flat).sum(dim=(-1, -2))  # (G*G,)
    elif measure == "dtw":

        d = -soft_dtw(-flat, dtw_gamma).cost  # (G*G,)
    else:
        d = flat.mean(dim=(-1, -2))  # (G*G,)

    logits = scale * d.reshape(g, g)  # (G, G): rows paragraphs i, columns videos j
    if mask_same_video:
        check_int_at_least("clips_per_video", clips_per_video, 1)
        b = clip_caption_sim.shape[0]
        if clips_per_video % k or b % clips_per_video:
            raise ValueError(
                f"clips_per_video: expected a multiple of seq_len = {k} that divides B = {b}, "
                f"got {clips_per_video}"
            )
        video_of = torch.arange(g, device=logits.device) // (clips_per_video // k)  # (G,)
        same = video_of[:, None] == video_of[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    labels = torch.arange(g, device=logits.device)
    loss = F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)
    if plans is not None:
        plans = plans.reshape(g, g, k, k)  # (G, G, K, K)
    return VideoLossResult(loss, logits, p, plans)


def norton_loss(
    video_emb: Tensor,
    text_emb: Tensor,
    video_tokens: Tensor,
    video_mask: Tensor,
    text_tokens: Tensor,
    text_mask: Tensor,
    logit_scale: Tensor | float = DEFAULT_LOGIT_SCALE,
    *,
    video_weight: float = 0.1,
    beta: float = 0.3,
    fne_eps: float = 1.0,
    seq_len: int = 8,
    alpha: float = 1.0,
    chunk_size: int | tuple[int | None, int | None] | None = None,
    measure: Measure = "ot_bucket",
    eps: float = 0.1,
    bucket_quantile: float = 0.3,
    n_iters: int = 50,
    mask_same_video: bool = False,
    clips_per_video: int = 16,
) -> NortonLossResult:
    r"""Norton's total loss ``L = L_clip + lambda * L_video`` (Eq. 1), official convention.

    .. math::
        L = L_{clip}(\bar v \bar t^\top) + \lambda\, L_{video}\big(S(v, t, \bar v, \bar t)\big)

    exactly as the released ``MMContraLoss`` + ``SequenceContrastLoss`` compute it, i.e. the
    ``norton-official`` preset of :mod:`nortonkit.train.presets`
    (``nortonkit.train.objective.loss_terms``
    with that preset gives the same value):

    * ``L_clip``: raw dot products of the pooled vectors, no temperature (D2), targets
      rectified by the detached FNE plan with unit row sums (D3-D4);
    * ``S``: the padding-leaking soft maximum of Eq. (5) (``mode="official"``, D8), min-max
      normalised over the batch and fused with the pooled cosine at weight 0.5 (D7,
      :func:`~nortonkit.similarity.official_fused_similarity`);
    * ``L_video``: bucket plans with SuperGlue marginals, renormalised to mass ``K`` (D5-D6),
      at the fixed scale ``logit_scale`` (default ``log(1/0.07)``, D1).

    The paper's convention (cosine L_clip with a learnable temperature, the exact Eq. 5, no
    fusion or min-max, uniform bucket marginals) is the ``norton`` preset of
    ``nortonkit.train.objective.loss_terms``; this function does not offer it.

    Parameters
    ----------
    video_emb, text_emb : shape (B, D), pooled clip and caption vectors (pairs aligned by index).
    video_tokens : shape (B, V, D), video_mask : shape (B, V); text_tokens : shape (B, T, D),
        text_mask : shape (B, T): the token outputs and validity masks.
    logit_scale : log of 1/tau of the sequence loss (the clip loss uses raw dot products).
    video_weight : lambda (Norton 0.1); 0 skips the sequence loss entirely.
    beta, fne_eps, n_iters : see :func:`clip_caption_loss` (``n_iters`` is shared, as in the
        official code).
    seq_len, measure, eps, bucket_quantile, mask_same_video, clips_per_video : see
        :func:`video_paragraph_loss` (the official family's ablations change ``measure``,
        ``alpha``, ``bucket_quantile``, ``beta`` and ``video_weight``).
    alpha, chunk_size : soft-maximum temperature of Eq. (5) and the similarity's memory
        bound, see :func:`~nortonkit.similarity.official_fused_similarity`.

    Returns
    -------
    NortonLossResult(loss, clip, video) with the two component results.

    Notes
    -----
    Norton Eq. (1), lambda = 0.1; docs/protocols.md §2.1 (``loss_video + loss_text + 0.1 *
    (loss_t + loss_v)``), §2.2-2.3 and D1-D8.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> vt, tt = torch.randn(4, 3, 8, generator=g), torch.randn(4, 5, 8, generator=g)
    >>> vm, tm = torch.ones(4, 3, dtype=torch.bool), torch.ones(4, 5, dtype=torch.bool)
    >>> out = norton_loss(vt.mean(1), tt.mean(1), vt, vm, tt, tm, seq_len=2, bucket_quantile=0.5)
    >>> bool(torch.isclose(out.loss, out.clip.loss + 0.1 * out.video.loss))
    True
    """
    try:
        weight = float(video_weight)
    except (TypeError, ValueError):
        raise ValueError(f"video_weight: expected a number >= 0, got {video_weight!r}") from None
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"video_weight: expected a finite number >= 0, got {video_weight!r}")
    clip = clip_caption_loss(video_emb, text_emb, None, beta, fne_eps, n_iters)
    if weight == 0:
        return NortonLossResult(clip.loss, clip, None)
    sim = official_fused_similarity(
        video_tokens,
        video_mask,
        text_tokens,
        text_mask,
        video_emb,
        text_emb,
        alpha=alpha,
        fusion_weight=0.5,
        mode="official",
        minmax_detach=False,
        chunk_size=chunk_size,
    )  # (B, B) clips x captions
    video = video_paragraph_loss(
        sim,
        seq_len,
        logit_scale,
        measure=measure,
        eps=eps,
        bucket_quantile=bucket_quantile,
        n_iters=n_iters,
        mask_same_video=mask_same_video,
        clips_per_video=clips_per_video,
        bucket_marginals="superglue",
        renormalize=True,
    )
    return NortonLossResult(clip.loss + weight * video.loss, clip, video)
