"""Training configuration: frozen dataclasses, stored as YAML, with strict key checking.

A run is described by one :class:`TrainConfig` holding five sections::

    preset: norton            # nortonkit.train.presets: fills loss.*, model trainable/tau keys
    model:     {...}          # nortonkit.encoders.EncoderConfig fields
    loss:      {...}          # LossConfig: Eq. 1-8 hyper-parameters
    optim:     {...}          # OptimConfig: Adam, warm-up + polynomial decay, clipping
    data:      {...}          # DataConfig: corpus location, batch shape, sampling
    retrieval: {...}          # RetrievalConfig: hard-negative batches (faiss)
    train:     {...}          # RunConfig: steps, logging, checkpoints, devices, precision

:func:`load_config` merges, in this order, the dataclass defaults, the preset, the YAML file and
``key=value`` overrides (``optim.lr=1e-4``), and rejects unknown keys and ill-typed values with
an error naming the key, the expected type and the value found; :func:`validate_config` then
checks the range of every numeric option (``optim.lr: expected a finite number > 0, got -1.0``).
:func:`dump_config` writes the resolved configuration (every field explicit) atomically;
training records it next to its outputs. Loop code unpacks these objects into plain keyword
arguments: no function in an ops module ever receives a config object (HOUSE_STYLE R11).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..encoders import EncoderConfig
from ..io import atomic_write
from .presets import preset_values

__all__ = [
    "LossConfig",
    "OptimConfig",
    "DataConfig",
    "RetrievalConfig",
    "RunConfig",
    "TrainConfig",
    "load_config",
    "config_from_dict",
    "validate_config",
    "config_to_dict",
    "dump_config",
    "parse_overrides",
]

@dataclass(frozen=True)
class LossConfig:
    """Loss hyper-parameters (Norton Eq. 1-8), filled by :mod:`nortonkit.train.presets`.

    Defaults are the paper's method as nortonkit implements it (the ``norton`` preset). The
    temperatures are parameters of the model (``model.seq_logit_scale_learnable``,
    ``model.clip_logit_scale``, ``model.init_temperature``), not loss settings.
    """

    # Eq. 1: L = clip_weight * L_clip + video_weight * L_video
    clip_weight: float = 1.0  # weight of L_clip
    video_weight: float = 0.1  # lambda; 0 disables L_video (ablations A, B)
    # L_clip with faulty-negative exploitation (Eq. 7-8)
    beta: float = 0.3  # weight of the OT plan in the targets; 0 = plain InfoNCE
    fne_eps: float = 1.0  # entropic epsilon of the FNE plan, on the L_clip logits
    clip_normalize: bool = True  # L2-normalise pooled vectors (cosine) before L_clip
    # L_video (Eq. 2-6)
    seq_len: int = 8  # K clips (captions) per sequence
    measure: Literal["ot_bucket", "ot", "dtw", "mean"] = "ot_bucket"  # D(i, j) of Eq. 4
    video_eps: float = 0.1  # entropic epsilon of the sequence plans
    bucket_quantile: float = 0.3  # p = this bottom quantile of aligned-pair similarities
    bucket_marginals: Literal["superglue", "uniform"] = "uniform"  # prompt-bucket marginals
    renormalize: bool = False  # rescale each kept plan to mass K (official)
    n_iters: int = 50  # Sinkhorn iterations (both plans)
    dtw_gamma: float = 0.1  # soft-DTW smoothing for measure="dtw"
    mask_same_video: bool = False  # drop same-video sequences from the L_video negatives
    # clip-caption similarity inside L_video (Eq. 5)
    similarity: Literal["lse", "mean"] = "lse"  # token soft-maximum, or pooled cosine (abl. C)
    lse_temperature: float = 1.0  # alpha of Eq. 5 (-> 0: max over tokens)
    lse_mask_mode: Literal["exact", "official"] = "exact"  # "official": padding leak
    fusion_weight: float = 0.0  # weight of the pooled cosine fused with Eq. 5 (official 0.5)
    minmax: bool = False  # official global min-max of every similarity matrix
    minmax_detach: bool = False  # detach the min and max of that normalisation
    chunk_size: int | None = None  # clips per block of the token similarity (memory bound)
    # dtype of Eq. 5's matrix products; "auto": the encoders' autocast dtype (bf16/fp16 on a
    # GPU), fp32 on the CPU. Log-sum-exps, masking and every loss stay in float32.
    similarity_precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"


@dataclass(frozen=True)
class OptimConfig:
    """Adam with linear warm-up and polynomial decay (fairseq ``polynomial_decay``)."""

    lr: float = 1e-5  # peak learning rate (paper: 1e-5)
    betas: tuple[float, float] = (0.9, 0.98)  # Adam betas
    eps: float = 1e-8  # Adam epsilon
    weight_decay: float = 0.0  # L2 weight decay (Adam, not AdamW)
    warmup_updates: int = 1000  # linear warm-up from 0 over this many updates
    total_num_update: int = 1_000_000  # lr reaches end_lr at this update
    end_lr: float = 0.0  # final learning rate
    power: float = 1.0  # decay exponent (1 = linear)
    clip_norm: float = 2.0  # global gradient-norm clipping; 0 disables it


@dataclass(frozen=True)
class DataConfig:
    """Where the HowTo100M-layout corpus lives and how batches are shaped and sampled."""

    root: str = "artifacts/synthetic"  # data root in the released layout (nortonkit.data.layout)
    # generate this synthetic corpus when root is empty (or half-written); a finished synthetic
    # corpus of another size or seed already in root is used as it is, never replaced, and one
    # log line names it (data_recipes/synthetic.py --overwrite replaces it on purpose)
    synthetic: Literal["smoke", "default"] | None = None
    synthetic_seed: int = 0  # seed of the generated corpus
    train_split: str = "train"  # how2_s3d_<split>.lst of the training videos
    val_split: str = "val"  # held-out list used for validation
    videos_per_batch: int = 64  # videos per step per rank (paper: 64)
    clips_per_video: int = 16  # clip/caption pairs sampled per video (paper: 16)
    min_clip_len: int = 3  # sampled clip length range, seconds (paper: 3-16 s)
    max_clip_len: int = 16
    max_video_len: int = 16  # frames kept per clip (one S3D feature per second)
    max_text_len: int = 32  # caption-merging threshold, upper end (paper: 8-32 tokens)
    min_text_len: int = 8  # caption-merging threshold, lower end
    max_len: int = 48  # official length budget: max_len - max_video_len - 3 tokens kept (29)
    with_replacement: bool = True  # clip centres drawn with replacement (official)
    num_workers: int = 0  # DataLoader worker processes per rank
    val_videos: int | None = None  # cap on validation videos (None = the whole list)


@dataclass(frozen=True)
class RetrievalConfig:
    """Retrieval-augmented hard-negative batches (nortonkit.train.retrieval)."""

    mode: Literal["off", "fixed", "videoclip"] = "fixed"  # "off": shuffled list chunks
    start_epoch: int = 1  # first epoch (1-based) whose batches come from retrieval
    n_candidates: int = 192  # neighbours searched per query
    n_centroids: int = 512  # IVF lists at full scale (adapted to the data size)
    examples_per_centroid: int = 48  # k-means training vectors per list
    nprobe: int = 1  # inverted lists visited per search


@dataclass(frozen=True)
class RunConfig:
    """The training loop: length, logging, validation, checkpoints, devices and precision."""

    out_dir: str = "artifacts/runs/norton"  # checkpoints, logs, resolved config
    seed: int = 1  # seed of every random stream (data, dropout, retrieval)
    epochs: int = 10  # passes over the training batches (paper: 10)
    max_steps: int | None = None  # stop after this many updates in total (None: epochs)
    stop_after: int | None = None  # stop this process at this update, as if killed
    log_every: int = 10  # updates between CSV / TensorBoard rows
    val_every: int = 1024  # updates between validations (0: only at epoch ends)
    save_every: int = 1024  # updates between checkpoints (0: only at epoch ends)
    keep_last: int = 2  # step checkpoints kept besides last and best
    resume: bool = True  # continue from out_dir/checkpoint_last.pt when it exists
    init_checkpoint: str | None = None  # weights to start from (e.g. a VideoCLIP conversion)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # autocast of the encoders
    tf32: bool = False  # GPU: TF32 tensor cores for float32 matmuls (the Eq. 5 similarity)
    negatives: Literal["local", "global"] = "local"  # contrast within the rank or all ranks
    progress: bool = True  # tqdm progress bar (rank 0)
    tensorboard: bool = True  # TensorBoard scalars under out_dir/tb (rank 0)
    deterministic: bool = True  # torch.use_deterministic_algorithms (warn only)
    threads: int | None = None  # torch CPU threads per process (None: torch's default)


@dataclass(frozen=True)
class TrainConfig:
    """A complete, resolved training run (see the module docstring for the YAML layout)."""

    preset: str = "norton"  # name in nortonkit.train.presets.LOSS_PRESETS
    model: Any = None  # nortonkit.encoders.EncoderConfig (filled by load_config)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    train: RunConfig = field(default_factory=RunConfig)


_SECTIONS: dict[str, type] = {
    "loss": LossConfig,
    "optim": OptimConfig,
    "data": DataConfig,
    "retrieval": RetrievalConfig,
    "train": RunConfig,
}


def _model_class() -> type:

    return EncoderConfig


# ----------------------------------------------------------------------------- type checking


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "a list of " + ", ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return {float: "a number", int: "an integer", bool: "true/false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


_NO = object()
_YAML_TRUE = ("on", "yes", "true", "y")
_YAML_FALSE = ("off", "no", "false", "n")


def _coerce(value: Any, tp: Any) -> Any:
    """``value`` converted to ``tp``, or ``_NO`` when it does not fit."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool):  # YAML 1.1 reads off/no/on/yes as booleans
            spelled = [c for c in choices if isinstance(c, str) and
                       c.lower() in (_YAML_TRUE if value else _YAML_FALSE)]
            return spelled[0] if len(spelled) == 1 else _NO
        return value if value in choices else _NO
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            out = _coerce(value, arg)
            if out is not _NO:
                return out
        return _NO
    if tp is type(None):
        return None if value is None else _NO
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            return _NO
        out = tuple(_coerce(v, a) for v, a in zip(value, args))
        return _NO if any(o is _NO for o in out) else out
    if tp is bool:
        return value if isinstance(value, bool) else _NO
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO
    if tp is float:
        if isinstance(value, bool):
            return _NO
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-5" as a string
            try:
                return float(value)
            except ValueError:
                return _NO
        return _NO
    if tp is str:
        return value if isinstance(value, str) else _NO
    if isinstance(tp, type):
        return value if isinstance(value, tp) else _NO
    return value


