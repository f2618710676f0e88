"""Norton pre-training loop: ``python -m nortonkit.train --config <yaml> [key=value ...]``.

One update: encode ``B`` videos x ``K`` clips (video-major), compute
``L = clip_weight * L_clip + video_weight * L_video`` (Norton Eq. 1) in float32, back-propagate,
clip the global gradient norm (2.0), take an Adam step (betas 0.9, 0.98) at the learning rate of
a linear warm-up followed by a polynomial decay (fairseq ``polynomial_decay``), and clamp the
model's logit scales to ``[0, log 100]`` (open_clip). Encoders run under bf16/fp16 autocast on
GPUs; CPUs run in float32.

Around it: retrieval-augmented hard-negative batches recomputed each epoch
(:mod:`nortonkit.retrieval`), DDP over ``torchrun`` processes with optional global negatives
(:mod:`nortonkit.distributed`), a tqdm bar, a CSV log and TensorBoard scalars, validation on the
held-out list, atomic checkpoints (:mod:`nortonkit.checkpoint`) and exact resumption: a run
stopped at any update and resumed from its last checkpoint ends with the same weights as an
uninterrupted run (bitwise on CPU), because model, optimizer, schedule, every rank's RNG states,
the epoch's batch list and the position in it are all restored, and every data sample is
seeded by its position. Launch recipes: ``docs/TRAINING.md``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import (
    LossConfig,
    TrainConfig,
    config_to_dict,
    dump_config,
    load_config,
    validate_config,
)
from .data.synthetic import CorpusMismatchError, ensure_corpus
from .distributed import (
    DistEnv,
    all_gather_object,
    all_gather_with_grad,
    all_reduce_mean,
    barrier,
    broadcast_object,
    cleanup_distributed,
    init_distributed,
    is_distributed,
)
from .encoders import (
    KIT_ONLY_KEYS,
    DualEncoder,
    DualEncoderOutput,
    EncoderOutput,
    trainable_parameters,
)
from .losses import ClipLossResult, VideoLossResult, clip_caption_loss, video_paragraph_loss
from .retrieval import pad_batches, retrieval_batches, video_embeddings
from .similarity import (
    fuse_similarity,
    mean_pooled_similarity,
    minmax_normalize,
    official_fused_similarity,
    token_lse_similarity,
)
from .threads import torch_threads
from .validation import check_int_at_least

__all__ = [
    "LossTerms",
    "FitResult",
    "polynomial_decay_lr",
    "PolynomialDecaySchedule",
    "build_optimizer",
    "clip_term",
    "video_similarity",
    "video_term",
    "loss_terms",
    "NortonObjective",
    "train_step",
    "wrap_ddp",
    "clip_retrieval_r1",
    "evaluate_model",
    "fit",
    "main",
]

LAST, BEST = "checkpoint_last", "checkpoint_best"
TRAIN_COLUMNS = ("step", "epoch", "lr", "loss", "loss_clip", "loss_video", "grad_norm",
                 "inv_tau_video", "inv_tau_clip", "bucket_value", "sec_per_step", "clips_per_sec")
VAL_COLUMNS = ("step", "epoch", "val_loss", "val_loss_clip", "val_loss_video", "val_clip_r1",
               "val_batches")
RETRIEVAL_COLUMNS = ("epoch", "mode", "n_batches", "n_videos", "n_effective", "coverage",
                     "n_short", "n_query_dropped", "n_centroids", "seconds")


# ----------------------------------------------------------------------------- schedule


def polynomial_decay_lr(
    num_updates: int,
    lr: float,
    warmup_updates: int,
    total_num_update: int,
    end_lr: float = 0.0,
    power: float = 1.0,
) -> float:
    r"""Learning rate after ``num_updates`` updates (fairseq ``polynomial_decay`` semantics).

    .. math::
        \eta(u) = \begin{cases} \eta\, u / w & u \le w \\
        (\eta - \eta_{end}) \big(1 - \frac{u - w}{U - w}\big)^{p} + \eta_{end} & w < u < U \\
        \eta_{end} & u \ge U \end{cases}

    Parameters
    ----------
    num_updates : updates completed so far (``u``); the next update runs at this rate, so the
        first update (``u = 0``) runs at rate 0 when ``warmup_updates > 0``, as in fairseq.
    lr : peak rate ``eta`` (Norton 1e-5).
    warmup_updates : ``w`` (official 1000; 0 = no warm-up).
    total_num_update : ``U``, where the rate reaches ``end_lr`` (official 1e6).
    end_lr, power : ``eta_end`` (0) and ``p`` (1 = linear).

    Returns
    -------
    float

    Notes
    -----
    Norton App. A (Adam, lr 1e-5); docs/protocols.md §6 (fairseq ``polynomial_decay``, warm-up
    1000, ``total_num_update`` 1e6, so the decay is negligible over a real run).

    Examples
    --------
    >>> [polynomial_decay_lr(u, 1.0, 2, 6) for u in range(8)]
    [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    if warmup_updates > 0 and num_updates <= warmup_updates:
        return lr * num_updates / warmup_updates
    if num_updates >= total_num_update:
        return end_lr
    remaining = 1 - (num_updates - warmup_updates) / (total_num_update - warmup_updates)
    return (lr - end_lr) * remaining**power + end_lr


class PolynomialDecaySchedule:
    """Sets the optimizer's rate to :func:`polynomial_decay_lr` before every update.

    The rate is a pure function of the update count, so the state is that count only.

    >>> opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> sched = PolynomialDecaySchedule(opt, lr=1.0, warmup_updates=2, total_num_update=6)
    >>> sched.step_update(1), opt.param_groups[0]["lr"]
    (0.5, 0.5)
    """

    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, warmup_updates: int,
                 total_num_update: int, end_lr: float = 0.0, power: float = 1.0):
        check_int_at_least("warmup_updates", warmup_updates, 0)
        check_int_at_least("total_num_update", total_num_update, 1)
        if total_num_update <= warmup_updates:
            raise ValueError(
                f"total_num_update: expected more than warmup_updates={warmup_updates}, got "
                f"{total_num_update}"
            )
        self.optimizer = optimizer
        self.lr, self.warmup_updates, self.total_num_update = lr, warmup_updates, total_num_update
        self.end_lr, self.power = end_lr, power
        self.num_updates = 0

    def step_update(self, num_updates: int) -> float:
        """Set and return the rate of the update that follows ``num_updates`` updates."""
        self.num_updates = int(num_updates)
        rate = polynomial_decay_lr(self.num_updates, self.lr, self.warmup_updates,
                                   self.total_num_update, self.end_lr, self.power)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        return rate

    def state_dict(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_update(int(state["num_updates"]))


def build_optimizer(encoder: DualEncoder, config: TrainConfig) -> torch.optim.Adam:
    """Adam over exactly ``trainable_parameters(encoder)`` (temperatures included).

    >>> from nortonkit.config import config_from_dict
    >>> cfg = config_from_dict({"model": {"preset": "tiny"}})
    >>> opt = build_optimizer(DualEncoder(cfg.model), cfg)
    >>> opt.defaults["betas"], len(opt.param_groups[0]["params"]) > 0
    ((0.9, 0.98), True)
    """
    o = config.optim
    params = list(trainable_parameters(encoder).values())
    if not params:
        raise ValueError(f"model.trainable: {config.model.trainable!r} selects no parameter")
    return torch.optim.Adam(params, lr=o.lr, betas=o.betas, eps=o.eps,
                            weight_decay=o.weight_decay)


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

    >>> from nortonkit.config import config_from_dict
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
    >>> from nortonkit.config import config_from_dict
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

    >>> from nortonkit.distributed import DistEnv
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


# ----------------------------------------------------------------------------- data


class _Corpus(NamedTuple):
    dataset: Any  # How2Dataset (sampling only; batches come from the loop)
    ids: list[str]


def _open_split(config: TrainConfig, split: str, seed: int) -> _Corpus:
    from .data.howto100m import How2Dataset, ShardedCaptions, ShardedFeatures, read_video_list
    from .data.layout import DataRoot

    d = config.data
    root = DataRoot(d.root)
    feats = ShardedFeatures(root.how2_feature_shards, split,
                            expected_dim=config.model.video_feature_dim)
    caps = ShardedCaptions(root.how2_caption_shards, split, feats)
    listing = root.how2_list(split)
    ids = read_video_list(listing) if listing.is_file() else feats.ids
    ids = [v for v in ids if v in feats and v in caps]
    if not ids:
        raise ValueError(f"data.root: no {split!r} video has both features and captions "
                         f"under {root.root}")
    dataset = How2Dataset(
        feats, caps, ids, videos_per_batch=d.videos_per_batch, clips_per_video=d.clips_per_video,
        seed=seed, shuffle=False, drop_last=False, min_text_len=d.min_text_len,
        max_text_len=d.max_text_len, min_clip_len=d.min_clip_len, max_clip_len=d.max_clip_len,
        max_video_len=d.max_video_len, max_len=d.max_len, replacement=d.with_replacement,
    )
    return _Corpus(dataset, ids)


class _BatchStream(torch.utils.data.IterableDataset):
    """Yields ``(global_index, ClipBatch | None)`` for given items, dealt to DataLoader workers."""

    def __init__(self, dataset: Any, items: Sequence[tuple[int, list[str]]]):
        super().__init__()
        self.dataset, self.items = dataset, list(items)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        info = torch.utils.data.get_worker_info()
        items = self.items if info is None else self.items[info.id :: info.num_workers]
        for index, vids in items:
            yield index, self.dataset.make_batch(index, vids)


def _loader(dataset: Any, items: Sequence[tuple[int, list[str]]], num_workers: int,
            pin: bool) -> torch.utils.data.DataLoader:
    # an explicit generator: creating the iterator must not consume the global RNG (resume)
    return torch.utils.data.DataLoader(
        _BatchStream(dataset, items), batch_size=None, num_workers=num_workers,
        pin_memory=pin, generator=torch.Generator().manual_seed(0),
        persistent_workers=False,
    )


def _to_device(batch: Any, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    nb = device.type == "cuda"
    return (batch.video.to(device, non_blocking=nb), batch.video_mask.to(device, non_blocking=nb),
            batch.text_ids.to(device, non_blocking=nb), batch.text_mask.to(device, non_blocking=nb))


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def _validate(objective: NortonObjective, corpus: _Corpus, config: TrainConfig,
              env: DistEnv) -> dict[str, float]:
    """Mean validation loss terms and clip R@1 over the held-out batches (local negatives)."""
    from .data.howto100m import plan_batches

    d = config.data
    ids = corpus.ids[: d.val_videos] if d.val_videos else corpus.ids
    batches = plan_batches(ids, d.videos_per_batch, drop_last=len(ids) >= d.videos_per_batch)
    items = list(enumerate(batches))[env.rank :: env.world_size]
    was_training = objective.training
    objective.eval()
    sums = torch.zeros(5, dtype=torch.float64)  # loss, clip, video, r1, batches
    with torch.random.fork_rng(devices=[env.device] if env.device.type == "cuda" else []):
        for _, batch in _loader(corpus.dataset, items, d.num_workers, False):
            if batch is None:
                continue
            out = objective.encode(*_to_device(batch, env.device))
            terms = objective.losses(out, gather=False)
            video = float(terms.video) if terms.video is not None else 0.0
            r1 = clip_retrieval_r1(out.video.pooled, out.text.pooled)
            sums += torch.tensor([float(terms.total), float(terms.clip), video, r1, 1.0],
                                 dtype=torch.float64)
    objective.train(was_training)
    if is_distributed():
        sums = sums.to(env.device)
        torch.distributed.all_reduce(sums)
        sums = sums.cpu()
    n = max(float(sums[4]), 1.0)
    return {"val_loss": float(sums[0]) / n, "val_loss_clip": float(sums[1]) / n,
            "val_loss_video": float(sums[2]) / n, "val_clip_r1": float(sums[3]) / n,
            "val_batches": int(sums[4])}


def evaluate_model(encoder: DualEncoder, config: TrainConfig, split: str | None = None,
                   device: str = "cpu") -> dict[str, float]:
    """Validation metrics of ``encoder`` on a split of the corpus (single process).

    Returns the mean loss terms and the caption -> clip R@1 (raw dot product within each batch
    of ``data.videos_per_batch`` videos), with the same samples as the training loop's
    validation (``data.val_split`` by default). Example: see :func:`fit`.
    """
    env = DistEnv(0, 1, 0, torch.device(device), "none")
    corpus = _open_split(config, split or config.data.val_split, seed=config.train.seed + 1)
    objective = NortonObjective(encoder.to(env.device), config.loss, config.data.clips_per_video)
    return _validate(objective, corpus, config, env)


@torch.no_grad()
def _embed_videos(objective: NortonObjective, corpus: _Corpus, config: TrainConfig,
                  env: DistEnv, epoch: int) -> tuple[list[str], np.ndarray]:
    """Every training video's retrieval vector, computed on this rank's share, gathered."""
    from .data.howto100m import plan_batches

    d = config.data
    batches = plan_batches(corpus.ids, d.videos_per_batch, drop_last=False)
    items = list(enumerate(batches))[env.rank :: env.world_size]
    corpus.dataset.set_epoch(epoch)
    ids: list[str] = []
    vecs: list[np.ndarray] = []
    objective.eval()
    with torch.random.fork_rng(devices=[env.device] if env.device.type == "cuda" else []):
        for _, batch in _loader(corpus.dataset, items, d.num_workers, False):
            if batch is None:
                continue
            out = objective.encode(*_to_device(batch, env.device))
            emb = video_embeddings(out.video.pooled, out.text.pooled, d.clips_per_video)
            ids.extend(batch.video_ids)
            vecs.append(emb.cpu().numpy())
    objective.train()
    parts = all_gather_object((ids, np.concatenate(vecs) if vecs else None))
    all_ids = [v for p_ids, _ in parts for v in p_ids]
    all_vecs = np.concatenate([p for _, p in parts if p is not None])
    return all_ids, all_vecs


# ----------------------------------------------------------------------------- logging


class _Table:
    """A CSV file rewritten atomically at each flush (rank 0), mirrored to TensorBoard."""

    def __init__(self, path: Path, columns: Sequence[str], keep_until: int | None, key: str):
        self.path, self.columns, self.rows = path, tuple(columns), []
        if keep_until is not None and path.is_file():
            with open(path, newline="") as f:
                rows = [{k: _cell(v) for k, v in r.items()} for r in csv.DictReader(f)]
            self.rows = [r for r in rows if r[key] is not None and r[key] <= keep_until]

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append({c: row.get(c) for c in self.columns})

    def flush(self) -> None:
        from .io import atomic_write

        with atomic_write(self.path, "w") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in self.rows)


def _cell(text: str) -> Any:
    """A CSV cell read back as int, float, None (empty) or str."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _fmt(x: Any) -> Any:
    return round(float(x), 6) if isinstance(x, (float, np.floating)) else x


# ----------------------------------------------------------------------------- the loop


class FitResult(NamedTuple):
    """Outcome of :func:`fit`.

    Attributes
    ----------
    out_dir : the run directory (config, logs, checkpoints).
    step : updates done in total.
    epoch : the epoch reached (1-based).
    last_checkpoint : ``out_dir/checkpoint_last`` (None if nothing was saved yet).
    best_checkpoint : ``out_dir/checkpoint_best`` (lowest validation loss) or None.
    train_log, val_log, retrieval_log : the rows of the three CSV logs.
    stopped : True when ``train.stop_after`` ended the run early (no final checkpoint).
    """

    out_dir: Path
    step: int
    epoch: int
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    train_log: list[dict[str, Any]]
    val_log: list[dict[str, Any]]
    retrieval_log: list[dict[str, Any]]
    stopped: bool


def _precision(config: TrainConfig, device: torch.device) -> tuple[torch.dtype | None, bool]:
    p = config.train.precision
    if device.type != "cuda":
        if p in ("bf16", "fp16"):
            raise ValueError(f"train.precision: {p!r} autocast needs a GPU; CPU runs in fp32 "
                             "(use 'auto' or 'fp32')")
        return None, False
    if p == "auto":
        p = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[p], p == "fp16"


def prepare_synthetic_corpus(config: TrainConfig,
                             log: Callable[[str], None] | None = None) -> None:
    """Generate the ``data.synthetic`` corpus under ``data.root`` on first use.

    A root that already holds a finished synthetic corpus of another configuration (size,
    scale, seed or generator version) is used as it is, never replaced: ``log`` (default: a
    line on stderr) says which configuration is used and how to replace it on purpose. An
    empty or half-written root gets the requested corpus; other content is refused
    (``ValueError``).

    Examples
    --------
    >>> import tempfile
    >>> from nortonkit.config import config_from_dict
    >>> from nortonkit.data.synthetic import SyntheticConfig, generate_corpus, load_manifest
    >>> root = Path(tempfile.mkdtemp()) / "data"
    >>> _ = generate_corpus(root, SyntheticConfig.preset("smoke", scale=40), progress=False)
    >>> cfg = config_from_dict({"data": {"root": str(root), "synthetic": "smoke"}})
    >>> prepare_synthetic_corpus(cfg, log=print)  # doctest: +ELLIPSIS
    data.root: .../data holds the synthetic corpus size=smoke scale=40 seed=0, not ...
    >>> load_manifest(root)["counts"]["how2_train_videos"]
    40
    """
    d = config.data
    try:
        ensure_corpus(d.root, d.synthetic, d.synthetic_seed, progress=config.train.progress)
    except CorpusMismatchError as e:
        (log or (lambda msg: _print(msg, None)))(
            f"data.root: {e.root} holds the synthetic corpus {e.existing_text}, not the "
            f"{e.requested_text} that data.synthetic={d.synthetic} "
            f"data.synthetic_seed={d.synthetic_seed} asks for; training on the corpus that "
            f"is there, unchanged (to replace it: python data_recipes/synthetic.py --out "
            f"{e.root} --size {d.synthetic} --seed {d.synthetic_seed} --overwrite)"
        )


def _check(config: TrainConfig) -> None:
    validate_config(config)  # numeric ranges, also for configs built without load_config
    d, loss = config.data, config.loss
    if loss.video_weight > 0 and d.clips_per_video % loss.seq_len:
        raise ValueError(f"data.clips_per_video: expected a multiple of loss.seq_len = "
                         f"{loss.seq_len} (sequences of consecutive clips), "
                         f"got {d.clips_per_video}")
    for name in ("videos_per_batch", "clips_per_video"):
        check_int_at_least(f"data.{name}", getattr(d, name), 1)
    for name in ("epochs", "log_every"):
        check_int_at_least(f"train.{name}", getattr(config.train, name), 1)
    for name in ("val_every", "save_every"):
        check_int_at_least(f"train.{name}", getattr(config.train, name), 0)
    if config.train.max_steps is not None:
        check_int_at_least("train.max_steps", config.train.max_steps, 1)


def fit(config: TrainConfig) -> FitResult:
    """Train a :class:`~nortonkit.encoders.DualEncoder` as ``config`` says (see the module doc).

    Parameters
    ----------
    config : a resolved :class:`~nortonkit.config.TrainConfig`
        (from :func:`~nortonkit.config.load_config`).

    Returns
    -------
    FitResult

    Notes
    -----
    Runs in one process, or in each of ``torchrun``'s processes (DDP; gloo on CPU, nccl on
    GPU). Writes ``config.yaml``, ``train_log.csv``, ``val_log.csv``, ``retrieval_log.csv``,
    ``tb/`` and the checkpoints ``checkpoint_last``, ``checkpoint_<epoch>_<step>`` (the last
    ``train.keep_last``) and ``checkpoint_best`` under ``train.out_dir``; a run whose
    ``checkpoint_last`` exists continues from it (``train.resume``).

    Examples
    --------
    >>> import tempfile
    >>> from nortonkit.config import config_from_dict
    >>> from nortonkit.data.synthetic import ensure_corpus
    >>> tmp = Path(tempfile.mkdtemp())
    >>> root = ensure_corpus(tmp / "data", "smoke").root
    >>> cfg = config_from_dict({
    ...     "model": {"preset": "tiny", "hidden_size": 32, "num_heads": 2, "video_layers": 1,
    ...               "text_layers": 1, "trainable": "all"},
    ...     "data": {"root": str(root), "videos_per_batch": 4, "clips_per_video": 8},
    ...     "retrieval": {"mode": "off"}, "optim": {"lr": 1e-3, "warmup_updates": 0},
    ...     "train": {"out_dir": str(tmp / "run"), "max_steps": 2, "progress": False,
    ...               "tensorboard": False, "log_every": 1}})
    >>> result = fit(cfg)
    >>> result.step, [r["step"] for r in result.train_log]
    (2, [1, 2])
    >>> from nortonkit.checkpoint import load_checkpoint
    >>> model = load_checkpoint(result.last_checkpoint).model
    >>> sorted(evaluate_model(model, cfg))
    ['val_batches', 'val_clip_r1', 'val_loss', 'val_loss_clip', 'val_loss_video']
    """
    _check(config)
    created = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    env = init_distributed(config.train.device)
    try:
        with torch_threads(config.train.threads, "train.threads"):  # never leaks to the caller
            return _fit(config, env)
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        if created:
            cleanup_distributed()


def _seed_all(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _fit(config: TrainConfig, env: DistEnv) -> FitResult:
    from .checkpoint import (
        load_checkpoint,
        load_fairseq_checkpoint,
        load_state_dict_strict,
        restore_train_state,
    )
    from .data.howto100m import plan_batches

    t = config.train
    out_dir = Path(t.out_dir)
    if t.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    autocast_dtype, use_scaler = _precision(config, env.device)
    if env.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = t.tf32
        torch.backends.cudnn.allow_tf32 = t.tf32
    if config.data.synthetic is not None:
        if env.is_main:
            prepare_synthetic_corpus(config)
        barrier()
    train = _open_split(config, config.data.train_split, seed=t.seed)
    val = _open_split(config, config.data.val_split, seed=t.seed + 1)
    retr = _open_split(config, config.data.train_split, seed=t.seed + 2)

    _seed_all(t.seed)  # identical initial weights on every rank
    encoder = DualEncoder(config.model)
    if t.init_checkpoint:
        src = Path(t.init_checkpoint)
        if src.is_dir():  # a nortonkit checkpoint; temperatures only where both models have them
            own = encoder.state_dict()
            state = {k: v for k, v in load_checkpoint(src).model.state_dict().items()
                     if k in own or k not in KIT_ONLY_KEYS}
            load_state_dict_strict(encoder, state, str(src), allow_missing=KIT_ONLY_KEYS)
        else:  # a released fairseq .pt (VideoCLIP / Norton)
            load_fairseq_checkpoint(src, model=encoder)
        encoder.train()
    encoder.to(env.device)
    optimizer = build_optimizer(encoder, config)
    o = config.optim
    schedule = PolynomialDecaySchedule(optimizer, o.lr, o.warmup_updates, o.total_num_update,
                                       o.end_lr, o.power)
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    step, epoch, consumed, epoch_batches, best = 0, 1, 0, None, math.inf
    rng_state = None
    last = out_dir / LAST
    if t.resume and (last / "config.json").is_file():
        loaded = load_checkpoint(last)
        if loaded.config != config.model:
            raise ValueError(f"train.resume: {last} holds a model with a different config; "
                             "use another train.out_dir or train.resume=false")
        encoder.load_state_dict(loaded.model.state_dict())
        extra = restore_train_state(loaded.train_state, optimizer, schedule, rng=False)
        step, epoch, consumed = extra["step"], extra["epoch"], extra["consumed"]
        epoch_batches, best = extra["epoch_batches"], extra["best_val_loss"]
        if "scaler" in extra and use_scaler:
            scaler.load_state_dict(extra["scaler"])
        states = extra["rng"]
        if len(states) != env.world_size:
            warnings.warn(f"train.resume: {last} was written by {len(states)} process(es), this "
                          f"run has {env.world_size}; the continuation is not bit-exact",
                          stacklevel=2)
        rng_state = states[env.rank % len(states)]
    else:
        _seed_all(t.seed + env.rank)  # dropout streams differ between ranks

    if env.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        dump_config(config, out_dir / "config.yaml")
    objective = NortonObjective(encoder, config.loss, config.data.clips_per_video,
                                t.negatives, autocast_dtype)
    model = wrap_ddp(objective, env)

    keep = step if rng_state is not None else 0
    logs = {
        "train": _Table(out_dir / "train_log.csv", TRAIN_COLUMNS, keep, "step"),
        "val": _Table(out_dir / "val_log.csv", VAL_COLUMNS, keep, "step"),
        "retrieval": _Table(out_dir / "retrieval_log.csv", RETRIEVAL_COLUMNS,
                            epoch - (1 if consumed == 0 else 0) if rng_state is not None else 0,
                            "epoch"),
    }
    writer = None
    if env.is_main and t.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tb"), purge_step=step if step else None)

    def scalars(row: dict[str, Any], prefix: str, at: int) -> None:
        if writer is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    writer.add_scalar(f"{prefix}/{k}", v, at)

    def save(name: str, kept_epoch: int, kept_consumed: int, batches: list) -> Path:
        from .checkpoint import capture_rng_state, save_checkpoint

        states = all_gather_object(capture_rng_state())
        path = out_dir / name
        if env.is_main:
            extra = {"step": step, "epoch": kept_epoch, "consumed": kept_consumed,
                     "epoch_batches": batches, "best_val_loss": best, "rng": states,
                     "world_size": env.world_size}
            if use_scaler:
                extra["scaler"] = scaler.state_dict()
            meta = {"step": step, "epoch": kept_epoch, "run_config": config_to_dict(config)}
            save_checkpoint(path, encoder, optimizer=optimizer, scheduler=schedule,
                            extra_state=extra, metadata=meta)
        barrier()
        return path

    def validate_and_log(at_epoch: int) -> None:
        nonlocal best
        metrics = _validate(objective, val, config, env)
        row = {"step": step, "epoch": at_epoch, **{k: _fmt(v) for k, v in metrics.items()}}
        if env.is_main:
            logs["val"].add(row)
            logs["val"].flush()
            scalars(metrics, "val", step)
            _print(f"[val] step {step} epoch {at_epoch}: loss {metrics['val_loss']:.4f} "
                   f"clip R@1 {metrics['val_clip_r1']:.4f}", bar)
        if metrics["val_loss"] < best:
            best = metrics["val_loss"]
            if env.is_main:
                from .checkpoint import save_checkpoint

                save_checkpoint(out_dir / BEST, encoder, metadata={
                    "step": step, "epoch": at_epoch, "val": metrics,
                    "run_config": config_to_dict(config)})
            barrier()

    def prune() -> None:
        import shutil

        if not env.is_main:
            return
        ckpts = sorted((p for p in out_dir.glob("checkpoint_*_*") if p.is_dir()),
                       key=lambda p: int(p.name.rsplit("_", 1)[1]))
        for p in ckpts[: max(len(ckpts) - t.keep_last, 0)]:
            shutil.rmtree(p, ignore_errors=True)

    total_steps = t.max_steps
    trained_epoch = epoch
    bar = None
    stopped = False
    t_log = time.perf_counter()
    objective.train()
    while epoch <= t.epochs and not (total_steps is not None and step >= total_steps):
        resumed_here = epoch_batches is not None
        if not resumed_here:
            r = config.retrieval
            t0 = time.perf_counter()
            if r.mode != "off" and epoch >= r.start_epoch:
                vids, vecs = _embed_videos(objective, retr, config, env, epoch)
                built = None
                if env.is_main:
                    built = retrieval_batches(
                        vecs, vids, config.data.videos_per_batch, mode=r.mode,
                        n_candidates=r.n_candidates, n_centroids=r.n_centroids,
                        examples_per_centroid=r.examples_per_centroid, nprobe=r.nprobe,
                        seed=t.seed * 1000 + epoch,
                    )
                built = broadcast_object(built)
                epoch_batches, summary = built.batches, built.summary()
            else:
                epoch_batches = plan_batches(train.ids, config.data.videos_per_batch,
                                             shuffle=True, seed=t.seed, epoch=epoch,
                                             drop_last=False)
                summary = {"mode": "off", "n_batches": len(epoch_batches),
                           "n_videos": len(train.ids),
                           "n_effective": len({v for b in epoch_batches for v in b}),
                           "n_short": sum(len(b) < config.data.videos_per_batch
                                          for b in epoch_batches),
                           "n_query_dropped": 0, "n_centroids": 0}
                summary["coverage"] = summary["n_effective"] / max(summary["n_videos"], 1)
            if env.is_main:
                row = {"epoch": epoch, **{k: _fmt(v) for k, v in summary.items()},
                       "seconds": _fmt(time.perf_counter() - t0)}
                logs["retrieval"].add(row)
                logs["retrieval"].flush()
                scalars({k: v for k, v in summary.items() if k != "mode"}, "retrieval", step)
            consumed = 0
        padded = pad_batches(epoch_batches, env.world_size)
        if consumed >= len(padded):  # the checkpoint was taken at the end of this epoch
            epoch, epoch_batches, consumed = epoch + 1, None, 0
            continue
        if rng_state is not None:  # resumed: the RNG streams continue exactly where they were
            from .checkpoint import restore_rng_state

            restore_rng_state(rng_state)
            rng_state = None
        train.dataset.set_epoch(epoch)
        items = [(i, padded[i]) for i in range(consumed + env.rank, len(padded), env.world_size)]
        n_epoch = len(padded) // env.world_size
        if env.is_main and t.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_epoch, initial=consumed // env.world_size,
                       desc=f"epoch {epoch}/{t.epochs}", dynamic_ncols=True, leave=False)
        for _index, batch in _loader(train.dataset, items, config.data.num_workers,
                                     env.device.type == "cuda"):
            have = torch.tensor([0.0 if batch is None else 1.0], device=env.device)
            if is_distributed():
                torch.distributed.all_reduce(have, op=torch.distributed.ReduceOp.MIN)
            consumed += env.world_size
            if float(have) == 0:  # a batch with no usable video on some rank: all skip it
                continue
            rate = schedule.step_update(step)
            t_step = time.perf_counter()
            try:
                terms, grad_norm = train_step(model, encoder, optimizer,
                                              _to_device(batch, env.device), o.clip_norm,
                                              scaler if use_scaler else None)
            except FloatingPointError as e:
                raise FloatingPointError(f"update {step + 1} (epoch {epoch}): {e}") from None
            step += 1
            trained_epoch = epoch
            if bar is not None:
                bar.update(1)
            if step % t.log_every == 0 or step == 1:
                now = time.perf_counter()
                loss = float(all_reduce_mean(terms.total.detach()))
                clip_l = float(all_reduce_mean(terms.clip.detach()))
                video_l = (None if terms.video is None
                           else float(all_reduce_mean(terms.video.detach())))
                clip_scale = getattr(encoder, "clip_logit_scale", None)
                row = {
                    "step": step, "epoch": epoch, "lr": rate, "loss": loss, "loss_clip": clip_l,
                    "loss_video": video_l, "grad_norm": float(grad_norm),
                    "inv_tau_video": float(encoder.logit_scale.detach().exp()),
                    "inv_tau_clip": (None if clip_scale is None
                                     else float(clip_scale.detach().exp())),
                    "bucket_value": (None if terms.bucket_value is None
                                     else float(terms.bucket_value)),
                    "sec_per_step": time.perf_counter() - t_step,
                    "clips_per_sec": (batch.video.shape[0] * env.world_size
                                      * (t.log_every if step > 1 else 1) / max(now - t_log, 1e-9)),
                }
                t_log = now
                if env.is_main:
                    logs["train"].add({k: _fmt(v) for k, v in row.items()})
                    logs["train"].flush()
                    scalars(row, "train", step)
                    if bar is not None:
                        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{rate:.2e}")
                    elif not t.progress:
                        _print(f"step {step} epoch {epoch} loss {loss:.4f} lr {rate:.3e}", None)
            at_end = consumed >= len(padded)
            done = total_steps is not None and step >= total_steps
            if t.val_every and step % t.val_every == 0 and not (at_end or done):
                validate_and_log(epoch)
            if t.save_every and step % t.save_every == 0 and not (at_end or done):
                save(LAST, epoch, consumed, epoch_batches)
                save(f"checkpoint_{epoch}_{step}", epoch, consumed, epoch_batches)
                prune()
            if t.stop_after is not None and step >= t.stop_after:
                stopped = True
                break
            if done:
                break
        if bar is not None:
            bar.close()
            bar = None
        if stopped:
            break
        validate_and_log(epoch)
        save(LAST, epoch, len(padded) if consumed >= len(padded) else consumed, epoch_batches)
        if consumed >= len(padded):
            if t.save_every:
                save(f"checkpoint_{epoch}_{step}", epoch, len(padded), epoch_batches)
                prune()
            epoch, epoch_batches, consumed = epoch + 1, None, 0
    if writer is not None:
        writer.close()
    barrier()
    return FitResult(
        out_dir=out_dir, step=step, epoch=trained_epoch,
        last_checkpoint=last if (last / "config.json").is_file() else None,
        best_checkpoint=out_dir / BEST if (out_dir / BEST / "config.json").is_file() else None,
        train_log=logs["train"].rows, val_log=logs["val"].rows,
        retrieval_log=logs["retrieval"].rows, stopped=stopped,
    )


def _print(msg: str, bar: Any) -> None:
    """Log lines go to stderr, beside the progress bar; stdout stays for results."""
    if bar is not None:
        bar.write(msg, file=sys.stderr)
    else:
        print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m nortonkit.train --config run.yaml [section.key=value ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m nortonkit.train",
        description="Norton pre-training (one process, or one per GPU under torchrun).",
    )
    parser.add_argument("--config", required=True, help="YAML file (e.g. nortonkit/configs/"
                        "tiny_synthetic.yaml)")
    parser.add_argument("overrides", nargs="*", help="section.key=value, e.g. optim.lr=1e-4")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    result = fit(config)
    if int(os.environ.get("RANK", "0")) == 0:
        where = result.last_checkpoint or result.out_dir
        print(f"done: {result.step} updates, epoch {result.epoch}; checkpoint {where}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
