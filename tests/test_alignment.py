"""DTW, OTAM, soft-DTW and Cap. Avg. against brute force, dtw-python, loops and padding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import TOL, TOL_FINITE_DIFF
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import (
    all_monotone_paths,
    brute_force_dtw,
    brute_force_expected_alignment,
    brute_force_otam,
    brute_force_otam_map,
    brute_force_soft_dtw,
    delannoy,
    is_monotone_path,
    otam_paths,
)

from nortonkit import alignment
from nortonkit.alignment import AlignmentResult, cap_avg, dtw, otam, soft_dtw

SHAPES = [(m, n) for m in range(1, 5) for n in range(1, 6)]


def _masks(m_len: torch.Tensor, n_len: torch.Tensor, big_m: int, big_n: int):
    rm = torch.arange(big_m)[None, :] < m_len[:, None]
    cm = torch.arange(big_n)[None, :] < n_len[:, None]
    return rm, cm


def _random_padded(generator, batch=12, big_m=7, big_n=9, dtype=torch.float64, garbage=None):
    """Padded (B, M, N) costs with random prefix lengths; padding filled with ``garbage``."""
    m_len = torch.randint(1, big_m + 1, (batch,), generator=generator)
    n_len = torch.randint(1, big_n + 1, (batch,), generator=generator)
    cost = torch.randn(batch, big_m, big_n, generator=generator, dtype=dtype)
    rm, cm = _masks(m_len, n_len, big_m, big_n)
    if garbage is not None:
        cost = cost.masked_fill(~(rm[:, :, None] & cm[:, None, :]), garbage)
    return cost, rm, cm, m_len, n_len


# --------------------------------------------------------------------------------------------
# rung 1: brute force and an independent implementation


@pytest.mark.parametrize("m,n", SHAPES)
def test_path_enumeration_matches_delannoy(m, n):
    paths = all_monotone_paths(m, n)
    assert len(paths) == delannoy(m - 1, n - 1)
    assert len({tuple(p) for p in paths}) == len(paths)


def test_delannoy_known_values():
    assert [delannoy(3, k) for k in range(5)] == [1, 7, 25, 63, 129]


@pytest.mark.parametrize("m,n", SHAPES)
def test_dtw_equals_brute_force(m, n, generator):
    cost = torch.randn(3, m, n, generator=generator, dtype=torch.float64)
    got = dtw(cost).cost
    want = torch.tensor([brute_force_dtw(c) for c in cost], dtype=torch.float64)
    torch.testing.assert_close(got, want, **TOL[torch.float64])


def test_dtw_equals_dtw_python(generator):
    dtwpy = pytest.importorskip("dtw")
    for m, n in [(1, 1), (1, 7), (6, 1), (3, 4), (12, 15), (20, 20), (17, 5)]:
        cost = torch.rand(2, m, n, generator=generator, dtype=torch.float64)
        got = dtw(cost).cost
        for b in range(2):
            want = dtwpy.dtw(
                cost[b].numpy(),
                keep_internals=False,
                distance_only=True,
                step_pattern="symmetric1",
            ).distance
            assert got[b].item() == pytest.approx(want, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("m,n", SHAPES)
def test_otam_equals_both_brute_forces(m, n, generator):
    cost = torch.randn(3, m, n, generator=generator, dtype=torch.float64)
    got = otam(cost).cost
    for b in range(3):
        assert got[b].item() == pytest.approx(brute_force_otam(cost[b]), abs=1e-12)
        assert got[b].item() == pytest.approx(brute_force_otam_map(cost[b]), abs=1e-12)


def test_otam_paths_use_vertical_steps_only_in_padding_columns():
    for path in otam_paths(3, 4):
        for (i0, j0), (i1, j1) in zip(path[:-1], path[1:]):
            if (i1 - i0, j1 - j0) == (1, 0):
                assert j1 in (0, 5)


@pytest.mark.parametrize("m,n", [(1, 1), (2, 2), (3, 4), (4, 5), (4, 3)])
def test_soft_dtw_equals_soft_minimum_over_all_paths(m, n, generator):
    cost = torch.randn(2, m, n, generator=generator, dtype=torch.float64)
    for gamma in (0.1, 1.0, 10.0):
        got = soft_dtw(cost, gamma).cost
        for b in range(2):
            assert got[b].item() == pytest.approx(brute_force_soft_dtw(cost[b], gamma), abs=1e-10)


@given(
    st.integers(1, 4),
    st.integers(1, 5),
    st.integers(0, 2**31 - 1),
)
@settings(max_examples=40, deadline=None)
def test_dtw_and_otam_brute_force_randomized(m, n, seed):
    g = torch.Generator().manual_seed(seed)
    cost = (torch.randint(-3, 4, (1, m, n), generator=g)).double()  # many ties
    assert dtw(cost).cost.item() == brute_force_dtw(cost[0])
    assert otam(cost).cost.item() == brute_force_otam(cost[0])
    assert dtw(cost, return_path=True).cost.item() == brute_force_dtw(cost[0])
    assert otam(cost, return_path=True).cost.item() == brute_force_otam(cost[0])


# --------------------------------------------------------------------------------------------
# rung 2: fast equals slow


@pytest.mark.parametrize("measure", ["dtw", "otam", "soft_dtw"])
def test_batched_equals_loop_and_masked_equals_unpadded(measure, generator):
    cost, rm, cm, m_len, n_len = _random_padded(generator, garbage=float("nan"))
    fn = {
        "dtw": lambda c, r=None, k=None: dtw(c, r, k).cost,
        "otam": lambda c, r=None, k=None: otam(c, r, k).cost,
        "soft_dtw": lambda c, r=None, k=None: soft_dtw(c, 0.3, r, k).cost,
    }[measure]
    batched = fn(cost, rm, cm)
    assert batched.shape == (12,)
    for b in range(12):
        alone = fn(cost[b : b + 1, : m_len[b], : n_len[b]])
        torch.testing.assert_close(batched[b : b + 1], alone, **TOL[torch.float64])


@pytest.mark.parametrize("garbage", [float("nan"), float("inf"), -float("inf"), 1e30, 0.0])
def test_padding_garbage_is_ignored(garbage, generator):
    cost, rm, cm, _, _ = _random_padded(generator)
    dirty = cost.masked_fill(~(rm[:, :, None] & cm[:, None, :]), garbage)
    for fn in (dtw, otam):
        torch.testing.assert_close(fn(dirty, rm, cm).cost, fn(cost, rm, cm).cost)
        torch.testing.assert_close(
            fn(dirty, rm, cm, return_path=True).path, fn(cost, rm, cm, return_path=True).path
        )
    torch.testing.assert_close(soft_dtw(dirty, 0.5, rm, cm).cost, soft_dtw(cost, 0.5, rm, cm).cost)
    torch.testing.assert_close(cap_avg(dirty, rm, cm), cap_avg(cost, rm, cm))


def test_fast_path_equals_autograd_path(generator):
    """The in-place no-grad wavefronts and the differentiable ones agree exactly."""
    cost, rm, cm, _, _ = _random_padded(generator, batch=40)
    with torch.no_grad():
        fast = (dtw(cost, rm, cm).cost, otam(cost, rm, cm).cost)
    leaf = cost.clone().requires_grad_(True)
    slow = (dtw(leaf, rm, cm).cost, otam(leaf, rm, cm).cost)
    assert slow[0].requires_grad and slow[1].requires_grad
    torch.testing.assert_close(fast[0], slow[0].detach(), rtol=0, atol=0)
    torch.testing.assert_close(fast[1], slow[1].detach(), rtol=0, atol=0)


def test_views_with_offsets_and_strides_equal_their_copies(generator):
    base = torch.randn(10, 5, 6, generator=generator, dtype=torch.float64)
    views = [base[3:7], base[:, 1:4], base.transpose(1, 2)[2:5], base[::2], base[4:5, 2:]]
    for view in views:
        copy = view.clone()
        for fn in (dtw, otam):
            torch.testing.assert_close(fn(view).cost, fn(copy).cost, rtol=0, atol=0)
            torch.testing.assert_close(
                fn(view, return_path=True).path, fn(copy, return_path=True).path
            )
        torch.testing.assert_close(soft_dtw(view, 0.3).cost, soft_dtw(copy, 0.3).cost)
        torch.testing.assert_close(cap_avg(view), cap_avg(copy))


def test_chunks_are_stitched_in_order(generator, monkeypatch):
    cost, rm, cm, _, _ = _random_padded(generator, batch=23)
    whole = [dtw(cost, rm, cm).cost, otam(cost, rm, cm).cost, soft_dtw(cost, 0.2, rm, cm).cost]
    whole_paths = dtw(cost, rm, cm, return_path=True).path
    monkeypatch.setattr(alignment, "_CHUNK", 5)
    parts = [dtw(cost, rm, cm).cost, otam(cost, rm, cm).cost, soft_dtw(cost, 0.2, rm, cm).cost]
    for a, b in zip(whole, parts):
        torch.testing.assert_close(a, b, **TOL[torch.float64])
    torch.testing.assert_close(dtw(cost, rm, cm, return_path=True).path, whole_paths)


def test_float32_matches_float64(generator):
    cost, rm, cm, _, _ = _random_padded(generator)
    for fn in (dtw, otam):
        c32 = fn(cost.float(), rm, cm).cost
        assert c32.dtype == torch.float32
        torch.testing.assert_close(c32.double(), fn(cost, rm, cm).cost, rtol=1e-5, atol=1e-5)
    s32 = soft_dtw(cost.float(), 0.5, rm, cm).cost
    torch.testing.assert_close(s32.double(), soft_dtw(cost, 0.5, rm, cm).cost, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# paths


def test_dtw_path_is_a_valid_monotone_path_with_the_reported_cost(generator):
    cost, rm, cm, m_len, n_len = _random_padded(generator, batch=30)
    res = dtw(cost, rm, cm, return_path=True)
    assert isinstance(res, AlignmentResult) and res.path.shape == cost.shape
    for b in range(30):
        p = res.path[b]
        assert p[~(rm[b][:, None] & cm[b][None, :])].abs().sum() == 0  # nothing on padding
        assert is_monotone_path(p[: m_len[b], : n_len[b]].numpy())
    torch.testing.assert_close((res.path * cost).sum(dim=(1, 2)), res.cost, **TOL[torch.float64])


def test_otam_path_matches_each_column_once(generator):
    cost, rm, cm, m_len, n_len = _random_padded(generator, batch=30)
    res = otam(cost, rm, cm, return_path=True)
    for b in range(30):
        p = res.path[b, : m_len[b], : n_len[b]]
        assert res.path[b].sum() == n_len[b]
        assert torch.all(p.sum(dim=0) == 1)  # one row per column
        rows = p.argmax(dim=0)
        assert torch.all((rows[1:] - rows[:-1] >= 0) & (rows[1:] - rows[:-1] <= 1))
    torch.testing.assert_close((res.path * cost).sum(dim=(1, 2)), res.cost, **TOL[torch.float64])


def test_path_is_none_unless_asked(generator):
    cost = torch.randn(2, 3, 3, generator=generator)
    assert dtw(cost).path is None and otam(cost).path is None
    assert soft_dtw(cost, 1.0).path is None


def test_dtw_gradient_is_the_optimal_path(generator):
    cost = torch.rand(4, 5, 6, generator=generator, dtype=torch.float64).requires_grad_(True)
    res = dtw(cost, return_path=True)
    (grad,) = torch.autograd.grad(res.cost.sum(), cost)
    torch.testing.assert_close(grad, res.path)


# --------------------------------------------------------------------------------------------
# rung 3: properties


def test_known_small_cases():
    c = torch.tensor([[[1.0, 2.0, 3.0]]])
    assert dtw(c).cost.item() == 6.0
    assert otam(c).cost.item() == 6.0  # one row: every column on it
    col = torch.tensor([[[4.0], [-1.0], [2.0]]])
    assert dtw(col).cost.item() == 5.0
    assert otam(col).cost.item() == -1.0  # one column: its best row


def test_otam_is_bounded_by_dtw_for_nonnegative_costs(generator):
    """DTW's path crosses every column too, so a feasible OTAM assignment is no worse."""
    cost = torch.rand(20, 4, 6, generator=generator, dtype=torch.float64)
    assert torch.all(otam(cost).cost <= dtw(cost).cost + 1e-12)


