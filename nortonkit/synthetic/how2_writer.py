"""The HowTo100M-like pre-training set of a synthetic corpus, written as the released shards.

Videos are generated one at a time, in any order, and written shard by shard: each video draws
from its own ``SeedSequence([seed, tag, split, index])``, and a video's plan (timeline and
narration, no features) is cheap to make again, so the captions are re-planned when the caption
shards are written (:class:`_LazyCaptions`) and memory does not grow with the number of videos.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..data.howto100m import write_caption_shards, write_feature_shards
from ..data.layout import DataRoot
from ..io import atomic_write
from .config import SyntheticConfig
from .ground_truth import _gt_record
from .narration import _narrate
from .video import _Plan, _render, _timeline
from .world import _TAG_HOW2, World
from .writing import ProgressFactory, _JsonObjectWriter, _unique_ids


def _how2_plan(world: World, cfg: SyntheticConfig, split_code: int, i: int,
               tag: int = _TAG_HOW2) -> tuple[_Plan, np.random.Generator]:
    ss = np.random.SeedSequence([cfg.seed, tag, split_code, i])
    plan_seq, render_seq = ss.spawn(2)
    rng = np.random.default_rng(plan_seq)
    task = int(rng.integers(len(world.tasks)))
    plan = _timeline(world, task, rng, cfg.noise, cfg.how2_min_duration_s,
                     cfg.how2_max_duration_s)
    _narrate(world, plan, rng, cfg.noise)
    return plan, np.random.default_rng(render_seq)


class _LazyCaptions(Mapping):
    """``{video_id: {start, end, text}}`` re-planned on access (plans are cheap, no features)."""

    def __init__(self, world: World, cfg: SyntheticConfig, split_code: int, ids: list[str]):
        self.world, self.cfg, self.split_code = world, cfg, split_code
        self.index = {v: i for i, v in enumerate(ids)}

    def __getitem__(self, vid: str) -> dict[str, list]:
        plan, _ = _how2_plan(self.world, self.cfg, self.split_code, self.index[vid])
        return _caption_entry(plan)

    def __contains__(self, vid: object) -> bool:
        return vid in self.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


def _caption_entry(plan: _Plan) -> dict[str, list]:
    ss = plan.sentences
    return dict(start=[x.start for x in ss], end=[x.end for x in ss], text=[x.text for x in ss])


def _write_how2(root: DataRoot, world: World, cfg: SyntheticConfig, tokenizer: Any,
                bar: ProgressFactory, counts: dict[str, Any]) -> None:
    n_sent = n_align = n_sync = 0
    with atomic_write(root.how2_captions_json, "w") as fj, \
            atomic_write(root.ground_truth / "how2.json", "w") as fg:
        caps_json, gt_json = _JsonObjectWriter(fj), _JsonObjectWriter(fg)
        for split_code, (split, n) in enumerate((("train", cfg.how2_train),
                                                 ("val", cfg.how2_val))):
            ids = _unique_ids(cfg.seed, f"how2-{split}", n)
            with atomic_write(root.how2_list(split), "w") as f:
                f.writelines(v + "\n" for v in ids)

            def items(ids: list[str] = ids, split_code: int = split_code,
                      split: str = split) -> Iterator[tuple[str, np.ndarray]]:
                nonlocal n_sent, n_align, n_sync
                for i, vid in enumerate(bar(ids, desc=f"how2 {split}", unit="video")):
                    plan, render_rng = _how2_plan(world, cfg, split_code, i)
                    caps_json.add(vid, _caption_entry(plan))
                    gt_json.add(vid, _gt_record(world, plan, split=split))
                    n_sent += len(plan.sentences)
                    n_align += sum(x.step >= 0 for x in plan.sentences)
                    n_sync += sum(x.step >= 0 and not x.asynchronous for x in plan.sentences)
                    yield vid, _render(world, plan, render_rng, cfg.noise)

            written = write_feature_shards(items(), root.how2_feature_shards, split,
                                           shard_size=cfg.how2_shard_size, dim=cfg.dim)
            write_caption_shards(_LazyCaptions(world, cfg, split_code, ids), tokenizer,
                                 written.meta, root.how2_caption_shards, split,
                                 source=str(root.how2_captions_json))
            counts[f"how2_{split}_videos"] = n
        caps_json.close()
        gt_json.close()
    counts["how2_sentences"] = n_sent
    counts["how2_alignable_fraction"] = round(n_align / max(n_sent, 1), 4)
    counts["how2_well_aligned_fraction"] = round(n_sync / max(n_sent, 1), 4)
