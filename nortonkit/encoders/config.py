"""Hyper-parameters of the dual encoder: :class:`EncoderConfig`, size presets, token ids.

:data:`ENCODER_SIZES` holds the size presets (``"bert-base"``, ``"tiny"``, ``"minilm"``),
:data:`KIT_ONLY_KEYS` the names of the parameters that only nortonkit models own, and
``CLS_TOKEN_ID`` / ``SEP_TOKEN_ID`` / ``PAD_TOKEN_ID`` the bert-base-uncased special tokens.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..validation import check_choice

__all__ = [
    "CLS_TOKEN_ID",
    "SEP_TOKEN_ID",
    "PAD_TOKEN_ID",
    "LOGIT_SCALE_KEYS",
    "KIT_ONLY_KEYS",
    "ENCODER_SIZES",
    "EncoderConfig",
]

CLS_TOKEN_ID = 101  # bert-base-uncased [CLS]
SEP_TOKEN_ID = 102  # bert-base-uncased [SEP]
PAD_TOKEN_ID = 0  # bert-base-uncased [PAD]

#: The model's temperatures (log 1/tau), clamped after every update.
LOGIT_SCALE_KEYS: tuple[str, ...] = ("logit_scale", "clip_logit_scale")
#: State-dict keys that exist only in nortonkit models (temperatures and the queries of
#: ``pooling="attention"``), never in fairseq files.
KIT_ONLY_KEYS: tuple[str, ...] = (*LOGIT_SCALE_KEYS, "video_pool.query", "text_pool.query")

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
    # "absolute": BERT's learned position per token (VideoCLIP/Norton); "none": no position
    # term (the embeddings stay in the state dict, their output is zero and gets no gradient),
    # so each encoder sees its clip's frames and its caption's words as a set (an option for
    # small randomly initialised encoders, data_recipes/SYNTHETIC.md)
    positions: str = "absolute"
    # "mean": each side is the average of its pooled tokens (VideoCLIP/Norton); "attention":
    # a softmax-weighted average with one learned query per side, zero at initialisation so
    # it starts as the mean (an option for small randomly initialised encoders,
    # data_recipes/SYNTHETIC.md; the queries are kit-only keys)
    pooling: str = "mean"
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
        check_choice("positions", self.positions, ("absolute", "none"))
        check_choice("pooling", self.pooling, ("mean", "attention"))
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
