"""Entropic optimal transport in the log domain, batched, with Norton's alignable prompt bucket.

Shapes: ``scores (..., M, N)`` with any number of leading batch axes; ``row_mask (..., M)`` and
``col_mask (..., N)`` mark valid rows/columns (True = valid). Scores are *similarities*
(higher is better): the plan maximises ``<Q, S> + eps * H(Q)``, which is POT's
``ot.sinkhorn(a, b, -S, reg=eps)``.

Every call runs exactly ``n_iters`` log-domain Sinkhorn iterations. Without autograd and for
problems well inside the dtype's range they are computed on a kernel exponentiated once (two
batched mat-vecs per iteration); with ``grad="unroll"`` or extreme ``S / eps`` through masked
log-sum-exps. Both give the same iterates (see :func:`sinkhorn`, Notes).

Precision: half-precision scores are promoted to float32 and autocast is off inside, so the
cost matrix, the kernel and the duals are float32 (or float64) whatever the caller's autocast.
"""

from __future__ import annotations

import contextlib
import math
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .masking import masked_logsumexp
from .validation import (
    check_choice,
    check_finite,
    check_int_at_least,
    check_mask,
    check_nonempty_mask,
    check_open_unit,
    check_positive,
    check_tensor,
)

__all__ = ["SinkhornResult", "sinkhorn", "bucket_sinkhorn", "bucket_value_from_quantile"]

Grad = Literal["detach", "unroll"]


class SinkhornResult(NamedTuple):
    """Output of :func:`sinkhorn` and :func:`bucket_sinkhorn`.

    Attributes
    ----------
    log_plan : shape (..., M, N), log of the transport plan; ``-inf`` on masked entries.
    log_u, log_v : shape (..., M) and (..., N), the dual scalings (divided by ``eps``).
    n_iters : the number of Sinkhorn iterations run (always exactly the requested number).
    """

    log_plan: Tensor
    log_u: Tensor
    log_v: Tensor
    n_iters: int

    @property
    def plan(self) -> Tensor:
        """The plan ``Q = exp(log_plan)``, shape (..., M, N); zero on masked entries."""
        return self.log_plan.exp()


def _masks(scores: Tensor, row_mask: Tensor | None, col_mask: Tensor | None):
    *batch, m, n = scores.shape
    check_mask("row_mask", row_mask, (*batch, m))
    check_mask("col_mask", col_mask, (*batch, n))
    rm = scores.new_ones((*batch, m), dtype=torch.bool) if row_mask is None else row_mask
    cm = scores.new_ones((*batch, n), dtype=torch.bool) if col_mask is None else col_mask
    check_nonempty_mask("row_mask", rm, "rows")
    check_nonempty_mask("col_mask", cm, "columns")
    return rm, cm


def _log_marginal(name: str, marginal: Tensor | None, mask: Tensor, like: Tensor) -> Tensor:
    """Log-weights over valid entries: uniform by default, else the given (positive) weights."""
    if marginal is None:
        count = mask.sum(-1, keepdim=True).to(like.dtype)
        return torch.where(mask, -count.log(), torch.zeros((), dtype=like.dtype))
    check_tensor(name, marginal)
    if tuple(marginal.shape) != tuple(mask.shape):
        raise ValueError(f"{name}: expected shape {tuple(mask.shape)}, got {tuple(marginal.shape)}")
    check_finite(name, marginal, mask)
    if bool(((marginal <= 0) & mask).any()):
        raise ValueError(
            f"{name}: expected weights > 0 on every valid entry (mask an entry out instead "
            "of giving it zero weight)"
        )
    # Masked entries may hold anything (even NaN): replace them before the log so that no NaN
    # reaches the backward pass of a differentiable marginal.
    safe = marginal.to(like.dtype).masked_fill(~mask, 1.0)
    return torch.where(mask, safe.log(), 0.0)


