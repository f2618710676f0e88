"""Brute-force oracles for the sequence measures (HOUSE_STYLE R16, rung 1).

Everything here enumerates alignment paths explicitly, in plain Python and float64, so that
it is obviously correct on matrices up to about 4 x 5. The fast batched implementations in
``nortonkit.alignment`` are tested against these; other test files may import them too
(``from reference import brute_force_dtw``; pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np

Cell = tuple[int, int]
Step = tuple[int, int]

DTW_STEPS: tuple[Step, ...] = ((1, 0), (0, 1), (1, 1))


def delannoy(m: int, n: int) -> int:
    """Delannoy number D(m, n): lattice paths from (0, 0) to (m, n) with steps E, N, NE.

    The number of DTW paths through an (m+1) x (n+1) matrix is ``delannoy(m, n)``.

    >>> [delannoy(k, k) for k in range(5)]
    [1, 3, 13, 63, 321]
    """
    return sum(math.comb(m, k) * math.comb(n, k) * 2**k for k in range(min(m, n) + 1))


def all_monotone_paths(
    m: int,
    n: int,
    steps: Sequence[Step] = DTW_STEPS,
    allowed: Callable[[Cell, Step], bool] | None = None,
) -> list[list[Cell]]:
    """Every path from (0, 0) to (m - 1, n - 1) made of the given (row, column) steps.

    ``allowed(target_cell, step)`` may veto a step into a cell (used for OTAM's column rules).

    >>> all_monotone_paths(2, 2)
    [[(0, 0), (1, 0), (1, 1)], [(0, 0), (0, 1), (1, 1)], [(0, 0), (1, 1)]]
    """
    if m < 1 or n < 1:
        raise ValueError(f"m, n: expected sizes >= 1, got {(m, n)}")
    out: list[list[Cell]] = []

    def walk(path: list[Cell]) -> None:
        i, j = path[-1]
        if (i, j) == (m - 1, n - 1):
            out.append(list(path))
            return
        for di, dj in steps:
            cell = (i + di, j + dj)
            if cell[0] >= m or cell[1] >= n:
                continue
            if allowed is not None and not allowed(cell, (di, dj)):
                continue
            path.append(cell)
            walk(path)
            path.pop()

    walk([(0, 0)])
    return out


def path_cost(cost: np.ndarray, path: Sequence[Cell]) -> float:
    """Sum of ``cost`` over the cells of ``path`` (float64)."""
    return float(sum(float(cost[i, j]) for i, j in path))


def path_matrix(path: Sequence[Cell], m: int, n: int) -> np.ndarray:
    """0/1 matrix of shape (m, n) marking the cells of ``path``."""
    a = np.zeros((m, n))
    for i, j in path:
        a[i, j] = 1.0
    return a


def brute_force_dtw(cost) -> float:
    """DTW by enumerating all Delannoy paths: ``min_P sum_{(i,j) in P} cost[i, j]``."""
    c = np.asarray(cost, dtype=np.float64)
    return min(path_cost(c, p) for p in all_monotone_paths(*c.shape))


def brute_force_soft_dtw(cost, gamma: float) -> float:
    """Soft-DTW as the soft minimum over all paths: ``-gamma log sum_P exp(-cost(P)/gamma)``."""
    c = np.asarray(cost, dtype=np.float64)
    vals = np.array([path_cost(c, p) for p in all_monotone_paths(*c.shape)])
    lo = vals.min()
    return float(lo - gamma * np.log(np.exp(-(vals - lo) / gamma).sum()))


def brute_force_expected_alignment(cost, gamma: float) -> np.ndarray:
    """``E[A_P]`` under ``p(P) ~ exp(-cost(P)/gamma)``: the gradient of soft-DTW w.r.t. cost."""
    c = np.asarray(cost, dtype=np.float64)
    paths = all_monotone_paths(*c.shape)
    vals = np.array([path_cost(c, p) for p in paths])
    w = np.exp(-(vals - vals.min()) / gamma)
    w /= w.sum()
    return sum(wk * path_matrix(p, *c.shape) for wk, p in zip(w, paths))


def otam_paths(m: int, n: int) -> list[list[Cell]]:
    """All OTAM paths on the zero-padded (m, n + 2) matrix, from (0, 0) to (m - 1, n + 1).

    Steps (1, 0), (0, 1), (1, 1); a vertical step (1, 0) is allowed only inside the padding
    columns 0 and n + 1.
    """
    return all_monotone_paths(
        m, n + 2, DTW_STEPS, allowed=lambda cell, step: step != (1, 0) or cell[1] in (0, n + 1)
    )


def brute_force_otam(cost) -> float:
    """OTAM by enumerating all paths through the zero-padded matrix (see :func:`otam_paths`)."""
    c = np.asarray(cost, dtype=np.float64)
    m, n = c.shape
    padded = np.pad(c, ((0, 0), (1, 1)))
    return min(path_cost(padded, p) for p in otam_paths(m, n))


def brute_force_otam_map(cost) -> float:
    """OTAM in closed form: ``min_f sum_j cost[f(j), j]`` over maps f with steps 0 or 1.

    An independent second oracle: each column is matched to exactly one row, consecutive
    columns advance the row by 0 or 1, and the first row is free.
    """
    c = np.asarray(cost, dtype=np.float64)
    m, n = c.shape

    @cache
    def best(j: int, i: int) -> float:  # cheapest assignment of columns j.. with f(j) = i
        here = float(c[i, j])
        if j == n - 1:
            return here
        nxt = [best(j + 1, i)] + ([best(j + 1, i + 1)] if i + 1 < m else [])
        return here + min(nxt)

    return min(best(0, i) for i in range(m))


def is_monotone_path(a: np.ndarray, steps: Sequence[Step] = DTW_STEPS) -> bool:
    """True when the 0/1 matrix ``a`` marks one path from (0, 0) to (m-1, n-1) with ``steps``."""
    a = np.asarray(a)
    if not np.isin(a, (0.0, 1.0)).all():
        return False
    cells = sorted(zip(*np.nonzero(a)))
    if not cells or cells[0] != (0, 0) or cells[-1] != (a.shape[0] - 1, a.shape[1] - 1):
        return False
    return all((c1[0] - c0[0], c1[1] - c0[1]) in steps for c0, c1 in zip(cells[:-1], cells[1:]))
