"""Which parameters train: :func:`is_trainable` (the rule of ``EncoderConfig.trainable``) and
:func:`apply_trainable` (sets ``requires_grad`` from it).

:func:`~nortonkit.encoders.dual.trainable_parameters`, which hands a
:class:`~nortonkit.encoders.dual.DualEncoder`'s trained parameters to the optimizer, sits next
to that class.
"""

from __future__ import annotations

import re

from torch import nn

from .config import EncoderConfig

__all__ = ["is_trainable", "apply_trainable"]


def is_trainable(name: str, config: EncoderConfig) -> bool:
    """Whether parameter ``name`` (a :class:`DualEncoder` state-dict key) is trained.

    ``layernorm_only`` keeps the released rule: trainable iff the second-to-last name
    component is ``LayerNorm``. Temperatures follow ``seq_logit_scale_learnable`` (for
    ``logit_scale``) and exist only when learnable (``clip_logit_scale``).

    Notes
    -----
    Norton trains only LayerNorm weights and biases during post-pretraining (78 tensors,
    59,904 parameters at bert-base size); the paper does not mention it.

    Examples
    --------
    >>> cfg = EncoderConfig(preset="tiny")
    >>> is_trainable("text_encoder.embeddings.LayerNorm.weight", cfg)
    True
    >>> is_trainable("text_encoder.encoder.layer.0.output.dense.weight", cfg)
    False
    >>> is_trainable("text_encoder.pooler.dense.bias", EncoderConfig(trainable="re:pooler"))
    True
    """
    if name == "logit_scale":
        return config.seq_logit_scale_learnable
    if name == "clip_logit_scale":
        return config.clip_logit_scale == "learnable"
    if config.trainable == "all":
        return True
    if config.trainable == "layernorm_only":
        parts = name.split(".")
        return len(parts) >= 2 and parts[-2] == "LayerNorm"
    return re.search(config.trainable[3:], name) is not None


def apply_trainable(model: nn.Module) -> None:
    """Set ``requires_grad`` of every parameter of ``model`` from :func:`is_trainable`.

    ``model`` is a :class:`~nortonkit.encoders.DualEncoder`, which calls this function on
    construction; call it again only after swapping parameters in by hand.

    Examples
    --------
    >>> from nortonkit.encoders import DualEncoder
    >>> model = DualEncoder(EncoderConfig(preset="tiny"))
    >>> _ = model.text_encoder.pooler.dense.weight.requires_grad_(True)
    >>> apply_trainable(model); model.text_encoder.pooler.dense.weight.requires_grad
    False
    """
    for name, param in model.named_parameters():
        param.requires_grad_(is_trainable(name, model.config))
