"""Sequence measures between two ordered sequences: DTW, OTAM, soft-DTW and Cap. Avg.

Every measure is batched: ``cost (B, M, N)`` holds one matrix per pair, and the optional
prefix masks ``row_mask (B, M)`` / ``col_mask (B, N)`` (True = valid) let pairs of different
lengths share one padded tensor. Masks must be *prefix* masks: the valid entries of each
problem come first and the padding sits at the end (a length, written as a mask). Values in
padded cells are ignored and may be garbage, even NaN.

DTW, OTAM and soft-DTW take *costs* (lower is better); :func:`cap_avg` takes *similarities*
(higher is better). The dynamic programmes run as wavefronts: one vectorised step per
anti-diagonal (DTW, soft-DTW) or per column (OTAM) for the whole batch. Without autograd the
hard measures run in place on cache-sized chunks, so DTW over all 190k (paragraph, video)
pairs of a 436-video retrieval takes about 0.3 s of one CPU core
(``benchmarks/results/b3.md``); with autograd they build an ordinary differentiable graph.

Orientation: DTW and soft-DTW are symmetric in rows and columns, OTAM is not (see
:func:`otam`). The official evaluation (``nortonkit.compat``) puts the captions of the query
paragraph on rows and the clips of the candidate video on columns; :func:`cap_avg` follows the
shape glossary instead (rows = clips, columns = captions).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .masking import masked_logsumexp, masked_mean
from .validation import (
    check_finite,
    check_mask,
    check_nonempty_mask,
    check_positive,
    check_tensor,
)

__all__ = ["AlignmentResult", "dtw", "otam", "soft_dtw", "cap_avg"]

_INF = float("inf")
# Problems per chunk: small enough that a chunk of 20 x 20 problems stays in cache, large
# enough that the per-step Python overhead is negligible (measured on a 2-core CPU).
_CHUNK = 8192


class AlignmentResult(NamedTuple):
    """Output of :func:`dtw`, :func:`otam` and :func:`soft_dtw`.

    Attributes
    ----------
    cost : shape (B,), the alignment cost of each problem (lower = better aligned).
    path : shape (B, M, N), a 0/1 matrix (dtype of ``cost``) marking the cells of one optimal
        path, zero on padded cells; ``None`` unless ``return_path=True`` was asked for.
    """

    cost: Tensor
    path: Tensor | None = None


# --------------------------------------------------------------------------------------------
# validation


def _prefix_lengths(name: str, mask: Tensor | None, size: int, batch: int, axis: str) -> Tensor:
    """Lengths ``(B,)`` of a prefix mask; ``size`` everywhere when the mask is omitted."""
    if mask is None:
        return torch.full((batch,), size, dtype=torch.long)
    check_nonempty_mask(name, mask, axis)
    gap = mask[:, 1:] & ~mask[:, :-1]  # a valid entry right after a padded one
    if bool(gap.any()):
        where = gap.any(dim=1).nonzero().squeeze(1).tolist()[:5]
        raise ValueError(
            f"{name}: expected a prefix mask (valid {axis} first, padding at the end), "
            f"problem(s) {where} have a valid entry after a padded one"
        )
    return mask.sum(dim=1)


def _prepare(
    name: str, x: Tensor, row_mask: Tensor | None, col_mask: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Validate ``x (B, M, N)`` and its prefix masks; return ``x``, ``m_len (B,)``, ``n_len (B,)``.

    Padded cells never influence a DP value read at ``(m_b - 1, n_b - 1)`` (paths are monotone),
    so they are only overwritten (with 0) when they hold NaN/inf, which keeps gradients clean.
    One ``sum`` decides that in the common all-finite case.
    """
    check_tensor(name, x, ndim=3)
    batch, m, n = x.shape
    if m == 0 or n == 0:
        raise ValueError(
            f"{name}: expected at least one row and one column, got shape {tuple(x.shape)}"
        )
    check_mask("row_mask", row_mask, (batch, m))
    check_mask("col_mask", col_mask, (batch, n))
    m_len = _prefix_lengths("row_mask", row_mask, m, batch, "rows").to(x.device)
    n_len = _prefix_lengths("col_mask", col_mask, n, batch, "columns").to(x.device)
    if bool(torch.isfinite(x.detach().sum())):  # a NaN/inf anywhere makes the sum non-finite
        return x, m_len, n_len
    rows = torch.arange(m, device=x.device)[None, :] < m_len[:, None]  # (B, M)
    cols = torch.arange(n, device=x.device)[None, :] < n_len[:, None]  # (B, N)
    valid = rows[:, :, None] & cols[:, None, :]  # (B, M, N)
    check_finite(name, x, valid)
    return torch.where(valid, x, torch.zeros((), dtype=x.dtype, device=x.device)), m_len, n_len


