"""Retrieval-augmented hard-negative batches: embeddings, faiss index, batch formation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nortonkit.train.retrieval import (
    RetrievalBatches,
    build_ivf_index,
    pad_batches,
    retrieval_batches,
    video_embeddings,
)


def _clustered(n_groups: int, per_group: int, dim: int = 16, seed: int = 0, spread: float = 10.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_groups, dim)) * spread
    x = np.repeat(centers, per_group, axis=0) + rng.normal(size=(n_groups * per_group, dim))
    perm = rng.permutation(len(x))  # ids are not ordered by group
    return x[perm].astype(np.float32), np.repeat(np.arange(n_groups), per_group)[perm]


def _ids(n: int) -> list[str]:
    return [f"vid{i:04d}" for i in range(n)]


def test_video_embeddings_average_both_modalities_over_clips(generator):
    v = torch.randn(3 * 4, 5, generator=generator)
    t = torch.randn(3 * 4, 5, generator=generator)
    out = video_embeddings(v, t, clips_per_video=4)
    loop = torch.stack([((v[4 * i : 4 * i + 4] + t[4 * i : 4 * i + 4]) / 2).mean(0)
                        for i in range(3)])
    torch.testing.assert_close(out, loop)
    half = video_embeddings(v.half(), t.half(), 4)
    assert half.dtype == torch.float32
    with pytest.raises(ValueError, match="pooled_video: expected a multiple of clips_per_video=5"):
        video_embeddings(v, t, 5)
    with pytest.raises(ValueError, match="pooled_text: expected the shape of pooled_video"):
        video_embeddings(v, t[:4], 4)


def test_index_adapts_its_lists_to_the_data_size():
    x, _ = _clustered(4, 50)
    assert build_ivf_index(x, n_centroids=512, examples_per_centroid=48).nlist == 4
    assert build_ivf_index(x, n_centroids=2, examples_per_centroid=10).nlist == 2
    small = build_ivf_index(x[:10], n_centroids=512, examples_per_centroid=48)
    assert small.nlist == 1 and small.ntotal == 10
    assert build_ivf_index(x, n_centroids=8, examples_per_centroid=10, nprobe=99).nprobe == 8
    with pytest.raises(ValueError, match="embeddings: expected a non-empty array of shape"):
        build_ivf_index(np.zeros((0, 4), np.float32))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="embeddings: expected finite values"):
        build_ivf_index(bad)


@pytest.mark.parametrize(("n", "batch_size"), [(64, 8), (67, 8), (30, 7), (5, 8), (200, 16)])
def test_fixed_mode_visits_every_video_and_keeps_queries(n, batch_size):
    x = np.random.default_rng(n).normal(size=(n, 12)).astype(np.float32)
    out = retrieval_batches(x, _ids(n), batch_size, mode="fixed", n_candidates=24,
                            examples_per_centroid=10, nprobe=2, seed=3)
    assert isinstance(out, RetrievalBatches)
    flat = [v for b in out.batches for v in b]
    assert set(flat) == set(_ids(n))  # every video visited
    assert out.n_effective == n and out.n_videos == n
    assert len(out.batches) == -(-n // batch_size)
    for b in out.batches:
        assert len(b) == min(batch_size, n) and len(set(b)) == len(b)
    # only the last batch may repeat videos (it is completed with used neighbours)
    assert len(set(flat[: (len(out.batches) - 1) * batch_size])) == (len(out.batches) - 1) * \
        batch_size
    assert out.n_short == 0 and out.n_query_dropped == 0
    assert out.summary()["coverage"] == 1.0


def test_fixed_mode_groups_nearest_neighbours():
    x, group = _clustered(8, 16, seed=1)
    ids = _ids(len(x))
    out = retrieval_batches(x, ids, batch_size=16, n_candidates=32, n_centroids=8,
                            examples_per_centroid=16, nprobe=2, seed=0)
    of = {v: g for v, g in zip(ids, group)}
    purity = np.mean([np.bincount([of[v] for v in b]).max() / len(b) for b in out.batches])
    assert purity > 0.9  # hard negatives: each batch is (almost) one cluster
    rng = np.random.default_rng(0)
    random_batches = np.array_split(rng.permutation(len(ids)), len(out.batches))
    random_purity = np.mean([np.bincount(group[b]).max() / len(b) for b in random_batches])
    assert random_purity < 0.5
    # the same seed gives the same batches; another seed another query order
    again = retrieval_batches(x, ids, 16, n_candidates=32, n_centroids=8,
                              examples_per_centroid=16, nprobe=2, seed=0)
    assert again.batches == out.batches


def test_videoclip_mode_is_the_released_behaviour():
    x, _ = _clustered(6, 40, seed=2)
    ids = _ids(len(x))
    index_of = {v: i for i, v in enumerate(ids)}
    batch_size, k = 16, 24
    out = retrieval_batches(x, ids, batch_size, mode="videoclip", n_candidates=k,
                            n_centroids=6, examples_per_centroid=30, nprobe=1, seed=5)
    assert out.mode == "videoclip"
    assert len(out.batches) == len(x) // batch_size  # N // 64 random queries
    index = build_ivf_index(x, 6, 30, 1, seed=1234 + 5)
    rng = np.random.default_rng(5)
    queries = rng.choice(len(x), size=len(x) // batch_size, replace=False)
    for q, b in zip(queries.tolist(), out.batches):
        _, nn = index.search(x[q : q + 1], k + 1)
        candidates = {q} | {int(j) for j in nn[0] if j >= 0}
        assert {index_of[v] for v in b} <= candidates  # query + its neighbours only
        assert len(b) <= batch_size
    # a random subset of 25 candidates: queries get dropped, videos repeat or are never used
    assert out.n_query_dropped > 0
    assert out.n_effective < len(x)


def test_videoclip_mode_short_batches_with_small_lists():
    x, _ = _clustered(20, 6, seed=4)  # 20 tight clusters of 6, one probed list each
    out = retrieval_batches(x, _ids(len(x)), batch_size=16, mode="videoclip", n_candidates=32,
                            n_centroids=20, examples_per_centroid=6, nprobe=1, seed=0)
    assert out.n_short > 0  # a small probed list cannot fill a batch


def test_argument_checks():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="video_ids: expected 4 ids"):
        retrieval_batches(x, _ids(3), 2)
    with pytest.raises(ValueError, match="video_ids: expected unique ids"):
        retrieval_batches(x, ["a", "a", "b", "c"], 2)
    with pytest.raises(ValueError, match="mode: expected one of"):
        retrieval_batches(x, _ids(4), 2, mode="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1"):
        retrieval_batches(x, _ids(4), 0)


def test_pad_batches_deals_equal_shares():
    batches = [["a"], ["b"], ["c"], ["d"], ["e"]]
    padded = pad_batches(batches, 4)
    assert padded[:5] == batches and padded[5:] == [["a"], ["b"], ["c"]]
    assert pad_batches(batches, 1) == batches
    shares = [padded[r::4] for r in range(4)]
    assert {len(s) for s in shares} == {2}
    with pytest.raises(ValueError, match="batches: expected at least one batch"):
        pad_batches([], 2)