def test_soft_dtw_tends_to_dtw(generator):
    cost = torch.randn(5, 4, 5, generator=generator, dtype=torch.float64)
    hard = dtw(cost).cost
    log_paths = math.log(delannoy(3, 4))
    for gamma in (10.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4):
        soft = soft_dtw(cost, gamma).cost
        assert torch.all(soft <= hard + 1e-12)
        assert torch.all(soft >= hard - gamma * log_paths - 1e-12)
    torch.testing.assert_close(soft_dtw(cost, 1e-5).cost, hard, rtol=0, atol=1e-4)


def test_soft_dtw_gradient_is_the_expected_alignment(generator):
    cost = torch.randn(3, 4, 5, generator=generator, dtype=torch.float64).requires_grad_(True)
    gamma = 0.7
    (grad,) = torch.autograd.grad(soft_dtw(cost, gamma).cost.sum(), cost)
    for b in range(3):
        want = torch.from_numpy(brute_force_expected_alignment(cost[b].detach(), gamma))
        torch.testing.assert_close(grad[b], want, rtol=1e-9, atol=1e-12)
        assert torch.all(grad[b] >= 0)
        assert grad[b, 0, 0].item() == pytest.approx(1.0)
        assert grad[b, -1, -1].item() == pytest.approx(1.0)
        assert max(4, 5) - 1e-9 <= grad[b].sum().item() <= 4 + 5 - 1 + 1e-9