def _groups(key: Tensor, n_groups: int) -> list[Tensor]:
    """Indices of the problems with ``key == k``, for ``k = 0 .. n_groups - 1``."""
    order = torch.argsort(key, stable=True)
    counts = torch.bincount(key, minlength=n_groups)[:n_groups]
    return list(torch.split(order, counts.tolist()))


def _fast_path_ok(x: Tensor) -> bool:
    """In-place buffers are usable when no autograd graph is needed."""
    return not (torch.is_grad_enabled() and x.requires_grad)


# --------------------------------------------------------------------------------------------
# DTW / soft-DTW: anti-diagonal wavefront


def _softmin3(a: Tensor, b: Tensor, c: Tensor, gamma: float) -> Tensor:
    """``-gamma * log(exp(-a/gamma) + exp(-b/gamma) + exp(-c/gamma))``; +inf entries drop out.

    Where all three are +inf the result is +inf with a zero (not NaN) gradient.
    """
    x = torch.stack([a, b, c], dim=-1)  # (B, M, 3)
    return -gamma * masked_logsumexp(-x / gamma, torch.isfinite(x), dim=-1)


def _dtw_wavefront(
    cost: Tensor, m_len: Tensor, n_len: Tensor, gamma: float | None, keep_choices: bool
) -> tuple[Tensor, list[Tensor]]:
    """Accumulated cost at cell ``(m_b - 1, n_b - 1)`` of each problem, one anti-diagonal a step.

    Diagonal ``d`` holds the cells ``(i, d - i)``; it is stored as a vector over ``i`` of width
    ``M + 1`` whose entry 0 is a +inf sentinel (the cell ``(-1, .)``), so that the three
    predecessors of ``(i, j)`` are plain views: ``left = (i, j-1)`` is diagonal ``d-1`` at ``i``,
    ``up = (i-1, j)`` is diagonal ``d-1`` at ``i-1`` and ``diag = (i-1, j-1)`` is diagonal ``d-2``
    at ``i-1``. Cells outside the matrix cost +inf.
    """
    batch, m, n = cost.shape
    flat = cost.reshape(batch, m * n)
    rows = torch.arange(m, device=cost.device)
    sentinel = cost.new_full((batch, 1), _INF)
    end_diag = m_len + n_len - 2  # (B,)
    end_row = (m_len - 1)[:, None]  # (B, 1)
    out = cost.new_zeros(batch)
    prev2 = cost.new_full((batch, m + 1), _INF)
    prev1 = cost.new_full((batch, m + 1), _INF)
    choices: list[Tensor] = []
    for d in range(m + n - 1):
        cols = d - rows  # (M,)
        inside = (cols >= 0) & (cols < n)
        c = flat.index_select(1, rows * n + cols.clamp(0, n - 1)).masked_fill(~inside, _INF)
        if d == 0:
            cur = c  # only the cell (0, 0) is inside
        else:
            left, up, diag = prev1[:, 1:], prev1[:, :-1], prev2[:, :-1]  # (B, M) views
            if gamma is None:
                best = torch.minimum(torch.minimum(diag, up), left)
                if keep_choices:  # 0 = diagonal, 1 = up, 2 = left (first minimum wins)
                    choice = torch.where(diag == best, 0, torch.where(up == best, 1, 2))
                    choices.append(choice.to(torch.uint8))
            else:
                best = _softmin3(diag, up, left, gamma)
            cur = c + best
        hit = end_diag == d
        if bool(hit.any()):
            out = torch.where(hit, cur.gather(1, end_row).squeeze(1), out)
        prev2, prev1 = prev1, torch.cat([sentinel, cur], dim=1)
    return out, choices


