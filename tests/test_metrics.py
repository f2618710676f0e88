"""Metrics on hand-computed examples, official conventions and tie handling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nortonkit.metrics import (
    alignment_recall,
    choice_accuracy,
    frame_accuracy,
    median_rank,
    paragraph_recall,
    recall_at_k,
    retrieval_metrics,
    retrieval_ranks,
    roc_auc,
)


def official_albef_ranks(scores: np.ndarray) -> np.ndarray:
    """The official RetrievalMetric loop with a stable sort: position of i in argsort[::-1]."""
    ranks = np.zeros(len(scores), dtype=np.int64)
    for i, row in enumerate(scores):
        inds = np.argsort(row, kind="stable")[::-1]
        ranks[i] = np.where(inds == i)[0][0]
    return ranks


def official_recall(mat: np.ndarray, ks=(1, 5, 10)) -> dict[int, float]:
    """The official ``recall(mat, gts)``: ascending argsort, top K = last K columns."""
    gts = np.arange(len(mat))
    order = np.argsort(mat, axis=1, kind="stable")
    return {k: float(np.mean([gts[i] in order[i, -k:] for i in range(len(mat))])) for k in ks}


def test_ranks_hand_example():
    s = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.5, 0.7], [0.4, 0.8, 0.1]])
    # row 0: true 0.9 is best -> 0; row 1: true 0.5 < 0.7 -> 1; row 2: true 0.1 is last -> 2
    assert retrieval_ranks(s).tolist() == [0, 1, 2]
    assert recall_at_k(s, 1) == pytest.approx(1 / 3)
    assert recall_at_k(s, 2) == pytest.approx(2 / 3)
    assert recall_at_k(s, 3) == 1.0
    assert median_rank(s) == 2.0


def test_median_rank_even_count_uses_numpy_median():
    s = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # ranks 0 and 1 -> median 0.5 -> MR 1.5
    assert median_rank(s) == 1.5
    assert median_rank(s) == float(np.median(official_albef_ranks(s.numpy()))) + 1


def test_ties_three_conventions():
    s = torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])
    assert retrieval_ranks(s, ties="pessimistic").tolist() == [2, 2, 2]
    assert retrieval_ranks(s, ties="optimistic").tolist() == [0, 0, 0]
    # official: ties favour the larger column index -> row i has (2 - i) tied columns before it
    assert retrieval_ranks(s, ties="official").tolist() == [2, 1, 0]
    # a constant model cannot look good by default
    assert recall_at_k(s, 1) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_official_ties_equal_the_official_loops(seed):
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(0, 3, (12, 12), generator=g).double()  # many ties
    want = official_albef_ranks(s.numpy())
    assert retrieval_ranks(s, ties="official").tolist() == want.tolist()
    got = paragraph_recall(s)
    assert got == official_recall(s.numpy())
    for k in (1, 5, 10):
        assert recall_at_k(s, k, ties="official") == pytest.approx(got[k])
    opt = retrieval_ranks(s, ties="optimistic")
    pes = retrieval_ranks(s, ties="pessimistic")
    off = retrieval_ranks(s, ties="official")
    assert bool((opt <= off).all()) and bool((off <= pes).all())


def test_no_ties_all_conventions_agree(generator):
    s = torch.randn(20, 20, generator=generator)
    a = retrieval_ranks(s, ties="pessimistic")
    assert torch.equal(a, retrieval_ranks(s, ties="optimistic"))
    assert torch.equal(a, retrieval_ranks(s, ties="official"))
    assert a.tolist() == official_albef_ranks(s.numpy()).tolist()


def test_retrieval_metrics_with_targets():
    s = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.4]])
    m = retrieval_metrics(s, ks=(1,), target=[1, 0, 0])
    assert m.ranks.tolist() == [0, 0, 1]
    assert m.recall == {1: pytest.approx(2 / 3)}
    assert m.median_rank == 1.0 and m.mean_rank == pytest.approx(4 / 3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: recall_at_k(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), 1), "NaN"),
        (lambda: recall_at_k(torch.zeros(2, 3), 1), "target: required"),
        (lambda: recall_at_k(torch.zeros(2, 2), 0), "k"),
        (lambda: retrieval_ranks(torch.zeros(2, 2), ties="random"), "ties"),
        (lambda: retrieval_ranks(torch.zeros(2, 2), target=[0, 2]), r"target: expected column"),
        (lambda: retrieval_ranks(torch.zeros(2), None), "scores: expected 2 dims"),
    ],
)
def test_retrieval_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_paragraph_recall_hand_example():
    m = torch.tensor([[0.9, 0.2, 0.1], [0.7, 0.6, 0.1], [0.2, 0.3, 0.1]])
    # row 0 rank 0; row 1 rank 1; row 2 rank 2
    assert paragraph_recall(m, ks=(1, 2, 3)) == {1: pytest.approx(1 / 3),
                                                 2: pytest.approx(2 / 3), 3: 1.0}


def test_frame_accuracy_counts_background_and_concatenates():
    pred = [torch.tensor([0, 0, 3, 3]), torch.tensor([5, 0])]
    target = [torch.tensor([0, 1, 3, 3]), torch.tensor([5, 5])]
    assert frame_accuracy(pred, target) == pytest.approx(4 / 6)
    flat_p, flat_t = torch.cat(pred), torch.cat(target)
    mask = torch.tensor([True, False, True, True, True, True])
    assert frame_accuracy(flat_p, flat_t, mask) == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match=r"pred\[1\]"):
        frame_accuracy(pred, [target[0], torch.tensor([5])])
    with pytest.raises(ValueError, match="at least one"):
        frame_accuracy(torch.tensor([1]), torch.tensor([1]), torch.tensor([False]))


def test_choice_accuracy_ties():
    s = torch.tensor([[0.2, 0.9, 0.1], [0.4, 0.4, 0.0], [0.0, 0.1, 0.3]])
    answers = [1, 1, 0]
    assert choice_accuracy(s, answers) == pytest.approx(1 / 3)  # tie counts as wrong
    assert choice_accuracy(s, answers, ties="optimistic") == pytest.approx(2 / 3)
    assert choice_accuracy(s, answers, ties="official") == pytest.approx(1 / 3)  # argmax -> 0
    assert choice_accuracy(s, [1, 0, 2], ties="official") == 1.0


def test_alignment_recall_hit_rule_boundaries():
    # one video, 4 sentences, 6 frames; segment [1.5, 3.2] -> frames 1..4 count as hits
    scores = torch.full((1, 4, 6), -1.0)
    best = [1, 4, 5, 0]
    for s, t in enumerate(best):
        scores[0, s, t] = 1.0
    seg = torch.tensor([[[1.5, 3.2]] * 4])
    r = alignment_recall(scores, seg)
    assert r.best_frame.tolist() == [best]
    assert (r.hits, r.n) == (2, 4)  # floor(1.5)=1 <= 1 and 4 <= ceil(3.2)=4 hit; 5 and 0 miss
    r = alignment_recall(scores, seg, text_mask=torch.tensor([[True, False, True, False]]))
    assert (r.hits, r.n, r.recall) == (1, 2, 0.5)
    assert r.best_frame.tolist() == [[1, -1, 5, -1]]


def test_alignment_recall_is_micro_averaged_and_masks_frames():
    scores = torch.zeros(2, 3, 4)
    scores[0, 0, 0] = 1  # video 0: 1 sentence, hit
    scores[1, :, 3] = 5  # video 1: 3 sentences; frame 3 is padding, so frame 0 wins
    seg = torch.tensor([[[0.0, 0.0]] * 3, [[2.0, 3.0]] * 3])
    tm = torch.tensor([[True, False, False], [True, True, True]])
    fm = torch.tensor([[True] * 4, [True, True, True, False]])
    r = alignment_recall(scores, seg, tm, fm)
    assert (r.hits, r.n) == (1, 4)
    assert r.recall == 0.25  # micro (1/4), not the macro mean of 1.0 and 0.0


def test_roc_auc_matches_pair_counting(generator):
    scores = torch.randint(0, 5, (30,), generator=generator).double()
    labels = torch.randint(0, 2, (30,), generator=generator)
    labels[0], labels[1] = 0, 1
    pos, neg = scores[labels == 1], scores[labels == 0]
    want = sum(float(p > n) + 0.5 * float(p == n) for p, n in itertools.product(pos, neg))
    assert roc_auc(scores, labels) == pytest.approx(want / (len(pos) * len(neg)))
    assert roc_auc(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([True, False, False])) == 1.0
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(torch.tensor([1.0, 2.0]), torch.tensor([1, 1]))
