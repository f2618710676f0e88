"""Readers, samplers and writers for every dataset Norton trains and evaluates on.

All datasets live under one data root in their released layout
(:class:`~nortonkit.data.layout.DataRoot`); the embedded synthetic corpus is written in the
same layout, so one ``data_root`` argument selects either.

=====================  ===================================================================
module                 contents
=====================  ===================================================================
``layout``             :class:`DataRoot`: every path under a data root
``features``           :func:`load_feature` (per-video ``.npy``), :class:`SkipReport`,
                       :class:`ClipSet`, :func:`pad_clips`, :func:`install_features`
``text``               :func:`load_tokenizer` (bert-base-uncased, offline),
                       :func:`pretokenize`, :class:`TextBatch`, :func:`encode_texts`
``howto100m``          feature/caption shards (:func:`write_feature_shards`,
                       :class:`ShardedFeatures`, :func:`write_caption_shards`,
                       :class:`ShardedCaptions`), :func:`sample_video_clips`,
                       :class:`How2Dataset` yielding :class:`ClipBatch`
``youcook``            YouCookII clip set and video-paragraph sets (background removed/kept)
``msrvtt``             MSR-VTT retrieval test/train sets and multiple-choice QA
``coin``               COIN action-segmentation windows and targets
``htm_align``          HTM-Align videos, sliding windows and active-text ranges
=====================  ===================================================================

Names are resolved lazily, so ``import nortonkit.data`` stays light (no transformers, no
pandas until a reader that needs them is used).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataRoot": "layout",
    "CAPTION_PREFIX": "layout",
    "FEATURE_DIM": "features",
    "SkipReport": "features",
    "SkippedItemsWarning": "features",
    "ClipSet": "features",
    "load_feature": "features",
    "pad_clips": "features",
    "install_features": "features",
    "TextBatch": "text",
    "load_tokenizer": "text",
    "pretokenize": "text",
    "encode_texts": "text",
    "build_text_batch": "text",
    "write_feature_shards": "howto100m",
    "shard_feature_dir": "howto100m",
    "ShardedFeatures": "howto100m",
    "write_caption_shards": "howto100m",
    "ShardedCaptions": "howto100m",
    "read_video_list": "howto100m",
    "sample_video_clips": "howto100m",
    "VideoClips": "howto100m",
    "ClipBatch": "howto100m",
    "build_clip_batch": "howto100m",
    "How2Dataset": "howto100m",
    "load_youcook_clips": "youcook",
    "load_youcook_paragraphs": "youcook",
    "load_youcook_full_videos": "youcook",
    "load_msrvtt_test": "msrvtt",
    "MSRVTTTrainDataset": "msrvtt",
    "load_msrvtt_qa": "msrvtt",
    "load_coin": "coin",
    "load_htm_align": "htm_align",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'nortonkit.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