def _dtw_inplace(cost: Tensor, m_len: Tensor, n_len: Tensor) -> Tensor:
    """Hard DTW values without autograd: the wavefront of :func:`_dtw_wavefront`, in place.

    The chunk is first laid out cell-major, ``(M * N, B)``, so that a diagonal's cells
    ``(i, d - i)``, ``lo <= i <= hi``, are rows ``i * (N - 1) + d`` of it: a strided view whose
    rows are contiguous batch vectors. Diagonals go into three rotating buffers of shape
    ``(M + 1, B)`` (row 0 is the +inf sentinel, row ``i + 1`` holds cell row ``i``). Reads never
    reach a buffer row that an older diagonal wrote: out-of-matrix cells lie above ``hi`` of
    their diagonal, and ``hi`` never decreases.
    """
    batch, m, n = cost.shape
    cells = cost.reshape(batch, m * n).t().contiguous()  # (M*N, B)
    base = cells.storage_offset()
    bufs = [cost.new_full((m + 1, batch), _INF) for _ in range(3)]
    out = cost.new_zeros(batch)
    n_diag = m + n - 1
    ends = _groups(m_len + n_len - 2, n_diag)
    for d in range(n_diag):
        lo, hi = max(0, d - n + 1), min(d, m - 1)
        width = hi - lo + 1
        start = base + (lo * (n - 1) + d) * batch
        c = cells.as_strided((width, batch), ((n - 1) * batch, 1), start)
        cur, prev1, prev2 = bufs[d % 3], bufs[(d - 1) % 3], bufs[(d - 2) % 3]
        dst = cur[lo + 1 : hi + 2]  # (width, B)
        if d == 0:
            dst.copy_(c)
        else:
            torch.minimum(prev2[lo : hi + 1], prev1[lo : hi + 1], out=dst)  # diagonal, up
            torch.minimum(dst, prev1[lo + 1 : hi + 2], out=dst)  # left
            dst.add_(c)
        idx = ends[d]
        if idx.numel():
            out[idx] = cur[m_len[idx], idx]  # cell (m_b - 1, n_b - 1) sits in row m_b
    return out


def _dtw_backtrace(
    choices: list[Tensor], m_len: Tensor, n_len: Tensor, shape: torch.Size, like: Tensor
) -> Tensor:
    """0/1 path (B, M, N) from the stored argmin choices, walked back from (m_b-1, n_b-1)."""
    batch, m, n = shape
    path = like.new_zeros((batch, m, n))
    idx = torch.arange(batch, device=like.device)
    i, j = m_len - 1, n_len - 1
    for d in range(m + n - 2, -1, -1):
        act = (i + j) == d  # problems whose current cell lies on diagonal d
        path[idx[act], i[act], j[act]] = 1
        if d == 0:
            break
        ch = choices[d - 1][idx, i.clamp(min=0)].long()  # choices[k] belongs to diagonal k+1
        i = i - (act & (ch <= 1)).long()  # diagonal or up: one row back
        j = j - (act & (ch != 1)).long()  # diagonal or left: one column back
    return path


def _chunked(fn, *tensors: Tensor) -> list:
    """Apply ``fn`` to consecutive chunks of the batch axis; return the list of results."""
    batch = tensors[0].shape[0]
    if batch <= _CHUNK:
        return [fn(*tensors)]
    return [fn(*(t[s : s + _CHUNK] for t in tensors)) for s in range(0, batch, _CHUNK)]


def dtw(
    cost: Tensor,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
    return_path: bool = False,
) -> AlignmentResult:
    r"""Dynamic time warping: the cheapest monotone path through each cost matrix.

    .. math::
        R_{i,j} = C_{i,j} + \min(R_{i-1,j-1},\ R_{i-1,j},\ R_{i,j-1}),\qquad
        R_{0,0} = C_{0,0},\quad R_{-1,\cdot} = R_{\cdot,-1} = +\infty

    and ``cost[b] = R[m_b - 1, n_b - 1]``, the sum of the cells visited by the best path from
    ``(0, 0)`` to ``(m_b - 1, n_b - 1)`` with steps (1, 0), (0, 1) and (1, 1).

    Parameters
    ----------
    cost : shape (B, M, N), pairwise costs (lower = better), e.g. ``1 - similarity``.
    row_mask, col_mask : shape (B, M) and (B, N), bool prefix masks (True = valid, valid entries
        first). Problem ``b`` is the sub-matrix ``cost[b, :m_b, :n_b]``; padded cells are ignored.
    return_path : also return one optimal path as a 0/1 matrix (ties prefer the diagonal step,
        then the vertical one).

    Returns
    -------
    AlignmentResult with ``cost`` of shape (B,) and ``path`` of shape (B, M, N) or None.

    Notes
    -----
    Sakoe & Chiba (1978); the "DTW" sequence measure of Norton's video-paragraph retrieval
    (Sec. 4.1, Table 2). Equals dtw-python's ``dtw(C, step_pattern="symmetric1").distance``.
    Computed by an anti-diagonal wavefront (``M + N - 1`` vectorised steps); the arithmetic is
    the textbook recurrence, so values match a cell-by-cell loop exactly. Differentiable almost
    everywhere: the gradient with respect to ``cost`` is the optimal path.

    Examples
    --------
    >>> c = torch.tensor([[[0.0, 2.0, 3.0], [4.0, 0.0, 1.0]]])
    >>> r = dtw(c, return_path=True)
    >>> r.cost
    tensor([1.])
    >>> r.path
    tensor([[[1., 0., 0.],
             [0., 1., 1.]]])
    """
    x, m_len, n_len = _prepare("cost", cost, row_mask, col_mask)
    if not return_path and _fast_path_ok(x):
        return AlignmentResult(torch.cat(_chunked(_dtw_inplace, x, m_len, n_len)), None)

    def run(xc: Tensor, mc: Tensor, nc: Tensor) -> tuple[Tensor, Tensor | None]:
        value, choices = _dtw_wavefront(xc, mc, nc, None, return_path)
        path = _dtw_backtrace(choices, mc, nc, xc.shape, xc) if return_path else None
        return value, path

    parts = _chunked(run, x, m_len, n_len)
    value = torch.cat([p[0] for p in parts])
    path = torch.cat([p[1] for p in parts]) if return_path else None
    return AlignmentResult(value, path)


