r"""Fine-tuning of Norton Tables 4-6: the loop, seed aggregation, MSR-VTT and COIN runs.

Holds :func:`finetune` (full fine-tuning with Adam, weights selected on a validation score),
:func:`aggregate_seeds` (mean and std over seeds, also used by :mod:`nortonkit.lab.ablations`
and :mod:`nortonkit.lab.efficiency`), MSR-VTT retrieval and QA fine-tuning (Tables 5, 6:
:func:`eval_msrvtt_finetuned`) and COIN fine-tuning (Table 4: :func:`eval_coin_finetuned`).
The schedules they follow are :mod:`nortonkit.lab.schedules`.

Honest protocol (``docs/protocols.md`` §9 items 18-19):

* fine-tuning carves a validation split from the *training* data (``val_fraction`` of the
  training videos, seeded) and selects the step (among ``0, eval_every, 2 eval_every, ...,
  steps``) with the best validation score; the test set is evaluated exactly once, with that
  model. The released yamls validated, and picked ``checkpoint_best``, on the test set.
* every training run is repeated over the given seeds and reported as mean and std.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.coin import IGNORE_INDEX, load_coin
from ..data.features import feature_path, load_feature, pad_clips
from ..data.msrvtt import MSRVTTTrainDataset
from ..data.text import encode_texts, load_tokenizer
from ..encoders import DualEncoder
from ..eval.coin import coin_predict
from ..eval.common import encode_captions, encode_clips, text_token_budget
from ..eval.msrvtt import eval_msrvtt_qa, eval_msrvtt_retrieval
from ..eval.splits import split_validation
from ..metrics import frame_accuracy, recall_at_k
from ..train.schedule import polynomial_decay_lr
from ..validation import check_choice, check_int_at_least, check_positive
from .schedules import FinetuneSchedule, Precision, epoch_batches, resolve_schedule

__all__ = [
    "FinetuneResult",
    "finetune",
    "aggregate_seeds",
    "eval_msrvtt_finetuned",
    "eval_coin_finetuned",
]


class FinetuneResult(NamedTuple):
    """Output of :func:`finetune`.

    Attributes
    ----------
    model : the selected model (eval mode), a copy; the input model is left unchanged.
    best_step : the update whose weights were selected (0 = the starting model).
    best_val : its validation score (higher = better).
    log : one dict per validation: ``step``, ``val``, ``loss`` (mean since the last one),
        ``lr`` (rate of the last update).
    precision : the precision the updates ran in (``"fp16"`` only under CUDA autocast).
    """

    model: DualEncoder
    best_step: int
    best_val: float
    log: list[dict[str, float]]
    precision: str = "fp32"


def _update_rate(done: int, lr: float, warmup_updates: int,
                 total_num_update: int | None) -> float:
    """Learning rate of update ``done + 1``: warm-up then polynomial decay, or constant ``lr``."""
    if total_num_update is None:
        return lr * done / warmup_updates if done < warmup_updates else lr
    return polynomial_decay_lr(done, lr, warmup_updates, total_num_update)


def _validation_score(model: DualEncoder, validate: Callable[[DualEncoder], float]) -> float:
    """``validate(model)`` in eval mode without gradients; leaves ``model`` in train mode."""
    model.eval()
    with torch.no_grad():
        val = float(validate(model))
    model.train()
    return val


def _apply_update(model: DualEncoder, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                  loss: Tensor, clip_norm: float) -> None:
    """Backward pass, unscale, clip the global gradient norm (0 = off), step, clamp scales."""
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm if clip_norm > 0 else math.inf)
    scaler.step(opt)
    scaler.update()
    model.clamp_logit_scales_()


def finetune(
    model: DualEncoder,
    sample: Callable[[np.random.Generator], Any],
    loss_fn: Callable[[DualEncoder, Any], Tensor],
    validate: Callable[[DualEncoder], float],
    steps: int,
    lr: float = 5e-5,
    eval_every: int | None = None,
    seed: int = 0,
    clip_norm: float = 2.0,
    warmup_updates: int = 0,
    total_num_update: int | None = None,
    precision: Precision = "fp32",
    betas: tuple[float, float] = (0.9, 0.98),
    weight_decay: float = 0.0,
) -> FinetuneResult:
    r"""Full fine-tuning with Adam; the weights are selected on a validation score.

    .. math:: \theta^* = \theta_{s^*},\quad s^* = \arg\max_{s \in \{0, e, 2e, \dots\}}
              \mathrm{val}(\theta_s)

    Update ``u + 1`` runs at :func:`nortonkit.train.schedule.polynomial_decay_lr` ``(u, lr,
    warmup_updates, total_num_update)`` (linear warm-up from 0, then fairseq's polynomial
    decay), or at ``lr`` throughout when ``total_num_update`` is None and there is no warm-up.

    Parameters
    ----------
    model : the starting model (copied, never modified).
    sample : draws one training batch from a seeded ``numpy.random.Generator``.
    loss_fn : ``loss_fn(model, batch)`` -> scalar loss.
    validate : score on the validation split carved from the training data (higher = better).
    steps : number of updates (>= 1).
    lr : Adam learning rate (official fine-tuning: 5e-5).
    eval_every : updates between validations (default: ``max(1, steps // 4)``).
    seed : seeds dropout and the batch sampler.
    clip_norm : global gradient-norm clipping (0 = off).
    warmup_updates, total_num_update : the learning-rate schedule (see above).
    precision : ``"fp16"``: CUDA autocast with a gradient scaler (on a CPU model: fp32, with a
        warning); ``"fp32"``.
    betas, weight_decay : Adam's (official 0.9, 0.98 and 0).

    Returns
    -------
    FinetuneResult

    Notes
    -----
    Replaces the released fine-tuning's selection of ``checkpoint_best`` on the *test* set
    (``docs/protocols.md`` §7.0, §9 item 19). Ties between validations keep the earlier step.

    Examples
    --------
    >>> from nortonkit.encoders import EncoderConfig
    >>> _ = torch.manual_seed(0)
    >>> m = DualEncoder(EncoderConfig(preset="tiny", video_layers=1, text_layers=1))
    >>> v = torch.randn(4, 3, 512); vm = torch.ones(4, 3, dtype=torch.bool)
    >>> def loss(model, batch):
    ...     p = model.encode_video(v, vm).pooled
    ...     return F.cross_entropy(p @ p.T, torch.arange(4))
    >>> r = finetune(m, lambda rng: None, loss, lambda model: 0.0, steps=2, eval_every=1)
    >>> r.best_step, [e["step"] for e in r.log]
    (0, [0, 1, 2])
    """
    check_int_at_least("steps", steps, 1)
    check_positive("lr", lr)
    check_int_at_least("warmup_updates", warmup_updates, 0)
    if total_num_update is not None:
        check_int_at_least("total_num_update", total_num_update, warmup_updates + 1)
    check_choice("precision", precision, ("fp32", "fp16"))
    every = max(1, steps // 4) if eval_every is None else check_int_at_least("eval_every",
                                                                              eval_every, 1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(model)
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=tuple(betas),
                           weight_decay=weight_decay)
    device_type = next(model.parameters()).device.type
    if precision == "fp16" and device_type != "cuda":
        warnings.warn("fine-tuning: fp16 autocast needs a CUDA model; running in fp32",
                      stacklevel=2)
        precision = "fp32"
    use_amp = precision == "fp16"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    best_val = _validation_score(model, validate)
    best_step, best_state = 0, copy.deepcopy(model.state_dict())
    log = [dict(step=0, val=best_val, loss=float("nan"), lr=float("nan"))]
    losses: list[float] = []
    model.train()
    for step in range(1, steps + 1):
        batch = sample(rng)
        current = _update_rate(step - 1, lr, warmup_updates, total_num_update)
        for group in opt.param_groups:
            group["lr"] = current
        opt.zero_grad(set_to_none=True)
        ctx = (torch.autocast(device_type, dtype=torch.float16) if use_amp else nullcontext())
        with ctx:
            loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"fine-tuning: non-finite loss {float(loss)} at step {step}")
        _apply_update(model, opt, scaler, loss, clip_norm)
        losses.append(float(loss.detach()))
        if step % every == 0 or step == steps:
            val = _validation_score(model, validate)
            log.append(dict(step=step, val=val, loss=float(np.mean(losses)), lr=current))
            losses = []
            if val > best_val:
                best_val, best_step, best_state = val, step, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return FinetuneResult(model.eval(), best_step, best_val, log, precision)


def aggregate_seeds(rows: Sequence[dict], seeds: Sequence[int]) -> list[dict]:
    """Mean and (sample) std over seeds of rows that share every key but ``value``/``seed``.

    Examples
    --------
    >>> rows = [dict(metric="R@1", value=v, seed=s, n=3) for s, v in [(0, 10.0), (1, 20.0)]]
    >>> out = aggregate_seeds(rows, (0, 1))
    >>> out[0]["value"], round(out[0]["std"], 4), out[0]["n_seeds"], out[0]["seed"]
    (15.0, 7.0711, 2, '0,1')
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = tuple(sorted((k, str(v)) for k, v in r.items() if k not in ("value", "seed")))
        groups.setdefault(key, []).append(r)
    out = []
    for items in groups.values():
        vals = [float(r["value"]) for r in items]
        first = {k: v for k, v in items[0].items() if k != "seed"}
        first["value"] = float(np.mean(vals))
        first["std"] = float(statistics.stdev(vals)) if len(vals) > 1 else float("nan")
        first["n_seeds"] = len(vals)
        first["seed"] = ",".join(str(r.get("seed")) for r in items)
        out.append(first)
    return out


# ---------------------------------------------------------------------------------------------
# MSR-VTT fine-tuning (T5, T6)


class _Features:
    """First ``max_video_len`` seconds of each video, read on demand and cached."""

    def __init__(self, feature_dir: Path, max_video_len: int, dim: int):
        self.dir, self.v, self.dim, self.cache = feature_dir, max_video_len, dim, {}

    def batch(self, vids: Sequence[str]) -> tuple[Tensor, Tensor]:
        for vid in vids:
            if vid not in self.cache:
                self.cache[vid] = load_feature(feature_path(self.dir, vid), self.dim)[: self.v]
        return pad_clips([self.cache[v] for v in vids], self.v)


def _run_schedule(model: DualEncoder, sample: Callable, loss_fn: Callable, validate: Callable,
                  schedule: FinetuneSchedule, n_train: int, seed: int) -> FinetuneResult:
    """:func:`finetune` with the updates, validations, rate and precision of ``schedule``."""
    return finetune(model, sample, loss_fn, validate, schedule.total_updates(n_train),
                    schedule.lr, schedule.validation_interval(n_train), seed, schedule.clip_norm,
                    schedule.warmup_updates, schedule.total_num_update, schedule.precision,
                    schedule.betas, schedule.weight_decay)


def _selection(seed: int, res: FinetuneResult, schedule: FinetuneSchedule, n_train: int,
               n_val: int) -> dict[str, Any]:
    return dict(seed=seed, best_step=res.best_step, best_val=100 * res.best_val,
                n_train=n_train, n_val=n_val, schedule=schedule.name,
                updates=schedule.total_updates(n_train), precision=res.precision)


def eval_msrvtt_finetuned(
    model: DualEncoder,
    root: Any,
    task: str,
    device: str = "cpu",
    seeds: Sequence[int] = (0,),
    schedule: str | FinetuneSchedule | None = None,
    val_fraction: float = 0.1,
    max_video_len: int = 32,
    qa_max_video_len: int = 16,
    dataset: str = "synthetic",
) -> tuple[list[dict], list[dict]]:
    """Fine-tune on MSR-VTT training videos, select on a carved validation split, test once.

    ``task="msrvtt_retrieval"`` (Table 5): the 9k list, text-to-video cross-entropy on raw dot
    products (``T2VContraLoss``). ``task="msrvtt_qa"`` (Table 6): the 7k list, video-to-text
    cross-entropy (``V2TContraLoss``), tested on multiple choice with the first 16 s.
    Validation: R@1 of the same direction on the held-out training videos (first caption).

    Parameters
    ----------
    model, root, task, device, seeds : the model, the data root, the task and the seeds.
    schedule : a :data:`FINETUNE_SCHEDULES` name or a :class:`FinetuneSchedule`; None: the
        default of ``dataset`` (:func:`resolve_schedule`: ``vtt_ft`` / ``vttqa`` on real data,
        ``synthetic_cpu`` on the synthetic corpus). Each epoch is a shuffled pass over the
        training list repeated ``dup`` times, one random caption per item
        (:func:`epoch_batches`).
    val_fraction : training videos carved out for validation.
    max_video_len : seconds per training clip (32); ``qa_max_video_len``: per QA test video (16).
    dataset : ``"real"`` or ``"synthetic"`` (only to choose the default schedule).

    Returns
    -------
    (rows, selection): result rows (mean/std over seeds) and one dict per seed with the
    selected step, its validation score and the schedule.
    """
    sched = resolve_schedule(task, dataset, schedule)
    size, direction = ("9k", "t2v") if task == "msrvtt_retrieval" else ("7k", "v2t")
    dim = model.config.video_feature_dim
    ds = MSRVTTTrainDataset(root, size=size, dup=1, expected_dim=dim)
    feats = _Features(ds.feature_dir, max_video_len, dim)
    tok = load_tokenizer()
    budget = text_token_budget(max_video_len)  # 61 tokens with 32-s clips (official 96 / 32)
    rows, selection = [], []
    for seed in seeds:
        train_ids, val_ids = split_validation(ds.video_ids, val_fraction, seed)
        bs = min(sched.batch_size, len(train_ids) * sched.dup)
        batches: list[Iterator[np.ndarray]] = []

        def sample(rng: np.random.Generator, train_ids=train_ids, bs=bs, batches=batches):
            if not batches:
                batches.append(epoch_batches(len(train_ids), bs, sched.dup, rng))
            vids = [train_ids[i] for i in next(batches[0])]
            caps = [ds.captions[v][int(rng.integers(len(ds.captions[v])))] for v in vids]
            video, mask = feats.batch(vids)
            return video, mask, encode_texts(caps, tok, budget)

        def loss_fn(m: DualEncoder, batch) -> Tensor:
            video, mask, text = batch
            v = m.encode_video(video.to(device), mask.to(device)).pooled
            t = m.encode_text(text.input_ids.to(device), text.attention_mask.to(device)).pooled
            logits = t @ v.T if direction == "t2v" else v @ t.T  # raw dot products (official)
            return F.cross_entropy(logits.float(), torch.arange(len(v), device=logits.device))

        def validate(m: DualEncoder, val_ids=val_ids) -> float:
            video, mask = feats.batch(val_ids)
            v = encode_clips(m, video, mask, device)
            t = encode_captions(m, [ds.captions[x][0] for x in val_ids], device,
                                max_tokens=budget, tokenizer=tok)
            s = t @ v.T if direction == "t2v" else v @ t.T
            return recall_at_k(s, 1)

        sched_bs = sched.with_overrides(batch_size=bs)
        res = _run_schedule(model, sample, loss_fn, validate, sched_bs, len(train_ids), seed)
        selection.append(_selection(seed, res, sched_bs, len(train_ids), len(val_ids)))
        if task == "msrvtt_retrieval":
            test = eval_msrvtt_retrieval(res.model, root, device, setting="fine-tuned")
        else:
            test = eval_msrvtt_qa(res.model, root, device, max_video_len=qa_max_video_len,
                                  setting="fine-tuned")
        rows += [dict(r, seed=seed) for r in test]
    return aggregate_seeds(rows, seeds), selection


# ---------------------------------------------------------------------------------------------
# COIN fine-tuning (T4)


def coin_model(model: DualEncoder, n_classes: int) -> DualEncoder:
    """A copy of ``model`` with a fresh ``n_classes``-way per-frame head (video CLS masked).

    Examples
    --------
    >>> from nortonkit.encoders import EncoderConfig
    >>> m = coin_model(DualEncoder(EncoderConfig(preset="tiny")), 5)
    >>> m.config.n_classes, m.config.video_cls_attend
    (5, False)
    """
    check_int_at_least("n_classes", n_classes, 2)
    cfg = dataclasses.replace(model.config, n_classes=n_classes, trainable="all",
                              video_cls_attend=False)
    out = DualEncoder(cfg, load_pretrained=False).to(next(model.parameters()).device)
    state = {k: v for k, v in model.state_dict().items() if "classifier" not in k}
    missing, unexpected = out.load_state_dict(state, strict=False)
    bad = [k for k in missing if "classifier" not in k] + list(unexpected)
    if bad:
        raise ValueError(f"checkpoint: cannot transfer weights into the COIN model; mismatched "
                         f"keys {bad[:10]}")
    return out


def eval_coin_finetuned(
    model: DualEncoder,
    root: Any,
    device: str = "cpu",
    seeds: Sequence[int] = (0,),
    schedule: str | FinetuneSchedule | None = None,
    val_fraction: float = 0.1,
    dataset: str = "synthetic",
) -> tuple[list[dict], list[dict]]:
    """Norton Table 4: fine-tune a per-frame head (classes from the data: 779 on COIN).

    Training windows: 32 s, stride 8 (``coin_ft.yaml``), cross-entropy ignoring padding, video
    CLS masked; ``schedule.batch_size`` videos (all their windows) per update, epochs of
    shuffled passes over the training videos; validation: frame accuracy on held-out
    *training* videos; test: stride-16 windows, logits averaged over overlaps, frame accuracy
    over all test seconds (background included).

    ``schedule`` None: the default of ``dataset`` (:func:`resolve_schedule`: ``coin`` on real
    data, 1 video per update for 8 epochs; ``synthetic_cpu_coin`` on the synthetic corpus).
    """
    sched = resolve_schedule("coin", dataset, schedule)
    dim = model.config.video_feature_dim
    train_set = load_coin(root, subset="training", expected_dim=dim)
    test_set = load_coin(root, subset="testing", expected_dim=dim)
    if len(test_set) == 0:
        raise ValueError(f"coin: no testing video with features under {test_set.feature_dir}")
    index = {v: i for i, v in enumerate(train_set.video_ids)}
    rows, selection = [], []
    for seed in seeds:
        train_ids, val_ids = split_validation(train_set.video_ids, val_fraction, seed)
        base = coin_model(model, train_set.n_classes)
        k = min(sched.batch_size, len(train_ids) * sched.dup)
        batches: list[Iterator[np.ndarray]] = []

        def sample(rng: np.random.Generator, train_ids=train_ids, k=k, batches=batches):
            if not batches:
                batches.append(epoch_batches(len(train_ids), k, sched.dup, rng))
            items = [train_set[index[train_ids[i]]] for i in next(batches[0])]
            return (torch.cat([it.windows for it in items]),
                    torch.cat([it.window_mask for it in items]),
                    torch.cat([it.targets for it in items]))

        def loss_fn(m: DualEncoder, batch) -> Tensor:
            win, mask, target = batch
            logits = m.frame_logits(win.to(device), mask.to(device), cls_attend=False)
            return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                   target.to(device).reshape(-1), ignore_index=IGNORE_INDEX)

        def validate(m: DualEncoder, val_ids=val_ids) -> float:
            items = [train_set[index[v]] for v in val_ids]
            return frame_accuracy([coin_predict(m, it, device) for it in items],
                                  [it.video_targets for it in items])

        sched_k = sched.with_overrides(batch_size=k)
        res = _run_schedule(base, sample, loss_fn, validate, sched_k, len(train_ids), seed)
        selection.append(_selection(seed, res, sched_k, len(train_ids), len(val_ids)))
        preds, targets = [], []
        for it in test_set:
            preds.append(coin_predict(res.model, it, device))
            targets.append(it.video_targets)
        acc = frame_accuracy(preds, targets)
        n = int(sum(len(t) for t in targets))
        rows += [dict(table="T4", setting="fine-tuned", measure="frame accuracy", variant=v,
                      metric="frame_accuracy", value=100 * acc, n=n, seed=seed)
                 for v in ("corrected", "official-compatible")]
    return aggregate_seeds(rows, seeds), selection
