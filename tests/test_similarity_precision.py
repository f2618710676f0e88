"""The mixed-precision path of Eq. 5 and the Sinkhorn inputs against a float64 reference.

Tolerances are the ones stated in ``nortonkit.similarity``'s module docstring (the measured
worst cases are about a third of them): values and a contrastive loss on them in absolute
terms, gradients relative to their largest entry.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nortonkit.encoders import DualEncoder
from nortonkit.similarity import (
    directional_lse_similarity,
    matmul_dtype,
    official_fused_similarity,
    token_lse_similarity,
)
from nortonkit.train.config import config_from_dict
from nortonkit.train.objective import NortonObjective
from nortonkit.transport import bucket_sinkhorn, sinkhorn

TOL = {"bf16": (1e-2, 1e-2, 5e-2), "fp16": (2e-3, 2e-3, 1e-2)}  # value, loss, gradient


def _case(seed: int, m: int = 20, n: int = 20, d: int = 48):
    """Clips and captions of 1-64 positions, random valid lengths, garbage in the padding."""
    g = torch.Generator().manual_seed(seed)
    nv_pad, nt_pad = (int(x) for x in torch.randint(1, 65, (2,), generator=g))
    video, text = torch.randn(m, nv_pad, d, generator=g), torch.randn(n, nt_pad, d, generator=g)
    n_v = torch.randint(1, nv_pad + 1, (m,), generator=g)
    n_t = torch.randint(1, nt_pad + 1, (n,), generator=g)
    n_v[0], n_t[0] = 1, nt_pad  # a one-frame clip and a full-length caption in every case
    vm = torch.arange(nv_pad)[None] < n_v[:, None]
    tm = torch.arange(nt_pad)[None] < n_t[:, None]
    video[~vm], text[~tm] = float("nan"), float("inf")  # padding must never be read
    return video, vm, text, tm


def _loss_and_grads(video, vm, text, tm, alpha, precision, chunk_size=None):
    video = video.clone().requires_grad_()
    text = text.clone().requires_grad_()
    sim = token_lse_similarity(video, vm, text, tm, alpha=alpha, precision=precision,
                               chunk_size=chunk_size)
    target = torch.arange(sim.shape[0])
    loss = (F.cross_entropy(20 * sim, target) + F.cross_entropy(20 * sim.T, target)) / 2
    loss.backward()
    return sim.detach(), loss.detach(), video.grad, text.grad


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("alpha", [1.0, 0.1])
@pytest.mark.parametrize("seed", range(6))
def test_half_precision_within_stated_error_of_float64(precision, alpha, seed):
    video, vm, text, tm = _case(seed)
    ref = _loss_and_grads(video.double(), vm, text.double(), tm, alpha, "fp32")
    got = _loss_and_grads(video, vm, text, tm, alpha, precision, chunk_size=(7, 5))
    tol_value, tol_loss, tol_grad = TOL[precision]
    assert got[0].dtype == torch.float32
    for x in got:
        assert torch.isfinite(x).all()  # padded positions included: their gradient is 0
    assert (got[0] - ref[0]).abs().max() < tol_value
    assert (got[1] - ref[1]).abs() < tol_loss
    for g, r, mask in ((got[2], ref[2], vm), (got[3], ref[3], tm)):
        assert (g[~mask] == 0).all()
        assert (g[mask] - r[mask]).abs().max() < tol_grad * r[mask].abs().max()


def test_half_precision_is_not_the_float32_path():
    """The option changes the products: bf16 differs from fp32, by more than fp32 rounding."""
    video, vm, text, tm = _case(0)
    s32 = token_lse_similarity(video, vm, text, tm, precision="fp32")
    s16 = token_lse_similarity(video, vm, text, tm, precision="bf16")
    ref = token_lse_similarity(video.double(), vm, text.double(), tm, precision="fp32")
    assert (s32 - ref).abs().max() < 1e-5 < (s16 - ref).abs().max()


def test_auto_follows_autocast_and_nothing_else_runs_in_half():
    video, vm, text, tm = _case(1)
    plain = token_lse_similarity(video, vm, text, tm)  # no autocast: fp32
    assert torch.equal(plain, token_lse_similarity(video, vm, text, tm, precision="fp32"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = directional_lse_similarity(video, vm, text, tm)
        forced32 = token_lse_similarity(video, vm, text, tm, precision="fp32")
    bf16 = directional_lse_similarity(video, vm, text, tm, precision="bf16")
    assert auto.v2t.dtype == auto.t2v.dtype == torch.float32
    assert torch.equal(auto.v2t, bf16.v2t) and torch.equal(auto.t2v, bf16.t2v)
    assert torch.equal(forced32, plain)  # autocast is off inside: fp32 stays fp32


def test_chunking_does_not_change_the_half_precision_result():
    video, vm, text, tm = _case(2)
    whole = token_lse_similarity(video, vm, text, tm, precision="bf16")
    for chunk in (1, 3, (4, 2)):
        part = token_lse_similarity(video, vm, text, tm, precision="bf16", chunk_size=chunk)
        assert torch.allclose(part, whole, atol=1e-6)


def test_official_mode_and_fusion_accept_the_precision():
    video, vm, text, tm = _case(3)
    for mode in ("exact", "official"):
        ref = official_fused_similarity(video.double(), vm, text.double(), tm,
                                        video.nan_to_num().mean(1).double(),
                                        text.nan_to_num(posinf=0).mean(1).double(), mode=mode)
        got = official_fused_similarity(video, vm, text, tm, video.nan_to_num().mean(1),
                                        text.nan_to_num(posinf=0).mean(1), mode=mode,
                                        precision="bf16")
        assert got.dtype == torch.float32 and torch.isfinite(got).all()
        assert (got - ref).abs().max() < 5e-2  # min-max rescales the error by 1 / spread


def test_fully_masked_clip_is_a_clear_error_not_nan():
    video, vm, text, tm = _case(4)
    vm = vm.clone()
    vm[2] = False
    with pytest.raises(ValueError, match="video_mask"):
        token_lse_similarity(video, vm, text, tm, precision="bf16")


def test_precision_argument_is_checked():
    video, vm, text, tm = _case(5)
    with pytest.raises(ValueError, match="precision"):
        token_lse_similarity(video, vm, text, tm, precision="int8")
    with pytest.raises(ValueError, match="alpha"):
        token_lse_similarity(video, vm, text, tm, alpha=1e-5, precision="fp16")
    with torch.autocast("cpu", dtype=torch.float16):  # auto: fp16's range too small -> fp32
        assert matmul_dtype("auto", torch.device("cpu"), alpha=1e-5) is None


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_sinkhorn_runs_in_float32_on_half_scores_and_under_autocast(half):
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(16, 8, 8, generator=g)
    low = scores.to(half)
    ref = bucket_sinkhorn(low.double(), 0.3, eps=0.1)
    got = bucket_sinkhorn(low, 0.3, eps=0.1)
    assert got.log_plan.dtype == torch.float32
    assert torch.allclose(got.plan, ref.plan.float(), atol=1e-6)
    plain = sinkhorn(scores, eps=0.1, grad="unroll")
    with torch.autocast("cpu", dtype=half):
        inside = sinkhorn(scores, eps=0.1, grad="unroll")
    assert inside.log_plan.dtype == torch.float32
    assert torch.equal(inside.log_plan, plain.log_plan)


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16"])
def test_training_objective_takes_the_similarity_precision(precision):
    """``loss.similarity_precision`` reaches the Eq. 5 call; "auto" is fp32 without autocast."""
    torch.manual_seed(0)
    cfg = config_from_dict({"model": {"preset": "tiny"},
                            "loss": {"similarity_precision": precision}})
    obj = NortonObjective(DualEncoder(cfg.model), cfg.loss, clips_per_video=8)
    assert obj.loss.similarity_precision == ("fp32" if precision == "auto" else precision)
    ids = torch.randint(1000, 2000, (16, 6))
    video = torch.randn(16, 4, 512)
    terms = obj(video, torch.ones(16, 4, dtype=torch.bool), ids, ids > 0)
    terms.total.backward()
    assert torch.isfinite(terms.total) and terms.video is not None
    half = NortonObjective(DualEncoder(cfg.model), cfg.loss, 8, autocast_dtype=torch.bfloat16)
    assert half.loss.similarity_precision == ("bf16" if precision == "auto" else precision)


def test_config_rejects_an_unknown_similarity_precision():
    with pytest.raises(ValueError, match="similarity_precision"):
        config_from_dict({"loss": {"similarity_precision": "fp8"}})
