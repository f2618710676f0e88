"""The VideoCLIP/Norton dual encoder on stock Hugging Face ``transformers``.

A 6-layer BERT encodes one clip's S3D frame features, a 12-layer BERT encodes one caption, and
each side is mean-pooled into one vector; the joint space is the raw BERT output space (no
projection heads). The module layout and parameter names reproduce the released fairseq
checkpoints key for key (``video_encoder.videomlp.*``, ``video_encoder.bert.*``,
``text_encoder.*``), so :mod:`nortonkit.checkpoint` loads them strictly.

Kit-only parameters. The model also owns parameters which the released checkpoints do not
hold: ``logit_scale`` (log 1/tau of the video-paragraph loss, Norton Eq. (4)), when
``clip_logit_scale="learnable"`` ``clip_logit_scale`` (an optional temperature for the
clip-caption loss), and when ``pooling="attention"`` the queries ``video_pool.query`` and
``text_pool.query`` (zero at the start: the paper's mean pooling). Their names are listed in
:data:`KIT_ONLY_KEYS`; a fairseq load leaves them at their initial value instead of failing.

=============  ================================================================================
module         contents
=============  ================================================================================
``config``     :class:`EncoderConfig`, :data:`ENCODER_SIZES`, :data:`KIT_ONLY_KEYS`,
               :data:`LOGIT_SCALE_KEYS`, ``CLS_TOKEN_ID`` / ``SEP_TOKEN_ID`` / ``PAD_TOKEN_ID``
``bert``       the stock HF BERTs: their ``BertConfig``, the MiniLM text weights, skipped
               initialisation, the zero position hook of ``positions="none"``
``video``      :class:`VideoTokenMLP`, :class:`VideoEncoder`
``pooling``    :func:`attention_pool`, :class:`AttentionPool` (``pooling="attention"``)
``trainable``  :func:`is_trainable`, :func:`apply_trainable`
``dual``       :class:`DualEncoder` (``encode_video``, ``encode_text``), :class:`EncoderOutput`,
               :class:`DualEncoderOutput`, :func:`trainable_parameters`
=============  ================================================================================
"""

from __future__ import annotations

from .config import (
    CLS_TOKEN_ID,
    ENCODER_SIZES,
    KIT_ONLY_KEYS,
    LOGIT_SCALE_KEYS,
    PAD_TOKEN_ID,
    SEP_TOKEN_ID,
    EncoderConfig,
)
from .dual import DualEncoder, DualEncoderOutput, EncoderOutput, trainable_parameters
from .pooling import AttentionPool, attention_pool
from .trainable import apply_trainable, is_trainable
from .video import VideoEncoder, VideoTokenMLP

__all__ = [
    "CLS_TOKEN_ID",
    "SEP_TOKEN_ID",
    "PAD_TOKEN_ID",
    "KIT_ONLY_KEYS",
    "LOGIT_SCALE_KEYS",
    "ENCODER_SIZES",
    "EncoderConfig",
    "EncoderOutput",
    "DualEncoderOutput",
    "VideoTokenMLP",
    "VideoEncoder",
    "AttentionPool",
    "attention_pool",
    "DualEncoder",
    "is_trainable",
    "apply_trainable",
    "trainable_parameters",
]
