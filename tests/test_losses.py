"""Tests for nortonkit.losses: FNE clip loss (Eq. 7-8), video-paragraph loss (Eq. 4, 6)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TOL, TOL_FINITE_DIFF, TOL_ITERATIVE

from nortonkit.losses import (
    DEFAULT_LOGIT_SCALE,
    ClipLossResult,
    NortonLossResult,
    VideoLossResult,
    clip_caption_loss,
    norton_loss,
    sequence_blocks,
    video_paragraph_loss,
)
from nortonkit.similarity import official_fused_similarity

# ---------------------------------------------------------------------------------------------
# literal re-statements of the official formulas (docs/protocols.md §2.2-2.3)


def _official_log_ot(z, log_mu, log_nu, n_iters):
    """The official log-domain iteration from u = v = 0 (rows first), batched over dim 0."""
    u, v = torch.zeros_like(log_mu), torch.zeros_like(log_nu)
    for _ in range(n_iters):
        u = log_mu - torch.logsumexp(z + v[:, None, :], dim=2)
        v = log_nu - torch.logsumexp(z + u[:, :, None], dim=1)
    return z + u[:, :, None] + v[:, None, :]


def _official_fne_plan(logits, n_iters=50):
    """Q = exp(OT(logits)) with 1/(2B) marginals, shifted by -norm (x 2B): rows sum to 1."""
    b = logits.shape[0]
    norm = -math.log(2 * b)
    log_mu = torch.full((1, b), norm, dtype=logits.dtype)
    z = _official_log_ot(logits[None], log_mu, log_mu.clone(), n_iters)[0]
    return (z - norm).exp()


def _official_video_loss(s_caps_x_clips, seq_len, scale, eps=0.1, ratio=0.3, n_iters=50):
    """SequenceContrastLoss after the fusion: p, reshape, bucket OT (SuperGlue), renorm, CE."""
    b = s_caps_x_clips.shape[0]
    g, k = b // seq_len, seq_len
    p = torch.kthvalue(torch.diagonal(s_caps_x_clips).detach(), int(ratio * b)).values
    blocks = s_caps_x_clips.view(g, k, g, k).transpose(1, 2).reshape(g * g, k, k)
    with torch.no_grad():
        sc = blocks / eps
        alpha = p / eps
        bins0 = alpha.expand(g * g, k, 1)
        bins1 = alpha.expand(g * g, 1, k)
        corner = alpha.expand(g * g, 1, 1)
        couplings = torch.cat([torch.cat([sc, bins0], -1), torch.cat([bins1, corner], -1)], 1)
        norm = -math.log(k + k)
        log_mu = torch.cat([torch.full((k,), norm), torch.tensor([math.log(k) + norm])])
        log_mu = log_mu.to(blocks.dtype)[None].expand(g * g, -1)
        z = _official_log_ot(couplings, log_mu, log_mu.clone(), n_iters) - norm
        q = z[:, :-1, :-1].exp()
        q = q * (k / q.sum(dim=(-1, -2), keepdim=True))
    logits = scale * (q * blocks).sum(dim=(-1, -2)).view(g, g)
    labels = torch.arange(g)
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels), logits


def _batch_sim(generator, b=32, dtype=torch.float64):
    """A clips x captions similarity in [0, 1] with a visible diagonal."""
    s = torch.rand(b, b, generator=generator, dtype=dtype) * 0.6
    return s + 0.4 * torch.eye(b, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# clip_caption_loss


@pytest.mark.parametrize("use_scale", [False, True])
def test_beta_zero_equals_cross_entropy_exactly(generator, use_scale):
    v = torch.randn(6, 5, generator=generator)
    t = torch.randn(6, 5, generator=generator)
    scale = torch.tensor(1.3) if use_scale else None
    out = clip_caption_loss(v, t, logit_scale=scale, beta=0.0)
    logits = v @ t.T
    if use_scale:
        logits = scale.exp() * logits
    labels = torch.arange(6)
    assert isinstance(out, ClipLossResult)
    assert torch.equal(
        out.loss, F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)
    )
    assert torch.equal(out.targets, torch.eye(6))


def test_fne_targets_are_doubly_stochastic_and_detached(generator):
    v = torch.randn(8, 4, generator=generator, requires_grad=True)
    t = torch.randn(8, 4, generator=generator, requires_grad=True)
    out = clip_caption_loss(v, t, beta=0.3)
    assert not out.targets.requires_grad and out.targets.grad_fn is None
    torch.testing.assert_close(out.targets.sum(1), torch.ones(8), rtol=0, atol=1e-4)
    torch.testing.assert_close(out.targets.sum(0), torch.ones(8), rtol=0, atol=1e-4)
    assert (out.targets >= 0).all()


def test_fne_loss_matches_official_formula(generator):
    v = torch.randn(10, 6, generator=generator, dtype=torch.float64)
    t = torch.randn(10, 6, generator=generator, dtype=torch.float64)
    out = clip_caption_loss(v, t, beta=0.3, fne_eps=1.0, n_iters=50)
    logits = v @ t.T
    q = _official_fne_plan(logits)
    eye = torch.eye(10, dtype=torch.float64)
    t_v2t, t_t2v = 0.3 * q + 0.7 * eye, 0.3 * q.T + 0.7 * eye
    loss_video = (-(F.log_softmax(logits, 1) * t_v2t).sum(1)).mean()
    loss_text = (-(F.log_softmax(logits.T, 1) * t_t2v).sum(1)).mean()
    torch.testing.assert_close(out.targets, t_v2t, **TOL_ITERATIVE)
    torch.testing.assert_close(out.loss_v2t, loss_video, **TOL_ITERATIVE)
    torch.testing.assert_close(out.loss_t2v, loss_text, **TOL_ITERATIVE)
    torch.testing.assert_close(out.loss, loss_video + loss_text, **TOL_ITERATIVE)


def test_fne_gradient_treats_plan_as_constant(generator):
    v = torch.randn(6, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    t = torch.randn(6, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    ls = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    out = clip_caption_loss(v, t, logit_scale=ls, beta=0.5, fne_eps=0.5)
    out.loss.backward()
    # d/dS of CE(S, T) + CE(S.T, T.T) with T constant: (softmax_row - T)/B + (softmax_col - T)/B
    with torch.no_grad():
        s = ls.exp() * (v @ t.T)
        tgt = out.targets
        g_s = (s.softmax(1) - tgt) / 6 + (s.softmax(0) - tgt) / 6
        g_v = ls.exp() * g_s @ t
        g_t = ls.exp() * g_s.T @ v
        g_ls = (g_s * s).sum()
    torch.testing.assert_close(v.grad, g_v, **TOL[torch.float64])
    torch.testing.assert_close(t.grad, g_t, **TOL[torch.float64])
    torch.testing.assert_close(ls.grad, g_ls, **TOL[torch.float64])


def test_gradcheck_clip_loss_beta_zero(generator):
    v = torch.randn(4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    t = torch.randn(4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    ls = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)

    def fn(a, b, c):
        return clip_caption_loss(a, b, logit_scale=c, beta=0.0).loss

    assert torch.autograd.gradcheck(fn, (v, t, ls), **TOL_FINITE_DIFF)


def test_clip_loss_pair_permutation_invariance(generator):
    v = torch.randn(7, 4, generator=generator, dtype=torch.float64)
    t = torch.randn(7, 4, generator=generator, dtype=torch.float64)
    perm = torch.randperm(7, generator=generator)
    a = clip_caption_loss(v, t, beta=0.3)
    b = clip_caption_loss(v[perm], t[perm], beta=0.3)
    torch.testing.assert_close(b.loss, a.loss, **TOL_ITERATIVE)
    torch.testing.assert_close(b.targets, a.targets[perm][:, perm], **TOL_ITERATIVE)


def test_fne_targets_share_a_duplicate_caption(generator):
    # clips 0 and 1 are the same pair twice: plain InfoNCE pushes caption 1 away from clip 0,
    # the rectified targets split clip 0's plan mass evenly between captions 0 and 1 instead.
    v = torch.randn(6, 8, generator=generator, dtype=torch.float64)
    v[1] = v[0]
    ls = torch.tensor(1.0, dtype=v.dtype)
    fne = clip_caption_loss(v, v.clone(), beta=0.3, logit_scale=ls)
    torch.testing.assert_close(
        fne.targets[0, :2], torch.tensor([0.85, 0.15], dtype=v.dtype), rtol=0, atol=1e-3
    )
    # the gradient on the duplicate (faulty negative) logit is smaller than with plain targets
    grads = []
    for beta in (0.0, 0.3):
        s = (ls.exp() * (v @ v.T)).requires_grad_()
        tgt = torch.eye(6, dtype=v.dtype) if beta == 0 else fne.targets
        (F.cross_entropy(s, tgt) + F.cross_entropy(s.T, tgt.T)).backward()
        grads.append(s.grad[0, 1])
    assert grads[1] < grads[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(video_emb=torch.zeros(4)), "video_emb: expected 2 dims"),
        (dict(text_emb=torch.zeros(3, 3)), "text_emb: expected the shape of video_emb"),
        (dict(video_emb=torch.zeros(4, 3, dtype=torch.long)), "video_emb: expected a floating"),
        (dict(text_emb=torch.full((4, 3), float("nan"))), "text_emb: expected finite"),
        (dict(video_emb=torch.zeros(0, 3), text_emb=torch.zeros(0, 3)), "video_emb: expected at"),
        (dict(beta=1.5), r"beta: expected a number in \[0, 1\]"),
        (dict(beta=-0.1), "beta"),
        (dict(fne_eps=0.0), "fne_eps: expected a finite number > 0"),
        (dict(n_iters=0), "n_iters: expected an integer >= 1"),
        (dict(logit_scale=torch.zeros(2)), "logit_scale: expected a scalar tensor"),
        (dict(logit_scale=torch.tensor(float("inf"))), "logit_scale: expected finite"),
    ],
)
def test_clip_loss_validation(kwargs, match):
    args = dict(video_emb=torch.ones(4, 3), text_emb=torch.ones(4, 3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        clip_caption_loss(**args)


# ---------------------------------------------------------------------------------------------
# sequence blocks and video_paragraph_loss


def test_sequence_blocks_orientation(generator):
    s = torch.randn(32, 32, generator=generator)
    blocks = sequence_blocks(s, seq_len=8)
    assert blocks.shape == (4, 4, 8, 8)
    for i in range(4):
        for j in range(4):
            # paragraph i (captions 8i..8i+7) as rows vs clips of sequence j as columns
            assert torch.equal(blocks[i, j], s[8 * j : 8 * j + 8, 8 * i : 8 * i + 8].T)
    # the official reshape of the captions x clips matrix
    official = s.T.reshape(4, 8, 4, 8).transpose(1, 2).reshape(16, 8, 8)
    assert torch.equal(blocks.reshape(16, 8, 8), official)


def test_video_loss_matches_official_pipeline(generator):
    s = _batch_sim(generator, b=32)
    out = video_paragraph_loss(s, seq_len=8)
    ref_loss, ref_logits = _official_video_loss(s.T, 8, 1 / 0.07)
    assert isinstance(out, VideoLossResult)
    torch.testing.assert_close(out.logits, ref_logits, **TOL_ITERATIVE)
    torch.testing.assert_close(out.loss, ref_loss, **TOL_ITERATIVE)
    p = torch.kthvalue(torch.diagonal(s), int(0.3 * 32)).values
    assert float(out.bucket_value) == float(p)


def test_video_loss_on_fused_similarity_matches_official(generator):
    vt = torch.randn(16, 5, 8, generator=generator, dtype=torch.float64)
    tt = torch.randn(16, 6, 8, generator=generator, dtype=torch.float64)
    vm = torch.rand(16, 5, generator=generator) < 0.8
    tm = torch.rand(16, 6, generator=generator) < 0.8
    vm[:, 0] = tm[:, 0] = True
    s = official_fused_similarity(vt, vm, tt, tm, vt.mean(1), tt.mean(1), mode="official")
    out = video_paragraph_loss(s, seq_len=4)
    ref_loss, _ = _official_video_loss(s.T, 4, 1 / 0.07)
    torch.testing.assert_close(out.loss, ref_loss, **TOL_ITERATIVE)


def test_bucket_plans_sum_to_seq_len_and_are_detached(generator):
    s = _batch_sim(generator, b=24).requires_grad_()
    out = video_paragraph_loss(s, seq_len=8)
    assert out.plans.shape == (3, 3, 8, 8)
    torch.testing.assert_close(
        out.plans.sum(dim=(-1, -2)), torch.full((3, 3), 8.0, dtype=s.dtype), **TOL_ITERATIVE
    )
    assert not out.plans.requires_grad and not out.bucket_value.requires_grad
    raw = video_paragraph_loss(s, seq_len=8, renormalize=False)
    assert (raw.plans.sum(dim=(-1, -2)) <= 0.5 + 1e-9).all()  # real rows hold m/(m+n) = 1/2


def test_huge_bucket_value_takes_almost_all_mass(generator):
    s = _batch_sim(generator, b=16)
    out = video_paragraph_loss(s, seq_len=8, renormalize=False, bucket_value=10.0)
    assert (out.plans.sum(dim=(-1, -2)) < 1e-3).all()
    # a very low p: (almost) all of the real rows' mass m/(m+n) = 1/2 stays in the real block
    low = video_paragraph_loss(s, seq_len=8, renormalize=False, bucket_value=-10.0)
    kept = low.plans.sum(dim=(-1, -2))
    assert ((kept > 0.49) & (kept <= 0.5 + 1e-9)).all()


def test_gradients_flow_into_sim_and_logit_scale_not_through_plans(generator):
    s = _batch_sim(generator, b=16).requires_grad_()
    ls = torch.tensor(DEFAULT_LOGIT_SCALE, dtype=torch.float64, requires_grad=True)
    out = video_paragraph_loss(s, seq_len=4, logit_scale=ls)
    out.loss.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert ls.grad is not None and ls.grad != 0
    # the same loss with the plans plugged in as constants has the same gradient
    s2 = s.detach().clone().requires_grad_()
    ls2 = ls.detach().clone().requires_grad_()
    blocks = sequence_blocks(s2, 4)  # (G, G, K, K)
    logits = ls2.exp() * (out.plans * blocks).sum(dim=(-1, -2))
    labels = torch.arange(4)
    surrogate = F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)
    surrogate.backward()
    torch.testing.assert_close(s.grad, s2.grad, **TOL[torch.float64])
    torch.testing.assert_close(ls.grad, ls2.grad, **TOL[torch.float64])


@pytest.mark.parametrize("measure", ["ot_bucket", "ot", "mean"])
def test_gradcheck_video_loss_logit_scale(generator, measure):
    s = _batch_sim(generator, b=8)
    ls = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)

    def fn(x):
        return video_paragraph_loss(s, seq_len=2, logit_scale=x, measure=measure).loss

    assert torch.autograd.gradcheck(fn, (ls,), **TOL_FINITE_DIFF)


def test_gradcheck_video_loss_mean_measure(generator):
    s = _batch_sim(generator, b=6).requires_grad_()

    def fn(x):
        return video_paragraph_loss(x, seq_len=2, logit_scale=0.5, measure="mean").loss

    assert torch.autograd.gradcheck(fn, (s,), **TOL_FINITE_DIFF)


def test_measure_ot_is_vanilla_sinkhorn(generator):
    s = _batch_sim(generator, b=16)
    out = video_paragraph_loss(s, seq_len=4, measure="ot", renormalize=False)
    assert out.bucket_value is None
    blocks = sequence_blocks(s, 4).reshape(16, 4, 4)
    z = _official_log_ot(
        blocks / 0.1,
        torch.full((16, 4), -math.log(4), dtype=s.dtype),
        torch.full((16, 4), -math.log(4), dtype=s.dtype),
        50,
    )
    torch.testing.assert_close(out.plans.reshape(16, 4, 4), z.exp(), **TOL_ITERATIVE)
    torch.testing.assert_close(out.plans.sum((-1, -2)), torch.ones(4, 4, dtype=s.dtype))
    renorm = video_paragraph_loss(s, seq_len=4, measure="ot")
    torch.testing.assert_close(renorm.plans, 4 * out.plans, **TOL_ITERATIVE)
    d = (renorm.plans * sequence_blocks(s, 4)).sum((-1, -2))
    torch.testing.assert_close(renorm.logits, (1 / 0.07) * d, **TOL_ITERATIVE)


def test_measure_mean(generator):
    s = _batch_sim(generator, b=12)
    out = video_paragraph_loss(s, seq_len=3, measure="mean", logit_scale=0.0)
    assert out.plans is None and out.bucket_value is None
    torch.testing.assert_close(out.logits, sequence_blocks(s, 3).mean((-1, -2)))


def _soft_dtw_reference(cost, gamma):
    """R[i,j] = c[i,j] + softmin_gamma(R[i-1,j], R[i,j-1], R[i-1,j-1]), R[0,0] = 0."""
    m, n = cost.shape
    r = [[math.inf] * (n + 1) for _ in range(m + 1)]
    r[0][0] = 0.0
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            prev = [r[i - 1][j], r[i][j - 1], r[i - 1][j - 1]]
            lo = min(prev)
            soft = lo - gamma * math.log(sum(math.exp(-(x - lo) / gamma) for x in prev))
            r[i][j] = float(cost[i - 1, j - 1]) + soft
    return r[m][n]


def test_measure_dtw_is_negative_soft_dtw_of_negative_similarity(generator):
    pytest.importorskip("nortonkit.alignment")
    s = _batch_sim(generator, b=9).requires_grad_()
    out = video_paragraph_loss(s, seq_len=3, measure="dtw", dtw_gamma=0.1, logit_scale=0.0)
    blocks = sequence_blocks(s.detach(), 3)
    ref = torch.tensor(
        [[-_soft_dtw_reference(-blocks[i, j], 0.1) for j in range(3)] for i in range(3)],
        dtype=s.dtype,
    )
    torch.testing.assert_close(out.logits.detach(), ref, rtol=1e-8, atol=1e-8)
    out.loss.backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_mask_same_video_removes_sibling_negatives(generator):
    s = _batch_sim(generator, b=32)  # 2 videos x 16 clips = 4 sequences of 8
    plain = video_paragraph_loss(s, seq_len=8)
    masked = video_paragraph_loss(s, seq_len=8, mask_same_video=True, clips_per_video=16)
    sibling = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]).bool()
    assert torch.isinf(masked.logits[sibling]).all() and (masked.logits[sibling] < 0).all()
    assert torch.equal(masked.logits[~sibling], plain.logits[~sibling])
    # by hand: cross-entropy over the non-sibling candidates only
    labels = torch.arange(4)
    kept = plain.logits.masked_fill(sibling, float("-inf"))
    ref = F.cross_entropy(kept, labels) + F.cross_entropy(kept.T, labels)
    torch.testing.assert_close(masked.loss, ref)
    assert masked.loss < plain.loss  # removing negatives can only lower the cross-entropy
    # one sequence per video: nothing to remove
    one = video_paragraph_loss(s, seq_len=8, mask_same_video=True, clips_per_video=8)
    torch.testing.assert_close(one.loss, plain.loss)


def test_video_loss_permuting_videos_is_invariant(generator):
    s = _batch_sim(generator, b=24)
    perm = torch.randperm(3, generator=generator)  # reorder whole sequences (clip + caption)
    idx = (perm[:, None] * 8 + torch.arange(8)[None]).reshape(-1)
    a = video_paragraph_loss(s, seq_len=8)
    b = video_paragraph_loss(s[idx][:, idx], seq_len=8)
    torch.testing.assert_close(b.loss, a.loss, **TOL_ITERATIVE)
    torch.testing.assert_close(b.logits, a.logits[perm][:, perm], **TOL_ITERATIVE)


def test_logit_scale_float_equals_tensor_and_default(generator):
    s = _batch_sim(generator, b=16, dtype=torch.float32)
    a = video_paragraph_loss(s, seq_len=8)
    b = video_paragraph_loss(s, seq_len=8, logit_scale=torch.tensor(math.log(1 / 0.07)))
    torch.testing.assert_close(a.loss, b.loss)
    c = video_paragraph_loss(s, seq_len=8, logit_scale=0.0)
    torch.testing.assert_close(a.logits, c.logits * (1 / 0.07))


def test_uniform_bucket_marginals_differ_from_superglue(generator):
    s = _batch_sim(generator, b=16)
    sg = video_paragraph_loss(s, seq_len=8, renormalize=False)
    un = video_paragraph_loss(s, seq_len=8, renormalize=False, bucket_marginals="uniform")
    assert not torch.allclose(sg.plans, un.plans)
    assert (un.plans.sum(dim=(-1, -2)) <= 8 / 9 + 1e-9).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(clip_caption_sim=torch.zeros(4, 3)), "clip_caption_sim: expected a non-empty squa"),
        (dict(clip_caption_sim=torch.zeros(16)), "clip_caption_sim: expected 2 dims"),
        (dict(seq_len=5), "clip_caption_sim: expected B to be a multiple of seq_len = 5"),
        (dict(seq_len=0), "seq_len: expected an integer >= 1"),
        (dict(clip_caption_sim=torch.full((16, 16), float("nan"))), "clip_caption_sim: expect"),
        (dict(clip_caption_sim=torch.zeros(16, 16, dtype=torch.int64)), "clip_caption_sim"),
        (dict(measure="otam"), "measure: expected one of"),
        (dict(bucket_marginals="dustbin"), "bucket_marginals: expected one of"),
        (dict(eps=0.0), "eps: expected a finite number > 0"),
        (dict(n_iters=0), "n_iters: expected an integer >= 1"),
        (dict(bucket_quantile=1.0), "bucket_quantile: expected a number in the open interval"),
        (dict(bucket_quantile=0.01), "quantile"),
        (dict(dtw_gamma=-1.0), "dtw_gamma: expected a finite number > 0"),
        (dict(logit_scale=torch.ones(2)), "logit_scale: expected a scalar tensor"),
        (dict(logit_scale="hot"), "logit_scale: expected a float or a scalar tensor"),
        (dict(bucket_value=torch.ones(3)), "bucket_value: expected a scalar"),
        (dict(bucket_value=float("nan")), "bucket_value: expected finite"),
        (dict(mask_same_video=True, clips_per_video=12), "clips_per_video: expected a multiple"),
        (dict(mask_same_video=True, clips_per_video=0), "clips_per_video: expected an integer"),
    ],
)
def test_video_loss_validation(kwargs, match):
    args = dict(clip_caption_sim=torch.eye(16) + 0.1, seq_len=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        video_paragraph_loss(**args)


# ---------------------------------------------------------------------------------------------
# norton_loss


def _encoder_outputs(generator, b=8):
    vt = torch.randn(b, 4, 6, generator=generator)
    tt = torch.randn(b, 5, 6, generator=generator)
    vm = torch.ones(b, 4, dtype=torch.bool)
    tm = torch.arange(5)[None] < torch.randint(1, 6, (b, 1), generator=generator)
    return vt.mean(1), tt.mean(1), vt, vm, tt, tm


def test_norton_loss_combines_both_terms(generator):
    ve, te, vt, vm, tt, tm = _encoder_outputs(generator)
    ls = torch.tensor(DEFAULT_LOGIT_SCALE, requires_grad=True)
    out = norton_loss(ve, te, vt, vm, tt, tm, ls, seq_len=4, bucket_quantile=0.5)
    assert isinstance(out, NortonLossResult)
    clip = clip_caption_loss(ve, te)  # raw dot products, no temperature (official D2)
    sim = official_fused_similarity(vt, vm, tt, tm, ve, te, fusion_weight=0.5, mode="official")
    video = video_paragraph_loss(sim, 4, ls, bucket_quantile=0.5, bucket_marginals="superglue",
                                 renormalize=True)
    torch.testing.assert_close(out.loss, clip.loss + 0.1 * video.loss)
    out.loss.backward()
    assert ls.grad is not None and ls.grad != 0


@pytest.mark.parametrize("preset", ["norton-official", "I-official", "G-official", "B-official"])
def test_norton_loss_is_the_official_training_objective(generator, preset):
    """norton_loss == train.loss_terms under the official family, on the same outputs."""
    from nortonkit.encoders import DualEncoder, DualEncoderOutput, EncoderOutput
    from nortonkit.train.config import config_from_dict
    from nortonkit.train.objective import loss_terms

    b, k = 16, 4
    vt = torch.randn(b, 6, 8, generator=generator)
    tt = torch.randn(b, 5, 8, generator=generator)
    vm = torch.arange(6)[None] < torch.randint(2, 7, (b, 1), generator=generator)
    tm = torch.arange(5)[None] < torch.randint(2, 6, (b, 1), generator=generator)
    ve, te = vt.mean(1), tt.mean(1)
    cfg = config_from_dict({"preset": preset, "model": {"preset": "tiny"},
                            "loss": {"seq_len": k}})
    encoder = DualEncoder(cfg.model)
    assert getattr(encoder, "clip_logit_scale", None) is None  # raw L_clip logits
    out = DualEncoderOutput(EncoderOutput(ve, vt, vm), EncoderOutput(te, tt, tm))
    expected = loss_terms(out, encoder, cfg.loss, clips_per_video=8)
    lc = cfg.loss
    got = norton_loss(ve, te, vt, vm, tt, tm, encoder.logit_scale, video_weight=lc.video_weight,
                      beta=lc.beta, fne_eps=lc.fne_eps, seq_len=lc.seq_len,
                      alpha=lc.lse_temperature, measure=lc.measure, eps=lc.video_eps,
                      bucket_quantile=lc.bucket_quantile, n_iters=lc.n_iters,
                      mask_same_video=lc.mask_same_video, clips_per_video=8)
    torch.testing.assert_close(got.loss, expected.total, **TOL[torch.float32])
    torch.testing.assert_close(got.clip.loss, expected.clip, **TOL[torch.float32])
    if expected.video is None:
        assert got.video is None
    else:
        torch.testing.assert_close(got.video.loss, expected.video, **TOL[torch.float32])


def test_norton_loss_is_not_the_paper_objective(generator):
    """The paper family (cosine L_clip with tau, exact Eq. 5) is a different objective."""
    from nortonkit.encoders import DualEncoder, DualEncoderOutput, EncoderOutput
    from nortonkit.train.config import config_from_dict
    from nortonkit.train.objective import loss_terms

    ve, te, vt, vm, tt, tm = _encoder_outputs(generator, b=16)
    cfg = config_from_dict({"preset": "norton", "model": {"preset": "tiny"},
                            "loss": {"seq_len": 4}})
    out = DualEncoderOutput(EncoderOutput(ve, vt, vm), EncoderOutput(te, tt, tm))
    paper = loss_terms(out, DualEncoder(cfg.model), cfg.loss, clips_per_video=8).total
    official = norton_loss(ve, te, vt, vm, tt, tm, seq_len=4, clips_per_video=8).loss
    assert not torch.allclose(paper, official)


def test_norton_loss_without_sequence_term(generator):
    ve, te, vt, vm, tt, tm = _encoder_outputs(generator, b=6)  # 6 % 4 != 0: never reshaped
    out = norton_loss(ve, te, vt, vm, tt, tm, video_weight=0.0, seq_len=4)
    assert out.video is None
    assert torch.equal(out.loss, clip_caption_loss(ve, te).loss)
    with pytest.raises(ValueError, match="video_weight: expected a finite number >= 0"):
        norton_loss(ve, te, vt, vm, tt, tm, video_weight=-0.1)