def test_soft_dtw_gradient_masked_equals_unpadded_and_is_zero_on_padding(generator):
    cost, rm, cm, m_len, n_len = _random_padded(generator, batch=6, garbage=float("nan"))
    leaf = cost.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(soft_dtw(leaf, 0.4, rm, cm).cost.sum(), leaf)
    assert torch.isfinite(grad).all()
    valid = rm[:, :, None] & cm[:, None, :]
    assert grad[~valid].abs().sum() == 0
    for b in range(6):
        small = cost[b : b + 1, : m_len[b], : n_len[b]].clone().requires_grad_(True)
        (g1,) = torch.autograd.grad(soft_dtw(small, 0.4).cost.sum(), small)
        torch.testing.assert_close(grad[b, : m_len[b], : n_len[b]], g1[0], **TOL[torch.float64])


# --------------------------------------------------------------------------------------------
# rung 4: gradients against finite differences


@pytest.mark.parametrize("m,n", [(1, 1), (2, 3), (4, 4), (5, 5), (5, 2)])
def test_soft_dtw_gradcheck(m, n, generator):
    cost = torch.randn(2, m, n, generator=generator, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c: soft_dtw(c, 0.5).cost, (cost,))
    assert torch.autograd.gradgradcheck(lambda c: soft_dtw(c, 0.5).cost, (cost,))