def _iterate(
    k: Tensor,
    log_a: Tensor,
    log_b: Tensor,
    rm: Tensor | None,
    cm: Tensor | None,
    n_iters: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Sinkhorn on ``k = S / eps`` (..., M, N) with marginals ``exp(log_a)``, ``exp(log_b)``.

    ``rm``/``cm`` are both None (every entry valid) or both bool masks (..., M), (..., N).
    Both back-ends run the same iterates from ``u = v = 0``; the scaled one is taken when no
    gradient is recorded and the problem is well inside the dtype's range (see
    :func:`_iterate_scaled`), the log-domain one otherwise.
    """
    recording = torch.is_grad_enabled() and (
        k.requires_grad or log_a.requires_grad or log_b.requires_grad
    )
    if not recording:
        out = _iterate_scaled(k, log_a, log_b, rm, cm, n_iters)
        if out is not None:
            return out
    return _iterate_log(k, log_a, log_b, rm, cm, n_iters)


def _iterate_log(
    k: Tensor,
    log_a: Tensor,
    log_b: Tensor,
    rm: Tensor | None,
    cm: Tensor | None,
    n_iters: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Log-domain iterations; differentiable, NaN-free gradients on masked entries."""
    log_u = torch.zeros_like(log_a)
    log_v = torch.zeros_like(log_b)
    if rm is None or cm is None:  # every entry valid: plain logsumexp
        for _ in range(n_iters):
            log_u = log_a - torch.logsumexp(k + log_v[..., None, :], dim=-1)
            log_v = log_b - torch.logsumexp(k + log_u[..., :, None], dim=-2)
        return k + log_u[..., :, None] + log_v[..., None, :], log_u, log_v
    mask = rm[..., :, None] & cm[..., None, :]  # (..., M, N)
    zero = torch.zeros((), dtype=k.dtype, device=k.device)
    for _ in range(n_iters):
        log_u = log_a - masked_logsumexp(k + log_v[..., None, :], mask, dim=-1)
        log_u = torch.where(rm, log_u, zero)
        log_v = log_b - masked_logsumexp(k + log_u[..., :, None], mask, dim=-2)
        log_v = torch.where(cm, log_v, zero)
    log_plan = (k + log_u[..., :, None] + log_v[..., None, :]).masked_fill(~mask, float("-inf"))
    return log_plan, log_u, log_v


