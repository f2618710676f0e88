r"""Evaluations that train: fine-tuning (Tables 4-6), ablations (Table 7), step times (Table 8).

Honest protocol (``official_impl.md`` §9 items 18-19):

* fine-tuning carves a validation split from the *training* data (``val_fraction`` of the
  training videos, seeded) and selects the step (among ``0, eval_every, 2 eval_every, ...,
  steps``) with the best validation score; the test set is evaluated exactly once, with that
  model. The released yamls validated, and picked ``checkpoint_best``, on the test set.
* ablations train each preset from scratch for a fixed number of updates and evaluate the
  checkpoint of the last update (``checkpoint_last``), never the best of several on the test
  set.
* every training run is repeated over the given seeds and reported as mean and std.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .data.features import feature_path, load_feature, pad_clips
from .data.text import encode_texts, load_tokenizer
from .encoders import DualEncoder
from .evaluate_tasks import (
    coin_predict,
    encode_captions,
    encode_clips,
    eval_msrvtt_qa,
    eval_msrvtt_retrieval,
    eval_youcook_clip,
    eval_youcook_paragraph,
    split_validation,
)
from .metrics import frame_accuracy, recall_at_k
from .validation import check_int_at_least, check_positive

__all__ = [
    "FinetuneResult",
    "finetune",
    "aggregate_seeds",
    "eval_msrvtt_finetuned",
    "eval_coin_finetuned",
    "run_ablations",
    "EFFICIENCY_LINES",
    "run_efficiency",
]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class FinetuneResult(NamedTuple):
    """Output of :func:`finetune`.

    Attributes
    ----------
    model : the selected model (eval mode), a copy; the input model is left unchanged.
    best_step : the update whose weights were selected (0 = the starting model).
    best_val : its validation score (higher = better).
    log : one dict per validation: ``step``, ``val``, ``loss`` (mean since the last one).
    """

    model: DualEncoder
    best_step: int
    best_val: float
    log: list[dict[str, float]]


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
) -> FinetuneResult:
    r"""Full fine-tuning with Adam; the weights are selected on a validation score.

    .. math:: \theta^* = \theta_{s^*},\quad s^* = \arg\max_{s \in \{0, e, 2e, \dots\}}
              \mathrm{val}(\theta_s)

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

    Returns
    -------
    FinetuneResult

    Notes
    -----
    Replaces the released fine-tuning's selection of ``checkpoint_best`` on the *test* set
    (``official_impl.md`` §7.0, §9 item 19). Ties between validations keep the earlier step.

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
    every = max(1, steps // 4) if eval_every is None else check_int_at_least("eval_every",
                                                                              eval_every, 1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(model)
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))

    def run_validation() -> float:
        model.eval()
        with torch.no_grad():
            val = float(validate(model))
        model.train()
        return val

    best_val = run_validation()
    best_step, best_state = 0, copy.deepcopy(model.state_dict())
    log = [dict(step=0, val=best_val, loss=float("nan"))]
    losses: list[float] = []
    model.train()
    for step in range(1, steps + 1):
        batch = sample(rng)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"fine-tuning: non-finite loss {float(loss)} at step {step}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm if clip_norm > 0 else math.inf)
        opt.step()
        model.clamp_logit_scales_()
        losses.append(float(loss.detach()))
        if step % every == 0 or step == steps:
            val = run_validation()
            log.append(dict(step=step, val=val, loss=float(np.mean(losses))))
            losses = []
            if val > best_val:
                best_val, best_step, best_state = val, step, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return FinetuneResult(model.eval(), best_step, best_val, log)


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


