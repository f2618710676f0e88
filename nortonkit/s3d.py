"""S3D-G with the HowTo100M MIL-NCE weights: the network, its checkpoint and its video input.

Norton (Appendix A, "Architecture") trains on pre-extracted video tokens: "we use HowTo100M
pre-trained S3D to extract one video token per second at 30 fps". This module rebuilds that
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

Shapes use the package glossary plus: ``V`` frames per one-second chunk (30), ``H``/``W`` frame
height/width (224) and ``N`` one-second rows of a video. Row ``i`` covers second ``[i, i + 1)``.
PyAV is imported only by the decoding functions.
"""

from __future__ import annotations

import hashlib
import math
import queue
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nortonkit.validation import check_choice, check_int_at_least, check_tensor

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

EMBED_DIM = 512  # video_embedding / text_embedding width (the official num_classes=512)
NUM_EMBEDDINGS = 66250  # 66,249 dictionary words + padding row 0
WORD_DIM = 300
TEXT_HIDDEN = 2048
MAX_WORDS = 16
CHUNK_FPS = 30  # decoding rate; one chunk = CHUNK_FPS frames = one second
FRAME_SIZE = 224

# name: (in, n0, n1a, n1b, n2a, n2b, n3b), in registration order
_INCEPTION = {
    "mixed_3b": (192, 64, 96, 128, 16, 32, 32),
    "mixed_3c": (256, 128, 128, 192, 32, 96, 64),
    "mixed_4b": (480, 192, 96, 208, 16, 48, 64),
    "mixed_4c": (512, 160, 112, 224, 24, 64, 64),
    "mixed_4d": (512, 128, 128, 256, 24, 64, 64),
    "mixed_4e": (512, 112, 144, 288, 32, 64, 64),
    "mixed_4f": (528, 256, 160, 320, 32, 128, 128),
    "mixed_5b": (832, 256, 160, 320, 32, 128, 128),
    "mixed_5c": (832, 384, 192, 384, 48, 128, 128),
}


# --------------------------------------------------------------------------- network