def test_soft_dtw_gradcheck_with_masks(generator):
    cost, rm, cm, _, _ = _random_padded(generator, batch=3, big_m=4, big_n=5)
    cost.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c: soft_dtw(c, 0.3, rm, cm).cost, (cost,))


def test_soft_dtw_gradient_matches_finite_differences_at_small_gamma(generator):
    cost = torch.randn(1, 3, 4, generator=generator, dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(soft_dtw(cost, 0.05).cost.sum(), cost)
    h = 1e-6
    fd = torch.zeros_like(grad)
    with torch.no_grad():
        for i in range(3):
            for j in range(4):
                e = torch.zeros_like(cost)
                e[0, i, j] = h
                fd[0, i, j] = (soft_dtw(cost + e, 0.05).cost - soft_dtw(cost - e, 0.05).cost) / (
                    2 * h
                )
    torch.testing.assert_close(grad, fd, **TOL_FINITE_DIFF)


# --------------------------------------------------------------------------------------------
# Cap. Avg.


def test_cap_avg_hand_example_and_loop(generator):
    s = torch.tensor([[[0.9, 0.1, 0.3], [0.2, 0.5, 0.4]]])  # 2 clips x 3 captions
    assert cap_avg(s).item() == pytest.approx((0.9 + 0.5 + 0.4) / 3)
    sim, rm, cm, m_len, n_len = _random_padded(generator, garbage=float("nan"))
    got = cap_avg(sim, rm, cm)
    for b in range(12):
        block = sim[b, : m_len[b], : n_len[b]]
        assert got[b].item() == pytest.approx(block.max(dim=0).values.mean().item(), abs=1e-12)


def test_cap_avg_accepts_non_prefix_masks():
    s = torch.tensor([[[5.0, 1.0], [0.0, 2.0], [9.0, 9.0]]])
    rm = torch.tensor([[False, True, False]])
    cm = torch.tensor([[False, True]])
    assert cap_avg(s, rm, cm).item() == 2.0


def test_cap_avg_gradient_goes_to_the_best_clips():
    s = torch.tensor([[[0.9, 0.1], [0.2, 0.5]]], requires_grad=True)
    cap_avg(s).sum().backward()
    torch.testing.assert_close(s.grad, torch.tensor([[[0.5, 0.0], [0.0, 0.5]]]))


# --------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: dtw(torch.zeros(3, 3)), "cost: expected 3 dims"),
        (lambda: otam(torch.zeros(1, 2, 3, 4)), "cost: expected 3 dims"),
        (lambda: dtw(torch.zeros(1, 2, 2, dtype=torch.long)), "floating-point"),
        (lambda: dtw(torch.zeros(1, 0, 2)), "at least one row and one column"),
        (lambda: dtw(torch.tensor([[[0.0, float("nan")]]])), r"cost: expected finite.*\(0, 0, 1\)"),
        (lambda: otam(torch.tensor([[[float("inf")]]])), "cost: expected finite"),
        (
            lambda: dtw(torch.zeros(2, 3, 4), row_mask=torch.ones(2, 4, dtype=torch.bool)),
            r"row_mask: expected shape \(2, 3\), got \(2, 4\)",
        ),
        (lambda: dtw(torch.zeros(2, 3, 4), col_mask=torch.ones(2, 4)), "torch.bool"),
        (
            lambda: otam(
                torch.zeros(2, 3, 4), row_mask=torch.tensor([[1, 1, 1], [0, 0, 0]]).bool()
            ),
            r"row_mask: problem\(s\) \[1\] have no valid rows",
        ),
        (
            lambda: dtw(torch.zeros(1, 3, 4), col_mask=torch.tensor([[True, False, True, False]])),
            r"col_mask: expected a prefix mask.*\[0\]",
        ),
        (lambda: soft_dtw(torch.zeros(1, 2, 2), 0.0), "gamma: expected a finite number > 0"),
        (lambda: soft_dtw(torch.zeros(1, 2, 2), -1.0), "gamma"),
        (lambda: soft_dtw(torch.zeros(1, 2, 2), float("nan")), "gamma"),
        (lambda: cap_avg(torch.zeros(2, 2)), "similarity: expected 3 dims"),
        (lambda: cap_avg(torch.tensor([[[float("nan")]]])), "similarity: expected finite"),
        (
            lambda: cap_avg(torch.zeros(1, 2, 2), col_mask=torch.zeros(1, 2, dtype=torch.bool)),
            "no valid columns",
        ),
    ],
)
def test_validation_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_nan_in_padding_is_not_an_error_but_nan_in_valid_cells_is():
    cost = torch.tensor([[[1.0, float("nan")]]])
    cm = torch.tensor([[True, False]])
    assert dtw(cost, col_mask=cm).cost.item() == 1.0
    with pytest.raises(ValueError, match="cost: expected finite"):
        dtw(cost, col_mask=torch.tensor([[True, True]]))


def test_results_are_typed_and_on_the_input_dtype(generator):
    cost = torch.randn(2, 3, 4, generator=generator)
    for res in (dtw(cost), otam(cost), soft_dtw(cost, 1.0)):
        assert isinstance(res, AlignmentResult)
        assert res.cost.dtype == torch.float32 and res.cost.shape == (2,)
    assert np.isfinite(cap_avg(cost).numpy()).all()
