"""The HowTo100M pre-training stream: batch planning and :class:`How2Dataset`.

:func:`plan_batches` cuts a video list into batches of ``videos_per_batch`` consecutive (or
shuffled) ids and :class:`How2Dataset` yields one :class:`ClipBatch` per batch, dealt to DDP
ranks and DataLoader workers (``docs/protocols.md`` §5.5).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..features import SkipReport
from ..text import text_tokens_budget
from .caption_shards import ShardedCaptions
from .feature_shards import ShardedFeatures
from .sampling import ClipBatch, _check_range, build_clip_batch, sample_video_clips
from .shard_files import _check_video_id

__all__ = ["plan_batches", "How2Dataset"]


def _seed_seq(*parts: int | str) -> np.random.SeedSequence:
    ints = [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) & 0xFFFFFFFF for p in parts]
    return np.random.SeedSequence(ints)


def plan_batches(
    video_ids: Sequence[str],
    videos_per_batch: int = 64,
    *,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = True,
    batch_multiple: int = 1,
) -> list[list[str]]:
    """Cut a video list into batches of ``videos_per_batch`` consecutive ids.

    Parameters
    ----------
    video_ids : sequence of str
        Video list (e.g. ``how2_s3d_val.lst`` order).
    videos_per_batch : int
        ``B`` (64).
    shuffle : bool
        Shuffle the list first with a generator seeded by ``(seed, epoch)``.
    seed, epoch : int
        Shuffle seed.
    drop_last : bool
        Drop an incomplete last batch.
    batch_multiple : int
        Round the number of batches down to a multiple of this (official validation: 8,
        "multi-GPU split integer batch").

    Returns
    -------
    list of list of str

    Notes
    -----
    ``docs/protocols.md`` §5.5: initial and validation batching are consecutive chunks of 64
    ids with the total rounded down to a multiple of 8 x 64.

    Examples
    --------
    >>> plan_batches([str(i) for i in range(7)], 2)
    [['0', '1'], ['2', '3'], ['4', '5']]
    >>> plan_batches([str(i) for i in range(7)], 2, batch_multiple=2)
    [['0', '1'], ['2', '3']]
    """
    for name, v in (("videos_per_batch", videos_per_batch), ("batch_multiple", batch_multiple)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    ids = list(video_ids)
    if shuffle:
        order = np.random.default_rng(_seed_seq(seed, epoch)).permutation(len(ids))
        ids = [ids[i] for i in order]
    batches = [ids[i : i + videos_per_batch] for i in range(0, len(ids), videos_per_batch)]
    if drop_last and batches and len(batches[-1]) < videos_per_batch:
        batches.pop()
    return batches[: len(batches) // batch_multiple * batch_multiple]


class How2Dataset(torch.utils.data.IterableDataset):
    """Stream of pre-training :class:`ClipBatch` es, one per ``videos_per_batch`` videos.

    Use with ``DataLoader(dataset, batch_size=None, num_workers=w)``: every item is already a
    batch. Batches are planned globally (consecutive or shuffled chunks of the video list, or
    an explicit ``batches=`` list, e.g. retrieval-augmented batches built elsewhere), then
    dealt to DDP ranks (``batches[rank::world_size]``) and to DataLoader workers
    (``[worker::n_workers]``), so no batch is produced twice. The sampling of each video is
    seeded by ``(seed, epoch, global batch index, video id)``: the stream does not depend on
    the number of ranks or workers.

    Parameters
    ----------
    features : ShardedFeatures
        Video features.
    captions : ShardedCaptions
        Pre-tokenised captions.
    video_ids : sequence of str, optional
        Videos to use (default: all of ``features``, in shard order).
    videos_per_batch : int
        ``B`` (64; 32 in the official low-memory advice).
    clips_per_video : int
        ``K`` (16).
    seed : int
        Seed of the shuffle and of the sampling.
    shuffle : bool
        Shuffle the video list every epoch (off: consecutive chunks in list order, the
        official initial/validation batching).
    drop_last : bool
        Drop an incomplete last batch, and batches that would give ranks unequal counts.
    batch_multiple : int
        Round the number of batches down to a multiple of this (official validation: 8).
    batches : sequence of sequence of str, optional
        Explicit batches (used as given, in order); overrides the planning above.
    rank, world_size : int
        DDP position.
    min_text_len, max_text_len, min_clip_len, max_clip_len, replacement :
        Passed to :func:`sample_video_clips`.
    max_len, max_video_len : int
        The official length budget: clips keep at most ``max_video_len`` seconds (16) and text
        at most ``max_len - max_video_len - 3`` tokens (48 - 16 - 3 = 29), so ``text_ids`` has
        ``max_len - max_video_len - 1`` = 31 columns.

    Notes
    -----
    Norton App. B: 64 videos x 16 clips, sequences of 8 consecutive clips (128 per batch);
    ``docs/protocols.md`` §5.4-5.5. Videos without captions or features are skipped and
    reported once per pass (``self.skipped``).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from nortonkit.data.howto100m import write_caption_shards, write_feature_shards
    >>> from nortonkit.data.text import load_tokenizer
    >>> d = Path(tempfile.mkdtemp())
    >>> vids = ["a", "b", "c", "d"]
    >>> _ = write_feature_shards([(v, np.ones((30, 4))) for v in vids], d / "f", "train", dim=4)
    >>> caps = {v: {"start": [0.0, 9.0], "end": [8.0, 20.0], "text": ["crack the eggs",
    ...         "whisk them well"]} for v in vids}
    >>> _ = write_caption_shards(caps, load_tokenizer(), {0: vids}, d / "c", "train")
    >>> feats = ShardedFeatures(d / "f", "train", expected_dim=4)
    >>> ds = How2Dataset(feats, ShardedCaptions(d / "c", "train", feats), videos_per_batch=2,
    ...                  shuffle=False, rank=1, world_size=2)
    >>> [b.video_ids for b in ds], next(iter(ds)).video.shape
    ([['c', 'd']], torch.Size([32, 16, 4]))
    """

    def __init__(
        self,
        features: ShardedFeatures,
        captions: ShardedCaptions,
        video_ids: Sequence[str] | None = None,
        *,
        videos_per_batch: int = 64,
        clips_per_video: int = 16,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        batch_multiple: int = 1,
        batches: Sequence[Sequence[str]] | None = None,
        rank: int = 0,
        world_size: int = 1,
        min_text_len: int = 8,
        max_text_len: int = 32,
        min_clip_len: int = 3,
        max_clip_len: int = 16,
        max_len: int = 48,
        max_video_len: int = 16,
        replacement: bool = True,
    ):
        super().__init__()
        max_tokens = text_tokens_budget(max_len, max_video_len)
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size: expected an integer >= 1, got {world_size!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"rank: expected an integer in [0, {world_size}), got {rank!r}")
        if isinstance(clips_per_video, bool) or not isinstance(clips_per_video, int) \
                or clips_per_video < 1:
            raise ValueError(f"clips_per_video: expected an integer >= 1, got {clips_per_video!r}")
        _check_range("min_text_len", min_text_len, "max_text_len", max_text_len)
        _check_range("min_clip_len", min_clip_len, "max_clip_len", max_clip_len)
        self.features, self.captions = features, captions
        self.video_ids = list(video_ids) if video_ids is not None else features.ids
        for i, v in enumerate(self.video_ids):
            _check_video_id(f"video_ids[{i}]", v)
        if batches is not None:
            batches = [list(b) for b in batches]
            for i, b in enumerate(batches):
                if not b or not all(isinstance(v, str) and v for v in b):
                    raise ValueError(f"batches[{i}]: expected a non-empty list of video ids")
        self.batches = batches
        self.videos_per_batch, self.clips_per_video = videos_per_batch, clips_per_video
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.batch_multiple, self.rank, self.world_size = batch_multiple, rank, world_size
        self.sampler_kwargs = dict(
            clips_per_video=clips_per_video, min_text_len=min_text_len,
            max_text_len=max_text_len, min_clip_len=min_clip_len, max_clip_len=max_clip_len,
            max_tokens=max_tokens, replacement=replacement,
        )
        self.max_video_len, self.max_tokens = max_video_len, max_tokens
        self.epoch = 0
        self.skipped = SkipReport("how2 videos")
        plan_batches(self.video_ids, videos_per_batch, batch_multiple=batch_multiple)  # validate

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (changes the shuffle and the sampling)."""
        self.epoch = int(epoch)

    def global_batches(self) -> list[list[str]]:
        """All batches of this epoch, before rank/worker sharding."""
        if self.batches is not None:
            return [list(b) for b in self.batches]
        return plan_batches(self.video_ids, self.videos_per_batch, shuffle=self.shuffle,
                            seed=self.seed, epoch=self.epoch, drop_last=self.drop_last,
                            batch_multiple=self.batch_multiple)

    def _rank_batches(self) -> list[tuple[int, list[str]]]:
        batches = list(enumerate(self.global_batches()))
        if self.drop_last:
            batches = batches[: len(batches) // self.world_size * self.world_size]
        return batches[self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self._rank_batches())

    def make_batch(self, index: int, video_ids: Sequence[str]) -> ClipBatch | None:
        """Sample and stack one batch (``index`` = global batch index, part of the seed)."""
        samples = []
        for vid in video_ids:
            if vid not in self.features:
                self.skipped.add(vid, "no features")
                continue
            if vid not in self.captions:
                self.skipped.add(vid, "no captions")
                continue
            caps = self.captions[vid]
            if not caps["cap"]:
                self.skipped.add(vid, "no captions")
                continue
            feats = self.features[vid]
            rng = np.random.default_rng(_seed_seq(self.seed, self.epoch, index, vid))
            samples.append((vid, feats, sample_video_clips(feats, caps, rng,
                                                           **self.sampler_kwargs)))
        if not samples:
            return None
        return build_clip_batch(samples, self.max_video_len, self.max_tokens)

    def __iter__(self) -> Iterator[ClipBatch]:
        self.skipped = SkipReport("how2 videos")
        mine = self._rank_batches()
        info = torch.utils.data.get_worker_info()
        if info is not None:
            mine = mine[info.id :: info.num_workers]
        for index, vids in mine:
            batch = self.make_batch(index, vids)
            if batch is not None:
                yield batch
        self.skipped.emit()
