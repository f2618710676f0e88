"""The pre-training objective, Norton Eq. 1: ``L = clip_weight * L_clip + video_weight * L_video``.

:func:`clip_term` (Eq. 7-8, with faulty-negative exploitation), :func:`video_similarity` (the
clip-caption matrix that Eq. 4 transports: Eq. 5's soft maximum, or pooled cosines),
:func:`video_term` (Eq. 4 and 6), their sum :func:`loss_terms`, and :class:`NortonObjective`,
the module that DDP wraps, with one update :func:`train_step`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..encoders import (
    DualEncoder,
    DualEncoderOutput,
    EncoderOutput,
)
from ..losses import ClipLossResult, VideoLossResult, clip_caption_loss, video_paragraph_loss
from ..similarity import (
    fuse_similarity,
    mean_pooled_similarity,
    minmax_normalize,
    official_fused_similarity,
    token_lse_similarity,
)
from .config import (
    LossConfig,
)
from .distributed import (
    DistEnv,
    all_gather_with_grad,
    is_distributed,
)

__all__ = [
    "LossTerms", "clip_term", "video_similarity", "video_term", "loss_terms", "NortonObjective",
    "train_step", "wrap_ddp", "clip_retrieval_r1",
]


# ----------------------------------------------------------------------------- loss terms


class LossTerms(NamedTuple):
    """Scalar terms of one step (float32, shape ()); ``video`` is None when lambda = 0.

    ``total = clip_weight * clip + video_weight * video``; ``bucket_value`` is the prompt
    bucket ``p`` of Eq. (6) (None unless ``measure="ot_bucket"``).
    """

    total: Tensor
    clip: Tensor
    video: Tensor | None
    bucket_value: Tensor | None


def clip_term(
    video_pooled: Tensor, text_pooled: Tensor, clip_logit_scale: Tensor | None, loss: LossConfig
) -> ClipLossResult:
    r"""L_clip with faulty-negative exploitation (Eq. 7-8) on pooled clip and caption vectors.

    .. math::
        \hat S = e^{s}\, \frac{\bar v \bar t^\top}{\|\bar v\| \|\bar t\|}, \qquad
        L_{clip} = \mathrm{CE}\big(\hat S, T\big) + \mathrm{CE}\big(\hat S^\top, T^\top\big),
        \quad T = (1 - \beta) I + \beta B \hat Q^*

    Parameters
    ----------
    video_pooled, text_pooled : shape (B, H), pair ``i`` = clip ``i`` and caption ``i``.
    clip_logit_scale : shape (), log of 1/tau (the model's parameter), or None for raw logits.
    loss : the loss section; ``clip_normalize`` chooses cosine (paper) or raw dot products
        (official), ``beta``, ``fne_eps`` and ``n_iters`` go to
        :func:`~nortonkit.losses.clip_caption_loss`.

    Returns
    -------
    ClipLossResult

    Notes
    -----
    Norton Eq. (7)-(8); docs/protocols.md §2.2 and D2 for the raw-logit variant.

    Examples
    --------
    >>> v = torch.eye(2)
    >>> round(float(clip_term(v, v, None, LossConfig(beta=0.0, clip_normalize=False)).loss), 4)
    0.6265
    """
    if loss.clip_normalize:
        video_pooled = F.normalize(video_pooled, dim=-1)
        text_pooled = F.normalize(text_pooled, dim=-1)
    return clip_caption_loss(video_pooled, text_pooled, clip_logit_scale, beta=loss.beta,
                             fne_eps=loss.fne_eps, n_iters=loss.n_iters)


def video_similarity(out: DualEncoderOutput, loss: LossConfig) -> Tensor:
    r"""The clip x caption similarity fed to L_video, shape (B, B).

    .. math::
        S_{ab} = \frac{w \cos(\bar v_a, \bar t_b) + \mathrm{LSE}_\alpha(v_a, t_b)}{w + 1}

    Parameters
    ----------
    out : encoder outputs (float32): pooled (B, H), tokens (B, V+2, H) / (B, T, H) and masks.
    loss : ``similarity="mean"``: cosine of the pooled vectors (ablation C); ``"lse"``: the soft
        maximum of Eq. (5) with ``alpha = lse_temperature`` and ``lse_mask_mode``, fused with
        the pooled cosine at ``fusion_weight`` (0: Eq. 5 alone); ``minmax``: the official
        global min-max of every matrix first
        (:func:`~nortonkit.similarity.official_fused_similarity`).

    Returns
    -------
    Tensor of shape (B, B), clips x captions.

    Notes
    -----
    Norton Eq. (5); the fusion and min-max are the official code's (docs/protocols.md D7).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> tok = torch.randn(4, 3, 8, generator=g); m = torch.ones(4, 3, dtype=torch.bool)
    >>> side = EncoderOutput(tok.mean(1), tok, m)
    >>> video_similarity(DualEncoderOutput(side, side), LossConfig()).shape
    torch.Size([4, 4])
    """
    v, t = out.video, out.text
    if loss.similarity == "mean":
        sim = mean_pooled_similarity(v.pooled, t.pooled, normalize=True)
        return minmax_normalize(sim, loss.minmax_detach) if loss.minmax else sim
    if loss.minmax:
        return official_fused_similarity(
            v.tokens, v.mask, t.tokens, t.mask, v.pooled, t.pooled, alpha=loss.lse_temperature,
            fusion_weight=loss.fusion_weight, mode=loss.lse_mask_mode,
            minmax_detach=loss.minmax_detach, chunk_size=loss.chunk_size,
            precision=loss.similarity_precision,
        )
    sim = token_lse_similarity(v.tokens, v.mask, t.tokens, t.mask, alpha=loss.lse_temperature,
                               mode=loss.lse_mask_mode, chunk_size=loss.chunk_size,
                               precision=loss.similarity_precision)
    if loss.fusion_weight > 0:
        cosine = mean_pooled_similarity(v.pooled, t.pooled, normalize=True)
        sim = fuse_similarity(cosine.to(sim.dtype), sim, loss.fusion_weight)
    return sim


def video_term(
    sim: Tensor, logit_scale: Tensor, loss: LossConfig, clips_per_video: int
) -> VideoLossResult:
    r"""L_video (Eq. 4, 6) on a clip x caption similarity, keyword-unpacking ``loss``.

    .. math::
        L_{video} = \mathrm{CE}(e^{s} D, \mathrm{arange}(G)) + \mathrm{CE}(e^{s} D^\top,
        \mathrm{arange}(G)), \qquad D_{ij} = \langle Q_{ij}, S_{ij} \rangle

    Parameters
    ----------
    sim : shape (B, B), clips x captions (:func:`video_similarity`), video-major.
    logit_scale : shape (), log of 1/tau (the model's ``logit_scale``).
    loss : the loss section (``seq_len``, ``measure``, ``video_eps``, ``bucket_quantile``, ...).
    clips_per_video : clips per video (for ``mask_same_video``).

    Returns
    -------
    VideoLossResult with ``logits`` of shape (G, G), ``G = B // seq_len``.

    Notes
    -----
    Norton Eq. (4) and the prompt bucket of Eq. (6), via
    :func:`~nortonkit.losses.video_paragraph_loss`.

    Examples
    --------
    >>> out = video_term(torch.eye(16) * 0.8 + 0.1, torch.tensor(2.0), LossConfig(), 16)
    >>> out.logits.shape
    torch.Size([2, 2])
    """
    return video_paragraph_loss(
        sim, seq_len=loss.seq_len, logit_scale=logit_scale, measure=loss.measure,
        eps=loss.video_eps, bucket_quantile=loss.bucket_quantile, n_iters=loss.n_iters,
        mask_same_video=loss.mask_same_video, clips_per_video=clips_per_video,
        bucket_marginals=loss.bucket_marginals, renormalize=loss.renormalize,
        dtw_gamma=loss.dtw_gamma,
    )


def loss_terms(
    out: DualEncoderOutput, encoder: DualEncoder, loss: LossConfig, clips_per_video: int
) -> LossTerms:
    r"""Norton's total loss ``L = L_clip + lambda * L_video`` (Eq. 1) from encoder outputs.

    .. math:: L = w_{clip} L_{clip} + \lambda L_{video}

    Parameters
    ----------
    out : encoder outputs of ``B = videos * clips_per_video`` clip/caption pairs, video-major,
        float32: pooled shape (B, H), tokens (B, V+2, H) and (B, T, H), masks (B, V+2), (B, T).
    encoder : the model; its ``logit_scale`` (L_video) and ``clip_logit_scale`` (L_clip, when
        it exists) are used as tensors so that gradients reach them.
    loss : the loss section of the config.
    clips_per_video : clips per video (for ``mask_same_video``).

    Returns
    -------
    LossTerms

    Notes
    -----
    Norton Eq. (1) with lambda = 0.1; docs/protocols.md §2.1.

    Examples
    --------
    >>> from nortonkit.encoders import EncoderConfig
    >>> g = torch.Generator().manual_seed(0)
    >>> tok = torch.randn(16, 3, 8, generator=g); m = torch.ones(16, 3, dtype=torch.bool)
    >>> side = EncoderOutput(tok.mean(1), tok, m)
    >>> enc = DualEncoder(EncoderConfig(preset="tiny", vocab_size=128))
    >>> terms = loss_terms(DualEncoderOutput(side, side), enc, LossConfig(), 16)
    >>> bool(torch.isclose(terms.total, terms.clip + 0.1 * terms.video))
    True
    """
    clip_scale = getattr(encoder, "clip_logit_scale", None)
    clip = clip_term(out.video.pooled, out.text.pooled, clip_scale, loss)
    total = loss.clip_weight * clip.loss
    if loss.video_weight == 0:
        return LossTerms(total, clip.loss, None, None)
    video = video_term(video_similarity(out, loss), encoder.logit_scale, loss, clips_per_video)
    return LossTerms(total + loss.video_weight * video.loss, clip.loss, video.loss,
                     video.bucket_value)


def _float32(out: DualEncoderOutput) -> DualEncoderOutput:
    return DualEncoderOutput(*(EncoderOutput(s.pooled.float(), s.tokens.float(), s.mask)
                               for s in out))


def _gather(out: DualEncoderOutput) -> DualEncoderOutput:
    def side(s: EncoderOutput) -> EncoderOutput:
        mask = all_gather_with_grad(s.mask.to(torch.uint8)).bool()
        return EncoderOutput(all_gather_with_grad(s.pooled), all_gather_with_grad(s.tokens), mask)

    return DualEncoderOutput(side(out.video), side(out.text))


class NortonObjective(nn.Module):
    """The encoder and the loss of one step as one module (the unit DDP wraps).

    ``forward(video, video_mask, text_ids, text_mask)`` encodes under autocast (when
    ``autocast_dtype`` is set), casts the outputs to float32, gathers them over ranks when
    ``negatives == "global"`` and returns :class:`LossTerms` computed in float32. The matrix
    products of the Eq. 5 similarity follow ``loss.similarity_precision``; ``"auto"`` resolves
    here to the autocast dtype (bf16 / fp16), or fp32 without autocast.

    >>> from nortonkit.train.config import config_from_dict
    >>> _ = torch.manual_seed(0)
    >>> cfg = config_from_dict({"model": {"preset": "tiny"}})
    >>> obj = NortonObjective(DualEncoder(cfg.model), cfg.loss, clips_per_video=8)
    >>> ids = torch.tensor([[101, 2023, 102]] * 16)
    >>> terms = obj(torch.randn(16, 4, 512), torch.ones(16, 4, dtype=torch.bool), ids, ids > 0)
    >>> terms.total.shape, terms.video is not None
    (torch.Size([]), True)
    """

    def __init__(self, encoder: DualEncoder, loss: LossConfig, clips_per_video: int,
                 negatives: str = "local", autocast_dtype: torch.dtype | None = None):
        super().__init__()
        self.encoder = encoder
        if loss.similarity_precision == "auto":  # the losses run with autocast off
            half = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(autocast_dtype, "fp32")
            loss = replace(loss, similarity_precision=half)
        self.loss, self.clips_per_video = loss, clips_per_video
        self.negatives, self.autocast_dtype = negatives, autocast_dtype

    def encode(self, video: Tensor, video_mask: Tensor, text_ids: Tensor,
               text_mask: Tensor) -> DualEncoderOutput:
        """Encoder outputs in float32 (autocast inside when configured)."""
        device = video.device.type
        ctx = (torch.autocast(device, dtype=self.autocast_dtype)
               if self.autocast_dtype is not None else nullcontext())
        with ctx:
            out = self.encoder(video, video_mask, text_ids, text_mask)
        return _float32(out)

    def losses(self, out: DualEncoderOutput, gather: bool = False) -> LossTerms:
        """:func:`loss_terms` in float32, on the outputs of every rank when ``gather``."""
        if gather:
            out = _gather(out)
        with torch.autocast(out.video.pooled.device.type, enabled=False):
            return loss_terms(out, self.encoder, self.loss, self.clips_per_video)

    def forward(self, video: Tensor, video_mask: Tensor, text_ids: Tensor,
                text_mask: Tensor) -> LossTerms:
        out = self.encode(video, video_mask, text_ids, text_mask)
        return self.losses(out, gather=self.negatives == "global" and is_distributed())


def train_step(
    model: nn.Module,
    encoder: DualEncoder,
    optimizer: torch.optim.Optimizer,
    batch: Sequence[Tensor],
    clip_norm: float = 2.0,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[LossTerms, Tensor]:
    """One update: loss, backward, global-norm clipping, optimizer step, logit-scale clamp.

    Parameters
    ----------
    model : a :class:`NortonObjective`, or DDP wrapping one.
    encoder : the wrapped :class:`~nortonkit.encoders.DualEncoder`.
    optimizer : built by :func:`build_optimizer` (its rate already set for this update).
    batch : ``(video (B, V, 512), video_mask (B, V), text_ids (B, T), text_mask (B, T))``.
    clip_norm : maximum global gradient norm (fairseq ``clip_norm``; 0 = no clipping).
    scaler : a GradScaler for fp16 autocast, else None.

    Returns
    -------
    (LossTerms, grad_norm): the terms of this update and the gradient norm before clipping.

    Raises
    ------
    FloatingPointError when the loss is not finite (nothing is updated).

    Notes
    -----
    The logit scales are clamped to ``[0, log 100]`` after the step (open_clip), i.e.
    ``tau >= 0.01``; fairseq clips the global norm the same way (docs/protocols.md §6).

    Examples
    --------
    >>> from nortonkit.train.config import config_from_dict
    >>> from nortonkit.train.schedule import build_optimizer
    >>> _ = torch.manual_seed(0)
    >>> cfg = config_from_dict({"model": {"preset": "tiny", "vocab_size": 128}})
    >>> enc = DualEncoder(cfg.model)
    >>> obj = NortonObjective(enc, cfg.loss, clips_per_video=8)
    >>> ids = torch.tensor([[101, 110, 102]] * 16)
    >>> batch = (torch.randn(16, 4, 512), torch.ones(16, 4, dtype=torch.bool), ids, ids > 0)
    >>> terms, norm = train_step(obj, enc, build_optimizer(enc, cfg), batch, clip_norm=2.0)
    >>> bool(torch.isfinite(terms.total)), float(enc.logit_scale.detach()) != 2.6593
    (True, True)
    """
    optimizer.zero_grad(set_to_none=True)
    terms = model(*batch)
    if not torch.isfinite(terms.total):
        video = None if terms.video is None else float(terms.video)
        raise FloatingPointError(f"non-finite loss {float(terms.total)} (clip "
                                 f"{float(terms.clip)}, video {video})")
    if scaler is not None:
        scaler.scale(terms.total).backward()
        scaler.unscale_(optimizer)
    else:
        terms.total.backward()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, clip_norm if clip_norm > 0 else math.inf)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    encoder.clamp_logit_scales_()
    return terms, grad_norm


def wrap_ddp(objective: NortonObjective, env: DistEnv) -> nn.Module:
    """DDP around ``objective`` when several processes run, else ``objective`` itself.

    ``find_unused_parameters=True``: BERT's pooler (computed, never in a loss) and, with
    lambda = 0, the sequence temperature take no part in the loss. The gradient average of DDP
    is fairseq's (docs/protocols.md §2.1: loss summed per GPU, gradients averaged).

    >>> from nortonkit.train.distributed import DistEnv
    >>> from nortonkit.encoders import EncoderConfig
    >>> obj = NortonObjective(DualEncoder(EncoderConfig(preset="tiny", vocab_size=128)),
    ...                       LossConfig(), 16)
    >>> wrap_ddp(obj, DistEnv(0, 1, 0, torch.device("cpu"), "none")) is obj
    True
    """
    if env.world_size == 1:
        return objective
    return nn.parallel.DistributedDataParallel(
        objective, device_ids=[env.device.index] if env.device.type == "cuda" else None,
        find_unused_parameters=True,
    )


def clip_retrieval_r1(video_pooled: Tensor, text_pooled: Tensor) -> float:
    r"""Caption -> clip R@1 within a batch, ranking clips by raw dot product.

    .. math:: \mathrm{R@1} = \frac1B \sum_i [\arg\max_j \langle \bar t_i, \bar v_j \rangle = i]

    Parameters
    ----------
    video_pooled : shape (B, H), pooled clip vectors; text_pooled : shape (B, H), captions.

    Returns
    -------
    float in [0, 1]; chance level is 1/B.

    Notes
    -----
    The official retrieval metric ranks ``text @ video.T`` without normalisation
    (docs/protocols.md §7.0-7.1).

    Examples
    --------
    >>> clip_retrieval_r1(torch.eye(3), torch.tensor([[1.0, 0, 0], [0, 1, 0], [1, 0, 0]]))
    0.6666666666666666
    """
    scores = text_pooled.float() @ video_pooled.float().T  # (B, B): captions x clips
    hits = scores.argmax(dim=1) == torch.arange(scores.shape[0], device=scores.device)
    return int(hits.sum()) / scores.shape[0]