def _iterate_scaled(
    k: Tensor,
    log_a: Tensor,
    log_b: Tensor,
    rm: Tensor | None,
    cm: Tensor | None,
    n_iters: int,
) -> tuple[Tensor, Tensor, Tensor] | None:
    """The log-domain iterates computed with a pre-exponentiated kernel; None if unsafe.

    With ``E = exp(k - max k)`` (zero on masked entries) the update
    ``u = log a - LSE_j(k_ij + v_j)`` becomes ``u = log a - log(E exp(v)) - max k``. The
    scalings are kept as ``exp(v - max v)`` (largest entry exactly 1) plus a log offset per
    problem, so every product ``E @ w`` has a term ``>= exp(-R)`` with ``R`` the spread of
    ``k``: no overflow, no underflow of a dominant term, and per iteration only two batched
    mat-vecs and (..., M) + (..., N) element-wise work instead of (..., M, N) exp/log.
    Returns None (caller falls back to the log domain) unless ``R`` plus the spread of the
    log-marginals stays below 0.7 log(1 / tiny) of the dtype (61 in float32, 496 in float64).
    """
    if k.dtype not in (torch.float32, torch.float64):
        return None
    *batch, m, n = k.shape
    kf = k.reshape(-1, m, n)  # (B, M, N)
    la = log_a.reshape(-1, m)  # (B, M)
    lb = log_b.reshape(-1, n)  # (B, N)
    masked = rm is not None and cm is not None
    if masked:
        rmf, cmf = rm.reshape(-1, m), cm.reshape(-1, n)
        mask = rmf[:, :, None] & cmf[:, None, :]  # (B, M, N)
        kf = kf.masked_fill(~mask, float("-inf"))
        la = la.masked_fill(~rmf, float("-inf"))
        lb = lb.masked_fill(~cmf, float("-inf"))
    kmax = kf.amax(dim=(-2, -1), keepdim=True)  # (B, 1, 1)
    kmin = (kf.masked_fill(~mask, float("inf")) if masked else kf).amin(dim=(-2, -1))
    la_max = la.amax(-1, keepdim=True)  # (B, 1)
    lb_max = lb.amax(-1, keepdim=True)  # (B, 1)
    la_min = (la.masked_fill(~rmf, float("inf")) if masked else la).amin(-1, keepdim=True)
    lb_min = (lb.masked_fill(~cmf, float("inf")) if masked else lb).amin(-1, keepdim=True)
    spread = (kmax.flatten() - kmin) + torch.maximum(
        (la_max - la_min).squeeze(-1) + math.log(n), (lb_max - lb_min).squeeze(-1) + math.log(m)
    )
    tiny = torch.finfo(k.dtype).tiny
    if not bool((spread <= 0.7 * -math.log(tiny)).all()):
        return None

    kc = kf - kmax  # (B, M, N), in [-R, 0]; -inf on masked entries
    # Batch-last layout: every op below is element-wise or reduces an outer axis over
    # contiguous runs of B problems, which vectorises far better than B tiny mat-vecs.
    e = kc.exp().permute(1, 2, 0).contiguous()  # (M, N, B), zero on masked entries
    a = (la - la_max).exp().T.contiguous()  # (M, B), largest weight 1, 0 on masked rows
    b = (lb - lb_max).exp().T.contiguous()  # (N, B)
    u = torch.empty_like(a)
    v = cmf.T.to(k.dtype) if masked else torch.ones_like(b)  # exp(0) on valid columns
    tmp = torch.empty_like(e)
    # Per half-iteration normaliser max_i (a_i / (E v)_i); their logs are summed once at the end.
    scales = torch.empty((n_iters, 2, 1, a.shape[1]), dtype=k.dtype, device=k.device)
    for it in range(n_iters):
        torch.sum(torch.mul(e, v[None, :, :], out=tmp), dim=1, out=u)  # (M, B): (E v)_i
        if masked:
            u.clamp_min_(tiny)  # valid rows have (E v)_i >= exp(-R); masked rows: 0 / tiny = 0
        torch.div(a, u, out=u)
        torch.amax(u, dim=0, keepdim=True, out=scales[it, 0])  # (1, B)
        u.div_(scales[it, 0])
        torch.sum(torch.mul(e, u[:, None, :], out=tmp), dim=0, out=v)  # (N, B): (E^T u)_j
        if masked:
            v.clamp_min_(tiny)
        torch.div(b, v, out=v)
        torch.amax(v, dim=0, keepdim=True, out=scales[it, 1])
        v.div_(scales[it, 1])
    # log u = log u_hat + cu, log v = log v_hat + cv with (float64 bookkeeping)
    #   cv_t = log s'_t + lb_max - cu_t,  cu_t = log s_t + la_max - cv_{t-1},  cv_0 = 0.
    logs = scales.double().log().view(n_iters, 2, -1, 1)  # (T, 2, B, 1)
    la_max, lb_max = la_max.double(), lb_max.double()  # (B, 1)
    step = logs[:, 1] - logs[:, 0] + (lb_max - la_max)  # (T, B, 1): cv_t - cv_{t-1}
    cv = step.sum(0)  # (B, 1)
    cu = logs[-1, 0] + la_max - (cv - step[-1])  # (B, 1)
    lu, lv = u.log_().T, v.log_().T  # (B, M), (B, N): log u_hat, log v_hat <= 0
    # The offsets cu, cv may be large and of opposite sign: add their sum, not each.
    log_plan = kc + lu[:, :, None] + lv[:, None, :] + (cu + cv).to(k.dtype)[:, :, None]
    log_u = (lu.double() + cu - kmax.double().view(-1, 1)).to(k.dtype)  # (B, M)
    log_v = (lv.double() + cv).to(k.dtype)  # (B, N)
    if masked:
        log_plan = log_plan.masked_fill(~mask, float("-inf"))
        log_u = log_u.masked_fill(~rmf, 0.0)
        log_v = log_v.masked_fill(~cmf, 0.0)
    return log_plan.view(*batch, m, n), log_u.view(*batch, m), log_v.view(*batch, n)


