"""The pre-training run's state: built fresh or resumed from ``checkpoint_last``, and saved.

:func:`build_trainables` seeds every rank alike and builds the encoder (optionally initialised
from ``train.init_checkpoint``), its Adam optimizer, learning-rate schedule and gradient scaler;
:func:`resume_or_seed` then either restores them and the run's position (:class:`RunState`)
from ``checkpoint_last`` or seeds each rank's own RNG streams for a fresh start.
:func:`save_resumable` writes everything an exact continuation needs (every rank's RNG states
included), :func:`save_best` the weights of the lowest validation loss, and
:func:`prune_checkpoints` keeps the last ``train.keep_last`` ``checkpoint_<epoch>_<step>``.
"""

from __future__ import annotations

import math
import random
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..checkpoint import (
    capture_rng_state,
    load_checkpoint,
    load_fairseq_checkpoint,
    load_state_dict_strict,
    restore_train_state,
    save_checkpoint,
)
from ..encoders import KIT_ONLY_KEYS, DualEncoder
from .config import TrainConfig, config_to_dict
from .distributed import DistEnv, all_gather_object, barrier
from .schedule import PolynomialDecaySchedule, build_optimizer

__all__ = ["BEST", "LAST", "RunState", "Trainables", "build_trainables", "prune_checkpoints",
           "resume_or_seed", "save_best", "save_resumable", "seed_all"]

LAST, BEST = "checkpoint_last", "checkpoint_best"


@dataclass
class RunState:
    """Where a run stands: what ``checkpoint_last`` saves and a resumed run restores.

    Attributes
    ----------
    step : updates done in total.
    epoch : the current epoch (1-based).
    consumed : the epoch's padded batches consumed so far, all ranks together.
    epoch_batches : the epoch's batch plan (lists of video ids), None until it is planned.
    best : the lowest validation loss so far (``inf`` before the first validation).
    rng_state : this rank's RNG states from the checkpoint, restored before the next training
        batch; None on a fresh start and once restored.
    """

    step: int = 0
    epoch: int = 1
    consumed: int = 0
    epoch_batches: list[list[str]] | None = None
    best: float = math.inf
    rng_state: Any = None

    def next_epoch(self) -> None:
        """Move to the first batch of the next epoch, whose batches are still to be planned."""
        self.epoch, self.epoch_batches, self.consumed = self.epoch + 1, None, 0


class Trainables(NamedTuple):
    """What an update changes: the encoder, its optimizer, schedule and gradient scaler.

    Attributes
    ----------
    encoder : the :class:`~nortonkit.encoders.DualEncoder`, on the run's device.
    optimizer : Adam over its trainable parameters.
    schedule : the warm-up + polynomial-decay learning rate.
    scaler : the fp16 gradient scaler (disabled unless ``use_scaler``).
    use_scaler : True under fp16 autocast.
    """

    encoder: DualEncoder
    optimizer: torch.optim.Optimizer
    schedule: PolynomialDecaySchedule
    scaler: torch.amp.GradScaler
    use_scaler: bool


