r"""Clip-caption similarities: Norton's token soft-maximum (Eq. 5), pooled cosine, min-max, fusion.

Orientation: every matrix returned here has **clips as rows and captions as columns**,
``S[a, b]`` = clip ``a`` against caption ``b``, shape (M, N). Token inputs are
``video_tokens (M, V, D)`` with ``video_mask (M, V)`` and ``text_tokens (N, T, D)`` with
``text_mask (N, T)``; masks are bool with True = valid.

The fine-grained similarity is computed per block of clips and captions as one matrix product
``(m V, D+2) @ (D+2, n T)`` followed by log-sum-exps over the word axis and the frame axis, so
that ``chunk_size`` bounds the memory to a ``(m, V, n, T)`` block and the full
``(M, V, N, T)`` tensor (2.3 GB at Norton's pre-training shape) never exists; clips and
captions are sorted by valid length so that each block skips the padding
(``benchmarks/results/b2.md``: faster than the naive einsum, with under 5 % of its memory).

Mixed precision (``precision="bf16"`` / ``"fp16"``, and ``"auto"`` under autocast): the matrix
product of each block runs in half precision on tensor cores, with the inputs normalised in
float32 first and the log-sum-exps, the means and the masking in float32 after it. The error
against a float64 reference is bounded in ``tests/test_similarity_precision.py``: for unit
tokens, alpha in {0.1, 1} and lengths 1-64 with padding, the similarity, a contrastive loss on
it and its gradients (relative to their largest entry) are within 1e-2, 1e-2 and 5e-2 (bf16;
measured 3.5e-3, 3.0e-3, 1.5e-2) and 2e-3, 2e-3 and 1e-2 (fp16; measured 5.4e-4, 3.0e-4,
2.3e-3) of it.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor

from .validation import (
    check_choice,
    check_finite,
    check_mask,
    check_nonempty_mask,
    check_positive,
    check_tensor,
)

__all__ = [
    "PRECISIONS",
    "DirectionalSimilarity",
    "matmul_dtype",
    "directional_lse_similarity",
    "token_lse_similarity",
    "mean_pooled_similarity",
    "minmax_normalize",
    "fuse_similarity",
    "official_fused_similarity",
]

LseMode = Literal["exact", "official"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}
# fp16 tops out at 65504: the padded logits, about -(2e4 + 5/alpha), must stay finite.
_FP16_MIN_ALPHA = 2e-4

# One exp() pass serves both directions when every valid logit fits in exp's normal range after
# shifting by the bound 1/alpha (tokens are unit vectors, so |<v, t>| <= 1): 2/alpha <= limit.
_SINGLE_PASS_LIMIT = {torch.float32: 60.0, torch.float64: 600.0}


class DirectionalSimilarity(NamedTuple):
    """The two halves of Norton Eq. (5), each of shape (M, N), clips x captions.

    Attributes
    ----------
    v2t : shape (M, N), mean over the valid frames of clip ``a`` of the soft maximum over the
        valid words of caption ``b`` (the first term of Eq. 5).
    t2v : shape (M, N), mean over the valid words of caption ``b`` of the soft maximum over the
        valid frames of clip ``a`` (the second term of Eq. 5).
    """

    v2t: Tensor
    t2v: Tensor

    @property
    def mean(self) -> Tensor:
        """``(v2t + t2v) / 2``, shape (M, N): the similarity of Eq. (5)."""
        return (self.v2t + self.t2v) / 2


def matmul_dtype(precision: Precision, device: torch.device, alpha: float = 1.0):
    """The dtype of Eq. 5's matrix products for ``precision`` on ``device`` (None: float32).

    Parameters
    ----------
    precision : ``"fp32"`` (the compute dtype, float32 or float64), ``"bf16"``, ``"fp16"``, or
        ``"auto"``: the autocast dtype when autocast is on for ``device.type`` (bf16 or fp16;
        fp16 falls back to float32 when ``alpha`` is below 2e-4, where its range is too small),
        else float32.
    device : where the tokens live.
    alpha : the soft-maximum temperature (fp16 needs alpha >= 2e-4).

    Returns
    -------
    ``torch.bfloat16``, ``torch.float16`` or None (no half-precision products).

    Examples
    --------
    >>> matmul_dtype("bf16", torch.device("cpu"))
    torch.bfloat16
    >>> matmul_dtype("auto", torch.device("cpu")) is None   # no autocast here
    True
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     matmul_dtype("auto", torch.device("cpu"))
    torch.bfloat16
    """
    check_choice("precision", precision, PRECISIONS)
    if precision == "auto":
        if not torch.is_autocast_enabled(device.type):
            return None
        dtype = torch.get_autocast_dtype(device.type)
        if dtype == torch.float16 and alpha < _FP16_MIN_ALPHA:
            return None
        return dtype if dtype in (torch.bfloat16, torch.float16) else None
    if precision == "fp16" and alpha < _FP16_MIN_ALPHA:
        raise ValueError(
            f"precision: 'fp16' needs alpha >= {_FP16_MIN_ALPHA} (its range ends at 65504 and "
            f"the logits scale as 1/alpha), got alpha = {alpha}; use 'bf16' or 'fp32'"
        )
    return _HALF.get(precision)


def _check_tokens(video_tokens, video_mask, text_tokens, text_mask) -> None:
    check_tensor("video_tokens", video_tokens, ndim=3)
    check_tensor("text_tokens", text_tokens, ndim=3)
    for name, mask in (("video_mask", video_mask), ("text_mask", text_mask)):
        if mask is None:
            raise ValueError(f"{name}: expected a bool tensor (True = valid), got None")
    m, v, d = video_tokens.shape
    n, t, dt = text_tokens.shape
    if d != dt:
        raise ValueError(
            f"text_tokens: expected feature dim D = {d} (from video_tokens "
            f"{tuple(video_tokens.shape)}), got shape {tuple(text_tokens.shape)}"
        )
    if 0 in (m, v, d, n, t):
        raise ValueError(
            "video_tokens, text_tokens: expected non-empty (M, V, D) and (N, T, D), got "
            f"{tuple(video_tokens.shape)} and {tuple(text_tokens.shape)}"
        )
    check_mask("video_mask", video_mask, (m, v))
    check_mask("text_mask", text_mask, (n, t))
    check_nonempty_mask("video_mask", video_mask, "frames")
    check_nonempty_mask("text_mask", text_mask, "words")
    check_finite("video_tokens", video_tokens, video_mask[..., None])
    check_finite("text_tokens", text_tokens, text_mask[..., None])


def _check_chunk(chunk_size) -> tuple[int | None, int | None]:
    if chunk_size is None:
        return None, None
    pair = chunk_size if isinstance(chunk_size, tuple) else (chunk_size, None)
    ok = len(pair) == 2 and all(
        c is None or (isinstance(c, int) and not isinstance(c, bool) and c >= 1) for c in pair
    )
    if not ok:
        raise ValueError(
            "chunk_size: expected None, an integer >= 1 (clips per chunk) or a pair "
            f"(clips, captions) of integers >= 1, got {chunk_size!r}"
        )
    return pair[0], pair[1]


def _augmented_rows(
    tokens: Tensor,
    mask: Tensor,
    rows: Tensor,
    length: int,
    dtype: torch.dtype,
    scale: float,
    bias_valid: float,
    bias_pad: float,
    video_side: bool,
    mm_dtype: torch.dtype | None = None,
) -> Tensor:
    """Unit tokens of ``rows``, valid tokens first, cut to ``length``, shape (r, length, D+2).

    Eq. 5 ignores token order, so moving the valid tokens to the front lets a block of rows be
    cut to the longest valid length in it. Padding is zeroed before the normalisation (garbage,
    even NaN, never reaches the maths or the gradient). The two extra features fold the shift
    and the padding mask into the matrix product:
    ``<[v/a, 1, bv], [t, bt, 1]> = <v, t>/a + bt + bv``. With ``mm_dtype`` (half precision)
    the rows are built in ``dtype``, zero-padded to a multiple of 8 features (the tensor-core
    tile) and cast once: shape (r, length, D+2+pad) in ``mm_dtype``.
    """
    sub_mask = mask[rows]  # (r, L)
    front = torch.argsort((~sub_mask).to(torch.int32), dim=1, stable=True)[:, :length]
    valid = sub_mask.gather(1, front)  # (r, length), prefix masks
    x = tokens[rows[:, None], front].to(dtype)  # (r, length, D), one gather of what is needed
    x = F.normalize(torch.where(valid[..., None], x, x.new_zeros(())), dim=-1)
    bias = torch.where(valid, x.new_tensor(bias_valid), x.new_tensor(bias_pad))[..., None]
    one = torch.ones_like(bias)
    extra = [one, bias] if video_side else [bias, one]
    if mm_dtype is not None and (x.shape[-1] + 2) % 8:
        extra.append(x.new_zeros(*x.shape[:-1], -(x.shape[-1] + 2) % 8))
    out = torch.cat([x * scale if scale != 1.0 else x, *extra], dim=-1)
    return out if mm_dtype is None else out.to(mm_dtype)


def _lse_block(
    va: Tensor, w_v: Tensor, ta: Tensor, w_t: Tensor, single: bool
) -> tuple[Tensor, Tensor]:
    """Both halves of Eq. 5 for one block of clips and captions, before the shift is added back.

    ``va`` (m, V', D+2) and ``ta`` (n, T', D+2) are augmented, valid-first tokens cut to the
    block's longest valid lengths; ``w_v`` (m, V') and ``w_t`` (n, T') are the averaging weights
    ``alpha * valid / count`` (zero on padding), so each mean is one weighted reduction.
    Half-precision ``va`` and ``ta`` give a half-precision product, cast to the weights' dtype
    (float32) before anything else touches it.
    """
    m, nv_cut, d2 = va.shape
    n, nt_cut, _ = ta.shape
    logits = va.reshape(m * nv_cut, d2) @ ta.reshape(n * nt_cut, d2).T  # (m V', n T')
    # "avd,btd->avbt": r/alpha - shift, pad -> -big; float32 from here on
    logits = logits.view(m, nv_cut, n, nt_cut).to(w_v.dtype)
    if single:  # every valid logit in [-2/alpha, 0]; padding is exactly 0 after exp
        e = logits.exp_()
        tiny = torch.finfo(e.dtype).tiny  # padded rows: log(tiny) * weight 0 = 0
        log_v2t = e.sum(dim=-1).clamp_min(tiny).log()  # (m, V', n) LSE over words
        log_t2v = e.sum(dim=1).clamp_min(tiny).log()  # (m, n, T') LSE over frames
    else:  # padded rows are all near -big: finite, and weighted by 0
        log_v2t = torch.logsumexp(logits, dim=-1)  # (m, V', n)
        log_t2v = torch.logsumexp(logits, dim=1)  # (m, n, T')
    v2t = torch.bmm(w_v[:, None, :], log_v2t).squeeze(1)  # (m, n): "av,avb->ab"
    t2v = (log_t2v * w_t[None]).sum(dim=-1)  # (m, n): "abt,bt->ab"
    return v2t, t2v


def directional_lse_similarity(
    video_tokens: Tensor,
    video_mask: Tensor,
    text_tokens: Tensor,
    text_mask: Tensor,
    alpha: float = 1.0,
    mode: LseMode = "exact",
    chunk_size: int | tuple[int | None, int | None] | None = None,
    precision: Precision = "auto",
) -> DirectionalSimilarity:
    r"""The two directional halves of Norton's fine-grained similarity (Eq. 5), clips x captions.

    .. math::
        \mathrm{v2t}_{ab} = \frac{1}{f_a}\sum_{i \le f_a} \alpha \log \sum_{j \le w_b}
            \exp(\langle v_a^i, t_b^j \rangle / \alpha), \qquad
        \mathrm{t2v}_{ab} = \frac{1}{w_b}\sum_{i \le w_b} \alpha \log \sum_{j \le f_a}
            \exp(\langle t_b^i, v_a^j \rangle / \alpha)

    with ``f_a`` the valid frames of clip ``a`` and ``w_b`` the valid words of caption ``b``.

    Parameters
    ----------
    video_tokens : shape (M, V, D), frame tokens of M clips (L2-normalised inside).
    video_mask : shape (M, V), bool, True = valid frame. Every clip needs one valid frame.
    text_tokens : shape (N, T, D), word tokens of N captions (L2-normalised inside).
    text_mask : shape (N, T), bool, True = valid word. Every caption needs one valid word.
    alpha : the soft-maximum temperature alpha > 0 (``lse_temperature``; Norton uses 1).
        ``alpha -> 0`` gives the max over tokens, ``alpha -> inf`` the mean + alpha*log(count).
    mode : ``"exact"`` (default) excludes padding from the log-sum-exp and from the mean.
        ``"official"`` reproduces the official code's padding leak: each padded frame adds
        ``alpha*log(w_b)`` and each padded word ``alpha*log(f_a)`` to the numerator of the mean,
        i.e. ``alpha*log(sum_j exp(r/alpha) - #masked_j)`` with ``r = 0`` on padding, summed over
        all ``V`` (``T``) positions and divided by the valid count. The result then depends on
        the padded lengths ``V`` and ``T`` of the given tensors.
    chunk_size : None (every block holds all clips), an int (clips per block) or a pair
        ``(clips, captions)`` per block (None in the pair = the default). Captions are always
        processed in groups (by default ``max(128, ceil(N / 8))`` captions), so a block is at
        most (clips, V, captions, T) floats; the full (M, V, N, T) tensor never exists. The
        result does not depend on the chunking (up to float rounding). With autograd on and
        ``chunk_size`` given, each block is recomputed in the backward pass (activation
        checkpointing), so training memory is also bounded by one block.
    precision : dtype of the matrix products (see :func:`matmul_dtype`): ``"fp32"`` (the
        inputs' dtype promoted to float32), ``"bf16"`` or ``"fp16"`` (tensor cores; the
        normalisation, log-sum-exps, means and masking stay in float32), or ``"auto"``
        (default): the autocast dtype when the call runs under autocast, else ``"fp32"``.
        Autocast itself is switched off inside, so nothing else runs in half precision.

    Returns
    -------
    DirectionalSimilarity with ``v2t`` and ``t2v``, each of shape (M, N), float32 (float64 for
    float64 inputs), whatever ``precision``.

    Notes
    -----
    Norton Eq. (5); ``(v2t + t2v) / 2`` is :func:`token_lse_similarity`. The official code
    min-max normalises each half separately before averaging (:func:`official_fused_similarity`).
    Padding values are ignored (they may be NaN). Valid tokens of zero norm have similarity 0.
    Implementation: per block, one matrix product ``(m V', D+2) @ (D+2, n T')`` whose two extra
    features add the shift and the padding mask; clips and captions are sorted by valid length
    and their valid tokens moved to the front (Eq. 5 ignores token order), so each block is cut
    to its longest valid clip and caption and padding costs no arithmetic. One ``exp`` pass
    serves both directions when ``2/alpha`` fits the dtype's exponent range (float32:
    alpha >= 1/30), else two ``torch.logsumexp`` passes.

    Examples
    --------
    >>> v = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])             # 1 clip, 2 frames
    >>> t = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])             # 1 caption, 1 word + pad
    >>> d = directional_lse_similarity(v, torch.ones(1, 2, dtype=torch.bool), t,
    ...                                torch.tensor([[True, False]]), alpha=0.1)
    >>> d.v2t, d.t2v                 # frames -> best word: (1 + 0)/2; word -> LSE(1, 0)
    (tensor([[0.5000]]), tensor([[1.0000]]))
    """
    _check_tokens(video_tokens, video_mask, text_tokens, text_mask)
    alpha = check_positive("alpha", alpha)
    check_choice("mode", mode, ("exact", "official"))
    cm, cn = _check_chunk(chunk_size)
    mm_dtype = matmul_dtype(precision, video_tokens.device, alpha)
    with torch.autocast(video_tokens.device.type, enabled=False):
        return _directional(video_tokens, video_mask, text_tokens, text_mask, alpha, mode, cm,
                            cn, chunk_size is not None, mm_dtype)


def _directional(video_tokens, video_mask, text_tokens, text_mask, alpha, mode, cm, cn,
                 chunked, mm_dtype) -> DirectionalSimilarity:
    """The body of :func:`directional_lse_similarity` on checked arguments, autocast off."""
    dtype = torch.promote_types(
        torch.promote_types(video_tokens.dtype, text_tokens.dtype), torch.float32
    )
    m, nv_pad, _ = video_tokens.shape
    n, nt_pad, _ = text_tokens.shape
    single = 2.0 / alpha <= _SINGLE_PASS_LIMIT.get(dtype, 60.0)
    shift = 1.0 / alpha if single else 0.0  # valid logits r/alpha - shift <= 0 when single
    big = 2.0 / alpha + 1e4  # padded logits sit this far below every valid one: exp() -> 0
    n_v, n_t = video_mask.sum(dim=1), text_mask.sum(dim=1)  # (M,), (N,)
    ord_v = torch.argsort(n_v, descending=True, stable=True)  # longest clips first
    ord_t = torch.argsort(n_t, descending=True, stable=True)
    n_v, n_t = n_v[ord_v], n_t[ord_t]
    len_v, len_t = n_v.tolist(), n_t.tolist()
    fv, ft = n_v.to(dtype), n_t.to(dtype)  # (M,), (N,) in sorted order
    w_v = (torch.arange(nv_pad, device=fv.device)[None] < n_v[:, None]) * (alpha / fv[:, None])
    w_t = (torch.arange(nt_pad, device=ft.device)[None] < n_t[:, None]) * (alpha / ft[:, None])
    # Caption groups in length order, each cut to its longest caption; by default groups of at
    # least 128 captions (large enough for an efficient matrix product).
    cn = cn or max(128, -(-n // 8))
    text_args = (dtype, 1.0, 0.0, -big, False, mm_dtype)
    groups = [
        (
            _augmented_rows(text_tokens, text_mask, ord_t[j : j + cn], len_t[j], *text_args),
            w_t[j : j + cn, : len_t[j]],
        )
        for j in range(0, n, cn)
    ]  # (n', T', D+2) and (n', T') per group
    cm = cm or m
    checkpoint = chunked and torch.is_grad_enabled()
    checkpoint = checkpoint and (video_tokens.requires_grad or text_tokens.requires_grad)
    video_args = (dtype, 1.0 / alpha, -shift, -shift - big, True, mm_dtype)
    rows_v2t, rows_t2v = [], []
    for i in range(0, m, cm):
        rows = ord_v[i : i + cm]
        va_i = _augmented_rows(video_tokens, video_mask, rows, len_v[i], *video_args)
        wv_i = w_v[i : i + cm, : len_v[i]]  # (m', V')
        cols_v2t, cols_t2v = [], []
        for ta_j, wt_j in groups:
            args = (va_i, wv_i, ta_j, wt_j, single)
            if checkpoint:
                out = torch.utils.checkpoint.checkpoint(_lse_block, *args, use_reentrant=False)
            else:
                out = _lse_block(*args)
            cols_v2t.append(out[0])
            cols_t2v.append(out[1])
        rows_v2t.append(torch.cat(cols_v2t, dim=1))
        rows_t2v.append(torch.cat(cols_t2v, dim=1))
    inv_v, inv_t = torch.argsort(ord_v), torch.argsort(ord_t)  # back to the caller's order
    v2t = torch.cat(rows_v2t, dim=0).index_select(0, inv_v).index_select(1, inv_t)  # (M, N)
    t2v = torch.cat(rows_t2v, dim=0).index_select(0, inv_v).index_select(1, inv_t)  # (M, N)
    if shift:
        v2t, t2v = v2t + alpha * shift, t2v + alpha * shift
    if mode == "official":
        # Each padded frame adds alpha*log(n_t), each padded word alpha*log(n_v) (§2.3.3-4).
        fv, ft = fv[inv_v], ft[inv_t]  # caller's order
        v2t = v2t + ((nv_pad - fv) * alpha / fv)[:, None] * ft.log()[None, :]
        t2v = t2v + fv.log()[:, None] * ((nt_pad - ft) * alpha / ft)[None, :]
    return DirectionalSimilarity(v2t, t2v)


def token_lse_similarity(
    video_tokens: Tensor,
    video_mask: Tensor,
    text_tokens: Tensor,
    text_mask: Tensor,
    alpha: float = 1.0,
    mode: LseMode = "exact",
    chunk_size: int | tuple[int | None, int | None] | None = None,
    precision: Precision = "auto",
) -> Tensor:
    r"""Norton's fine-grained clip-caption similarity (Eq. 5), shape (M, N), clips x captions.

    .. math::
        S_{ab} = \frac12 \Big( \frac{1}{f}\sum_{i=1}^{f} \alpha \log \sum_{j=1}^{w}
            e^{\langle v_a^i, t_b^j\rangle/\alpha} + \frac{1}{w}\sum_{i=1}^{w} \alpha \log
            \sum_{j=1}^{f} e^{\langle t_b^i, v_a^j\rangle/\alpha} \Big)

    Parameters
    ----------
    video_tokens : shape (M, V, D), frame tokens; video_mask : shape (M, V), bool, True = valid.
    text_tokens : shape (N, T, D), word tokens; text_mask : shape (N, T), bool, True = valid.
    alpha, mode, chunk_size, precision : as in :func:`directional_lse_similarity`.

    Returns
    -------
    Tensor of shape (M, N): ``S[a, b]`` = clip ``a`` vs caption ``b`` (float32 for half inputs).

    Notes
    -----
    Norton Eq. (5), the "soft-maximum" of token similarities (FILIP-style max-pooling as
    ``alpha -> 0``). ``mode="official"`` reproduces the official padding leak
    (docs/protocols.md §2.3 items 3-4, §9 item 3); ``"exact"`` is the paper's formula.
    No min-max normalisation happens here (see :func:`official_fused_similarity`).

    Examples
    --------
    >>> v = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> t = torch.tensor([[[1.0, 0.0], [5.0, 5.0]]])
    >>> s = token_lse_similarity(v, torch.ones(1, 2, dtype=torch.bool),
    ...                          t, torch.tensor([[True, False]]), alpha=0.1)
    >>> s
    tensor([[0.7500]])
    """
    return directional_lse_similarity(
        video_tokens, video_mask, text_tokens, text_mask, alpha, mode, chunk_size, precision
    ).mean


def mean_pooled_similarity(video_emb: Tensor, text_emb: Tensor, normalize: bool = True) -> Tensor:
    r"""Similarity of pooled clip and caption vectors, shape (M, N), clips x captions.

    .. math::
        S_{ab} = \frac{\langle \bar v_a, \bar t_b \rangle}{\|\bar v_a\| \|\bar t_b\|}
        \quad (\texttt{normalize=True}), \qquad
        S_{ab} = \langle \bar v_a, \bar t_b \rangle \quad (\texttt{normalize=False})

    Parameters
    ----------
    video_emb : shape (M, D), pooled clip vectors.
    text_emb : shape (N, D), pooled caption vectors.
    normalize : cosine similarity (True; the official L_video input) or the raw dot product
        (False; the official L_clip logits and every official retrieval score).

    Returns
    -------
    Tensor of shape (M, N). A zero vector has cosine 0 with everything.

    Notes
    -----
    The "clip-level" similarity ``S_hat`` of Norton Eq. (7)-(8) and the mean-pool term of the
    official fusion (docs/protocols.md §2.3 item 1).

    Examples
    --------
    >>> mean_pooled_similarity(torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    tensor([[0.6000, 0.8000]])
    >>> mean_pooled_similarity(torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 2.0]]), False)
    tensor([[8.]])
    """
    check_tensor("video_emb", video_emb, ndim=2)
    check_tensor("text_emb", text_emb, ndim=2)
    if video_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(
            f"text_emb: expected feature dim D = {video_emb.shape[1]} (from video_emb "
            f"{tuple(video_emb.shape)}), got shape {tuple(text_emb.shape)}"
        )
    check_finite("video_emb", video_emb)
    check_finite("text_emb", text_emb)
    if normalize:
        video_emb = F.normalize(video_emb, dim=-1)
        text_emb = F.normalize(text_emb, dim=-1)
    return video_emb @ text_emb.T  # (M, N): "ad,bd->ab", a clips, b captions


def minmax_normalize(x: Tensor, detach: bool = False) -> Tensor:
    r"""Global min-max normalisation of a similarity matrix to [0, 1] (the official code's).

    .. math::
        \tilde S = \frac{S - \min S}{\max S - \min S}

    with the min and max over **all** entries of ``x``: the result depends on the whole batch
    (an entry changes when another clip or caption enters the batch).

    Parameters
    ----------
    x : any shape, e.g. (M, N); at least two distinct values.
    detach : if True, the min and max are constants for autograd (§9 item 4). The official
        code does not detach them, so gradients also flow through the two extreme entries.

    Returns
    -------
    Tensor of the shape of ``x`` with values in [0, 1].

    Raises
    ------
    ValueError if ``max(x) == min(x)`` (a constant matrix has no scale to normalise by).

    Notes
    -----
    Not in the paper's equations; the official L_video applies it to the mean-pool cosine and to
    each half of Eq. (5) separately (docs/protocols.md §2.3 items 1, 3, 4; D7).

    Examples
    --------
    >>> minmax_normalize(torch.tensor([[1.0, 3.0], [2.0, 5.0]]))
    tensor([[0.0000, 0.5000],
            [0.2500, 1.0000]])
    """
    check_tensor("x", x)
    if x.numel() == 0:
        raise ValueError(f"x: expected a non-empty tensor, got shape {tuple(x.shape)}")
    check_finite("x", x)
    lo, hi = x.min(), x.max()
    if detach:
        lo, hi = lo.detach(), hi.detach()
    if bool(hi == lo):
        raise ValueError(
            f"x: expected at least two distinct values for min-max normalisation, got a "
            f"constant tensor (all {float(lo)}) of shape {tuple(x.shape)}"
        )
    return (x - lo) / (hi - lo)


def fuse_similarity(mean_sim: Tensor, lse_sim: Tensor, fusion_weight: float) -> Tensor:
    r"""The official fusion of the pooled and the fine-grained similarity, shape (M, N).

    .. math::
        S = \frac{w\, S_{\mathrm{mean}} + S_{\mathrm{lse}}}{w + 1}

    Parameters
    ----------
    mean_sim : shape (M, N), the (min-max normalised) pooled cosine.
    lse_sim : shape (M, N), the (min-max normalised) fine-grained similarity of Eq. (5).
    fusion_weight : ``w >= 0`` (official 0.5); ``w = 0`` returns ``lse_sim`` itself (pure Eq. 5).

    Returns
    -------
    Tensor of shape (M, N).

    Notes
    -----
    Not in the paper's equations (alluded to in its Appendix A); docs/protocols.md §2.3 item 6,
    §9 item 5.

    Examples
    --------
    >>> fuse_similarity(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), 0.5)
    tensor([[0.3333, 0.6667]])
    """
    check_tensor("mean_sim", mean_sim)
    check_tensor("lse_sim", lse_sim)
    if mean_sim.shape != lse_sim.shape:
        raise ValueError(
            f"lse_sim: expected the shape of mean_sim {tuple(mean_sim.shape)}, "
            f"got {tuple(lse_sim.shape)}"
        )
    try:
        w = float(fusion_weight)
    except (TypeError, ValueError):
        raise ValueError(
            f"fusion_weight: expected a finite number >= 0, got {fusion_weight!r}"
        ) from None
    if not math.isfinite(w) or w < 0:
        raise ValueError(f"fusion_weight: expected a finite number >= 0, got {fusion_weight!r}")
    if w == 0:
        return lse_sim
    return (w * mean_sim + lse_sim) / (w + 1)


def official_fused_similarity(
    video_tokens: Tensor,
    video_mask: Tensor,
    text_tokens: Tensor,
    text_mask: Tensor,
    video_emb: Tensor,
    text_emb: Tensor,
    alpha: float = 1.0,
    fusion_weight: float = 0.5,
    mode: LseMode = "exact",
    minmax_detach: bool = False,
    chunk_size: int | tuple[int | None, int | None] | None = None,
    precision: Precision = "auto",
) -> Tensor:
    r"""The clip-caption similarity fed to the official L_video, shape (M, N), clips x captions.

    .. math::
        S = \frac{w\,\mathrm{mm}(\cos(\bar v, \bar t)) + \tfrac12\big(\mathrm{mm}(\mathrm{v2t})
            + \mathrm{mm}(\mathrm{t2v})\big)}{w + 1},
        \qquad \mathrm{mm}(X) = \frac{X - \min X}{\max X - \min X}

    Parameters
    ----------
    video_tokens, video_mask, text_tokens, text_mask : as in :func:`token_lse_similarity`,
        shapes (M, V, D), (M, V), (N, T, D), (N, T).
    video_emb : shape (M, D'), pooled clip vectors; text_emb : shape (N, D'), pooled captions.
    alpha : soft-maximum temperature of Eq. (5).
    fusion_weight : ``w`` (official 0.5; 0 = min-max normalised Eq. 5 only).
    mode : ``"exact"`` (default) or ``"official"`` padding handling in Eq. (5); pass
        ``"official"`` to reproduce the released code bit for bit.
    minmax_detach : detach the min and max of the three normalisations (official: False).
    chunk_size, precision : as in :func:`directional_lse_similarity`.

    Returns
    -------
    Tensor of shape (M, N) with values in [0, 1].

    Notes
    -----
    docs/protocols.md §2.3 items 1-6 (D7): min-max of the mean-pool cosine, min-max of each half
    of Norton Eq. (5) separately, average of the halves, then :func:`fuse_similarity`. The
    min-max is global over the batch, so S depends on the batch composition.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> vt, tt = torch.randn(3, 4, 8, generator=g), torch.randn(3, 5, 8, generator=g)
    >>> vm, tm = torch.ones(3, 4, dtype=torch.bool), torch.ones(3, 5, dtype=torch.bool)
    >>> s = official_fused_similarity(vt, vm, tt, tm, vt.mean(1), tt.mean(1))
    >>> s.shape, float(s.min()) >= 0.0, float(s.max()) <= 1.0
    (torch.Size([3, 3]), True, True)
    """
    check_tensor("video_emb", video_emb, ndim=2)
    check_tensor("text_emb", text_emb, ndim=2)
    check_tensor("video_tokens", video_tokens, ndim=3)
    check_tensor("text_tokens", text_tokens, ndim=3)
    if video_emb.shape[0] != video_tokens.shape[0]:
        raise ValueError(
            f"video_emb: expected {video_tokens.shape[0]} rows (one per clip of video_tokens), "
            f"got shape {tuple(video_emb.shape)}"
        )
    if text_emb.shape[0] != text_tokens.shape[0]:
        raise ValueError(
            f"text_emb: expected {text_tokens.shape[0]} rows (one per caption of text_tokens), "
            f"got shape {tuple(text_emb.shape)}"
        )
    mean = minmax_normalize(mean_pooled_similarity(video_emb, text_emb), minmax_detach)
    halves = directional_lse_similarity(
        video_tokens, video_mask, text_tokens, text_mask, alpha, mode, chunk_size, precision
    )
    lse = (
        minmax_normalize(halves.v2t, minmax_detach) + minmax_normalize(halves.t2v, minmax_detach)
    ) / 2
    return fuse_similarity(mean.to(lse.dtype), lse, fusion_weight)
