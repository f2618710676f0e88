"""The S3D-G network with the module layout of the released HowTo100M MIL-NCE checkpoint.

* The private building blocks (``_STConv3D``, ``_SelfGating``, ``_InceptionBlock``,
  ``_MaxPool3dStaticSame``) keep the official module names, shapes and quirks, including the
  static TF-"SAME" pooling, so the released ``state_dict`` loads key for key.
* :func:`space_to_depth` is the 2x2x2 stem; :class:`S3D` chains it with the trunk and the
  ``fc`` head and optionally holds the text branch (:class:`~nortonkit.s3d.text.SentenceEmbedding`);
  :class:`S3DOutput` names its outputs.

Shapes use the package glossary plus ``V`` frames per chunk and ``H``/``W`` frame height/width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from nortonkit.validation import check_tensor

from .text import EMBED_DIM, NUM_EMBEDDINGS, SentenceEmbedding

__all__ = ["S3D", "S3DOutput", "space_to_depth"]

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