class _STConv3D(nn.Module):
    """Conv3d (no bias) -> BN -> ReLU; separable: (1,k,k) spatial then (k,1,1) temporal."""

    def __init__(self, c_in: int, c_out: int, kernel: Sequence[int], padding: Any = 0,
                 separable: bool = False):
        super().__init__()
        self.separable = separable
        self.relu = nn.ReLU()
        if separable:  # only ever used with a 3x3x3 kernel and padding 1
            k, p = kernel[0], int(padding)
            self.conv1 = nn.Conv3d(c_in, c_out, (1, k, k), padding=(0, p, p), bias=False)
            self.bn1 = nn.BatchNorm3d(c_out)
            self.conv2 = nn.Conv3d(c_out, c_out, (k, 1, 1), padding=(p, 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(c_out)
        else:
            self.conv1 = nn.Conv3d(c_in, c_out, tuple(kernel), padding=padding, bias=False)
            self.bn1 = nn.BatchNorm3d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        if self.separable:
            x = self.relu(self.bn2(self.conv2(x)))
        return x


class _SelfGating(nn.Module):
    """``x * sigmoid(fc(mean_{T,H,W} x))[:, :, None, None, None]`` (per sample)."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        weights = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))  # (B, C)
        return weights[:, :, None, None, None] * x


class _InceptionBlock(nn.Module):
    """Four gated branches (1x1; 1x1 -> sep 3x3x3; 1x1 -> sep 3x3x3; maxpool -> 1x1), concat."""

    def __init__(self, c_in: int, n0: int, n1a: int, n1b: int, n2a: int, n2b: int, n3b: int):
        super().__init__()
        self.conv_b0 = _STConv3D(c_in, n0, (1, 1, 1))
        self.conv_b1_a = _STConv3D(c_in, n1a, (1, 1, 1))
        self.conv_b1_b = _STConv3D(n1a, n1b, (3, 3, 3), padding=1, separable=True)
        self.conv_b2_a = _STConv3D(c_in, n2a, (1, 1, 1))
        self.conv_b2_b = _STConv3D(n2a, n2b, (3, 3, 3), padding=1, separable=True)
        self.maxpool_b3 = nn.MaxPool3d((3, 3, 3), stride=1, padding=1)
        self.conv_b3_b = _STConv3D(c_in, n3b, (1, 1, 1))
        self.gating_b0 = _SelfGating(n0)
        self.gating_b1 = _SelfGating(n1b)
        self.gating_b2 = _SelfGating(n2b)
        self.gating_b3 = _SelfGating(n3b)

    def forward(self, x: Tensor) -> Tensor:
        b0 = self.gating_b0(self.conv_b0(x))
        b1 = self.gating_b1(self.conv_b1_b(self.conv_b1_a(x)))
        b2 = self.gating_b2(self.conv_b2_b(self.conv_b2_a(x)))
        b3 = self.gating_b3(self.conv_b3_b(self.maxpool_b3(x)))
        return torch.cat((b0, b1, b2, b3), dim=1)


class _MaxPool3dStaticSame(nn.Module):
    """The official static TF-"SAME" emulation: zero-pad (front=(k-s)//2) then ceil-mode pool.

    Kept as is, although for odd sizes it is not TF's dynamic SAME (the weights and released
    features come from this rule); zero padding is harmless because inputs are >= 0.
    """

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        pads = []
        for k, s in zip(reversed(kernel), reversed(stride)):  # F.pad order: W, H, T
            along = max(k - s, 0)
            pads += [along // 2, along - along // 2]
        self.pad = nn.ConstantPad3d(tuple(pads), 0.0)
        self.pool = nn.MaxPool3d(kernel, stride, ceil_mode=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.pad(x))


class SentenceEmbedding(nn.Module):
    """MIL-NCE's text branch: word embedding -> fc1 -> ReLU -> max over words -> fc2.

    Parameters
    ----------
    embd_dim, num_embeddings, word_dim, hidden_dim : int
        Output width (512), vocabulary rows (66,250 = 66,249 words + padding row 0), word vector
        width (300) and hidden width (2048), as in the released checkpoint.

    Notes
    -----
    MIL-NCE (Miech et al., CVPR 2020) sentence encoder, as used by the released S3D model:

    .. math:: f(s) = W_2 \\max_{t} \\mathrm{ReLU}(W_1 e_{s_t} + b_1) + b_2

    Padding id 0 is an ordinary trained row (no ``padding_idx``), so padded positions take part
    in the max exactly as in the official module. There is no normalisation.

    Examples
    --------
    >>> m = SentenceEmbedding(num_embeddings=6)
    >>> m(torch.tensor([[1, 5, 2, 0]])).shape
    torch.Size([1, 512])
    """

    def __init__(self, embd_dim: int = EMBED_DIM, num_embeddings: int = NUM_EMBEDDINGS,
                 word_dim: int = WORD_DIM, hidden_dim: int = TEXT_HIDDEN):
        super().__init__()
        self.word_embd = nn.Embedding(num_embeddings, word_dim)
        self.fc1 = nn.Linear(word_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, embd_dim)

    def forward(self, token_ids: Tensor) -> Tensor:
        """Embed token ids ``shape (B, T)`` int64 into ``shape (B, 512)``."""
        check_tensor("token_ids", token_ids, ndim=2, floating=False)
        n = self.word_embd.num_embeddings
        if token_ids.dtype not in (torch.int64, torch.int32) or token_ids.shape[1] == 0:
            raise ValueError(f"token_ids: expected int64 ids of shape (B, T>0), got dtype "
                             f"{token_ids.dtype} shape {tuple(token_ids.shape)}")
        if token_ids.numel() and (int(token_ids.min()) < 0 or int(token_ids.max()) >= n):
            raise ValueError(f"token_ids: expected ids in [0, {n}), got range "
                             f"[{int(token_ids.min())}, {int(token_ids.max())}]")
        x = F.relu(self.fc1(self.word_embd(token_ids)))  # (B, T, 2048)
        return self.fc2(x.max(dim=1).values)  # (B, 512)


class S3DOutput(NamedTuple):
    """Outputs of :meth:`S3D.forward`.

    ``video_embedding`` ``shape (B, 512)``: the joint-space embedding (``fc(mixed_5c)``), the
    feature Norton's data uses after L2 normalisation. ``mixed_5c`` ``shape (B, 1024)``: the
    spatio-temporally pooled trunk feature.
    """

    video_embedding: Tensor
    mixed_5c: Tensor


def space_to_depth(video: Tensor) -> Tensor:
    """Fold every 2x2x2 (time, height, width) cell into channels.

    Parameters
    ----------
    video : Tensor
        ``shape (B, C, V, H, W)`` with even ``V``, ``H`` and ``W``.

    Returns
    -------
    Tensor
        ``shape (B, 8C, V/2, H/2, W/2)``; channel ``((dt * 2 + dh) * 2 + dw) * C + c`` holds
        ``video[:, c, 2v + dt, 2h + dh, 2w + dw]`` (cell offset major, input channel minor).

    Notes
    -----
    S3D-G's ``space_to_depth`` stem (Xie et al., ECCV 2018), as in the released model.

    Examples
    --------
    >>> x = torch.arange(2 * 2 * 2 * 2.0).reshape(1, 2, 2, 2, 2)  # C=2
    >>> space_to_depth(x)[0, :, 0, 0, 0].tolist()
    [0.0, 8.0, 1.0, 9.0, 2.0, 10.0, 3.0, 11.0, 4.0, 12.0, 5.0, 13.0, 6.0, 14.0, 7.0, 15.0]
    """
    check_tensor("video", video, ndim=5)
    b, c, v, h, w = video.shape
    if v % 2 or h % 2 or w % 2:
        raise ValueError(f"video: expected even frames, height and width (B, C, V, H, W), got "
                         f"shape {tuple(video.shape)}")
    x = video.reshape(b, c, v // 2, 2, h // 2, 2, w // 2, 2)
    x = x.permute(0, 3, 5, 7, 1, 2, 4, 6)  # (B, 2, 2, 2, C, V/2, H/2, W/2)
    return x.reshape(b, 8 * c, v // 2, h // 2, w // 2)


class S3D(nn.Module):
    """S3D-G with the module layout of the released HowTo100M MIL-NCE checkpoint.

    Parameters
    ----------
    embed_dim : int
        Width of ``video_embedding`` (512 for the released weights).
    with_text : bool
        Build the ``text_module`` branch (21.5 M parameters). Feature extraction does not need
        it; the released checkpoint contains it.
    num_embeddings : int
        Rows of the text branch's word embedding (66,250 in the released file).

    Notes
    -----
    Norton Appendix A: one S3D token per second at 30 fps, from the HowTo100M-trained S3D of
    MIL-NCE. ``forward`` computes, for a one-second chunk ``x`` of 30 RGB frames in [0, 1],

    .. math:: e = W_{fc}\\,\\mathrm{mean}_{v,h,w}\\,\\mathrm{S3DG}(\\mathrm{s2d}(x)) + b_{fc}

    Kept quirks of the official model: ``conv1`` is padded (1, 2, 2) and its output cropped by
    one element in front on every axis; all max-pools use the static TF-"SAME" rule with zero
    padding and ``ceil_mode``; BatchNorm eps is 1e-5. Self-gating is always on (the official
    ``gating`` flag is dead code). Only ``eval()`` mode reproduces the released features.

    Examples
    --------
    >>> net = S3D(with_text=False).eval()
    >>> with torch.no_grad():
    ...     out = net(torch.rand(2, 3, 6, 32, 32))
    >>> tuple(out.video_embedding.shape), tuple(out.mixed_5c.shape)
    ((2, 512), (2, 1024))
    """

    def __init__(self, embed_dim: int = EMBED_DIM, with_text: bool = True,
                 num_embeddings: int = NUM_EMBEDDINGS):
        super().__init__()
        self.conv1 = _STConv3D(24, 64, (2, 4, 4), padding=(1, 2, 2))
        self.conv_2b = _STConv3D(64, 64, (1, 1, 1))
        self.conv_2c = _STConv3D(64, 192, (3, 3, 3), padding=1, separable=True)
        self.gating = _SelfGating(192)
        self.maxpool_2a = _MaxPool3dStaticSame((1, 3, 3), (1, 2, 2))
        self.maxpool_3a = _MaxPool3dStaticSame((1, 3, 3), (1, 2, 2))
        self.mixed_3b = _InceptionBlock(*_INCEPTION["mixed_3b"])
        self.mixed_3c = _InceptionBlock(*_INCEPTION["mixed_3c"])
        self.maxpool_4a = _MaxPool3dStaticSame((3, 3, 3), (2, 2, 2))
        for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
            self.add_module(name, _InceptionBlock(*_INCEPTION[name]))
        self.maxpool_5a = _MaxPool3dStaticSame((2, 2, 2), (2, 2, 2))
        # Parameter-free alias of the official module; it only adds `_metadata` entries, so a
        # legacy-format save of this state_dict has the released file's exact byte size.
        self.maxPool3d_5a_2x2 = _MaxPool3dStaticSame((2, 2, 2), (2, 2, 2))
        self.mixed_5b = _InceptionBlock(*_INCEPTION["mixed_5b"])
        self.mixed_5c = _InceptionBlock(*_INCEPTION["mixed_5c"])
        self.fc = nn.Linear(1024, embed_dim)
        self.text_module = (
            SentenceEmbedding(embed_dim, num_embeddings) if with_text else None
        )

    def forward(self, video: Tensor) -> S3DOutput:
        """Embed chunks ``video`` ``shape (B, 3, V, H, W)`` (RGB in [0, 1], even V, H, W)."""
        check_tensor("video", video, ndim=5, shape=(3, None, None, None))
        x = space_to_depth(video)  # (B, 24, V/2, H/2, W/2)
        x = self.conv1(x)[:, :, 1:, 1:, 1:]  # (B, 64, V/2, H/2, W/2): pad-then-crop = TF SAME
        x = self.maxpool_2a(x)  # (B, 64, V/2, H/4, W/4)
        x = self.gating(self.conv_2c(self.conv_2b(x)))  # (B, 192, V/2, H/4, W/4)
        x = self.maxpool_3a(x)  # (B, 192, V/2, H/8, W/8)
        x = self.mixed_3c(self.mixed_3b(x))  # (B, 480, V/2, H/8, W/8)
        x = self.maxpool_4a(x)  # (B, 480, ceil(V/4), H/16, W/16)
        for block in (self.mixed_4b, self.mixed_4c, self.mixed_4d, self.mixed_4e, self.mixed_4f):
            x = block(x)  # (B, 832 after 4f, ...)
        x = self.maxpool_5a(x)  # (B, 832, ceil(V/8), H/32, W/32)
        x = self.mixed_5c(self.mixed_5b(x))  # (B, 1024, ...)
        pooled = x.mean(dim=(2, 3, 4))  # (B, 1024)
        return S3DOutput(video_embedding=self.fc(pooled), mixed_5c=pooled)

    def encode_text(self, token_ids: Tensor) -> Tensor:
        """Text embedding ``shape (B, 512)`` of ids ``shape (B, T)`` from :func:`tokenize_s3d`.

        Similarity with videos is the raw dot product with ``video_embedding`` (MIL-NCE).
        """
        if self.text_module is None:
            raise ValueError("text_module: this S3D was built with with_text=False")
        return self.text_module(token_ids)


# --------------------------------------------------------------------------- checkpoint


def state_dict_layout(state_dict: Mapping[str, Tensor], sort: bool = False) -> list[str]:
    """One ``key<TAB>shape<TAB>dtype`` line per entry, e.g. ``fc.bias\\t(512,)\\tfloat32``.

    Examples
    --------
    >>> state_dict_layout(nn.Linear(2, 3).state_dict())
    ['weight\\t(3, 2)\\tfloat32', 'bias\\t(3,)\\tfloat32']
    """
    lines = [f"{k}\t{tuple(v.shape)!r}\t{str(v.dtype).removeprefix('torch.')}"
             for k, v in state_dict.items()]
    return sorted(lines) if sort else lines


def layout_sha256(state_dict: Mapping[str, Tensor], sort: bool = True) -> str:
    """sha256 of :func:`state_dict_layout` joined by newlines plus a trailing newline.

    The released checkpoint's layout hashes to ``0bbdbfed...c48b`` sorted and ``b5fca057...6c76``
    in state-dict order; use it to check a re-saved copy without loading it into a model.

    Examples
    --------
    >>> with torch.device("meta"):
    ...     net = S3D()
    >>> layout_sha256(net.state_dict())
    '0bbdbfed8302816cfca66d58901646e46fe7b2ce6b1d6f93776efee9fe80c48b'
    """
    text = "\n".join(state_dict_layout(state_dict, sort=sort)) + "\n"
    return hashlib.sha256(text.encode()).hexdigest()


def _expected_layout(with_text: bool) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    with torch.device("meta"):
        model = S3D(with_text=with_text)
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def load_s3d_state_dict(path: str | Path, *, require_text: bool = True) -> dict[str, Tensor]:
    """Read and check ``s3d_howto100m.pth`` (never executes pickled code).

    Parameters
    ----------
    path : str or Path
        The user's checkpoint: a bare ``state_dict`` of 537 entries (legacy or zip format).
        A ``{"state_dict": ...}``/``{"model": ...}`` wrapper or a ``module.`` prefix on every key
        is removed; missing ``*.num_batches_tracked`` counters are added as 0.
    require_text : bool
        If False, the ``text_module.*`` keys may be absent (a video-only copy).

    Returns
    -------
    dict of str to Tensor
        Float entries as float32, in the official key order.

    Raises
    ------
    ValueError
        Naming the file and the offending keys: unreadable or refused file, missing or
        unexpected keys, wrong shapes, non-tensor values.

    Notes
    -----
    Loaded with ``torch.load(weights_only=True)`` through :func:`nortonkit.io.safe_torch_load`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "bad.pth"
    >>> torch.save({"fc.weight": torch.zeros(512, 1024)}, p)
    >>> load_s3d_state_dict(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../bad.pth: not an S3D HowTo100M state_dict: 460 missing keys (e.g. [...
    """
    from nortonkit.io import safe_torch_load

    path = Path(path)
    obj = safe_torch_load(path)
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            if wrapper in obj and isinstance(obj[wrapper], Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{path}: expected a non-empty state_dict (mapping of key -> tensor), "
                         f"got {type(obj).__name__}")
    sd = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    bad = [k for k, v in sd.items() if not isinstance(v, Tensor)]
    if bad:
        raise ValueError(f"{path}: {len(bad)} entries are not tensors, e.g. {bad[:3]}")
    expected = _expected_layout(with_text=True)
    for key in expected:
        if key.endswith(".num_batches_tracked") and key not in sd:
            sd[key] = torch.tensor(0, dtype=torch.int64)
    optional = set() if require_text else {k for k in expected if k.startswith("text_module.")}
    missing = [k for k in expected if k not in sd and k not in optional]
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[:4]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:4]})")
        raise ValueError(f"{path}: not an S3D HowTo100M state_dict: {'; '.join(parts)}; "
                         f"expected the {len(expected)} keys of s3d_howto100m.pth")
    out: dict[str, Tensor] = {}
    for key, (shape, dtype) in expected.items():
        if key not in sd:
            continue
        t = sd[key]
        if tuple(t.shape) != shape:
            raise ValueError(f"{path}: {key}: expected shape {shape}, got {tuple(t.shape)}")
        if dtype.is_floating_point:
            if not t.is_floating_point():
                raise ValueError(f"{path}: {key}: expected a floating tensor, got {t.dtype}")
            t = t.to(torch.float32)
        else:
            t = t.to(dtype)
        out[key] = t
    return out


def load_s3d(path: str | Path, *, with_text: bool = False,
             device: str | torch.device = "cpu") -> S3D:
    """Build :class:`S3D` in eval mode from the user's ``s3d_howto100m.pth``.

    Parameters
    ----------
    path : str or Path
        Checkpoint path (never downloaded; see ``data_recipes/EXTRACT.md``).
    with_text : bool
        Also load the text branch (needs the ``text_module.*`` keys).
    device : str or torch.device
        Where to put the model.

    Returns
    -------
    S3D
        Strictly loaded (every key matched), ``eval()`` mode, ``requires_grad=False``.

    Notes
    -----
    The official extractor does ``load_state_dict(torch.load(path))`` (strict) and ``eval()``;
    train-mode BatchNorm would change the features by ~0.2.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s3d_video_only.pth"
    >>> torch.save(S3D(with_text=False).state_dict(), p)
    >>> load_s3d(p).training
    False
    """
    sd = load_s3d_state_dict(path, require_text=with_text)
    if not with_text:
        sd = {k: v for k, v in sd.items() if not k.startswith("text_module.")}
    with torch.device("meta"):
        model = S3D(with_text=with_text)
    model.load_state_dict(sd, strict=True, assign=True)
    model.requires_grad_(False)
    return model.eval().to(device)


# --------------------------------------------------------------------------- text branch


def load_s3d_dictionary(path: str | Path, num_embeddings: int = NUM_EMBEDDINGS) -> list[str]:
    """Read ``s3d_dict.npy``: word ``i`` of the array gets token id ``i + 1``.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file holding a 1-D fixed-width unicode array (the released file is most
        likely ``<U22`` with 66,249 words). Read with ``allow_pickle=False``: a pickled object
        array is refused rather than unpickled, as the official ``np.load(path)`` would too.
    num_embeddings : int
        Rows of the word embedding; the dictionary may hold at most ``num_embeddings - 1``.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "dict.npy"
    >>> np.save(p, np.array(["open", "door"]))
    >>> load_s3d_dictionary(p)
    ['open', 'door']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dictionary file not found")
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise ValueError(f"{path}: not a readable .npy file (no NumPy header)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"{path}: holds a pickled object array; expected a plain unicode "
                             "string array (np.save(path, np.array(words)))") from None
        raise ValueError(f"{path}: not a readable .npy file: {e}") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy file: {e}") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path}: expected a single .npy array, got {type(arr).__name__}")
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    if arr.dtype.kind != "U" or arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{path}: expected a non-empty 1-D unicode string array, got dtype "
                         f"{arr.dtype} shape {arr.shape}")
    if arr.size > num_embeddings - 1:
        raise ValueError(f"{path}: {arr.size} words do not fit {num_embeddings} embedding rows "
                         f"(at most {num_embeddings - 1} words + padding row 0)")
    return [str(w) for w in arr.tolist()]


def build_word_to_id(words: Iterable[str]) -> dict[str, int]:
    """Map word ``i`` to id ``i + 1`` (0 is padding); a repeated word keeps its last id.

    Examples
    --------
    >>> build_word_to_id(["open", "door"])
    {'open': 1, 'door': 2}
    """
    return {w: i + 1 for i, w in enumerate(words)}


_WORD_RE = re.compile(r"[\w']+")


def tokenize_s3d(sentences: Sequence[str], word_to_id: Mapping[str, int],
                 max_words: int = MAX_WORDS) -> Tensor:
    """Token ids of the MIL-NCE text branch.

    Parameters
    ----------
    sentences : sequence of str
        ``B`` sentences.
    word_to_id : mapping
        From :func:`build_word_to_id`.
    max_words : int
        Ids kept per sentence (16 in the released model).

    Returns
    -------
    Tensor
        ``shape (B, max_words)`` int64: the first ``max_words`` known words, right-padded with 0.

    Notes
    -----
    Lower-case, split with the regex ``[\\w']+`` (punctuation dropped, "don't" kept whole),
    drop out-of-vocabulary words, truncate or pad. A sentence with no known word is all zeros.

    Examples
    --------
    >>> vocab = build_word_to_id(["open", "door", "cut", "tomato", "the"])
    >>> tokenize_s3d(["Open the door!", "zebra"], vocab, max_words=4).tolist()
    [[1, 5, 2, 0], [0, 0, 0, 0]]
    """
    check_int_at_least("max_words", max_words, 1)
    if isinstance(sentences, str):
        raise ValueError("sentences: expected a sequence of strings, got a single str")
    ids = torch.zeros(len(sentences), max_words, dtype=torch.int64)
    for i, sentence in enumerate(sentences):
        words = _WORD_RE.findall(str(sentence).lower())
        known = [word_to_id[w] for w in words if w in word_to_id][:max_words]
        ids[i, : len(known)] = torch.tensor(known, dtype=torch.int64)
    return ids


# --------------------------------------------------------------------------- video input


class FrameGeometry(NamedTuple):
    """Scaled size and centre-crop offsets of the official ``scale`` + ``crop`` filters."""

    scaled_width: int
    scaled_height: int
    crop_x: int
    crop_y: int


def frame_geometry(width: int, height: int, size: int = FRAME_SIZE) -> FrameGeometry:
    """Short side to ``size`` (long side truncated), then a centred ``size`` x ``size`` crop.

    Examples
    --------
    >>> frame_geometry(320, 240)
    FrameGeometry(scaled_width=298, scaled_height=224, crop_x=37, crop_y=0)
    >>> frame_geometry(240, 426)
    FrameGeometry(scaled_width=224, scaled_height=397, crop_x=0, crop_y=86)
    """
    check_int_at_least("width", width, 1)
    check_int_at_least("height", height, 1)
    if width >= height:
        w, h = int(width * size / height), size
    else:
        w, h = size, int(height * size / width)
    return FrameGeometry(w, h, int((w - size) / 2), int((h - size) / 2))


def _rotation_filters(rotation_ccw: float) -> list[tuple[str, str | None]]:
    # The ffmpeg CLI's autorotate: theta = -display rotation, in [0, 360).
    theta = (-round(rotation_ccw)) % 360
    return {90: [("transpose", "clock")], 180: [("hflip", None), ("vflip", None)],
            270: [("transpose", "cclock")]}.get(theta, [])


def _pull_all(graph: Any) -> Iterator[np.ndarray]:
    while True:
        try:
            frame = graph.pull()
        except (BlockingIOError, EOFError):  # av.error.* subclass both builtins
            return
        yield frame.to_ndarray()  # (H, W, 3) uint8


def iter_frames(path: str | Path, *, fps: int = CHUNK_FPS, size: int = FRAME_SIZE,
                rotation: Literal["auto", "official"] = "auto") -> Iterator[np.ndarray]:
    """Decode a video like the official extractor's ffmpeg command, one RGB frame at a time.

    Parameters
    ----------
    path : str or Path
        Any file FFmpeg reads; the first video stream is used, audio is ignored.
    fps, size : int
        Output rate and crop size (30 and 224 for the released features).
    rotation : {"auto", "official"}
        Rotated videos (display-matrix side data, e.g. phone videos) are rotated upright like
        the ffmpeg CLI does. ``"auto"`` sizes the scale from the upright frame (no distortion);
        ``"official"`` sizes it from the coded frame as the official extractor's ffprobe step
        did, which stretches 90/270-degree videos. Both agree for unrotated videos.

    Yields
    ------
    numpy.ndarray
        ``shape (size, size, 3)`` uint8 RGB frames at ``fps``.

    Raises
    ------
    ValueError
        Naming the file: unreadable or empty file, no video stream, zero decoded frames, or a
        resolution change mid-stream. Undecodable packets are skipped (as the ffmpeg CLI does)
        with a ``RuntimeWarning`` naming the file.

    Notes
    -----
    Norton Appendix A: 30 fps input to S3D. The PyAV filter graph ``buffer -> fps=30 ->
    scale=W:H:flags=bicubic -> crop=size:size:x:y -> format=rgb24 -> buffersink`` is the same
    libavfilter chain as the official ``ffmpeg -filter_complex`` command, so frames are
    byte-identical to it. Output frame ``k`` (time ``k / fps``) shows the source frame whose
    timestamp rounds to the latest slot ``<= k``; ``round(duration * fps)`` frames come out.

    Examples
    --------
    >>> import tempfile, pathlib, av
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "grey.mp4"
    >>> with av.open(str(p), "w") as c:
    ...     s = c.add_stream("mpeg4", rate=25)
    ...     s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    ...     for i in range(5):
    ...         f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8))
    ...         c.mux(s.encode(f))
    ...     c.mux(s.encode())
    >>> frames = list(iter_frames(p, size=32))
    >>> len(frames), frames[0].shape, frames[0].dtype
    (6, (32, 32, 3), dtype('uint8'))
    """
    import av

    check_int_at_least("fps", fps, 1)
    check_int_at_least("size", size, 2)
    check_choice("rotation", rotation, ("auto", "official"))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot open as a video file: {e}") from None
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            raise ValueError(f"{path}: no video stream (streams found: {kinds or 'none'})")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        graph, coded, skipped = None, None, 0
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                skipped += 1
                continue
            for frame in frames:
                if graph is None:
                    coded = (frame.width, frame.height)
                    graph = _build_graph(stream, frame, fps, size, rotation)
                elif (frame.width, frame.height) != coded:
                    raise ValueError(f"{path}: resolution changes mid-stream from {coded} to "
                                     f"{(frame.width, frame.height)}; not supported")
                graph.push(frame)
                yield from _pull_all(graph)
        if skipped:
            warnings.warn(f"{path}: skipped {skipped} undecodable packet(s)", RuntimeWarning,
                          stacklevel=2)
        if graph is None:
            raise ValueError(f"{path}: the video stream decoded to 0 frames")
        graph.push(None)  # flush: the fps filter emits its trailing duplicates
        yield from _pull_all(graph)


def _build_graph(stream: Any, frame: Any, fps: int, size: int, rotation: str) -> Any:
    import av

    rot = _rotation_filters(frame.rotation)
    w, h = frame.width, frame.height
    if rotation == "auto" and rot and rot[0][0] == "transpose":
        w, h = h, w
    geo = frame_geometry(w, h, size)
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(template=stream)]
    nodes += [graph.add(name, args) if args else graph.add(name) for name, args in rot]
    nodes += [
        graph.add("fps", str(fps)),
        graph.add("scale", f"{geo.scaled_width}:{geo.scaled_height}:flags=bicubic"),
        graph.add("crop", f"{size}:{size}:{geo.crop_x}:{geo.crop_y}"),
        graph.add("format", "rgb24"),
        graph.add("buffersink"),
    ]
    for a, b in zip(nodes, nodes[1:]):
        a.link_to(b)
    graph.configure()
    return graph


def iter_chunks(path: str | Path, *, fps: int = CHUNK_FPS, size: int = FRAME_SIZE,
                rotation: Literal["auto", "official"] = "auto",
                last_chunk: Literal["pad", "repeat", "drop"] = "pad") -> Iterator[np.ndarray]:
    """Stream one-second uint8 chunks of ``fps`` frames; nothing else is held in memory.

    Parameters
    ----------
    path, fps, size, rotation
        As in :func:`iter_frames`.
    last_chunk : {"pad", "repeat", "drop"}
        A final partial second is completed with black frames (``"pad"``, the official
        behaviour and the one the released features have), with copies of its last frame
        (``"repeat"``), or dropped (``"drop"``).

    Yields
    ------
    numpy.ndarray
        ``shape (V, H, W, 3)`` uint8 with ``V = fps``; chunk ``i`` holds frames
        ``[i * fps, (i + 1) * fps)``, i.e. second ``[i, i + 1)``. ``ceil(frames / fps)`` chunks
        (one fewer with ``"drop"`` when the last is partial).

    Notes
    -----
    Norton Appendix A: "one video token per second at 30 fps". The official extractor holds
    the whole video as float32 (18 MB per second); this keeps one uint8 chunk (4.5 MB).

    Examples
    --------
    >>> import tempfile, pathlib, av
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "v.mp4"
    >>> with av.open(str(p), "w") as c:
    ...     s = c.add_stream("mpeg4", rate=30)
    ...     s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    ...     for i in range(45):
    ...         c.mux(s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 200, np.uint8))))
    ...     c.mux(s.encode())
    >>> chunks = list(iter_chunks(p, size=32))
    >>> [c.shape for c in chunks], bool(chunks[1][14].min() > 150), int(chunks[1][15:].max())
    ([(30, 32, 32, 3), (30, 32, 32, 3)], True, 0)
    """
    check_choice("last_chunk", last_chunk, ("pad", "repeat", "drop"))
    buf = np.empty((fps, size, size, 3), np.uint8)
    n = 0
    for frame in iter_frames(path, fps=fps, size=size, rotation=rotation):
        buf[n] = frame
        n += 1
        if n == fps:
            yield buf
            buf, n = np.empty((fps, size, size, 3), np.uint8), 0
    if n and last_chunk != "drop":
        buf[n:] = 0 if last_chunk == "pad" else buf[n - 1]
        yield buf


_UINT8_TO_UNIT = torch.arange(256, dtype=torch.float32) / 255.0  # exact IEEE x / 255


def chunks_to_input(chunks: Tensor) -> Tensor:
    """uint8 chunks ``shape (B, V, H, W, 3)`` -> model input ``shape (B, 3, V, H, W)`` in [0, 1].

    Values are ``x / 255`` in float32 exactly as the official preprocessing computes them on
    the CPU (a lookup table keeps GPUs from using a reciprocal multiply); no mean/std.

    Examples
    --------
    >>> chunks_to_input(torch.full((1, 2, 2, 2, 3), 255, dtype=torch.uint8)).shape
    torch.Size([1, 3, 2, 2, 2])
    """
    check_tensor("chunks", chunks, ndim=5, floating=False, shape=(None, None, None, 3))
    if chunks.dtype != torch.uint8:
        raise ValueError(f"chunks: expected dtype torch.uint8, got {chunks.dtype}")
    lut = _UINT8_TO_UNIT.to(chunks.device)
    x = lut[chunks.int()]  # (B, V, H, W, 3)
    return x.permute(0, 4, 1, 2, 3).contiguous()  # (B, 3, V, H, W)


def embed_chunks(model: S3D, chunks: Tensor, *, amp: bool = False) -> Tensor:
    """L2-normalised ``video_embedding`` ``shape (B, 512)`` float32 of uint8 chunks.

    Parameters
    ----------
    model : S3D
        In eval mode; the chunks are moved to its device.
    chunks : Tensor
        ``shape (B, V, H, W, 3)`` uint8 from :func:`iter_chunks`.
    amp : bool
        Autocast to float16 on CUDA (faster, not bit-faithful; off by default).

    Notes
    -----
    Stored feature of Norton's data: :math:`e / \\max(\\lVert e \\rVert_2, 10^{-12})`
    (``F.normalize``), as the official extractor's ``--l2_normalize 1``.

    Examples
    --------
    >>> net = S3D(with_text=False).eval()
    >>> e = embed_chunks(net, torch.zeros(1, 6, 32, 32, 3, dtype=torch.uint8))
    >>> e.shape, round(float(e.norm()), 4)
    (torch.Size([1, 512]), 1.0)
    """
    if model.training:
        raise ValueError("model: expected eval mode (BatchNorm running statistics); "
                         "call model.eval()")
    device = next(model.parameters()).device
    if amp and device.type != "cuda":
        raise ValueError(f"amp: autocast is only supported on CUDA, model is on {device}")
    with torch.inference_mode():
        x = chunks_to_input(chunks.to(device, non_blocking=True))
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            emb = model(x).video_embedding
        return F.normalize(emb.float(), dim=1, eps=1e-12)


class _Raised(NamedTuple):
    exc: BaseException


def _prefetch(factory: Callable[[], Iterator[Any]], depth: int) -> Iterator[Any]:
    """Run ``factory()`` in a thread, ``depth`` items ahead; errors re-raise in the caller."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        gen = factory()
        try:
            for item in gen:
                if not put(item):
                    return
            put(end)
        except BaseException as e:  # forwarded to the consumer
            put(_Raised(e))
        finally:
            gen.close()

    thread = threading.Thread(target=work, name="s3d-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


def extract_features(path: str | Path, model: S3D, *, batch_size: int = 1, amp: bool = False,
                     fps: int = CHUNK_FPS, size: int = FRAME_SIZE,
                     rotation: Literal["auto", "official"] = "auto",
                     last_chunk: Literal["pad", "repeat", "drop"] = "pad", prefetch: int = 2,
                     on_chunks: Callable[[int], None] | None = None) -> np.ndarray:
    """Per-second S3D features of one video, as stored in Norton's ``<video_id>.npy`` files.

    Parameters
    ----------
    path : str or Path
        Video file.
    model : S3D
        From :func:`load_s3d`, in eval mode, on the device to use.
    batch_size : int
        Chunks (seconds) per forward pass; batches never mix videos, so results do not depend
        on what else is extracted.
    amp : bool
        CUDA autocast (see :func:`embed_chunks`).
    fps, size, rotation, last_chunk
        As in :func:`iter_chunks`; the defaults reproduce the released features.
    prefetch : int
        Batches decoded ahead in a background thread (0: decode inline).
    on_chunks : callable, optional
        Called with the number of chunks after each batch (progress bars).

    Returns
    -------
    numpy.ndarray
        ``shape (N, 512)`` float16, rows L2-normalised (norms 1 within 1e-3).

    Raises
    ------
    ValueError
        Naming the file when it cannot be decoded or yields no complete chunk.

    Notes
    -----
    Norton Appendix A: one S3D token per second at 30 fps. Memory stays flat in the video
    length: uint8 chunks are decoded, batched, moved to the device and only then converted.

    Examples
    --------
    >>> import tempfile, pathlib, av
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "v.mp4"
    >>> with av.open(str(p), "w") as c:
    ...     s = c.add_stream("mpeg4", rate=30)
    ...     s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    ...     for i in range(40):
    ...         c.mux(s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8))))
    ...     c.mux(s.encode())
    >>> feats = extract_features(p, S3D(with_text=False).eval(), size=32, batch_size=2)
    >>> feats.shape, feats.dtype
    ((2, 512), dtype('float16'))
    """
    check_int_at_least("batch_size", batch_size, 1)
    check_int_at_least("prefetch", prefetch, 0)
    cuda = next(model.parameters()).device.type == "cuda"

    def batches() -> Iterator[Tensor]:
        pending: list[np.ndarray] = []
        for chunk in iter_chunks(path, fps=fps, size=size, rotation=rotation,
                                 last_chunk=last_chunk):
            pending.append(chunk)
            if len(pending) == batch_size:
                yield _stack(pending, cuda)
                pending = []
        if pending:
            yield _stack(pending, cuda)

    source = _prefetch(batches, prefetch) if prefetch else batches()
    rows: list[Tensor] = []
    for batch in source:
        rows.append(embed_chunks(model, batch, amp=amp).cpu())
        if on_chunks is not None:
            on_chunks(batch.shape[0])
    if not rows:
        raise ValueError(f"{path}: no complete one-second chunk (last_chunk={last_chunk!r})")
    return torch.cat(rows).numpy().astype(np.float16)  # (N, 512)


def _stack(chunks: list[np.ndarray], pin: bool) -> Tensor:
    batch = torch.from_numpy(np.stack(chunks))  # (B, V, H, W, 3) uint8
    return batch.pin_memory() if pin else batch


def expected_rows(n_frames: int, source_fps: float, fps: int = CHUNK_FPS) -> int:
    """Rows for a constant-rate video of ``n_frames`` at ``source_fps`` (``"pad"`` policy).

    ``ceil(round(n_frames * fps / source_fps) / fps)``, i.e. about ``ceil(duration)``.

    Examples
    --------
    >>> expected_rows(88, 25), expected_rows(100, 30), expected_rows(50, 24)
    (4, 4, 3)
    """
    out_frames = math.floor(n_frames * fps / source_fps + 0.5)
    return -(-out_frames // fps)