def _unknown_key(where: str, key: str, allowed: Sequence[str]) -> ValueError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ValueError(
        f"{where}{key}: unknown config key{hint} (known keys: {', '.join(sorted(allowed))})"
    )


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values`` with key and type checks."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{where.rstrip('.')}: expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise _unknown_key(where, str(key), names)
        tp = hints.get(key, Any)
        out = _coerce(value, tp)
        if out is _NO:
            raise ValueError(f"{where}{key}: expected {_type_name(tp)}, got {value!r}")
        kwargs[key] = out
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where.rstrip('.') or cls.__name__}: {e}") from None


# ----------------------------------------------------------------------------- value ranges


# Local checks with the messages of nortonkit.validation, which imports torch: importing
# nortonkit.train.config stays light.


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _positive(key: str, value: Any) -> None:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{key}: expected a finite number > 0, got {value!r}")


def _finite_at_least_zero(key: str, value: Any) -> None:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{key}: expected a finite number >= 0, got {value!r}")


def _closed_unit(key: str, value: Any) -> None:
    if not _is_number(value) or not 0 <= value <= 1:
        raise ValueError(f"{key}: expected a number in [0, 1], got {value!r}")


def _open_unit(key: str, value: Any) -> None:
    if not _is_number(value) or not 0 < value < 1:
        raise ValueError(f"{key}: expected a number in the open interval (0, 1), got {value!r}")


