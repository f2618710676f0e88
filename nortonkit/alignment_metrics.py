r"""Agreement of a clip x caption alignment with the ground truth of a video.

One metric for every alignment the kit draws or measures: a DTW path (Norton Fig. 1), a
vanilla OT plan (Eq. 2-3) or Norton's plan with the alignable prompt bucket (Eq. 6). It is
used by the transport-accuracy study (:mod:`nortonkit.lab.transport_study`) and by the alignment
explorer (:mod:`nortonkit.lab.explore`), so the numbers of both are the same quantity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

from .validation import check_finite, check_tensor

__all__ = ["METRICS", "COUNTS", "alignment_metrics", "pool_metrics"]

#: Ratio metrics of :func:`alignment_metrics` (fractions in [0, 1]).
METRICS = ("accuracy", "strict_accuracy", "bucket_precision", "bucket_recall")
#: The counts behind the ratios; :func:`pool_metrics` adds them over problems.
COUNTS = ("n_captions", "n_relevant", "n_alignable", "n_hits", "n_strict_hits",
          "n_irrelevant", "n_to_bucket", "n_irrelevant_to_bucket")


def _bool(name: str, x: object, shape: tuple[int, ...]) -> Tensor:
    if not isinstance(x, Tensor) or x.dtype != torch.bool or tuple(x.shape) != shape:
        got = f"{x.dtype} of shape {tuple(x.shape)}" if isinstance(x, Tensor) else \
            type(x).__name__
        raise ValueError(f"{name}: expected a bool tensor of shape {shape}, got {got}")
    return x


def _div(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan  # NaN counts (no bucket) stay NaN


def _ratios(c: Mapping[str, float]) -> dict[str, float]:
    return {
        "accuracy": _div(c["n_hits"], c["n_alignable"]),
        "strict_accuracy": _div(c["n_strict_hits"], c["n_alignable"]),
        "bucket_precision": _div(c["n_irrelevant_to_bucket"], c["n_to_bucket"]),
        "bucket_recall": (math.nan if math.isnan(c["n_to_bucket"])
                          else _div(c["n_irrelevant_to_bucket"], c["n_irrelevant"])),
        "irrelevant_share": _div(c["n_irrelevant"], c["n_captions"]),
    }


def alignment_metrics(
    plan_or_path: Tensor,
    truth: Tensor,
    irrelevant: Tensor,
    bucket_mass: Tensor | None = None,
    scores: Tensor | None = None,
) -> dict[str, float]:
    r"""Agreement of one clip x caption alignment with the ground truth.

    Parameters
    ----------
    plan_or_path : shape (M, N), >= 0: a transport plan (Eq. 3, or Eq. 6 with the bucket row
        and column dropped) or a 0/1 DTW path.
    truth : shape (M, N) bool, ``truth[i, j]``: clip ``i`` overlaps the true segment of the step
        caption ``j`` describes.
    irrelevant : shape (N,) bool, captions with no visual counterpart (their ``truth`` columns
        must be all False).
    bucket_mass : shape (N,), >= 0, the mass caption ``j`` sends to the bucket, in the units of
        the plan's columns (e.g. ``1 - column sum`` of the plan rescaled by ``M + N``). ``None``
        for a method without a bucket.
    scores : shape (M, N), optional similarities that break ties of ``plan_or_path`` (a DTW
        path puts 1 on every clip of a caption's run).

    Returns
    -------
    dict of str to float
        Ratios (NaN where undefined, see below) and the counts behind them.

    Notes
    -----
    With :math:`P` the plan, :math:`A = \{j : \lnot\,\mathrm{irr}_j,\ \exists i\ T_{ij}\}` the
    alignable captions, :math:`a(j) = \arg\max_i P_{ij}` (ties: largest ``scores``, then the
    first clip) and, with a bucket, :math:`B_j = [\,b_j > \max_i P_{ij}\,]` (the caption goes
    to the bucket when its bucket mass beats its mass to every real clip):

    .. math::
        \mathrm{accuracy} = \frac{|\{j \in A : T_{a(j) j}\}|}{|A|},\qquad
        \mathrm{strict\_accuracy} = \frac{|\{j \in A : T_{a(j) j} \land \lnot B_j\}|}{|A|}

    .. math::
        \mathrm{bucket\_precision} = \frac{|\{j : B_j \land \mathrm{irr}_j\}|}{|\{j : B_j\}|},
        \qquad
        \mathrm{bucket\_recall} = \frac{|\{j : B_j \land \mathrm{irr}_j\}|}{|\{j :
        \mathrm{irr}_j\}|}

    ``accuracy`` is the caption-to-segment accuracy (HTM-Align's recall, Norton App. D, with
    clips in place of seconds); ``strict_accuracy`` also counts a relevant caption sent to the
    bucket as a miss (equal to ``accuracy`` without a bucket). A relevant caption none of whose
    clips lies in its step (an offset moved it away from every clip of its sequence) is not in
    ``A``; ``n_relevant - n_alignable`` counts them. ``irrelevant_share`` is
    ``n_irrelevant / n_captions``, the precision of sending captions to the bucket at random.
    Undefined (NaN): the accuracies when ``A`` is empty; the bucket metrics and bucket counts
    without ``bucket_mass``; precision when no caption is sent; recall without irrelevant
    captions. :func:`pool_metrics` adds counts over problems.

    Examples
    --------
    >>> truth = torch.tensor([[True, False, False], [False, True, False]])
    >>> plan = torch.tensor([[0.9, 0.6, 0.1], [0.1, 0.3, 0.1]])
    >>> irr = torch.tensor([False, False, True])
    >>> m = alignment_metrics(plan, truth, irr, bucket_mass=torch.tensor([0.0, 0.1, 0.8]))
    >>> m["accuracy"], m["bucket_precision"], m["bucket_recall"]
    (0.5, 1.0, 1.0)
    >>> math.isnan(alignment_metrics(plan, truth, irr)["bucket_recall"])
    True
    """
    plan = check_tensor("plan_or_path", plan_or_path, ndim=2, floating=False)
    if plan.dtype == torch.bool:
        plan = plan.float()
    plan = check_tensor("plan_or_path", plan, ndim=2)
    m, n = plan.shape
    if m == 0 or n == 0:
        raise ValueError(f"plan_or_path: expected at least one clip and one caption, "
                         f"got shape {(m, n)}")
    check_finite("plan_or_path", plan)
    if bool((plan < 0).any()):
        raise ValueError(f"plan_or_path: expected values >= 0, got min {float(plan.min()):.3g}")
    truth = _bool("truth", truth, (m, n))
    irrelevant = _bool("irrelevant", irrelevant, (n,))
    bad = (truth.any(0) & irrelevant).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"truth, irrelevant: captions {bad[:5]} are irrelevant but have true "
                         "clips; expected all-False truth columns for irrelevant captions")
    if scores is not None:
        check_tensor("scores", scores, ndim=2, shape=(m, n))
        check_finite("scores", scores)
        top = plan == plan.max(0, keepdim=True).values  # (M, N) tied maxima
        key = torch.where(top, scores.to(plan.dtype), -math.inf)
    else:
        key = plan
    assigned = key.argmax(0)  # (N,) first clip among equal keys
    hit = truth[assigned, torch.arange(n)]  # (N,)
    alignable = truth.any(0) & ~irrelevant  # (N,)
    if bucket_mass is None:
        sent = torch.zeros(n, dtype=torch.bool)
        nan = math.nan
    else:
        check_tensor("bucket_mass", bucket_mass, ndim=1, shape=(n,))
        check_finite("bucket_mass", bucket_mass)
        if bool((bucket_mass < 0).any()):
            raise ValueError(f"bucket_mass: expected values >= 0, got min "
                             f"{float(bucket_mass.min()):.3g}")
        sent = bucket_mass.to(plan.dtype) > plan.max(0).values  # (N,)
        nan = 0.0
    counts = {
        "n_captions": float(n),
        "n_relevant": float((~irrelevant).sum()),
        "n_alignable": float(alignable.sum()),
        "n_hits": float((hit & alignable).sum()),
        "n_strict_hits": float((hit & alignable & ~sent).sum()),
        "n_irrelevant": float(irrelevant.sum()),
        "n_to_bucket": nan + float(sent.sum()),
        "n_irrelevant_to_bucket": nan + float((sent & irrelevant).sum()),
    }
    return {**_ratios(counts), **counts}


def pool_metrics(metrics: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Micro-average: add the counts of many :func:`alignment_metrics` and recompute ratios.

    >>> a = dict.fromkeys(COUNTS, 1.0) | {"n_alignable": 2.0}
    >>> pool_metrics([a, a])["accuracy"]
    0.5
    """
    items = list(metrics)
    if not items:
        raise ValueError("metrics: expected at least one alignment_metrics dict, got none")
    counts = {k: float(sum(m[k] for m in items)) for k in COUNTS}
    return {**_ratios(counts), **counts}