def seed_all(seed: int) -> None:
    """Seed ``random``, numpy (``seed mod 2**32``) and torch.

    Parameters
    ----------
    seed : int, at least 0.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_trainables(config: TrainConfig, env: DistEnv, use_scaler: bool) -> Trainables:
    """The encoder (same initial weights on every rank), optimizer, schedule and scaler.

    Parameters
    ----------
    config : the run's configuration; ``train.init_checkpoint`` (a nortonkit checkpoint
        directory or a released fairseq ``.pt``) initialises the weights when set.
    env : this process's place in the run (its device).
    use_scaler : enable the fp16 gradient scaler.

    Returns
    -------
    Trainables
    """
    t = config.train
    seed_all(t.seed)  # identical initial weights on every rank
    encoder = DualEncoder(config.model)
    if t.init_checkpoint:
        src = Path(t.init_checkpoint)
        if src.is_dir():  # a nortonkit checkpoint; kit-only keys only where both models have them
            own = encoder.state_dict()
            source = load_checkpoint(src).model
            for key in ("positions", "pooling"):  # same shapes, another model
                theirs, ours = getattr(source.config, key), getattr(config.model, key)
                if theirs != ours:
                    raise ValueError(
                        f"train.init_checkpoint: {src} was trained with model.{key}="
                        f"{theirs!r}, the config asks for {ours!r}; set model.{key} to match")
            state = {k: v for k, v in source.state_dict().items()
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
    return Trainables(encoder, optimizer, schedule, scaler, use_scaler)


def resume_or_seed(config: TrainConfig, env: DistEnv, parts: Trainables,
                   last: Path) -> RunState:
    """Restore ``parts`` and the run's position from ``last``, or seed this rank afresh.

    Parameters
    ----------
    config : the run's configuration; ``train.resume`` and an existing checkpoint at ``last``
        continue the run, otherwise every RNG is seeded with ``train.seed + rank``.
    env : this process's place in the run.
    parts : the encoder, optimizer, schedule and scaler to restore in place.
    last : the run's ``checkpoint_last`` directory.

    Returns
    -------
    RunState
        the restored position (with this rank's RNG states to restore at the next training
        batch), or a fresh one.

    Raises
    ------
    ValueError
        when ``last`` holds a model of another configuration.
    """
    t = config.train
    if t.resume and (last / "config.json").is_file():
        return _resume(last, config, env, parts)
    seed_all(t.seed + env.rank)  # dropout streams differ between ranks
    return RunState()


def _resume(last: Path, config: TrainConfig, env: DistEnv, parts: Trainables) -> RunState:
    """Load ``last`` into ``parts`` and return the position and RNG states it saved."""
    loaded = load_checkpoint(last)
    if loaded.config != config.model:
        raise ValueError(f"train.resume: {last} holds a model with a different config; "
                         "use another train.out_dir or train.resume=false")
    parts.encoder.load_state_dict(loaded.model.state_dict())
    extra = restore_train_state(loaded.train_state, parts.optimizer, parts.schedule, rng=False)
    state = RunState(step=extra["step"], epoch=extra["epoch"], consumed=extra["consumed"],
                     epoch_batches=extra["epoch_batches"], best=extra["best_val_loss"])
    if "scaler" in extra and parts.use_scaler:
        parts.scaler.load_state_dict(extra["scaler"])
    states = extra["rng"]
    if len(states) != env.world_size:
        warnings.warn(f"train.resume: {last} was written by {len(states)} process(es), this "
                      f"run has {env.world_size}; the continuation is not bit-exact",
                      stacklevel=4)  # reported at fit()
    state.rng_state = states[env.rank % len(states)]
    return state


def save_resumable(path: Path, parts: Trainables, state: RunState, consumed: int,
                   config: TrainConfig, env: DistEnv) -> Path:
    """Save a checkpoint the run can resume from exactly (collective: every rank calls it).

    Parameters
    ----------
    path : the checkpoint directory (rank 0 writes it atomically).
    parts : the encoder, optimizer, schedule and scaler.
    state : the run's position; its ``epoch``, ``epoch_batches``, ``step`` and ``best`` are saved.
    consumed : the position in the epoch's padded batches to resume at.
    config : the run's configuration (kept in the metadata).
    env : this process's place in the run.

    Returns
    -------
    Path
        ``path``, once every rank has reached it.
    """
    states = all_gather_object(capture_rng_state())
    if env.is_main:
        extra = {"step": state.step, "epoch": state.epoch, "consumed": consumed,
                 "epoch_batches": state.epoch_batches, "best_val_loss": state.best,
                 "rng": states, "world_size": env.world_size}
        if parts.use_scaler:
            extra["scaler"] = parts.scaler.state_dict()
        meta = {"step": state.step, "epoch": state.epoch, "run_config": config_to_dict(config)}
        save_checkpoint(path, parts.encoder, optimizer=parts.optimizer, scheduler=parts.schedule,
                        extra_state=extra, metadata=meta)
    barrier()
    return path


def save_best(path: Path, encoder: DualEncoder, state: RunState, metrics: dict[str, float],
              config: TrainConfig, env: DistEnv) -> None:
    """Save the weights alone, with the validation ``metrics`` (rank 0; every rank calls it).

    Parameters
    ----------
    path : the ``checkpoint_best`` directory.
    encoder : the model.
    state : the run's position (its ``step`` and ``epoch`` go to the metadata).
    metrics : the validation metrics that made it the best.
    config : the run's configuration (kept in the metadata).
    env : this process's place in the run.
    """
    if env.is_main:
        save_checkpoint(path, encoder, metadata={
            "step": state.step, "epoch": state.epoch, "val": metrics,
            "run_config": config_to_dict(config)})
    barrier()


def prune_checkpoints(out_dir: Path, keep_last: int, env: DistEnv) -> None:
    """Delete all but the last ``keep_last`` ``checkpoint_<epoch>_<step>`` (by step; rank 0).

    Parameters
    ----------
    out_dir : the run directory.
    keep_last : how many to keep (0 deletes them all).
    env : this process's place in the run.
    """
    if not env.is_main:
        return
    ckpts = sorted((p for p in out_dir.glob("checkpoint_*_*") if p.is_dir()),
                   key=lambda p: int(p.name.rsplit("_", 1)[1]))
    for p in ckpts[: max(len(ckpts) - keep_last, 0)]:
        shutil.rmtree(p, ignore_errors=True)
