"""The pre-training run's data: a split opened for sampling, batches dealt to loader workers.

:func:`_open_split` opens a HowTo100M-format split under ``data.root`` (the videos with both
features and captions, in the list's order) as a :class:`~nortonkit.data.howto100m.How2Dataset`
that samples, never batches: the loop plans the batches and :func:`_loader` deals the planned
``(global_index, video_ids)`` items to its DataLoader workers. Every sample is seeded by the
batch's global index, so a batch is the same whichever worker or rank builds it, and building
the loader consumes none of the global RNG streams (exact resumption).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ..data.howto100m import (
    How2Dataset,
    ShardedCaptions,
    ShardedFeatures,
    read_video_list,
)
from ..data.layout import DataRoot
from .config import TrainConfig


class _Corpus(NamedTuple):
    """A split's videos with both features and captions, and the dataset that samples them."""

    dataset: Any  # How2Dataset (sampling only; batches come from the loop)
    ids: list[str]


def _open_split(config: TrainConfig, split: str, seed: int) -> _Corpus:
    """Open ``split`` under ``data.root`` as the loop samples it (ValueError when it is empty)."""
    d = config.data
    root = DataRoot(d.root)
    feats = ShardedFeatures(root.how2_feature_shards, split,
                            expected_dim=config.model.video_feature_dim)
    caps = ShardedCaptions(root.how2_caption_shards, split, feats)
    listing = root.how2_list(split)
    ids = read_video_list(listing) if listing.is_file() else feats.ids
    ids = [v for v in ids if v in feats and v in caps]
    if not ids:
        raise ValueError(f"data.root: no {split!r} video has both features and captions "
                         f"under {root.root}")
    dataset = How2Dataset(
        feats, caps, ids, videos_per_batch=d.videos_per_batch, clips_per_video=d.clips_per_video,
        seed=seed, shuffle=False, drop_last=False, min_text_len=d.min_text_len,
        max_text_len=d.max_text_len, min_clip_len=d.min_clip_len, max_clip_len=d.max_clip_len,
        max_video_len=d.max_video_len, max_len=d.max_len, replacement=d.with_replacement,
    )
    return _Corpus(dataset, ids)


class _BatchStream(torch.utils.data.IterableDataset):
    """Yields ``(global_index, ClipBatch | None)`` for given items, dealt to DataLoader workers."""

    def __init__(self, dataset: Any, items: Sequence[tuple[int, list[str]]]):
        super().__init__()
        self.dataset, self.items = dataset, list(items)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        info = torch.utils.data.get_worker_info()
        items = self.items if info is None else self.items[info.id :: info.num_workers]
        for index, vids in items:
            yield index, self.dataset.make_batch(index, vids)


def _loader(dataset: Any, items: Sequence[tuple[int, list[str]]], num_workers: int,
            pin: bool) -> torch.utils.data.DataLoader:
    """A loader of ``items`` (``(global_index, video_ids)``), one batch each, dealt to workers."""
    # an explicit generator: creating the iterator must not consume the global RNG (resume)
    return torch.utils.data.DataLoader(
        _BatchStream(dataset, items), batch_size=None, num_workers=num_workers,
        pin_memory=pin, generator=torch.Generator().manual_seed(0),
        persistent_workers=False,
    )


def _to_device(batch: Any, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The batch's video, video mask, text ids and text mask on ``device``."""
    nb = device.type == "cuda"
    return (batch.video.to(device, non_blocking=nb), batch.video_mask.to(device, non_blocking=nb),
            batch.text_ids.to(device, non_blocking=nb), batch.text_mask.to(device, non_blocking=nb))
