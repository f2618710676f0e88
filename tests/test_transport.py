"""Tests for nortonkit.transport: the ladder of HOUSE_STYLE R16.

1. closed forms and a dense float64 reference (itself checked against POT),
2. fast == slow: batched == loop, masked == unpadded, scaled back-end == log back-end,
3. properties: marginals (bucket row/column included), bucket behaviour, permutations,
4. gradients: gradcheck in float64 through the unrolled iterations,
plus one validation test per bad input.
"""

from __future__ import annotations

import importlib
import math
import sys

import numpy as np
import ot
import pytest
import torch
from conftest import TOL, TOL_FINITE_DIFF
from hypothesis import given, settings
from hypothesis import strategies as st

from nortonkit import transport as sk
from nortonkit.transport import (
    SinkhornResult,
    bucket_sinkhorn,
    bucket_value_from_quantile,
    sinkhorn,
)

F64 = torch.float64
# Converged plans of two different solvers (ours vs POT, ours vs the reference) agree to this.
TOL_CONVERGED = dict(rtol=0.0, atol=1e-6)
# Same iterates in float32 vs float64 (B1 acceptance): plan entries are <= 1.
TOL_F32_VS_F64 = dict(rtol=0.0, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Level 1: references
# --------------------------------------------------------------------------------------------


def reference_sinkhorn(
    scores: torch.Tensor,
    eps: float,
    a: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    n_iters: int | None = None,
    tol: float = 1e-14,
    max_iters: int = 200_000,
) -> torch.Tensor:
    """Dense float64 log-domain Sinkhorn on one unpadded (M, N) problem, u-update first.

    With ``n_iters`` it runs exactly that many iterations (the same iterates as the library);
    without, it iterates until the column marginals are within ``tol`` (many iterations).
    """
    s = scores.to(F64)
    m, n = s.shape
    a = torch.full((m,), 1.0 / m, dtype=F64) if a is None else a.to(F64)
    b = torch.full((n,), 1.0 / n, dtype=F64) if b is None else b.to(F64)
    k, la, lb = s / eps, a.log(), b.log()
    u, v = torch.zeros(m, dtype=F64), torch.zeros(n, dtype=F64)
    for it in range(n_iters if n_iters is not None else max_iters):
        u = la - torch.logsumexp(k + v[None, :], dim=1)
        v = lb - torch.logsumexp(k + u[:, None], dim=0)
        if n_iters is None and it % 20 == 19:
            plan = (k + u[:, None] + v[None, :]).exp()
            if float((plan.sum(1) - a).abs().max()) < tol:
                break
    return (k + u[:, None] + v[None, :]).exp()


def augmented(scores: torch.Tensor, p: float) -> torch.Tensor:
    """``S_bar`` (M+1, N+1) of Norton Eq. (6), built by hand."""
    m, n = scores.shape
    out = torch.full((m + 1, n + 1), float(p), dtype=scores.dtype)
    out[:m, :n] = scores
    return out


def bucket_marginals(m: int, n: int, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The augmented marginals written out by hand (rows (M+1,), columns (N+1,))."""
    if kind == "superglue":
        a = torch.tensor([1.0 / (m + n)] * m + [n / (m + n)], dtype=F64)
        b = torch.tensor([1.0 / (m + n)] * n + [m / (m + n)], dtype=F64)
    else:
        a = torch.full((m + 1,), 1.0 / (m + 1), dtype=F64)
        b = torch.full((n + 1,), 1.0 / (n + 1), dtype=F64)
    return a, b


def reference_bucket(scores, p, eps, kind="superglue", renormalize=False, n_iters=None):
    """Kept block of the reference plan on ``S_bar`` (optionally rescaled to mass M)."""
    m, n = scores.shape
    a, b = bucket_marginals(m, n, kind)
    q = reference_sinkhorn(augmented(scores.to(F64), p), eps, a, b, n_iters=n_iters)[:m, :n]
    return q * (m / q.sum()) if renormalize else q


def pot_plan(scores, eps, a=None, b=None) -> torch.Tensor:
    m, n = scores.shape
    a = np.full(m, 1.0 / m) if a is None else a.numpy()
    b = np.full(n, 1.0 / n) if b is None else b.numpy()
    plan = ot.sinkhorn(
        a, b, -scores.numpy(), reg=eps, method="sinkhorn_log", numItermax=100_000, stopThr=1e-15
    )
    return torch.from_numpy(np.asarray(plan))


def rand_weights(shape, generator) -> torch.Tensor:
    w = torch.rand(shape, generator=generator, dtype=F64) + 0.2
    return w / w.sum(-1, keepdim=True)


def test_two_by_two_closed_form():
    # Uniform 1/2 marginals force Q11 = Q22 = x, Q12 = Q21 = 1/2 - x, and the entropic optimum
    # fixes the cross ratio x^2 / (1/2 - x)^2 = exp(d / eps), d = S11 + S22 - S12 - S21.
    s = torch.tensor([[0.7, -0.2], [0.4, 0.1]], dtype=F64)
    for eps in (0.1, 0.5, 2.0):
        d = float(s[0, 0] + s[1, 1] - s[0, 1] - s[1, 0])
        x = 0.5 / (1.0 + math.exp(-d / (2 * eps)))
        want = torch.tensor([[x, 0.5 - x], [0.5 - x, x]], dtype=F64)
        torch.testing.assert_close(sinkhorn(s, eps=eps, n_iters=200).plan, want, **TOL[F64])
        torch.testing.assert_close(reference_sinkhorn(s, eps), want, **TOL[F64])


@pytest.mark.parametrize("shape", [(4, 4), (3, 7), (7, 2), (1, 5), (6, 1)])
@pytest.mark.parametrize("eps", [0.05, 0.3, 1.0])
def test_reference_and_library_match_pot(shape, eps, generator):
    s = torch.rand(shape, generator=generator, dtype=F64) * 2 - 1
    want = pot_plan(s, eps)
    torch.testing.assert_close(reference_sinkhorn(s, eps), want, **TOL_CONVERGED)
    got = sinkhorn(s, eps=eps, n_iters=2000).plan
    torch.testing.assert_close(got, want, **TOL_CONVERGED)


@pytest.mark.parametrize("shape", [(5, 5), (3, 6), (6, 2)])
def test_nonuniform_marginals_match_pot(shape, generator):
    m, n = shape
    s = torch.randn(shape, generator=generator, dtype=F64)
    a, b = rand_weights(m, generator), rand_weights(n, generator)
    want = pot_plan(s, 0.5, a, b)
    got = sinkhorn(s, eps=0.5, n_iters=2000, row_marginal=a, col_marginal=b).plan
    torch.testing.assert_close(got, want, **TOL_CONVERGED)
    # Marginals with a total other than 1 (equal on both sides) scale the plan.
    got3 = sinkhorn(s, eps=0.5, n_iters=2000, row_marginal=3 * a, col_marginal=3 * b).plan
    torch.testing.assert_close(got3, 3 * want, **TOL_CONVERGED)


def test_masked_matches_pot_on_unpadded_subproblem(generator):
    s = torch.randn(2, 6, 7, generator=generator, dtype=F64)
    rows, cols = [4, 6], [7, 3]
    rm = sk_lengths(rows, 6)
    cm = sk_lengths(cols, 7)
    a = torch.where(rm, rand_weights((2, 6), generator), 0.0)
    a = a / a.sum(-1, keepdim=True)
    b = torch.where(cm, rand_weights((2, 7), generator), 0.0)
    b = b / b.sum(-1, keepdim=True)
    for marg in (False, True):
        kw = dict(row_marginal=a, col_marginal=b) if marg else {}
        q = sinkhorn(s, eps=0.4, n_iters=2000, row_mask=rm, col_mask=cm, **kw).plan
        for i, (r, c) in enumerate(zip(rows, cols)):
            sub_a = a[i, :r] if marg else None
            sub_b = b[i, :c] if marg else None
            want = pot_plan(s[i, :r, :c], 0.4, sub_a, sub_b)
            torch.testing.assert_close(q[i, :r, :c], want, **TOL_CONVERGED)
            assert float(q[i, r:, :].abs().sum() + q[i, :, c:].abs().sum()) == 0.0


def sk_lengths(lengths, size) -> torch.Tensor:
    return torch.arange(size)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("kind", ["superglue", "uniform"])
@pytest.mark.parametrize("renormalize", [False, True])
def test_bucket_matches_reference(kind, renormalize, generator):
    s = torch.rand(4, 6, generator=generator, dtype=F64)
    got = bucket_sinkhorn(
        s, 0.4, eps=0.1, n_iters=3000, marginals=kind, renormalize=renormalize
    ).plan
    want = reference_bucket(s, 0.4, 0.1, kind, renormalize)
    torch.testing.assert_close(got, want, **TOL_CONVERGED)


def test_bucket_is_sinkhorn_on_the_augmented_matrix(generator):
    s = torch.rand(5, 3, generator=generator, dtype=F64)
    for kind in ("superglue", "uniform"):
        a, b = bucket_marginals(5, 3, kind)
        full = sinkhorn(augmented(s, 0.35), eps=0.1, row_marginal=a, col_marginal=b)
        kept = bucket_sinkhorn(s, 0.35, eps=0.1, marginals=kind)
        torch.testing.assert_close(kept.log_plan, full.log_plan[:5, :3], **TOL[F64])
        torch.testing.assert_close(kept.log_u, full.log_u[:5], **TOL[F64])
        torch.testing.assert_close(kept.log_v, full.log_v[:3], **TOL[F64])


# --------------------------------------------------------------------------------------------
# Level 2: fast == slow
# --------------------------------------------------------------------------------------------


def test_fixed_iterations_equal_reference_iterates(generator):
    # Same algorithm, same start, same count: equal to rounding after 1, 7 and 50 iterations.
    s = torch.randn(4, 5, generator=generator, dtype=F64)
    for n_iters in (1, 7, 50):
        got = sinkhorn(s, eps=0.2, n_iters=n_iters).plan
        torch.testing.assert_close(got, reference_sinkhorn(s, 0.2, n_iters=n_iters), **TOL[F64])
        got_b = bucket_sinkhorn(s, 0.1, eps=0.2, n_iters=n_iters).plan
        want_b = reference_bucket(s, 0.1, 0.2, n_iters=n_iters)
        torch.testing.assert_close(got_b, want_b, **TOL[F64])


def _padded_batch(generator, batch=(2, 3), m_max=5, n_max=6, garbage=float("nan")):
    """Random problems of mixed sizes padded with garbage, plus their masks and sizes."""
    size = math.prod(batch)
    rows = torch.randint(1, m_max + 1, (size,), generator=generator)
    cols = torch.randint(1, n_max + 1, (size,), generator=generator)
    rows[0], cols[0] = m_max, n_max  # one full-size problem
    rm = (torch.arange(m_max)[None, :] < rows[:, None]).view(*batch, m_max)
    cm = (torch.arange(n_max)[None, :] < cols[:, None]).view(*batch, n_max)
    s = torch.rand(*batch, m_max, n_max, generator=generator, dtype=F64)
    s = s.masked_fill(~(rm[..., :, None] & cm[..., None, :]), garbage)
    return s, rm, cm, rows.view(batch), cols.view(batch)


@pytest.mark.parametrize("batch", [(6,), (2, 3), (2, 1, 3)])
def test_batched_equals_loop_sinkhorn(batch, generator):
    s, rm, cm, rows, cols = _padded_batch(generator, batch)
    res = sinkhorn(s, eps=0.1, row_mask=rm, col_mask=cm)
    assert res.log_plan.shape == s.shape and res.log_u.shape == rm.shape
    for idx in np.ndindex(*batch):
        r, c = int(rows[idx]), int(cols[idx])
        one = sinkhorn(s[idx][:r, :c], eps=0.1)
        torch.testing.assert_close(res.plan[idx][:r, :c], one.plan, **TOL[F64])
        torch.testing.assert_close(res.log_u[idx][:r], one.log_u, **TOL[F64])
        torch.testing.assert_close(res.log_v[idx][:c], one.log_v, **TOL[F64])


@pytest.mark.parametrize("batch", [(6,), (2, 3)])
@pytest.mark.parametrize("kind", ["superglue", "uniform"])
def test_batched_equals_loop_bucket(batch, kind, generator):
    s, rm, cm, rows, cols = _padded_batch(generator, batch)
    p = torch.rand(batch, generator=generator, dtype=F64)
    res = bucket_sinkhorn(s, p, eps=0.1, marginals=kind, renormalize=True, row_mask=rm, col_mask=cm)
    for idx in np.ndindex(*batch):
        r, c = int(rows[idx]), int(cols[idx])
        one = bucket_sinkhorn(
            s[idx][:r, :c], float(p[idx]), eps=0.1, marginals=kind, renormalize=True
        )
        torch.testing.assert_close(res.plan[idx][:r, :c], one.plan, **TOL[F64])


@pytest.mark.parametrize("garbage", [float("nan"), float("inf"), -float("inf"), 1e30, -1e30])
def test_masked_equals_unpadded_whatever_the_padding(garbage, generator):
    s, rm, cm, rows, cols = _padded_batch(generator, (4,), garbage=garbage)
    clean = s.nan_to_num(0.0, 0.0, 0.0)
    for fn in (
        lambda x: sinkhorn(x, eps=0.1, row_mask=rm, col_mask=cm),
        lambda x: bucket_sinkhorn(x, 0.5, eps=0.1, row_mask=rm, col_mask=cm, renormalize=True),
    ):
        res, ref = fn(s), fn(clean)
        torch.testing.assert_close(res.log_plan, ref.log_plan, **TOL[F64])
        valid = rm[..., :, None] & cm[..., None, :]
        assert torch.isfinite(res.log_plan[valid]).all()
        assert (res.log_plan[~valid] == -float("inf")).all() and (res.plan[~valid] == 0).all()
        assert (res.log_u[~rm] == 0).all() and (res.log_v[~cm] == 0).all()


def test_only_one_mask_given(generator):
    s = torch.rand(3, 4, 5, generator=generator, dtype=F64)
    rm = torch.tensor([[True, True, False, False]] * 3)
    got = sinkhorn(s, eps=0.2, row_mask=rm).plan
    torch.testing.assert_close(got[:, :2], sinkhorn(s[:, :2], eps=0.2).plan, **TOL[F64])
    cm = torch.tensor([[True, False, True, True, True]] * 3)
    got = bucket_sinkhorn(s, 0.3, eps=0.2, col_mask=cm).plan
    want = bucket_sinkhorn(s[..., [0, 2, 3, 4]], 0.3, eps=0.2).plan
    torch.testing.assert_close(got[..., [0, 2, 3, 4]], want, **TOL[F64])


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("masked", [False, True])
def test_scaled_backend_equals_log_backend(dtype, masked, generator):
    k = (torch.randn(3, 2, 6, 7, generator=generator, dtype=F64) * 8).to(dtype)
    la = torch.log_softmax(torch.randn(3, 2, 6, generator=generator, dtype=F64), -1).to(dtype)
    lb = torch.log_softmax(torch.randn(3, 2, 7, generator=generator, dtype=F64), -1).to(dtype)
    rm = cm = None
    if masked:
        rm = torch.rand(3, 2, 6, generator=generator) > 0.4
        cm = torch.rand(3, 2, 7, generator=generator) > 0.4
        rm[..., 0] = cm[..., 0] = True
    fast = sk._iterate_scaled(k, la, lb, rm, cm, 40)
    slow = sk._iterate_log(k, la, lb, rm, cm, 40)
    assert fast is not None
    tol = TOL[dtype] if dtype == F64 else dict(rtol=1e-4, atol=1e-4)
    for x, y in zip(fast, slow):
        assert x.dtype == dtype
        assert torch.equal(torch.isinf(x), torch.isinf(y))
        fin = torch.isfinite(y)
        torch.testing.assert_close(x[fin], y[fin], **tol)
    torch.testing.assert_close(fast[0].exp(), slow[0].exp(), **TOL[dtype])


def test_scaled_backend_declines_wide_problems():
    # A spread of S / eps beyond 0.7 log(1 / tiny) must fall back to the log domain.
    k = torch.tensor([[0.0, 80.0], [0.0, 0.0]])
    zeros = torch.full((2,), -math.log(2.0))
    assert sk._iterate_scaled(k, zeros, zeros, None, None, 5) is None
    assert sk._iterate_scaled(k.double(), zeros.double(), zeros.double(), None, None, 5)
    assert sk._iterate_scaled(k.half(), zeros.half(), zeros.half(), None, None, 5) is None


@pytest.mark.parametrize("eps", [1e-3, 0.01])
def test_tiny_eps_stays_finite_and_matches_reference(eps, generator):
    # S / eps spans up to 2000: only the log-domain back-end can run it; float32 must not NaN.
    s = torch.rand(3, 4, 5, generator=generator, dtype=F64) * 2 - 1
    for dtype in (torch.float32, F64):
        q = sinkhorn(s.to(dtype), eps=eps, n_iters=50).plan
        assert torch.isfinite(q).all()
        for i in range(3):
            want = reference_sinkhorn(s[i], eps, n_iters=50)
            torch.testing.assert_close(q[i].double(), want, **TOL_F32_VS_F64)


def test_float32_within_1e5_of_float64_reference_on_the_l_video_workload(generator):
    # B1's acceptance check on a slice of the workload: 8x8 + bucket, eps 0.1, 50 iterations.
    s = torch.rand(64, 8, 8, generator=generator, dtype=F64)
    p = bucket_value_from_quantile(torch.diagonal(s, dim1=-2, dim2=-1).flatten(), 0.3)
    got = bucket_sinkhorn(s.float(), float(p), eps=0.1, n_iters=50).plan
    assert got.dtype == torch.float32
    for i in range(0, 64, 8):
        want = reference_bucket(s[i], float(p), 0.1, n_iters=50)
        torch.testing.assert_close(got[i].double(), want, **TOL_F32_VS_F64)


def test_unroll_and_detach_give_the_same_plan(generator):
    s = torch.randn(2, 4, 5, generator=generator, dtype=F64)
    a = sinkhorn(s, eps=0.3, grad="detach")
    b = sinkhorn(s.clone().requires_grad_(), eps=0.3, grad="unroll")
    for x, y in zip(a[:3], b[:3]):
        torch.testing.assert_close(x, y.detach(), **TOL[F64])


# --------------------------------------------------------------------------------------------
# Level 3: properties
# --------------------------------------------------------------------------------------------


def test_marginals_hold_after_enough_iterations(generator):
    s, rm, cm, rows, cols = _padded_batch(generator, (5,), garbage=0.0)
    a = torch.where(rm, rand_weights((5, 5), generator), 0.0)
    a = a / a.sum(-1, keepdim=True)
    b = torch.where(cm, rand_weights((5, 6), generator), 0.0)
    b = b / b.sum(-1, keepdim=True)
    q = sinkhorn(
        s, eps=0.2, n_iters=500, row_marginal=a, col_marginal=b, row_mask=rm, col_mask=cm
    ).plan
    torch.testing.assert_close(q.sum(-1), a, **TOL_CONVERGED)
    torch.testing.assert_close(q.sum(-2), b, **TOL_CONVERGED)
    # Uniform default: 1 / (valid rows), 1 / (valid columns); masked entries get nothing.
    q = sinkhorn(s, eps=0.2, n_iters=500, row_mask=rm, col_mask=cm).plan
    torch.testing.assert_close(q.sum(-1), rm / rows[:, None].to(F64), **TOL_CONVERGED)
    torch.testing.assert_close(q.sum(-2), cm / cols[:, None].to(F64), **TOL_CONVERGED)
    # After the last (column) update the column marginals hold to rounding, at any n_iters.
    q = sinkhorn(s, eps=0.05, n_iters=3, row_mask=rm, col_mask=cm).plan
    torch.testing.assert_close(q.sum(-2), cm / cols[:, None].to(F64), **TOL[F64])


@pytest.mark.parametrize("kind", ["superglue", "uniform"])
def test_bucket_marginals_including_bucket_row_and_column(kind, generator):
    s, rm, cm, rows, cols = _padded_batch(generator, (4,), garbage=float("nan"))
    p = torch.tensor([0.2, 0.5, 0.8, 0.5], dtype=F64)
    q = bucket_sinkhorn(s, p, eps=0.1, n_iters=800, marginals=kind, row_mask=rm, col_mask=cm).plan
    for i in range(4):
        m, n = int(rows[i]), int(cols[i])
        a, b = bucket_marginals(m, n, kind)
        # The implied augmented plan: bucket column = row deficit, bucket row = column deficit,
        # corner = what is left of the bucket row's mass.
        kept = q[i, :m, :n]
        to_bucket_col = a[:m] - kept.sum(1)
        from_bucket_row = b[:n] - kept.sum(0)
        assert (to_bucket_col > -1e-9).all() and (from_bucket_row > -1e-9).all()
        corner = a[m] - from_bucket_row.sum()
        torch.testing.assert_close(to_bucket_col.sum() + corner, b[n], **TOL_CONVERGED)
        assert float(corner) > 0
        # The same through the explicit augmented problem: all marginals, bucket included.
        full = sinkhorn(
            augmented(s[i, :m, :n], float(p[i])),
            eps=0.1,
            n_iters=800,
            row_marginal=a,
            col_marginal=b,
        ).plan
        torch.testing.assert_close(full[:m, :n], kept, **TOL[F64])
        torch.testing.assert_close(full.sum(1), a, **TOL_CONVERGED)
        torch.testing.assert_close(full.sum(0), b, **TOL_CONVERGED)
        torch.testing.assert_close(full[:m, n], to_bucket_col, **TOL_CONVERGED)


def _f64(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=F64)


def test_superglue_and_uniform_bucket_marginal_values():
    # Equal scores everywhere (p too): the plan is the product of the marginals, exactly.
    s = torch.zeros(3, 5, dtype=F64)
    sg = bucket_sinkhorn(s, 0.0, eps=0.1, n_iters=1, marginals="superglue").plan
    torch.testing.assert_close(sg, torch.full((3, 5), (1 / 8) * (1 / 8), dtype=F64), **TOL[F64])
    un = bucket_sinkhorn(s, 0.0, eps=0.1, n_iters=1, marginals="uniform").plan
    torch.testing.assert_close(un, torch.full((3, 5), (1 / 4) * (1 / 6), dtype=F64), **TOL[F64])
    # With masks, m and n are the valid counts: 2 rows and 3 columns valid out of 3 and 5.
    rm = torch.tensor([True, False, True])
    cm = torch.tensor([True, True, False, True, False])
    sg = bucket_sinkhorn(s, 0.0, eps=0.1, n_iters=1, row_mask=rm, col_mask=cm).plan
    want = torch.where(rm[:, None] & cm[None, :], _f64((1 / 5) * (1 / 5)), _f64(0.0))
    torch.testing.assert_close(sg, want, **TOL[F64])
    un = bucket_sinkhorn(
        s, 0.0, eps=0.1, n_iters=1, marginals="uniform", row_mask=rm, col_mask=cm
    ).plan
    want = torch.where(rm[:, None] & cm[None, :], _f64((1 / 3) * (1 / 4)), _f64(0.0))
    torch.testing.assert_close(un, want, **TOL[F64])


def test_renormalize_gives_mass_m_per_problem(generator):
    s, rm, cm, rows, cols = _padded_batch(generator, (2, 3), garbage=float("nan"))
    raw = bucket_sinkhorn(s, 0.5, eps=0.1, row_mask=rm, col_mask=cm)
    ren = bucket_sinkhorn(s, 0.5, eps=0.1, row_mask=rm, col_mask=cm, renormalize=True)
    torch.testing.assert_close(ren.plan.sum((-2, -1)), rows.to(F64), **TOL[F64])
    assert (raw.plan.sum((-2, -1)) < 1).all()
    scale = rows.to(F64) / raw.plan.sum((-2, -1))
    torch.testing.assert_close(ren.plan, raw.plan * scale[..., None, None], **TOL[F64])
    torch.testing.assert_close(ren.log_u, raw.log_u, **TOL[F64])


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_huge_bucket_value_takes_almost_all_mass(dtype, generator):
    s = torch.rand(3, 8, 8, generator=generator, dtype=dtype)
    q = bucket_sinkhorn(s, 100.0, eps=0.1, n_iters=50).plan
    assert torch.isfinite(q).all()
    assert float(q.sum((-2, -1)).max()) < 1e-6
    # A very low bucket value keeps (almost) all of the real rows' mass 8 / 16 in the kept
    # plan. Sinkhorn approaches that corner slowly (about 1 / n_iters), hence the bound.
    mass = bucket_sinkhorn(s, -100.0, eps=0.1, n_iters=50).plan.sum((-2, -1))
    assert float(mass.min()) > 0.49 and float(mass.max()) <= 0.5 + 1e-6


def test_caption_far_below_p_goes_to_the_bucket(generator):
    # Rows are clips, columns captions. Caption 2 matches nothing (all similarities << p).
    s = 0.5 + 0.5 * torch.rand(6, 5, generator=generator, dtype=F64)
    s[:, 2] = -1.0
    q = bucket_sinkhorn(s, 0.3, eps=0.1, n_iters=200).plan
    assert float(q[:, 2].sum()) < 1e-5 * (1 / 11)  # exp(-(0.3 + 1) / 0.1) ~ 2e-6
    assert float(q[:, [0, 1, 3, 4]].sum(0).min()) > 0.9 * (1 / 11)
    # Vanilla OT has no way out: caption 2 keeps its 1/N of the mass, spread over the clips.
    v = sinkhorn(s, eps=0.1, n_iters=200).plan
    torch.testing.assert_close(v[:, 2].sum(), torch.tensor(1 / 5, dtype=F64), **TOL[F64])
    assert float(v[:, 2].max()) < 0.5 * (1 / 5)


def test_bucket_value_per_problem_equals_scalar_calls(generator):
    s = torch.rand(2, 3, 4, 5, generator=generator, dtype=F64)
    p = torch.tensor([[0.1, 0.5, 0.9], [0.3, 0.0, 2.0]], dtype=F64)
    res = bucket_sinkhorn(s, p, eps=0.1)
    for i, j in np.ndindex(2, 3):
        one = bucket_sinkhorn(s[i, j], float(p[i, j]), eps=0.1)
        torch.testing.assert_close(res.log_plan[i, j], one.log_plan, **TOL[F64])
    # A 0-d tensor is a scalar; a tensor p is never differentiated through.
    p0 = torch.tensor(0.4, dtype=F64, requires_grad=True)
    a = bucket_sinkhorn(s.clone().requires_grad_(), p0, eps=0.1, grad="unroll").plan
    b = bucket_sinkhorn(s, 0.4, eps=0.1).plan
    torch.testing.assert_close(a.detach(), b, **TOL[F64])
    a.sum().backward()
    assert p0.grad is None


def test_permutation_equivariance(generator):
    s = torch.randn(5, 4, generator=generator, dtype=F64)
    pr, pc = torch.randperm(5, generator=generator), torch.randperm(4, generator=generator)
    for fn in (lambda x: sinkhorn(x, eps=0.3).plan, lambda x: bucket_sinkhorn(x, 0.0).plan):
        torch.testing.assert_close(fn(s[pr][:, pc]), fn(s)[pr][:, pc], **TOL[F64])


def test_result_type_dtype_and_shapes(generator):
    for dtype in (torch.float32, F64):
        s = torch.randn(2, 3, 4, generator=generator, dtype=dtype)
        res = sinkhorn(s, n_iters=7)
        assert isinstance(res, SinkhornResult) and res.n_iters == 7
        assert res.log_plan.dtype == dtype and res.plan.dtype == dtype
        assert res.log_u.shape == (2, 3) and res.log_v.shape == (2, 4)
        res = bucket_sinkhorn(s, 0.1, n_iters=3)
        assert res.log_plan.shape == (2, 3, 4) and res.log_u.shape == (2, 3)
        assert res.log_v.shape == (2, 4) and res.n_iters == 3 and res.plan.dtype == dtype


# --------------------------------------------------------------------------------------------
# bucket_value_from_quantile
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size,q", [(10, 0.3), (1024, 0.3), (7, 0.5), (3, 0.34), (5, 0.99)])
def test_bucket_value_is_kth_smallest(size, q, generator):
    diag = torch.randn(size, generator=generator, dtype=F64)
    k = int(q * size)
    assert float(bucket_value_from_quantile(diag, q)) == float(torch.sort(diag).values[k - 1])
    batched = torch.randn(2, 3, size, generator=generator)
    got = bucket_value_from_quantile(batched, q)
    assert got.shape == (2, 3)
    torch.testing.assert_close(got, torch.sort(batched, -1).values[..., k - 1], rtol=0, atol=0)


def test_bucket_value_has_no_gradient():
    diag = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7], requires_grad=True)
    p = bucket_value_from_quantile(diag, 0.4)
    assert not p.requires_grad and float(p) == pytest.approx(0.3)


def test_bucket_value_errors():
    with pytest.raises(ValueError, match=r"quantile: int\(quantile \* K\) = int\(0.3 \* 3\) = 0"):
        bucket_value_from_quantile(torch.rand(3), 0.3)
    for bad in (0.0, 1.0, -0.1, 1.5, float("nan"), "a"):
        with pytest.raises(ValueError, match="quantile: expected a number in"):
            bucket_value_from_quantile(torch.rand(10), bad)
    with pytest.raises(ValueError, match="diag_similarities: expected a tensor with at least 1"):
        bucket_value_from_quantile(torch.tensor(1.0), 0.3)
    with pytest.raises(ValueError, match="diag_similarities: expected a floating-point"):
        bucket_value_from_quantile(torch.arange(10), 0.3)
    with pytest.raises(ValueError, match="diag_similarities: expected finite values"):
        bucket_value_from_quantile(torch.tensor([0.1, float("nan"), 0.2, 0.3]), 0.5)


# --------------------------------------------------------------------------------------------
# Level 4: gradients
# --------------------------------------------------------------------------------------------


def test_detach_has_no_history_even_if_scores_require_grad(generator):
    s = torch.randn(2, 3, 4, generator=generator, requires_grad=True)
    for res in (sinkhorn(s), bucket_sinkhorn(s, 0.2, renormalize=True)):
        assert not res.plan.requires_grad and not res.log_plan.requires_grad
        assert not res.log_u.requires_grad and not res.log_v.requires_grad
    res = sinkhorn(s, grad="unroll")
    assert res.plan.requires_grad and res.plan.grad_fn is not None


def test_gradcheck_sinkhorn_unroll(generator):
    s = torch.randn(3, 4, generator=generator, dtype=F64, requires_grad=True)
    a = rand_weights(3, generator).requires_grad_()
    b = rand_weights(4, generator)

    def fn(x, w):
        return sinkhorn(
            x,
            eps=0.5,
            n_iters=20,
            row_marginal=w / w.sum() * b.sum(),
            col_marginal=b,
            grad="unroll",
        ).plan

    assert torch.autograd.gradcheck(fn, (s, a), **TOL_FINITE_DIFF)


@pytest.mark.parametrize("renormalize", [False, True])
@pytest.mark.parametrize("kind", ["superglue", "uniform"])
def test_gradcheck_bucket_unroll(renormalize, kind, generator):
    s = torch.randn(3, 4, generator=generator, dtype=F64, requires_grad=True)

    def fn(x):
        return bucket_sinkhorn(
            x, 0.2, eps=0.5, n_iters=20, marginals=kind, renormalize=renormalize, grad="unroll"
        ).log_plan

    assert torch.autograd.gradcheck(fn, (s,), **TOL_FINITE_DIFF)


@pytest.mark.parametrize("garbage", [0.0, float("nan"), 1e30])
def test_unroll_gradients_finite_with_masks(garbage, generator):
    s, rm, cm, rows, cols = _padded_batch(generator, (2, 3), garbage=garbage)
    rm[0, 1, 1:] = False  # a problem with one valid row: many fully masked rows
    for fn in (
        lambda x: sinkhorn(x, eps=0.1, row_mask=rm, col_mask=cm, grad="unroll"),
        lambda x: bucket_sinkhorn(
            x, 0.4, eps=0.1, row_mask=rm, col_mask=cm, renormalize=True, grad="unroll"
        ),
    ):
        x = s.clone().requires_grad_()
        res = fn(x)
        (res.plan * x.nan_to_num(0.0, 0.0, 0.0)).sum().backward()
        assert torch.isfinite(x.grad).all()
        valid = rm[..., :, None] & cm[..., None, :]
        assert (x.grad[~valid] == 0).all()
        assert float(x.grad[valid].abs().sum()) > 0
    # Masked unrolled gradients equal the unpadded ones.
    w = torch.rand(s.shape, generator=generator, dtype=F64)
    x = s.clone().requires_grad_()
    (sinkhorn(x, eps=0.1, row_mask=rm, col_mask=cm, grad="unroll").plan * w).sum().backward()
    for i, j in ((1, 2), (0, 0)):
        r, c = int(rm[i, j].sum()), int(cm[i, j].sum())
        y = s[i, j, :r, :c].clone().requires_grad_()
        (sinkhorn(y, eps=0.1, grad="unroll").plan * w[i, j, :r, :c]).sum().backward()
        torch.testing.assert_close(x.grad[i, j, :r, :c], y.grad, **TOL[F64])


def test_unroll_gradient_wrt_marginals_ignores_masked_garbage(generator):
    s = torch.randn(2, 3, 4, generator=generator, dtype=F64)
    cm = torch.tensor([[True, True, True, False], [True, True, False, False]])
    b = torch.tensor([[0.2, 0.3, 0.5, float("nan")], [0.5, 0.5, -1.0, 0.0]], dtype=F64)
    b.requires_grad_()
    q = sinkhorn(s, eps=0.5, n_iters=30, col_marginal=b, col_mask=cm, grad="unroll").plan
    (q * s).sum().backward()
    assert torch.isfinite(b.grad).all() and (b.grad[~cm] == 0).all()
    assert float(b.grad[cm].abs().sum()) > 0


# --------------------------------------------------------------------------------------------
# Validation: every bad input names its argument
# --------------------------------------------------------------------------------------------

S = torch.rand(2, 3, 4)
S_NAN = S.clone()
S_NAN[1, 2, 0] = float("nan")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(scores=torch.rand(4)), r"scores: expected a tensor with at least 2 dims"),
        (dict(scores=[[1.0, 2.0]]), r"scores: expected a torch.Tensor, got list"),
        (dict(scores=torch.ones(2, 3, dtype=torch.int64)), r"scores: expected a floating-point"),
        (
            dict(scores=S_NAN),
            r"scores: expected finite values, found 1 NaN/inf entries "
            r"\(first at index \(1, 2, 0\)\)",
        ),
        (dict(scores=torch.tensor([[0.0, float("inf")]])), r"scores: expected finite values"),
        (dict(eps=0.0), r"eps: expected a finite number > 0, got 0.0"),
        (dict(eps=-1), r"eps: expected a finite number > 0, got -1"),
        (dict(eps=float("nan")), r"eps: expected a finite number > 0"),
        (dict(eps=float("inf")), r"eps: expected a finite number > 0"),
        (dict(eps="0.1"), r"eps: expected a finite number > 0, got '0.1'"),
        (dict(n_iters=0), r"n_iters: expected an integer >= 1, got 0"),
        (dict(n_iters=2.0), r"n_iters: expected an integer >= 1, got 2.0"),
        (dict(n_iters=True), r"n_iters: expected an integer >= 1, got True"),
        (dict(grad="autodiff"), r"grad: expected one of \('detach', 'unroll'\), got 'autodiff'"),
        (
            dict(row_mask=torch.ones(2, 4, dtype=torch.bool)),
            r"row_mask: expected shape \(2, 3\), got \(2, 4\)",
        ),
        (
            dict(col_mask=torch.ones(4, dtype=torch.bool)),
            r"col_mask: expected shape \(2, 4\), got \(4,\)",
        ),
        (dict(row_mask=torch.ones(2, 3)), r"row_mask: expected dtype torch.bool"),
        (dict(col_mask=[[True] * 4] * 2), r"col_mask: expected a bool tensor, got list"),
        (
            dict(row_mask=torch.tensor([[True, True, True], [False, False, False]])),
            r"row_mask: problem\(s\) \[1\] have no valid rows",
        ),
        (
            dict(col_mask=torch.tensor([[False] * 4, [True] * 4])),
            r"col_mask: problem\(s\) \[0\] have no valid columns",
        ),
    ],
)
def test_common_validation_errors(kwargs, match):
    for fn, extra in ((sinkhorn, {}), (bucket_sinkhorn, dict(bucket_value=0.5))):
        args = dict(scores=S, **extra)
        args.update(kwargs)
        with pytest.raises(ValueError, match=match):
            fn(**args)


def test_nan_in_masked_entries_is_not_an_error():
    s = torch.tensor([[0.1, float("nan")], [0.2, 0.3]])
    q = sinkhorn(s, col_mask=torch.tensor([True, False])).plan
    torch.testing.assert_close(q, torch.tensor([[0.5, 0.0], [0.5, 0.0]]))


def test_marginal_validation_errors():
    a = torch.full((2, 3), 1 / 3)
    b = torch.full((2, 4), 1 / 4)
    with pytest.raises(ValueError, match=r"row_marginal, col_marginal: expected equal total"):
        sinkhorn(S, row_marginal=a, col_marginal=2 * b)
    with pytest.raises(ValueError, match=r"row_marginal, col_marginal: expected equal total"):
        sinkhorn(S, row_marginal=2 * a)  # the uniform default has total 1
    bad = a.clone()
    bad[1, 2] = 0.0
    with pytest.raises(ValueError, match=r"row_marginal: expected weights > 0 on every valid"):
        sinkhorn(S, row_marginal=bad, col_marginal=b)
    neg = b.clone()
    neg[0, 0] = -0.25
    with pytest.raises(ValueError, match=r"col_marginal: expected weights > 0"):
        sinkhorn(S, row_marginal=a, col_marginal=neg)
    with pytest.raises(ValueError, match=r"row_marginal: expected shape \(2, 3\), got \(3,\)"):
        sinkhorn(S, row_marginal=torch.full((3,), 1 / 3), col_marginal=b)
    with pytest.raises(ValueError, match=r"col_marginal: expected a floating-point tensor"):
        sinkhorn(S, col_marginal=torch.ones(2, 4, dtype=torch.int64))
    nan = b.clone()
    nan[1, 1] = float("nan")
    with pytest.raises(ValueError, match=r"col_marginal: expected finite values"):
        sinkhorn(S, row_marginal=a, col_marginal=nan)
    # Zero or NaN weights on masked entries are fine (they are ignored).
    cm = torch.tensor([[True, True, True, False]] * 2)
    bm = torch.tensor([[1 / 3, 1 / 3, 1 / 3, float("nan")]] * 2)
    q = sinkhorn(S, row_marginal=a, col_marginal=bm, col_mask=cm, n_iters=300).plan
    torch.testing.assert_close(q.sum(-2), bm.nan_to_num(0.0), rtol=0, atol=1e-5)


def test_bucket_specific_validation_errors():
    with pytest.raises(ValueError, match=r"bucket_value: expected a scalar or shape \(2,\)"):
        bucket_sinkhorn(S, torch.rand(3))
    with pytest.raises(ValueError, match=r"bucket_value: expected a scalar or shape \(2,\)"):
        bucket_sinkhorn(S, torch.rand(2, 1))
    with pytest.raises(ValueError, match=r"bucket_value: expected finite values"):
        bucket_sinkhorn(S, float("nan"))
    with pytest.raises(ValueError, match=r"bucket_value: expected finite values"):
        bucket_sinkhorn(S, torch.tensor([0.1, float("inf")]))
    with pytest.raises(ValueError, match=r"bucket_value: expected a float or a tensor"):
        bucket_sinkhorn(S, "high")
    with pytest.raises(ValueError, match=r"marginals: expected one of \('superglue', 'uniform'\)"):
        bucket_sinkhorn(S, 0.5, marginals="dustbin")


# --------------------------------------------------------------------------------------------
# Property-based tests (small shapes)
# --------------------------------------------------------------------------------------------

problems = st.fixed_dictionaries(
    dict(
        batch=st.integers(1, 3),
        m=st.integers(1, 5),
        n=st.integers(1, 5),
        seed=st.integers(0, 2**31 - 1),
        eps=st.sampled_from([0.5, 1.0, 2.0]),
    )
)


def _draw(pr):
    g = torch.Generator().manual_seed(pr["seed"])
    b, m, n = pr["batch"], pr["m"], pr["n"]
    s = torch.rand(b, m, n, generator=g, dtype=F64) * 2 - 1
    rows = torch.randint(1, m + 1, (b,), generator=g)
    cols = torch.randint(1, n + 1, (b,), generator=g)
    rm = torch.arange(m)[None, :] < rows[:, None]
    cm = torch.arange(n)[None, :] < cols[:, None]
    return g, s, rm, cm, rows, cols


@settings(max_examples=30, deadline=None)
@given(problems)
def test_property_marginals(pr):
    g, s, rm, cm, rows, cols = _draw(pr)
    a = torch.where(rm, torch.rand(rm.shape, generator=g, dtype=F64) + 0.1, 0.0)
    a = a / a.sum(-1, keepdim=True)
    b = torch.where(cm, torch.rand(cm.shape, generator=g, dtype=F64) + 0.1, 0.0)
    b = b / b.sum(-1, keepdim=True)
    res = sinkhorn(
        s, eps=pr["eps"], n_iters=300, row_marginal=a, col_marginal=b, row_mask=rm, col_mask=cm
    )
    q = res.plan
    assert torch.isfinite(res.log_plan[rm[..., :, None] & cm[..., None, :]]).all()
    torch.testing.assert_close(q.sum(-1), a, rtol=0, atol=1e-9)
    torch.testing.assert_close(q.sum(-2), b, rtol=0, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(problems, st.sampled_from(["superglue", "uniform"]), st.booleans())
def test_property_masked_equals_unpadded(pr, kind, renormalize):
    g, s, rm, cm, rows, cols = _draw(pr)
    garbage = s.masked_fill(~(rm[..., :, None] & cm[..., None, :]), float("nan"))
    p = torch.rand(pr["batch"], generator=g, dtype=F64) - 0.5
    full = sinkhorn(garbage, eps=pr["eps"], n_iters=20, row_mask=rm, col_mask=cm).plan
    buck = bucket_sinkhorn(
        garbage,
        p,
        eps=pr["eps"],
        n_iters=20,
        marginals=kind,
        renormalize=renormalize,
        row_mask=rm,
        col_mask=cm,
    ).plan
    for i in range(pr["batch"]):
        r, c = int(rows[i]), int(cols[i])
        one = sinkhorn(s[i, :r, :c], eps=pr["eps"], n_iters=20).plan
        torch.testing.assert_close(full[i, :r, :c], one, **TOL[F64])
        one = bucket_sinkhorn(
            s[i, :r, :c],
            float(p[i]),
            eps=pr["eps"],
            n_iters=20,
            marginals=kind,
            renormalize=renormalize,
        ).plan
        torch.testing.assert_close(buck[i, :r, :c], one, **TOL[F64])
        for q in (full[i], buck[i]):
            assert (q[r:] == 0).all() and (q[:, c:] == 0).all()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(generator):
    s, rm, cm, rows, cols = _padded_batch(generator, (3, 4), garbage=float("nan"))
    for dtype in (torch.float32, F64):
        x = s.to(dtype)
        for fn in (
            lambda t, r, c: sinkhorn(t, eps=0.1, row_mask=r, col_mask=c),
            lambda t, r, c: bucket_sinkhorn(t, 0.5, eps=0.1, row_mask=r, col_mask=c),
        ):
            cpu = fn(x, rm, cm).plan
            gpu = fn(x.cuda(), rm.cuda(), cm.cuda()).plan
            assert gpu.device.type == "cuda" and gpu.dtype == dtype
            torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-6)


def test_old_module_path_is_a_deprecated_alias(monkeypatch):
    """``nortonkit.sinkhorn`` (the module) still imports, warns, and re-exports transport."""
    monkeypatch.delitem(sys.modules, "nortonkit.sinkhorn", raising=False)
    with pytest.warns(DeprecationWarning, match="nortonkit.transport"):
        old = importlib.import_module("nortonkit.sinkhorn")
    for name in sk.__all__:
        assert getattr(old, name) is getattr(sk, name)