def eval_msrvtt_finetuned(
    model: DualEncoder,
    root: Any,
    task: str,
    device: str = "cpu",
    seeds: Sequence[int] = (0,),
    steps: int = 100,
    lr: float = 5e-5,
    batch_size: int = 32,
    val_fraction: float = 0.1,
    eval_every: int | None = None,
    max_video_len: int = 32,
    qa_max_video_len: int = 16,
) -> tuple[list[dict], list[dict]]:
    """Fine-tune on MSR-VTT training videos, select on a carved validation split, test once.

    ``task="msrvtt_retrieval"`` (Table 5): the 9k list, text-to-video cross-entropy on raw dot
    products (``T2VContraLoss``). ``task="msrvtt_qa"`` (Table 6): the 7k list, video-to-text
    cross-entropy (``V2TContraLoss``), tested on multiple choice with the first 16 s.
    Validation: R@1 of the same direction on the held-out training videos (first caption).

    Returns
    -------
    (rows, selection): result rows (mean/std over seeds) and one dict per seed with the
    selected step and its validation score.
    """
    from .data.msrvtt import MSRVTTTrainDataset

    size, direction = ("9k", "t2v") if task == "msrvtt_retrieval" else ("7k", "v2t")
    dim = model.config.video_feature_dim
    ds = MSRVTTTrainDataset(root, size=size, dup=1, expected_dim=dim)
    feats = _Features(ds.feature_dir, max_video_len, dim)
    tok = load_tokenizer()
    check_int_at_least("batch_size", batch_size, 2)
    rows, selection = [], []
    for seed in seeds:
        train_ids, val_ids = split_validation(ds.video_ids, val_fraction, seed)
        bs = min(batch_size, len(train_ids))

        def sample(rng: np.random.Generator, train_ids=train_ids, bs=bs):
            vids = [train_ids[i] for i in rng.choice(len(train_ids), bs, replace=False)]
            caps = [ds.captions[v][int(rng.integers(len(ds.captions[v])))] for v in vids]
            video, mask = feats.batch(vids)
            return video, mask, encode_texts(caps, tok, 61)

        def loss_fn(m: DualEncoder, batch) -> Tensor:
            video, mask, text = batch
            v = m.encode_video(video.to(device), mask.to(device)).pooled
            t = m.encode_text(text.input_ids.to(device), text.attention_mask.to(device)).pooled
            logits = t @ v.T if direction == "t2v" else v @ t.T  # raw dot products (official)
            return F.cross_entropy(logits.float(), torch.arange(len(v), device=logits.device))

        def validate(m: DualEncoder, val_ids=val_ids) -> float:
            video, mask = feats.batch(val_ids)
            v = encode_clips(m, video, mask, device)
            t = encode_captions(m, [ds.captions[x][0] for x in val_ids], device, tokenizer=tok)
            s = t @ v.T if direction == "t2v" else v @ t.T
            return recall_at_k(s, 1)

        res = finetune(model, sample, loss_fn, validate, steps, lr, eval_every, seed)
        selection.append(dict(seed=seed, best_step=res.best_step, best_val=100 * res.best_val,
                              n_train=len(train_ids), n_val=len(val_ids)))
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
    steps: int = 100,
    lr: float = 5e-5,
    batch_videos: int = 2,
    val_fraction: float = 0.1,
    eval_every: int | None = None,
) -> tuple[list[dict], list[dict]]:
    """Norton Table 4: fine-tune a per-frame head (classes from the data: 779 on COIN).

    Training windows: 32 s, stride 8 (``coin_ft.yaml``), cross-entropy ignoring padding;
    validation: frame accuracy on held-out *training* videos; test: stride-16 windows, logits
    averaged over overlaps, frame accuracy over all test seconds (background included).
    """
    from .data.coin import IGNORE_INDEX, load_coin

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

        def sample(rng: np.random.Generator, train_ids=train_ids):
            k = min(batch_videos, len(train_ids))
            items = [train_set[index[train_ids[i]]]
                     for i in rng.choice(len(train_ids), k, replace=False)]
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

        res = finetune(base, sample, loss_fn, validate, steps, lr, eval_every, seed)
        selection.append(dict(seed=seed, best_step=res.best_step, best_val=100 * res.best_val,
                              n_train=len(train_ids), n_val=len(val_ids)))
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


# ---------------------------------------------------------------------------------------------
# T7 ablations


_T7_MEASURES = {"bg_removed": "DTW, background removed", "bg_kept": "DTW, background kept"}


def _fit(overrides: list[str]) -> Any:
    from .config import load_config
    from .train import fit

    return fit(load_config(CONFIG_DIR / "tiny_synthetic.yaml", overrides))  # restores threads


def run_ablations(
    root: Any,
    device: str = "cpu",
    seeds: Sequence[int] = (0,),
    out_dir: str | Path | None = None,
    presets: Sequence[str] = tuple("ABCDEFGHIJ"),
    steps: int = 20,
    videos_per_batch: int = 8,
    smoke: bool = False,
    overrides: Sequence[str] = (),
) -> tuple[list[dict], list[dict]]:
    """Norton Table 7: train each preset (tiny model, synthetic HowTo100M-like corpus), evaluate.

    Each (preset, seed) trains from scratch with ``nortonkit/configs/tiny_synthetic.yaml`` for
    ``steps`` updates, then ``checkpoint_last`` is evaluated on YouCookII clip retrieval (R@1,
    R@5) and video-paragraph DTW with the background removed and kept (R@1, R@5).

    Returns
    -------
    (rows, runs): result rows (mean/std over seeds; ``method`` = preset letter) and one dict per
    run with its directory, steps and training time.
    """
    from .checkpoint import load_checkpoint
    from .presets import PRESETS

    for p in presets:
        if p not in PRESETS:
            raise ValueError(f"presets: unknown preset {p!r} (known: {', '.join(PRESETS)})")
    check_int_at_least("steps", steps, 1)
    base = Path(out_dir) / "ablations" if out_dir is not None else Path(
        tempfile.mkdtemp(prefix="nortonkit-ablations-"))
    rows, runs = [], []
    for preset in presets:
        for seed in seeds:
            run_dir = base / preset / f"seed{seed}"
            ov = [f"preset={preset}", f"data.root={root.root}", "data.synthetic=null",
                  f"train.out_dir={run_dir}", f"train.seed={seed}", f"train.max_steps={steps}",
                  "train.progress=false", "train.tensorboard=false", f"train.device={device}",
                  f"optim.total_num_update={steps}", f"data.videos_per_batch={videos_per_batch}",
                  f"optim.warmup_updates={steps // 10}", "train.epochs=1000",
                  f"train.val_every={steps}", f"train.save_every={steps}",
                  f"train.log_every={max(1, steps // 5)}"]
            if smoke:
                ov += ["retrieval.mode=off", "data.val_videos=2"]
            t0 = time.perf_counter()
            result = _fit(ov + list(overrides))
            seconds = time.perf_counter() - t0
            if result.last_checkpoint is None:
                raise RuntimeError(f"ablation {preset}: training wrote no checkpoint in {run_dir}")
            model = load_checkpoint(result.last_checkpoint).model.to(device)
            runs.append(dict(preset=preset, seed=seed, steps=result.step, seconds=seconds,
                             checkpoint=str(result.last_checkpoint)))
            found = eval_youcook_clip(model, root, device)
            found = [r for r in found if r["metric"] in ("R@1", "R@5")]
            par = eval_youcook_paragraph(model, root, device, measures=("DTW",))
            for r in par:
                if r["metric"] in ("R@1", "R@5"):
                    kind = "bg_removed" if r["table"] == "T1" else "bg_kept"
                    found.append(dict(r, measure=_T7_MEASURES[kind]))
            for r in found:
                rows.append(dict(r, table="T7", method=preset, seed=seed,
                                 setting=f"zero-shot after {result.step} updates"))
    return aggregate_seeds(rows, seeds), runs