def soft_dtw(
    cost: Tensor,
    gamma: float,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> AlignmentResult:
    r"""Soft-DTW (Cuturi & Blondel 2017): DTW with the minimum replaced by a soft minimum.

    .. math::
        R_{i,j} = C_{i,j} + \mathrm{softmin}_\gamma(R_{i-1,j-1}, R_{i-1,j}, R_{i,j-1}),\qquad
        \mathrm{softmin}_\gamma(a_1,\dots,a_k) = -\gamma \log \sum_l e^{-a_l/\gamma}

    so that ``cost[b] = -gamma * log sum_{paths P} exp(-<A_P, C_b> / gamma)`` over all monotone
    paths from ``(0, 0)`` to ``(m_b - 1, n_b - 1)``.

    Parameters
    ----------
    cost : shape (B, M, N), pairwise costs (lower = better).
    gamma : smoothing > 0; ``gamma -> 0`` recovers :func:`dtw`, with
        ``dtw - gamma * log(#paths) <= soft_dtw <= dtw``.
    row_mask, col_mask : shape (B, M) and (B, N), bool prefix masks (True = valid).

    Returns
    -------
    AlignmentResult with ``cost`` of shape (B,) (differentiable) and ``path = None``.

    Notes
    -----
    Cuturi & Blondel (2017), Eq. (1)-(2); the soft-DTW sequence loss of TempCLR, with which
    Norton compares. Gradients come from autograd through the wavefront: ``d cost / d C`` is the
    expected alignment matrix ``E[A_P]`` under the Gibbs distribution over paths, so it is
    non-negative, equals 1 at both corners and sums to at least ``max(m, n)``. The value may be
    negative and ``soft_dtw(C) < dtw(C)`` always; both are documented properties, not bugs.
    Failure modes: with ``gamma`` far below the cost differences the gradient approaches the
    (piecewise constant) hard path; the log domain never overflows.

    Examples
    --------
    >>> c = torch.tensor([[[0.0, 2.0], [2.0, 0.0]]])
    >>> soft_dtw(c, gamma=1.0).cost  # -log(1 + 2 exp(-2)): one path of cost 0, two of cost 2
    tensor([-0.2395])
    >>> soft_dtw(c, gamma=1e-3).cost  # close to dtw(c).cost = 0
    tensor([0.])
    """
    gamma = check_positive("gamma", gamma)
    x, m_len, n_len = _prepare("cost", cost, row_mask, col_mask)

    def run(xc: Tensor, mc: Tensor, nc: Tensor) -> Tensor:
        return _dtw_wavefront(xc, mc, nc, gamma, False)[0]

    return AlignmentResult(torch.cat(_chunked(run, x, m_len, n_len)), None)


# --------------------------------------------------------------------------------------------
# OTAM: column wavefront


def _otam_columns(
    cost: Tensor, m_len: Tensor, n_len: Tensor, return_path: bool
) -> tuple[Tensor, Tensor | None]:
    """OTAM cost (and path) by one vectorised step per real column.

    ``F[i, j]`` is the cheapest path that enters real column ``j`` at row ``i``. The zero column
    on the left makes ``F[i, 0] = C[i, 0]`` for every row; inside the matrix only the diagonal
    and the horizontal step exist, so ``F[:, j]`` depends on ``F[:, j-1]`` alone; the zero
    column on the right lets the path leave from any row, so the result is ``min_i F[i, n-1]``.
    """
    batch, m, n = cost.shape
    row_ok = torch.arange(m, device=cost.device)[None, :] < m_len[:, None]  # (B, M)
    c = cost.masked_fill(~row_ok[:, :, None], _INF)  # rows past m_b are unreachable
    sentinel = cost.new_full((batch, 1), _INF)
    f = c[:, :, 0]
    out = torch.where(n_len == 1, f.amin(dim=1), cost.new_zeros(batch))
    came_diag: list[Tensor] = []
    last_f = [f] if return_path else []
    for j in range(1, n):
        diag = torch.cat([sentinel, f[:, :-1]], dim=1)  # F[i-1, j-1]
        if return_path:
            came_diag.append(diag < f)  # ties prefer the horizontal step
        f = c[:, :, j] + torch.minimum(diag, f)
        hit = n_len - 1 == j
        if bool(hit.any()):
            out = torch.where(hit, f.amin(dim=1), out)
        if return_path:
            last_f.append(f)
    if not return_path:
        return out, None
    idx = torch.arange(batch, device=cost.device)
    f_end = torch.stack(last_f, dim=2)[idx, :, n_len - 1]  # (B, M), F at each last column
    i = f_end.argmin(dim=1)
    path = cost.new_zeros((batch, m, n))
    for j in range(n - 1, -1, -1):
        act = j < n_len
        path[idx[act], i[act], j] = 1
        if j > 0:
            i = i - (act & came_diag[j - 1][idx, i]).long()
    return out, path


def _otam_inplace(cost: Tensor, m_len: Tensor, n_len: Tensor) -> Tensor:
    """OTAM values without autograd: :func:`_otam_columns` with two in-place column buffers.

    The chunk is read column by column from a ``(B, N, M)`` layout (a no-op for transposed
    input), and each buffer is ``(B, M + 1)`` with entry 0 the +inf sentinel, so the diagonal
    predecessor is a shifted view. Rows past ``m_b`` are left unmasked: the recurrence only
    moves down (``i-1 -> i``), so they never reach a valid row; they are excluded when the
    minimum over rows is read.
    """
    batch, m, n = cost.shape
    by_col = cost.transpose(1, 2).contiguous()  # (B, N, M)
    row_ok = torch.arange(m, device=cost.device)[None, :] < m_len[:, None]  # (B, M)
    bufs = [cost.new_full((batch, m + 1), _INF) for _ in range(2)]
    out = cost.new_zeros(batch)
    ends = _groups(n_len - 1, n)
    for j in range(n):
        cur, prev = bufs[j % 2], bufs[(j - 1) % 2]
        dst = cur[:, 1:]  # (B, M)
        if j == 0:
            dst.copy_(by_col[:, 0])
        else:
            torch.minimum(prev[:, :-1], prev[:, 1:], out=dst)  # diagonal, horizontal
            dst.add_(by_col[:, j])
        idx = ends[j]
        if idx.numel():
            out[idx] = dst[idx].masked_fill(~row_ok[idx], _INF).amin(dim=1)
    return out


def otam(
    cost: Tensor,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
    return_path: bool = False,
) -> AlignmentResult:
    r"""Ordered temporal alignment (OTAM, Cao et al. 2020): DTW with free start and end rows.

    The cost matrix of each problem is padded with a zero column on both sides, ``C_pad`` of
    shape (m, n + 2), and the cheapest path from ``(0, 0)`` to ``(m - 1, n + 1)`` is taken, where
    a cell of a real column can only be entered from its left or diagonal neighbour, and only
    the two padding columns also admit the vertical step:

    .. math::
        R_{i,j} = C^{pad}_{i,j} + \begin{cases}
            \min(R_{i-1,j-1},\ R_{i,j-1}) & 1 \le j \le n \\
            \min(R_{i-1,j-1},\ R_{i-1,j},\ R_{i,j-1}) & j \in \{0, n+1\}
        \end{cases}

    Hence every column (clip, in Norton's orientation) is matched to exactly one row, in order,
    with the row advancing by 0 or 1 per column, while the path may start and end at *any row*
    (captions before the start and after the end are skipped for free):
    ``cost = min over f: {0..n-1} -> {0..m-1}, f(j+1) - f(j) in {0, 1}, of sum_j C[f(j), j]``.

    Parameters
    ----------
    cost : shape (B, M, N), pairwise costs (lower = better). Rows are the sequence that may be
        trimmed at both ends, columns the sequence matched completely. Norton's evaluation puts
        captions on rows and clips on columns, and adds the transposed direction (see
        ``nortonkit.compat.official_otam_score``).
    row_mask, col_mask : shape (B, M) and (B, N), bool prefix masks (True = valid).
    return_path : also return the optimal path over the real cells (exactly ``n_b`` ones).

    Returns
    -------
    AlignmentResult with ``cost`` of shape (B,) and ``path`` of shape (B, M, N) or None.

    Notes
    -----
    Cao et al. (2020), OTAM, hard-minimum version; used by Norton's Table 2. This is the
    corrected recurrence: the official evaluation (``OTAM_eval_cum_dist``) subtracts instead of
    adds the minimum in the first real column and also lets that column take vertical steps
    (see ``nortonkit.compat.official_otam_cum_dist``); both quirks vanish for non-negative
    costs. Runs as a column wavefront: ``N`` vectorised steps.

    Examples
    --------
    >>> c = torch.tensor([[[5.0, 5.0], [1.0, 5.0], [5.0, 1.0]]])  # rows 1-2 match, row 0 skipped
    >>> r = otam(c, return_path=True)
    >>> r.cost
    tensor([2.])
    >>> r.path
    tensor([[[0., 0.],
             [1., 0.],
             [0., 1.]]])
    """
    x, m_len, n_len = _prepare("cost", cost, row_mask, col_mask)
    if not return_path and _fast_path_ok(x):
        return AlignmentResult(torch.cat(_chunked(_otam_inplace, x, m_len, n_len)), None)

    def run(xc: Tensor, mc: Tensor, nc: Tensor) -> tuple[Tensor, Tensor | None]:
        return _otam_columns(xc, mc, nc, return_path)

    parts = _chunked(run, x, m_len, n_len)
    value = torch.cat([p[0] for p in parts])
    path = torch.cat([p[1] for p in parts]) if return_path else None
    return AlignmentResult(value, path)


# --------------------------------------------------------------------------------------------
# Cap. Avg.


def cap_avg(
    similarity: Tensor,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Caption average: each caption takes its best clip; the score is the mean over captions.

    .. math::
        \mathrm{score}_b = \frac{1}{n_b} \sum_{j < n_b} \max_{i < m_b} S_{b,i,j}

    Parameters
    ----------
    similarity : shape (B, M, N), similarities (higher = better) with **rows = clips** of the
        candidate video and **columns = captions** of the query paragraph (the shape glossary's
        default). Transpose the official text x clip blocks before calling.
    row_mask, col_mask : shape (B, M) and (B, N), bool masks (True = valid); they need not be
        prefixes here.

    Returns
    -------
    Tensor of shape (B,): the score of each (paragraph, video) pair, higher = better.

    Notes
    -----
    "Cap. Avg." of Norton's video-paragraph retrieval (Sec. 4.1, Table 2); the official
    ``FullVideoRetrievalMetric`` takes, per caption, the maximum over the candidate's clips and
    averages over the paragraph's captions.

    Examples
    --------
    >>> s = torch.tensor([[[0.9, 0.1], [0.2, 0.5]]])  # 2 clips x 2 captions
    >>> cap_avg(s)
    tensor([0.7000])
    """
    check_tensor("similarity", similarity, ndim=3)
    batch, m, n = similarity.shape
    check_mask("row_mask", row_mask, (batch, m))
    check_mask("col_mask", col_mask, (batch, n))
    rm = row_mask if row_mask is not None else similarity.new_ones((batch, m), dtype=torch.bool)
    cm = col_mask if col_mask is not None else similarity.new_ones((batch, n), dtype=torch.bool)
    check_nonempty_mask("row_mask", rm, "rows")
    check_nonempty_mask("col_mask", cm, "columns")
    if not bool(torch.isfinite(similarity.detach().sum())):
        check_finite("similarity", similarity, rm[:, :, None] & cm[:, None, :])
    return torch.cat(_chunked(_cap_avg_chunk, similarity, rm, cm))


def _cap_avg_chunk(similarity: Tensor, rm: Tensor, cm: Tensor) -> Tensor:
    best = torch.where(rm[:, :, None], similarity, -_INF).amax(dim=1)  # (B, N), best clips
    best = torch.where(cm, best, torch.zeros((), dtype=best.dtype, device=best.device))
    return masked_mean(best, cm, dim=1)