def _adam_betas(key: str, value: Any) -> None:
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        _is_number(b) and 0 <= b < 1 for b in value)
    if not ok:
        shown = list(value) if isinstance(value, tuple) else value
        raise ValueError(f"{key}: expected two numbers in [0, 1) (Adam beta1, beta2), "
                         f"got {shown!r}")


def _at_least(low: int) -> Any:
    def check(key: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{key}: expected an integer >= {low}, got {value!r}")

    return check


# The range of every numeric option, from its meaning (the field comments above): weights,
# decay and clipping >= 0 (0 switches the term off), epsilons, temperatures and rates > 0,
# beta a mixing weight in [0, 1], the bucket quantile in (0, 1), counts >= 1, seeds and
# "0 = off" intervals >= 0. ``None`` passes where the field allows it.
_RANGES: dict[str, dict[str, Any]] = {
    "loss": {
        "clip_weight": _finite_at_least_zero,
        "video_weight": _finite_at_least_zero,
        "beta": _closed_unit,
        "fne_eps": _positive,
        "seq_len": _at_least(1),
        "video_eps": _positive,
        "bucket_quantile": _open_unit,
        "n_iters": _at_least(1),
        "dtw_gamma": _positive,
        "lse_temperature": _positive,
        "fusion_weight": _finite_at_least_zero,
        "chunk_size": _at_least(1),
    },
    "optim": {
        "lr": _positive,
        "betas": _adam_betas,
        "eps": _positive,
        "weight_decay": _finite_at_least_zero,
        "warmup_updates": _at_least(0),
        "total_num_update": _at_least(1),
        "end_lr": _finite_at_least_zero,
        "power": _finite_at_least_zero,
        "clip_norm": _finite_at_least_zero,
    },
    "data": {
        "synthetic_seed": _at_least(0),
        "videos_per_batch": _at_least(1),
        "clips_per_video": _at_least(1),
        "min_clip_len": _at_least(1),
        "max_clip_len": _at_least(1),
        "max_video_len": _at_least(1),
        "max_text_len": _at_least(1),
        "min_text_len": _at_least(1),
        "max_len": _at_least(1),
        "num_workers": _at_least(0),
        "val_videos": _at_least(1),
    },
    "retrieval": {
        "start_epoch": _at_least(1),
        "n_candidates": _at_least(1),
        "n_centroids": _at_least(1),
        "examples_per_centroid": _at_least(1),
        "nprobe": _at_least(1),
    },
    "train": {
        "seed": _at_least(0),
        "epochs": _at_least(1),
        "max_steps": _at_least(1),
        "stop_after": _at_least(1),
        "log_every": _at_least(1),
        "val_every": _at_least(0),
        "save_every": _at_least(0),
        "keep_last": _at_least(0),
        "threads": _at_least(1),
    },
}


def _allows_none(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and \
        type(None) in typing.get_args(tp)


def validate_config(config: TrainConfig) -> TrainConfig:
    """Check the range of every numeric option of the loss, optim, data, retrieval and train
    sections; the error names the dotted key, the expected range and the value.

    :func:`config_from_dict` (hence :func:`load_config`) and training call it; the model
    section checks itself (:class:`~nortonkit.encoders.EncoderConfig`).

    Parameters
    ----------
    config : TrainConfig

    Returns
    -------
    TrainConfig, ``config`` itself.

    Raises
    ------
    ValueError
        A value out of range (NaN and inf included), e.g.
        ``optim.lr: expected a finite number > 0, got -1.0``, or two options that contradict
        each other (``data.min_clip_len`` above ``data.max_clip_len``, a warm-up as long as the
        schedule, ``optim.end_lr`` above ``optim.lr``, both loss weights 0).

    Examples
    --------
    >>> validate_config(TrainConfig()).optim.lr
    1e-05
    >>> validate_config(TrainConfig(optim=OptimConfig(lr=0.0)))
    Traceback (most recent call last):
    ...
    ValueError: optim.lr: expected a finite number > 0, got 0.0
    """
    for section, ranges in _RANGES.items():
        obj = getattr(config, section)
        hints = typing.get_type_hints(type(obj))
        for name, check in ranges.items():
            value = getattr(obj, name)
            if value is None and _allows_none(hints[name]):
                continue
            try:
                check(f"{section}.{name}", value)
            except ValueError as e:
                if value is None or not _allows_none(hints[name]):
                    raise
                raise ValueError(str(e).replace(": expected ", ": expected null or ", 1)) \
                    from None
    d, o, loss = config.data, config.optim, config.loss
    for lo, hi in (("min_clip_len", "max_clip_len"), ("min_text_len", "max_text_len")):
        if getattr(d, lo) > getattr(d, hi):
            raise ValueError(f"data.{lo}: expected <= data.{hi} = {getattr(d, hi)}, "
                             f"got {getattr(d, lo)}")
    if d.max_len - d.max_video_len - 3 < 1:
        raise ValueError(f"data.max_len: expected >= data.max_video_len + 4 = "
                         f"{d.max_video_len + 4} (max_len - max_video_len - 3 text tokens are "
                         f"kept), got {d.max_len}")
    if o.total_num_update <= o.warmup_updates:
        raise ValueError(f"optim.total_num_update: expected more than optim.warmup_updates = "
                         f"{o.warmup_updates}, got {o.total_num_update}")
    if o.end_lr > o.lr:
        raise ValueError(f"optim.end_lr: expected <= optim.lr = {o.lr} (the rate decays to "
                         f"it), got {o.end_lr}")
    if loss.clip_weight == 0 and loss.video_weight == 0:
        raise ValueError("loss.clip_weight: expected loss.clip_weight or loss.video_weight > 0 "
                         f"(both 0 leave nothing to train), got {loss.clip_weight!r} and "
                         f"{loss.video_weight!r}")
    return config


# ----------------------------------------------------------------------------- loading


def _deep_merge(base: dict, update: Mapping) -> dict:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """Turn ``["optim.lr=1e-4", "train.epochs=2"]`` into a nested mapping.

    Values are parsed as YAML scalars (``true``, ``null``, ``[0.9, 0.98]``, numbers).

    >>> parse_overrides(["optim.lr=1e-4", "train.resume=false", "preset=videoclip"])
    {'optim': {'lr': 0.0001}, 'train': {'resume': False}, 'preset': 'videoclip'}
    >>> parse_overrides(["optim.lr"])
    Traceback (most recent call last):
    ...
    ValueError: override 'optim.lr': expected key=value (e.g. optim.lr=1e-4)
    """

    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r}: expected key=value (e.g. optim.lr=1e-4)")
        value = yaml.safe_load(raw) if raw.strip() else None
        if isinstance(value, str):  # "1e-4" style floats that YAML 1.1 leaves as strings
            try:
                value = float(value) if any(c in value for c in ".eE") else value
            except ValueError:
                pass
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {p!r} is both a value and a section")
        node[parts[-1]] = value
    return out


def config_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> TrainConfig:
    """Resolve a nested mapping (file contents + overrides) into a :class:`TrainConfig`.

    The preset named by ``raw["preset"]`` (default ``"norton"``) provides the values of the
    keys it sets; keys given in ``raw`` win over the preset.

    >>> cfg = config_from_dict({"preset": "videoclip", "optim": {"lr": 1e-4}})
    >>> cfg.loss.video_weight, cfg.loss.beta, cfg.optim.lr
    (0.0, 0.0, 0.0001)
    >>> config_from_dict({"optim": {"lrr": 1e-4}})
    Traceback (most recent call last):
    ...
    ValueError: optim.lrr: unknown config key; did you mean 'lr'? (known keys: ...)
    """

    if not isinstance(raw, Mapping):
        raise ValueError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    top = ["preset", "model", *_SECTIONS]
    for key in raw:
        if key not in top:
            raise _unknown_key("", str(key), top)
    preset = raw.get("preset", "norton")
    if not isinstance(preset, str):
        raise ValueError(f"preset: expected a preset name (a string), got {preset!r}")
    merged = _deep_merge(preset_values(preset), {k: v for k, v in raw.items() if k != "preset"})
    sections = {}
    for name, cls in _SECTIONS.items():
        section = merged.get(name) or {}
        sections[name] = _build(cls, section, f"{name}.")
    model = _build(_model_class(), merged.get("model") or {}, "model.")
    return validate_config(TrainConfig(preset=preset, model=model, **sections))


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML training config, apply ``key=value`` overrides and resolve the preset.

    Parameters
    ----------
    path : a YAML file (see the module docstring), or None for the defaults.
    overrides : strings ``"section.key=value"``; they win over the file.

    Returns
    -------
    TrainConfig, every field resolved.

    Raises
    ------
    ValueError naming the file and the key for unknown keys, ill-typed values and unknown
    presets; FileNotFoundError when ``path`` does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "run.yaml"
    >>> _ = p.write_text("preset: norton-official\\noptim: {lr: 2.0e-5}\\n")
    >>> cfg = load_config(p, ["train.epochs=2"])
    >>> cfg.loss.bucket_marginals, cfg.model.trainable, cfg.optim.lr, cfg.train.epochs
    ('superglue', 'layernorm_only', 2e-05, 2)
    """

    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: config file not found")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ValueError(f"{p}: not valid YAML: {e}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise ValueError(
                f"{p}: expected a mapping at the top level, got {type(loaded).__name__}"
            )
        raw = dict(loaded)
    raw = _deep_merge(raw, parse_overrides(overrides))
    try:
        return config_from_dict(raw, source)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The configuration as plain YAML-ready data (tuples become lists).

    >>> d = config_to_dict(config_from_dict({}))
    >>> d["preset"], d["optim"]["betas"]
    ('norton', [0.9, 0.98])
    """

    def plain(x: Any) -> Any:
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        if isinstance(x, Mapping):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, Path):
            return str(x)
        return x

    return plain(config)


def dump_config(config: TrainConfig, path: str | os.PathLike) -> Path:
    """Write the resolved configuration as YAML, atomically; reading it back gives ``config``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "config.yaml"
    >>> cfg = config_from_dict({"preset": "tempclr"})
    >>> load_config(dump_config(cfg, p)) == cfg
    True
    """


    path = Path(path)
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False, default_flow_style=None)
    with atomic_write(path, "w") as f:
        f.write(text)
    return path
