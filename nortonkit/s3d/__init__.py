"""S3D-G with the HowTo100M MIL-NCE weights: the network, its checkpoint and its video input.

Norton (Appendix A, "Architecture") trains on pre-extracted video tokens: "we use HowTo100M
pre-trained S3D to extract one video token per second at 30 fps". This package rebuilds that
extractor so that users can turn their own videos into features that match the released ones:

* :class:`S3D` is S3D-G exactly as the released ``s3d_howto100m.pth`` needs it (same module
  names, shapes and quirks, including the static TF-"SAME" pooling), plus the optional
  word-embedding text branch of MIL-NCE.
* :func:`load_s3d` reads a user-supplied checkpoint with ``weights_only=True`` and checks every
  key and shape; :func:`load_s3d_dictionary` and :func:`tokenize_s3d` serve the text branch.
* :func:`iter_frames` and :func:`iter_chunks` decode a video with PyAV through the same
  libavfilter chain as the official ffmpeg command (``fps=30``, bicubic ``scale`` of the short side
  to 224, centre ``crop=224:224``, ``rgb24``), giving byte-identical frames, and stream them as
  uint8 one-second chunks; :func:`extract_features` turns them into ``(N, 512)`` float16 rows.

===========  ==================================================================================
module       contents
===========  ==================================================================================
``network``  :class:`S3D`, :class:`S3DOutput`, :func:`space_to_depth` and the S3D-G layers
``weights``  :func:`load_s3d`, :func:`load_s3d_state_dict`, :func:`state_dict_layout`,
             :func:`layout_sha256`
``text``     :class:`SentenceEmbedding`, :func:`load_s3d_dictionary`, :func:`build_word_to_id`,
             :func:`tokenize_s3d`
``video``    :class:`FrameGeometry`, :func:`frame_geometry`, :func:`iter_frames`,
             :func:`iter_chunks`, :func:`expected_rows` (PyAV decoding)
``extract``  :func:`chunks_to_input`, :func:`embed_chunks`, :func:`extract_features`
===========  ==================================================================================

Shapes use the package glossary plus: ``V`` frames per one-second chunk (30), ``H``/``W`` frame
height/width (224) and ``N`` one-second rows of a video. Row ``i`` covers second ``[i, i + 1)``.
PyAV is imported only by the decoding functions.
"""

from __future__ import annotations

from .extract import chunks_to_input, embed_chunks, extract_features
from .network import S3D, S3DOutput, space_to_depth
from .text import (
    EMBED_DIM,
    SentenceEmbedding,
    build_word_to_id,
    load_s3d_dictionary,
    tokenize_s3d,
)
from .video import (
    CHUNK_FPS,
    FRAME_SIZE,
    FrameGeometry,
    expected_rows,
    frame_geometry,
    iter_chunks,
    iter_frames,
)
from .weights import layout_sha256, load_s3d, load_s3d_state_dict, state_dict_layout

__all__ = [
    "S3D",
    "S3DOutput",
    "SentenceEmbedding",
    "space_to_depth",
    "state_dict_layout",
    "layout_sha256",
    "load_s3d_state_dict",
    "load_s3d",
    "load_s3d_dictionary",
    "build_word_to_id",
    "tokenize_s3d",
    "FrameGeometry",
    "frame_geometry",
    "iter_frames",
    "iter_chunks",
    "chunks_to_input",
    "embed_chunks",
    "extract_features",
    "expected_rows",
    "EMBED_DIM",
    "CHUNK_FPS",
    "FRAME_SIZE",
]
