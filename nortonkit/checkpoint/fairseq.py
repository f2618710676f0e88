"""Interop with the released VideoCLIP / Norton fairseq checkpoints.

:func:`load_fairseq_checkpoint` reads a fairseq ``.pt`` (weights under ``model``, or
``state_dict``, or a bare state dict; keys prefixed ``mmmodel.``; often float16) into a
:class:`~nortonkit.encoders.DualEncoder`. The load is strict: every missing or unexpected key is
an error listing them, except the whitelisted keys below, and every shape mismatch is an error
naming key, expected and actual shape. Weights are cast to float32.

* :data:`LEGACY_KEYS`: the two ``position_ids`` buffers written by transformers < 4.31, dropped
  on load.
* :data:`~nortonkit.encoders.KIT_ONLY_KEYS`: the model's own temperatures and attention-pooling
  queries, absent from fairseq files; they keep their initial value (``log(1 / 0.07)``; zero
  queries, which pool by the mean).

:func:`fairseq_state_dict` maps the file's keys to the model's, :func:`infer_config` reads the
encoder sizes from the weight shapes. Files are read by
:func:`~nortonkit.checkpoint.torch_file.read_torch_file`, which never executes pickled code; a
placeholder found among the weights is refused.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from torch import Tensor

from nortonkit.encoders import ENCODER_SIZES, KIT_ONLY_KEYS, DualEncoder, EncoderConfig

from .state_dict import load_state_dict_strict
from .torch_file import _plain, read_torch_file

__all__ = [
    "FAIRSEQ_PREFIX",
    "FAIRSEQ_SUFFIXES",
    "LEGACY_KEYS",
    "FairseqCheckpoint",
    "fairseq_state_dict",
    "infer_config",
    "load_fairseq_checkpoint",
]

FAIRSEQ_PREFIX = "mmmodel."
#: Persistent buffers of transformers < 4.31 checkpoints; ignored on load.
LEGACY_KEYS: tuple[str, ...] = (
    "video_encoder.bert.embeddings.position_ids",
    "text_encoder.embeddings.position_ids",
)
#: File suffixes read as released fairseq checkpoints by ``load_any_checkpoint``.
FAIRSEQ_SUFFIXES = (".pt", ".pth", ".bin")


class FairseqCheckpoint(NamedTuple):
    """Result of :func:`load_fairseq_checkpoint`.

    model : DualEncoder
        in eval mode, float32.
    config : EncoderConfig
        the model's config (inferred from the weight shapes unless given).
    ignored_keys : tuple of str
        legacy keys that were present and dropped.
    missing_keys, unexpected_keys : tuple of str
        non-empty only with ``strict=False`` (with ``strict=True`` they are errors).
    metadata : dict
        JSON-ready summary: ``format``, ``top_level_keys``, ``num_updates``, ``args``, ``cfg``.
    """

    model: DualEncoder
    config: EncoderConfig
    ignored_keys: tuple[str, ...]
    missing_keys: tuple[str, ...]
    unexpected_keys: tuple[str, ...]
    metadata: dict[str, Any]


def fairseq_state_dict(
    obj: Any, source: str = "checkpoint"
) -> tuple[dict[str, Tensor], tuple[str, ...], str]:
    """Extract the weights of a loaded fairseq file: ``(state_dict, ignored_keys, format)``.

    Accepts ``{"model": weights, ...}`` (fairseq), ``{"state_dict": weights}`` or a bare
    state dict. Strips the ``mmmodel.`` prefix, drops :data:`LEGACY_KEYS` and casts floating
    tensors to float32.

    Examples
    --------
    >>> import torch
    >>> sd, ignored, fmt = fairseq_state_dict({"model": {
    ...     "mmmodel.text_encoder.pooler.dense.bias": torch.zeros(2, dtype=torch.float16),
    ...     "mmmodel.text_encoder.embeddings.position_ids": torch.arange(4)[None]}})
    >>> list(sd), sd["text_encoder.pooler.dense.bias"].dtype, ignored, fmt
    (['text_encoder.pooler.dense.bias'], torch.float32,
     ('text_encoder.embeddings.position_ids',), 'fairseq')
    """
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"{source}: expected a dict (fairseq checkpoint or state dict), "
            f"got {type(obj).__name__}"
        )
    if isinstance(obj.get("model"), Mapping):
        weights, fmt = obj["model"], "fairseq"
    elif isinstance(obj.get("state_dict"), Mapping):
        weights, fmt = obj["state_dict"], "state_dict"
    elif obj and all(isinstance(v, Tensor) for v in obj.values()):
        weights, fmt = obj, "bare"
    else:
        raise ValueError(
            f"{source}: no weights found; expected a 'model' or 'state_dict' entry or a bare "
            f"state dict, got top-level keys {sorted(map(str, obj))[:20]}"
        )
    out: dict[str, Tensor] = {}
    ignored: list[str] = []
    for key, value in weights.items():
        name = key[len(FAIRSEQ_PREFIX) :] if key.startswith(FAIRSEQ_PREFIX) else key
        if not isinstance(value, Tensor):
            raise ValueError(
                f"{source}: weight {key!r} is a {type(value).__name__}, expected a tensor"
            )
        if name in LEGACY_KEYS:
            ignored.append(name)
            continue
        out[name] = value.float() if value.is_floating_point() else value
    return out, tuple(ignored), fmt


def _layer_count(state_dict: Mapping[str, Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    idx = [int(m.group(1)) for k in state_dict if (m := pattern.match(k))]
    return max(idx) + 1 if idx else 0


def infer_config(state_dict: Mapping[str, Tensor], **overrides: Any) -> EncoderConfig:
    """Build the :class:`EncoderConfig` matching a (prefix-free) state dict's shapes.

    Sizes, layer counts, vocabulary, positions, feature dimension and ``n_classes`` come from
    the shapes. The head count cannot be read from shapes: 12 when it divides the width (all
    released checkpoints), else ``H // 64``; pass ``num_heads=`` otherwise. ``overrides`` set
    any other field (e.g. ``trainable="all"``).

    Examples
    --------
    >>> sd = DualEncoder(EncoderConfig(preset="tiny", n_classes=3)).state_dict()
    >>> cfg = infer_config(sd, num_heads=4)
    >>> cfg.hidden_size, cfg.video_layers, cfg.text_layers, cfg.n_classes
    (64, 2, 2, 3)
    """
    known = {f.name for f in dataclasses.fields(EncoderConfig)}
    if set(overrides) - known:
        raise ValueError(f"overrides: unknown EncoderConfig keys {sorted(set(overrides) - known)}")
    need = (
        "text_encoder.embeddings.word_embeddings.weight",
        "text_encoder.embeddings.position_embeddings.weight",
        "video_encoder.videomlp.linear1.weight",
        "text_encoder.encoder.layer.0.intermediate.dense.weight",
    )
    missing = [k for k in need if k not in state_dict]
    if missing:
        raise ValueError(f"state_dict: cannot infer the encoder sizes, missing keys {missing}")
    vocab, hidden = state_dict[need[0]].shape
    sizes = dict(
        hidden_size=int(hidden),
        vocab_size=int(vocab),
        max_positions=int(state_dict[need[1]].shape[0]),
        video_feature_dim=int(state_dict[need[2]].shape[1]),
        intermediate_size=int(state_dict[need[3]].shape[0]),
        video_layers=_layer_count(state_dict, "video_encoder.bert.encoder.layer."),
        text_layers=_layer_count(state_dict, "text_encoder.encoder.layer."),
        num_heads=12 if hidden % 12 == 0 else max(1, int(hidden) // 64),
        text_init="random",
    )
    if "video_encoder.classifier.weight" in state_dict:
        sizes["n_classes"] = int(state_dict["video_encoder.classifier.weight"].shape[0])
    sizes.update(overrides)
    preset = next(
        (name for name, p in ENCODER_SIZES.items() if all(sizes.get(k) == v for k, v in p.items())),
        "bert-base",
    )
    return EncoderConfig(**{"preset": preset, **sizes})


def load_fairseq_checkpoint(
    path: str | os.PathLike,
    model: DualEncoder | None = None,
    strict: bool = True,
    config: EncoderConfig | Mapping[str, Any] | None = None,
) -> FairseqCheckpoint:
    """Load a released VideoCLIP / Norton fairseq checkpoint into a :class:`DualEncoder`.

    Parameters
    ----------
    path : path-like
        the ``.pt`` file (fairseq dict, ``{"state_dict": ...}`` or bare state dict).
    model : DualEncoder, optional
        load into this model; otherwise one is built from ``config``.
    strict : bool
        missing / unexpected keys are errors (the released loader used ``strict=False``,
        which silently skipped them; docs/protocols.md section 9, item 28).
    config : EncoderConfig or mapping, optional
        the config of the new model, or overrides applied to :func:`infer_config`'s result
        (e.g. ``{"seq_logit_scale_learnable": False}``). Ignored when ``model`` is given.

    Returns
    -------
    FairseqCheckpoint
        model (eval mode, float32), config, ignored / missing / unexpected keys, metadata.

    Notes
    -----
    Norton initialises from the VideoCLIP checkpoint (Appendix A). Kit-only parameters
    (:data:`~nortonkit.encoders.KIT_ONLY_KEYS`) are not in these files and keep their start:
    temperatures ``log(1 / 0.07)``, attention-pooling queries zero (the mean).

    Examples
    --------
    >>> import torch
    >>> import tempfile
    >>> src = DualEncoder(EncoderConfig(preset="tiny")).state_dict()
    >>> p = Path(tempfile.mkdtemp()) / "ckpt.pt"
    >>> torch.save({"model": {"mmmodel." + k: v.half() for k, v in src.items()
    ...                       if k != "logit_scale"}}, p)
    >>> out = load_fairseq_checkpoint(p, config={"num_heads": 4})
    >>> out.config.preset, out.model.video_encoder.bert.embeddings.LayerNorm.weight.dtype
    ('tiny', torch.float32)
    """
    path = Path(path)
    obj = read_torch_file(path)
    state_dict, ignored, fmt = fairseq_state_dict(obj, str(path))
    fresh = model is None
    if model is None:
        if isinstance(config, EncoderConfig):
            cfg = config
        else:
            cfg = infer_config(state_dict, **dict(config or {}))
        # a strict load overwrites every weight: skip the (slow) random initialisation
        model = DualEncoder(cfg, load_pretrained=False, init_weights=not strict)
    elif not isinstance(model, DualEncoder):
        raise ValueError(f"model: expected a DualEncoder or None, got {type(model).__name__}")
    missing, unexpected = load_state_dict_strict(
        model, state_dict, str(path), strict, allow_missing=KIT_ONLY_KEYS, assign=fresh
    )
    meta: dict[str, Any] = {"format": fmt, "ignored_keys": list(ignored)}
    if fmt != "bare":
        meta["top_level_keys"] = sorted(map(str, obj))
        history = obj.get("optimizer_history")
        if isinstance(history, list) and history and isinstance(history[-1], Mapping):
            meta["num_updates"] = _plain(history[-1].get("num_updates"))
        meta["args"] = _plain(obj.get("args"))
        meta["cfg"] = _plain(obj.get("cfg"))
    return FairseqCheckpoint(model.eval(), model.config, ignored, missing, unexpected, meta)
