"""Norton pre-training loop: ``python -m nortonkit.train --config <yaml> [key=value ...]``.

One update: encode ``B`` videos x ``K`` clips (video-major), compute
``L = clip_weight * L_clip + video_weight * L_video`` (Norton Eq. 1) in float32, back-propagate,
clip the global gradient norm (2.0), take an Adam step (betas 0.9, 0.98) at the learning rate of
a linear warm-up followed by a polynomial decay (fairseq ``polynomial_decay``), and clamp the
model's logit scales to ``[0, log 100]`` (open_clip). Encoders run under bf16/fp16 autocast on
GPUs; CPUs run in float32.

Around it: retrieval-augmented hard-negative batches recomputed each epoch
(:mod:`nortonkit.train.retrieval`), DDP over ``torchrun`` processes with optional global negatives
(:mod:`nortonkit.train.distributed`), a tqdm bar, CSV logs and TensorBoard scalars
(:mod:`nortonkit.train.logs`), validation on the held-out list, atomic checkpoints and exact
resumption (:mod:`nortonkit.train.state`): a run stopped at any update and resumed from its last
checkpoint ends with the same weights as an uninterrupted run (bitwise on CPU), because model,
optimizer, schedule, every rank's RNG states, the epoch's batch list and the position in it are
all restored, and every data sample is seeded by its position (:mod:`nortonkit.train.batches`).
Launch recipes: ``docs/TRAINING.md``.

:func:`fit` sets a run up (:func:`_fit`) and hands it to :class:`_Run`, whose methods are the
loop's parts: planning an epoch's batches, one update and its log row, validation with the best
checkpoint, periodic and end-of-epoch checkpoints, and the :class:`FitResult`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..checkpoint import restore_rng_state
from ..data.howto100m import plan_batches
from ..encoders import DualEncoder
from ..synthetic.corpus import CorpusMismatchError, ensure_corpus
from ..threads import torch_threads
from ..validation import check_int_at_least
from .batches import _Corpus, _loader, _open_split, _to_device
from .config import TrainConfig, dump_config, validate_config
from .distributed import (
    DistEnv,
    all_gather_object,
    all_reduce_mean,
    barrier,
    broadcast_object,
    cleanup_distributed,
    init_distributed,
    is_distributed,
)
from .logs import RunLogs, csv_value, log_line
from .objective import NortonObjective, clip_retrieval_r1, train_step, wrap_ddp
from .retrieval import pad_batches, retrieval_batches, video_embeddings
from .state import (
    BEST,
    LAST,
    RunState,
    Trainables,
    build_trainables,
    prune_checkpoints,
    resume_or_seed,
    save_best,
    save_resumable,
)

__all__ = ["FitResult", "evaluate_model", "fit", "prepare_synthetic_corpus"]


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def _validate(objective: NortonObjective, corpus: _Corpus, config: TrainConfig,
              env: DistEnv) -> dict[str, float]:
    """Mean validation loss terms and clip R@1 over the held-out batches (local negatives)."""

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
    """The autocast dtype (None: float32) and whether fp16 gradient scaling is needed."""
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
    >>> from nortonkit.train.config import config_from_dict
    >>> from nortonkit.synthetic.config import SyntheticConfig
    >>> from nortonkit.synthetic.corpus import generate_corpus, load_manifest
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
        (log or (lambda msg: log_line(msg, None)))(
            f"data.root: {e.root} holds the synthetic corpus {e.existing_text}, not the "
            f"{e.requested_text} that data.synthetic={d.synthetic} "
            f"data.synthetic_seed={d.synthetic_seed} asks for; training on the corpus that "
            f"is there, unchanged (to replace it: python data_recipes/synthetic.py --out "
            f"{e.root} --size {d.synthetic} --seed {d.synthetic_seed} --overwrite)"
        )


def _check(config: TrainConfig) -> None:
    """Refuse a configuration the loop cannot run (ValueError naming the key)."""
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
    config : a resolved :class:`~nortonkit.train.config.TrainConfig`
        (from :func:`~nortonkit.train.config.load_config`).

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
    >>> from nortonkit.train.config import config_from_dict
    >>> from nortonkit.synthetic.corpus import ensure_corpus
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


# ----------------------------------------------------------------------------- one run, in parts


class _Corpora(NamedTuple):
    """The three views of the data a run reads (each seeds its samples differently)."""

    train: _Corpus
    val: _Corpus
    retrieval: _Corpus


def _fit(config: TrainConfig, env: DistEnv) -> FitResult:
    """Set the run up (fresh or resumed from ``checkpoint_last``), train it and sum it up."""
    t = config.train
    out_dir = Path(t.out_dir)
    autocast_dtype, use_scaler = _set_backends(config, env)
    corpora = _open_corpora(config, env)
    parts = build_trainables(config, env, use_scaler)
    state = resume_or_seed(config, env, parts, out_dir / LAST)
    if env.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        dump_config(config, out_dir / "config.yaml")
    objective = NortonObjective(parts.encoder, config.loss, config.data.clips_per_video,
                                t.negatives, autocast_dtype)
    model = wrap_ddp(objective, env)
    logs = RunLogs(out_dir, state.step, state.epoch, state.consumed,
                   resumed=state.rng_state is not None, tensorboard=env.is_main and t.tensorboard)
    run = _Run(config, env, out_dir, parts, objective, model, corpora, logs, state)
    stopped = run.train()
    logs.close()
    barrier()
    return run.result(stopped)


def _set_backends(config: TrainConfig, env: DistEnv) -> tuple[torch.dtype | None, bool]:
    """Deterministic algorithms and TF32 as configured; the autocast dtype and fp16 scaling."""
    t = config.train
    if t.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    autocast_dtype, use_scaler = _precision(config, env.device)
    if env.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = t.tf32
        torch.backends.cudnn.allow_tf32 = t.tf32
    return autocast_dtype, use_scaler


def _open_corpora(config: TrainConfig, env: DistEnv) -> _Corpora:
    """The training, validation and retrieval-embedding views (synthetic data made first)."""
    if config.data.synthetic is not None:
        if env.is_main:
            prepare_synthetic_corpus(config)
        barrier()
    d, seed = config.data, config.train.seed
    return _Corpora(train=_open_split(config, d.train_split, seed=seed),
                    val=_open_split(config, d.val_split, seed=seed + 1),
                    retrieval=_open_split(config, d.train_split, seed=seed + 2))


def _shuffled_plan(ids: list[str], config: TrainConfig,
                   epoch: int) -> tuple[list[list[str]], dict[str, Any]]:
    """An epoch of shuffled consecutive chunks of ``ids`` and its retrieval-log summary."""
    per_batch = config.data.videos_per_batch
    batches = plan_batches(ids, per_batch, shuffle=True, seed=config.train.seed, epoch=epoch,
                           drop_last=False)
    summary = {"mode": "off", "n_batches": len(batches), "n_videos": len(ids),
               "n_effective": len({v for b in batches for v in b}),
               "n_short": sum(len(b) < per_batch for b in batches),
               "n_query_dropped": 0, "n_centroids": 0}
    summary["coverage"] = summary["n_effective"] / max(summary["n_videos"], 1)
    return batches, summary


def _all_ranks_have(batch: Any, env: DistEnv) -> bool:
    """Whether every rank got a usable batch this turn (collective under DDP)."""
    have = torch.tensor([0.0 if batch is None else 1.0], device=env.device)
    if is_distributed():
        torch.distributed.all_reduce(have, op=torch.distributed.ReduceOp.MIN)
    return float(have) != 0


@dataclass
class _Run:
    """A run in progress: what it trains and reads, where it stands, the progress bar."""

    config: TrainConfig
    env: DistEnv
    out_dir: Path
    parts: Trainables
    objective: NortonObjective
    model: torch.nn.Module
    corpora: _Corpora
    logs: RunLogs
    state: RunState
    trained_epoch: int = 1
    bar: Any = None
    t_log: float = 0.0

    def train(self) -> bool:
        """Train epoch by epoch to the configured end; True when ``train.stop_after`` stopped."""
        t, s = self.config.train, self.state
        self.trained_epoch = s.epoch
        self.t_log = time.perf_counter()
        self.objective.train()
        while s.epoch <= t.epochs and not (t.max_steps is not None and s.step >= t.max_steps):
            if s.epoch_batches is None:
                self.plan_epoch()
            padded = pad_batches(s.epoch_batches, self.env.world_size)
            if s.consumed >= len(padded):  # the checkpoint was taken at the end of this epoch
                s.next_epoch()
                continue
            if self.train_epoch(padded):
                return True
            self.end_epoch(len(padded))
        return False

    def plan_epoch(self) -> None:
        """Plan the epoch's batches (retrieval or shuffled), log the plan, start at its first."""
        s, r = self.state, self.config.retrieval
        t0 = time.perf_counter()
        if r.mode != "off" and s.epoch >= r.start_epoch:
            s.epoch_batches, summary = self.retrieval_plan()
        else:
            s.epoch_batches, summary = _shuffled_plan(self.corpora.train.ids, self.config,
                                                      s.epoch)
        if self.env.is_main:
            row = {"epoch": s.epoch, **{k: csv_value(v) for k, v in summary.items()},
                   "seconds": csv_value(time.perf_counter() - t0)}
            self.logs.add("retrieval", row, {k: v for k, v in summary.items() if k != "mode"},
                          s.step)
        s.consumed = 0

    def retrieval_plan(self) -> tuple[list[list[str]], dict[str, Any]]:
        """Hard-negative batches from the current model's video embeddings (built on rank 0)."""
        config, env, epoch = self.config, self.env, self.state.epoch
        r = config.retrieval
        vids, vecs = _embed_videos(self.objective, self.corpora.retrieval, config, env, epoch)
        built = None
        if env.is_main:
            built = retrieval_batches(
                vecs, vids, config.data.videos_per_batch, mode=r.mode,
                n_candidates=r.n_candidates, n_centroids=r.n_centroids,
                examples_per_centroid=r.examples_per_centroid, nprobe=r.nprobe,
                seed=config.train.seed * 1000 + epoch,
            )
        built = broadcast_object(built)
        return built.batches, built.summary()

    def train_epoch(self, padded: list[list[str]]) -> bool:
        """Train on the epoch's remaining batches; True when ``train.stop_after`` stopped it."""
        t, s, env = self.config.train, self.state, self.env
        if s.rng_state is not None:  # resumed: the RNG streams continue exactly where they were
            restore_rng_state(s.rng_state)
            s.rng_state = None
        self.corpora.train.dataset.set_epoch(s.epoch)
        items = [(i, padded[i]) for i in range(s.consumed + env.rank, len(padded), env.world_size)]
        self.open_bar(len(padded) // env.world_size)
        stopped = False
        for _index, batch in _loader(self.corpora.train.dataset, items,
                                     self.config.data.num_workers, env.device.type == "cuda"):
            have = _all_ranks_have(batch, env)
            s.consumed += env.world_size
            if not have:  # a batch with no usable video on some rank: all skip it
                continue
            self.update(batch)
            done = t.max_steps is not None and s.step >= t.max_steps
            if not (s.consumed >= len(padded) or done):
                self.within_epoch_checks()
            if t.stop_after is not None and s.step >= t.stop_after:
                stopped = True
                break
            if done:
                break
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        return stopped

    def open_bar(self, n_epoch: int) -> None:
        """The epoch's tqdm bar (rank 0, ``train.progress``) of ``n_epoch`` updates."""
        t = self.config.train
        if self.env.is_main and t.progress:
            from tqdm.auto import tqdm  # noqa: PLC0415 -- optional heavy dependency (tqdm)

            self.bar = tqdm(total=n_epoch, initial=self.state.consumed // self.env.world_size,
                            desc=f"epoch {self.state.epoch}/{t.epochs}", dynamic_ncols=True,
                            leave=False)

    def update(self, batch: Any) -> None:
        """One optimizer update on ``batch``, logged every ``train.log_every`` updates."""
        s, p, t = self.state, self.parts, self.config.train
        rate = p.schedule.step_update(s.step)
        t_step = time.perf_counter()
        try:
            terms, grad_norm = train_step(self.model, p.encoder, p.optimizer,
                                          _to_device(batch, self.env.device),
                                          self.config.optim.clip_norm,
                                          p.scaler if p.use_scaler else None)
        except FloatingPointError as e:
            raise FloatingPointError(f"update {s.step + 1} (epoch {s.epoch}): {e}") from None
        s.step += 1
        self.trained_epoch = s.epoch
        if self.bar is not None:
            self.bar.update(1)
        if s.step % t.log_every == 0 or s.step == 1:
            self.log_update(batch, terms, grad_norm, rate, t_step)

    def log_update(self, batch: Any, terms: Any, grad_norm: Tensor, rate: float,
                   t_step: float) -> None:
        """A ``train_log.csv`` row: the rank-mean losses, temperatures, speed (collective)."""
        t, s, encoder = self.config.train, self.state, self.parts.encoder
        now = time.perf_counter()
        loss = float(all_reduce_mean(terms.total.detach()))
        clip_l = float(all_reduce_mean(terms.clip.detach()))
        video_l = (None if terms.video is None
                   else float(all_reduce_mean(terms.video.detach())))
        clip_scale = getattr(encoder, "clip_logit_scale", None)
        row = {
            "step": s.step, "epoch": s.epoch, "lr": rate, "loss": loss, "loss_clip": clip_l,
            "loss_video": video_l, "grad_norm": float(grad_norm),
            "inv_tau_video": float(encoder.logit_scale.detach().exp()),
            "inv_tau_clip": (None if clip_scale is None
                             else float(clip_scale.detach().exp())),
            "bucket_value": (None if terms.bucket_value is None
                             else float(terms.bucket_value)),
            "sec_per_step": time.perf_counter() - t_step,
            "clips_per_sec": (batch.video.shape[0] * self.env.world_size
                              * (t.log_every if s.step > 1 else 1) / max(now - self.t_log, 1e-9)),
        }
        self.t_log = now
        if self.env.is_main:
            self.logs.add("train", {k: csv_value(v) for k, v in row.items()}, row, s.step)
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{rate:.2e}")
            elif not t.progress:
                log_line(f"step {s.step} epoch {s.epoch} loss {loss:.4f} lr {rate:.3e}", None)

    def within_epoch_checks(self) -> None:
        """Validation every ``train.val_every`` and checkpoints every ``train.save_every``."""
        t, s = self.config.train, self.state
        if t.val_every and s.step % t.val_every == 0:
            self.validate_and_log()
        if t.save_every and s.step % t.save_every == 0:
            self.save(LAST, s.consumed)
            self.save(f"checkpoint_{s.epoch}_{s.step}", s.consumed)
            prune_checkpoints(self.out_dir, t.keep_last, self.env)

    def end_epoch(self, n_batches: int) -> None:
        """Validate and save ``checkpoint_last``; at the epoch's end, keep it and move on."""
        s = self.state
        self.validate_and_log()
        finished = s.consumed >= n_batches
        self.save(LAST, n_batches if finished else s.consumed)
        if finished:
            if self.config.train.save_every:
                self.save(f"checkpoint_{s.epoch}_{s.step}", n_batches)
                prune_checkpoints(self.out_dir, self.config.train.keep_last, self.env)
            s.next_epoch()

    def validate_and_log(self) -> None:
        """Validate, log it, and save ``checkpoint_best`` at the lowest loss so far."""
        s, env = self.state, self.env
        metrics = _validate(self.objective, self.corpora.val, self.config, env)
        row = {"step": s.step, "epoch": s.epoch, **{k: csv_value(v) for k, v in metrics.items()}}
        if env.is_main:
            self.logs.add("val", row, metrics, s.step)
            log_line(f"[val] step {s.step} epoch {s.epoch}: loss {metrics['val_loss']:.4f} "
                     f"clip R@1 {metrics['val_clip_r1']:.4f}", self.bar)
        if metrics["val_loss"] < s.best:
            s.best = metrics["val_loss"]
            save_best(self.out_dir / BEST, self.parts.encoder, s, metrics, self.config, env)

    def save(self, name: str, consumed: int) -> Path:
        """Save a resumable checkpoint ``out_dir/name`` at ``consumed`` (collective)."""
        return save_resumable(self.out_dir / name, self.parts, self.state, consumed,
                              self.config, self.env)

    def result(self, stopped: bool) -> FitResult:
        """The run's :class:`FitResult`."""
        last, best = self.out_dir / LAST, self.out_dir / BEST
        tables = self.logs.tables
        return FitResult(
            out_dir=self.out_dir, step=self.state.step, epoch=self.trained_epoch,
            last_checkpoint=last if (last / "config.json").is_file() else None,
            best_checkpoint=best if (best / "config.json").is_file() else None,
            train_log=tables["train"].rows, val_log=tables["val"].rows,
            retrieval_log=tables["retrieval"].rows, stopped=stopped,
        )