def _check_scores_finite(scores, row_mask, col_mask, rm, cm) -> None:
    if row_mask is None and col_mask is None:
        check_finite("scores", scores)
    else:
        check_finite("scores", scores, rm[..., :, None] & cm[..., None, :])


def _float32_at_least(scores: Tensor) -> Tensor:
    """Half-precision scores promoted to float32: the iterations never run in 16 bits.

    ``S / eps`` spans tens of units at Norton's eps = 0.1 and the duals accumulate over 50
    iterations; bf16's 8-bit mantissa would put errors of several percent into the plan.
    """
    return scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores


def _check_common(scores: Tensor, eps: float, n_iters: int, grad: str) -> None:
    check_tensor("scores", scores, min_ndim=2)
    check_positive("eps", eps)
    check_int_at_least("n_iters", n_iters, 1)
    check_choice("grad", grad, ("detach", "unroll"))


def sinkhorn(
    scores: Tensor,
    eps: float = 0.1,
    n_iters: int = 50,
    row_marginal: Tensor | None = None,
    col_marginal: Tensor | None = None,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
    grad: Grad = "detach",
) -> SinkhornResult:
    r"""Entropic OT plan between the rows and columns of a similarity matrix (Norton Eq. 2-3).

    .. math::
        Q^* = \arg\max_{Q \in U(\mu, \nu)} \langle Q, S \rangle + \varepsilon H(Q),
        \qquad H(Q) = -\sum_{ij} Q_{ij} \log Q_{ij}

    solved by ``n_iters`` log-domain Sinkhorn iterations from ``u = v = 0``:
    ``u = log mu - LSE_j(S/eps + v_j)``, ``v = log nu - LSE_i(S/eps + u_i)``.

    Parameters
    ----------
    scores : shape (..., M, N), similarities (higher = more similar), any leading batch axes.
    eps : entropic regularisation epsilon > 0 (Norton uses 0.1 for L_video, 1 for L_clip).
    n_iters : exactly this many iterations (no data-dependent stop, no host sync).
    row_marginal, col_marginal : shape (..., M) and (..., N), positive weights with equal
        totals; uniform over the valid entries when omitted (``mu = 1/M``, ``nu = 1/N``).
    row_mask, col_mask : shape (..., M) and (..., N), bool, True = valid. Masked rows and
        columns get zero mass; values of ``scores`` there are ignored.
    grad : ``"detach"`` returns a plan without autograd history (Norton's stop-gradient);
        ``"unroll"`` back-propagates through every iteration.

    Returns
    -------
    SinkhornResult with ``log_plan`` / ``plan`` of shape (..., M, N).

    Notes
    -----
    Norton Eq. (2)-(3); equals POT's ``ot.sinkhorn(a, b, -S, reg=eps, method="sinkhorn_log")``.
    Failure modes: with ``eps`` far below the spread of ``scores`` the marginals converge
    slowly (raise ``n_iters`` or ``eps``); nothing under- or overflows.

    Two back-ends run the same iterates. When no gradient is recorded and ``S / eps`` spans
    less than about ``0.7 log(1 / tiny)`` per problem (61 in float32, 496 in float64), the
    kernel is exponentiated once and each half-iteration is a batched mat-vec with
    max-normalised scalings (several times faster for many small problems). Otherwise, and
    always for ``grad="unroll"``, the iterations run in the log domain with a masked
    log-sum-exp whose gradients are finite on masked entries.

    Examples
    --------
    >>> s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> sinkhorn(s, eps=0.5).plan.round(decimals=4)
    tensor([[0.4404, 0.0596],
            [0.0596, 0.4404]])
    """
    _check_common(scores, eps, n_iters, grad)
    scores = _float32_at_least(scores)
    rm, cm = _masks(scores, row_mask, col_mask)
    _check_scores_finite(scores, row_mask, col_mask, rm, cm)
    log_a = _log_marginal("row_marginal", row_marginal, rm, scores)
    log_b = _log_marginal("col_marginal", col_marginal, cm, scores)
    if row_marginal is not None or col_marginal is not None:
        ta = masked_logsumexp(log_a, rm, dim=-1).exp()
        tb = masked_logsumexp(log_b, cm, dim=-1).exp()
        if not torch.allclose(ta, tb, rtol=1e-4, atol=1e-6):
            raise ValueError(
                "row_marginal, col_marginal: expected equal total mass per problem, got "
                f"{ta.flatten()[:3].tolist()} vs {tb.flatten()[:3].tolist()}"
            )
    masks = (None, None) if row_mask is None and col_mask is None else (rm, cm)
    ctx = torch.no_grad() if grad == "detach" else contextlib.nullcontext()
    with ctx, torch.autocast(scores.device.type, enabled=False):
        log_plan, log_u, log_v = _iterate(scores / eps, log_a, log_b, *masks, n_iters)
    return SinkhornResult(log_plan, log_u, log_v, n_iters)


