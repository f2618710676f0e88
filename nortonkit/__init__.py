"""nortonkit: a notebook-first research kit for Norton (ICLR 2024).

Shape glossary, used in every docstring:

=====  ==========================================================================
``B``  videos (or clips, once flattened) in a batch
``K``  clips (= captions) per video-paragraph sequence (Norton's L = 8)
``M``  rows of a cost / similarity matrix (clips, unless stated)
``N``  columns of a cost / similarity matrix (captions, unless stated)
``T``  word tokens per caption
``V``  frame tokens per clip
``D``  feature dimension
=====  ==========================================================================

Masks are boolean with ``True`` = valid. Similarities are "higher is better"; costs are
"lower is better". ``import nortonkit`` pulls only torch and numpy; plotting lives in
``nortonkit.lab.viz`` and widgets in ``nortonkit.lab.widgets``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> submodule; resolved lazily so that `import nortonkit` stays light.
_EXPORTS = {
    "sinkhorn": "transport",
    "bucket_sinkhorn": "transport",
    "bucket_value_from_quantile": "transport",
    "SinkhornResult": "transport",
    "token_lse_similarity": "similarity",
    "mean_pooled_similarity": "similarity",
    "minmax_normalize": "similarity",
    "fuse_similarity": "similarity",
    "dtw": "alignment",
    "otam": "alignment",
    "soft_dtw": "alignment",
    "cap_avg": "alignment",
    "AlignmentResult": "alignment",
    "clip_caption_loss": "losses",
    "video_paragraph_loss": "losses",
    "directional_lse_similarity": "similarity",
    "official_fused_similarity": "similarity",
    "DirectionalSimilarity": "similarity",
    "sequence_blocks": "losses",
    "norton_loss": "losses",
    "ClipLossResult": "losses",
    "VideoLossResult": "losses",
    "NortonLossResult": "losses",
    "DualEncoder": "encoders",
    "EncoderConfig": "encoders",
    "EncoderOutput": "encoders",
    "trainable_parameters": "encoders",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "load_fairseq_checkpoint": "checkpoint",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'nortonkit' has no attribute {name!r}")