# ---------------------------------------------------------------------------------------------
# T8 efficiency


#: Table 8 lines: (approach as printed, preset, loss overrides, frames per clip).
EFFICIENCY_LINES: tuple[tuple[str, str, dict[str, Any], int], ...] = (
    ("Clip-caption Contrast (16f)", "A", {}, 16),
    ("+ Faulty Negative Exploitation", "B", {}, 16),
    ("+ Video-paragraph Contrast (16f×8)", "norton", {"similarity": "mean"}, 16),
    ("+ Fine-grained Soft-maximum Operator (16f×8)", "norton", {}, 16),
    ("Clip-caption Contrast (32f)", "A", {}, 32),
)


def _step_time(preset: str, loss: dict[str, Any], frames: int, videos: int, clips: int,
               repeats: int, seed: int, device: str) -> list[float]:
    from .config import config_from_dict
    from .train import NortonObjective, build_optimizer, train_step

    cfg = config_from_dict({"preset": preset, "loss": loss,
                            "model": {"preset": "tiny", "trainable": "all"},
                            "data": {"videos_per_batch": videos, "clips_per_video": clips,
                                     "max_video_len": frames}})
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    enc = DualEncoder(cfg.model).to(device).train()
    obj = NortonObjective(enc, cfg.loss, clips_per_video=clips)
    opt = build_optimizer(enc, cfg)
    n = videos * clips
    ids = torch.randint(1000, 30000, (n, 32), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    batch = (torch.randn(n, frames, 512, generator=g).to(device),
             torch.ones(n, frames, dtype=torch.bool, device=device), ids.to(device),
             torch.ones(n, 32, dtype=torch.bool, device=device))
    times = []
    for i in range(repeats + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_step(obj, enc, opt, batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i:  # the first step is a warm-up
            times.append(time.perf_counter() - t0)
    return times


def run_efficiency(
    device: str = "cpu",
    seeds: Sequence[int] = (0,),
    repeats: int = 5,
    videos_per_batch: int = 8,
    clips_per_video: int = 16,
    lines: Sequence[tuple[str, str, dict[str, Any], int]] = EFFICIENCY_LINES,
    threads: int | None = 1,
) -> list[dict]:
    """Norton Table 8: seconds per training update of each line (tiny model), and the ratio.

    Each line is timed as the median of ``repeats`` updates after one warm-up, on a random
    batch of ``videos_per_batch x clips_per_video`` clips (the time does not depend on the
    values); ``relative_to_line1`` divides by the first line, which the paper also reports
    (minutes per epoch on an A100 are not comparable with seconds per step here). ``threads``
    sets torch's CPU threads while timing (1 by default, like ``tiny_synthetic.yaml``: on a
    small shared CPU more threads make tiny steps slower and noisier); None keeps torch's.
    """
    check_int_at_least("repeats", repeats, 1)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_int_at_least("threads", threads, 1))
    try:
        return _efficiency(device, seeds, repeats, videos_per_batch, clips_per_video, lines)
    finally:
        torch.set_num_threads(old_threads)


def _efficiency(device, seeds, repeats, videos_per_batch, clips_per_video, lines) -> list[dict]:
    rows = []
    for seed in seeds:
        per_line = []
        for approach, preset, loss, frames in lines:
            t = statistics.median(_step_time(preset, loss, frames, videos_per_batch,
                                             clips_per_video, repeats, seed, device))
            per_line.append((approach, preset, t))
        first = per_line[0][2]
        for approach, preset, t in per_line:
            common = dict(table="T8", setting=f"tiny model, {device}", method=preset,
                          measure=approach, n=repeats, seed=seed)
            rows.append(dict(common, variant="corrected", metric="seconds_per_step", value=t))
            rows.append(dict(common, variant="corrected", metric="relative_to_line1",
                             value=t / first))
    return aggregate_seeds(rows, seeds)