def bucket_sinkhorn(
    scores: Tensor,
    bucket_value: float | Tensor,
    eps: float = 0.1,
    n_iters: int = 50,
    marginals: Literal["superglue", "uniform"] = "superglue",
    renormalize: bool = False,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
    grad: Grad = "detach",
) -> SinkhornResult:
    r"""OT plan with Norton's alignable prompt bucket (Eq. 6), bucket row and column dropped.

    The score matrix is augmented with one row and one column (corner included) filled with
    the bucket value ``p``: ``S_bar`` of shape (..., M+1, N+1). After Sinkhorn on ``S_bar`` the
    last row and column are dropped. A row (column) whose similarities are all well below ``p``
    sends its mass to the bucket and drops out of the alignment.

    .. math::
        \bar S = \begin{pmatrix} S & p\mathbf 1 \\ p\mathbf 1^\top & p \end{pmatrix},\qquad
        \bar Q^* = \mathrm{Sinkhorn}(\bar S)[1{:}M, 1{:}N]

    Parameters
    ----------
    scores : shape (..., M, N), similarities (clips x captions, or any rows x columns).
    bucket_value : ``p``, a float or a tensor of shape (...) with one value per problem.
    eps, n_iters, grad : as in :func:`sinkhorn`.
    marginals : ``"superglue"`` (official code): every valid real row and column gets
        ``1/(m+n)``, the bucket row ``n/(m+n)``, the bucket column ``m/(m+n)``, with ``m``, ``n``
        the valid counts. ``"uniform"``: each of the ``m+1`` rows gets ``1/(m+1)`` and each of
        the ``n+1`` columns ``1/(n+1)``. The paper leaves the bucket's marginals unstated.
    renormalize : if True, rescale each kept plan to total mass ``m`` (the official code's
        ``Q * L / Q.sum()``), so that the bucket only redistributes relative weight. If False
        the kept plan is the raw restriction, of total mass at most 1.
    row_mask, col_mask : shape (..., M) and (..., N), True = valid.

    Returns
    -------
    SinkhornResult with ``log_plan`` of shape (..., M, N) and duals of the kept rows/columns.

    Notes
    -----
    Norton Eq. (6). The official code uses ``marginals="superglue", renormalize=True`` and
    ``grad="detach"`` (docs/protocols.md D5, D6).

    Examples
    --------
    >>> s = torch.tensor([[0.9, 0.1], [0.1, 0.2]])
    >>> sinkhorn(s, eps=0.02).plan.round(decimals=2)  # vanilla OT must also match row 2
    tensor([[0.5000, 0.0000],
            [0.0000, 0.5000]])
    >>> q = bucket_sinkhorn(s, bucket_value=0.5, eps=0.02).plan
    >>> q.round(decimals=2)  # row 2 and column 2 score below p = 0.5: mass to the bucket
    tensor([[0.2500, 0.0000],
            [0.0000, 0.0000]])
    >>> bucket_sinkhorn(s, 0.5, eps=0.02, renormalize=True).plan.round(decimals=2)  # total m = 2
    tensor([[2., 0.],
            [0., 0.]])
    """
    _check_common(scores, eps, n_iters, grad)
    check_choice("marginals", marginals, ("superglue", "uniform"))
    scores = _float32_at_least(scores)
    rm, cm = _masks(scores, row_mask, col_mask)
    _check_scores_finite(scores, row_mask, col_mask, rm, cm)
    *batch, m, n = scores.shape
    try:
        p = torch.as_tensor(bucket_value, dtype=scores.dtype, device=scores.device)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"bucket_value: expected a float or a tensor of shape {tuple(batch)}, "
            f"got {type(bucket_value).__name__}"
        ) from None
    if p.ndim and tuple(p.shape) != tuple(batch):
        raise ValueError(
            f"bucket_value: expected a scalar or shape {tuple(batch)} (one per problem), "
            f"got {tuple(p.shape)}"
        )
    check_finite("bucket_value", p)
    p = p.detach().expand(batch)

    aug = torch.cat([scores, p[..., None, None].expand(*batch, m, 1)], dim=-1)  # (..., M, N+1)
    aug = torch.cat([aug, p[..., None, None].expand(*batch, 1, n + 1)], dim=-2)  # (..., M+1, N+1)
    true1 = rm.new_ones((*batch, 1))
    rm_aug = torch.cat([rm, true1], dim=-1)  # (..., M+1)
    cm_aug = torch.cat([cm, true1], dim=-1)  # (..., N+1)
    mv = rm.sum(-1, keepdim=True).to(scores.dtype)  # (..., 1) valid rows m
    nv = cm.sum(-1, keepdim=True).to(scores.dtype)  # (..., 1) valid columns n
    if marginals == "superglue":
        norm = -(mv + nv).log()
        log_a = torch.cat([norm.expand(*batch, m), nv.log() + norm], dim=-1)
        log_b = torch.cat([norm.expand(*batch, n), mv.log() + norm], dim=-1)
    else:
        log_a = (-(mv + 1).log()).expand(*batch, m + 1)
        log_b = (-(nv + 1).log()).expand(*batch, n + 1)
    log_a = torch.where(rm_aug, log_a, 0.0)
    log_b = torch.where(cm_aug, log_b, 0.0)

    masks = (None, None) if row_mask is None and col_mask is None else (rm_aug, cm_aug)
    ctx = torch.no_grad() if grad == "detach" else contextlib.nullcontext()
    with ctx, torch.autocast(scores.device.type, enabled=False):
        log_plan, log_u, log_v = _iterate(aug / eps, log_a, log_b, *masks, n_iters)
        log_plan, log_u, log_v = log_plan[..., :m, :n], log_u[..., :m], log_v[..., :n]
        if renormalize:
            kept = torch.logsumexp(log_plan.flatten(-2), dim=-1)  # (...)
            log_plan = log_plan + (mv.squeeze(-1).log() - kept)[..., None, None]
    return SinkhornResult(log_plan, log_u, log_v, n_iters)


