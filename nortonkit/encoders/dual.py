"""The dual encoder: :class:`DualEncoder` (``encode_video``, ``encode_text``), its outputs,
and :func:`trainable_parameters`.

A 6-layer BERT encodes one clip's S3D frame features, a 12-layer BERT encodes one caption, and
each side is mean-pooled into one vector (``pooling="attention"``: a learned weighted mean,
:mod:`nortonkit.encoders.pooling`) (:class:`EncoderOutput`; both sides together:
:class:`DualEncoderOutput`).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch
from torch import Tensor, nn
from transformers import BertModel

from ..masking import masked_mean
from ..validation import check_finite, check_mask, check_nonempty_mask, check_tensor
from .bert import _bert_config, _load_minilm, _no_init_weights, _zero_output
from .config import LOGIT_SCALE_KEYS, EncoderConfig
from .pooling import AttentionPool
from .trainable import apply_trainable, is_trainable
from .video import VideoEncoder

__all__ = ["EncoderOutput", "DualEncoderOutput", "DualEncoder", "trainable_parameters"]


class EncoderOutput(NamedTuple):
    """One encoder's outputs.

    pooled : shape (B, H)
        masked mean of ``tokens`` over ``mask`` (the clip or caption vector); with
        ``pooling="attention"`` the weighted mean of :func:`~nortonkit.encoders.attention_pool`.
    tokens : shape (B, L, H)
        last hidden states, every position included (CLS and padding too).
    mask : shape (B, L), bool
        positions that are pooled and used by token-level similarities (True = valid).
    """

    pooled: Tensor
    tokens: Tensor
    mask: Tensor


class DualEncoderOutput(NamedTuple):
    """Outputs of :meth:`DualEncoder.forward`: one :class:`EncoderOutput` per side."""

    video: EncoderOutput
    text: EncoderOutput


class DualEncoder(nn.Module):
    """VideoCLIP/Norton dual encoder: 6-layer video BERT and 12-layer text BERT, mean-pooled.

    Parameters
    ----------
    config : EncoderConfig
        sizes and options; kept as ``self.config``.
    load_pretrained : bool
        load pretrained text weights when ``config.text_init`` asks for them (set False when
        the weights come from a checkpoint right after construction).
    init_weights : bool
        run the random initialisation (BERT's normal(0, 0.02)). False leaves the weights
        uninitialised (``torch.empty``) and is only for loading a *complete* state dict right
        away, as :mod:`nortonkit.checkpoint` does after a strict key check.

    Attributes
    ----------
    video_encoder : VideoEncoder
        ``videomlp`` + ``bert`` (+ ``classifier``).
    text_encoder : transformers.BertModel
    logit_scale : nn.Parameter, shape ()
        log 1/tau of the video-paragraph loss; trained iff ``seq_logit_scale_learnable``.
    clip_logit_scale : nn.Parameter, shape (), only with ``clip_logit_scale="learnable"``
        log 1/tau of the clip-caption loss.

    Notes
    -----
    Video side (official ``MMBertModel``): ``x = [e(CLS), mlp(f_1..f_V), e(SEP)]`` plus position
    embeddings ``arange(V + 2)`` and token type 0, then BERT's embedding LayerNorm; attention
    mask ``[video_cls_attend, vmask, 1]``; pooled over ``[0, vmask, 1]`` (frames + SEP, no
    CLS). Text side: HF ``BertModel`` on ``[CLS] tokens [SEP] PAD..``, pooled over
    ``[0, attention_mask[1:]]`` (tokens + final SEP, no CLS, no padding). Norton Appendix A:
    "we derive clip and caption representations through average pooling on the token
    embeddings of frames and words":

    .. math:: \\bar v = \\frac{1}{|m^v|}\\sum_{l} m^v_l h^v_l,\\qquad
              \\bar t = \\frac{1}{|m^t|}\\sum_{l} m^t_l h^t_l

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = DualEncoder(EncoderConfig(preset="tiny")).eval()
    >>> vmask = torch.tensor([[True, True, False], [True, True, True]])
    >>> ids = torch.tensor([[101, 7592, 102, 0], [101, 7592, 2088, 102]])
    >>> out = model(torch.randn(2, 3, 512), vmask, ids, ids != 0)
    >>> out.video.pooled.shape, out.video.tokens.shape, out.text.tokens.shape
    (torch.Size([2, 64]), torch.Size([2, 5, 64]), torch.Size([2, 4, 64]))
    >>> out.video.mask.int().tolist()
    [[0, 1, 1, 0, 1], [0, 1, 1, 1, 1]]
    >>> out.text.mask.int().tolist()
    [[0, 1, 1, 0], [0, 1, 1, 1]]
    """

    def __init__(
        self, config: EncoderConfig, load_pretrained: bool = True, init_weights: bool = True
    ):
        super().__init__()
        if not isinstance(config, EncoderConfig):
            raise ValueError(f"config: expected an EncoderConfig, got {type(config).__name__}")
        self.config = config
        with contextlib.nullcontext() if init_weights else _no_init_weights():
            self.video_encoder = VideoEncoder(config)
            if config.text_init == "minilm" and load_pretrained:
                self.text_encoder = _load_minilm(config)
                if config.video_init == "text":
                    self._copy_text_into_video()
            else:
                self.text_encoder = BertModel(_bert_config(config, config.text_layers))
        self.logit_scale = nn.Parameter(torch.tensor(config.init_logit_scale))
        if config.clip_logit_scale == "learnable":
            self.clip_logit_scale = nn.Parameter(torch.tensor(config.init_logit_scale))
        attention = config.pooling == "attention"  # else None: the mean, no parameters
        self.video_pool = AttentionPool(config.hidden_size) if attention else None
        self.text_pool = AttentionPool(config.hidden_size) if attention else None
        if config.positions == "none":
            for bert in (self.video_encoder.bert, self.text_encoder):
                bert.embeddings.position_embeddings.register_forward_hook(_zero_output)
        apply_trainable(self)

    def _copy_text_into_video(self) -> None:
        video, text = self.video_encoder.bert, self.text_encoder
        video.embeddings.load_state_dict(text.embeddings.state_dict())
        for v_layer, t_layer in zip(video.encoder.layer, text.encoder.layer):
            v_layer.load_state_dict(t_layer.state_dict())
        video.pooler.load_state_dict(text.pooler.state_dict())

    def encode_video(
        self, vfeats: Tensor, vmask: Tensor, cls_attend: bool | None = None
    ) -> EncoderOutput:
        """Encode clips of frame features.

        Parameters
        ----------
        vfeats : shape (B, V, D)
            frame features (D = ``config.video_feature_dim``); padded frames may hold
            anything, they are zeroed before the MLP (the released loader pads with zeros).
        vmask : shape (B, V), bool
            True for real frames. A clip with no real frame pools its SEP token alone.
        cls_attend : bool, optional
            whether the video CLS takes part in attention; defaults to
            ``config.video_cls_attend`` (the BG-retrieval and COIN paths use False).

        Returns
        -------
        EncoderOutput
            ``pooled`` shape (B, H); ``tokens`` shape (B, V + 2, H) for
            ``[CLS, frames, SEP]``; ``mask`` shape (B, V + 2) = ``[False, vmask, True]``.

        Notes
        -----
        Norton Appendix A (video tokens from S3D through a 6-layer Transformer, then average
        pooling); positions ``arange(V + 2)`` as in the released ``MMBertEmbeddings`` (no
        position term with ``config.positions = "none"``).

        Examples
        --------
        >>> _ = torch.manual_seed(0)
        >>> model = DualEncoder(EncoderConfig(preset="tiny")).eval()
        >>> out = model.encode_video(torch.randn(1, 2, 512), torch.tensor([[True, False]]))
        >>> out.mask.tolist()
        [[False, True, False, True]]
        >>> bool(torch.allclose(out.pooled, out.tokens[0, [1, 3]].mean(0, keepdim=True)))
        True
        """
        d = self.config.video_feature_dim
        b, v, _ = check_tensor("vfeats", vfeats, ndim=3, shape=(d,)).shape
        check_mask("vmask", vmask, (b, v))
        if v + 2 > self.config.max_positions:
            raise ValueError(
                f"vfeats: expected at most max_positions - 2 = "
                f"{self.config.max_positions - 2} frames, got V={v}"
            )
        check_finite("vfeats", vfeats, vmask[..., None].expand_as(vfeats))
        cls_attend = self.config.video_cls_attend if cls_attend is None else bool(cls_attend)
        bert = self.video_encoder.bert
        dtype = self.video_encoder.videomlp.linear1.weight.dtype
        x = vfeats.to(dtype).masked_fill(~vmask[..., None], 0.0)  # (B, V, D)
        frames = self.video_encoder.videomlp(x)  # (B, V, H)
        special = torch.tensor(
            [self.config.cls_token_id, self.config.sep_token_id], device=frames.device
        )
        cls_emb, sep_emb = bert.embeddings.word_embeddings(special).unbind(0)  # (H,), (H,)
        h = frames.shape[-1]
        embeds = torch.cat([cls_emb.expand(b, 1, h), frames, sep_emb.expand(b, 1, h)], 1)
        positions = torch.arange(v + 2, device=frames.device).expand(b, v + 2)  # (B, V + 2)
        ones = torch.ones(b, 1, dtype=torch.bool, device=frames.device)
        attn = torch.cat([ones & cls_attend, vmask, ones], dim=1)  # (B, V + 2)
        tokens = bert(
            inputs_embeds=embeds,
            attention_mask=attn.long(),
            position_ids=positions,
            token_type_ids=torch.zeros_like(positions),
        ).last_hidden_state  # (B, V + 2, H)
        mask = torch.cat([~ones, vmask, ones], dim=1)  # (B, V + 2): frames + SEP, no CLS
        return EncoderOutput(_pooled(self.video_pool, tokens, mask), tokens, mask)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> EncoderOutput:
        """Encode captions laid out as ``[CLS] tok_1 .. tok_n [SEP] PAD ..``.

        Parameters
        ----------
        input_ids : shape (B, T), integer
            word-piece ids (bert-base-uncased vocabulary), position 0 holding [CLS].
        attention_mask : shape (B, T), bool
            True on CLS, tokens and SEP; False on padding.

        Returns
        -------
        EncoderOutput
            ``pooled`` shape (B, H); ``tokens`` shape (B, T, H); ``mask`` shape (B, T) =
            ``attention_mask`` with position 0 (CLS) set to False.

        Notes
        -----
        Norton Appendix A (12-layer text Transformer, average pooling over words); the released
        ``forward_text`` pools over ``[0, cmasks[2:]]``: tokens and the final SEP.

        Examples
        --------
        >>> _ = torch.manual_seed(0)
        >>> model = DualEncoder(EncoderConfig(preset="tiny")).eval()
        >>> ids = torch.tensor([[101, 2023, 102, 0]])
        >>> out = model.encode_text(ids, ids != 0)
        >>> out.mask.tolist()
        [[False, True, True, False]]
        >>> bool(torch.allclose(out.pooled, out.tokens[0, 1:3].mean(0, keepdim=True)))
        True
        """
        if (
            not isinstance(input_ids, Tensor)
            or input_ids.ndim != 2
            or input_ids.is_floating_point()
            or input_ids.dtype == torch.bool
        ):
            got = (
                f"shape {tuple(input_ids.shape)} dtype {input_ids.dtype}"
                if isinstance(input_ids, Tensor)
                else type(input_ids).__name__
            )
            raise ValueError(f"input_ids: expected an integer tensor of shape (B, T), got {got}")
        b, t = input_ids.shape
        check_mask("attention_mask", attention_mask, (b, t))
        if t < 2 or t > self.config.max_positions:
            raise ValueError(
                f"input_ids: expected 2 <= T <= max_positions = "
                f"{self.config.max_positions}, got T={t}"
            )
        if input_ids.numel() and (
            int(input_ids.min()) < 0 or int(input_ids.max()) >= self.config.vocab_size
        ):
            raise ValueError(
                f"input_ids: expected ids in [0, {self.config.vocab_size}), got "
                f"range [{int(input_ids.min())}, {int(input_ids.max())}]"
            )
        mask = attention_mask.clone()
        mask[:, 0] = False  # (B, T): tokens + final SEP, no CLS
        check_nonempty_mask("attention_mask", mask, "tokens after [CLS]")
        tokens = self.text_encoder(
            input_ids=input_ids.long(),
            attention_mask=attention_mask.long(),
            token_type_ids=torch.zeros_like(input_ids, dtype=torch.long),
        ).last_hidden_state  # (B, T, H)
        return EncoderOutput(_pooled(self.text_pool, tokens, mask), tokens, mask)

    def forward(
        self, vfeats: Tensor, vmask: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> DualEncoderOutput:
        """Encode both sides: :meth:`encode_video` and :meth:`encode_text` (shapes there)."""
        return DualEncoderOutput(
            self.encode_video(vfeats, vmask), self.encode_text(input_ids, attention_mask)
        )

    def frame_logits(self, vfeats: Tensor, vmask: Tensor, cls_attend: bool | None = None) -> Tensor:
        """Per-frame class logits of the COIN head, shape (B, V, n_classes).

        The head is applied to the frame positions ``1..V`` of :meth:`encode_video`'s tokens
        (the released ``MMFusionSeparateActionSegmentation``, which masks the video CLS: pass
        ``cls_attend=False`` or set ``video_cls_attend=False``).

        Examples
        --------
        >>> _ = torch.manual_seed(0)
        >>> model = DualEncoder(EncoderConfig(preset="tiny", n_classes=5)).eval()
        >>> model.frame_logits(torch.randn(2, 3, 512), torch.ones(2, 3, dtype=torch.bool)).shape
        torch.Size([2, 3, 5])
        """
        if not hasattr(self.video_encoder, "classifier"):
            raise ValueError(
                "frame_logits: the model has no classifier; build it with "
                "EncoderConfig(n_classes=...)"
            )
        tokens = self.encode_video(vfeats, vmask, cls_attend).tokens  # (B, V + 2, H)
        return self.video_encoder.classifier(tokens[:, 1:-1])  # (B, V, n_classes)

    @torch.no_grad()
    def clamp_logit_scales_(self) -> None:
        """Clamp every logit scale to ``[0, config.max_logit_scale]`` in place (after a step).

        Examples
        --------
        >>> model = DualEncoder(EncoderConfig(preset="tiny"))
        >>> _ = model.logit_scale.data.fill_(9.0)
        >>> model.clamp_logit_scales_(); round(model.logit_scale.detach().item(), 4)
        4.6052
        """
        for name in LOGIT_SCALE_KEYS:
            param = getattr(self, name, None)
            if param is not None:
                param.clamp_(0.0, self.config.max_logit_scale)


def _pooled(pool: AttentionPool | None, tokens: Tensor, mask: Tensor) -> Tensor:
    """(B, L, H) tokens, (B, L) mask -> (B, H): the masked mean, or ``pool``'s weighted mean."""
    return masked_mean(tokens, mask[..., None], dim=1) if pool is None else pool(tokens, mask)


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters the training loop must hand to the optimizer, by name.

    Accepts a :class:`DualEncoder` or a wrapper holding one as ``.module`` (DDP). Raises
    ``ValueError`` when a parameter's ``requires_grad`` disagrees with the config (change
    ``EncoderConfig.trainable`` instead of flipping flags by hand).

    Examples
    --------
    >>> model = DualEncoder(EncoderConfig(preset="tiny"))
    >>> params = trainable_parameters(model)
    >>> "logit_scale" in params, len(params)  # 11 LayerNorms x 2 tensors + logit_scale
    (True, 23)
    """
    inner = getattr(model, "module", model)
    if not isinstance(inner, DualEncoder):
        raise ValueError(
            f"model: expected a DualEncoder (or a wrapper with .module), got {type(model).__name__}"
        )
    out: dict[str, nn.Parameter] = {}
    for name, param in inner.named_parameters():
        rule = is_trainable(name, inner.config)
        if rule != param.requires_grad:
            raise ValueError(
                f"model: parameter {name} has requires_grad={param.requires_grad} but "
                f"trainable={inner.config.trainable!r} says {rule}; set the config instead"
            )
        if rule:
            out[name] = param
    return out
