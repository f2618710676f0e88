"""Retrieval-augmented hard-negative batches (VideoCLIP's faiss batching, used by Norton).

At the start of every training epoch each video is embedded with the current model as the mean
over its sampled clips of ``(pooled_video + pooled_text) / 2`` (:func:`video_embeddings`). A
faiss ``IndexIVFFlat`` (L2) is built over those vectors (:func:`build_ivf_index`) and batches of
nearest-neighbour videos are formed (:func:`retrieval_batches`), so that the contrastive
negatives inside a batch are hard ones ("we search the nearest videos as the hard negative
samples", Norton Sec. 4.1, following VideoCLIP).

Two batch-formation modes:

=============  ===============================================================================
``"fixed"``    (default) every video is visited exactly once per epoch (the last batch is
               completed with the query's nearest already-used videos), every batch keeps its
               query and holds exactly ``batch_size`` videos: a greedy nearest-neighbour
               partition. Neighbours are searched with ``nprobe`` inverted lists; when they are
               used up, the batch is completed with not-yet-used videos in random order.
``"videoclip"`` the released behaviour (docs/protocols.md §5.7, §9 item 16): ``N // batch_size``
               random queries, ``n_candidates`` neighbours each, a random ``batch_size``-subset
               of query + neighbours (which may drop the query); batches can be short when the
               probed list is small, some videos repeat and some are never used.
=============  ===============================================================================

Turn retrieval off (``retrieval.mode: off`` in the training config) to train on shuffled
consecutive chunks of the video list instead. :class:`RetrievalBatches` reports the effective
number of distinct videos per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
from torch import Tensor

from ..validation import check_choice, check_int_at_least, check_tensor

__all__ = [
    "RetrievalBatches",
    "video_embeddings",
    "build_ivf_index",
    "retrieval_batches",
    "pad_batches",
]

Mode = Literal["fixed", "videoclip"]


class RetrievalBatches(NamedTuple):
    """Batches of video ids for one epoch, with coverage statistics.

    Attributes
    ----------
    batches : list of lists of video ids; batch ``i`` is trained as one step (before sharding
        over ranks).
    n_videos : number of videos in the pool.
    n_effective : distinct videos that appear in at least one batch.
    n_short : batches with fewer than ``batch_size`` videos.
    n_query_dropped : batches that do not contain their own query video.
    n_centroids : inverted lists of the faiss index (0 when no index was used).
    mode : ``"fixed"``, ``"videoclip"`` or ``"off"``.
    """

    batches: list[list[str]]
    n_videos: int
    n_effective: int
    n_short: int
    n_query_dropped: int
    n_centroids: int
    mode: str

    def summary(self) -> dict[str, Any]:
        """Scalars for logging (no batch lists)."""
        return {
            "mode": self.mode,
            "n_batches": len(self.batches),
            "n_videos": self.n_videos,
            "n_effective": self.n_effective,
            "coverage": self.n_effective / max(self.n_videos, 1),
            "n_short": self.n_short,
            "n_query_dropped": self.n_query_dropped,
            "n_centroids": self.n_centroids,
        }


def video_embeddings(pooled_video: Tensor, pooled_text: Tensor, clips_per_video: int) -> Tensor:
    r"""One retrieval vector per video: the clip-averaged mean of the two modalities.

    .. math::
        e_v = \frac{1}{C} \sum_{c=1}^{C} \frac{\bar v_{v,c} + \bar t_{v,c}}{2}

    Parameters
    ----------
    pooled_video : shape (B * C, D), mean-pooled clip embeddings, video-major (clip ``k``
        belongs to video ``k // C``).
    pooled_text : shape (B * C, D), mean-pooled caption embeddings, same order.
    clips_per_video : ``C``.

    Returns
    -------
    Tensor of shape (B, D), float32.

    Notes
    -----
    VideoCLIP / Norton retrieval pass (docs/protocols.md §5.7): ``(pooled_video +
    pooled_text) / 2`` per clip, averaged over the video's 16 clips.

    Examples
    --------
    >>> import torch
    >>> v = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    >>> video_embeddings(v, torch.zeros(4, 2), clips_per_video=2)
    tensor([[1.0000, 0.0000],
            [0.0000, 1.5000]])
    """
    check_tensor("pooled_video", pooled_video, ndim=2)
    check_tensor("pooled_text", pooled_text, ndim=2)
    check_int_at_least("clips_per_video", clips_per_video, 1)
    if pooled_video.shape != pooled_text.shape:
        raise ValueError(
            f"pooled_text: expected the shape of pooled_video {tuple(pooled_video.shape)}, "
            f"got {tuple(pooled_text.shape)}"
        )
    n, d = pooled_video.shape
    if n % clips_per_video:
        raise ValueError(
            f"pooled_video: expected a multiple of clips_per_video={clips_per_video} rows, got {n}"
        )
    mixed = (pooled_video.float() + pooled_text.float()) / 2  # (B*C, D)
    return mixed.reshape(n // clips_per_video, clips_per_video, d).mean(dim=1)  # (B, D)


def _as_float32(name: str, embeddings: Any) -> np.ndarray:
    if isinstance(embeddings, Tensor):
        embeddings = embeddings.detach().cpu().float().numpy()
    x = np.ascontiguousarray(np.asarray(embeddings, dtype=np.float32))
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty array of shape (N, D), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: expected finite values, found {(~np.isfinite(x)).sum()} NaN/inf")
    return x


def build_ivf_index(
    embeddings: Any,
    n_centroids: int = 512,
    examples_per_centroid: int = 48,
    nprobe: int = 1,
    seed: int = 1234,
):
    """A trained faiss ``IndexIVFFlat`` (L2) holding every embedding, ids ``0..N-1``.

    Parameters
    ----------
    embeddings : shape (N, D), array or tensor (cast to float32).
    n_centroids : inverted lists at full scale (512 in the official config). Adapted to the
        data size: ``nlist = clip(N // examples_per_centroid, 1, n_centroids)``.
    examples_per_centroid : training vectors per list (48 official); the index is trained on
        the first ``nlist * examples_per_centroid`` vectors, as the official pool does.
    nprobe : inverted lists visited per search (faiss default and official: 1).
    seed : k-means seed (faiss ``cp.seed``).

    Returns
    -------
    faiss.IndexIVFFlat with ``ntotal == N``.

    Notes
    -----
    VideoCLIP ``VectorRetriever(db_type="flatl2", cent=512, examples_per_cent_to_train=48)``.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(200, 8)).astype("float32")
    >>> index = build_ivf_index(x, n_centroids=8, examples_per_centroid=40)
    >>> index.nlist, index.ntotal, index.nprobe
    (5, 200, 1)
    """
    import faiss  # noqa: PLC0415 -- optional heavy dependency (faiss)

    x = _as_float32("embeddings", embeddings)
    check_int_at_least("n_centroids", n_centroids, 1)
    check_int_at_least("examples_per_centroid", examples_per_centroid, 1)
    check_int_at_least("nprobe", nprobe, 1)
    n, d = x.shape
    nlist = int(min(n_centroids, max(1, n // examples_per_centroid)))
    quantizer = faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_L2)
    index.cp.seed = int(seed)
    index.cp.min_points_per_centroid = 1  # sizes are adapted above; no faiss warning
    index.train(x[: nlist * examples_per_centroid])
    index.add(x)
    index.nprobe = int(min(nprobe, nlist))
    return index


def retrieval_batches(
    embeddings: Any,
    video_ids: Sequence[str],
    batch_size: int,
    mode: Mode = "fixed",
    n_candidates: int = 192,
    n_centroids: int = 512,
    examples_per_centroid: int = 48,
    nprobe: int = 1,
    seed: int = 0,
) -> RetrievalBatches:
    """Form one epoch of hard-negative batches from nearest neighbours in embedding space.

    Parameters
    ----------
    embeddings : shape (N, D), one vector per video (:func:`video_embeddings`).
    video_ids : N ids, in the same order.
    batch_size : videos per batch (64 in the paper).
    mode : ``"fixed"`` (every video once, query kept, full batches) or ``"videoclip"``
        (the released behaviour); see the module docstring.
    n_candidates : neighbours searched per query (192 official).
    n_centroids, examples_per_centroid, nprobe : index settings, see :func:`build_ivf_index`.
    seed : seed of the query order and of every random choice (k-means included).

    Returns
    -------
    RetrievalBatches. In ``"fixed"`` mode there are ``ceil(N / batch_size)`` batches of exactly
    ``batch_size`` videos (a single short batch when ``N < batch_size``).

    Notes
    -----
    ``docs/protocols.md`` §5.7 describes the released batching and §9 item 16 its defects, which
    ``"fixed"`` removes: the query is always in its batch, every video is visited, no batch is
    short.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(4, 16)) * 10  # four well-separated groups of 8 videos
    >>> x = np.repeat(centers, 8, axis=0) + rng.normal(size=(32, 16))
    >>> ids = [f"v{i:02d}" for i in range(32)]
    >>> out = retrieval_batches(x, ids, batch_size=8, n_candidates=16, examples_per_centroid=8)
    >>> sorted(len({int(v[1:]) // 8 for v in b}) for b in out.batches)  # one group per batch
    [1, 1, 1, 1]
    >>> out.n_effective, out.n_short, out.n_query_dropped
    (32, 0, 0)
    """
    x = _as_float32("embeddings", embeddings)
    ids = list(video_ids)
    if len(ids) != x.shape[0]:
        raise ValueError(
            f"video_ids: expected {x.shape[0]} ids (one per embedding), got {len(ids)}"
        )
    if len(set(ids)) != len(ids):
        raise ValueError("video_ids: expected unique ids, found duplicates")
    check_int_at_least("batch_size", batch_size, 1)
    check_int_at_least("n_candidates", n_candidates, 1)
    check_choice("mode", mode, ("fixed", "videoclip"))
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    index = build_ivf_index(x, n_centroids, examples_per_centroid, nprobe, seed=1234 + seed)
    if mode == "videoclip":
        rows = _videoclip_batches(index, x, batch_size, n_candidates, rng)
    else:
        rows = _fixed_batches(index, x, batch_size, n_candidates, rng)
    batches = [[ids[j] for j in b] for b, _ in rows]
    used = {j for b, _ in rows for j in b}
    return RetrievalBatches(
        batches=batches,
        n_videos=n,
        n_effective=len(used),
        n_short=sum(len(b) < min(batch_size, n) for b, _ in rows),
        n_query_dropped=sum(q not in b for b, q in rows),
        n_centroids=int(index.nlist),
        mode=mode,
    )


def _videoclip_batches(index, x: np.ndarray, batch_size: int, n_candidates: int, rng):
    """Released behaviour: random queries, k-NN candidates, random subset (may drop query)."""
    n = x.shape[0]
    n_queries = max(1, n // batch_size)
    queries = rng.choice(n, size=n_queries, replace=False)
    _, nbrs = index.search(x[queries], min(n, n_candidates + 1))  # (Q, k), -1 where missing
    rows = []
    for q, row in zip(queries.tolist(), nbrs):
        cands = [q] + [int(j) for j in row if j >= 0 and j != q]
        if len(cands) > batch_size:
            pick = rng.choice(len(cands), size=batch_size, replace=False)
            cands = [cands[i] for i in sorted(pick.tolist())]
        rows.append((cands, q))
    return rows


def _fixed_batches(index, x: np.ndarray, batch_size: int, n_candidates: int, rng):
    """Greedy nearest-neighbour partition: every video once, queries kept, full batches."""
    n = x.shape[0]
    order = rng.permutation(n)
    used = np.zeros(n, dtype=bool)
    cursor = 0  # into `order`, for the random fill
    k = min(n, max(n_candidates, batch_size) + 1)
    rows = []
    for q in order.tolist():
        if used[q]:
            continue
        batch = [q]
        used[q] = True
        _, nbrs = index.search(x[q : q + 1], k)
        for j in nbrs[0].tolist():
            if len(batch) == batch_size:
                break
            if j >= 0 and not used[j]:
                batch.append(j)
                used[j] = True
        while len(batch) < batch_size and cursor < n:  # neighbours used up: random fill
            j = int(order[cursor])
            cursor += 1
            if not used[j]:
                batch.append(j)
                used[j] = True
        rows.append((batch, q))
    # every video is placed; complete the last (short) batch with its query's nearest videos
    last, q = rows[-1]
    if len(last) < batch_size and n >= batch_size:
        _, nbrs = index.search(x[q : q + 1], k)
        in_last = set(last)
        for j in [*nbrs[0].tolist(), *order.tolist()]:
            if len(last) == batch_size:
                break
            if j >= 0 and j not in in_last:
                last.append(j)
                in_last.add(j)
    return rows


def pad_batches(batches: Sequence[Sequence[str]], multiple: int) -> list[list[str]]:
    """Pad a batch list to a multiple of ``multiple`` (the number of ranks) by repeating its
    first batches, so that every rank runs the same number of steps and no batch is lost.

    Rank ``r`` then trains on ``padded[r::multiple]``; the repeated batches are sampled anew
    (the sampling seed includes the position in the list).

    >>> pad_batches([["a"], ["b"], ["c"]], 2)
    [['a'], ['b'], ['c'], ['a']]
    """
    check_int_at_least("multiple", multiple, 1)
    if not batches:
        raise ValueError("batches: expected at least one batch, got an empty list")
    padded = [list(b) for b in batches]
    i = 0
    while len(padded) % multiple:
        padded.append(list(batches[i % len(batches)]))
        i += 1
    return padded