def bucket_value_from_quantile(diag_similarities: Tensor, quantile: float = 0.3) -> Tensor:
    """The bucket value ``p``: the k-th *smallest* aligned-pair similarity, ``k = int(q * K)``.

    Parameters
    ----------
    diag_similarities : shape (K,) or (..., K), similarities of the originally aligned
        clip-caption pairs (the diagonal of the batch similarity matrix).
    quantile : the bottom quantile ``q`` in (0, 1) (Norton's ``prompt_ratio``, 0.3).

    Returns
    -------
    Tensor of shape () or (...), detached (no gradient flows through ``p``).

    Notes
    -----
    Norton Sec. 3.2: "the bottom 30 % similarity of the originally aligned pairs"; the official
    code takes ``torch.kthvalue(diag, int(0.3 * B))`` over the whole batch (docs/protocols.md D9).

    Examples
    --------
    >>> bucket_value_from_quantile(torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7]), 0.4)
    tensor(0.3000)
    """
    check_tensor("diag_similarities", diag_similarities, min_ndim=1)
    q = check_open_unit("quantile", quantile)
    size = diag_similarities.shape[-1]
    k = int(q * size)
    if k == 0:
        raise ValueError(
            f"quantile: int(quantile * K) = int({q} * {size}) = 0; need at least "
            f"{int(1 / q) + 1 if q < 1 else 1} aligned pairs or a larger quantile"
        )
    check_finite("diag_similarities", diag_similarities)
    return diag_similarities.detach().kthvalue(k, dim=-1).values
