"""Tests for nortonkit.similarity: Eq. 5 oracles, official padding leak, chunking, masks, grads."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TOL, TOL_FINITE_DIFF
from hypothesis import given, settings
from hypothesis import strategies as st

from nortonkit.similarity import (
    DirectionalSimilarity,
    directional_lse_similarity,
    fuse_similarity,
    mean_pooled_similarity,
    minmax_normalize,
    official_fused_similarity,
    token_lse_similarity,
)

# ---------------------------------------------------------------------------------------------
# helpers and oracles


def _random_batch(generator, m=3, v=4, n=2, t=5, d=6, dtype=torch.float64, garbage=0.0):
    """Tokens with random valid lengths; padding filled with ``garbage`` (may be NaN)."""
    vt = torch.randn(m, v, d, generator=generator, dtype=dtype)
    tt = torch.randn(n, t, d, generator=generator, dtype=dtype)
    vlen = torch.randint(1, v + 1, (m,), generator=generator)
    tlen = torch.randint(1, t + 1, (n,), generator=generator)
    vm = torch.arange(v)[None] < vlen[:, None]
    tm = torch.arange(t)[None] < tlen[:, None]
    vt = vt.masked_fill(~vm[..., None], garbage)
    tt = tt.masked_fill(~tm[..., None], garbage)
    return vt, vm, tt, tm


def _oracle_exact(vt, vm, tt, tm, alpha):
    """Eq. 5 with explicit Python loops over clips, captions and tokens (float64 math)."""
    m, n = vt.shape[0], tt.shape[0]
    v2t = torch.zeros(m, n, dtype=torch.float64)
    t2v = torch.zeros(m, n, dtype=torch.float64)
    for a in range(m):
        frames = [F.normalize(vt[a, i].double(), dim=0) for i in range(vt.shape[1]) if vm[a, i]]
        for b in range(n):
            words = [F.normalize(tt[b, j].double(), dim=0) for j in range(tt.shape[1]) if tm[b, j]]
            dots = [[float(f @ w) for w in words] for f in frames]  # (f, w)
            fw = [alpha * math.log(sum(math.exp(x / alpha) for x in row)) for row in dots]
            wf = [
                alpha * math.log(sum(math.exp(dots[i][j] / alpha) for i in range(len(frames))))
                for j in range(len(words))
            ]
            v2t[a, b] = sum(fw) / len(frames)
            t2v[a, b] = sum(wf) / len(words)
    return v2t, t2v


def _official_literal(vt, vm, tt, tm, alpha):
    """The official formula (docs/protocols.md §2.3 items 3-4), captions a x clips b, literally."""
    t = F.normalize(tt, dim=-1)
    v = F.normalize(vt, dim=-1)
    r = torch.einsum("atd,bvd->abtv", t, v)  # (captions, clips, T, V)
    r = r * tm[:, None, :, None] * vm[None, :, None, :]
    n_masked_v = (~vm).sum(-1)  # (clips,)
    n_masked_t = (~tm).sum(-1)  # (captions,)
    t2v = alpha * torch.log(torch.exp(r / alpha).sum(-1) - n_masked_v[None, :, None])  # (a,b,T)
    t2v = t2v.sum(-1) / tm.sum(-1)[:, None]
    v2t = alpha * torch.log(torch.exp(r / alpha).sum(-2) - n_masked_t[:, None, None])  # (a,b,V)
    v2t = v2t.sum(-1) / vm.sum(-1)[None, :]
    return v2t.T, t2v.T  # clips x captions


# ---------------------------------------------------------------------------------------------
# rung 1: brute force / closed form


@pytest.mark.parametrize("alpha", [1.0, 0.05, 0.01, 3.0])
def test_exact_matches_loop_oracle(generator, alpha):
    vt, vm, tt, tm = _random_batch(generator, m=3, v=4, n=3, t=5)
    d = directional_lse_similarity(vt, vm, tt, tm, alpha=alpha)
    ov2t, ot2v = _oracle_exact(vt, vm, tt, tm, alpha)
    torch.testing.assert_close(d.v2t, ov2t, **TOL[torch.float64])
    torch.testing.assert_close(d.t2v, ot2v, **TOL[torch.float64])
    s = token_lse_similarity(vt, vm, tt, tm, alpha=alpha)
    torch.testing.assert_close(s, (ov2t + ot2v) / 2, **TOL[torch.float64])


@pytest.mark.parametrize("alpha", [1.0, 0.05, 0.02])
def test_exact_float32_single_pass_and_fallback_match_oracle(generator, alpha):
    # alpha = 0.05 uses the shared exp() pass, alpha = 0.02 the two-logsumexp fallback (fp32).
    vt, vm, tt, tm = _random_batch(generator, m=4, v=6, n=3, t=7, dtype=torch.float32)
    d = directional_lse_similarity(vt, vm, tt, tm, alpha=alpha)
    ov2t, ot2v = _oracle_exact(vt, vm, tt, tm, alpha)
    assert d.v2t.dtype == torch.float32
    torch.testing.assert_close(d.v2t.double(), ov2t, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(d.t2v.double(), ot2v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_official_matches_literal_formula(generator, alpha):
    vt, vm, tt, tm = _random_batch(generator, m=3, v=5, n=4, t=6, garbage=0.7)
    d = directional_lse_similarity(vt, vm, tt, tm, alpha=alpha, mode="official")
    lv2t, lt2v = _official_literal(vt, vm, tt, tm, alpha)
    torch.testing.assert_close(d.v2t, lv2t, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(d.t2v, lt2v, rtol=1e-10, atol=1e-10)


def test_official_bias_formula_on_toy_example(generator):
    # docs/protocols.md §2.3 item 3: n_t = 10 of Lt = 31 words, n_v = 17 of 18 frames, alpha = 1.
    vt = torch.randn(1, 18, 8, generator=generator, dtype=torch.float64)
    tt = torch.randn(1, 31, 8, generator=generator, dtype=torch.float64)
    vm = (torch.arange(18) < 17)[None]
    tm = (torch.arange(31) < 10)[None]
    exact = directional_lse_similarity(vt, vm, tt, tm, mode="exact")
    code = directional_lse_similarity(vt, vm, tt, tm, mode="official")
    t2v_bias = (31 - 10) * 1.0 * math.log(17) / 10
    v2t_bias = (18 - 17) * 1.0 * math.log(10) / 17
    assert abs(t2v_bias - 5.95) < 5e-3  # the number quoted in docs/protocols.md
    torch.testing.assert_close(
        code.t2v - exact.t2v, torch.tensor([[t2v_bias]], dtype=torch.float64)
    )
    torch.testing.assert_close(
        code.v2t - exact.v2t, torch.tensor([[v2t_bias]], dtype=torch.float64)
    )
    lv2t, lt2v = _official_literal(vt, vm, tt, tm, 1.0)
    torch.testing.assert_close(code.t2v, lt2v)
    torch.testing.assert_close(code.v2t, lv2t)


def test_official_equals_exact_without_padding(generator):
    vt = torch.randn(2, 3, 4, generator=generator, dtype=torch.float64)
    tt = torch.randn(3, 2, 4, generator=generator, dtype=torch.float64)
    vm, tm = torch.ones(2, 3, dtype=torch.bool), torch.ones(3, 2, dtype=torch.bool)
    torch.testing.assert_close(
        token_lse_similarity(vt, vm, tt, tm, mode="official"),
        token_lse_similarity(vt, vm, tt, tm, mode="exact"),
        **TOL[torch.float64],
    )


# ---------------------------------------------------------------------------------------------
# rung 2: fast equals slow


@pytest.mark.parametrize("chunk", [1, 2, 5, (2, 1), (3, 2), (None, 2), (100, 100)])
@pytest.mark.parametrize("mode", ["exact", "official"])
def test_chunked_equals_full(generator, chunk, mode):
    vt, vm, tt, tm = _random_batch(generator, m=7, v=4, n=5, t=6, d=16, dtype=torch.float32)
    full = directional_lse_similarity(vt, vm, tt, tm, mode=mode)
    part = directional_lse_similarity(vt, vm, tt, tm, mode=mode, chunk_size=chunk)
    torch.testing.assert_close(part.v2t, full.v2t, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(part.t2v, full.t2v, rtol=1e-5, atol=1e-5)


def test_chunked_gradient_equals_full_gradient(generator):
    vt, vm, tt, tm = _random_batch(generator, m=5, v=3, n=4, t=4, d=6)
    grads = []
    for chunk in (None, 2, (2, 3)):
        a, b = vt.clone().requires_grad_(), tt.clone().requires_grad_()
        s = token_lse_similarity(a, vm, b, tm, alpha=0.5, chunk_size=chunk)
        (s * torch.arange(s.numel(), dtype=s.dtype).view_as(s)).sum().backward()
        grads.append((a.grad, b.grad))
    for ga, gb in grads[1:]:
        torch.testing.assert_close(ga, grads[0][0], **TOL[torch.float64])
        torch.testing.assert_close(gb, grads[0][1], **TOL[torch.float64])


def test_masked_equals_unpadded_with_nan_garbage(generator):
    vt, vm, tt, tm = _random_batch(generator, m=3, v=5, n=4, t=6, garbage=float("nan"))
    s = token_lse_similarity(vt, vm, tt, tm, alpha=0.7)
    assert torch.isfinite(s).all()
    for a in range(3):
        for b in range(4):
            one = token_lse_similarity(
                vt[a : a + 1, vm[a]],
                vm[a : a + 1, vm[a]],
                tt[b : b + 1, tm[b]],
                tm[b : b + 1, tm[b]],
                alpha=0.7,
            )
            torch.testing.assert_close(s[a, b], one[0, 0], **TOL[torch.float64])


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 3),
    n=st.integers(1, 3),
    v=st.integers(1, 4),
    t=st.integers(1, 4),
    extra_v=st.integers(0, 3),
    extra_t=st.integers(0, 3),
    seed=st.integers(0, 2**16),
    alpha=st.sampled_from([0.01, 0.1, 1.0, 10.0]),
    garbage=st.sampled_from([0.0, 1e6, float("nan"), float("inf")]),
)
def test_padding_invariance_property(m, n, v, t, extra_v, extra_t, seed, alpha, garbage):
    g = torch.Generator().manual_seed(seed)
    vt = torch.randn(m, v, 5, generator=g, dtype=torch.float64)
    tt = torch.randn(n, t, 5, generator=g, dtype=torch.float64)
    ones_v, ones_t = torch.ones(m, v, dtype=torch.bool), torch.ones(n, t, dtype=torch.bool)
    ref = token_lse_similarity(vt, ones_v, tt, ones_t, alpha=alpha)
    pad_v = torch.full((m, extra_v, 5), garbage, dtype=torch.float64)
    pad_t = torch.full((n, extra_t, 5), garbage, dtype=torch.float64)
    vm = torch.cat([ones_v, torch.zeros(m, extra_v, dtype=torch.bool)], 1)
    tm = torch.cat([ones_t, torch.zeros(n, extra_t, dtype=torch.bool)], 1)
    # padding interleaved at the front as well as appended: positions carry no meaning
    vt_p, tt_p = torch.cat([pad_v, vt], 1), torch.cat([tt, pad_t], 1)
    vm_p = torch.cat([vm[:, v:], vm[:, :v]], 1)
    out = token_lse_similarity(vt_p, vm_p, tt_p, tm, alpha=alpha, chunk_size=(2, 2))
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# rung 3: properties


def test_small_alpha_gives_max_pooling(generator):
    vt, vm, tt, tm = _random_batch(generator, m=3, v=4, n=3, t=5)
    d = directional_lse_similarity(vt, vm, tt, tm, alpha=1e-3)
    v, t = F.normalize(vt, dim=-1), F.normalize(tt, dim=-1)
    r = torch.einsum("avd,btd->abvt", v, t)
    r = r.masked_fill(~(vm[:, None, :, None] & tm[None, :, None, :]), float("-inf"))
    v2t = torch.where(vm[:, None, :], r.amax(-1), 0.0).sum(-1) / vm.sum(-1)[:, None]
    t2v = torch.where(tm[None, :, :], r.amax(-2), 0.0).sum(-1) / tm.sum(-1)[None, :]
    # alpha*LSE lies in [max, max + alpha*log(count)]
    assert (d.v2t >= v2t - 1e-12).all() and (d.v2t <= v2t + 1e-3 * math.log(5) + 1e-12).all()
    torch.testing.assert_close(d.v2t, v2t, rtol=0, atol=2e-3)
    torch.testing.assert_close(d.t2v, t2v, rtol=0, atol=2e-3)


def test_large_alpha_gives_mean_plus_log_count(generator):
    vt, vm, tt, tm = _random_batch(generator, m=2, v=4, n=3, t=5)
    alpha = 1e4
    d = directional_lse_similarity(vt, vm, tt, tm, alpha=alpha)
    v, t = F.normalize(vt, dim=-1), F.normalize(tt, dim=-1)
    r = torch.einsum("avd,btd->abvt", v, t)
    pair = vm[:, None, :, None] & tm[None, :, None, :]
    mean_r = torch.where(pair, r, 0.0).sum((-1, -2)) / pair.sum((-1, -2))
    nv, nt = vm.sum(-1).double(), tm.sum(-1).double()
    torch.testing.assert_close(d.v2t - alpha * nt.log()[None, :], mean_r, rtol=0, atol=1e-3)
    torch.testing.assert_close(d.t2v - alpha * nv.log()[:, None], mean_r, rtol=0, atol=1e-3)


def test_permutation_equivariance(generator):
    vt, vm, tt, tm = _random_batch(generator, m=5, v=4, n=4, t=3)
    s = token_lse_similarity(vt, vm, tt, tm, chunk_size=2)
    pv = torch.randperm(5, generator=generator)
    pt = torch.randperm(4, generator=generator)
    s_perm = token_lse_similarity(vt[pv], vm[pv], tt[pt], tm[pt], chunk_size=2)
    torch.testing.assert_close(s_perm, s[pv][:, pt], **TOL[torch.float64])
    # permuting token positions (with their masks) inside every clip / caption changes nothing
    qv, qt = torch.randperm(4, generator=generator), torch.randperm(3, generator=generator)
    s_tok = token_lse_similarity(vt[:, qv], vm[:, qv], tt[:, qt], tm[:, qt])
    torch.testing.assert_close(s_tok, s, **TOL[torch.float64])


def test_scale_invariance_and_half_precision(generator):
    vt, vm, tt, tm = _random_batch(generator, m=2, v=3, n=2, t=3, dtype=torch.float32)
    s = token_lse_similarity(vt, vm, tt, tm)
    torch.testing.assert_close(token_lse_similarity(vt * 7.0, vm, tt * 0.1, tm), s)
    s_half = token_lse_similarity(vt.half(), vm, tt.half(), tm)
    assert s_half.dtype == torch.float32
    torch.testing.assert_close(s_half, s, rtol=2e-3, atol=2e-3)


def test_directional_result_is_typed(generator):
    vt, vm, tt, tm = _random_batch(generator)
    d = directional_lse_similarity(vt, vm, tt, tm)
    assert isinstance(d, DirectionalSimilarity)
    assert d.v2t.shape == d.t2v.shape == (3, 2)
    torch.testing.assert_close(d.mean, token_lse_similarity(vt, vm, tt, tm))


# ---------------------------------------------------------------------------------------------
# rung 4: gradients


@pytest.mark.parametrize("mode", ["exact", "official"])
@pytest.mark.parametrize("chunk", [None, 1])
@pytest.mark.parametrize("alpha", [1.0, 0.01])
def test_gradcheck_token_lse_similarity(generator, mode, chunk, alpha):
    vt, vm, tt, tm = _random_batch(generator, m=2, v=3, n=2, t=3, d=4)
    vt.requires_grad_()
    tt.requires_grad_()

    def fn(a, b):
        return token_lse_similarity(a, vm, b, tm, alpha=alpha, mode=mode, chunk_size=chunk)

    assert torch.autograd.gradcheck(fn, (vt, tt), **TOL_FINITE_DIFF)


def test_gradient_is_zero_and_finite_on_nan_padding(generator):
    vt, vm, tt, tm = _random_batch(generator, m=3, v=4, n=3, t=4, garbage=float("nan"))
    vm[0, -1] = tm[0, -1] = False
    vt[0, -1] = tt[0, -1] = float("nan")
    vt.requires_grad_()
    tt.requires_grad_()
    for mode in ("exact", "official"):
        vt.grad = tt.grad = None
        token_lse_similarity(vt, vm, tt, tm, mode=mode).sum().backward()
        assert torch.isfinite(vt.grad).all() and torch.isfinite(tt.grad).all()
        assert (vt.grad[~vm] == 0).all() and (tt.grad[~tm] == 0).all()


def test_gradcheck_pooled_minmax_fuse(generator):
    ve = torch.randn(3, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    te = torch.randn(2, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    lse = torch.rand(3, 2, generator=generator, dtype=torch.float64, requires_grad=True)

    def fn(a, b, c):
        return fuse_similarity(minmax_normalize(mean_pooled_similarity(a, b)), c, 0.5)

    assert torch.autograd.gradcheck(fn, (ve, te, lse), **TOL_FINITE_DIFF)


# ---------------------------------------------------------------------------------------------
# pooled similarity, min-max, fusion, official pipeline


def test_mean_pooled_similarity(generator):
    ve = torch.randn(4, 6, generator=generator)
    te = torch.randn(3, 6, generator=generator)
    cos = F.cosine_similarity(ve[:, None, :], te[None, :, :], dim=-1)
    torch.testing.assert_close(mean_pooled_similarity(ve, te), cos)
    torch.testing.assert_close(mean_pooled_similarity(ve, te, normalize=False), ve @ te.T)


def test_minmax_normalize_range_and_detach():
    x = torch.tensor([[1.0, 3.0], [2.0, 5.0]], requires_grad=True)
    y = minmax_normalize(x)
    assert float(y.detach().min()) == 0.0 and float(y.detach().max()) == 1.0
    y.sum().backward()
    grad_attached = x.grad.clone()
    x.grad = None
    minmax_normalize(x, detach=True).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((2, 2), 0.25))  # 1 / (max - min)
    # with the official (attached) min/max, the extreme entries get extra gradient
    assert not torch.allclose(grad_attached, x.grad)
    assert grad_attached[0, 1] == x.grad[0, 1]  # interior entry: same in both


def test_minmax_depends_on_the_batch():
    x = torch.tensor([[0.0, 1.0, 2.0]])
    y = minmax_normalize(torch.cat([x, torch.tensor([[4.0, 0.0, 0.0]])]))
    assert float(minmax_normalize(x)[0, 1]) == 0.5 and float(y[0, 1]) == 0.25


def test_fuse_similarity():
    mean = torch.tensor([[1.0, 0.0]])
    lse = torch.tensor([[0.0, 1.0]])
    assert fuse_similarity(mean, lse, 0) is lse
    torch.testing.assert_close(fuse_similarity(mean, lse, 2.0), (2 * mean + lse) / 3)


def test_official_fused_similarity_matches_official_pipeline(generator):
    vt, vm, tt, tm = _random_batch(generator, m=4, v=5, n=4, t=6, garbage=0.3)
    ve, te = vt.mean(1), tt.mean(1)
    out = official_fused_similarity(vt, vm, tt, tm, ve, te, mode="official", chunk_size=3)

    # literal official pipeline, captions x clips (docs/protocols.md §2.3 items 1-6)
    def mm(x):
        return (x - x.min()) / (x.max() - x.min())

    pv, pt = ve / ve.norm(dim=-1, keepdim=True), te / te.norm(dim=-1, keepdim=True)
    clip_logit = mm(pt @ pv.T)
    v2t, t2v = _official_literal(vt, vm, tt, tm, 1.0)
    logsum = (mm(t2v.T) + mm(v2t.T)) / 2
    ref = (0.5 * clip_logit + logsum) / 1.5
    torch.testing.assert_close(out, ref.T, rtol=1e-10, atol=1e-10)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_official_fused_similarity_weight_zero_is_minmaxed_eq5(generator):
    vt, vm, tt, tm = _random_batch(generator, m=3, v=4, n=3, t=4)
    d = directional_lse_similarity(vt, vm, tt, tm)
    out = official_fused_similarity(vt, vm, tt, tm, vt.mean(1), tt.mean(1), fusion_weight=0)
    torch.testing.assert_close(out, (minmax_normalize(d.v2t) + minmax_normalize(d.t2v)) / 2)


# ---------------------------------------------------------------------------------------------
# validation


def _ok(generator):
    return _random_batch(generator, m=2, v=3, n=2, t=3, d=4, dtype=torch.float32)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: a.update(video_tokens=a["video_tokens"][0]), "video_tokens: expected 3 dims"),
        (
            lambda a: a.update(text_tokens=a["text_tokens"][..., :3]),
            "text_tokens: expected feature",
        ),
        (
            lambda a: a.update(video_tokens=a["video_tokens"].long()),
            "video_tokens: expected a floa",
        ),
        (lambda a: a.update(video_mask=a["video_mask"].float()), "video_mask: expected dtype"),
        (
            lambda a: a.update(text_mask=a["text_mask"][:, :2]),
            r"text_mask: expected shape \(2, 3\)",
        ),
        (lambda a: a.update(text_mask=None), "text_mask: expected a bool tensor"),
        (lambda a: a["video_mask"].__setitem__(1, False), "video_mask: problem"),
        (lambda a: a["text_mask"].__setitem__(0, False), "text_mask: problem"),
        (lambda a: a["video_tokens"].__setitem__((0, 0, 0), float("nan")), "video_tokens: expect"),
        (lambda a: a["text_tokens"].__setitem__((1, 0, 1), float("inf")), "text_tokens: expected"),
        (lambda a: a.update(alpha=0.0), "alpha: expected a finite number > 0"),
        (lambda a: a.update(alpha=float("nan")), "alpha"),
        (lambda a: a.update(mode="leaky"), "mode: expected one of"),
        (lambda a: a.update(chunk_size=0), "chunk_size"),
        (lambda a: a.update(chunk_size=(2, 0)), "chunk_size"),
        (lambda a: a.update(chunk_size=2.5), "chunk_size"),
        (lambda a: a.update(video_tokens=torch.zeros(0, 3, 4)), "video_tokens"),
    ],
)
def test_token_lse_similarity_validation(generator, change, match):
    vt, vm, tt, tm = _ok(generator)
    vm[:, 0] = True
    tm[:, 0] = True
    vt[:, 0] = 1.0
    tt[:, 0] = 1.0
    args = dict(video_tokens=vt, video_mask=vm, text_tokens=tt, text_mask=tm)
    change(args)
    with pytest.raises(ValueError, match=match):
        token_lse_similarity(**args)


def test_pooled_minmax_fuse_validation():
    with pytest.raises(ValueError, match="video_emb: expected 2 dims"):
        mean_pooled_similarity(torch.zeros(3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="text_emb: expected feature dim D = 3"):
        mean_pooled_similarity(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="text_emb: expected finite"):
        mean_pooled_similarity(torch.zeros(2, 3), torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="x: expected at least two distinct values"):
        minmax_normalize(torch.ones(2, 2))
    with pytest.raises(ValueError, match="x: expected finite"):
        minmax_normalize(torch.tensor([0.0, float("inf")]))
    with pytest.raises(ValueError, match="x: expected a floating"):
        minmax_normalize(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="lse_sim: expected the shape of mean_sim"):
        fuse_similarity(torch.zeros(2, 2), torch.zeros(2, 3), 0.5)
    with pytest.raises(ValueError, match="fusion_weight: expected a finite number >= 0"):
        fuse_similarity(torch.zeros(2, 2), torch.zeros(2, 2), -1.0)
    with pytest.raises(ValueError, match="fusion_weight"):
        fuse_similarity(torch.zeros(2, 2), torch.zeros(2, 2), "half")


def test_official_fused_similarity_validation(generator):
    vt, vm, tt, tm = _random_batch(generator, m=3, v=2, n=2, t=2)
    with pytest.raises(ValueError, match="video_emb: expected 3 rows"):
        official_fused_similarity(vt, vm, tt, tm, torch.zeros(2, 4), tt.mean(1))
    with pytest.raises(ValueError, match="text_emb: expected 2 rows"):
        official_fused_similarity(vt, vm, tt, tm, vt.mean(1), torch.zeros(3, 4))


def test_default_caption_groups_equal_one_group(generator):
    # N = 300 captions: the default splits them into length-sorted groups of 128
    vt, vm, tt, tm = _random_batch(generator, m=3, v=3, n=300, t=4, d=4, dtype=torch.float32)
    grouped = directional_lse_similarity(vt, vm, tt, tm)
    one = directional_lse_similarity(vt, vm, tt, tm, chunk_size=(None, 300))
    torch.testing.assert_close(grouped.v2t, one.v2t, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grouped.t2v, one.t2v, rtol=1e-6, atol=1e-6)
    ov2t, ot2v = _oracle_exact(vt[:, :], vm, tt[:7], tm[:7], 1.0)
    torch.testing.assert_close(grouped.v2t[:, :7].double(), ov2t, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grouped.t2v[:, :7].double(), ot2v, rtol=1e-5, atol=1e-5)


def _saved_numel_and_grad(vt, vm, tt, tm, chunk):
    """Floats autograd keeps for the backward pass, and the gradient w.r.t. ``vt``."""
    count = [0]

    def pack(x):
        count[0] += x.numel()
        return x

    a = vt.clone().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        s = token_lse_similarity(a, vm, tt, tm, chunk_size=chunk)
    s.sum().backward()
    return count[0], a.grad


def test_checkpointed_blocks_save_less_for_backward(generator):
    vt, vm, tt, tm = _random_batch(generator, m=16, v=6, n=16, t=6, d=8, dtype=torch.float32)
    kept_full, grad_full = _saved_numel_and_grad(vt, vm, tt, tm, None)
    kept_chunked, grad_chunked = _saved_numel_and_grad(vt, vm, tt, tm, 4)
    # without checkpointing the exp() blocks (up to 16*6*16*6 floats) are kept for backward
    assert kept_chunked < kept_full - 16 * 6 * 16 * 6 // 4
    torch.testing.assert_close(grad_chunked, grad_full)
