"""Norton's official video-paragraph evaluation, quirks included, for reproducing paper numbers.

The corrected measures live in :mod:`nortonkit.alignment` (:func:`~nortonkit.alignment.dtw`,
:func:`~nortonkit.alignment.otam`, :func:`~nortonkit.alignment.cap_avg`) and are the default
everywhere. This module re-implements, from their described behaviour, the helpers of the
official code (``mmpt/utils/metrics.py`` and ``mmpt/evaluators/metric.py`` of
XLearning-SCU/2024-ICLR-Norton at commit 6c80470, identical to TempCLR's evaluation helpers)
so that the paper's Table 2 can be reproduced and the effect of each quirk measured:

* ``DTW_pad`` / ``OTAM_pad``: the ``-0:`` slice zeroes the last real row when no column
  padding is needed, negative pad amounts silently crop, and the zero "exit corridor" can be
  entered diagonally from the second-to-last row, skipping the last cell.
* ``OTAM_eval_cum_dist``: the first real column subtracts the minimum instead of adding it,
  and takes vertical steps that the OTAM definition reserves for the padding columns.
* per-setting distance offsets (``0 - m``, ``3 - m``; TempCLR: ``1 - m``) and block scalings.
* background-kept window selection and the transposed OTAM block padded to the text-side
  target size (cropping windows).

Orientation: ``similarity (B, T, C)`` blocks have **rows = captions** of the query paragraph
and **columns = clips** (or windows) of the candidate video, as in the official text x clip
score matrix. Blocks of different sizes share one padded tensor through prefix masks
``row_mask (B, T)`` / ``col_mask (B, C)`` (True = valid). Every ``official_*_score`` returns the
ranking score, higher = better (``-cum[-1, -1]``). Cap. Avg. has no quirk: use
:func:`nortonkit.alignment.cap_avg` on the transposed blocks.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .alignment import _prepare
from .validation import check_choice, check_int_at_least, check_tensor

__all__ = [
    "OfficialPreset",
    "SCORING_OFFSETS",
    "official_dtw_pad",
    "official_otam_pad",
    "official_dtw_cum_dist",
    "official_otam_cum_dist",
    "official_select_windows",
    "WindowSelection",
    "official_dtw_score",
    "official_otam_score",
    "official_bg_dtw_score",
    "official_bg_otam_score",
]

_INF = float("inf")
Sign = Literal["official", "fixed"]


class OfficialPreset(NamedTuple):
    """Distance offsets ``D = offset - m`` and the BG OTAM scaling rule of one codebase.

    Attributes
    ----------
    dtw_offset, otam_offset : offsets for background removed (``FullVideoRetrievalMetric``).
    bg_dtw_offset, bg_otam_offset : offsets for background kept (``FullVideoBGRetrievalMetric``).
    bg_otam_scale : ``"max"`` scales a block by ``max(maxT, maxV) / max(rows, cols)`` (Norton),
        ``"product"`` by ``maxT * maxV / (rows * cols)`` (TempCLR, and every DTW block).
    """

    dtw_offset: float
    otam_offset: float
    bg_dtw_offset: float
    bg_otam_offset: float
    bg_otam_scale: Literal["max", "product"]


SCORING_OFFSETS: dict[str, OfficialPreset] = {
    # Norton: raw dot products, not normalised, hence 0 - m; 3 - m for BG DTW (metric.py).
    "norton": OfficialPreset(0.0, 0.0, 3.0, 0.0, "max"),
    # TempCLR (tempclr/evaluators/metric.py): cosine distance 1 - m everywhere, product scaling.
    "tempclr": OfficialPreset(1.0, 1.0, 1.0, 1.0, "product"),
}


# --------------------------------------------------------------------------------------------
# helpers


def _slice_start(k: int, size: int) -> int:
    """Index at which Python's ``a[k:]`` starts on an axis of length ``size``.

    ``k = -0`` is ``0``: the whole axis, which is the root of the official ``-0:`` quirk.
    """
    if k < 0:
        k = max(size + k, 0)
    return min(k, size)


def _slice_start_t(k: Tensor, size: int) -> Tensor:
    """:func:`_slice_start` for a tensor of offsets."""
    return torch.where(k < 0, (k + size).clamp(min=0), k).clamp(max=size)


def _check_table(name: str, d: Tensor, min_cols: int = 1) -> None:
    """Official matrices may hold +inf (padding) but never NaN or -inf."""
    check_tensor(name, d, min_ndim=2)
    if d.shape[-2] < 1 or d.shape[-1] < min_cols:
        raise ValueError(
            f"{name}: expected at least 1 row and {min_cols} column(s), got shape {tuple(d.shape)}"
        )
    bad = torch.isnan(d) | (d == -_INF)
    if bool(bad.any()):
        first = tuple(bad.nonzero()[0].tolist())
        raise ValueError(
            f"{name}: expected values that are finite or +inf (padding), found "
            f"{int(bad.sum())} NaN/-inf entries (first at index {first})"
        )


def _to_cells(d: Tensor) -> tuple[Tensor, list[int]]:
    """``(..., R, C)`` -> contiguous ``(R, C, B)`` so that each cell is one batch vector."""
    *lead, r, c = d.shape
    return d.reshape(-1, r, c).permute(1, 2, 0).contiguous(), lead


def _from_cells(cum: Tensor, lead: list[int]) -> Tensor:
    r, c, _ = cum.shape
    return cum.permute(2, 0, 1).reshape(*lead, r, c)


# --------------------------------------------------------------------------------------------
# DTW_pad / OTAM_pad / cumulative distances


def official_dtw_pad(x: Tensor, target_rows: int, target_cols: int) -> Tensor:
    r"""The official ``DTW_pad``: +inf padding to a common size plus a zero "exit corridor".

    With ``a = target_rows - R`` and ``b = target_cols - C``: pad ``a`` rows at the bottom and
    ``b`` columns on the right with +inf (a negative amount crops), then set
    ``out[..., s_r:, s_c:] = 0`` where ``s_r, s_c`` are where the Python slices ``[-a-1:]`` and
    ``[-b:]`` start.

    Parameters
    ----------
    x : shape (..., R, C), one distance block (rows = captions, columns = clips).
    target_rows, target_cols : the common size (``T0``, ``T1``) every block is padded to.

    Returns
    -------
    Tensor of shape (..., target_rows, target_cols).

    Notes
    -----
    Official ``mmpt/utils/metrics.py::DTW_pad``. Deviations from a correct padding:

    * ``b > 0``: rows ``R-1..`` x columns ``C..`` are zero, so a DTW path can leave the real
      block at ``(R-1, C-1)`` for free, but also diagonally from ``(R-2, C-1)``, skipping the
      last cell (it matters for positive costs such as ``3 - m``).
    * ``b = 0``: ``[-0:]`` selects *every* column, so the last real row and all pad rows become
      zero: the last caption's costs are dropped whenever the candidate has the maximum length.
    * ``a < 0`` (more rows than the target): the block is cropped, and for ``a = -1`` the slice
      ``[0:]`` zeroes every row of the corridor columns.

    The corrected measure is :func:`nortonkit.alignment.dtw` with masks (no padding values).

    Examples
    --------
    >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> official_dtw_pad(x, 3, 3)  # b > 0: zero corridor from the last real cell
    tensor([[1., 2., inf],
            [3., 4., 0.],
            [inf, inf, 0.]])
    >>> official_dtw_pad(x, 3, 2)  # b = 0: the last real row is zeroed
    tensor([[1., 2.],
            [0., 0.],
            [0., 0.]])
    """
    check_tensor("x", x, min_ndim=2)
    check_int_at_least("target_rows", target_rows, 1)
    check_int_at_least("target_cols", target_cols, 1)
    a, b = target_rows - x.shape[-2], target_cols - x.shape[-1]
    out = F.pad(x, (0, b, 0, a), value=_INF)
    out[..., _slice_start(-a - 1, target_rows) :, _slice_start(-b, target_cols) :] = 0
    return out


def official_otam_pad(x: Tensor, target_rows: int, target_cols: int) -> Tensor:
    r"""The official ``OTAM_pad``: zero columns on both sides, then ``DTW_pad``-style padding.

    With ``a = target_rows - R`` and ``b = target_cols - C`` (computed *before* the zero
    columns are added): add a zero column on each side (``C + 2`` columns), pad ``a`` rows and
    ``b`` columns with +inf (negative amounts crop), and zero ``out[..., s_r:, s_c:]`` where
    ``s_r, s_c`` are where ``[-a-1:]`` and ``[-b:]`` start.

    Parameters
    ----------
    x : shape (..., R, C), one distance block.
    target_rows, target_cols : the common size; the output has ``target_cols + 2`` columns.

    Returns
    -------
    Tensor of shape (..., target_rows, target_cols + 2).

    Notes
    -----
    Official ``mmpt/utils/metrics.py::OTAM_pad``; the same ``-0:`` quirk as
    :func:`official_dtw_pad` (with ``b = 0`` the last real row, both zero columns included, is
    zeroed). In the background-kept metric the transposed block (windows x captions) is padded
    to the *caption-side* target, so with more kept windows than ``target_rows`` the last
    windows are cropped and, for ``a = -1``, every row of the corridor columns is zeroed.

    Examples
    --------
    >>> official_otam_pad(torch.tensor([[1.0, 2.0]]), 2, 3)
    tensor([[0., 1., 2., 0., 0.],
            [inf, inf, inf, inf, 0.]])
    """
    check_tensor("x", x, min_ndim=2)
    check_int_at_least("target_rows", target_rows, 1)
    check_int_at_least("target_cols", target_cols, 1)
    a, b = target_rows - x.shape[-2], target_cols - x.shape[-1]
    out = F.pad(F.pad(x, (1, 1), value=0.0), (0, b, 0, a), value=_INF)
    out[..., _slice_start(-a - 1, target_rows) :, _slice_start(-b, target_cols + 2) :] = 0
    return out


def official_dtw_cum_dist(d: Tensor) -> Tensor:
    r"""The official ``DTW_eval_cum_dist``: the full table of hard-DTW cumulative costs.

    .. math::
        R_{0,0} = d_{0,0},\quad R_{0,m} = d_{0,m} + R_{0,m-1},\quad R_{l,0} = d_{l,0} + R_{l-1,0},
        \quad R_{l,m} = d_{l,m} + \min(R_{l-1,m-1}, R_{l,m-1}, R_{l-1,m})

    Parameters
    ----------
    d : shape (..., R, C), distances, +inf allowed (padding), no NaN.

    Returns
    -------
    Tensor of shape (..., R, C); the score the official metric ranks by is ``-R[..., -1, -1]``.

    Notes
    -----
    Official ``mmpt/utils/metrics.py::DTW_eval_cum_dist``. The recurrence itself is standard
    DTW and equals :func:`nortonkit.alignment.dtw` on an unpadded block; the official
    deviations come from :func:`official_dtw_pad`. Computed in the dtype of ``d`` (the
    official code accumulates in float32).

    Examples
    --------
    >>> official_dtw_cum_dist(torch.tensor([[0.0, 2.0, 3.0], [4.0, 0.0, 1.0]]))
    tensor([[0., 2., 5.],
            [4., 0., 1.]])
    """
    _check_table("d", d)
    x, lead = _to_cells(d)  # (R, C, B)
    r, c, _ = x.shape
    cum = torch.empty_like(x)
    cum[0, 0] = x[0, 0]
    for m in range(1, c):
        cum[0, m] = x[0, m] + cum[0, m - 1]
    for l in range(1, r):
        cum[l, 0] = x[l, 0] + cum[l - 1, 0]
        for m in range(1, c):
            best = torch.minimum(torch.minimum(cum[l - 1, m - 1], cum[l, m - 1]), cum[l - 1, m])
            cum[l, m] = x[l, m] + best
    return _from_cells(cum, lead)


def official_otam_cum_dist(d: Tensor, column1_sign: Sign = "official") -> Tensor:
    r"""The official ``OTAM_eval_cum_dist`` on an already zero-padded matrix (see
    :func:`official_otam_pad`).

    .. math::
        R_{0,0} = 0,\ R_{0,m} = d_{0,m} + R_{0,m-1};\qquad R_{l,0} = 0\ (l \ge 1);\\
        R_{l,1} = d_{l,1} \mp \min(R_{l-1,0}, R_{l-1,1}, R_{l,0});\quad
        R_{l,m} = d_{l,m} + \min(R_{l-1,m-1}, R_{l,m-1})\ (2 \le m \le W-2);\\
        R_{l,W-1} = d_{l,W-1} + \min(R_{l-1,W-2}, R_{l-1,W-1}, R_{l,W-2})

    Parameters
    ----------
    d : shape (..., R, W), the padded distances (``W = C + 2``, ``W >= 2``), +inf allowed.
    column1_sign : ``"official"`` subtracts the minimum in column 1 (the released code);
        ``"fixed"`` adds it, which is the hard-minimum limit of TempCLR's differentiable
        ``OTAM_cum_dist`` (``d - lambda * logsumexp(-R / lambda)``).

    Returns
    -------
    Tensor of shape (..., R, W); the official score is ``-R[..., -1, -1]``.

    Notes
    -----
    Official ``mmpt/utils/metrics.py::OTAM_eval_cum_dist``. Two deviations from OTAM
    (Cao et al. 2020, :func:`nortonkit.alignment.otam`): the sign in column 1 (a bug), and
    the vertical step in column 1, the first *real* column (OTAM allows vertical steps only
    in the zero padding columns). With non-negative distances (TempCLR's ``1 - m`` on unit
    features) the minimum in column 1 is always 0, so both quirks vanish and the result equals
    ``alignment.otam``; with Norton's ``0 - m`` the sign inflates the cost of paths entering
    column 1 below row 0, and the vertical step (with the fixed sign) lets the first clip
    absorb several captions.
    When ``W == 2`` the last-column rule overwrites column 1, as in the official loop.

    Examples
    --------
    >>> p = torch.tensor([[0.0, -1.0, 5.0, 5.0, 0.0], [0.0, -1.0, 1.0, 1.0, 0.0]])
    >>> official_otam_cum_dist(p)[-1, -1], official_otam_cum_dist(p, "fixed")[-1, -1]
    (tensor(1.), tensor(0.))
    """
    _check_table("d", d, min_cols=2)
    check_choice("column1_sign", column1_sign, ("official", "fixed"))
    sign = -1.0 if column1_sign == "official" else 1.0
    x, lead = _to_cells(d)  # (R, W, B)
    r, w, _ = x.shape
    cum = torch.zeros_like(x)
    for m in range(1, w):
        cum[0, m] = x[0, m] + cum[0, m - 1]
    for l in range(1, r):
        first = torch.minimum(torch.minimum(cum[l - 1, 0], cum[l - 1, 1]), cum[l, 0])
        cum[l, 1] = x[l, 1] + sign * first
        for m in range(2, w - 1):
            cum[l, m] = x[l, m] + torch.minimum(cum[l - 1, m - 1], cum[l, m - 1])
        last = torch.minimum(torch.minimum(cum[l - 1, w - 2], cum[l - 1, w - 1]), cum[l, w - 2])
        cum[l, w - 1] = x[l, w - 1] + last
    return _from_cells(cum, lead)


# --------------------------------------------------------------------------------------------
# batched padding of many blocks of different sizes


def _pad_blocks(
    x: Tensor, rows: Tensor, cols: Tensor, target_rows: int, target_cols: int, otam: bool
) -> Tensor:
    """``official_dtw_pad`` / ``official_otam_pad`` of every block ``x[b, :rows_b, :cols_b]``.

    Equal to padding each cropped block on its own (tested), without a Python loop.
    """
    batch = x.shape[0]
    t1 = target_cols + 2 if otam else target_cols
    fit = F.pad(x, (0, max(0, t1 - x.shape[2]), 0, max(0, target_rows - x.shape[1])))
    fit = fit[:, :target_rows, :t1]  # (B, T0, >= T1)
    if otam:  # real column j sits at padded column j + 1
        fit = F.pad(fit, (1, 0))[:, :, :t1]
    i = torch.arange(target_rows, device=x.device)[None, :, None]
    j = torch.arange(t1, device=x.device)[None, None, :]
    r, c = rows[:, None, None], cols[:, None, None]
    width = c + 2 if otam else c
    inside = (i < r) & (j < width)
    out = torch.where(inside, fit, torch.full((), _INF, dtype=x.dtype, device=x.device))
    if otam:
        zero_col = (j == 0) | (j == c + 1)
        out = out.masked_fill(inside & zero_col, 0.0)
    s_r = _slice_start_t(-(target_rows - rows) - 1, target_rows)[:, None, None]
    s_c = _slice_start_t(-(target_cols - cols), t1)[:, None, None]
    return out.masked_fill((i >= s_r) & (j >= s_c), 0.0).reshape(batch, target_rows, t1)


def _scale(factor: Tensor, like: Tensor) -> Tensor:
    """Per-block factor (computed in float64 from integers) in the block dtype, (B, 1, 1)."""
    return factor.to(like.dtype)[:, None, None]


# --------------------------------------------------------------------------------------------
# background removed


def official_dtw_score(
    similarity: Tensor,
    max_len: int,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
    preset: str = "norton",
) -> Tensor:
    r"""Background-removed DTW score of the official ``FullVideoRetrievalMetric``.

    For each block (``r`` captions x ``c`` clips): ``D = offset - S``, scaled by
    ``max_len^2 / (r c)``, padded with :func:`official_dtw_pad` to ``(max_len, max_len)``, run
    through :func:`official_dtw_cum_dist`; the score is ``-R[-1, -1]``.

    Parameters
    ----------
    similarity : shape (B, T, C), text x clip similarities (raw dot products in Norton).
    max_len : the largest clip count of any video in the evaluation set.
    row_mask, col_mask : shape (B, T) and (B, C), prefix masks (True = valid).
    preset : ``"norton"`` (offset 0) or ``"tempclr"`` (offset 1), see :data:`SCORING_OFFSETS`.

    Returns
    -------
    Tensor of shape (B,), higher = better.

    Notes
    -----
    Official ``mmpt/evaluators/metric.py::FullVideoRetrievalMetric`` (DTW branch), Norton
    Table 2 "DTW, background removed". Inherits the :func:`official_dtw_pad` quirks; blocks
    of the maximal length lose their last row. Corrected: ``-alignment.dtw(offset - S)``.

    Examples
    --------
    >>> s = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> official_dtw_score(s, max_len=3)  # b > 0: -(-1 - 1) * 9/4
    tensor([4.5000])
    >>> official_dtw_score(s, max_len=2)  # b = 0: the last row is zeroed, only -1 is left
    tensor([1.])
    """
    p = SCORING_OFFSETS[_preset(preset)]
    check_int_at_least("max_len", max_len, 1)
    x, rows, cols = _prepare("similarity", similarity, row_mask, col_mask)
    d = (p.dtw_offset - x) * _scale(float(max_len) ** 2 / (rows * cols).double(), x)
    padded = _pad_blocks(d, rows, cols, max_len, max_len, otam=False)
    return -official_dtw_cum_dist(padded)[:, -1, -1]


def official_otam_score(
    similarity: Tensor,
    max_len: int,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
    preset: str = "norton",
    column1_sign: Sign = "official",
) -> Tensor:
    r"""Background-removed OTAM score of the official ``FullVideoRetrievalMetric``.

    ``D = offset - S`` scaled by ``max_len^2 / (r c)``; the block and its transpose are each
    padded with :func:`official_otam_pad` to ``(max_len, max_len)`` and run through
    :func:`official_otam_cum_dist`; the score is ``-(R[-1, -1] + R^T[-1, -1])``.

    Parameters
    ----------
    similarity : shape (B, T, C), text x clip similarities.
    max_len : the largest clip count of any video.
    row_mask, col_mask : shape (B, T) and (B, C), prefix masks (True = valid).
    preset : ``"norton"`` (offset 0) or ``"tempclr"`` (offset 1).
    column1_sign : ``"official"`` (the released sign bug) or ``"fixed"``.

    Returns
    -------
    Tensor of shape (B,), higher = better.

    Notes
    -----
    Official ``mmpt/evaluators/metric.py::FullVideoRetrievalMetric`` (OTAM branch), Norton
    Table 2 "OTAM, background removed". Corrected:
    ``-(alignment.otam(D).cost + alignment.otam(D^T).cost)``.

    Examples
    --------
    >>> s = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> official_otam_score(s, max_len=3)
    tensor([9.])
    """
    p = SCORING_OFFSETS[_preset(preset)]
    check_int_at_least("max_len", max_len, 1)
    x, rows, cols = _prepare("similarity", similarity, row_mask, col_mask)
    d = (p.otam_offset - x) * _scale(float(max_len) ** 2 / (rows * cols).double(), x)
    fwd = _pad_blocks(d, rows, cols, max_len, max_len, otam=True)
    bwd = _pad_blocks(d.transpose(1, 2), cols, rows, max_len, max_len, otam=True)
    cum_f = official_otam_cum_dist(fwd, column1_sign)[:, -1, -1]
    cum_b = official_otam_cum_dist(bwd, column1_sign)[:, -1, -1]
    return -(cum_f + cum_b)


# --------------------------------------------------------------------------------------------
# background kept


class WindowSelection(NamedTuple):
    """Output of :func:`official_select_windows`.

    Attributes
    ----------
    distance : shape (B, T, W), the kept windows first, in time order; padding after them.
    col_mask : shape (B, W), prefix mask of the kept windows.
    index : shape (B, W), original window index of each column (meaningful where valid).
    """

    distance: Tensor
    col_mask: Tensor
    index: Tensor


def official_select_windows(
    distance: Tensor, row_mask: Tensor | None = None, col_mask: Tensor | None = None
) -> WindowSelection:
    r"""Background-kept window selection: keep the ``int(1.3 r)`` windows closest to any caption.

    For each block (``r`` captions x ``w`` windows) take the per-window minimum distance over
    captions, keep the ``int(1.3 * r)`` windows with the *smallest* such distance (all of them
    when there are fewer), and put them back in time order.

    Parameters
    ----------
    distance : shape (B, T, W), text x window distances (``offset - m``).
    row_mask, col_mask : shape (B, T) and (B, W), prefix masks (True = valid).

    Returns
    -------
    WindowSelection with the compacted distances and their prefix ``col_mask``.

    Notes
    -----
    Official ``mmpt/evaluators/metric.py::FullVideoBGRetrievalMetric`` ("following TempCLR"),
    applied before both DTW and OTAM. ``int(1.3 * r)`` is evaluated in float64 exactly as in
    Python (``int(1.3 * 3) = 3``). Ties in the per-window minimum are broken by window index;
    the official unstable ``argsort`` may break them differently.

    Examples
    --------
    >>> d = torch.tensor([[[5.0, 1.0, 4.0, 2.0], [5.0, 3.0, 4.0, 0.5]]])  # 2 captions, 4 windows
    >>> sel = official_select_windows(d)  # keeps int(2.6) = 2 windows: 1 and 3, in time order
    >>> sel.index[sel.col_mask].tolist()
    [1, 3]
    """
    x, rows, cols = _prepare("distance", distance, row_mask, col_mask)
    batch, t, w = x.shape
    row_ok = torch.arange(t, device=x.device)[None, :] < rows[:, None]  # (B, T)
    col_ok = torch.arange(w, device=x.device)[None, :] < cols[:, None]  # (B, W)
    per_window = torch.where(row_ok[:, :, None], x, _INF).amin(dim=1)  # (B, W)
    per_window = torch.where(col_ok, per_window, _INF)
    rank = torch.argsort(torch.argsort(per_window, dim=1, stable=True), dim=1)  # (B, W)
    n_keep = torch.floor(rows.double() * 1.3).long()
    keep = (rank < n_keep[:, None]) & col_ok
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # kept first, in time
    kept = torch.gather(x, 2, order[:, None, :].expand(batch, t, w))
    new_mask = torch.arange(w, device=x.device)[None, :] < keep.sum(dim=1)[:, None]
    return WindowSelection(kept, new_mask, order)


def _bg_inputs(similarity, offset, row_mask, col_mask, max_text_len, max_video_len):
    check_int_at_least("max_text_len", max_text_len, 1)
    check_int_at_least("max_video_len", max_video_len, 1)
    check_tensor("similarity", similarity, ndim=3)
    sel = official_select_windows(offset - similarity, row_mask, col_mask)
    rows = (
        row_mask.sum(dim=1)
        if row_mask is not None
        else torch.full((similarity.shape[0],), similarity.shape[1], device=similarity.device)
    )
    return sel.distance, rows, sel.col_mask.sum(dim=1)


def official_bg_dtw_score(
    similarity: Tensor,
    max_text_len: int,
    max_video_len: int,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
    preset: str = "norton",
) -> Tensor:
    r"""Background-kept DTW score of the official ``FullVideoBGRetrievalMetric``.

    ``D = offset - S`` (Norton: ``3 - m``), window selection (:func:`official_select_windows`),
    scaling by ``maxT * maxV / (r * c_kept)``, :func:`official_dtw_pad` to ``(maxT, maxV)`` and
    :func:`official_dtw_cum_dist`; the score is ``-R[-1, -1]``.

    Parameters
    ----------
    similarity : shape (B, T, W), caption x window similarities.
    max_text_len : ``maxT``, the largest caption count of any video.
    max_video_len : ``maxV``, the largest window count of any video.
    row_mask, col_mask : shape (B, T) and (B, W), prefix masks (True = valid).
    preset : ``"norton"`` (offset 3) or ``"tempclr"`` (offset 1).

    Returns
    -------
    Tensor of shape (B,), higher = better.

    Notes
    -----
    Norton Table 2 "DTW, background kept". With positive distances the zero corridor of
    :func:`official_dtw_pad` can skip the last real cell.

    Examples
    --------
    >>> s = torch.tensor([[[1.0, 0.0, 2.0]]])  # 1 caption, 3 windows: keeps window 2 only
    >>> official_bg_dtw_score(s, max_text_len=1, max_video_len=3)  # b > 0, a = 0
    tensor([-3.])
    """
    p = SCORING_OFFSETS[_preset(preset)]
    d, rows, cols = _bg_inputs(
        similarity, p.bg_dtw_offset, row_mask, col_mask, max_text_len, max_video_len
    )
    factor = float(max_text_len * max_video_len) / (rows * cols).double()
    padded = _pad_blocks(d * _scale(factor, d), rows, cols, max_text_len, max_video_len, False)
    return -official_dtw_cum_dist(padded)[:, -1, -1]


def official_bg_otam_score(
    similarity: Tensor,
    max_text_len: int,
    max_video_len: int,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
    preset: str = "norton",
    transposed_pad: Sign = "official",
    column1_sign: Sign = "official",
) -> Tensor:
    r"""Background-kept OTAM score of the official ``FullVideoBGRetrievalMetric``.

    ``D = offset - S`` (Norton: ``0 - m``), window selection, scaling by
    ``max(maxT, maxV) / max(r, c_kept)`` (Norton) or ``maxT maxV / (r c_kept)`` (TempCLR), then
    the block and its transpose through :func:`official_otam_pad` and
    :func:`official_otam_cum_dist`; the score is ``-(R[-1, -1] + R^T[-1, -1])``.

    Parameters
    ----------
    similarity : shape (B, T, W), caption x window similarities.
    max_text_len, max_video_len : ``maxT`` and ``maxV`` as in :func:`official_bg_dtw_score`.
    row_mask, col_mask : shape (B, T) and (B, W), prefix masks (True = valid).
    preset : ``"norton"`` or ``"tempclr"``.
    transposed_pad : ``"official"`` pads the transposed (windows x captions) block to
        ``(maxT, maxV)``, the text-side size, cropping windows when ``c_kept > maxT``;
        ``"fixed"`` pads it to ``(maxV, maxT)`` (this fixes only the crop; the ``-0:`` quirk of
        :func:`official_otam_pad` still applies when ``r = maxT``).
    column1_sign : ``"official"`` or ``"fixed"``, see :func:`official_otam_cum_dist`.

    Returns
    -------
    Tensor of shape (B,), higher = better.

    Notes
    -----
    Norton Table 2 "OTAM, background kept"; docs/protocols.md §9 item 22 for the transposed crop.

    Examples
    --------
    >>> s = torch.tensor([[[1.0, 0.0, 2.0]]])
    >>> official_bg_otam_score(s, max_text_len=1, max_video_len=3)
    tensor([12.])
    """
    p = SCORING_OFFSETS[_preset(preset)]
    check_choice("transposed_pad", transposed_pad, ("official", "fixed"))
    d, rows, cols = _bg_inputs(
        similarity, p.bg_otam_offset, row_mask, col_mask, max_text_len, max_video_len
    )
    if p.bg_otam_scale == "max":
        factor = float(max(max_text_len, max_video_len)) / torch.maximum(rows, cols).double()
    else:
        factor = float(max_text_len * max_video_len) / (rows * cols).double()
    d = d * _scale(factor, d)
    fwd = _pad_blocks(d, rows, cols, max_text_len, max_video_len, otam=True)
    t0, t1 = (
        (max_text_len, max_video_len)
        if transposed_pad == "official"
        else (max_video_len, max_text_len)
    )
    bwd = _pad_blocks(d.transpose(1, 2), cols, rows, t0, t1, otam=True)
    cum_f = official_otam_cum_dist(fwd, column1_sign)[:, -1, -1]
    cum_b = official_otam_cum_dist(bwd, column1_sign)[:, -1, -1]
    return -(cum_f + cum_b)


def _preset(preset: str) -> str:
    check_choice("preset", preset, tuple(SCORING_OFFSETS))
    return preset
