r"""Evaluation metrics with the official conventions: R@K, median rank, frame and QA accuracy.

Every function takes score matrices with **rows = queries** and **columns = candidates**
(text-to-video retrieval: rows are captions or paragraphs, columns are clips or videos), higher
= better, and returns fractions in ``[0, 1]`` (the result tables multiply by 100).

Ranks and ties
--------------
The rank of a query is the 0-based position of its true candidate when the row is sorted by
decreasing score; ``R@K = mean(rank < K)`` and ``MR = median(rank) + 1`` (official
``RetrievalMetric``, ``docs/protocols.md`` §7.1). Ties between the true candidate and others are
resolved by ``ties``:

=================  ============================================================================
``"pessimistic"``  (default) every tied candidate is ranked before the true one:
                   ``rank = #{j : s_j >= s_true} - 1``. A model that gives every candidate the
                   same score gets R@1 = 0, not 100 %; a degenerate model can never look good.
``"optimistic"``   the true candidate is ranked before every tied one: ``#{j : s_j > s_true}``.
``"official"``     the order of ``argsort(row)[::-1]`` with a *stable* ascending sort, i.e. ties
                   are broken in favour of the **larger column index**. This is what the
                   official ``recall(mat, gts)`` (ascending ``argsort``, top-K = last K columns)
                   and the ALBEF loop (``argsort(score)[::-1]``) compute whenever numpy's sort
                   keeps equal keys in index order; numpy's default quicksort does not promise
                   that, so with ties the released numbers are implementation-defined.
=================  ============================================================================

Without ties the three agree. Float ties are rare with trained models but systematic with
untrained, saturated or quantised ones (e.g. float16 features, or a constant score), which is
why the default is the conservative one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .validation import check_choice, check_int_at_least, check_mask, check_tensor

__all__ = [
    "Ties",
    "TIES",
    "RetrievalMetrics",
    "AlignmentRecall",
    "retrieval_ranks",
    "recall_at_k",
    "median_rank",
    "retrieval_metrics",
    "paragraph_recall",
    "frame_accuracy",
    "choice_accuracy",
    "alignment_recall",
    "roc_auc",
]

Ties = Literal["pessimistic", "optimistic", "official"]
TIES: tuple[str, ...] = ("pessimistic", "optimistic", "official")


class RetrievalMetrics(NamedTuple):
    """Output of :func:`retrieval_metrics`.

    Attributes
    ----------
    recall : dict mapping K to R@K (fraction in [0, 1]).
    median_rank : ``median(rank) + 1`` (1 = perfect).
    mean_rank : ``mean(rank) + 1``.
    ranks : shape (Q,), int64 0-based rank of each query's true candidate.
    """

    recall: dict[int, float]
    median_rank: float
    mean_rank: float
    ranks: Tensor


class AlignmentRecall(NamedTuple):
    """Output of :func:`alignment_recall`.

    Attributes
    ----------
    recall : hits / n (micro-average over every counted sentence), NaN when ``n = 0``.
    hits : number of sentences whose best frame lies in their segment.
    n : number of counted (valid, alignable) sentences.
    best_frame : shape (B, S), int64 argmax frame of every sentence (-1 where not counted).
    """

    recall: float
    hits: int
    n: int
    best_frame: Tensor


def _scores(name: str, scores: Tensor) -> Tensor:
    check_tensor(name, scores, ndim=2)
    q, c = scores.shape
    if q < 1 or c < 1:
        raise ValueError(f"{name}: expected at least one row and one column, got shape {(q, c)}")
    if bool(torch.isnan(scores).any()):
        first = tuple(torch.isnan(scores).nonzero()[0].tolist())
        raise ValueError(f"{name}: expected no NaN scores, found one at index {first}")
    return scores


def _targets(target: Tensor | Sequence[int] | None, q: int, c: int) -> Tensor:
    if target is None:
        if q != c:
            raise ValueError(
                f"target: required when scores are not square (the default ground truth is "
                f"arange); got scores of shape ({q}, {c})"
            )
        return torch.arange(q)
    t = torch.as_tensor(target)
    if t.shape != (q,) or t.is_floating_point() or t.dtype == torch.bool:
        raise ValueError(
            f"target: expected an integer tensor of shape ({q},), got shape {tuple(t.shape)} "
            f"dtype {t.dtype}"
        )
    if q and (int(t.min()) < 0 or int(t.max()) >= c):
        raise ValueError(
            f"target: expected column indices in [0, {c}), got range "
            f"[{int(t.min())}, {int(t.max())}]"
        )
    return t.long()


def retrieval_ranks(
    scores: Tensor, target: Tensor | Sequence[int] | None = None, ties: Ties = "pessimistic"
) -> Tensor:
    r"""0-based rank of each query's true candidate in its row sorted by decreasing score.

    .. math::
        r_i = \#\{j : s_{ij} > s_{i t_i}\} + \#\{j \ne t_i : s_{ij} = s_{i t_i},\
              j \text{ ranked first by ties}\}

    Parameters
    ----------
    scores : shape (Q, C), query x candidate scores (higher = better), no NaN.
    target : shape (Q,), the true column of each row; default ``arange(Q)`` (square scores).
    ties : ``"pessimistic"`` (default), ``"optimistic"`` or ``"official"`` (see module doc).

    Returns
    -------
    Tensor of shape (Q,), int64 ranks in ``[0, C)``.

    Notes
    -----
    Official ``RetrievalMetric`` (``docs/protocols.md`` §7.1): ``rank = position of column i in
    argsort(row, descending)``; Norton Tables 1-3 and 5 report R@K built from it.

    Examples
    --------
    >>> s = torch.tensor([[0.9, 0.1, 0.3], [0.5, 0.5, 0.0], [0.2, 0.2, 0.2]])
    >>> retrieval_ranks(s).tolist()
    [0, 1, 2]
    >>> retrieval_ranks(s, ties="optimistic").tolist()
    [0, 0, 0]
    >>> retrieval_ranks(s, ties="official").tolist()  # ties favour the larger column index
    [0, 0, 0]
    >>> retrieval_ranks(s, target=[1, 0, 0], ties="official").tolist()
    [2, 1, 2]
    """
    check_choice("ties", ties, TIES)
    scores = _scores("scores", scores)
    q, c = scores.shape
    t = _targets(target, q, c).to(scores.device)
    true = scores.gather(1, t[:, None])  # (Q, 1)
    greater = (scores > true).sum(dim=1)
    equal = (scores == true).sum(dim=1) - 1  # tied others
    if ties == "pessimistic":
        return (greater + equal).long()
    if ties == "optimistic":
        return greater.long()
    cols = torch.arange(c, device=scores.device)[None, :]
    later = ((scores == true) & (cols > t[:, None])).sum(dim=1)  # ties with larger index
    return (greater + later).long()


def recall_at_k(
    scores: Tensor,
    k: int,
    target: Tensor | Sequence[int] | None = None,
    ties: Ties = "pessimistic",
) -> float:
    r"""Recall at K: the fraction of queries whose true candidate ranks in the top K.

    .. math:: \mathrm{R@K} = \frac{1}{Q}\sum_i [r_i < K]

    Parameters
    ----------
    scores : shape (Q, C), query x candidate scores (higher = better).
    k : K >= 1.
    target : shape (Q,), true columns (default ``arange``).
    ties : see :func:`retrieval_ranks`.

    Returns
    -------
    float in [0, 1].

    Notes
    -----
    Official ``RetrievalMetric`` / ``recall(mat, gts)`` (``docs/protocols.md`` §7.1).

    Examples
    --------
    >>> s = torch.tensor([[0.9, 0.1, 0.3], [0.5, 0.5, 0.0], [0.2, 0.2, 0.2]])
    >>> recall_at_k(s, 1), recall_at_k(s, 2), recall_at_k(s, 1, ties="optimistic")
    (0.3333333333333333, 0.6666666666666666, 1.0)
    """
    check_int_at_least("k", k, 1)
    ranks = retrieval_ranks(scores, target, ties)
    return float((ranks < k).double().mean())


def _median(x: Tensor) -> float:
    """numpy's median (the mean of the two middle values for an even count)."""
    v = torch.sort(x.double()).values
    n = v.numel()
    return float(v[n // 2]) if n % 2 else float((v[n // 2 - 1] + v[n // 2]) / 2)


def median_rank(
    scores: Tensor, target: Tensor | Sequence[int] | None = None, ties: Ties = "pessimistic"
) -> float:
    r"""Median rank ``MR = median(r) + 1`` (1 is perfect; numpy's median for even counts).

    Parameters
    ----------
    scores : shape (Q, C), query x candidate scores.
    target : shape (Q,), true columns (default ``arange``).
    ties : see :func:`retrieval_ranks`.

    Returns
    -------
    float >= 1.

    Notes
    -----
    Official ``RetrievalMetric``: ``MR = np.median(ranks) + 1`` (``docs/protocols.md`` §7.1).

    Examples
    --------
    >>> s = torch.tensor([[0.9, 0.1, 0.3], [0.5, 0.5, 0.0], [0.2, 0.2, 0.2], [0.0, 1.0, 2.0]])
    >>> median_rank(s[:, :3].contiguous()[:3])  # ranks 0, 1, 2
    2.0
    >>> median_rank(s, target=[0, 0, 0, 1])  # ranks 0, 1, 2, 1 -> median 1.0
    2.0
    """
    return _median(retrieval_ranks(scores, target, ties)) + 1.0


def retrieval_metrics(
    scores: Tensor,
    ks: Sequence[int] = (1, 5, 10),
    target: Tensor | Sequence[int] | None = None,
    ties: Ties = "pessimistic",
) -> RetrievalMetrics:
    r"""R@K for several K, median and mean rank, from one ranking pass.

    Parameters
    ----------
    scores : shape (Q, C), query x candidate scores (higher = better).
    ks : the K values (each >= 1).
    target : shape (Q,), true columns (default ``arange``).
    ties : see :func:`retrieval_ranks`.

    Returns
    -------
    RetrievalMetrics

    Notes
    -----
    .. math:: \mathrm{R@K} = \tfrac{1}{Q}\sum_i [r_i < K],\quad
              \mathrm{MR} = \mathrm{median}_i(r_i) + 1

    Norton Tables 1-3, 5 (``docs/protocols.md`` §7.1).

    Examples
    --------
    >>> s = torch.eye(3) + torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> m = retrieval_metrics(s, ks=(1, 2))
    >>> m.recall, m.median_rank, m.ranks.tolist()
    ({1: 0.6666666666666666, 2: 1.0}, 1.0, [1, 0, 0])
    """
    ranks = retrieval_ranks(scores, target, ties)
    recall = {}
    for k in ks:
        check_int_at_least("ks", k, 1)
        recall[int(k)] = float((ranks < k).double().mean())
    return RetrievalMetrics(recall, _median(ranks) + 1.0, float(ranks.double().mean()) + 1.0, ranks)


def paragraph_recall(
    mat: Tensor, gts: Tensor | Sequence[int] | None = None, ks: Sequence[int] = (1, 5, 10)
) -> dict[int, float]:
    r"""The official ``recall(mat, gts)`` of the video-paragraph metrics, verbatim semantics.

    Each row is sorted ascending (stable); R@1 checks whether the last column is the ground
    truth, R@K whether the ground truth is among the last K columns. This equals
    :func:`recall_at_k` with ``ties="official"``.

    Parameters
    ----------
    mat : shape (Q, G), paragraph x video scores (higher = better).
    gts : shape (Q,), true video of each paragraph (default ``arange``).
    ks : the K values.

    Returns
    -------
    dict mapping K to the recall fraction.

    Notes
    -----
    Official ``mmpt/evaluators/metric.py::recall`` used by ``FullVideoRetrievalMetric`` and
    ``FullVideoBGRetrievalMetric`` (Norton Tables 1-2; ``docs/protocols.md`` §7.1).

    Examples
    --------
    >>> m = torch.tensor([[0.2, 0.2, 0.1], [0.3, 0.9, 0.0], [0.5, 0.5, 0.5]])
    >>> paragraph_recall(m, ks=(1, 2))  # row 0 loses its tie to column 1; row 2 wins
    {1: 0.6666666666666666, 2: 1.0}
    """
    mat = _scores("mat", mat)
    q, c = mat.shape
    t = _targets(gts, q, c).to(mat.device)
    order = torch.argsort(mat, dim=1, stable=True)  # ascending
    out = {}
    for k in ks:
        check_int_at_least("ks", k, 1)
        top = order[:, max(c - k, 0):]
        out[int(k)] = float((top == t[:, None]).any(dim=1).double().mean())
    return out


def frame_accuracy(
    pred: Tensor | Sequence[Tensor],
    target: Tensor | Sequence[Tensor],
    mask: Tensor | None = None,
) -> float:
    r"""COIN frame accuracy over all frames of all videos concatenated (background included).

    .. math:: \mathrm{acc} = 1 - \frac{\#\{t : \hat y_t \ne y_t\}}{\#\text{frames}}

    Parameters
    ----------
    pred, target : shape (N,) integer labels, or sequences of per-video label tensors of
        matching lengths (concatenated). Label 0 (background) counts like any other label.
    mask : shape (N,), bool, optional; frames to count (tensor inputs only).

    Returns
    -------
    float in [0, 1].

    Notes
    -----
    Official ``COINActionSegmentationMetric`` (``docs/protocols.md`` §7.1, §7.7); Norton
    Table 4.

    Examples
    --------
    >>> frame_accuracy([torch.tensor([0, 1, 1]), torch.tensor([2])],
    ...                [torch.tensor([0, 1, 2]), torch.tensor([2])])
    0.75
    """
    if not isinstance(pred, Tensor):
        if isinstance(target, Tensor) or len(pred) != len(target):
            raise ValueError("target: expected a sequence of the same length as pred")
        for i, (p, t) in enumerate(zip(pred, target)):
            if p.shape != t.shape:
                raise ValueError(f"pred[{i}]: expected shape {tuple(t.shape)} like target[{i}], "
                                 f"got {tuple(p.shape)}")
        if mask is not None:
            raise ValueError("mask: only supported with tensor inputs")
        pred = torch.cat([p.reshape(-1) for p in pred]) if len(pred) else torch.empty(0)
        target = torch.cat([t.reshape(-1) for t in target]) if len(target) else torch.empty(0)
    check_tensor("pred", pred, ndim=1, floating=False)
    check_tensor("target", target, ndim=1, shape=tuple(pred.shape), floating=False)
    check_mask("mask", mask, tuple(pred.shape))
    if mask is not None:
        pred, target = pred[mask], target[mask]
    if pred.numel() == 0:
        raise ValueError("pred: expected at least one (unmasked) frame, got 0")
    return 1.0 - float((pred != target).double().sum()) / pred.numel()


def choice_accuracy(
    scores: Tensor, answers: Tensor | Sequence[int], ties: Ties = "pessimistic"
) -> float:
    r"""Multiple-choice accuracy: the fraction of questions whose answer scores highest.

    .. math:: \mathrm{acc} = \frac{1}{Q}\sum_q [\arg\max_a s_{qa} = y_q]

    Parameters
    ----------
    scores : shape (Q, A), question x candidate scores.
    answers : shape (Q,), index of the correct candidate.
    ties : ``"pessimistic"`` (a tie with the answer counts as wrong), ``"optimistic"`` (counts
        as right) or ``"official"`` (numpy ``argmax``: the first maximal candidate wins).

    Returns
    -------
    float in [0, 1].

    Notes
    -----
    Official ``QAMetric`` (``accuracy_score`` of the argmax; ``docs/protocols.md`` §7.6);
    Norton Table 6.

    Examples
    --------
    >>> s = torch.tensor([[0.1, 0.9, 0.0], [0.5, 0.5, 0.1]])
    >>> choice_accuracy(s, [1, 0]), choice_accuracy(s, [1, 0], ties="official")
    (0.5, 1.0)
    """
    check_choice("ties", ties, TIES)
    scores = _scores("scores", scores)
    q, a = scores.shape
    y = _targets(answers, q, a).to(scores.device)
    if ties == "official":
        return float((scores.argmax(dim=1) == y).double().mean())
    return float((retrieval_ranks(scores, y, ties) == 0).double().mean())


def alignment_recall(
    scores: Tensor,
    segments: Tensor,
    text_mask: Tensor | None = None,
    frame_mask: Tensor | None = None,
) -> AlignmentRecall:
    r"""HTM-Align recall: a sentence is recalled when its best frame lies in its segment.

    .. math::
        \hat t_s = \arg\max_t S_{s,t},\qquad
        \mathrm{recall} = \frac{\sum_s [\lfloor a_s \rfloor \le \hat t_s \le \lceil b_s \rceil]}
                               {\#\text{counted sentences}}

    micro-averaged over every counted sentence of every video.

    Parameters
    ----------
    scores : shape (B, S, T), sentence x frame scores per video (higher = better).
    segments : shape (B, S, 2), ``[start, end]`` seconds of each sentence's true segment.
    text_mask : shape (B, S), bool; sentences to count (valid *and* alignable). Default: all.
    frame_mask : shape (B, T), bool; valid frames (padding frames never win). Default: all.

    Returns
    -------
    AlignmentRecall

    Notes
    -----
    Official ``eval_zeroshot_align.py`` (adapted from TAN; ``docs/protocols.md`` §7.8); Norton
    Table 9. The argmax takes the first maximal frame, as ``torch.argmax`` and numpy do.
    (The official softmax before the argmax does not change it.)

    Examples
    --------
    >>> s = torch.tensor([[[0.1, 0.9, 0.2, 0.0], [0.3, 0.1, 0.0, 0.2]]])
    >>> seg = torch.tensor([[[0.5, 1.2], [2.0, 3.0]]])
    >>> r = alignment_recall(s, seg)
    >>> r.recall, r.hits, r.n, r.best_frame.tolist()
    (0.5, 1, 2, [[1, 0]])
    """
    check_tensor("scores", scores, ndim=3)
    b, s, t = scores.shape
    check_tensor("segments", segments, ndim=3, shape=(b, s, 2))
    check_mask("text_mask", text_mask, (b, s))
    check_mask("frame_mask", frame_mask, (b, t))
    if t < 1:
        raise ValueError("scores: expected at least one frame, got T=0")
    tm = text_mask if text_mask is not None else torch.ones(b, s, dtype=torch.bool)
    tm = tm.to(scores.device)
    x = scores
    if frame_mask is not None:
        fm = frame_mask.to(scores.device)
        if bool((~fm.any(dim=1) & tm.any(dim=1)).any()):
            raise ValueError("frame_mask: expected at least one valid frame per video with "
                             "counted sentences")
        x = torch.where(fm[:, None, :], x, torch.tensor(-torch.inf, dtype=x.dtype))
    if bool(torch.isnan(x[tm]).any()):
        raise ValueError("scores: expected no NaN on counted sentences")
    best = x.argmax(dim=2)  # (B, S)
    lo = torch.floor(segments[..., 0]).to(best.device)
    hi = torch.ceil(segments[..., 1]).to(best.device)
    hit = (lo <= best) & (best <= hi) & tm
    n = int(tm.sum())
    hits = int(hit.sum())
    recall = hits / n if n else float("nan")
    return AlignmentRecall(recall, hits, n, torch.where(tm, best, torch.full_like(best, -1)))


def roc_auc(scores: Tensor, labels: Tensor) -> float:
    r"""Area under the ROC curve (Mann-Whitney U), ties counted one half.

    .. math::
        \mathrm{AUC} = \frac{1}{n_+ n_-}\sum_{i \in +}\sum_{j \in -}
                       \left([s_i > s_j] + \tfrac12 [s_i = s_j]\right)

    Parameters
    ----------
    scores : shape (N,), real scores (higher = more likely positive).
    labels : shape (N,), bool or 0/1 labels; both classes must be present.

    Returns
    -------
    float in [0, 1]; equals ``sklearn.metrics.roc_auc_score(labels, scores)``.

    Notes
    -----
    The HTM-Align script also prints ``roc_auc(aligned label, max similarity over frames)``
    (``docs/protocols.md`` §7.8), Norton App. D.

    Examples
    --------
    >>> roc_auc(torch.tensor([0.9, 0.4, 0.4, 0.1]), torch.tensor([1, 1, 0, 0]))
    0.875
    """
    check_tensor("scores", scores, ndim=1)
    check_tensor("labels", labels, ndim=1, shape=tuple(scores.shape), floating=False)
    if bool(torch.isnan(scores.double()).any()):
        raise ValueError("scores: expected no NaN")
    y = labels.bool() if labels.dtype == torch.bool else labels != 0
    if labels.dtype != torch.bool and not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("labels: expected 0/1 or bool labels")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"labels: expected both classes, got {n_pos} positive and "
                         f"{n_neg} negative")
    x = scores.double()
    order = torch.argsort(x, stable=True)
    sorted_x = x[order]
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(1, len(x) + 1, dtype=torch.float64)
    # average ranks over ties
    uniq, inverse = torch.unique(sorted_x, return_inverse=True)
    sums = torch.zeros(len(uniq), dtype=torch.float64).index_add_(
        0, inverse, torch.arange(1, len(x) + 1, dtype=torch.float64))
    counts = torch.bincount(inverse, minlength=len(uniq)).double()
    ranks[order] = (sums / counts)[inverse]
    u = float(ranks[y].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)
