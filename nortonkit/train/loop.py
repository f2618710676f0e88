"""Norton pre-training loop: ``python -m nortonkit.train --config <yaml> [key=value ...]``.

One update: encode ``B`` videos x ``K`` clips (video-major), compute
``L = clip_weight * L_clip + video_weight * L_video`` (Norton Eq. 1) in float32, back-propagate,
clip the global gradient norm (2.0), take an Adam step (betas 0.9, 0.98) at the learning rate of
a linear warm-up followed by a polynomial decay (fairseq ``polynomial_decay``), and clamp the
model's logit scales to ``[0, log 100]`` (open_clip). Encoders run under bf16/fp16 autocast on
GPUs; CPUs run in float32.

Around it: retrieval-augmented hard-negative batches recomputed each epoch
(:mod:`nortonkit.train.retrieval`), DDP over ``torchrun`` processes with optional global negatives
(:mod:`nortonkit.train.distributed`), a tqdm bar, a CSV log and TensorBoard scalars, validation
on the held-out list, atomic checkpoints (:mod:`nortonkit.checkpoint`) and exact resumption: a run
stopped at any update and resumed from its last checkpoint ends with the same weights as an
uninterrupted run (bitwise on CPU), because model, optimizer, schedule, every rank's RNG states,
the epoch's batch list and the position in it are all restored, and every data sample is
seeded by its position. Launch recipes: ``docs/TRAINING.md``.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..encoders import (
    KIT_ONLY_KEYS,
    DualEncoder,
)
from ..synthetic.corpus import CorpusMismatchError, ensure_corpus
from ..threads import torch_threads
from ..validation import check_int_at_least
from .config import (
    TrainConfig,
    config_to_dict,
    dump_config,
    validate_config,
)
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
from .objective import NortonObjective, clip_retrieval_r1, train_step, wrap_ddp
from .retrieval import pad_batches, retrieval_batches, video_embeddings
from .schedule import PolynomialDecaySchedule, build_optimizer

__all__ = ["FitResult", "evaluate_model", "fit", "prepare_synthetic_corpus"]

LAST, BEST = "checkpoint_last", "checkpoint_best"
TRAIN_COLUMNS = ("step", "epoch", "lr", "loss", "loss_clip", "loss_video", "grad_norm",
                 "inv_tau_video", "inv_tau_clip", "bucket_value", "sec_per_step", "clips_per_sec")
VAL_COLUMNS = ("step", "epoch", "val_loss", "val_loss_clip", "val_loss_video", "val_clip_r1",
               "val_batches")
RETRIEVAL_COLUMNS = ("epoch", "mode", "n_batches", "n_videos", "n_effective", "coverage",
                     "n_short", "n_query_dropped", "n_centroids", "seconds")


# ----------------------------------------------------------------------------- data


class _Corpus(NamedTuple):
    dataset: Any  # How2Dataset (sampling only; batches come from the loop)
    ids: list[str]


def _open_split(config: TrainConfig, split: str, seed: int) -> _Corpus:
    from ..data.howto100m import How2Dataset, ShardedCaptions, ShardedFeatures, read_video_list
    from ..data.layout import DataRoot

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
    from ..data.howto100m import plan_batches

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
    from ..data.howto100m import plan_batches

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
        from ..io import atomic_write

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
    >>> from nortonkit.train.config import config_from_dict
    >>> from nortonkit.synthetic.corpus import SyntheticConfig, generate_corpus, load_manifest
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


def _seed_all(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _fit(config: TrainConfig, env: DistEnv) -> FitResult:
    from ..checkpoint import (
        load_checkpoint,
        load_fairseq_checkpoint,
        load_state_dict_strict,
        restore_train_state,
    )
    from ..data.howto100m import plan_batches

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
        from ..checkpoint import capture_rng_state, save_checkpoint

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
                from ..checkpoint import save_checkpoint

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
            from ..checkpoint import restore_rng_state

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
